"""Lesson 06's self-checks name each mistake.

Every wrong function below is a mistake a learner makes, written as a learner would write it; its
test asserts the sentence the check prints. (tests/test_checks.py holds what every exercise must
satisfy; tests/test_grading.py grades the solution notebook and its learner copy.)
"""

import numpy as np
import pytest

from course_lib.checks import EXERCISES, lesson06, run_check
from course_lib.checks.core import CHECK_SEED, Outcome, diagnose
from tests.exercise_sources import solution_object


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def test_references_agree_with_the_layer_and_with_each_other():
    from keras import ops

    from course_lib.layers import SinusoidalPositionEncoding

    layer = SinusoidalPositionEncoding(max_wavelength=100)
    ours = ops.convert_to_numpy(layer(np.zeros((1, 40, 16), "float32"), start_index=7))[0]
    encoding = lesson06.sinusoidal_encoding(np.arange(7, 47), 16, 100)
    np.testing.assert_allclose(ours, encoding, rtol=0, atol=1e-5)
    for offset in (1, 5, -3):
        rotation = lesson06.rotation_for_offset(offset, 16, 100)
        shifted = lesson06.sinusoidal_encoding(np.arange(10, 30) + offset, 16, 100)
        np.testing.assert_allclose(encoding[3:23] @ rotation.T, shifted, atol=1e-12)
    original = np.arange(24.0).reshape(2, 3, 4)
    permutation = np.array([2, 0, 1])
    assert np.array_equal(lesson06.undo_permutation(original[:, permutation], permutation),
                          original)


# --- 06.1 sinusoidal_encoding -----------------------------------------------------------------


def angles_of(positions, depth, max_wavelength, pair=True):
    feature = np.arange(depth)
    exponent = 2 * (feature // 2) / depth if pair else feature / depth
    return np.asarray(positions, dtype=float)[:, None] / max_wavelength ** exponent[None, :]


def interleave(angles, first=np.sin, second=np.cos):
    return np.where(np.arange(angles.shape[1]) % 2 == 0, first(angles), second(angles))


def test_encoding_with_sin_and_cos_swapped():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, max_wavelength), np.cos, np.sin)

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your sines and cosines are swapped")


def test_encoding_concatenated_instead_of_interleaved():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        angles = angles_of(positions, depth, max_wavelength)[:, ::2]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    assert "(concatenated); this encoding interleaves them" in reason_for(
        "06.1", sinusoidal_encoding)


def test_encoding_with_exponent_i_over_d():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        i = np.arange(depth) // 2
        angles = np.asarray(positions)[:, None] / max_wavelength ** (i / depth)
        return interleave(angles)

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your exponent is i/depth for pair i; it is 2i/depth.")


def test_encoding_with_one_frequency_per_feature():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, max_wavelength, pair=False))

    assert "its own frequency 1/w**(j/depth)" in reason_for("06.1", sinusoidal_encoding)


def test_encoding_multiplying_by_the_wavelength():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        exponent = 2 * (np.arange(depth) // 2) / depth
        return interleave(np.asarray(positions)[:, None] * max_wavelength ** exponent)

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "You multiply the positions by max_wavelength**(2i/depth)")


def test_encoding_with_positions_from_one():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(np.asarray(positions) + 1, depth, max_wavelength))

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your positions are off by one")


def test_encoding_ignoring_the_positions_given():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(np.arange(len(positions)), depth, max_wavelength))

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "You numbered the rows 0, 1, 2, … instead of using the `positions`")


def test_encoding_ignoring_max_wavelength():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, 10000))

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your encoding ignores `max_wavelength`")


def test_encoding_transposed():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, max_wavelength)).T

    reason = reason_for("06.1", sinusoidal_encoding)
    assert reason.startswith("Your `encoding` is transposed: expected shape (6, 8)")
    assert "one row per position, one column per feature" in reason


def test_encoding_of_the_angles_themselves():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return angles_of(positions, depth, max_wavelength)  # forgot sin and cos

    assert "every entry is a sine or a cosine, between -1 and 1" in reason_for(
        "06.1", sinusoidal_encoding)


