"""Lesson 12's layers and attention readers, on every backend: the patch embedding equals a
strided ``Conv2D``, the class token and the learned positions do what they say, the learned
positions equal keras_hub's, and the rollout and the mean attention distance equal the NumPy
references of the lesson's exercises and have their defining properties."""

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from course_lib.attention_maps import (
    attention_rollout,
    mean_attention_distance,
    patch_distances,
)
from course_lib.checks import lesson12
from course_lib.layers import ClassToken, LearnedPositionEmbedding, PatchEmbedding
from course_lib.numpy_softmax import softmax
from tests.layer_cases import ATOL, assert_differ, random_tensor, randomize_weights, to_numpy

pytestmark = pytest.mark.backends


@pytest.mark.parametrize("image_shape, patch_size, use_bias",
                         [((6, 8, 3), 2, True), ((9, 6, 2), 3, False), ((8, 8, 1), 1, True)])
def test_patch_embedding_equals_a_strided_convolution(image_shape, patch_size, use_bias):
    images = random_tensor((2, *image_shape), 1)
    conv = keras.layers.Conv2D(5, patch_size, strides=patch_size, use_bias=use_bias)
    conv(images)
    randomize_weights(conv, seed=2)
    ours = PatchEmbedding(patch_size, 5, use_bias=use_bias)
    ours.copy_weights_from(conv)
    expected = to_numpy(conv(images)).reshape(2, -1, 5)  # (B, R, C, D) read row by row
    np.testing.assert_allclose(to_numpy(ours(images)), expected, rtol=0, atol=ATOL)
    other = PatchEmbedding(patch_size, 5, use_bias=use_bias)
    other(images)
    randomize_weights(other, seed=3)
    assert_differ(other(images), expected)


def test_patch_n_is_the_projection_of_the_pixels_at_its_grid_place():
    images = random_tensor((1, 6, 4, 2), 4)
    layer = PatchEmbedding(2, 3, use_bias=False)
    tokens = to_numpy(layer(images))
    kernel = to_numpy(layer.kernel).reshape(8, 3)
    columns = 2
    for n in range(6):
        row, column = divmod(n, columns)
        patch = images[0, 2 * row:2 * row + 2, 2 * column:2 * column + 2, :].reshape(-1)
        np.testing.assert_allclose(tokens[0, n], patch @ kernel, rtol=0, atol=ATOL)


def test_class_token_goes_first_and_is_the_same_for_every_image():
    tokens = random_tensor((3, 4, 6), 5)
    layer = ClassToken()
    layer(tokens)
    randomize_weights(layer, seed=6)
    out = to_numpy(layer(tokens))
    assert out.shape == (3, 5, 6)
    np.testing.assert_array_equal(out[:, 1:], tokens)
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(to_numpy(layer.token), (3, 6)))
    assert np.abs(out[:, 0]).max() > 0.1


def test_learned_position_embedding_equals_keras_hub():
    x = random_tensor((2, 5, 6), 7)
    theirs = keras_hub.layers.PositionEmbedding(sequence_length=8)
    theirs(x)
    randomize_weights(theirs, seed=8)
    ours = LearnedPositionEmbedding(8)
    ours.copy_weights_from(theirs)
    for start in (0, 3):
        np.testing.assert_allclose(to_numpy(ours(x, start_index=start)),
                                   to_numpy(theirs(x, start_index=start)), rtol=0, atol=ATOL)
    assert_differ(ours(x), ours(x, start_index=1))


def random_maps(shape, seed):
    return softmax(2.0 * np.random.default_rng(seed).normal(size=shape)).astype("float32")


def numpy_rollout(maps):
    """Abnar & Zuidema's rollout written out: ``Ã_L ⋯ Ã_1``, ``Ã = rownorm(½ Ā + ½ I)``."""
    result = np.eye(maps.shape[-1])
    for block in maps:  # (B, H, T, T), the lowest block first
        mixed = 0.5 * block.mean(axis=1) + 0.5 * np.eye(maps.shape[-1])
        result = (mixed / mixed.sum(axis=-1, keepdims=True)) @ result
    return result


def test_rollout_equals_the_product_written_out_and_rows_sum_to_one():
    maps = random_maps((3, 2, 4, 5, 5), 9)  # (L, B, H, T, T)
    rollout = to_numpy(attention_rollout(list(maps)))
    np.testing.assert_allclose(rollout, numpy_rollout(maps), rtol=0, atol=1e-5)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0, atol=1e-5)
    assert_differ(rollout, numpy_rollout(maps[::-1]))  # the order matters


def test_rollout_without_residual_is_the_product_and_with_full_residual_the_identity():
    maps = random_maps((2, 1, 2, 4, 4), 10)
    plain = to_numpy(attention_rollout(list(maps), residual_weight=0.0))
    np.testing.assert_allclose(plain, maps[1].mean(axis=1) @ maps[0].mean(axis=1), atol=1e-5)
    identity = to_numpy(attention_rollout(list(maps), residual_weight=1.0))
    np.testing.assert_allclose(identity, np.broadcast_to(np.eye(4), (1, 4, 4)), atol=1e-6)


def test_mean_attention_distance_is_the_mean_of_the_exercises_map_by_patch():
    weights = random_maps((2, 3, 1 + 6, 1 + 6), 11)
    ours = to_numpy(mean_attention_distance(weights, (2, 3), patch_size=2))
    by_patch = lesson12.attention_distance_by_patch(weights, 2, 3, 2)  # (H, 2, 3)
    np.testing.assert_allclose(ours, by_patch.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    assert ours.shape == (3,)


def test_a_head_that_reads_only_its_own_patch_has_distance_zero_and_a_uniform_one_the_mean():
    patches = 9
    weights = np.zeros((1, 2, 1 + patches, 1 + patches), "float32")
    weights[0, 0] = np.eye(1 + patches)  # head 0: each token reads itself
    weights[0, 1] = 1.0 / (1 + patches)  # head 1: uniform, class token included
    distances = to_numpy(mean_attention_distance(weights, (3, 3), patch_size=4))
    pairwise = to_numpy(patch_distances((3, 3), patch_size=4))
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[1] == pytest.approx(pairwise.mean(), rel=1e-5)
    assert pairwise[0, 4] == pytest.approx(4 * np.sqrt(2), rel=1e-6)  # corner to centre


def test_the_vit_input_stage_traces_in_a_functional_model():
    images = keras.Input((8, 6, 1))
    tokens = ClassToken()(PatchEmbedding(2, 4)(images))
    tokens = tokens + LearnedPositionEmbedding(13)(tokens)
    assert tuple(tokens.shape) == (None, 13, 4)
    assert ops.convert_to_numpy(keras.Model(images, tokens)(np.zeros((1, 8, 6, 1)))).shape == (
        1, 13, 4)
