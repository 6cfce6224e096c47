"""Lesson 07's self-checks name each mistake.

Every wrong function below is a mistake a learner makes; its test asserts the sentence the check
prints. The references are checked against Keras itself. (tests/test_checks.py holds what every
exercise must satisfy; tests/test_grading.py grades the solution notebook and its learner copy.)
"""

import numpy as np
import pytest

from course_lib.checks import EXERCISES, lesson07, run_check
from course_lib.checks.core import CHECK_SEED


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def passes(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert verdict.passed, verdict.reason


# --- The references agree with Keras ----------------------------------------------------------


def test_attention_reference_equals_keras_without_biases():
    import keras

    rng = np.random.default_rng(0)
    layer = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, output_shape=7,
                                            use_bias=False)
    query = rng.normal(size=(2, 3, 6)).astype("float32")
    value = rng.normal(size=(2, 5, 8)).astype("float32")
    mask = rng.random((2, 3, 5)) < 0.7
    mask[:, :, 0] = True
    output, weights = layer(query, value, attention_mask=mask, return_attention_scores=True)
    kernels = {w.path.split("/", 1)[1]: np.asarray(w.value) for w in layer.weights}
    ours = lesson07.multi_head_attention(
        query, value, kernels["query/kernel"], kernels["key/kernel"], kernels["value/kernel"],
        kernels["attention_output/kernel"], mask)
    np.testing.assert_allclose(ours[0], np.asarray(output), atol=1e-5)
    np.testing.assert_allclose(ours[1], np.asarray(weights), atol=1e-5)


@pytest.mark.parametrize("d_model, heads, key_dim, value_dim, use_bias", [
    (32, 4, 8, 8, True), (16, 2, 5, 7, True), (12, 3, 5, 2, False), (10, 1, 7, 3, True)])
def test_parameter_count_reference_equals_keras(d_model, heads, key_dim, value_dim, use_bias):
    import keras

    layer = keras.layers.MultiHeadAttention(heads, key_dim, value_dim=value_dim,
                                            use_bias=use_bias)
    layer.build((None, 5, d_model), (None, 5, d_model))
    assert lesson07.attention_parameter_count(d_model, heads, key_dim, value_dim,
                                              use_bias) == layer.count_params()


def test_split_and_merge_references_are_inverse_and_match_keras_kernel_layout():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 12))
    assert np.array_equal(lesson07.merge_heads(lesson07.split_heads(x, 4)), x)
    kernel = rng.normal(size=(12, 4, 3))  # Keras's (d, H, key_dim)
    np.testing.assert_allclose(lesson07.split_heads(x @ kernel.reshape(12, 12), 4),
                               np.einsum("abtd,dhk->abhtk", x, kernel), atol=1e-12)


# --- 07.1 split_heads -------------------------------------------------------------------------


def test_split_alternatives_pass():
    def split_heads(x, num_heads):
        return np.stack(np.split(np.asarray(x), num_heads, axis=-1), axis=-3)

    passes("07.1", split_heads)

    def split_heads_by_moveaxis(x, num_heads):
        x = np.asarray(x)
        return np.moveaxis(x.reshape(*x.shape[:-1], num_heads, -1), -2, -3)

    passes("07.1", split_heads_by_moveaxis)


