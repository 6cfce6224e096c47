"""Lesson 05's self-checks name each mistake.

Every wrong function below is a mistake a learner makes; its test asserts the sentence the check
prints. Exercise 05.3 (a Keras layer) is tested with the solution notebook's own class and with
versions of it edited as a learner's slip would. (tests/test_checks.py holds what every exercise
must satisfy; tests/test_grading.py grades the solution notebook and its learner copy.)
"""

import numpy as np
import pytest

from course_lib.checks import run_check
from course_lib.checks.core import CHECK_SEED
from tests.exercise_sources import solution_object


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- 05.1 causal_mask_with_offset -----------------------------------------------------------


def rows_and_columns(query_length, key_length):
    return np.arange(query_length)[:, None], np.arange(key_length)[None, :]


def test_offset_mask_of_the_opposite_polarity():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return columns > offset + rows

    assert reason_for("05.1", causal_mask_with_offset).startswith(
        "Your mask has the opposite polarity: True exactly where the query must not look")


def test_offset_mask_ignoring_the_offset():
    def causal_mask_with_offset(query_length, key_length, offset):
        return np.tril(np.ones((query_length, key_length), dtype=bool))

    assert reason_for("05.1", causal_mask_with_offset).startswith(
        "Your mask ignores `offset`: it is top-left aligned")


def test_offset_mask_always_bottom_right():
    def causal_mask_with_offset(query_length, key_length, offset):
        return np.tril(np.ones((query_length, key_length), dtype=bool),
                       k=key_length - query_length)

    assert "always bottom-right aligned" in reason_for("05.1", causal_mask_with_offset)


def test_offset_mask_excluding_the_diagonal():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return columns < offset + rows

    assert "hides each query from its own key (the diagonal): off by one" in reason_for(
        "05.1", causal_mask_with_offset)


def test_offset_mask_seeing_the_next_token():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return columns <= offset + rows + 1

    assert "one key past its own position: off by one" in reason_for(
        "05.1", causal_mask_with_offset)


def test_offset_mask_upper_triangle():
    def causal_mask_with_offset(query_length, key_length, offset):
        return np.triu(np.ones((query_length, key_length), dtype=bool), k=offset)

    assert "the upper triangle where the lower one is meant" in reason_for(
        "05.1", causal_mask_with_offset)


def test_offset_mask_transposed():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return (columns <= offset + rows).T

    reason = reason_for("05.1", causal_mask_with_offset)
    assert reason.startswith("Your `mask` is transposed: expected shape (3, 7)")
    assert "one row per query, one column per key" in reason


def test_offset_mask_as_an_additive_mask():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return np.where(columns <= offset + rows, 0.0, -np.inf)

    reason = reason_for("05.1", causal_mask_with_offset)
    assert reason.startswith("There is NaN or infinity in your `mask`")
    assert "not an additive mask of 0 and -inf" in reason


def test_offset_mask_that_leaks_one_key_names_the_query_and_the_key():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        mask = columns <= offset + rows
        mask[:, -1] = True  # every query sees the last slot of the cache
        return mask

    reason = reason_for("05.1", causal_mask_with_offset)
    assert reason.startswith("Your mask lets query 0 (the token at position 4) see key 6, which "
                             "comes after it: the future leaks (called with query_length=3, "
                             "key_length=7, offset=4).")


def test_offset_mask_hiding_the_cache_start():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return (columns <= offset + rows) & (columns > 0)  # forgets the first slot

    reason = reason_for("05.1", causal_mask_with_offset)
    assert reason.startswith("Your mask hides key 0 from query 0")


def test_offset_mask_of_numbers_other_than_true_and_false():
    def causal_mask_with_offset(query_length, key_length, offset):
        rows, columns = rows_and_columns(query_length, key_length)
        return np.where(columns <= offset + rows, 1.0, -1e9)

    assert reason_for("05.1", causal_mask_with_offset).startswith(
        "Your `mask` holds values other than True and False")


# --- 05.2 decoder_self_attention_mask -------------------------------------------------------


def real_and_causal(token_ids, pad_id):
    token_ids = np.asarray(token_ids)
    length = token_ids.shape[-1]
    return token_ids != pad_id, np.tril(np.ones((length, length), dtype=bool))


