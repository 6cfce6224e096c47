"""The machinery of the self-checks: exercises, calls, and the diagnosis of wrong answers.

Everything here works on NumPy arrays, so the same :func:`diagnose` serves two callers:

- the learner's self-check, which calls the learner's function in the learner's own kernel;
- the instructor's grader, which gets the learner's outputs back as data from a sandboxed
  kernel and diagnoses them in its own process, where the learner's code cannot reach.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Case = dict[str, Any]
"""The arguments of one call, in the order of the function's parameters (passed positionally,
so that a learner who renames a parameter is still graded)."""

Outputs = tuple[np.ndarray, ...]

CHECK_SEED = 20_250_602
"""Seed of the learners' self-check inputs. The grader draws its inputs from another seed, so an
answer that memorised the self-check's outputs earns nothing."""

MAX_MESSAGE_CHARS = 160


@dataclass(frozen=True)
class Verdict:
    """The result of checking one exercise: passed or not, and one sentence (plus a hint) why."""

    passed: bool
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What one call of the learner's function gave.

    Exactly one of the three is set: ``outputs`` (the call returned usable arrays),
    ``error_type`` with ``message`` (the call raised), or ``message`` alone (the call returned
    something that is not what the exercise asks for, e.g. one value instead of a pair).
    """

    outputs: Outputs | None = None
    error_type: str = ""
    message: str = ""


@dataclass(frozen=True)
class Mistake:
    """A common wrong implementation, with the sentence that explains it.

    ``implementation`` has the reference's signature. When the learner's outputs equal its
    outputs on every case, the learner made this mistake and gets ``message``.
    """

    implementation: Callable[..., Any]
    message: str


NamedOutputs = dict[str, np.ndarray]

Property = Callable[[Case, NamedOutputs, NamedOutputs], "str | None"]
"""A diagnosis read from the outputs themselves: ``(case, learner's, reference's) -> message``,
or None when the property holds; outputs are keyed by their names in ``Exercise.outputs``. It runs
on the first case where the learner's outputs are wrong, once their shapes are right."""


