"""The learners' self-checks: each common mistake is recognised and named, in one line."""

import re
import subprocess
import sys

import numpy as np
import pytest

import course_lib.checks as checks
from course_lib.checks import EXERCISES, lesson02, run_check
from course_lib.checks.core import CHECK_SEED, Outcome, diagnose
from tests.exercise_sources import solution_object

softmax = lesson02.softmax_with_temperature
lookup = lesson02.attention_lookup


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


WITH_REFERENCE = sorted(e.exercise_id for e in EXERCISES.values() if e.reference is not None)


@pytest.mark.parametrize("exercise_id", WITH_REFERENCE)
def test_every_reference_passes_its_own_check(exercise_id):
    """The reference, called as the check calls it (a build exercise's NumPy reference is called
    positionally, not built as a layer)."""
    exercise = EXERCISES[exercise_id]
    verdict = run_check(exercise_id, exercise.reference, invoke=exercise.call_model)
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_cases_depend_on_the_seed_only(exercise_id):
    exercise = EXERCISES[exercise_id]
    first, again, other = exercise.cases(CHECK_SEED), exercise.cases(CHECK_SEED), exercise.cases(0)

    def arrays(cases):
        return [np.asarray(value) for case in cases for value in case.values()]

    assert all(np.array_equal(a, b) for a, b in zip(arrays(first), arrays(again), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(arrays(first), arrays(other),
                                                        strict=True))


def test_the_checks_load_no_backend():
    """Every graded kernel imports the checks: they must not make a NumPy-only lesson (02) pay
    for loading Keras and TensorFlow."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, course_lib.checks; "
         "print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("lesson", sorted({exercise.lesson for exercise in EXERCISES.values()}))
def test_each_lesson_registers_two_to_four_exercises_numbered_in_order(lesson):
    ids = [exercise_id for exercise_id in EXERCISES if exercise_id[:2] == lesson]
    assert 2 <= len(ids) <= 4
    assert sorted(ids) == [f"{lesson}.{number}" for number in range(1, len(ids) + 1)]


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1, 2, 3])
@pytest.mark.parametrize("exercise_id", WITH_REFERENCE)
def test_each_mistake_is_named_by_its_own_message(exercise_id, seed):
    """Every registered mistake differs from the answer and is not shadowed by an earlier one,
    on the self-check's inputs and on other (grading) seeds."""
    exercise = EXERCISES[exercise_id]
    assert run_check(exercise_id, exercise.reference, seed=seed, invoke=exercise.call_model).passed
    for mistake in exercise.mistakes:
        verdict = run_check(exercise_id, mistake.implementation, seed=seed,
                            invoke=exercise.call_model)
        assert not verdict.passed and verdict.reason == mistake.message


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_messages_are_one_sentence_and_a_hint(exercise_id):
    for mistake in EXERCISES[exercise_id].mistakes:
        assert "\n" not in mistake.message and " Hint: " in mistake.message, mistake.message


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_not_implemented_is_not_done_yet(exercise_id):
    def unfinished(*arguments, **keywords):  # a function, or a class being built
        raise NotImplementedError

    name = EXERCISES[exercise_id].function_name
    assert reason_for(exercise_id, unfinished) == (
        f"not done yet: `{name}` still raises NotImplementedError. Hint: replace "
        f"`raise NotImplementedError` with your code.")


def test_another_exception_is_named_with_its_message_and_a_hint():
    def attention_lookup(query, keys, values, temperature=1.0):
        weights = softmax(query @ keys.T / np.sqrt(query.shape[-1]), temperature)
        return weights @ values, weights  # right for a matrix, wrong for a batch

    reason = reason_for("02.3", attention_lookup)
    assert reason.startswith("`attention_lookup` raised ValueError: matmul")
    assert "called with query of shape (2, 1, 16)" in reason
    assert reason.endswith("for every query to meet every key of its own batch entry?")


def test_softmax_over_the_wrong_axis():
    def softmax_with_temperature(scores, temperature, axis=-1):
        exponentials = np.exp(scores / temperature)
        return exponentials / exponentials.sum(axis=0, keepdims=True)

    reason = reason_for("02.1", softmax_with_temperature)
    assert reason.startswith("Your `weights` sum to 1 along axis 0, not along the axis you "
                             "were given (the last axis)")
    assert "along which axis do your sum and your maximum run?" in reason


def test_attention_softmax_over_the_queries():
    def attention_lookup(query, keys, values, temperature=1.0):
        scores = query @ np.swapaxes(keys, -1, -2) / np.sqrt(query.shape[-1])
        weights = softmax(scores, temperature, axis=-2)
        return weights @ values, weights

    assert "sum to 1 along axis 0, not along the keys" in reason_for("02.3", attention_lookup)


def test_weights_not_summing_to_one():
    def softmax_with_temperature(scores, temperature, axis=-1):
        scaled = scores / temperature
        return np.exp(scaled - scaled.max(axis=axis, keepdims=True))  # never normalised

    reason = reason_for("02.1", softmax_with_temperature)
    assert reason.startswith("Your `weights` do not sum to 1 along the axis you were given")


def test_missing_scaling_by_the_square_root_of_d():
    def attention_lookup(query, keys, values, temperature=1.0):
        weights = softmax(query @ np.swapaxes(keys, -1, -2), temperature)
        return weights @ values, weights

    assert "missing the 1/√d scaling" in reason_for("02.3", attention_lookup)


def test_dividing_by_d_instead_of_its_square_root():
    def attention_lookup(query, keys, values, temperature=1.0):
        weights = softmax(query @ np.swapaxes(keys, -1, -2) / query.shape[-1], temperature)
        return weights @ values, weights

    assert "by d instead of √d" in reason_for("02.3", attention_lookup)


def test_mask_of_the_opposite_polarity():
    def masked_softmax(scores, mask):
        return lesson02.masked_softmax(scores, ~np.asarray(mask))

    assert "mask has the opposite polarity" in reason_for("02.2", masked_softmax)


def test_fully_masked_row_made_uniform_by_a_large_negative_number():
    def masked_softmax(scores, mask):
        return softmax(np.where(mask, scores, -1e9), 1.0)

    reason = reason_for("02.2", masked_softmax)
    assert "should get all-zero weights" in reason and "a uniform row" in reason


def test_fully_masked_row_giving_nan():
    def masked_softmax(scores, mask):
        exponentials = np.where(mask, np.exp(scores - scores.max(-1, keepdims=True)), 0.0)
        return exponentials / exponentials.sum(-1, keepdims=True)

    reason = reason_for("02.2", masked_softmax)
    assert reason.startswith("There is NaN or infinity in your `weights`")
    assert "all masked gives 0/0" in reason


def test_overflowing_softmax_without_the_max_shift():
    def softmax_with_temperature(scores, temperature, axis=-1):
        exponentials = np.exp(scores / temperature)
        return exponentials / exponentials.sum(axis=axis, keepdims=True)

    assert "which c keeps every exponent at most 0?" in reason_for("02.1",
                                                                   softmax_with_temperature)


def test_transposed_output():
    def attention_lookup(query, keys, values, temperature=1.0):
        output, weights = lookup(query, keys, values, temperature)
        return output, np.swapaxes(weights, -1, -2)

    reason = reason_for("02.3", attention_lookup)
    assert reason.startswith("Your `weights` is transposed: expected shape (3, 5)")
    assert "got (5, 3)" in reason


def test_wrong_shape_names_both_shapes():
    def attention_lookup(query, keys, values, temperature=1.0):
        output, weights = lookup(query, keys, values, temperature)
        return output.sum(axis=-1), weights

    reason = reason_for("02.3", attention_lookup)
    assert reason.startswith("Your `output` has shape (3,), expected (3, 2)")


def test_single_value_instead_of_a_pair():
    def attention_lookup(query, keys, values, temperature=1.0):
        return lookup(query, keys, values, temperature)[0]

    assert "should return a tuple (output, weights)" in reason_for("02.3", attention_lookup)


def test_temperature_multiplied_instead_of_divided():
    def softmax_with_temperature(scores, temperature, axis=-1):
        return softmax(scores * temperature, 1.0, axis)

    assert reason_for("02.1", softmax_with_temperature).startswith("You multiply the scores")


def regressor(*replacements):
    return solution_object("02.4", "AttentionRegressor", *replacements,
                           extra_cells=("02.1", "02.2"))


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1, 2])
def test_the_solution_regressor_passes_on_every_seed(seed):
    verdict = run_check("02.4", regressor(), seed=seed)
    assert verdict.passed, verdict.reason


