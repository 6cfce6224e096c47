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
        p, _, _, depth = case["kernel"].shape
        conv = keras.layers.Conv2D(depth, p, strides=p)
        conv.build(case["images"].shape)
        conv.set_weights([case["kernel"], case["bias"]])
        convolved = ops.convert_to_numpy(conv(case["images"].astype("float32")))
        layer = PatchEmbedding(p, depth)
        layer.copy_weights_from(conv)
        patches = ops.convert_to_numpy(layer(case["images"].astype("float32")))
        np.testing.assert_allclose(patches, convolved.reshape(len(convolved), -1, depth),
                                   atol=1e-5)
        tokens = lesson12.patch_tokens(*case.values())
        np.testing.assert_allclose(tokens[:, 1:], patches + case["positions"][1:], atol=1e-5)
        np.testing.assert_allclose(tokens[:, 0], np.broadcast_to(
            case["class_token"] + case["positions"][0], tokens[:, 0].shape), atol=1e-12)


def test_rollout_and_distance_references_are_the_librarys():
    for case in EXERCISES["12.2"].cases(CHECK_SEED):
        maps = case["attention_maps"]
        np.testing.assert_allclose(ops.convert_to_numpy(attention_rollout(list(maps))),
                                   lesson12.attention_rollout(maps), atol=1e-5)
    for case in EXERCISES["12.4"].cases(CHECK_SEED):
        grid = (case["grid_rows"], case["grid_columns"])
        ours = mean_attention_distance(case["weights"], grid, case["patch_size"])
        np.testing.assert_allclose(ops.convert_to_numpy(ours),
                                   lesson12.mean_attention_distance(*case.values()), rtol=1e-5)


def test_forecast_windows_reference_is_the_librarys():
    for case in EXERCISES["12.3"].cases(CHECK_SEED):
        windows = forecasting.forecast_windows(*case.values())
        for ours, theirs in zip((windows.train_inputs, windows.train_targets,
                                 windows.test_inputs, windows.test_targets),
                                lesson12.forecast_windows(*case.values()), strict=True):
            np.testing.assert_array_equal(ours, theirs)


# --- Diagnoses read from the outputs ----------------------------------------------------------


def test_a_class_token_without_its_position_and_without_bias_is_named_by_token_0():
    def patch_tokens(images, kernel, bias, class_token, positions):
        tokens = lesson12.patch_tokens(images, kernel, bias, class_token, positions)
        tokens[:, 0] -= positions[0]  # forgot the class token's position...
        return tokens + 0.1            # ...and more, so no registered mistake matches

    assert reason_for("12.1", patch_tokens).startswith(
        "Your token 0 is not the class token plus positions[0].")


def test_rollout_rows_that_do_not_sum_to_one_are_named():
    def attention_rollout(attention_maps):
        maps = np.asarray(attention_maps)
        rollout = None
        for block in maps:
            mixed = block.mean(axis=1) + np.eye(maps.shape[-1])   # never re-normalised
            rollout = mixed if rollout is None else mixed @ rollout
        return rollout

    assert reason_for("12.2", attention_rollout).startswith(
        "Your `rollout` do not sum to 1 along the input tokens")


def test_distances_beyond_the_grid_are_named():
    def mean_attention_distance(weights, grid_rows, grid_columns, patch_size):
        right = lesson12.mean_attention_distance(weights, grid_rows, grid_columns, patch_size)
        return right * 10.0

    assert "lies between 0 and its diagonal" in reason_for("12.4", mean_attention_distance)


def test_a_window_split_that_drops_the_last_test_pair_gets_a_shape_message():
    def forecast_windows(series, window, first_test_index):
        *rest, test_inputs, test_targets = lesson12.forecast_windows(series, window,
                                                                     first_test_index)
        return (*rest, test_inputs[:-1], test_targets[:-1])

    assert reason_for("12.3", forecast_windows).startswith("Your `test_inputs` has shape")