def call_positionally(function: Callable[..., Any], case: Case) -> Any:
    """The default way to call a learner's function: its arguments in order."""
    return function(*case.values())


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: everything the self-check and the grader need to know about it.

    Attributes:
        exercise_id: ``"NN.M"``, the lesson number and the exercise number; the notebook cell
            that holds it starts with ``# EXERCISE NN.M``.
        function_name: the name the learner's function has in the exercise notebook.
        make_cases: ``rng -> [case, ...]``; small inputs that expose the usual mistakes. Called
            with a generator seeded from :data:`CHECK_SEED` for self-checks, from the grading
            seed for the grader.
        reference: the right answer, in NumPy, with the same parameters as the learner's function;
            or None for an exercise with no single right output (a model that trains): it then
            passes when every property holds on every case, each property receiving the
            learner's outputs and an empty reference.
        outputs: the names of the returned values, e.g. ``("output", "weights")``; more than one
            name means the function returns a tuple in that order.
        mistakes: common wrong implementations recognised by their outputs.
        properties: diagnoses computed from the outputs (weights summing to 1, mask polarity...).
        shape_hints: per output, what its axes are, for the wrong-shape message.
        nan_hint: where NaN or infinity usually come from in this exercise.
        error_hint: the hint added when the function raises (other than NotImplementedError).
        hint: the hint given when no specific mistake is recognised.
        invoke: ``(learner's object, case) -> returned value``; replace it for exercises whose
            answer is not a function (e.g. a Keras layer class to build and call, or a model
            class to build and train).
        reference_invoke: how the reference and the mistakes are called; by default as the
            learner's object is (``invoke``). A layer exercise calls the learner's class through
            ``invoke`` but its NumPy reference and mistakes positionally.
        describe: ``case -> text``, what the learner's object was given, for messages (by
            default each argument's shape or value). An exercise whose case holds more than its
            function receives (weights that ``invoke`` sets, data it trains on) describes only
            what the learner's code saw.
        rtol, atol: the tolerance of the comparison with the reference.
        points: what the exercise is worth in the grader's total.
    """

    exercise_id: str
    function_name: str
    make_cases: Callable[[np.random.Generator], list[Case]]
    reference: Callable[..., Any]
    outputs: tuple[str, ...] = ("output",)
    mistakes: tuple[Mistake, ...] = ()
    properties: tuple[Property, ...] = ()
    shape_hints: dict[str, str] = field(default_factory=dict)
    nan_hint: str = "look for a 0/0, a log(0) or an exp() that overflows."
    error_hint: str = ""
    hint: str = "work one small example by hand and compare it with what your function returns."
    invoke: Callable[[Any, Case], Any] = call_positionally
    reference_invoke: Callable[[Any, Case], Any] | None = None
    describe: Callable[[Case], str] | None = None
    rtol: float = 1e-4
    atol: float = 1e-6
    points: int = 1

    @property
    def lesson(self) -> str:
        """The lesson number, ``"02"`` for exercise ``"02.3"``."""
        return self.exercise_id.split(".")[0]

    def cases(self, seed: int) -> list[Case]:
        """The inputs for one run, reproducible from ``seed`` and this exercise's id alone."""
        exercise_key = zlib.crc32(self.exercise_id.encode())
        return self.make_cases(np.random.default_rng([seed, exercise_key]))

    def call_model(self, implementation: Callable[..., Any], case: Case) -> Any:
        """Call the reference, or a mistake model, on a copy of ``case``."""
        return (self.reference_invoke or self.invoke)(implementation, _copied(case))

    def reference_outputs(self, case: Case) -> Outputs | None:
        """The reference's outputs on ``case``, as a tuple of float arrays (None for an exercise
        judged by its properties alone)."""
        if self.reference is None:
            return None
        returned = self.call_model(self.reference, case)
        values = returned if len(self.outputs) > 1 else (returned,)
        return tuple(np.asarray(value, dtype=np.float64) for value in values)

    def describe_case(self, case: Case) -> str:
        """What the learner's object was given in ``case``, for messages."""
        return (self.describe or describe_case)(case)


def _copied(case: Case) -> Case:
    """A deep enough copy of a case: a function that writes into its inputs must not change
    what the next caller (or the reference) sees."""
    return {name: np.array(value) if isinstance(value, np.ndarray) else value
            for name, value in case.items()}


def one_line(text: object) -> str:
    """The first line of ``text``, shortened: reasons go in one CSV cell and one printed line."""
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= MAX_MESSAGE_CHARS else first[: MAX_MESSAGE_CHARS - 3] + "..."


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}\s*")


