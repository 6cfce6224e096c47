"""Lesson 12's self-checks: the references are the library's (and Keras's) functions, and the
diagnoses read from the outputs name mistakes that no registered wrong answer covers. (Every
registered mistake is tested on five seeds in tests/test_checks.py; tests/test_grading.py grades
the solution notebook and its learner copy.)"""

import keras
import numpy as np
from keras import ops

from course_lib import forecasting
from course_lib.attention_maps import attention_rollout, mean_attention_distance
from course_lib.checks import EXERCISES, lesson12, run_check
from course_lib.checks.core import CHECK_SEED
from course_lib.layers import PatchEmbedding


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- The references are the library's functions -----------------------------------------------


def test_patch_tokens_reference_is_a_strided_convolution_plus_class_token_and_positions():
    for case in EXERCISES["12.1"].cases(CHECK_SEED):
        ph, pw, _, depth = case["kernel"].shape
        conv = keras.layers.Conv2D(depth, (ph, pw), strides=(ph, pw))
        conv.build(case["images"].shape)
        conv.set_weights([case["kernel"], case["bias"]])
        convolved = ops.convert_to_numpy(conv(case["images"].astype("float32")))
        tokens = lesson12.patch_tokens(*case.values())
        np.testing.assert_allclose(
            tokens[:, 1:], convolved.reshape(len(convolved), -1, depth) + case["positions"][1:],
            atol=1e-5)
        np.testing.assert_allclose(tokens[:, 0], np.broadcast_to(
            case["class_token"] + case["positions"][0], tokens[:, 0].shape), atol=1e-12)
        if ph == pw:  # the library's layer cuts square patches
            layer = PatchEmbedding(ph, depth)
            layer.copy_weights_from(conv)
            patches = ops.convert_to_numpy(layer(case["images"].astype("float32")))
            np.testing.assert_allclose(tokens[:, 1:], patches + case["positions"][1:],
                                       atol=1e-5)


def test_rollout_heatmap_reference_is_the_librarys_rollout_read_at_the_class_token():
    for case in EXERCISES["12.2"].cases(CHECK_SEED):
        maps, rows, columns, p = case.values()
        rollout = ops.convert_to_numpy(attention_rollout(list(maps)))  # (B, T, T)
        shares = rollout[:, 0, 1:] / rollout[:, 0, 1:].sum(axis=-1, keepdims=True)
        heatmap = lesson12.rollout_heatmap(*case.values())
        for row in range(rows):
            for column in range(columns):
                patch = heatmap[:, row * p:(row + 1) * p, column * p:(column + 1) * p]
                expected = shares[:, row * columns + column, None, None]
                np.testing.assert_allclose(patch, np.broadcast_to(expected, patch.shape),
                                           atol=1e-6)


def test_distance_by_patch_reference_averages_to_the_librarys_mean_attention_distance():
    for case in EXERCISES["12.4"].cases(CHECK_SEED):
        grid = (case["grid_rows"], case["grid_columns"])
        ours = mean_attention_distance(case["weights"], grid, case["patch_size"])
        by_patch = lesson12.attention_distance_by_patch(*case.values())  # (H, rows, columns)
        np.testing.assert_allclose(ops.convert_to_numpy(ours), by_patch.mean(axis=(1, 2)),
                                   rtol=1e-5)


def test_one_step_forecast_windows_are_the_librarys():
    for case in EXERCISES["12.3"].cases(CHECK_SEED):
        series, window, _, first_test_index = case.values()
        windows = forecasting.forecast_windows(series, window, first_test_index)
        one_step = lesson12.forecast_windows(series, window, 1, first_test_index)
        for ours, theirs in zip((windows.train_inputs, windows.train_targets,
                                 windows.test_inputs, windows.test_targets), one_step,
                                strict=True):
            np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


def test_no_training_target_reaches_the_test_period_and_no_test_pair_starts_before_it():
    series = np.arange(40.0)  # value = index
    train_inputs, train_targets, test_inputs, test_targets = lesson12.forecast_windows(
        series, 5, 3, 25)
    assert train_targets.max() == 24 and test_targets[:, 0].min() == 25
    np.testing.assert_array_equal(train_inputs[:, -1] + 1, train_targets[:, 0])
    np.testing.assert_array_equal(test_inputs[:, -1] + 1, test_targets[:, 0])
    assert len(train_targets) + len(test_targets) == 40 - 5 - 3 + 1 - 2  # two straddle


