"""Properties every attention in the library must have, whatever its score: weights are a
distribution over the keys, padding is ignored, a fully masked query gets nothing (and no NaN),
causal masks do not leak the future, and dropout acts in training only."""

import functools

import numpy as np
import pytest

from course_lib.attention import masked_softmax, scaled_dot_product_attention
from course_lib.layers import (
    BahdanauAttention,
    LuongAttention,
    MultiHeadAttention,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from tests.layer_cases import (
    ATOL,
    BATCH,
    assert_differ,
    assert_valid_rows_close,
    built_with_random_weights,
    padding_mask_for,
    random_tensor,
    to_numpy,
)

pytestmark = pytest.mark.backends

QUERY_LENGTH, KEY_LENGTH, DEPTH = 5, 7, 8
_X = random_tensor((BATCH, QUERY_LENGTH, DEPTH))  # a sequence that builds and feeds layers


def _query_values_attention(make_layer):
    def attend(query, values, key_mask):
        layer = built_with_random_weights(make_layer(), query, values)
        return layer(query, values, mask=key_mask)

    return attend


def _multi_head_attention(mask_as):
    """Ours, the key padding given as ``value_mask`` (B, Tk) or ``attention_mask`` (B, 1, Tk)."""
    def attend(query, values, key_mask):
        layer = built_with_random_weights(MultiHeadAttention(2, 4), query, values)
        mask = key_mask if mask_as == "value_mask" else key_mask[:, None, :]
        return layer(query, values, return_attention_scores=True, **{mask_as: mask})

    return attend


# id → attend(query (B, Tq, d), values (B, Tk, d), key_mask (B, Tk)) → (output, weights)
# with weights (B, [heads,] Tq, Tk).
ATTENTIONS = {
    "scaled_dot_product": lambda query, values, key_mask: scaled_dot_product_attention(
        query, values, values, mask=key_mask[:, None, :]),
    "bahdanau": _query_values_attention(lambda: BahdanauAttention(4)),
    "luong_dot": _query_values_attention(lambda: LuongAttention("dot")),
    "luong_general": _query_values_attention(lambda: LuongAttention("general")),
    "luong_scaled_dot": _query_values_attention(lambda: LuongAttention("dot", scaled=True)),
    "luong_concat": _query_values_attention(lambda: LuongAttention("concat", units=4)),
    "multi_head_value_mask": _multi_head_attention("value_mask"),
    "multi_head_attention_mask": _multi_head_attention("attention_mask"),
}
EACH_ATTENTION = pytest.mark.parametrize("attention", ATTENTIONS)


def _attend(attention, key_mask, values=None):
    query = random_tensor((BATCH, QUERY_LENGTH, DEPTH), 1)
    values = random_tensor((BATCH, KEY_LENGTH, DEPTH), 2) if values is None else values
    output, weights = ATTENTIONS[attention](query, values, key_mask)
    return to_numpy(output), to_numpy(weights)


@EACH_ATTENTION
def test_weights_sum_to_one_along_keys(attention):
    _, weights = _attend(attention, padding_mask_for(KEY_LENGTH))
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=ATOL)


@EACH_ATTENTION
def test_padded_keys_get_zero_weight(attention):
    key_mask = padding_mask_for(KEY_LENGTH)
    _, weights = _attend(attention, key_mask)
    padded = np.moveaxis(weights, -1, 1)[~key_mask]  # (number of padded keys, ...)
    assert padded.size and not padded.any()
    assert (np.moveaxis(weights, -1, 1)[key_mask] > 0).all()


@EACH_ATTENTION
def test_padded_values_do_not_change_the_output(attention):
    key_mask = padding_mask_for(KEY_LENGTH)
    values = random_tensor((BATCH, KEY_LENGTH, DEPTH), 2)
    changed = np.where(key_mask[:, :, None], values, 100.0).astype("float32")
    output, _ = _attend(attention, key_mask, values)
    output_changed, _ = _attend(attention, key_mask, changed)
    assert_valid_rows_close(output_changed, output)


@EACH_ATTENTION
def test_fully_masked_row_gives_zero_weights_and_no_nan(attention):
    key_mask = padding_mask_for(KEY_LENGTH)
    key_mask[0] = False  # the first sequence has nothing to attend to
    output, weights = _attend(attention, key_mask)
    assert np.isfinite(output).all() and np.isfinite(weights).all()
    assert not weights[0].any()
    np.testing.assert_allclose(weights[1].sum(axis=-1), 1.0, rtol=0, atol=ATOL)
    if not attention.startswith("multi_head"):  # a context vector: a sum with zero weights
        assert not output[0].any()


