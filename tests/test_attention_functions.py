"""``course_lib.attention`` against Keras: the masked softmax, the masks, the score functions and
scaled dot-product attention (``keras.layers.Attention``, ``keras.ops.dot_product_attention``)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.attention import (
    additive_score,
    causal_mask,
    concat_score,
    dot_score,
    general_score,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)
from tests.layer_cases import (
    BATCH,
    assert_differ,
    assert_valid_rows_close,
    padding_mask_for,
    plain_keras_attention,
    random_bool,
    random_tensor,
    to_numpy,
)

pytestmark = pytest.mark.backends

# (Tq, Tk, d, dv): square, more keys than queries, fewer keys; value depth != key depth. The
# sizes repeat across tests: on JAX every new shape costs a compilation.
SHAPES = [(5, 5, 8, 8), (5, 7, 8, 6), (5, 3, 8, 4)]


@pytest.fixture(autouse=True, scope="module")
def _no_flash_attention():
    with plain_keras_attention():
        yield


def _keras_scaled_attention(query, keys, values, query_mask, key_mask, causal, scale):
    """``keras.layers.Attention`` with its scale weight set to ``scale``."""
    layer = keras.layers.Attention(use_scale=True)
    layer.build([query.shape, values.shape, keys.shape])
    layer.scale.assign(scale)
    return layer([query, values, keys], mask=[query_mask, key_mask], use_causal_mask=causal,
                 return_attention_scores=True)


def test_masked_softmax_equals_keras_softmax_with_mask():
    scores = random_tensor((BATCH, 5, 7))
    mask = random_bool((BATCH, 5, 7))
    mask[0, 1] = False  # one fully masked row
    expected = keras.layers.Softmax()(scores, mask=mask)
    assert_valid_rows_close(masked_softmax(scores, mask), expected)


def test_masked_softmax_along_another_axis():
    scores = random_tensor((BATCH, 5, 7))
    mask = random_bool((BATCH, 5, 7))
    along_queries = masked_softmax(scores, mask, axis=-2)
    transposed = masked_softmax(np.swapaxes(scores, 1, 2), np.swapaxes(mask, 1, 2))
    assert_valid_rows_close(along_queries, np.swapaxes(to_numpy(transposed), 1, 2))


def test_masked_softmax_without_mask_is_softmax():
    scores = random_tensor((BATCH, 5, 7))
    assert_valid_rows_close(masked_softmax(scores), ops.softmax(scores, axis=-1))


def test_padding_mask_is_true_at_real_tokens():
    ids = np.array([[5, 3, 0, 0], [7, 0, 2, 1]])
    np.testing.assert_array_equal(to_numpy(padding_mask(ids)), ids != 0)
    np.testing.assert_array_equal(to_numpy(padding_mask(ids, pad_id=7)), ids != 7)


@pytest.mark.parametrize("query_length, key_length", [(4, 4), (3, 5), (5, 3)])
def test_causal_mask_is_top_left_aligned(query_length, key_length):
    expected = np.tril(np.ones((query_length, key_length), bool))
    np.testing.assert_array_equal(to_numpy(causal_mask(query_length, key_length)), expected)


def test_causal_mask_defaults_to_square():
    np.testing.assert_array_equal(to_numpy(causal_mask(3)), np.tril(np.ones((3, 3), bool)))


def test_dot_and_general_scores_match_their_formulas():
    query, keys = random_tensor((BATCH, 5, 8), 1), random_tensor((BATCH, 7, 8), 2)
    weight = random_tensor((8, 8), 3)
    assert_valid_rows_close(dot_score(query, keys), np.einsum("bqd,bkd->bqk", query, keys))
    assert_valid_rows_close(general_score(query, keys, weight),
                            np.einsum("bqd,de,bke->bqk", query, weight, keys))


def test_concat_score_is_additive_score_with_split_weight():
    query, keys = random_tensor((BATCH, 5, 6), 1), random_tensor((BATCH, 7, 8), 2)
    weight, vector = random_tensor((14, 4), 3), random_tensor((4,), 4)
    expected = np.einsum(
        "bqku,u->bqk",
        np.tanh((query @ weight[:6])[:, :, None, :] + (keys @ weight[6:])[:, None, :, :]), vector)
    assert_valid_rows_close(concat_score(query, keys, weight, vector), expected)
    assert_valid_rows_close(additive_score(query, keys, weight[:6], weight[6:], vector), expected)


@pytest.mark.parametrize("causal", [False, True], ids=["padding", "causal+padding"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_scaled_dot_product_attention_equals_keras_attention(shape, causal):
    query_length, key_length, depth, value_depth = shape
    query = random_tensor((BATCH, query_length, depth), 1)
    keys = random_tensor((BATCH, key_length, depth), 2)
    values = random_tensor((BATCH, key_length, value_depth), 3)
    query_mask, key_mask = padding_mask_for(query_length), padding_mask_for(key_length)

    output, weights = scaled_dot_product_attention(query, keys, values,
                                                   mask=key_mask[:, None, :], causal=causal)
    expected, expected_weights = _keras_scaled_attention(
        query, keys, values, query_mask, key_mask, causal, scale=1 / math.sqrt(depth))
    assert_valid_rows_close(output, expected, query_mask)
    assert_valid_rows_close(weights, expected_weights, query_mask)


def test_unscaled_keras_attention_differs():
    """The comparison above is sensitive: without 1/sqrt(d), Keras's output is different."""
    query, keys, values = (random_tensor((BATCH, 5, 8), seed) for seed in (1, 2, 3))
    output, _ = scaled_dot_product_attention(query, keys, values)
    expected, _ = _keras_scaled_attention(query, keys, values, None, None, False, scale=1.0)
    assert_differ(output, expected)


@pytest.mark.parametrize("causal", [False, True], ids=["padding", "causal+padding"])
@pytest.mark.parametrize("query_length, key_length", [(5, 5), (5, 7), (5, 3)])
def test_scaled_dot_product_attention_equals_keras_ops(query_length, key_length, causal):
    """``keras.ops.dot_product_attention`` takes ``(B, T, heads, d)``; ours takes
    ``(B, heads, T, d)``. Value depth equals key depth: Keras 3.15 on JAX rejects any other."""
    heads, depth = 2, 4
    query = random_tensor((BATCH, query_length, heads, depth), 1)
    keys = random_tensor((BATCH, key_length, heads, depth), 2)
    values = random_tensor((BATCH, key_length, heads, depth), 3)
    key_mask = padding_mask_for(key_length)[:, None, None, :]  # (B, heads, Tq, Tk)

    expected = ops.dot_product_attention(query, keys, values, mask=key_mask, is_causal=causal)
    output, _ = scaled_dot_product_attention(*(np.swapaxes(x, 1, 2) for x in (query, keys, values)),
                                             mask=key_mask, causal=causal)
    assert_valid_rows_close(np.swapaxes(to_numpy(output), 1, 2), expected)


def test_scaled_dot_product_attention_accepts_unbatched_inputs():
    query, keys, values = random_tensor((5, 8), 1), random_tensor((7, 8), 2), random_tensor((7, 6))
    output, weights = scaled_dot_product_attention(query, keys, values)
    batched, batched_weights = scaled_dot_product_attention(query[None], keys[None],
                                                            values[None])
    assert_valid_rows_close(output, to_numpy(batched)[0])
    assert_valid_rows_close(weights, to_numpy(batched_weights)[0])