# --- Diagnoses read from the outputs ----------------------------------------------------------


def test_a_class_token_without_its_position_and_more_is_named_by_token_0():
    def patch_tokens(images, kernel, bias, class_token, positions):
        tokens = lesson12.patch_tokens(images, kernel, bias, class_token, positions)
        tokens[:, 0] -= positions[0]  # forgot the class token's position...
        return tokens + 0.1            # ...and more, so no registered mistake matches

    assert reason_for("12.1", patch_tokens).startswith(
        "Your token 0 is not the class token plus positions[0].")


def test_patch_shares_that_do_not_sum_to_one_are_named():
    def rollout_heatmap(attention_maps, grid_rows, grid_columns, patch_size):
        return 2.0 * lesson12.rollout_heatmap(attention_maps, grid_rows, grid_columns,
                                              patch_size)

    assert reason_for("12.2", rollout_heatmap).startswith(
        "Your patch shares sum to 2…2 per image, not 1.")


def test_distances_beyond_the_grid_are_named():
    def attention_distance_by_patch(weights, grid_rows, grid_columns, patch_size):
        right = lesson12.attention_distance_by_patch(weights, grid_rows, grid_columns,
                                                     patch_size)
        return right * 10.0

    assert "lies between 0 and its diagonal" in reason_for("12.4", attention_distance_by_patch)


def test_a_split_that_drops_the_last_test_pair_gets_a_shape_message():
    def forecast_windows(series, window, horizon, first_test_index):
        *rest, test_inputs, test_targets = lesson12.forecast_windows(series, window, horizon,
                                                                     first_test_index)
        return (*rest, test_inputs[1:], test_targets[1:])

    assert reason_for("12.3", forecast_windows).startswith("Your `test_inputs` has shape")


# --- Slips a learner makes, in the learner's own code, named by the check -------------------


def _learners_patch_tokens(kernel_transposed=False, bias_on_class_token=False):
    def patch_tokens(images, kernel, bias, class_token, positions):
        batch, height, width, channels = images.shape
        ph, pw, _, depth = kernel.shape
        grid = images.reshape(batch, height // ph, ph, width // pw, pw, channels)
        patches = grid.transpose(0, 1, 3, 2, 4, 5).reshape(batch, -1, ph * pw * channels)
        if kernel_transposed:
            kernel = kernel.transpose(1, 0, 2, 3)
        embedded = patches @ kernel.reshape(-1, depth) + bias
        token = np.tile(class_token + (bias if bias_on_class_token else 0), (batch, 1, 1))
        return np.concatenate([token, embedded], axis=1) + positions

    return patch_tokens


def test_the_learners_own_patch_tokens_pass():
    assert run_check("12.1", _learners_patch_tokens()).passed


def test_a_kernel_read_with_rows_and_columns_swapped_is_named():
    assert reason_for("12.1", _learners_patch_tokens(kernel_transposed=True)).startswith(
        "You read the kernel with its first two axes swapped")


def test_the_patch_bias_on_the_class_token_is_named():
    assert reason_for("12.1", _learners_patch_tokens(bias_on_class_token=True)).startswith(
        "Your class token has the patch embedding's bias added")


def test_a_training_pair_that_ends_at_the_split_is_named():
    def forecast_windows(series, window, horizon, first_test_index):
        train, test = ([], []), ([], [])
        for start in range(window, len(series) - horizon + 1):
            pair = (series[start - window:start], series[start:start + horizon])
            side = (train if start + horizon - 1 <= first_test_index
                    else test if start >= first_test_index else None)
            if side is not None:
                side[0].append(pair[0])
                side[1].append(pair[1])
        return tuple(np.reshape(part, (len(part), -1)) for part in (*train, *test))

    assert reason_for("12.3", forecast_windows).startswith(
        "Some of your training pairs have their last target at first_test_index")


def test_distances_laid_out_column_by_column_are_named():
    def attention_distance_by_patch(weights, grid_rows, grid_columns, patch_size):
        right = lesson12.attention_distance_by_patch(weights, grid_rows, grid_columns,
                                                     patch_size)
        by_patch = right.reshape(right.shape[0], -1)           # (H, N), row by row
        return by_patch.reshape(-1, grid_columns, grid_rows).transpose(0, 2, 1)

    assert reason_for("12.4", attention_distance_by_patch).startswith(
        "Your distances are right, but laid out on the grid column by column")