def test_multi_head_fully_masked_row_outputs_the_output_bias():
    """Its heads return zero, so the output projection leaves only its bias."""
    query, value = _X, random_tensor((BATCH, KEY_LENGTH, DEPTH), 1)
    layer = built_with_random_weights(MultiHeadAttention(2, 4), query, value)
    output = to_numpy(layer(query, value, value_mask=np.zeros((BATCH, KEY_LENGTH), bool)))
    np.testing.assert_allclose(output, np.broadcast_to(to_numpy(layer.output_bias), output.shape),
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_masked_softmax_fully_masked_row_is_zero_not_nan(dtype):
    scores = (random_tensor((BATCH, QUERY_LENGTH, KEY_LENGTH)) * 100).astype(dtype)
    mask = np.ones((BATCH, QUERY_LENGTH, KEY_LENGTH), bool)
    mask[0, 1] = False
    weights = to_numpy(masked_softmax(scores, mask))
    assert np.isfinite(weights).all()
    assert not weights[0, 1].any()
    np.testing.assert_allclose(np.delete(weights, 1, axis=1).sum(-1), 1.0, atol=1e-3)


# --- causal masks: changing future tokens changes no earlier output ---------------------------

LAST_SEEN = 2  # positions 0..2 are the past; positions 3.. are changed


def _causal_scaled_dot_product(causal):
    return lambda x: scaled_dot_product_attention(x, x, x, causal=causal)[0]


def _causal_multi_head(causal):
    layer = built_with_random_weights(MultiHeadAttention(2, 4), _X, _X)
    return lambda x: layer(x, x, use_causal_mask=causal)


def _causal_decoder(causal, cross_attention):
    encoder_outputs = (random_tensor((BATCH, KEY_LENGTH, DEPTH), 3),) if cross_attention else ()
    layer = built_with_random_weights(TransformerDecoderBlock(16, 2), _X, *encoder_outputs)
    return lambda x: layer(x, *encoder_outputs, use_causal_mask=causal)


# id → make(causal) → the function of a sequence x (B, T, d) under test.
CAUSAL_CASES = {
    "scaled_dot_product": _causal_scaled_dot_product,
    "multi_head": _causal_multi_head,
    "decoder_only_block": functools.partial(_causal_decoder, cross_attention=False),
    "decoder_block": functools.partial(_causal_decoder, cross_attention=True),
}


def _past_and_changed_future():
    x = random_tensor((BATCH, QUERY_LENGTH, DEPTH), 4)
    changed = x.copy()
    changed[:, LAST_SEEN + 1:] = random_tensor((BATCH, QUERY_LENGTH - LAST_SEEN - 1, DEPTH), 5)
    return x, changed


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_causal_mask_does_not_leak_the_future(case):
    attend = CAUSAL_CASES[case](True)
    x, changed = _past_and_changed_future()
    output, output_changed = to_numpy(attend(x)), to_numpy(attend(changed))
    assert_valid_rows_close(output_changed[:, :LAST_SEEN + 1], output[:, :LAST_SEEN + 1])
    assert_differ(output_changed[:, LAST_SEEN + 1:], output[:, LAST_SEEN + 1:])


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_without_causal_mask_the_future_leaks(case):
    """The no-leak test can fail: without the mask, the past outputs do change."""
    attend = CAUSAL_CASES[case](False)
    x, changed = _past_and_changed_future()
    assert_differ(to_numpy(attend(changed))[:, :LAST_SEEN + 1],
                  to_numpy(attend(x))[:, :LAST_SEEN + 1])


def test_causal_scaled_dot_product_with_more_keys_is_top_left_aligned():
    """With Tk > Tq, query i still sees keys 0..i only: later keys change nothing."""
    query = random_tensor((BATCH, QUERY_LENGTH, DEPTH), 1)
    keys, values = random_tensor((BATCH, KEY_LENGTH, DEPTH), 2), random_tensor(
        (BATCH, KEY_LENGTH, DEPTH), 3)
    changed_keys, changed_values = keys.copy(), values.copy()
    changed_keys[:, LAST_SEEN + 1:] += 1.0
    changed_values[:, LAST_SEEN + 1:] += 1.0
    output, weights = scaled_dot_product_attention(query, keys, values, causal=True)
    output_changed, _ = scaled_dot_product_attention(query, changed_keys, changed_values,
                                                     causal=True)
    assert_valid_rows_close(to_numpy(output_changed)[:, :LAST_SEEN + 1],
                            to_numpy(output)[:, :LAST_SEEN + 1])
    assert not np.triu(to_numpy(weights), k=1).any()


# --- dropout in training only -----------------------------------------------------------------

# id → (make a layer with dropout 0.5, its inputs)
DROPOUT_CASES = {
    "multi_head": (lambda: MultiHeadAttention(2, 4, dropout=0.5, seed=1), (_X, _X)),
    "encoder_block": (lambda: TransformerEncoderBlock(16, 2, dropout=0.5), (_X,)),
    "decoder_block": (lambda: TransformerDecoderBlock(16, 2, dropout=0.5),
                      (_X, random_tensor((BATCH, KEY_LENGTH, DEPTH), 3))),
}


@pytest.mark.parametrize("case", DROPOUT_CASES)
def test_dropout_acts_in_training_only(case):
    make, inputs = DROPOUT_CASES[case]
    layer = built_with_random_weights(make(), *inputs)
    without_dropout = type(layer).from_config({**layer.get_config(), "dropout": 0.0})
    without_dropout(*inputs)
    without_dropout.set_weights(layer.get_weights())

    inference = to_numpy(layer(*inputs, training=False))
    assert_valid_rows_close(inference, without_dropout(*inputs))
    assert_valid_rows_close(layer(*inputs), inference)  # training defaults to inference
    training = to_numpy(layer(*inputs, training=True))
    assert np.isfinite(training).all()
    assert_differ(training, inference)
    assert_differ(layer(*inputs, training=True), training)  # a new mask at each call
