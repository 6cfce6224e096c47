"""Each layer equals its Keras or keras_hub counterpart (docs/conventions.md, section 2):
float32, atol 1e-5, valid (unmasked) query rows only, real masks that mix masked and unmasked
positions, and weights copied by name. Each family also checks that *different* weights give
different outputs, so the comparisons can fail."""

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from course_lib.layers import (
    BahdanauAttention,
    LuongAttention,
    MultiHeadAttention,
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from tests.layer_cases import (
    BATCH,
    assert_differ,
    assert_valid_rows_close,
    built_with_random_weights,
    padding_mask_for,
    plain_keras_attention,
    random_bool,
    random_tensor,
    randomize_weights,
    to_numpy,
)

pytestmark = pytest.mark.backends

QUERY_LENGTH, VALUE_LENGTH = 5, 7


@pytest.fixture(autouse=True, scope="module")
def _no_flash_attention():
    with plain_keras_attention():
        yield


def _causal(query_length, key_length):
    return np.tril(np.ones((query_length, key_length), bool))


# --- Luong and Bahdanau against keras.layers.Attention / AdditiveAttention -------------------

MASK_KINDS = ["no_mask", "padding", "causal"]


def _query_values_inputs(query_depth, single_step=False):
    query_shape = (BATCH, query_depth) if single_step else (BATCH, QUERY_LENGTH, query_depth)
    return random_tensor(query_shape, 1), random_tensor((BATCH, VALUE_LENGTH, 8), 2)


def _masks(kind):
    """(our mask, Keras's [query_mask, value_mask], Keras's use_causal_mask, rows to compare)."""
    if kind == "no_mask":
        return None, None, False, None
    query_mask, value_mask = padding_mask_for(QUERY_LENGTH), padding_mask_for(VALUE_LENGTH)
    if kind == "padding":
        return value_mask, [query_mask, value_mask], False, query_mask
    ours = value_mask[:, None, :] & _causal(QUERY_LENGTH, VALUE_LENGTH)
    return ours, [query_mask, value_mask], True, query_mask


@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("score", ["dot", "general"])
def test_luong_equals_keras_attention(score, mask_kind):
    """Luong dot = ``Attention()([h_t, h_s])``, general = ``Attention()([h_t W, h_s])``."""
    query, values = _query_values_inputs(8 if score == "dot" else 6)
    layer = built_with_random_weights(LuongAttention(score), query, values)
    ours_mask, keras_mask, causal, rows = _masks(mask_kind)
    context, weights = layer(query, values, mask=ours_mask)

    keras_query = query if score == "dot" else ops.matmul(query, layer.kernel)
    expected, expected_weights = keras.layers.Attention()(
        [keras_query, values], mask=keras_mask, use_causal_mask=causal,
        return_attention_scores=True)
    assert_valid_rows_close(context, expected, rows)
    assert_valid_rows_close(weights, expected_weights, rows)


@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("score", ["dot", "general"])
def test_scaled_luong_equals_keras_dot_product_attention(score, mask_kind):
    """``scaled=True`` divides by sqrt(dv): ``ops.dot_product_attention`` with one head."""
    query, values = _query_values_inputs(8 if score == "dot" else 6)
    layer = built_with_random_weights(LuongAttention(score, scaled=True), query, values)
    ours_mask, _, _, rows = _masks(mask_kind)
    context, _ = layer(query, values, mask=ours_mask)

    keras_query = query if score == "dot" else ops.matmul(query, layer.kernel)
    keras_mask = None  # (B, heads, Tq, Tv) for ops.dot_product_attention
    if ours_mask is not None:
        ours_mask = np.asarray(ours_mask)
        per_query = ours_mask if ours_mask.ndim == 3 else ours_mask[:, None, :]
        keras_mask = np.broadcast_to(per_query[:, None], (BATCH, 1, QUERY_LENGTH, VALUE_LENGTH))
    heads = (keras_query[:, :, None], values[:, :, None], values[:, :, None])  # (B, T, 1, d)
    expected = ops.dot_product_attention(*heads, mask=keras_mask)[:, :, 0]
    assert_valid_rows_close(context, expected, rows)

    unscaled = LuongAttention(score)
    unscaled(query, values)
    unscaled.set_weights(layer.get_weights())
    assert_differ(context, unscaled(query, values, mask=ours_mask)[0])  # the scale matters


@pytest.mark.parametrize("mask_kind", MASK_KINDS)
def test_bahdanau_equals_keras_additive_attention_on_projected_inputs(mask_kind):
    """Bahdanau = ``AdditiveAttention()([s W1, h, h W2])`` with ``scale`` = v."""
    query, values = _query_values_inputs(6)
    layer = built_with_random_weights(BahdanauAttention(4), query, values)
    ours_mask, keras_mask, causal, rows = _masks(mask_kind)
    context, weights = layer(query, values, mask=ours_mask)

    projected_query, projected_keys = layer.project(query, values)
    additive = keras.layers.AdditiveAttention()
    additive.build([projected_query.shape, values.shape, projected_keys.shape])
    additive.scale.assign(layer.score_vector)
    expected, expected_weights = additive(
        [projected_query, values, projected_keys], mask=keras_mask, use_causal_mask=causal,
        return_attention_scores=True)
    assert_valid_rows_close(context, expected, rows)
    assert_valid_rows_close(weights, expected_weights, rows)


@pytest.mark.parametrize("make_layer", [lambda: BahdanauAttention(4), lambda: LuongAttention("dot"),
                                        lambda: LuongAttention("general"),
                                        lambda: LuongAttention("concat", units=5)],
                         ids=["bahdanau", "luong_dot", "luong_general", "luong_concat"])
def test_single_decoder_step_equals_a_length_one_query(make_layer):
    """A 2-D query ``(B, dq)`` is one decoder step: the same as a ``(B, 1, dq)`` query."""
    query, values = _query_values_inputs(8, single_step=True)
    layer = built_with_random_weights(make_layer(), query, values)
    value_mask = padding_mask_for(VALUE_LENGTH)
    context, weights = layer(query, values, mask=value_mask)
    context_3d, weights_3d = layer(query[:, None, :], values, mask=value_mask)
    assert tuple(context.shape) == (BATCH, 8) and tuple(weights.shape) == (BATCH, VALUE_LENGTH)
    assert_valid_rows_close(context, context_3d[:, 0])
    assert_valid_rows_close(weights, weights_3d[:, 0])


def test_luong_general_with_other_weights_differs_from_keras():
    query, values = _query_values_inputs(6)
    layer = built_with_random_weights(LuongAttention("general"), query, values)
    other = built_with_random_weights(LuongAttention("general"), query, values, seed=1)
    expected = keras.layers.Attention()([ops.matmul(query, other.kernel), values])
    assert_differ(layer(query, values)[0], expected)


# --- MultiHeadAttention against keras.layers.MultiHeadAttention ------------------------------

# name → (constructor kwargs, query (Tq, Dq), value (Tv, Dv), key (Tv, Dk) or None). Heads,
# depths and lengths are shared where a case does not need its own: on JAX every new shape
# costs a compilation.
MHA_CONFIGS = {
    "self_attention": ({"num_heads": 2, "key_dim": 4}, (5, 8), None, None),
    "cross_tq_lt_tk_value_dim": ({"num_heads": 2, "key_dim": 4, "value_dim": 3}, (5, 8), (7, 8),
                                 (7, 6)),
    "cross_tq_gt_tk_no_bias": ({"num_heads": 2, "key_dim": 4, "use_bias": False,
                                "output_dim": 5}, (5, 8), (3, 6), None),
}
MHA_MASKS = ["no_mask", "padding", "attention_mask", "causal", "all_masks"]


def _mha_pair(config):
    """Keras's layer with random weights, and ours with the weights copied by name."""
    kwargs, query_shape, value_shape, key_shape = MHA_CONFIGS[config]
    keras_kwargs = {k: v for k, v in kwargs.items() if k != "output_dim"}
    if "output_dim" in kwargs:
        keras_kwargs["output_shape"] = kwargs["output_dim"]
    theirs = keras.layers.MultiHeadAttention(**keras_kwargs)
    query = random_tensor((BATCH, *query_shape), 1)
    value = query if value_shape is None else random_tensor((BATCH, *value_shape), 2)
    key = None if key_shape is None else random_tensor((BATCH, *key_shape), 3)
    theirs.build(query.shape, value.shape, None if key is None else key.shape)
    randomize_weights(theirs)
    ours = MultiHeadAttention(**kwargs)
    ours.copy_weights_from(theirs)
    return ours, theirs, query, value, key


def _keras_multi_head_attention(theirs, query, value, key, return_scores, **arguments):
    """Keras's output (and scores). On JAX, Keras 3.15's fused path fails when value_dim !=
    key_dim (``jax.nn.dot_product_attention`` wants equal depths), so there Keras's other path,
    the one that returns scores, computes the reference (the same function:
    docs/conventions.md, section 2)."""
    fused_fails = keras.backend.backend() == "jax" and theirs.value_dim != theirs.key_dim
    result = theirs(query, value, key=key, return_attention_scores=return_scores or fused_fails,
                    **arguments)
    return result[0] if fused_fails and not return_scores else result


def _mha_mask_arguments(kind, query, value):
    """Keyword arguments for both layers, and the query rows that are valid."""
    query_length, value_length = query.shape[1], value.shape[1]
    arguments, rows = {}, None
    if kind in ("padding", "all_masks"):
        value_mask = padding_mask_for(value_length)
        arguments.update(value_mask=value_mask, key_mask=value_mask)
        rows = padding_mask_for(query_length)
    if kind in ("attention_mask", "all_masks"):
        attention_mask = random_bool((BATCH, query_length, value_length), seed=5)
        attention_mask[:, :, 0] = True  # no row is fully masked (Keras's fused path: §5)
        arguments["attention_mask"] = attention_mask
    if kind in ("causal", "all_masks"):
        arguments["use_causal_mask"] = True
    return arguments, rows


@pytest.mark.parametrize("return_scores", [False, True], ids=["output", "with_scores"])
@pytest.mark.parametrize("mask_kind", MHA_MASKS)
@pytest.mark.parametrize("config", MHA_CONFIGS)
def test_multi_head_attention_equals_keras(config, mask_kind, return_scores):
    ours, theirs, query, value, key = _mha_pair(config)
    arguments, rows = _mha_mask_arguments(mask_kind, query, value)
    ours_arguments = dict(arguments)
    if rows is not None:
        ours_arguments["query_mask"] = rows
    actual = ours(query, value, key=key, return_attention_scores=return_scores,
                  **ours_arguments)
    expected = _keras_multi_head_attention(theirs, query, value, key, return_scores,
                                           **arguments)
    if return_scores:
        (actual, scores), (expected, expected_scores) = actual, expected
        assert tuple(scores.shape) == (BATCH, ours.num_heads, query.shape[1], value.shape[1])
        assert_valid_rows_close(ops.swapaxes(scores, 1, 2), ops.swapaxes(expected_scores, 1, 2),
                                rows)
    assert_valid_rows_close(actual, expected, rows)


def test_multi_head_attention_equals_keras_with_implicit_embedding_masks():
    """Padding masks carried by ``Embedding(mask_zero=True)`` reach both layers in a model,
    and they matter: without them the valid rows of the padded sequence change."""
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    masking, plain = (keras.layers.Embedding(10, 8, mask_zero=mask_zero)
                      for mask_zero in (True, False))
    masking.build((None, 5))
    randomize_weights(masking)
    plain.build((None, 5))
    plain.set_weights(masking.get_weights())
    ours, theirs, *_ = _mha_pair("self_attention")

    def model(embedding, attention):
        tokens = keras.Input((5,), dtype="int32")
        hidden = embedding(tokens)
        return keras.Model(tokens, attention(hidden, hidden))

    expected = model(masking, theirs)(ids)
    assert_valid_rows_close(model(masking, ours)(ids), expected, ids != 0)
    assert_differ(model(plain, ours)(ids)[0, :3], expected[0, :3])


def test_multi_head_attention_with_other_weights_differs_from_keras():
    ours, theirs, query, value, key = _mha_pair("self_attention")
    other = MultiHeadAttention(2, 4)
    other(query, value)
    assert_differ(other(query, value), theirs(query, value))
    assert_valid_rows_close(ours(query, value), theirs(query, value))


# --- SinusoidalPositionEncoding against keras_hub.layers.SinePositionEncoding ----------------

@pytest.mark.parametrize("max_wavelength, start_index", [(10000, 0), (100, 3)])
@pytest.mark.parametrize("shape", [(2, 5, 8), (2, 7, 5), (2, 3, 5, 8)], ids=str)
def test_sinusoidal_position_encoding_equals_keras_hub(shape, max_wavelength, start_index):
    inputs = random_tensor(shape)
    ours = SinusoidalPositionEncoding(max_wavelength)(inputs, start_index=start_index)
    theirs = keras_hub.layers.SinePositionEncoding(max_wavelength)(inputs,
                                                                   start_index=start_index)
    assert_valid_rows_close(ours, theirs)


def test_sinusoidal_position_encoding_is_interleaved_sin_cos():
    encoding = SinusoidalPositionEncoding()(np.zeros((1, 4, 6), "float32"))
    positions = np.arange(4)[:, None]
    angles = positions / 10000 ** (np.array([0, 0, 2, 2, 4, 4]) / 6)
    expected = np.where(np.arange(6) % 2 == 0, np.sin(angles), np.cos(angles))
    assert_valid_rows_close(encoding[0], expected)


def test_sinusoidal_position_encoding_accepts_an_unbatched_sequence():
    inputs = random_tensor((7, 8))
    assert_valid_rows_close(SinusoidalPositionEncoding()(inputs),
                            keras_hub.layers.SinePositionEncoding()(inputs[None])[0])


# --- Transformer blocks against keras_hub.layers.TransformerEncoder / TransformerDecoder -----

# (intermediate_dim, num_heads, d_model, extra kwargs)
BLOCK_CONFIGS = {
    "d8_h2": (16, 2, 8, {}),
    "d8_h4_gelu": (12, 4, 8, {"activation": "gelu", "layer_norm_epsilon": 1e-3}),
}
NORMALIZE_FIRST = pytest.mark.parametrize("normalize_first", [False, True],
                                          ids=["post_ln", "pre_ln"])
TARGET_LENGTH, SOURCE_LENGTH = QUERY_LENGTH, VALUE_LENGTH


def _block_pair(ours_class, keras_hub_class, config, normalize_first, cross_attention=False):
    intermediate_dim, num_heads, depth, extra = BLOCK_CONFIGS[config]
    kwargs = dict(intermediate_dim=intermediate_dim, num_heads=num_heads,
                  normalize_first=normalize_first, **extra)
    x = random_tensor((BATCH, TARGET_LENGTH, depth), 1)
    encoder_outputs = random_tensor((BATCH, SOURCE_LENGTH, depth), 2) if cross_attention else None
    theirs = keras_hub_class(**kwargs)
    theirs(x) if encoder_outputs is None else theirs(x, encoder_outputs)
    randomize_weights(theirs)
    ours = ours_class(**kwargs)
    ours.copy_weights_from(theirs)
    return ours, theirs, x, encoder_outputs


# Every mask case with 2 heads; 4 heads, gelu and eps 1e-3 with all masks.
ENCODER_CASES = pytest.mark.parametrize("config, mask_kind", [
    *(("d8_h2", kind) for kind in ("no_mask", "padding", "attention_mask", "both")),
    ("d8_h4_gelu", "both")])
DECODER_CASES = pytest.mark.parametrize("config, padding, use_causal_mask", [
    pytest.param(config, padding, causal, id=f"{config}-{'padding' if padding else 'no_padding'}"
                 f"-{'causal' if causal else 'not_causal'}")
    for config, padding, causal in [
        *(("d8_h2", padding, causal) for padding in (False, True) for causal in (True, False)),
        ("d8_h4_gelu", True, True)]])


@ENCODER_CASES
@NORMALIZE_FIRST
def test_encoder_block_equals_keras_hub(config, normalize_first, mask_kind):
    ours, theirs, x, _ = _block_pair(TransformerEncoderBlock,
                                     keras_hub.layers.TransformerEncoder, config, normalize_first)
    arguments, rows = {}, None
    if mask_kind in ("padding", "both"):
        rows = padding_mask_for(TARGET_LENGTH)
        arguments["padding_mask"] = rows
    if mask_kind in ("attention_mask", "both"):
        attention_mask = random_bool((BATCH, TARGET_LENGTH, TARGET_LENGTH), seed=5)
        attention_mask[:, :, 0] = True
        arguments["attention_mask"] = attention_mask
    assert_valid_rows_close(ours(x, **arguments), theirs(x, **arguments), rows)


@DECODER_CASES
@NORMALIZE_FIRST
def test_decoder_block_with_cross_attention_equals_keras_hub(config, normalize_first, padding,
                                                             use_causal_mask):
    ours, theirs, x, encoder_outputs = _block_pair(
        TransformerDecoderBlock, keras_hub.layers.TransformerDecoder, config, normalize_first,
        cross_attention=True)
    arguments, rows = {"use_causal_mask": use_causal_mask}, None
    if padding:
        rows = padding_mask_for(TARGET_LENGTH)
        arguments.update(decoder_padding_mask=rows,
                         encoder_padding_mask=padding_mask_for(SOURCE_LENGTH))
    assert_valid_rows_close(ours(x, encoder_outputs, **arguments),
                            theirs(x, encoder_outputs, **arguments), rows)


@pytest.mark.parametrize("use_causal_mask", [True, False], ids=["causal", "not_causal"])
@NORMALIZE_FIRST
def test_decoder_only_block_equals_keras_hub(normalize_first, use_causal_mask):
    ours, theirs, x, _ = _block_pair(TransformerDecoderBlock, keras_hub.layers.TransformerDecoder,
                                     "d8_h2", normalize_first)
    rows = padding_mask_for(TARGET_LENGTH)
    arguments = {"decoder_padding_mask": rows, "use_causal_mask": use_causal_mask}
    assert_valid_rows_close(ours(x, **arguments), theirs(x, **arguments), rows)


@pytest.mark.parametrize("cross_attention", [False, True], ids=["encoder", "decoder"])
def test_blocks_with_other_weights_differ_from_keras_hub(cross_attention):
    classes = ((TransformerDecoderBlock, keras_hub.layers.TransformerDecoder) if cross_attention
               else (TransformerEncoderBlock, keras_hub.layers.TransformerEncoder))
    ours, theirs, x, encoder_outputs = _block_pair(*classes, "d8_h2", False,
                                                   cross_attention=cross_attention)
    inputs = (x,) if encoder_outputs is None else (x, encoder_outputs)
    randomize_weights(ours, seed=7)
    assert_differ(ours(*inputs), theirs(*inputs))


@NORMALIZE_FIRST
def test_encoder_block_returns_the_attention_scores_of_keras_hub(normalize_first):
    ours, theirs, x, _ = _block_pair(TransformerEncoderBlock,
                                     keras_hub.layers.TransformerEncoder, "d8_h2", normalize_first)
    rows = padding_mask_for(TARGET_LENGTH)
    output, scores = ours(x, padding_mask=rows, return_attention_scores=True)
    expected, expected_scores = theirs(x, padding_mask=rows, return_attention_scores=True)
    assert_valid_rows_close(output, expected, rows)
    assert_valid_rows_close(ops.transpose(scores, (0, 2, 1, 3)),
                            ops.transpose(expected_scores, (0, 2, 1, 3)), rows)


@NORMALIZE_FIRST
def test_decoder_block_returns_where_each_target_position_looked(normalize_first):
    """keras_hub's decoder returns no scores: the returned ones are checked by their properties,
    and by giving the block's output unchanged."""
    ours, _, x, encoder_outputs = _block_pair(
        TransformerDecoderBlock, keras_hub.layers.TransformerDecoder, "d8_h2", normalize_first,
        cross_attention=True)
    source_padding = padding_mask_for(SOURCE_LENGTH)
    output, self_scores, cross_scores = ours(x, encoder_outputs,
                                             encoder_padding_mask=source_padding,
                                             return_attention_scores=True)
    assert_valid_rows_close(output, ours(x, encoder_outputs,
                                         encoder_padding_mask=source_padding))
    self_scores, cross_scores = to_numpy(self_scores), to_numpy(cross_scores)
    assert self_scores.shape == (BATCH, 2, TARGET_LENGTH, TARGET_LENGTH)
    assert cross_scores.shape == (BATCH, 2, TARGET_LENGTH, SOURCE_LENGTH)
    np.testing.assert_allclose(cross_scores.sum(-1), 1.0, atol=1e-5)
    assert np.all(cross_scores.transpose(0, 3, 1, 2)[~source_padding] == 0.0)  # padded source
    assert np.all(np.triu(self_scores, k=1) == 0.0)  # causal
    other_source = random_tensor(encoder_outputs.shape, 9)
    other = ours(x, other_source, encoder_padding_mask=source_padding,
                 return_attention_scores=True)[2]
    assert_differ(cross_scores, other)


def test_decoder_only_block_returns_its_causal_self_attention_scores():
    ours, theirs, x, _ = _block_pair(TransformerDecoderBlock, keras_hub.layers.TransformerDecoder,
                                     "d8_h2", True)
    output, scores = ours(x, return_attention_scores=True)
    assert_valid_rows_close(output, theirs(x))
    scores = to_numpy(scores)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    past = np.tril(np.ones((TARGET_LENGTH, TARGET_LENGTH), bool))
    assert np.all(scores[..., ~past] == 0.0) and np.all(scores[..., past] > 0.0)
