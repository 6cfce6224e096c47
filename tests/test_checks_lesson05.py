"""Lesson 05's self-checks name each mistake.

Every wrong function below is a mistake a learner makes; its test asserts the sentence the check
prints. (tests/test_checks.py holds what every exercise must satisfy; tests/test_grading.py grades
the solution notebook and its learner copy.)
"""

import numpy as np

from course_lib.checks import lesson05, run_check


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
        "Your mask is the wrong way round: True where the query must not look")


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

    assert "(np.triu where np.tril is meant)" in reason_for("05.1", causal_mask_with_offset)


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

    assert "np.triu where np.tril is meant" in reason_for("05.2", decoder_self_attention_mask)


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
    assert reason.endswith("real[:, :, None] for the queries, real[:, None, :] for the keys.")


# --- 05.3 softmax_jacobian --------------------------------------------------------------------


def test_jacobian_without_the_diagonal_term():
    def softmax_jacobian(weights):
        return -weights[..., :, None] * weights[..., None, :]

    assert reason_for("05.3", softmax_jacobian).startswith(
        "You left out the diagonal term: your Jacobian is -a a^T")


def test_jacobian_with_the_wrong_sign():
    def softmax_jacobian(weights):
        return weights[..., :, None] * weights[..., None, :] - weights[..., :, None] * np.eye(
            weights.shape[-1])

    assert "wrong sign" in reason_for("05.3", softmax_jacobian)


def test_jacobian_diagonal_matrix_only():
    def softmax_jacobian(weights):
        return weights[..., :, None] * np.eye(weights.shape[-1])

    assert "diag(a) alone" in reason_for("05.3", softmax_jacobian)


def test_jacobian_with_only_its_diagonal():
    def softmax_jacobian(weights):
        return (weights * (1 - weights))[..., :, None] * np.eye(weights.shape[-1])

    assert "has only its diagonal" in reason_for("05.3", softmax_jacobian)


def test_jacobian_with_np_outer_for_a_batch():
    def softmax_jacobian(weights):
        return np.diag(weights.ravel()) - np.outer(weights, weights)  # right for one row only

    reason = reason_for("05.3", softmax_jacobian)
    assert reason.startswith("Your `jacobian` has shape (18, 18), expected (3, 6, 6)")
    assert "np.outer flattens a batch of rows" in reason


def test_jacobian_whose_columns_do_not_sum_to_zero():
    def softmax_jacobian(weights):
        outer = weights[..., :, None] * weights[..., None, :]
        return weights[..., :, None] * np.eye(weights.shape[-1]) - 0.5 * outer

    assert reason_for("05.3", softmax_jacobian).startswith(
        "The columns of your Jacobian do not sum to 0")


def test_jacobian_that_is_not_symmetric():
    def softmax_jacobian(weights):
        size = weights.shape[-1]
        jacobian = lesson05.softmax_jacobian(weights)
        shift = np.zeros((size, size))
        shift[0, 1], shift[1, 1] = 0.1, -0.1  # columns still sum to 0
        return jacobian + shift

    assert reason_for("05.3", softmax_jacobian).startswith("Your Jacobian is not symmetric")


# --- 05.4 bayes_accuracy ----------------------------------------------------------------------


def best_guess_accuracy(transition, initial, length, weight_by=None, first=None):
    """A learner's loop with switches for the usual mistakes."""
    distribution = np.asarray(initial, dtype=float)
    total = distribution.max() if first is None else first
    for _ in range(length - 1):
        total += (weight_by if weight_by is not None else distribution) @ transition.max(axis=1)
        distribution = distribution @ transition
    return total / length


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
