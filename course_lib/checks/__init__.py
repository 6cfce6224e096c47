"""Self-checks for the exercise notebooks: each says in one line what is wrong, and how to fix it.

In an exercise notebook, after the cell that defines ``softmax_with_temperature``::

    from course_lib.checks import check_softmax_with_temperature
    check_softmax_with_temperature(softmax_with_temperature)

prints ``02.1 softmax_with_temperature: passed (5 test cases).``, or one sentence naming the
mistake (``Your `weights` sum to 1 along axis 0, not along the axis you were given (the last
axis). Hint: pass axis=-1 to the sum...``), or ``not done yet`` while the function still raises
``NotImplementedError``. A check never raises: whatever the function does, it prints one line.
Under nbgrader (``nbgrader autograde`` and ``validate`` set ``NBGRADER_EXECUTION``), a check that
did not pass also raises ``AssertionError`` with that line, since nbgrader scores a grade cell by
whether it raises (docs/grading.md, section 7).

Every ``check_<function name>`` comes from the registry :data:`EXERCISES`. The grader
(``course_lib.grading``) uses the same registry and the same diagnosis
(:func:`course_lib.checks.core.diagnose`), but runs the learner's function in a separate kernel
on other inputs and judges the returned arrays in its own process.

How to add an exercise
----------------------
1. In ``solutions/NN_topic.ipynb``, write the exercise cell: first line ``# EXERCISE NN.M``,
   then the function with its signature and docstring, its body between ``### BEGIN SOLUTION``
   and ``### END SOLUTION``; tag the cell ``exercise-NN.M``; add a check cell
   ``check_<function name>(<function name>)``. Run ``make exercises``.
2. In ``course_lib/checks/lessonNN.py`` (a new module: add it to ``_LESSON_MODULES`` below), add
   one :class:`~course_lib.checks.core.Exercise` to the module's ``EXERCISES`` tuple:

   - ``exercise_id="NN.M"`` and ``function_name``, as in the notebook (both unique course-wide);
   - ``make_cases(rng)``: a list of argument dicts, in the function's parameter order, small and
     shaped so that mistakes show (e.g. fewer queries than keys, so a transposed result has
     another shape). Use only ``rng`` for randomness: it is seeded per exercise;
   - ``reference``: the right answer in NumPy, same parameters;
   - ``outputs``: the names of the returned values, ``("output", "weights")`` for a pair;
   - ``mistakes``: common wrong implementations, ``Mistake(wrong_function, "What. Hint: how.")``,
     recognised when the learner's outputs equal theirs on every case;
   - ``properties``: diagnoses read from the outputs, e.g.
     ``sums_to_one("weights", over="the keys")``;
   - ``rtol``/``atol``, ``shape_hints``, ``nan_hint``, ``hint`` as needed.

   For a Keras layer or a function returning tensors: outputs are converted with ``.numpy()`` or
   ``np.asarray``. Keep the module's top level NumPy-only (import Keras inside functions): the
   grader imports it in every graded kernel.
3. A build exercise (one per lesson: a layer, a model that trains, a decoding loop) hands in a
   class or a function that builds. Its ``Exercise`` sets ``invoke=(learner's object, case) ->
   arrays``, which builds the object in the learner's kernel, sets its weights from the case by
   the names the instructions give (``course_lib.checks.build.set_weight``), calls it and returns
   NumPy arrays; ``reference_invoke``, how the NumPy reference and the mistake models are called
   (positionally); and ``describe``, what the learner's code was given, for the messages. When
   there is no single right output (a model that trains), set ``reference=None``: the exercise
   passes when every property holds, each property judging the arrays that came back (accuracy
   above a bar, padding that changes nothing, no leak). Training must be seeded from the case.
   A lesson whose grading takes longer than 120 s sets ``GRADING_TIMEOUT_S`` in its module.
4. Add a test of each diagnosis in ``tests/test_checks*.py`` (for a build exercise, with the
   solution notebook's own code and slips made by editing it: ``tests/exercise_sources.py``, on
   a few seeds), a fixture with one slip in ``tests/fixtures/make_submissions.py``, and keep every
   message free of the solution's code (``tests/test_hints.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from course_lib.checks import (
    lesson01,
    lesson02,
    lesson03,
    lesson04,
    lesson05,
    lesson06,
    lesson07,
    lesson08,
    lesson09,
    lesson10,
    lesson11,
    lesson12,
    lesson13,
)
from course_lib.checks.core import (
    CHECK_SEED,
    Case,
    Exercise,
    Verdict,
    diagnose,
    run_learner_function,
)

_LESSON_MODULES = (lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07,
                   lesson08, lesson09, lesson10, lesson11, lesson12, lesson13)


def _build_registry() -> dict[str, Exercise]:
    registry: dict[str, Exercise] = {}
    function_names: set[str] = set()
    for module in _LESSON_MODULES:
        for exercise in module.EXERCISES:
            if exercise.exercise_id in registry or exercise.function_name in function_names:
                raise ValueError(f"exercise {exercise.exercise_id} ({exercise.function_name}) "
                                 f"is registered twice: ids and function names must be unique")
            registry[exercise.exercise_id] = exercise
            function_names.add(exercise.function_name)
    return registry


EXERCISES: dict[str, Exercise] = _build_registry()
"""Every graded exercise of the course, by id (``"02.1"``)."""

DEFAULT_GRADING_TIMEOUT_S = 120

GRADING_TIMEOUTS_S: dict[str, int] = {
    module.EXERCISES[0].lesson: getattr(module, "GRADING_TIMEOUT_S", DEFAULT_GRADING_TIMEOUT_S)
    for module in _LESSON_MODULES}
"""The ``--timeout`` an instructor should grade each lesson with (``"05"`` → seconds): what one
submission needs on a shared 2-core machine, with a margin; a lesson module sets it as
``GRADING_TIMEOUT_S`` when its build exercise trains or imports Keras."""


def run_check(exercise_id: str, function: Any, seed: int = CHECK_SEED,
              invoke: Callable[[Any, Case], Any] | None = None) -> Verdict:
    """Run the learner's ``function`` on the exercise's check inputs and diagnose the result.

    ``invoke`` replaces the exercise's way of calling it: the tests run the NumPy reference and
    mistake models of a build exercise through ``exercise.call_model``.
    """
    exercise = EXERCISES[exercise_id]
    if not callable(function):
        return Verdict(False, f"expected your function `{exercise.function_name}`, "
                              f"got an object of type {type(function).__name__}.")
    cases = exercise.cases(seed)
    references = [exercise.reference_outputs(case) for case in cases]
    outcomes = [run_learner_function(exercise, function, case, invoke) for case in cases]
    return diagnose(exercise, cases, outcomes, references)


def check(exercise_id: str, function: Any) -> None:
    """Print one line: whether ``function`` solves exercise ``exercise_id``, and if not, why.

    Raises AssertionError with that line when it did not pass and nbgrader runs the notebook.
    """
    exercise = EXERCISES[exercise_id]
    verdict = run_check(exercise_id, function)
    line = f"{exercise.exercise_id} {exercise.function_name}: {verdict.reason}"
    print(line)
    if not verdict.passed and os.environ.get("NBGRADER_EXECUTION"):
        raise AssertionError(line)


def _named_check(exercise: Exercise) -> Callable[[Any], None]:
    def check_function(function: Any) -> None:
        check(exercise.exercise_id, function)

    check_function.__name__ = f"check_{exercise.function_name}"
    check_function.__doc__ = (f"Check exercise {exercise.exercise_id}: print one line saying "
                              f"whether `{exercise.function_name}` is right, and if not, why.")
    return check_function


_NAMED_CHECKS = {f"check_{exercise.function_name}": _named_check(exercise)
                 for exercise in EXERCISES.values()}


def __getattr__(name: str) -> Callable[[Any], None]:
    """``check_<function name>`` for every registered exercise, without writing each one out."""
    try:
        return _NAMED_CHECKS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMED_CHECKS])
