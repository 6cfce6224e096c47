"""Every count the library takes (units, heads, widths, sizes, lengths) is checked the same way,
by ``course_lib.validation.require_positive_int``: a boolean or a float is refused with a
``ValueError`` that names the argument and the value, instead of quietly becoming 1 or 2."""

import re

import numpy as np
import pytest

from course_lib import (
    attribution,
    data,
    explanations,
    forecasting,
    generation,
    glimpses,
    gpt,
    models,
    sentiment,
    shakespeare,
    tasks,
    training,
    translation,
    vision,
)
from course_lib.attention import sliding_window_mask
from course_lib.attention_maps import patch_distances
from course_lib.efficient_attention import (
    block_sparse_attention,
    causal_linear_attention,
    longformer_mask,
    tiled_attention,
)
from course_lib.layers import (
    BahdanauAttention,
    CachedMultiHeadAttention,
    GlimpseSensor,
    GroupedQueryAttention,
    LearnedPositionEmbedding,
    LocalAttention,
    LuongAttention,
    MultiHeadAttention,
    PatchEmbedding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from course_lib.layers.alibi_bias import alibi_slopes
from course_lib.layers.grouped_query_attention import attention_parameters
from course_lib.recall import RecallModel, associative_recall_task
from course_lib.sentiment_classifier import SentenceClassifier
from course_lib.transformer_translator import TransformerTranslator
from course_lib.validation import require_positive_int

pytestmark = pytest.mark.backends

SEQUENCE = np.ones((1, 6, 4), dtype="float32")  # query, keys and values of the functions below

CALLS = {
    "bahdanau_units": lambda value: BahdanauAttention(value),
    "luong_units": lambda value: LuongAttention("concat", units=value),
    "local_half_width": lambda value: LocalAttention(value),
    "local_position_units": lambda value: LocalAttention(2, position_units=value),
    "mha_num_heads": lambda value: MultiHeadAttention(value, 4),
    "mha_key_dim": lambda value: MultiHeadAttention(2, value),
    "mha_value_dim": lambda value: MultiHeadAttention(2, 4, value_dim=value),
    "mha_output_dim": lambda value: MultiHeadAttention(2, 4, output_dim=value),
    "encoder_intermediate_dim": lambda value: TransformerEncoderBlock(value, 2),
    "decoder_num_heads": lambda value: TransformerDecoderBlock(16, value),
    "gru_units": lambda value: models.GRUEncoderDecoder(10, 10, units=value),
    "gru_embedding_dim": lambda value: models.GRUEncoderDecoder(10, 10, embedding_dim=value),
    "transformer_num_layers": lambda value: TransformerTranslator(10, 10, num_layers=value),
    "classifier_num_heads": lambda value: tasks.attention_classifier(10, value),
    "reversal_num_examples": lambda value: data.reversal_task(value, 3, 5, 10, seed=0),
    "token_task_length": lambda value: tasks.previous_and_largest_task(5, value, 8, seed=0),
    "sentence_length": lambda value: sentiment.encode_sentences(
        [["good"]], translation.Vocabulary.build([["good"]]), length=value),
    "vocabulary_min_count": lambda value: translation.Vocabulary.build([["a"]], min_count=value),
    "batch_size": lambda value: training.length_bucketed_batches(
        data.reversal_task(8, 3, 5, 10, seed=0), value, seed=0),
    "tiled_block_size": lambda value: tiled_attention(*[SEQUENCE] * 3, block_size=value),
    "sparse_block_size": lambda value: block_sparse_attention(*[SEQUENCE] * 3, window=2,
                                                              block_size=value),
    "causal_linear_chunk_size": lambda value: causal_linear_attention(*[SEQUENCE] * 3,
                                                                      chunk_size=value),
    "longformer_mask_length": lambda value: longformer_mask(value, 2),
    "recall_num_pairs": lambda value: associative_recall_task(10, value, 8, 4, seed=0),
    "recall_key_dim": lambda value: RecallModel(10, 4, key_dim=value),
    "cached_mha_num_heads": lambda value: CachedMultiHeadAttention(value, 4),
    "gpt_vocabulary_size": lambda value: gpt.GPT(value, 8),
    "gpt_context_length": lambda value: gpt.GPT(10, value),
    "gpt_num_layers": lambda value: gpt.GPT(10, 8, num_layers=value),
    "gpt_d_model": lambda value: gpt.GPT(10, 8, d_model=value),
    "gpt_cache_length": lambda value: gpt.GPT(10, 8).empty_cache(1, value),
    "schedule_total_steps": lambda value: gpt.WarmupCosine(1e-3, 0, value),
    "new_tokens": lambda value: generation.generate(gpt.GPT(10, 8), [1], value),
    "top_k": lambda value: generation.top_k_distribution(np.zeros(5), value),
    "cache_bytes_layers": lambda value: generation.cache_bytes(value, 2, 4, 8),
    "window_length": lambda value: shakespeare.consecutive_windows(np.arange(50), value),
    "patch_size": lambda value: PatchEmbedding(value, 4),
    "patch_hidden_dim": lambda value: PatchEmbedding(2, value),
    "position_sequence_length": lambda value: LearnedPositionEmbedding(value),
    "patch_distances_patch_size": lambda value: patch_distances((2, 2), value),
    "vit_num_layers": lambda value: vision.build_vit(num_layers=value),
    "mlp_units": lambda value: vision.build_mlp(units=value),
    "cnn_filters": lambda value: vision.build_cnn(filters=(4, value, 4)),
    "windows_window": lambda value: forecasting.forecast_windows(np.arange(20.0), value, 15),
    "forecaster_window": lambda value: forecasting.build_attention_forecaster(value),
    "forecaster_d_model": lambda value: forecasting.build_attention_forecaster(d_model=value),
    "forecaster_num_heads": lambda value: forecasting.build_attention_forecaster(
        num_heads=value),
    "forecaster_hidden_units": lambda value: forecasting.build_attention_forecaster(
        hidden_units=value),
    "gru_forecaster_units": lambda value: forecasting.build_gru_forecaster(units=value),
    "gqa_head_dim": lambda value: GroupedQueryAttention(value, 4, 2),
    "gqa_num_query_heads": lambda value: GroupedQueryAttention(4, value, 1),
    "gqa_num_key_value_heads": lambda value: GroupedQueryAttention(4, 4, value),
    "gqa_sliding_window": lambda value: GroupedQueryAttention(4, 4, 2, sliding_window=value),
    "decoder_num_key_value_heads": lambda value: TransformerDecoderBlock(
        16, 4, num_key_value_heads=value),
    "decoder_sliding_window": lambda value: TransformerDecoderBlock(16, 4, sliding_window=value),
    "gpt_num_key_value_heads": lambda value: gpt.GPT(10, 8, num_key_value_heads=value),
    "gpt_sliding_window": lambda value: gpt.GPT(10, 8, sliding_window=value),
    "alibi_num_heads": lambda value: alibi_slopes(value),
    "window_mask_window": lambda value: sliding_window_mask(value, 4),
    "kv_cache_length": lambda value: generation.kv_cache_bytes(2, 16, 4, value),
    "kv_cache_key_value_heads": lambda value: generation.kv_cache_bytes(
        2, 16, 4, 8, num_key_value_heads=value),
    "attention_parameters_head_dim": lambda value: attention_parameters(16, value, 4, 2),
    "training_length": lambda value: gpt.fit_gpt(gpt.GPT(10, 8), np.arange(50) % 10, 1,
                                                 length=value),
    "glimpse_size": lambda value: GlimpseSensor(value),
    "canvas_grid": lambda value: glimpses.make_canvases(np.zeros((2, 8, 8, 1)), [0, 1],
                                                        grid=value),
    "canvas_copies": lambda value: glimpses.make_canvases(np.zeros((2, 8, 8, 1)), [0, 1],
                                                          copies=value),
    "canvas_fragment_size": lambda value: glimpses.make_canvases(
        np.zeros((2, 8, 8, 1)), [0, 1], fragment_size=value),
    "glimpse_classifier_units": lambda value: glimpses.GlimpseClassifier(units=value),
    "glimpse_classifier_scorer_units": lambda value: glimpses.GlimpseClassifier(
        scorer_units=value),
    "glimpse_classifier_coarse_factor": lambda value: glimpses.GlimpseClassifier(
        coarse_factor=value),
    "glimpse_classifier_classes": lambda value: glimpses.GlimpseClassifier(classes=value),
    "sentence_classifier_vocabulary": lambda value: SentenceClassifier(value),
    "sentence_classifier_d_model": lambda value: SentenceClassifier(10, d_model=value),
    "leave_one_out_batch_size": lambda value: attribution.leave_one_out(
        lambda ids: np.zeros(len(ids)), np.ones((2, 3), "int32"), batch_size=value),
    "permutations": lambda value: attribution.permuted_weights(np.ones((2, 3)),
                                                               np.ones((2, 3), bool), value),
    "gradient_statistics_draws": lambda value: glimpses.location_gradient_statistics(
        None, None, draws=value),
    "gradient_statistics_size": lambda value: glimpses.location_gradient_statistics(
        None, None, size=value),
    "agreement_min_words": lambda value: explanations.agreement(
        {"mask": np.ones((2, 3), bool)}, min_words=value),
}
NAMES = {"bahdanau_units": "units", "luong_units": "units", "local_half_width": "half_width",
         "local_position_units": "position_units", "mha_num_heads": "num_heads",
         "mha_key_dim": "key_dim", "mha_value_dim": "value_dim", "mha_output_dim": "output_dim",
         "encoder_intermediate_dim": "intermediate_dim", "decoder_num_heads": "num_heads",
         "gru_units": "units", "gru_embedding_dim": "embedding_dim",
         "transformer_num_layers": "num_layers", "classifier_num_heads": "num_heads",
         "reversal_num_examples": "num_examples", "token_task_length": "length",
         "sentence_length": "length", "vocabulary_min_count": "min_count",
         "batch_size": "batch_size", "cached_mha_num_heads": "num_heads",
         "gpt_vocabulary_size": "vocabulary_size", "gpt_context_length": "context_length",
         "gpt_num_layers": "num_layers", "gpt_d_model": "d_model", "gpt_cache_length": "length",
         "schedule_total_steps": "total_steps", "new_tokens": "max_new_tokens", "top_k": "k",
         "cache_bytes_layers": "num_layers", "window_length": "length",
         "patch_size": "patch_size", "patch_hidden_dim": "hidden_dim",
         "position_sequence_length": "sequence_length",
         "patch_distances_patch_size": "patch_size", "vit_num_layers": "num_layers",
         "mlp_units": "units", "cnn_filters": "filters", "windows_window": "window",
         "forecaster_window": "window", "forecaster_d_model": "d_model",
         "forecaster_num_heads": "num_heads", "forecaster_hidden_units": "hidden_units",
         "gru_forecaster_units": "units", "gqa_head_dim": "head_dim",
         "gqa_num_query_heads": "num_query_heads",
         "gqa_num_key_value_heads": "num_key_value_heads",
         "gqa_sliding_window": "sliding_window",
         "decoder_num_key_value_heads": "num_key_value_heads",
         "decoder_sliding_window": "sliding_window",
         "gpt_num_key_value_heads": "num_key_value_heads",
         "gpt_sliding_window": "sliding_window", "alibi_num_heads": "num_heads",
         "window_mask_window": "window", "kv_cache_length": "length",
         "kv_cache_key_value_heads": "num_key_value_heads",
         "attention_parameters_head_dim": "head_dim", "training_length": "length",
         "tiled_block_size": "block_size",
         "sparse_block_size": "block_size", "causal_linear_chunk_size": "chunk_size",
         "longformer_mask_length": "length", "recall_num_pairs": "num_pairs",
         "recall_key_dim": "key_dim", "glimpse_size": "glimpse_size",
         "canvas_grid": "grid", "canvas_copies": "copies",
         "canvas_fragment_size": "fragment_size", "glimpse_classifier_units": "units",
         "glimpse_classifier_scorer_units": "scorer_units",
         "glimpse_classifier_coarse_factor": "coarse_factor",
         "glimpse_classifier_classes": "classes",
         "sentence_classifier_vocabulary": "vocabulary_size",
         "sentence_classifier_d_model": "d_model", "leave_one_out_batch_size": "batch_size",
         "permutations": "permutations", "gradient_statistics_draws": "draws",
         "gradient_statistics_size": "size", "agreement_min_words": "min_words"}


@pytest.mark.parametrize("value", [True, 2.5, 2.0, 0, -1, "2"],
                         ids=["bool", "fraction", "whole_float", "zero", "negative", "string"])
@pytest.mark.parametrize("case", CALLS)
def test_a_count_that_is_not_a_positive_integer_is_refused(case, value):
    with pytest.raises(ValueError) as error:
        CALLS[case](value)
    message = str(error.value)
    assert re.search(rf"`{NAMES[case]}` must be (a positive integer|an integer of at least \d+), "
                     rf"received {re.escape(repr(value))}", message), message


def test_numpy_integers_are_counts():
    assert require_positive_int("units", np.int64(3)) == 3
    assert type(require_positive_int("units", np.int32(3))) is int
    assert MultiHeadAttention(np.int64(2), 4).num_heads == 2
