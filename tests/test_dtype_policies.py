"""Every layer honours Keras's dtype policy, as Keras's own layers do.

Under ``"mixed_float16"`` or ``"mixed_bfloat16"`` (given to the layer as ``dtype=``, or set for
the whole program with ``keras.config.set_dtype_policy``) a layer keeps float32 weights, computes
in the half-precision type and returns it. Each of our layers is compared with its Keras or
keras_hub counterpart under the same policy: same output dtype, same weights dtype, and the same
numbers within a tolerance that fits the type (float16 keeps about 3 decimal digits, bfloat16
about 2). A layer without a counterpart is compared with itself in float32.
"""

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from course_lib import gpt
from course_lib.layers import (
    AlibiBias,
    AttentionPooling,
    BahdanauAttention,
    CachedMultiHeadAttention,
    ClassToken,
    GlimpseSensor,
    GroupedQueryAttention,
    LearnedPositionEmbedding,
    LocalAttention,
    LuongAttention,
    MultiHeadAttention,
    PatchEmbedding,
    RotaryEmbedding,
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from tests.layer_cases import padding_mask_for, plain_keras_attention, random_tensor

pytestmark = pytest.mark.backends

POLICIES = ["mixed_float16", "mixed_bfloat16"]
# Absolute tolerances on outputs of order 1 (inputs and weights are of order 1).
ATOL = {"mixed_float16": 2e-2, "mixed_bfloat16": 1.5e-1}
COMPUTE_DTYPE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def scaled_random_weights(layer, seed=0):
    """Random weights small enough that half-precision sums stay far from overflow."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.3, size=tuple(weight.shape)).astype("float32"))


def to_float32(x):
    return ops.convert_to_numpy(ops.cast(x, "float32"))


def mha_pair(policy):
    query, value = random_tensor((2, 5, 8), 1), random_tensor((2, 7, 8), 2)
    theirs = keras.layers.MultiHeadAttention(3, 4, value_dim=6, dtype=policy)
    theirs(query, value, return_attention_scores=True)
    scaled_random_weights(theirs)
    ours = MultiHeadAttention(3, 4, value_dim=6, dtype=policy)
    ours.copy_weights_from(theirs)
    mask = padding_mask_for(7)[:, None, :]
    # Keras 3.15's fused path fails on JAX when value_dim != key_dim: ask for the scores,
    # which takes its other path (the same function).
    return (lambda layer: layer(query, value, attention_mask=mask,
                                return_attention_scores=True)[0]), ours, theirs


def mha_no_bias_pair(policy):
    x = random_tensor((2, 5, 8), 1)
    theirs = keras.layers.MultiHeadAttention(2, 4, use_bias=False, dtype=policy)
    theirs(x, x)
    scaled_random_weights(theirs)
    ours = MultiHeadAttention(2, 4, use_bias=False, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(x, x, use_causal_mask=True)), ours, theirs


def block_pair(ours_class, theirs_class, policy, cross_attention, normalize_first):
    x = random_tensor((2, 5, 8), 1)
    encoder_outputs = random_tensor((2, 6, 8), 2) if cross_attention else None
    inputs = (x,) if encoder_outputs is None else (x, encoder_outputs)
    theirs = theirs_class(16, 2, normalize_first=normalize_first, dtype=policy)
    theirs(*inputs)
    scaled_random_weights(theirs)
    ours = ours_class(16, 2, normalize_first=normalize_first, dtype=policy)
    ours.copy_weights_from(theirs)
    masks = ({"padding_mask": padding_mask_for(5)} if not cross_attention else
             {"decoder_padding_mask": padding_mask_for(5),
              "encoder_padding_mask": padding_mask_for(6)})
    return (lambda layer: layer(*inputs, **masks)), ours, theirs


def cached_mha_pair(policy):
    """One step into a cache whose later slots hold stale numbers (keras_hub's layer takes the
    causal mask from its caller; ours makes it)."""
    from keras_hub.src.layers.modeling.transformer_layer_utils import compute_causal_mask

    x, cache, index = random_tensor((2, 1, 8), 1), random_tensor((2, 2, 5, 2, 4), 2), 3
    theirs = keras_hub.layers.CachedMultiHeadAttention(2, 4, dtype=policy)
    theirs(x, x)
    scaled_random_weights(theirs)
    ours = CachedMultiHeadAttention(2, 4, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(x, x, cache=cache, cache_update_index=index)[0],
            lambda layer: layer(x, x, cache=cache, cache_update_index=index,
                                attention_mask=compute_causal_mask(2, 5, 1, index))[0],
            ours, theirs)


def cached_decoder_only_block_pair(policy):
    x, cache = random_tensor((2, 2, 8), 1), random_tensor((2, 2, 5, 2, 4), 2)
    theirs = keras_hub.layers.TransformerDecoder(16, 2, normalize_first=True, dtype=policy)
    theirs(x)
    scaled_random_weights(theirs)
    ours = TransformerDecoderBlock(16, 2, normalize_first=True, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(x, self_attention_cache=cache,
                                self_attention_cache_update_index=1)[0]), ours, theirs


def luong_pair(score, policy):
    query, values = random_tensor((2, 5, 8), 1), random_tensor((2, 7, 8), 2)
    ours = LuongAttention(score, dtype=policy)
    ours(query, values)
    scaled_random_weights(ours)
    theirs = keras.layers.Attention(dtype=policy)
    mask = padding_mask_for(7)

    def ours_call(layer):
        return layer(query, values, mask=mask)[0]

    def theirs_call(layer):
        keras_query = query if score == "dot" else ops.matmul(query, ours.kernel)
        return layer([keras_query, values], mask=[None, mask])

    return ours_call, theirs_call, ours, theirs


def bahdanau_pair(policy):
    query, values = random_tensor((2, 5, 6), 1), random_tensor((2, 7, 8), 2)
    ours = BahdanauAttention(4, dtype=policy)
    ours(query, values)
    scaled_random_weights(ours)
    projected_query, projected_keys = (ops.cast(t, "float32")
                                       for t in ours.project(query, values))
    theirs = keras.layers.AdditiveAttention(dtype=policy)
    theirs.build([projected_query.shape, values.shape, projected_keys.shape])
    theirs.scale.assign(ours.score_vector)
    mask = padding_mask_for(7)
    return (lambda layer: layer(query, values, mask=mask)[0],
            lambda layer: layer([projected_query, values, projected_keys], mask=[None, mask]),
            ours, theirs)


def sinusoid_pair(policy):
    x = random_tensor((2, 7, 6), 1)
    return (lambda layer: layer(x)), SinusoidalPositionEncoding(dtype=policy), \
        keras_hub.layers.SinePositionEncoding(dtype=policy)


def patch_embedding_pair(policy):
    images = random_tensor((2, 6, 8, 3), 1)
    theirs = keras.layers.Conv2D(5, 2, strides=2, dtype=policy)
    theirs(images)
    scaled_random_weights(theirs)
    ours = PatchEmbedding(2, 5, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(images),
            lambda layer: ops.reshape(layer(images), (2, 12, 5)), ours, theirs)


def position_embedding_pair(policy):
    x = random_tensor((2, 7, 6), 1)
    theirs = keras_hub.layers.PositionEmbedding(9, dtype=policy)
    theirs(x)
    scaled_random_weights(theirs)
    ours = LearnedPositionEmbedding(9, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(x)), ours, theirs


def class_token_pair(policy):
    # No Keras counterpart: the token put in front of the tokens by a concatenation in Keras.
    tokens = random_tensor((2, 5, 6), 1)
    ours = ClassToken(dtype=policy)
    ours(tokens)
    scaled_random_weights(ours)
    token = ops.convert_to_numpy(ours.token)
    theirs = keras.layers.Concatenate(axis=1, dtype=policy)
    first = np.broadcast_to(token, (2, 1, 6)).astype("float32")
    return (lambda layer: layer(tokens), lambda layer: layer([first, tokens]), ours, theirs)


def rotary_pair(policy):
    x = random_tensor((2, 6, 2, 8), 1)
    return (lambda layer: layer(x, start_index=3)), RotaryEmbedding(dtype=policy), \
        keras_hub.layers.RotaryEmbedding(dtype=policy)


def alibi_pair(policy):
    """keras_hub's bias differs from ours by a constant per query row (the distance to the
    last key instead of to the query), so the last row, where the two agree, is compared."""
    scores = random_tensor((2, 4, 5, 5), 1)
    return (lambda layer: layer(scores)[:, :, -1]), AlibiBias(dtype=policy), \
        keras_hub.layers.AlibiBias(dtype=policy)


def grouped_query_pair(policy):
    x = random_tensor((2, 5, 8), 1)
    theirs = keras.layers.GroupQueryAttention(4, 4, 2, sliding_window=3, dtype=policy)
    theirs(x, x)
    scaled_random_weights(theirs)
    ours = GroupedQueryAttention(4, 4, 2, sliding_window=3, dtype=policy)
    ours.copy_weights_from(theirs)
    return (lambda layer: layer(x, x, use_causal_mask=True)), ours, theirs
def glimpse_sensor_pair(policy):
    # No Keras counterpart: the same cut by Keras's Reshape, then a transpose and a reshape.
    images = random_tensor((2, 4, 6, 3), 1)
    theirs = keras.layers.Reshape((2, 2, 3, 2, 3), dtype=policy)  # (B, R, g, Cg, g, C)
    return (lambda layer: layer(images),
            lambda layer: ops.reshape(ops.transpose(layer(images), (0, 1, 3, 2, 4, 5)),
                                      (2, 6, 2, 2, 3)),
            GlimpseSensor(2, dtype=policy), theirs)


def attention_pooling_pair(policy):
    # Keras's dot-product Attention with the learned query as its query.
    values, mask = random_tensor((2, 5, 6), 1), padding_mask_for(5)
    ours = AttentionPooling(dtype=policy)
    ours(values, mask)
    scaled_random_weights(ours)
    query = np.broadcast_to(ops.convert_to_numpy(ours.query), (2, 1, 6)).astype("float32")
    theirs = keras.layers.Attention(dtype=policy)
    return (lambda layer: layer(values, mask)[0],
            lambda layer: layer([query, values], mask=[None, mask])[:, 0], ours, theirs)


def same_call(pair):
    call, ours, theirs = pair
    return call, call, ours, theirs


PAIRS = {
    "multi_head_attention": lambda policy: same_call(mha_pair(policy)),
    "multi_head_attention_no_bias": lambda policy: same_call(mha_no_bias_pair(policy)),
    **{f"encoder_block_{name}": (
        lambda policy, normalize_first=normalize_first: same_call(block_pair(
            TransformerEncoderBlock, keras_hub.layers.TransformerEncoder, policy, False,
            normalize_first)))
       for name, normalize_first in (("post_ln", False), ("pre_ln", True))},
    **{f"decoder_block_{name}": (
        lambda policy, normalize_first=normalize_first: same_call(block_pair(
            TransformerDecoderBlock, keras_hub.layers.TransformerDecoder, policy, True,
            normalize_first)))
       for name, normalize_first in (("post_ln", False), ("pre_ln", True))},
    "cached_multi_head_attention": cached_mha_pair,
    "decoder_only_block_with_a_cache": lambda policy: same_call(
        cached_decoder_only_block_pair(policy)),
    "luong_dot": lambda policy: luong_pair("dot", policy),
    "luong_general": lambda policy: luong_pair("general", policy),
    "bahdanau": bahdanau_pair,
    "sinusoidal_position_encoding": lambda policy: same_call(sinusoid_pair(policy)),
    "patch_embedding": patch_embedding_pair,
    "learned_position_embedding": lambda policy: same_call(position_embedding_pair(policy)),
    "class_token": class_token_pair,
    "rotary_embedding": lambda policy: same_call(rotary_pair(policy)),
    "alibi_bias": lambda policy: same_call(alibi_pair(policy)),
    "grouped_query_attention": lambda policy: same_call(grouped_query_pair(policy)),
    "glimpse_sensor": glimpse_sensor_pair,
    "attention_pooling": attention_pooling_pair,
}


@pytest.fixture(params=["layer_dtype", "global_policy"])
def how(request):
    """Give the policy to each layer (``dtype=``), or set it for the whole program."""
    yield request.param
    keras.config.set_dtype_policy("float32")


def make_pair(name, policy, how):
    if how == "global_policy":
        keras.config.set_dtype_policy(policy)
        return PAIRS[name](None)
    return PAIRS[name](policy)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", PAIRS)
def test_layer_follows_the_dtype_policy_like_keras(name, policy, how):
    with plain_keras_attention():
        ours_call, theirs_call, ours, theirs = make_pair(name, policy, how)
        ours_output, theirs_output = ours_call(ours), theirs_call(theirs)
    assert ours.dtype_policy.name == policy
    assert ops.dtype(theirs_output) == COMPUTE_DTYPE[policy]
    assert ops.dtype(ours_output) == ops.dtype(theirs_output)
    assert all(weight.dtype == "float32" for weight in ours.weights)
    np.testing.assert_allclose(to_float32(ours_output), to_float32(theirs_output), rtol=0,
                               atol=ATOL[policy])


@pytest.mark.parametrize("mode", ["monotonic", "predictive"])
@pytest.mark.parametrize("policy", POLICIES)
def test_local_attention_follows_the_dtype_policy(mode, policy, how):
    """No Keras counterpart: the half-precision layer against the same weights in float32.

    local-p's window ``|s - p_t| <= D`` has hard edges: where a predicted position ``p_t``
    rounds across an edge in half precision, one more (or one fewer) key enters the softmax and
    its whole row changes. Those rows are not compared.
    """
    query, values = random_tensor((2, 5, 8), 1), random_tensor((2, 7, 8), 2)
    mask = padding_mask_for(7)
    full = LocalAttention(2, mode=mode)
    full(query, values, mask=mask)
    scaled_random_weights(full)
    if how == "global_policy":
        keras.config.set_dtype_policy(policy)
        half = LocalAttention(2, mode=mode)
    else:
        half = LocalAttention(2, mode=mode, dtype=policy)
    half(query, values, mask=mask)
    half.set_weights(full.get_weights())
    context, weights = half(query, values, mask=mask)
    expected_context, expected_weights = full(query, values, mask=mask)
    assert ops.dtype(context) == ops.dtype(weights) == COMPUTE_DTYPE[policy]
    assert all(weight.dtype == "float32" for weight in half.weights)

    # The window of each row is where its weights are not zero.
    same_window = np.all((to_float32(weights) > 0) == (to_float32(expected_weights) > 0),
                         axis=-1)
    assert same_window.mean() >= 0.5, "too few rows to compare"
    np.testing.assert_allclose(to_float32(weights)[same_window],
                               to_float32(expected_weights)[same_window], rtol=0,
                               atol=ATOL[policy])
    np.testing.assert_allclose(to_float32(context)[same_window],
                               to_float32(expected_context)[same_window], rtol=0,
                               atol=ATOL[policy])


@pytest.mark.parametrize("options", [
    {}, {"position_scheme": "rotary", "num_key_value_heads": 1, "sliding_window": 3},
    {"position_scheme": "alibi"}], ids=["lesson_09", "rotary_mqa_window", "alibi"])
@pytest.mark.parametrize("policy", POLICIES)
def test_gpt_follows_the_dtype_policy(policy, how, options):
    """Lesson 09's GPT (and lesson 10's variants) has no Keras counterpart: the half-precision
    model against the same weights in float32, without and with its key/value cache."""
    sizes = {"context_length": 6, "num_layers": 2, "num_heads": 2, "d_model": 8,
             "intermediate_dim": 16, **options}
    full = gpt.GPT(7, **sizes)
    full.build()
    scaled_random_weights(full)
    if how == "global_policy":
        keras.config.set_dtype_policy(policy)
        half = gpt.GPT(7, **sizes)
    else:
        half = gpt.GPT(7, dtype=policy, **sizes)
    half.build()
    half.set_weights(full.get_weights())
    ids = np.array([[1, 4, 2, 6, 0]], "int32")
    logits = half(ids)
    cached_logits, cache = half.call_with_cache(ids, half.empty_cache(1, 5), 0)
    assert ops.dtype(logits) == ops.dtype(cached_logits) == ops.dtype(cache) == \
        COMPUTE_DTYPE[policy]
    assert all(weight.dtype == "float32" for weight in half.weights)
    for ours in (logits, cached_logits):
        np.testing.assert_allclose(to_float32(ours), to_float32(full(ids)), rtol=0,
                                   atol=ATOL[policy])