def test_split_without_transpose():
    def split_heads(x, num_heads):
        return x.reshape(*x.shape[:-1], num_heads, x.shape[-1] // num_heads)

    assert reason_for("07.1", split_heads).startswith(
        "Your result has shape (..., tokens, heads, key_dim): you reshaped but did not move")


def test_split_by_reshaping_straight_to_the_target_shape():
    def split_heads(x, num_heads):
        *leading, length, depth = x.shape
        return x.reshape(*leading, num_heads, length, depth // num_heads)

    assert "a reshape keeps the memory order, so each \"head\" gets pieces of several tokens" in (
        reason_for("07.1", split_heads))


def test_split_interleaved():
    def split_heads(x, num_heads):
        *leading, length, depth = x.shape
        return np.moveaxis(x.reshape(*leading, length, depth // num_heads, num_heads), -1, -3)

    assert reason_for("07.1", split_heads).startswith("Your heads take every H-th feature")


def test_split_returning_the_list_of_pieces():
    def split_heads(x, num_heads):
        return np.split(x, num_heads, axis=-1)

    assert reason_for("07.1", split_heads).startswith("Your result has the heads first")


def test_split_with_heads_and_key_dim_swapped():
    def split_heads(x, num_heads):
        *leading, length, depth = x.shape
        return np.swapaxes(x.reshape(*leading, length, depth // num_heads, num_heads), -3, -2)

    assert "you swapped the number of heads and key_dim" in reason_for("07.1", split_heads)


def test_split_hard_coded_for_rank_three_gets_the_leading_axes_hint():
    def split_heads(x, num_heads):
        batch, length, depth = x.shape
        return x.reshape(batch, length, num_heads, depth // num_heads).transpose(0, 2, 1, 3)

    reason = reason_for("07.1", split_heads)
    assert reason.startswith("`split_heads` raised ValueError")
    assert "x may have any number of leading axes" in reason


def test_split_with_the_wrong_key_dim_raises_with_the_key_dim_hint():
    def split_heads(x, num_heads):
        return np.swapaxes(x.reshape(*x.shape[:-1], num_heads, num_heads), -3, -2)

    reason = reason_for("07.1", split_heads)
    assert reason.startswith("`split_heads` raised ValueError: cannot reshape array")
    assert "each head gets d // num_heads features" in reason


def test_split_with_the_last_two_axes_swapped_is_called_transposed():
    def split_heads(x, num_heads):
        return np.swapaxes(lesson07.split_heads(x, num_heads), -1, -2)

    assert reason_for("07.1", split_heads).startswith("Your `heads` is transposed")


# --- 07.2 merge_heads -------------------------------------------------------------------------


def test_merge_alternative_passes():
    def merge_heads(x):
        x = np.asarray(x)
        return np.concatenate([x[..., h, :, :] for h in range(x.shape[-3])], axis=-1)

    passes("07.2", merge_heads)


def test_merge_without_transpose():
    def merge_heads(x):
        *leading, heads, length, depth = x.shape
        return x.reshape(*leading, length, heads * depth)

    assert reason_for("07.2", merge_heads).startswith(
        "You reshaped (..., H, T, k) straight to (..., T, H·k)")


def test_merge_interleaved():
    def merge_heads(x):
        *leading, heads, length, depth = x.shape
        return np.moveaxis(x, -3, -1).reshape(*leading, length, heads * depth)

    assert reason_for("07.2", merge_heads).startswith("Your output interleaves the heads")


def test_merge_along_the_tokens():
    def merge_heads(x):
        *leading, heads, length, depth = x.shape
        return x.reshape(*leading, heads * length, depth)

    assert reason_for("07.2", merge_heads).startswith("You stacked the heads along the tokens")


def test_merge_by_summing_the_heads():
    def merge_heads(x):
        return x.sum(axis=-3)

    assert reason_for("07.2", merge_heads).startswith("You summed the heads")


def test_merge_by_averaging_the_heads_gets_the_shape_message():
    def merge_heads(x):
        return x.mean(axis=-3)

    reason = reason_for("07.2", merge_heads)
    assert reason.startswith("Your `merged` has shape (2, 5, 4), expected (2, 5, 12)")
    assert "(..., tokens, heads * key_dim)" in reason


def test_merge_hard_coded_for_rank_four_gets_the_leading_axes_hint():
    def merge_heads(x):
        batch, heads, length, depth = x.shape
        return x.transpose(0, 2, 1, 3).reshape(batch, length, heads * depth)

    assert "x may have any number of leading axes" in reason_for("07.2", merge_heads)


# --- 07.3 multi_head_attention ----------------------------------------------------------------


def learner_attention(query, value, query_kernel, key_kernel, value_kernel, output_kernel, mask,
                      scale="key_dim", masked=-np.inf, invert=False, softmax_axis=-1,
                      heads_axis=True, merge="einsum", keys_from_query=False):
    """A learner's multi-head attention with switches for the usual mistakes."""
    key_dim = query_kernel.shape[-1]
    factor = {"key_dim": 1 / np.sqrt(key_dim), "none": 1.0,
              "d_model": 1 / np.sqrt(query.shape[-1]),
              "value_dim": 1 / np.sqrt(value_kernel.shape[-1])}[scale]
    source = query if keys_from_query else value
    queries = np.einsum("bqd,dhk->bhqk", query, query_kernel) * factor
    keys = np.einsum("bvd,dhk->bhvk", source, key_kernel)
    values = np.einsum("bvd,dhk->bhvk", value, value_kernel)
    scores = queries @ np.swapaxes(keys, -1, -2)
    mask = mask[:, None] if heads_axis else mask
    if invert:
        mask = ~mask
    if masked is not None:
        scores = np.where(mask, scores, masked)
    weights = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
    weights = weights / weights.sum(axis=softmax_axis, keepdims=True)
    heads = weights @ values
    if merge == "einsum":
        output = np.einsum("bhqv,hvo->bqo", heads, output_kernel)
    elif merge == "reshape":
        batch, num_heads, length, depth = heads.shape
        merged = heads.reshape(batch, length, num_heads * depth)
        output = merged @ output_kernel.reshape(num_heads * depth, -1)
    else:  # no output projection
        output = lesson07.merge_heads(heads)
    return output, weights


def attention_with(**switches):
    def multi_head_attention(query, value, query_kernel, key_kernel, value_kernel, output_kernel,
                             mask):
        return learner_attention(query, value, query_kernel, key_kernel, value_kernel,
                                 output_kernel, mask, **switches)

    return multi_head_attention


def test_attention_solution_with_split_and_merge_passes():
    def multi_head_attention(query, value, query_kernel, key_kernel, value_kernel,
                             output_kernel, mask):
        dq, heads, key_dim = query_kernel.shape
        dv, _, value_dim = value_kernel.shape
        q = lesson07.split_heads(query @ query_kernel.reshape(dq, -1), heads) / np.sqrt(key_dim)
        k = lesson07.split_heads(value @ key_kernel.reshape(dv, -1), heads)
        v = lesson07.split_heads(value @ value_kernel.reshape(dv, -1), heads)
        scores = np.where(mask[:, None], q @ np.swapaxes(k, -1, -2), -1e9)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        merged = lesson07.merge_heads(weights @ v)
        return merged @ output_kernel.reshape(heads * value_dim, -1), weights

    passes("07.3", multi_head_attention)
    passes("07.3", attention_with())


def test_attention_without_the_scale():
    assert reason_for("07.3", attention_with(scale="none")).startswith(
        "Your scores are missing the 1/√key_dim scaling")


def test_attention_scaled_by_the_model_depth():
    assert reason_for("07.3", attention_with(scale="d_model")).startswith(
        "You scaled the scores by 1/√d_model")


def test_attention_scaled_by_the_value_depth():
    assert reason_for("07.3", attention_with(scale="value_dim")).startswith(
        "You scaled the scores by 1/√value_dim")


def test_attention_with_the_mask_inverted():
    assert reason_for("07.3", attention_with(invert=True)).startswith(
        "Your mask works the other way round: you attend where the mask is False")
    # with -1e9 instead of -inf there is no NaN; the weights themselves show the polarity
    assert reason_for("07.3", attention_with(invert=True, masked=-1e9)).startswith(
        "Your mask works the other way round: your weights are zero where the mask is True")


def test_attention_with_the_softmax_over_the_queries():
    assert reason_for("07.3", attention_with(softmax_axis=-2)).startswith(
        "Your softmax runs over the queries (axis -2)")
    assert reason_for("07.3", attention_with(softmax_axis=-2, masked=-1e9)).startswith(
        "Your `weights` sum to 1 along axis 2, not along the keys")


def test_attention_ignoring_the_mask():
    assert reason_for("07.3", attention_with(masked=None)).startswith(
        "Your weights ignore the mask")


def test_attention_with_a_mask_without_heads_axis_gets_the_hint():
    reason = reason_for("07.3", attention_with(heads_axis=False))
    assert "raised ValueError: operands could not be broadcast together" in reason
    assert reason.endswith("so use mask[:, None].")


def test_attention_with_keys_from_the_query():
    reason = reason_for("07.3", attention_with(keys_from_query=True))
    assert "raised ValueError" in reason
    assert "keys and values from `value`" in reason


def test_attention_merged_by_reshape_only():
    assert reason_for("07.3", attention_with(merge="reshape")).startswith(
        "Your weights are right, but you merged the heads by reshaping")


def test_attention_without_the_output_projection():
    assert reason_for("07.3", attention_with(merge="none")).startswith(
        "Your weights are right, but you returned the merged heads without the output projection")


def test_attention_with_transposed_weights():
    def multi_head_attention(*args):
        output, weights = lesson07.multi_head_attention(*args)
        return output, np.swapaxes(weights, -1, -2)

    assert reason_for("07.3", multi_head_attention).startswith(
        "Your `weights` is transposed: expected shape (2, 2, 3, 5)")


def test_attention_transposed_on_square_weights_is_named_by_the_property():
    case = EXERCISES["07.3"].cases(CHECK_SEED)[2]  # self-attention: Tq = Tv
    output, weights = lesson07.multi_head_attention(*case.values())
    mine = {"output": output, "weights": np.swapaxes(weights, -1, -2)}
    assert lesson07.weights_transposed(case, mine, {"weights": weights}).startswith(
        "Your weights are transposed")


def test_attention_as_one_big_head_copied_to_every_head():
    def multi_head_attention(query, value, query_kernel, key_kernel, value_kernel,
                             output_kernel, mask):
        heads = query_kernel.shape[1]
        q = query @ query_kernel.reshape(query.shape[-1], -1)
        k = value @ key_kernel.reshape(value.shape[-1], -1)
        v = value @ value_kernel.reshape(value.shape[-1], -1)
        scores = np.where(mask, q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]), -np.inf)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        output = (weights @ v) @ output_kernel.reshape(v.shape[-1], -1)
        return output, np.repeat(weights[:, None], heads, axis=1)

    assert reason_for("07.3", multi_head_attention).startswith(
        "Your weights are the same in every head")


def test_attention_returning_only_the_output():
    def multi_head_attention(*args):
        return lesson07.multi_head_attention(*args)[0]

    assert reason_for("07.3", multi_head_attention).startswith(
        "`multi_head_attention` returned one ndarray, but it should return a tuple")


# --- 07.4 attention_parameter_count -----------------------------------------------------------


def test_count_with_full_width_heads():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        # every head with its own d x d query, key, value and output matrices
        return 4 * num_heads * d_model**2 + (3 * num_heads * d_model + d_model if use_bias else 0)

    assert reason_for("07.4", attention_parameter_count).startswith(
        "You gave every head full-width projections")


def test_count_with_the_four_d_squared_rule():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return 4 * d_model**2 + (4 * d_model if use_bias else 0)

    assert reason_for("07.4", attention_parameter_count).startswith("You used 4·d² + 4·d")


def test_count_with_key_dim_for_the_values():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return lesson07.attention_parameter_count(d_model, num_heads, key_dim, key_dim, use_bias)

    assert reason_for("07.4", attention_parameter_count).startswith(
        "You used key_dim for the values too")


def test_count_without_biases():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return 2 * d_model * num_heads * (key_dim + value_dim)

    assert reason_for("07.4", attention_parameter_count).startswith("You left out the biases")


def test_count_with_biases_always():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return lesson07.attention_parameter_count(d_model, num_heads, key_dim, value_dim, True)

    assert reason_for("07.4", attention_parameter_count) == (
        "You counted the biases also when use_bias is False. Hint: without biases each "
        "projection is its kernel alone.")


def test_count_without_the_output_bias():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        total = lesson07.attention_parameter_count(d_model, num_heads, key_dim, value_dim,
                                                   use_bias)
        return total - (d_model if use_bias else 0)

    assert reason_for("07.4", attention_parameter_count).startswith(
        "You left out the output projection's bias")


def test_count_without_the_output_projection():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        kernels = d_model * num_heads * (2 * key_dim + value_dim)
        return kernels + (num_heads * (2 * key_dim + value_dim) if use_bias else 0)

    assert reason_for("07.4", attention_parameter_count).startswith(
        "You left out the output projection W_O")


def test_count_otherwise_wrong_gets_the_difference():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return lesson07.attention_parameter_count(d_model, num_heads, key_dim, value_dim,
                                                  use_bias) + 1

    reason = reason_for("07.4", attention_parameter_count)
    assert reason.startswith("Your `parameters` is off by up to 1 from the right answer")
    assert "add up the shapes of the eight weights" in reason


# --- The grader -------------------------------------------------------------------------------