def test_decoder_mask_combined_with_or():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal | (real[:, :, None] & real[:, None, :])

    assert "combine the causal and the padding masks with OR" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_padding_on_the_queries_only():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal & real[:, :, None]

    assert "padding mask is on the queries (rows) only" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_padding_on_the_keys_only():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal & real[:, None, :]

    assert "padding mask is on the keys (columns) only" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_without_padding():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return np.broadcast_to(causal, (len(real), *causal.shape))

    assert "ignores the padding: it is the causal mask alone" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_without_the_causal_part():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, _ = real_and_causal(token_ids, pad_id)
        return real[:, :, None] & real[:, None, :]

    assert "no causal part" in reason_for("05.2", decoder_self_attention_mask)


def test_decoder_mask_with_the_inverted_causal_part():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return ~causal & real[:, :, None] & real[:, None, :]

    assert "causal part is the wrong way round" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_with_the_upper_triangle():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal.T & real[:, :, None] & real[:, None, :]

    assert "the upper triangle where the lower one is meant" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_padding_hard_coded_to_zero():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, 0)
        return causal & real[:, :, None] & real[:, None, :]

    assert "compare the tokens with 0 instead of `pad_id`" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_with_padding_of_the_opposite_polarity():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal & ~real[:, :, None] & ~real[:, None, :]

    assert "padding mask is True at the padding" in reason_for(
        "05.2", decoder_self_attention_mask)


def test_decoder_mask_of_shape_batch_one_keys():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, _ = real_and_causal(token_ids, pad_id)
        return real[:, None, :]

    reason = reason_for("05.2", decoder_self_attention_mask)
    assert reason.startswith("Your `mask` has shape (3, 1, 5), expected (3, 5, 5)")
    assert "one T x T mask per sequence" in reason


def test_decoder_mask_broken_elsewhere_names_the_rule():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        mask = causal & real[:, :, None] & real[:, None, :]
        mask[:, -1, :] = real[:, None, :][:, 0, :]  # the last query sees every real key
        return mask

    reason = reason_for("05.2", decoder_self_attention_mask)
    assert reason.startswith("Your mask is True for query 4 and key 0 of sequence 0, but the "
                             "query is padding (pad_id=0).")


def test_decoder_mask_that_raises_gets_the_broadcasting_hint():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return causal & real  # (T, T) & (B, T): wrong broadcasting

    reason = reason_for("05.2", decoder_self_attention_mask)
    assert reason.startswith("`decoder_self_attention_mask` raised ValueError: operands could "
                             "not be broadcast together")
    assert reason.endswith("one way for the queries and another for the keys.")


def test_decoder_mask_of_the_opposite_polarity_is_named_as_such():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return ~(causal & real[:, :, None] & real[:, None, :])

    assert reason_for("05.2", decoder_self_attention_mask).startswith(
        "Your mask has the opposite polarity: it is True exactly where a query must not look.")


def test_decoder_mask_built_as_in_the_tensorflow_tutorial_is_named_as_inverted_polarity():
    """1 = masked: the look-ahead mask OR the padding of the keys (tensorflow/text #894)."""
    def decoder_self_attention_mask(token_ids, pad_id):
        token_ids = np.asarray(token_ids)
        length = token_ids.shape[-1]
        look_ahead = 1 - np.tril(np.ones((length, length)))
        padding = (token_ids == pad_id).astype(float)[:, None, :]
        return np.maximum(look_ahead, padding)

    reason = reason_for("05.2", decoder_self_attention_mask)
    assert reason.startswith("Your mask has the opposite polarity: True marks the keys to hide")
    assert "the future leaks" not in reason


def test_decoder_mask_inverted_on_the_padding_of_the_queries_only_is_still_polarity():
    def decoder_self_attention_mask(token_ids, pad_id):
        real, causal = real_and_causal(token_ids, pad_id)
        return ~causal[None] | ~real[:, None, :]  # True = masked, queries never masked

    assert reason_for("05.2", decoder_self_attention_mask).startswith(
        "Your mask has the opposite polarity")


# --- 05.3 CausalSelfAttention (build) ---------------------------------------------------------

SEEDS = (CHECK_SEED, 0, 1, 2)


