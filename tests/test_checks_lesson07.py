"""Lesson 07's self-checks name each mistake.

Every wrong function below is a mistake a learner makes; its test asserts the sentence the check
prints. The references are checked against Keras itself. (tests/test_checks.py holds what every
exercise must satisfy; tests/test_grading.py grades the solution notebook and its learner copy.)
"""

import numpy as np
import pytest

from course_lib.checks import EXERCISES, lesson07, run_check
from course_lib.checks.core import CHECK_SEED
from tests.exercise_sources import solution_object


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def passes(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert verdict.passed, verdict.reason


# --- The references agree with Keras ----------------------------------------------------------


@pytest.mark.parametrize("seed", [CHECK_SEED, 0, 1])
def test_attention_reference_equals_keras_on_every_case(seed):
    """The NumPy reference of 07.3 computes what keras.layers.MultiHeadAttention computes, with
    the case's weights: cross-attention, a separate key, biases, padding, causal masks."""
    import keras

    exercise = EXERCISES["07.3"]
    for case in exercise.cases(seed):
        heads, key_dim = np.shape(case["query_kernel"])[1:]
        layer = keras.layers.MultiHeadAttention(int(heads), int(key_dim),
                                                value_dim=int(np.shape(case["value_kernel"])[-1]))
        query, value = case["query"].astype("float32"), case["value"].astype("float32")
        key = case["key"].astype("float32") if case["key_given"] else None
        layer(query, value, key)
        layer.set_weights([case[name].astype("float32") for name in lesson07.KERAS_WEIGHTS])
        output, weights = layer(query, value, key, attention_mask=case["attention_mask"],
                                use_causal_mask=bool(case["use_causal_mask"]),
                                return_attention_scores=True)
        ours = exercise.reference_outputs(case)
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
        "Your result has shape (..., tokens, heads, key_dim): the features are cut into heads")


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
    assert "count the axes you reshape and swap from the end" in reason


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


# --- 07.3 MultiHeadAttention (build) -----------------------------------------------------------

SEEDS = (CHECK_SEED, 0, 1, 2)


def layer(*replacements):
    return solution_object("07.3", "MultiHeadAttention", *replacements)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_layer_passes_on_every_seed(seed):
    verdict = run_check("07.3", layer(), seed=seed)
    assert verdict.passed, verdict.reason


SOFTMAX = "weights = masked_softmax(scores, None if mask is None else mask[:, None])"
LAYER_SLIPS = {
    "no scale": (("+ self.query_bias[:, None, :]) / math.sqrt(self.key_dim)",
                  "+ self.query_bias[:, None, :])"), "missing the 1/√key_dim scaling"),
    "mask after the softmax": ((SOFTMAX, "weights = masked_softmax(scores, None) * (1.0 if mask "
                                "is None else ops.cast(mask[:, None], scores.dtype))"),
                               "You zero the masked weights after the softmax"),
    "mask inverted": ((SOFTMAX, SOFTMAX.replace("mask[:, None]", "~mask[:, None]")),
                      "Your mask has the opposite polarity"),
    "mask ignored": (('mask = None if attention_mask is None else ops.cast(attention_mask, '
                      '"bool")', "mask = None"), "Your weights ignore `attention_mask`"),
    "every mask ignored": ((SOFTMAX, "weights = masked_softmax(scores, None)"),
                           "Your weights are not zero on the masked keys"),
    "causal ignored": (("if use_causal_mask:", "if False:"), "ignores `use_causal_mask`"),
    "key ignored": (("key = value if key is None else key", "key = value"),
                    "Your keys come from `value`"),
    "bias after the scale": (("queries = (ops.einsum(\"bqd,dhk->bhqk\", query, self.query_kernel)\n"
                              "                   + self.query_bias[:, None, :]) / math.sqrt("
                              "self.key_dim)", "queries = (ops.einsum(\"bqd,dhk->bhqk\", query, "
                              "self.query_kernel) / math.sqrt(self.key_dim)\n"
                              "                   + self.query_bias[:, None, :])"),
                             "You add the query bias after scaling the queries"),
    "no biases copied": (('getattr(self, f"{projection}_{kind}").assign(weight)',
                          'if kind == "kernel":\n                getattr(self, f"{projection}_'
                          '{kind}").assign(weight)'), "leaves out the biases"),
    "merged by reshape": (('output = ops.einsum("bhqd,hdo->bqo", heads, self.output_kernel)',
                           'batch, heads_, length, depth = ops.shape(heads)\n'
                           '        merged = ops.reshape(heads, (batch, length, heads_ * depth))\n'
                           '        output = ops.matmul(merged, ops.reshape(self.output_kernel, '
                           '(heads_ * depth, -1)))'),
                          "you merged the heads by reshaping"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(LAYER_SLIPS))
def test_a_slip_in_the_layer_is_named_on_every_seed(slip, seed):
    replacement, message = LAYER_SLIPS[slip]
    verdict = run_check("07.3", layer(replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_a_layer_whose_copy_misses_a_weight_says_which():
    verdict = run_check("07.3", layer(('projection = projection.replace("attention_output", '
                                       '"output")', "pass")))
    assert not verdict.passed
    assert "'MultiHeadAttention' object has no attribute 'attention_output_kernel'" in (
        verdict.reason), verdict.reason
    assert "its weights copied from a keras.layers.MultiHeadAttention" in verdict.reason


def test_a_layer_that_always_returns_the_scores_is_told_the_keras_contract():
    verdict = run_check("07.3", layer(("return (output, weights) if return_attention_scores "
                                       "else output", "return output, weights")))
    assert not verdict.passed and "must return the output alone" in verdict.reason


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
        "You left out the output projection.")


def test_count_otherwise_wrong_gets_the_difference():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        return lesson07.attention_parameter_count(d_model, num_heads, key_dim, value_dim,
                                                  use_bias) + 1

    reason = reason_for("07.4", attention_parameter_count)
    assert reason.startswith("Your `parameters` is off by up to 1 from the right answer")
    assert "add up the sizes of the eight weights" in reason


def test_count_with_the_output_bias_per_head():
    def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
        kernels = 2 * d_model * num_heads * (key_dim + value_dim)
        biases = num_heads * (2 * key_dim + value_dim) + num_heads * d_model
        return kernels + (biases if use_bias else 0)

    assert reason_for("07.4", attention_parameter_count).startswith(
        "You counted the output bias once per head")


# --- The grader -------------------------------------------------------------------------------