LEAVE_ONE_OUT = "np.fill_diagonal(distances, np.inf)"
REGRESSOR_SLIPS = {
    "no leave-one-out": ((LEAVE_ONE_OUT, "pass"),
                         "as each point copies its own target (a leak)"),
    "own weight zeroed after the softmax": (
        (LEAVE_ONE_OUT, "others = 1 - np.eye(len(self.x))"),
        "removes each point's own weight after the softmax"),
    "coarse search": (("grid = np.linspace(np.log(1e-3), np.log(1e3), 1001)",
                       "grid = np.linspace(np.log(1e-3), np.log(1e3), 5)"),
                      "the fit must come within 0.1% of it"),
    "farthest points": (("softmax_with_temperature(-distances, self.temperature)",
                         "softmax_with_temperature(distances, self.temperature)"),
                        "Your weights favour the farthest training points"),
    "temperature multiplied": (("softmax_with_temperature(-distances, self.temperature)",
                                "softmax_with_temperature(-distances * self.temperature, 1.0)"),
                               "multiply the squared distances by τ"),
}


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1, 2])
@pytest.mark.parametrize("slip", sorted(REGRESSOR_SLIPS))
def test_a_slip_in_the_regressor_is_named_on_every_seed(slip, seed):
    replacement, message = REGRESSOR_SLIPS[slip]
    if slip == "coarse search":
        replacement = (replacement, ("for _ in range(50):", "for _ in range(0):"))
    elif slip == "own weight zeroed after the softmax":
        replacement = (replacement, ("weights = softmax_with_temperature(-distances, np.exp("
                                     "log_temperature))", "weights = softmax_with_temperature("
                                     "-distances, np.exp(log_temperature)) * others"))
    else:
        replacement = (replacement,)
    verdict = run_check("02.4", regressor(*replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_the_regressor_message_shows_enough_digits_to_see_the_difference():
    """The docstring's precision (0.1 % of the smallest error) is the check's; the message
    shows both errors to six significant digits."""
    verdict = run_check("02.4", regressor(
        ("self.temperature = float(np.exp((low + high) / 2))",
         "self.temperature = float(np.exp((low + high) / 2)) * 1.3")))
    assert not verdict.passed
    assert "the fit must come within 0.1% of it" in verdict.reason
    numbers = re.findall(r"error of ([0-9.e-]+); the smallest in the range is ([0-9.e-]+)",
                         verdict.reason)
    assert numbers and all(len(value.replace(".", "").lstrip("0")) >= 5 for value in numbers[0])
    assert float(numbers[0][0]) != float(numbers[0][1])


def test_diagnosis_works_on_returned_arrays_alone():
    """The grader's path: no learner function, only the outputs that came back."""
    exercise = EXERCISES["02.3"]
    cases = exercise.cases(7)
    references = [exercise.reference_outputs(case) for case in cases]
    outcomes = [Outcome(outputs=(output, np.swapaxes(weights, -1, -2)))
                for output, weights in references]
    verdict = diagnose(exercise, cases, outcomes, references)
    assert not verdict.passed and "transposed" in verdict.reason
    right = [Outcome(outputs=outputs) for outputs in references]
    assert diagnose(exercise, cases, right, references).passed


def test_a_check_prints_one_line_and_never_raises(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)

    def masked_softmax(scores, mask):
        raise NotImplementedError

    checks.check_masked_softmax(masked_softmax)
    checks.check_masked_softmax("not a function")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("02.2 masked_softmax: not done yet: `masked_softmax` still raises "
                        "NotImplementedError. Hint: replace `raise NotImplementedError` with "
                        "your code.")
    assert lines[1].startswith("02.2 masked_softmax: expected your function")
    assert len(lines) == 2


@pytest.mark.parametrize("execution", ["autograde", "validate"])
def test_under_nbgrader_a_failed_check_raises_its_line(capsys, monkeypatch, execution):
    """nbgrader scores a grade cell by whether it raises; it sets NBGRADER_EXECUTION."""
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)

    def masked_softmax(scores, mask):
        raise NotImplementedError

    with pytest.raises(AssertionError, match=r"^02\.2 masked_softmax: not done yet: "):
        checks.check_masked_softmax(masked_softmax)
    checks.check_masked_softmax(lesson02.masked_softmax)
    assert capsys.readouterr().out.splitlines()[-1].startswith("02.2 masked_softmax: passed")


def test_named_checks_exist_for_every_exercise_and_nothing_else():
    for exercise in EXERCISES.values():
        assert callable(getattr(checks, f"check_{exercise.function_name}"))
        assert f"check_{exercise.function_name}" in dir(checks)
    with pytest.raises(AttributeError):
        checks.check_no_such_exercise  # noqa: B018 - the attribute access is the test