def layer(*replacements):
    return solution_object("05.3", "CausalSelfAttention", *replacements)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_layer_passes_on_every_seed(seed):
    verdict = run_check("05.3", layer(), seed=seed)
    assert verdict.passed, verdict.reason


SCALED = "queries = ops.matmul(x, self.query_kernel) / np.sqrt(self.key_dim)"
COMBINED = "allowed = allowed & real[:, :, None] & real[:, None, :]"
LAYER_SLIPS = {
    "padding polarity": ((COMBINED, "allowed = allowed & ~real[:, :, None] & ~real[:, None, :]"),
                         "Your padding mask has the opposite polarity"),
    "no scale": ((SCALED, "queries = ops.matmul(x, self.query_kernel)"),
                 "Your scores are not scaled"),
    "no causal mask": (("allowed = ops.tril(ops.ones((length, length), dtype=\"bool\"))[None]",
                        "allowed = ops.ones((1, length, length), dtype=\"bool\")"),
                       "Your layer has no causal mask"),
    "upper triangle": (("ops.tril(", "ops.triu("), "the upper triangle where the lower one"),
    "padded keys attended": ((COMBINED, "allowed = allowed & real[:, :, None]"),
                             "hides the padded queries but not the padded keys"),
    "padded queries attend": ((COMBINED, "allowed = allowed & real[:, None, :]"),
                              "The padded queries of your layer still attend"),
    "padding ignored": ((COMBINED, "pass"), "Your layer ignores `padding_mask`"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("slip", sorted(LAYER_SLIPS))
def test_a_slip_in_the_layer_is_named_on_every_seed(slip, seed):
    replacement, message = LAYER_SLIPS[slip]
    verdict = run_check("05.3", layer(replacement), seed=seed)
    assert not verdict.passed and message in verdict.reason, verdict.reason


def test_a_layer_with_a_mask_of_the_tensorflow_tutorials_polarity():
    """1 = masked: the look-ahead part OR the padded keys, used as if True meant attend."""
    verdict = run_check("05.3", layer(
        ("allowed = ops.tril(", "allowed = ~ops.tril("),
        (COMBINED, "allowed = allowed | ~real[:, None, :]")))
    assert not verdict.passed and "opposite polarity" in verdict.reason, verdict.reason


def test_a_layer_that_leaks_some_other_way_is_caught_by_the_no_leak_property():
    """The mask is right, but the values are averaged over the whole sequence first."""
    verdict = run_check("05.3", layer(
        ("values = ops.matmul(x, self.value_kernel)",
         "values = ops.matmul(x + ops.mean(x, axis=1, keepdims=True), self.value_kernel)")))
    assert not verdict.passed
    assert verdict.reason.startswith("The future leaks: the output of token"), verdict.reason


def test_a_layer_that_fails_on_a_missing_mask_names_the_call():
    verdict = run_check("05.3", layer(("if padding_mask is not None:", "if True:")))
    assert not verdict.passed
    assert "padding_mask=None" in verdict.reason and "raised" in verdict.reason, verdict.reason


def test_a_layer_whose_weights_have_other_names_is_told_the_contract():
    verdict = run_check("05.3", layer(("self.query_kernel = self.add_weight",
                                       "self.w_query = self.add_weight"),
                                      ("ops.matmul(x, self.query_kernel)",
                                       "ops.matmul(x, self.w_query)")))
    assert not verdict.passed
    assert "has no weight `query_kernel`" in verdict.reason, verdict.reason
    assert "kernels" not in verdict.reason.split("(called with")[1].split(")")[0]


# --- 05.4 bayes_accuracy ----------------------------------------------------------------------


def best_guess_accuracy(transition, initial, length, weight_by=None, first=None):
    """A learner's loop with switches for the usual mistakes."""
    distribution = np.asarray(initial, dtype=float)
    total = distribution.max() if first is None else first
    for _ in range(length - 1):
        total += (weight_by if weight_by is not None else distribution) @ transition.max(axis=1)
        distribution = distribution @ transition
    return total / length


def test_bayes_with_the_best_guess_read_from_a_column():
    def bayes_accuracy(transition, initial, length):
        distribution = np.asarray(initial, dtype=float)
        total = distribution.max()
        for _ in range(length - 1):
            total += distribution @ transition.max(axis=0)
            distribution = distribution @ transition
        return total / length

    assert "maximum over a column of the transition matrix (axis 0)" in reason_for(
        "05.4", bayes_accuracy)


def test_bayes_moving_the_distribution_the_wrong_way():
    def bayes_accuracy(transition, initial, length):
        distribution = np.asarray(initial, dtype=float)
        total = distribution.max()
        for _ in range(length - 1):
            total += distribution @ transition.max(axis=1)
            distribution = transition @ distribution
        return total / length

    assert "on the wrong side" in reason_for("05.4", bayes_accuracy)


def test_bayes_with_the_matrix_transposed():
    def bayes_accuracy(transition, initial, length):
        return best_guess_accuracy(np.asarray(transition).T, initial, length)

    assert reason_for("05.4", bayes_accuracy).startswith(
        "You read the transition matrix transposed")


def test_bayes_without_the_first_token():
    def bayes_accuracy(transition, initial, length):
        distribution, total = np.asarray(initial, dtype=float), 0.0
        for _ in range(length - 1):
            total += distribution @ transition.max(axis=1)
            distribution = distribution @ transition
        return total / (length - 1)

    reason = reason_for("05.4", bayes_accuracy)
    assert reason.startswith("`bayes_accuracy` raised ZeroDivisionError")
    assert "length=1" in reason and "average over `length`, not `length - 1`" in reason

    def bayes_accuracy_in_numpy(transition, initial, length):
        distribution, total = np.asarray(initial, dtype=float), np.float64(0.0)
        for _ in range(length - 1):
            total += distribution @ transition.max(axis=1)
            distribution = distribution @ transition
        return total / (length - 1)  # NumPy: 0/0 is NaN, not an error

    assert reason_for("05.4", bayes_accuracy_in_numpy).startswith("You left out the first token")


def test_bayes_with_a_certain_first_token():
    def bayes_accuracy(transition, initial, length):
        return best_guess_accuracy(transition, initial, length, first=1.0)

    assert reason_for("05.4", bayes_accuracy).startswith(
        "You count the first token as always right")


def test_bayes_with_a_uniform_first_guess():
    def bayes_accuracy(transition, initial, length):
        return best_guess_accuracy(transition, initial, length, first=1 / len(initial))

    assert "uniform guess, 1/V" in reason_for("05.4", bayes_accuracy)


def test_bayes_weighting_states_equally():
    def bayes_accuracy(transition, initial, length):
        uniform = np.full(len(initial), 1 / len(initial))
        return best_guess_accuracy(transition, initial, length, weight_by=uniform)

    assert "weight every previous token equally" in reason_for("05.4", bayes_accuracy)


def test_bayes_with_a_distribution_that_never_moves():
    def bayes_accuracy(transition, initial, length):
        return best_guess_accuracy(transition, initial, length, weight_by=np.asarray(initial))

    assert "use `initial` as the distribution of the previous token at every step" in (
        reason_for("05.4", bayes_accuracy))


def test_bayes_one_step_ahead():
    def bayes_accuracy(transition, initial, length):
        distribution = np.asarray(initial, dtype=float)
        total = distribution.max()
        for _ in range(length - 1):
            distribution = distribution @ transition  # moved on before use
            total += distribution @ transition.max(axis=1)
        return total / length

    assert reason_for("05.4", bayes_accuracy).startswith("Off by one step")


def test_bayes_summed_instead_of_averaged():
    def bayes_accuracy(transition, initial, length):
        return best_guess_accuracy(transition, initial, length) * length

    assert "summed the chances" in reason_for("05.4", bayes_accuracy)


def test_bayes_out_of_range_is_named():
    def bayes_accuracy(transition, initial, length):
        return 1.0 + best_guess_accuracy(transition, initial, length)

    assert reason_for("05.4", bayes_accuracy).startswith("Your accuracy is")


def test_bayes_giving_nan_for_a_single_token():
    def bayes_accuracy(transition, initial, length):
        if length == 1:
            return np.nan  # "nothing to predict": but the first token is predicted too
        return best_guess_accuracy(transition, initial, length)

    reason = reason_for("05.4", bayes_accuracy)
    assert reason.startswith("There is NaN or infinity in your `accuracy`")
    assert "do not divide by length - 1" in reason


# --- The grader -------------------------------------------------------------------------------