def error_line(error: BaseException) -> str:
    """One line saying what an exception says. Keras wraps an error raised inside a layer as
    "Exception encountered when calling X.call()." followed, on later lines, by the error
    itself: keep both."""
    lines = [_TERMINAL_CODES.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        return one_line(f"{lines[0].rstrip('.')}: {lines[1]}")
    return one_line(lines[0] if lines else "")


def to_numpy(value: Any) -> np.ndarray:
    """A learner's returned value as a NumPy array (NumPy, Python numbers, or framework tensors)."""
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        value = value.numpy()  # TensorFlow eager tensors, Keras variables, PyTorch CPU tensors
    return np.asarray(value)


def outcome_of_return(exercise: Exercise, returned: Any) -> Outcome:
    """Check the form of what the learner's function returned and turn it into arrays."""
    name = exercise.function_name
    expected = len(exercise.outputs)
    if expected > 1:
        listing = ", ".join(exercise.outputs)
        if not isinstance(returned, tuple | list):
            return Outcome(message=f"`{name}` returned one {type(returned).__name__}, but it "
                                   f"should return a tuple ({listing}).")
        if len(returned) != expected:
            return Outcome(message=f"`{name}` returned {len(returned)} values, but it should "
                                   f"return {expected}: ({listing}).")
        values = tuple(returned)
    else:
        values = (returned,)
    arrays = []
    for output_name, value in zip(exercise.outputs, values, strict=True):
        try:
            array = to_numpy(value)
        except Exception as error:  # any object can come back; say which
            return Outcome(message=f"`{name}` returned a {type(value).__name__} as "
                                   f"`{output_name}`, which is not an array ({one_line(error)}).")
        if array.dtype.kind not in "biuf":
            return Outcome(message=f"`{name}` returned a {type(value).__name__} as "
                                   f"`{output_name}`, not an array of real numbers.")
        arrays.append(array)
    return Outcome(outputs=tuple(arrays))


def run_learner_function(exercise: Exercise, function: Any, case: Case,
                         invoke: Callable[[Any, Case], Any] | None = None) -> Outcome:
    """Call the learner's function on a copy of ``case`` and record what happened.

    ``invoke`` replaces the exercise's own (tests pass NumPy models of a build exercise's layer
    through its ``reference_invoke``). Warnings are silenced so a self-check prints one line;
    ``SystemExit`` is caught because a ``sys.exit()`` in an exercise is a wrong answer, not a
    reason to stop checking.
    """
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            returned = (invoke or exercise.invoke)(function, _copied(case))
    except (Exception, SystemExit) as error:
        return Outcome(error_type=type(error).__name__, message=error_line(error))
    return outcome_of_return(exercise, returned)


def describe_case(case: Case) -> str:
    """A short description of the inputs, e.g. ``scores of shape (3, 5), temperature=0.5``."""
    parts = []
    for name, value in case.items():
        array = np.asarray(value)
        parts.append(f"{name} of shape {array.shape}" if array.ndim else f"{name}={value!r}")
    return ", ".join(parts)


def _close(learner: np.ndarray, expected: np.ndarray, exercise: Exercise) -> bool:
    return learner.shape == expected.shape and np.allclose(
        learner.astype(np.float64), expected, rtol=exercise.rtol, atol=exercise.atol,
        equal_nan=True)


def _all_close(learner: Outputs, expected: Outputs, exercise: Exercise) -> bool:
    return len(learner) == len(expected) and all(
        _close(mine, theirs, exercise) for mine, theirs in zip(learner, expected, strict=True))


def _mistake_outputs(exercise: Exercise, mistake: Mistake, case: Case) -> Outputs | None:
    """What the wrong implementation gives on ``case``, or None when it cannot run on it."""
    try:
        with np.errstate(all="ignore"):
            returned = exercise.call_model(mistake.implementation, case)
    except Exception:  # a mistake model that does not apply is simply skipped
        return None
    values = returned if len(exercise.outputs) > 1 else (returned,)
    return tuple(np.asarray(value, dtype=np.float64) for value in values)


def _made_mistake(exercise: Exercise, mistake: Mistake, cases: Sequence[Case],
                  learner: Sequence[Outputs]) -> bool:
    for case, outputs in zip(cases, learner, strict=True):
        wrong = _mistake_outputs(exercise, mistake, case)
        if wrong is None or not _all_close(outputs, wrong, exercise):
            return False
    return True


def _shape_problem(exercise: Exercise, output_name: str, learner: np.ndarray,
                   expected: np.ndarray) -> str | None:
    """The wrong-shape sentence, recognising a transposed result; None when shapes agree."""
    if learner.shape == expected.shape:
        return None
    what = exercise.shape_hints.get(output_name, "")
    what = f" ({what})" if what else ""
    if (learner.ndim >= 2 and learner.shape == expected.swapaxes(-1, -2).shape
            and _close(learner.swapaxes(-1, -2), expected, exercise)):
        return (f"Your `{output_name}` is transposed: expected shape {expected.shape}{what}, "
                f"got {learner.shape} with the right numbers. Hint: which of its axes should "
                f"come last?")
    return (f"Your `{output_name}` has shape {learner.shape}, expected {expected.shape}{what}. "
            f"Hint: print the shape after each step to see where it goes wrong.")


def _first_wrong_case(exercise: Exercise, learner: Sequence[Outputs],
                      references: Sequence[Outputs]) -> int | None:
    for index, (mine, expected) in enumerate(zip(learner, references, strict=True)):
        if not _all_close(mine, expected, exercise):
            return index
    return None


def _call_failure(exercise: Exercise, cases: Sequence[Case],
                  outcomes: Sequence[Outcome]) -> str | None:
    """The reason when some call raised or returned the wrong kind of thing."""
    name = exercise.function_name
    if any(outcome.error_type == "NotImplementedError" for outcome in outcomes):
        return (f"not done yet: `{name}` still raises NotImplementedError. "
                f"Hint: replace `raise NotImplementedError` with your code.")
    for case, outcome in zip(cases, outcomes, strict=True):
        if outcome.error_type:
            message = f": {outcome.message}" if outcome.message else ""
            hint = f" Hint: {exercise.error_hint}" if exercise.error_hint else ""
            return (f"`{name}` raised {outcome.error_type}{message} "
                    f"(called with {exercise.describe_case(case)}).{hint}")
        if outcome.outputs is None:
            return outcome.message
    return None


def diagnose(exercise: Exercise, cases: Sequence[Case], outcomes: Sequence[Outcome],
             references: Sequence[Outputs]) -> Verdict:
    """Compare the learner's outcomes with the reference's outputs, and say what is wrong.

    The diagnosis tries, in order: an exception or a return of the wrong form; a known mistake
    (the learner's outputs equal a wrong implementation's on every case); a wrong or transposed
    shape; NaN or infinity; the exercise's own properties; and finally the largest difference.
    """
    failure = _call_failure(exercise, cases, outcomes)
    if failure:
        return Verdict(False, failure)
    learner = [outcome.outputs for outcome in outcomes]
    if exercise.reference is None:
        return _judge_by_properties(exercise, cases, learner)
    wrong = _first_wrong_case(exercise, learner, references)
    if wrong is None:
        return Verdict(True, f"passed ({len(cases)} test cases).")
    for mistake in exercise.mistakes:
        if _made_mistake(exercise, mistake, cases, learner):
            return Verdict(False, mistake.message)
    case, mine, expected = cases[wrong], learner[wrong], references[wrong]
    for output_name, my_value, expected_value in zip(exercise.outputs, mine, expected,
                                                     strict=True):
        problem = _shape_problem(exercise, output_name, my_value, expected_value)
        if problem:
            return Verdict(False, problem)
    for output_name, my_value, expected_value in zip(exercise.outputs, mine, expected,
                                                     strict=True):
        if np.any(~np.isfinite(my_value) & np.isfinite(expected_value)):
            return Verdict(False, f"There is NaN or infinity in your `{output_name}` where the "
                                  f"answer is finite (with {exercise.describe_case(case)}). "
                                  f"Hint: {exercise.nan_hint}")
    named_mine = dict(zip(exercise.outputs, mine, strict=True))
    named_expected = dict(zip(exercise.outputs, expected, strict=True))
    for diagnosis in exercise.properties:
        problem = diagnosis(case, named_mine, named_expected)
        if problem:
            return Verdict(False, problem)
    return Verdict(False, _largest_difference(exercise, case, mine, expected))


def _judge_by_properties(exercise: Exercise, cases: Sequence[Case],
                         learner: Sequence[Outputs]) -> Verdict:
    """An exercise without a single right output passes when every property holds on every
    case; otherwise the first property that fails says why."""
    for case, outputs in zip(cases, learner, strict=True):
        if len(outputs) != len(exercise.outputs):
            return Verdict(False, f"`{exercise.function_name}` gave {len(outputs)} outputs, "
                                  f"expected {len(exercise.outputs)}.")
        named = dict(zip(exercise.outputs, outputs, strict=True))
        for diagnosis in exercise.properties:
            problem = diagnosis(case, named, {})
            if problem:
                return Verdict(False, problem)
    return Verdict(True, f"passed ({len(cases)} test cases).")


def _largest_difference(exercise: Exercise, case: Case, mine: Outputs,
                        expected: Outputs) -> str:
    """How far the first wrong output (in the exercise's order: the main one first) is off."""
    for output_name, my_value, expected_value in zip(exercise.outputs, mine, expected,
                                                     strict=True):
        if not _close(my_value, expected_value, exercise):
            difference = float(np.max(np.abs(my_value.astype(np.float64) - expected_value),
                                      initial=0.0))
            return (f"Your `{output_name}` is off by up to {difference:.3g} from the right "
                    f"answer (with {exercise.describe_case(case)}). Hint: {exercise.hint}")
    return f"Your outputs differ from the right answer (with {exercise.describe_case(case)})."


# --- Properties that several exercises share -------------------------------------------------

def _axis_words(axis: int, ndim: int) -> str:
    return "the last axis" if axis in (-1, ndim - 1) else f"axis {axis}"


def sums_to_one(output_name: str, over: str, axis_argument: str | None = None) -> Property:
    """A property: ``output_name`` sums to 1 along ``-1`` (or the case's ``axis_argument``).

    Rows that sum to 0 in the reference (e.g. fully masked rows) are not checked. When the
    learner's values sum to 1 along another axis, the message names that axis.
    """

    def check_sums(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
        values, reference = mine[output_name].astype(np.float64), expected[output_name]
        axis = int(case[axis_argument]) if axis_argument else -1
        if values.shape != reference.shape or values.ndim == 0:
            return None
        checked = np.isclose(reference.sum(axis=axis), 1.0)
        sums = values.sum(axis=axis)[checked]
        if np.allclose(sums, 1.0, atol=1e-4):
            return None
        wanted = _axis_words(axis, values.ndim)
        for other in range(values.ndim):
            if other != axis % values.ndim and np.allclose(values.sum(axis=other), 1.0,
                                                           atol=1e-4):
                return (f"Your `{output_name}` sum to 1 along axis {other}, not along {over} "
                        f"({wanted}). Hint: along which axis do your sum and your maximum "
                        f"run?")
        return (f"Your `{output_name}` do not sum to 1 along {over}: the sums go from "
                f"{sums.min():.3g} to {sums.max():.3g}. Hint: what makes a softmax's weights "
                f"sum to 1, and along which axis?")

    return check_sums


def matches_variant(output_name: str, variant: Callable[..., Any], message: str) -> Property:
    """A property: the learner's ``output_name`` equals what ``variant`` gives on the case.

    ``variant`` has the reference's parameters and returns the value of this one output, as a
    common mistake would compute it. It is the per-output counterpart of :class:`Mistake`,
    for exercises with several outputs where one can be right while another is wrong (e.g. a
    token accuracy that counts the padding, beside a right sequence accuracy). It is read on
    the first wrong case only, and never fires where the variant agrees with the reference.
    """

    def check_variant(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
        try:
            with np.errstate(all="ignore"):
                wrong = np.asarray(variant(*_copied(case).values()), dtype=np.float64)
        except Exception:  # a variant that does not apply to this case says nothing
            return None
        value, reference = mine[output_name].astype(np.float64), expected[output_name]
        if (value.shape == wrong.shape == reference.shape
                and np.allclose(value, wrong, rtol=1e-6, atol=1e-9)
                and not np.allclose(wrong, reference, rtol=1e-6, atol=1e-9)):
            return message
        return None

    return check_variant