def test_encoding_with_a_phase_added():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, max_wavelength) + 0.5)

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your row for position 0 is [0.479, 0.878, 0.479, 0.878]…, but every angle is 0")


def test_encoding_for_a_column_of_positions_only():
    def sinusoidal_encoding(positions, depth, max_wavelength=10000):
        return interleave(angles_of(positions, depth, max_wavelength))[:, :1]

    assert reason_for("06.1", sinusoidal_encoding).startswith(
        "Your `encoding` has shape (6, 1), expected (6, 8)")


# --- 06.2 undo_permutation --------------------------------------------------------------------


def test_permutation_returned_unchanged():
    def undo_permutation(permuted, permutation):
        return permuted

    assert reason_for("06.2", undo_permutation).startswith("You returned `permuted` unchanged.")


def test_permutation_applied_twice():
    def undo_permutation(permuted, permutation):
        return permuted[..., permutation, :]

    assert reason_for("06.2", undo_permutation).startswith(
        "You applied the permutation a second time instead of undoing it.")


def test_permutation_undone_with_an_assignment_the_wrong_way_round():
    def undo_permutation(permuted, permutation):
        original = np.empty_like(permuted)
        original[..., np.argsort(permutation), :] = permuted  # that is permuted[..., perm, :]
        return original

    assert reason_for("06.2", undo_permutation).startswith(
        "You applied the permutation a second time")


def test_permutation_on_the_feature_axis():
    def undo_permutation(permuted, permutation):
        return np.take(permuted, np.argsort(permutation), axis=-1)

    assert reason_for("06.2", undo_permutation).startswith(
        "You reordered the last axis, the features; the tokens are on axis -2.")


def test_permutation_on_axis_zero():
    def undo_permutation(permuted, permutation):
        return permuted[np.argsort(permutation)]

    assert reason_for("06.2", undo_permutation).startswith(
        "You reordered axis 0, which holds the tokens of a single sequence")


def test_permutation_on_axis_zero_with_a_smaller_batch_is_an_index_error():
    """Where the batch is smaller than the sequence, axis 0 cannot even be indexed."""
    exercise = EXERCISES["06.2"]
    from course_lib.checks.core import diagnose, run_learner_function

    cases = [{"permuted": np.zeros((2, 5, 6)), "permutation": np.array([1, 2, 3, 4, 0])}]
    outcomes = [run_learner_function(exercise, lambda permuted, permutation:
                                     permuted[np.argsort(permutation)], case) for case in cases]
    references = [exercise.reference_outputs(case) for case in cases]
    reason = diagnose(exercise, cases, outcomes, references).reason
    assert reason.startswith("`undo_permutation` raised IndexError")
    assert "Hint: the tokens are on axis -2" in reason


def test_permutation_in_a_wrong_order_names_both_orders():
    def undo_permutation(permuted, permutation):
        return permuted[..., np.roll(np.argsort(permutation), 1), :]

    reason = reason_for("06.2", undo_permutation)
    assert reason.startswith("Your tokens come back in the order [")
    assert "not in the original order [" in reason


def test_permutation_that_changes_the_tokens():
    def undo_permutation(permuted, permutation):
        return permuted[..., np.argsort(permutation), :] * 2

    assert reason_for("06.2", undo_permutation).startswith(
        "Your result is not a reordering of the tokens of `permuted`")


# --- 06.3 rotation_for_offset -----------------------------------------------------------------


def blocks(offset, depth, max_wavelength, block, exponent=2):
    rotation = np.zeros((depth, depth))
    for i in range(depth // 2):
        angle = offset / max_wavelength ** (exponent * i / depth)
        rotation[2 * i:2 * i + 2, 2 * i:2 * i + 2] = block(np.cos(angle), np.sin(angle))
    return rotation


def test_rotation_textbook_matrix_turns_backwards():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, max_wavelength, lambda c, s: [[c, -s], [s, c]])

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your matrix shifts backwards: R @ PE(p) = PE(p - offset).")


