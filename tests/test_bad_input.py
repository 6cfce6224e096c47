"""Bad input is rejected with a ``ValueError`` whose message names the shapes received
(docs/conventions.md, section 4): wrong rank, mismatched batch or length, a mask of the wrong
shape, ``d_model`` not divisible by the number of heads, and weights copied from a layer that
does not match."""

import re

import keras
import keras_hub
import numpy as np
import pytest

from course_lib import forecasting, generation, gpt
from course_lib.attention import masked_softmax, scaled_dot_product_attention
from course_lib.attention_maps import attention_rollout, mean_attention_distance
from course_lib.attribution import gradient_times_input, rank_correlations
from course_lib.layers import (
    AlibiBias,
    AttentionPooling,
    BahdanauAttention,
    ClassToken,
    GlimpseSensor,
    GroupedQueryAttention,
    LearnedPositionEmbedding,
    LuongAttention,
    MultiHeadAttention,
    PatchEmbedding,
    RotaryEmbedding,
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from tests.layer_cases import built_with_random_weights as built
from tests.layer_cases import random_bool, random_tensor

pytestmark = pytest.mark.backends


def t(*shape):
    """A random float32 tensor of ``shape``."""
    return random_tensor(shape)


def shapes(*shapes):
    """A regex that finds each shape, in order, on one line: ``(2, 5)`` → ``\\(2, 5\\)``."""
    return ".*".join(re.escape(str(tuple(shape))) for shape in shapes)


def keras_mha(num_heads, key_dim):
    layer = keras.layers.MultiHeadAttention(num_heads, key_dim)
    layer.build((2, 5, 8), (2, 7, 8))
    return layer


def keras_gqa(kv_heads):
    layer = keras.layers.GroupQueryAttention(4, 4, kv_heads)
    layer.build((2, 5, 8), (2, 7, 8))
    return layer


def cache(*shape):
    return np.zeros(shape, "float32")


def keras_hub_block(layer_class, *sequences):
    layer = layer_class(intermediate_dim=16, num_heads=2)
    layer(*sequences)
    return layer


# id → (a call that must raise, a regex that the message must contain)
CASES = {
    # masked_softmax and scaled_dot_product_attention
    "softmax_mask_not_broadcastable": (
        lambda: masked_softmax(t(2, 5, 7), random_bool((2, 7))), shapes((2, 7), (2, 5, 7))),
    "softmax_mask_too_many_axes": (
        lambda: masked_softmax(t(5, 7), random_bool((2, 5, 7))), shapes((2, 5, 7), (5, 7))),
    "sdpa_1d_query": (
        lambda: scaled_dot_product_attention(t(8), t(7, 8), t(7, 8)), shapes((8,))),
    "sdpa_2d_query_3d_keys": (
        lambda: scaled_dot_product_attention(t(5, 8), t(2, 7, 8), t(2, 7, 8)),
        shapes((2, 7, 8))),
    "sdpa_3d_values_2d": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(2, 7, 8), t(7, 8)), shapes((7, 8))),
    "sdpa_query_key_depths_differ": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(2, 7, 6), t(2, 7, 8)),
        shapes((2, 5, 8), (2, 7, 6))),
    "sdpa_key_value_lengths_differ": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(2, 7, 8), t(2, 6, 8)),
        shapes((2, 7, 8), (2, 6, 8))),
    "sdpa_batch_differs": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(3, 7, 8), t(3, 7, 8)),
        shapes((2, 5, 8), (3, 7, 8))),
    "sdpa_key_value_batch_differs": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(2, 7, 8), t(3, 7, 8)),
        shapes((2, 7, 8), (3, 7, 8))),
    "sdpa_mask_wrong_shape": (
        lambda: scaled_dot_product_attention(t(2, 5, 8), t(2, 7, 8), t(2, 7, 8),
                                             mask=random_bool((2, 5, 6))),
        shapes((2, 5, 6), (2, 5, 7))),
    # Bahdanau and Luong
    "bahdanau_rank_4_query": (
        lambda: BahdanauAttention(4)(t(2, 5, 3, 6), t(2, 7, 8)), shapes((2, 5, 3, 6))),
    "bahdanau_rank_2_values": (
        lambda: BahdanauAttention(4)(t(2, 5, 6), t(2, 8)), shapes((2, 8))),
    "bahdanau_batch_differs": (
        lambda: BahdanauAttention(4)(t(2, 5, 6), t(3, 7, 8)), shapes((2, 5, 6), (3, 7, 8))),
    "bahdanau_mask_wrong_length": (
        lambda: BahdanauAttention(4)(t(2, 5, 6), t(2, 7, 8), mask=random_bool((2, 6))),
        shapes((2, 6))),
    "bahdanau_single_step_with_3d_mask": (
        lambda: BahdanauAttention(4)(t(2, 6), t(2, 7, 8), mask=random_bool((2, 5, 7))),
        shapes((2, 7), (2, 6), (2, 7, 8), (2, 5, 7))),
    "luong_rank_4_query": (
        lambda: LuongAttention("general")(t(2, 5, 3, 6), t(2, 7, 8)), shapes((2, 5, 3, 6))),
    "luong_batch_differs": (
        lambda: LuongAttention("concat")(t(3, 5, 6), t(2, 7, 8)), shapes((3, 5, 6), (2, 7, 8))),
    "luong_mask_wrong_shape": (
        lambda: LuongAttention("dot")(t(2, 5, 8), t(2, 7, 8), mask=random_bool((2, 5, 6))),
        shapes((2, 5, 6))),
    "luong_dot_depths_differ": (
        lambda: LuongAttention("dot")(t(2, 5, 6), t(2, 7, 8)), shapes((2, 5, 6), (2, 7, 8))),
    # MultiHeadAttention
    "mha_rank_2_query": (
        lambda: MultiHeadAttention(2, 4)(t(5, 8), t(2, 7, 8)), shapes((5, 8))),
    "mha_rank_4_value": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(2, 7, 3, 8)), shapes((2, 7, 3, 8))),
    "mha_batch_differs": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(3, 7, 8)), shapes((2, 5, 8), (3, 7, 8))),
    "mha_key_value_lengths_differ": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(2, 7, 8), key=t(2, 6, 8)),
        shapes((2, 6, 8), (2, 7, 8))),
    "mha_attention_mask_wrong_shape": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(2, 7, 8),
                                         attention_mask=random_bool((2, 5, 6))),
        shapes((2, 5, 6), (2, 5, 7))),
    "mha_value_mask_wrong_shape": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(2, 7, 8), value_mask=random_bool((2, 5))),
        shapes((2, 7), (2, 5))),
    "mha_query_mask_wrong_shape": (
        lambda: MultiHeadAttention(2, 4)(t(2, 5, 8), t(2, 7, 8), query_mask=random_bool((2, 7))),
        shapes((2, 5), (2, 7))),
    # SinusoidalPositionEncoding
    "position_encoding_rank_1": (
        lambda: SinusoidalPositionEncoding()(t(8)), shapes((8,))),
    # Transformer blocks
    "encoder_d_model_not_divisible_by_heads": (
        lambda: TransformerEncoderBlock(16, 3)(t(2, 5, 8)), r"d_model=8.*" + shapes((2, 5, 8))),
    "decoder_d_model_not_divisible_by_heads": (
        lambda: TransformerDecoderBlock(16, 3)(t(2, 5, 8), t(2, 7, 8)),
        r"d_model=8.*" + shapes((2, 5, 8))),
    "encoder_rank_2_input": (
        lambda: TransformerEncoderBlock(16, 2)(t(5, 8)), shapes((5, 8))),
    "encoder_padding_mask_wrong_shape": (
        lambda: TransformerEncoderBlock(16, 2)(t(2, 5, 8), padding_mask=random_bool((2, 6))),
        shapes((2, 5), (2, 6))),
    "encoder_attention_mask_wrong_shape": (
        lambda: TransformerEncoderBlock(16, 2)(t(2, 5, 8), attention_mask=random_bool((2, 5))),
        shapes((2, 5, 5), (2, 5))),
    "decoder_padding_mask_wrong_shape": (
        lambda: TransformerDecoderBlock(16, 2)(t(2, 5, 8), t(2, 7, 8),
                                               decoder_padding_mask=random_bool((2, 7))),
        shapes((2, 5), (2, 7))),
    "decoder_encoder_padding_mask_wrong_shape": (
        lambda: TransformerDecoderBlock(16, 2)(t(2, 5, 8), t(2, 7, 8),
                                               encoder_padding_mask=random_bool((2, 5))),
        shapes((2, 7), (2, 5))),
    "decoder_rank_2_encoder_outputs": (
        lambda: TransformerDecoderBlock(16, 2)(t(2, 5, 8), t(2, 8)), shapes((2, 8))),
    "decoder_built_without_cross_attention_given_encoder_outputs": (
        lambda: built(TransformerDecoderBlock(16, 2), t(2, 5, 8))(t(2, 5, 8), t(2, 7, 8)),
        r"without cross-attention.*" + shapes((2, 7, 8))),
    "decoder_built_with_cross_attention_given_no_encoder_outputs": (
        lambda: built(TransformerDecoderBlock(16, 2), t(2, 5, 8), t(2, 7, 8))(t(2, 5, 8)),
        r"with cross-attention.*" + shapes((2, 5, 8))),
    # Lesson 12: patches, class token, learned positions, attention maps
    "patch_embedding_height_not_a_multiple": (
        lambda: PatchEmbedding(2, 4)(t(2, 7, 8, 1)),
        shapes((2, 7, 8, 1)) + r".*height 7.*patch_size=2"),
    "patch_embedding_rank_3_images": (
        lambda: PatchEmbedding(2, 4)(t(8, 8, 1)), shapes((8, 8, 1))),
    "patch_embedding_channels_differ": (
        lambda: built(PatchEmbedding(2, 4), t(2, 8, 8, 1))(t(2, 8, 8, 3)),
        shapes((2, 8, 8, 3)) + r".*3 channels.*built for 1"),
    "class_token_rank_2_tokens": (
        lambda: ClassToken()(t(5, 6)), shapes((5, 6))),
    "class_token_depth_differs": (
        lambda: built(ClassToken(), t(2, 5, 6))(t(2, 5, 4)), shapes((2, 5, 4))),
    "position_embedding_too_long": (
        lambda: LearnedPositionEmbedding(4)(t(2, 5, 6)), shapes((2, 5, 6)) + r".*4"),
    "rollout_maps_of_different_shapes": (
        lambda: attention_rollout([t(2, 3, 5, 5), t(2, 3, 4, 4)]),
        shapes((2, 3, 4, 4), (2, 3, 5, 5))),
    "rollout_map_not_square": (
        lambda: attention_rollout([t(2, 3, 5, 4)]), shapes((2, 3, 5, 4))),
    "attention_distance_tokens_do_not_fit_the_grid": (
        lambda: mean_attention_distance(t(2, 3, 10, 10), (4, 4)), shapes((2, 3, 10, 10))),
    "forecaster_heads_do_not_divide_d_model": (
        lambda: forecasting.build_attention_forecaster(d_model=16, num_heads=3),
        r"`d_model` \(16\) must be a multiple of `num_heads` \(3\)"),
    # Lesson 10: rotary embedding, ALiBi, grouped-query attention and its cache, the GPT
    "rotary_odd_depth": (
        lambda: RotaryEmbedding()(t(2, 5, 7)), shapes((2, 5, 7)) + r".*odd depth 7"),
    "rotary_rank_2_input": (
        lambda: RotaryEmbedding()(t(5, 8)), shapes((5, 8))),
    "alibi_rank_3_scores": (
        lambda: AlibiBias()(t(2, 5, 5)), shapes((2, 5, 5))),
    "alibi_positions_do_not_match_the_scores": (
        lambda: AlibiBias()(t(2, 2, 5, 5), query_positions=np.arange(4)),
        shapes((4,), (2, 2, 5, 5))),
    "gqa_heads_not_divisible": (
        lambda: GroupedQueryAttention(4, 4, 3),
        r"`num_query_heads` \(4\) must be divisible by `num_key_value_heads` \(3\)"),
    "gqa_unknown_position_encoding": (
        lambda: GroupedQueryAttention(4, 4, 2, position_encoding="sinusoidal"),
        r"`position_encoding` must be one of .*'sinusoidal'"),
    "gqa_batch_differs": (
        lambda: GroupedQueryAttention(4, 4, 2)(t(2, 5, 8), t(3, 7, 8)),
        shapes((2, 5, 8), (3, 7, 8))),
    "gqa_attention_mask_wrong_shape": (
        lambda: GroupedQueryAttention(4, 4, 2)(t(2, 5, 8), t(2, 7, 8),
                                               attention_mask=random_bool((2, 5, 6))),
        shapes((2, 5, 6), (2, 5, 7))),
    "gqa_cache_with_other_heads": (
        lambda: GroupedQueryAttention(4, 4, 2)(t(2, 1, 8), t(2, 1, 8),
                                               cache=cache(2, 2, 6, 4, 4), cache_update_index=0),
        shapes((2, 2, 6, 2, 4), (2, 2, 6, 4, 4))),
    "gqa_cache_too_short_without_a_window": (
        lambda: GroupedQueryAttention(4, 4, 2)(t(2, 1, 8), t(2, 1, 8),
                                               cache=cache(2, 2, 3, 2, 4), cache_update_index=5),
        r"3 slots.*" + shapes((2, 2, 3, 2, 4)) + r".*positions before 2"),
    "gqa_cache_shorter_than_the_window": (
        lambda: GroupedQueryAttention(4, 4, 2, sliding_window=5)(
            t(2, 1, 8), t(2, 1, 8), cache=cache(2, 2, 3, 2, 4), cache_update_index=5),
        r"3 slots.*" + shapes((2, 2, 3, 2, 4)) + r".*4 earlier keys"),
    "gqa_cache_with_a_padding_mask": (
        lambda: GroupedQueryAttention(4, 4, 2)(t(2, 1, 8), t(2, 1, 8), cache=cache(2, 2, 3, 2, 4),
                                               cache_update_index=0,
                                               attention_mask=random_bool((2, 1, 4))),
        r"no padding masks and no `attention_mask`"),
    "gpt_unknown_position_scheme": (
        lambda: gpt.GPT(10, 8, position_scheme="sinusoidal"),
        r"`position_scheme` must be one of .*'sinusoidal'"),
    "gpt_variant_cache_with_other_heads": (
        lambda: gpt.build_gpt(10, context_length=8, num_layers=1, num_heads=4, d_model=8,
                              intermediate_dim=8, num_key_value_heads=2).call_with_cache(
            np.zeros((1, 1), "int32"), cache(1, 1, 2, 8, 4, 2), 0),
        shapes((1, 1, 2, None, 2, 2), (1, 1, 2, 8, 4, 2))),
    "kv_cache_unknown_dtype": (
        lambda: generation.kv_cache_bytes(2, 16, 4, 8, dtype="float8"),
        r"`dtype` must be one of .*'float8'"),
    # Lesson 13: glimpses, attention pooling, attributions
    "glimpse_sensor_width_not_a_multiple": (
        lambda: GlimpseSensor(4)(t(2, 8, 6, 1)),
        shapes((2, 8, 6, 1)) + r".*width 6.*glimpse_size=4"),
    "glimpse_sensor_rank_3_images": (
        lambda: GlimpseSensor(4)(t(8, 8, 1)), shapes((8, 8, 1))),
    "glimpse_sensor_one_location_too_few": (
        lambda: GlimpseSensor(4)(t(3, 8, 8, 1), np.array([0, 1])), shapes((2,), (3, 8, 8, 1))),
    "attention_pooling_rank_2_values": (
        lambda: AttentionPooling()(t(5, 6)), shapes((5, 6))),
    "attention_pooling_mask_of_another_length": (
        lambda: AttentionPooling()(t(2, 5, 6), random_bool((2, 4))), shapes((2, 4), (2, 5, 6))),
    "gradient_times_input_rank_2": (
        lambda: gradient_times_input(lambda x: x, t(2, 5)), shapes((2, 5))),
    "rank_correlations_mask_of_another_shape": (
        lambda: rank_correlations(t(2, 5), t(2, 5), random_bool((2, 4))), shapes((2, 4), (2, 5))),
    # copy_weights_from a layer that does not match
    "copy_mha_heads_differ": (
        lambda: MultiHeadAttention(4, 2).copy_weights_from(keras_mha(2, 4)),
        shapes((8, 2, 4), (8, 4, 2))),
    "copy_mha_key_dim_differs": (
        lambda: built(MultiHeadAttention(2, 3), t(2, 5, 8), t(2, 7, 8)).copy_weights_from(
            keras_mha(2, 4)),
        shapes((8, 2, 4), (8, 2, 3))),
    "copy_mha_use_bias_differs": (
        lambda: MultiHeadAttention(2, 4, use_bias=False).copy_weights_from(keras_mha(2, 4)),
        r"use_bias=False.*use_bias=True"),
    "copy_encoder_heads_differ": (
        lambda: TransformerEncoderBlock(16, 4).copy_weights_from(
            keras_hub_block(keras_hub.layers.TransformerEncoder, t(2, 5, 8))),
        shapes((8, 2, 4), (8, 4, 2))),
    "copy_decoder_cross_attention_differs": (
        lambda: built(TransformerDecoderBlock(16, 2), t(2, 5, 8)).copy_weights_from(
            keras_hub_block(keras_hub.layers.TransformerDecoder, t(2, 5, 8), t(2, 7, 8))),
        r"has_cross_attention=False"),
    "copy_gqa_key_value_heads_differ": (
        lambda: GroupedQueryAttention(4, 4, 2).copy_weights_from(keras_gqa(1)),
        shapes((8, 1, 4), (8, 2, 4))),
    "copy_patch_embedding_from_an_overlapping_convolution": (
        lambda: PatchEmbedding(2, 4).copy_weights_from(
            built(keras.layers.Conv2D(4, 2), t(1, 8, 8, 1))),
        r"strides \(1, 1\)"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_value_error_naming_the_shapes(case):
    call, pattern = CASES[case]
    with pytest.raises(ValueError) as error:
        call()
    # Keras appends the arguments a layer received, shapes included, to an error raised in its
    # call(): the shapes must be in the library's own message, before that listing.
    message = str(error.value).split("Arguments received by")[0]
    assert re.search(pattern, message), message
