"""Lesson 11's self-checks name each mistake, and their NumPy references are the library's
computations.

(tests/test_checks.py holds what every exercise must satisfy, including that each registered
mistake gets its own message; tests/test_grading.py grades the solution notebook and its learner
copy.)
"""

import numpy as np

from course_lib.checks import lesson11, run_check


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


def passes(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert verdict.passed, verdict.reason


# --- The references are the library's computations --------------------------------------------


def test_online_softmax_over_blocks_is_softmax_attention():
    from course_lib.numpy_softmax import softmax

    rng = np.random.default_rng(0)
    scores, values = rng.normal(scale=3, size=(2, 4, 10)), rng.normal(size=(2, 10, 3))
    state = (np.full((2, 4), -np.inf), np.zeros((2, 4)), np.zeros((2, 4, 3)))
    for start in range(0, 10, 3):
        state = lesson11.online_softmax_update(*state, scores[..., start:start + 3],
                                               values[..., start:start + 3, :])
    np.testing.assert_allclose(state[2] / state[1][..., None], softmax(scores) @ values,
                               atol=1e-12)


def test_dilated_window_of_dilation_one_is_the_sliding_window_mask():
    from course_lib.efficient_attention import longformer_mask

    np.testing.assert_array_equal(lesson11.dilated_window_mask(12, 3, 1, 2),
                                  longformer_mask(12, 3, 2))
    mask = lesson11.dilated_window_mask(9, 1, 3, 0)
    assert mask[4].nonzero()[0].tolist() == [1, 4, 7]


def test_causal_linear_attention_reference_equals_the_library():
    from keras import ops

    from course_lib.efficient_attention import causal_linear_attention

    rng = np.random.default_rng(1)
    query, keys, values = (rng.normal(scale=1.5, size=(2, 9, 4)) for _ in range(3))
    outputs, state, normaliser = lesson11.causal_linear_attention(query, keys, values, 2)
    np.testing.assert_allclose(lesson11.causal_linear_attention(query, keys, values, 1)[0],
                               outputs, atol=1e-10)  # every chunk size: the same numbers
    expected = ops.convert_to_numpy(causal_linear_attention(
        query.astype("float32"), keys.astype("float32"), values.astype("float32"),
        chunk_size=4))
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(state, np.einsum("btd,btv->bdv", lesson11.elu_plus_one(keys),
                                                values), atol=1e-10)
    np.testing.assert_allclose(normaliser, lesson11.elu_plus_one(keys).sum(axis=1), atol=1e-10)


# --- 11.1 online_softmax_update ---------------------------------------------------------------


def test_update_written_another_way_passes():
    def online_softmax_update(running_max, running_sum, output, scores, values):
        new_max = np.max(np.concatenate([running_max[..., None], scores], axis=-1), axis=-1)
        weights = np.exp(scores - new_max[..., None])
        factor = np.exp(running_max - new_max)
        return (new_max, factor * running_sum + weights.sum(-1),
                factor[..., None] * output + np.einsum("...qb,...bv->...qv", weights, values))

    passes("11.1", online_softmax_update)


def test_update_with_another_reference_point_is_told_about_the_maximum():
    """Any reference point m gives the same output / sum in the end, but the state is defined
    with the running maximum (which keeps every exponential at most 1)."""
    def online_softmax_update(running_max, running_sum, output, scores, values):
        new_max = np.maximum(running_max, scores.mean(axis=-1))
        weights = np.exp(scores - new_max[..., None])
        factor = np.exp(running_max - new_max)
        return new_max, factor * running_sum + weights.sum(-1), (
            factor[..., None] * output + weights @ values)

    assert reason_for("11.1", online_softmax_update).startswith(
        "Your new running maximum is not the larger")


def test_update_for_one_query_row_only_gets_the_shape_message():
    def online_softmax_update(running_max, running_sum, output, scores, values):
        return lesson11.online_softmax_update(running_max, running_sum, output, scores,
                                              values)[:2] + (np.zeros(3),)

    assert reason_for("11.1", online_softmax_update).startswith("Your `output` has shape (3,)")


# --- 11.2 dilated_window_mask -----------------------------------------------------------------


def test_mask_built_from_a_loop_passes():
    def dilated_window_mask(length, window, dilation, global_tokens):
        mask = np.zeros((length, length), dtype=bool)
        for i in range(length):
            for m in range(-window, window + 1):
                if 0 <= i + m * dilation < length:
                    mask[i, i + m * dilation] = True
        mask[:global_tokens, :] = True
        mask[:, :global_tokens] = True
        return mask

    passes("11.2", dilated_window_mask)


def test_mask_without_global_tokens_is_off():
    def dilated_window_mask(length, window, dilation, global_tokens):
        return lesson11.dilated_window_mask(length, window, dilation, 0)

    assert reason_for("11.2", dilated_window_mask).startswith("Your `mask` is off by up to 1")


# --- 11.3 causal_linear_attention -------------------------------------------------------------


def test_token_by_token_recurrence_ignoring_the_chunks_passes():
    def causal_linear_attention(query, keys, values, chunk_size):
        phi_q = np.where(query > 0, query + 1, np.exp(np.minimum(query, 0)))
        phi_k = np.where(keys > 0, keys + 1, np.exp(np.minimum(keys, 0)))
        states = np.cumsum(phi_k[..., :, None] * values[..., None, :], axis=-3)  # (.., T, d, dv)
        normalisers = np.cumsum(phi_k, axis=-2)
        numerator = np.einsum("...td,...tdv->...tv", phi_q, states)
        outputs = numerator / np.sum(phi_q * normalisers, axis=-1, keepdims=True)
        return outputs, states[..., -1, :, :], normalisers[..., -1, :]

    passes("11.3", causal_linear_attention)


def test_state_stored_values_by_keys_is_transposed():
    def causal_linear_attention(query, keys, values, chunk_size):
        outputs, state, normaliser = lesson11.causal_linear_attention(query, keys, values,
                                                                      chunk_size)
        return outputs, np.swapaxes(state, -1, -2), normaliser

    assert reason_for("11.3", causal_linear_attention).startswith("Your `state` is transposed")


def test_first_output_that_is_not_the_first_value_is_named():
    def causal_linear_attention(query, keys, values, chunk_size):
        outputs, state, normaliser = lesson11.causal_linear_attention(query, keys, values,
                                                                      chunk_size)
        outputs = outputs.copy()
        outputs[..., 0, :] = 0.0  # e.g. a loop that starts at t = 1
        return outputs, state, normaliser

    assert reason_for("11.3", causal_linear_attention).startswith(
        "Your output at position 0 is not value 0")


def test_softmax_attention_instead_of_linear_is_off():
    from course_lib.numpy_softmax import softmax

    def causal_linear_attention(query, keys, values, chunk_size):
        length = query.shape[-2]
        scores = query @ np.swapaxes(keys, -1, -2) / np.sqrt(query.shape[-1])
        weights = softmax(scores, mask=np.tril(np.ones((length, length), dtype=bool)))
        _, state, normaliser = lesson11.causal_linear_attention(query, keys, values, chunk_size)
        return weights @ values, state, normaliser

    assert reason_for("11.3", causal_linear_attention).startswith("Your `outputs` is off by")


# --- Slips a learner makes, in the learner's own code, named by the check -------------------


def test_an_upside_down_factor_guarded_for_the_first_block_is_named():
    def online_softmax_update(running_max, running_sum, output, scores, values):
        new_max = np.maximum(running_max, scores.max(axis=-1))
        factor = np.where(np.isneginf(running_max), 0.0, np.exp(new_max - running_max))
        weights = np.exp(scores - new_max[..., None])
        return (new_max, running_sum * factor + weights.sum(axis=-1),
                output * factor[..., None] + weights @ values)

    assert reason_for("11.1", online_softmax_update).startswith(
        "Your rescaling factor is upside down")


def test_one_global_token_too_many_is_named():
    def dilated_window_mask(length, window, dilation, global_tokens):
        offsets = np.subtract.outer(np.arange(length), np.arange(length))
        mask = (np.abs(offsets) <= window * dilation) & (offsets % dilation == 0)
        mask[:global_tokens + 1] = True
        mask[:, :global_tokens + 1] = True
        return mask

    assert reason_for("11.2", dilated_window_mask).startswith(
        "You made one position too many global")


def _learners_linear_attention(feature_map=lesson11.elu_plus_one, accumulate=True,
                               full_chunks_only=False):
    def causal_linear_attention(query, keys, values, chunk_size):
        query, keys = feature_map(query), feature_map(keys)
        state = np.zeros((*query.shape[:-2], query.shape[-1], values.shape[-1]))
        normaliser = np.zeros(query.shape[:-2] + query.shape[-1:])
        outputs = np.zeros(values.shape)
        length = query.shape[-2]
        stop = length - chunk_size + 1 if full_chunks_only else length
        for start in range(0, stop, chunk_size):
            q, k = query[..., start:start + chunk_size, :], keys[..., start:start + chunk_size, :]
            v = values[..., start:start + chunk_size, :]
            within = np.tril(q @ np.swapaxes(k, -1, -2))
            numerator = q @ state + within @ v
            denominator = (q @ normaliser[..., None])[..., 0] + within.sum(axis=-1)
            outputs[..., start:start + chunk_size, :] = numerator / denominator[..., None]
            state = (state if accumulate else 0) + np.swapaxes(k, -1, -2) @ v
            normaliser = (normaliser if accumulate else 0) + k.sum(axis=-2)
        return outputs, state, normaliser

    return causal_linear_attention


def test_the_learners_own_linear_attention_passes():
    passes("11.3", _learners_linear_attention())


def test_a_state_that_forgets_earlier_chunks_is_named():
    assert reason_for("11.3", _learners_linear_attention(accumulate=False)).startswith(
        "Your state holds only the last chunk's keys and values")


def test_a_loop_over_full_chunks_only_is_named():
    assert reason_for("11.3", _learners_linear_attention(full_chunks_only=True)).startswith(
        "Your loop leaves out the last, shorter chunk")


def test_relu_plus_one_as_the_feature_map_is_named():
    def relu_plus_one(x):
        return np.maximum(x, 0.0) + 1.0

    assert reason_for("11.3", _learners_linear_attention(feature_map=relu_plus_one)).startswith(
        "Your feature map is max(x, 0) + 1")