def test_rotation_with_one_angle_for_every_pair():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, max_wavelength=1.0,
                      block=lambda c, s: [[c, s], [-s, c]])  # 1 ** anything = 1

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Every pair of your matrix turns by the same angle, `offset` radians")


def test_rotation_with_exponent_i_over_d():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, max_wavelength, lambda c, s: [[c, s], [-s, c]], exponent=1)

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your angles use the exponent i/depth for pair i")


def test_rotation_for_the_concatenated_layout():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        half = depth // 2
        rotation = np.zeros((depth, depth))
        for i in range(half):
            angle = offset / max_wavelength ** (2 * i / depth)
            rotation[[i, i, i + half, i + half], [i, i + half, i, i + half]] = [
                np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)]
        return rotation

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your blocks pair feature i with feature i + depth/2 (the concatenated layout)")


def test_rotation_ignoring_max_wavelength():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, 10000, lambda c, s: [[c, s], [-s, c]])

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your matrix ignores `max_wavelength`")


def test_rotation_that_scales_instead_of_turning():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, max_wavelength, lambda c, s: [[c, 0], [0, c]])

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your matrix is not a rotation (R @ R.T is not the identity)")


def test_rotation_of_the_wrong_size():
    def rotation_for_offset(offset, depth, max_wavelength=10000):
        return blocks(offset, depth, max_wavelength, lambda c, s: [[c, s], [-s, c]])[::2, ::2]

    assert reason_for("06.3", rotation_for_offset).startswith(
        "Your `rotation` has shape (2, 2), expected (4, 4) (depth rows and depth columns)")


# --- The grader -------------------------------------------------------------------------------


# --- 06.4 build_order_classifier (build: trains) ------------------------------------------------
# Each run trains a small model (about 8 s of one core): a few seeds, the solution and the two
# usual slips, no positions and padding read as tokens.


def classifier(*replacements):
    return solution_object("06.4", "build_order_classifier", *replacements)


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1])
def test_the_solution_classifier_reaches_the_bar_on_every_seed(seed):
    verdict = run_check("06.4", classifier(), seed=seed)
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize("seed", [CHECK_SEED, 0])
def test_a_classifier_without_positions_is_named_a_bag_of_words_on_every_seed(seed):
    verdict = run_check("06.4", classifier(("x = x + SinusoidalPositionEncoding()(x)", "pass")),
                        seed=seed)
    assert not verdict.passed and verdict.reason.startswith("Your model scores 50.0% on pairs")


def test_a_classifier_that_pools_the_padding_is_named():
    verdict = run_check("06.4", classifier(("pooled = ops.sum(x * share, axis=1) / ops.sum("
                                            "share, axis=1)", "pooled = ops.mean(x, axis=1)")))
    assert not verdict.passed
    assert verdict.reason.startswith("Your model's output changes when the same sequences come "
                                     "with more padding")


def test_the_order_judgement_reads_the_arrays_alone():
    """The grader's path, on made-up outputs: the labels themselves pass; equal outputs for each
    swapped pair score exactly 50 %; outputs that are not probabilities are named."""
    exercise = EXERCISES["06.4"]
    case = exercise.cases(CHECK_SEED)[0]
    _, (_, labels) = lesson06.order_data(case["seed"])
    perfect = labels.astype(float)
    assert diagnose(exercise, [case], [Outcome(outputs=(perfect, perfect))], [None]).passed
    blind = np.repeat(np.linspace(0.2, 0.8, len(labels) // 2), 2)
    verdict = diagnose(exercise, [case], [Outcome(outputs=(blind, blind))], [None])
    assert verdict.reason.startswith("Your model scores 50.0% on pairs")
    logits = 3 * (perfect - 0.5)
    verdict = diagnose(exercise, [case], [Outcome(outputs=(logits, logits))], [None])
    assert verdict.reason.startswith("Your model's outputs are not probabilities")
