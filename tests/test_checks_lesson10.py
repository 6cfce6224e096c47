"""Lesson 10's self-checks name each mistake, and their references agree with Keras, keras_hub
and the library.

(tests/test_checks.py checks every registered mistake on five seeds; tests/test_grading.py grades
the solution notebook and its learner copy.) Here: the NumPy references equal keras_hub's
``RotaryEmbedding``, Keras's ``GroupQueryAttention`` with the case's weights, the mask of Keras's
``MultiHeadAttention(sliding_window=w)`` shifted by the offset, and the library's
``kv_cache_bytes``; the diagnoses read from the outputs say what they should.
"""

import numpy as np

from course_lib import generation
from course_lib.attention import sliding_window_mask
from course_lib.checks import EXERCISES, lesson10, run_check


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- The references agree with Keras, keras_hub and the library ---------------------------------


def test_rope_reference_equals_keras_hub():
    import keras_hub
    from keras import ops

    for case in EXERCISES["10.1"].cases(3):
        x = case["x"]
        # keras_hub wants the sequence on axis 1: a (B, H, T, d) case is moved to (B, T, H, d)
        as_sequence = x[None] if x.ndim == 2 else (np.swapaxes(x, 1, 2) if x.ndim == 4 else x)
        layer = keras_hub.layers.RotaryEmbedding(max_wavelength=case["max_wavelength"])
        theirs = ops.convert_to_numpy(layer(as_sequence.astype("float32"),
                                            positions=case["positions"]))
        theirs = theirs[0] if x.ndim == 2 else (np.swapaxes(theirs, 1, 2) if x.ndim == 4
                                                else theirs)
        np.testing.assert_allclose(lesson10.apply_rope(*case.values()), theirs, atol=2e-5)


def test_grouped_query_attention_reference_equals_keras():
    import keras
    from keras import ops

    for case in EXERCISES["10.2"].cases(4):
        query_kernel, key_kernel = case["query_kernel"], case["key_kernel"]
        depth, query_heads, head_dim = query_kernel.shape
        layer = keras.layers.GroupQueryAttention(head_dim, query_heads, key_kernel.shape[1])
        layer.build(case["query"].shape, case["value"].shape)
        for name in ("query", "key", "value"):
            getattr(layer, f"_{name}_dense").kernel.assign(case[f"{name}_kernel"])
            getattr(layer, f"_{name}_dense").bias.assign(case[f"{name}_bias"])
        layer._output_dense.kernel.assign(case["output_kernel"])
        layer._output_dense.bias.assign(case["output_bias"])
        output, weights = layer(case["query"].astype("float32"), case["value"].astype("float32"),
                                use_causal_mask=case["use_causal_mask"],
                                return_attention_scores=True)
        expected_output, expected_weights = lesson10.grouped_query_attention(*case.values())
        np.testing.assert_allclose(ops.convert_to_numpy(output), expected_output, atol=1e-4)
        np.testing.assert_allclose(ops.convert_to_numpy(weights), expected_weights, atol=1e-5)


def test_window_mask_reference_is_keras_sliding_window_shifted_by_the_offset():
    import keras
    from keras import ops

    for case in EXERCISES["10.3"].cases(5):
        reference = lesson10.causal_window_mask(*case.values())
        np.testing.assert_array_equal(reference, ops.convert_to_numpy(sliding_window_mask(
            case["window"], case["query_length"], case["key_length"], case["offset"])))
    # Keras's mask, read off the weights of MultiHeadAttention(sliding_window=w), causal
    x = np.random.default_rng(0).normal(size=(1, 9, 4)).astype("float32")
    layer = keras.layers.MultiHeadAttention(1, 4, sliding_window=3)
    _, weights = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(weights)[0, 0] > 0,
                                  lesson10.causal_window_mask(9, 9, 3, 0))


def test_cache_bytes_reference_equals_the_library():
    for case in EXERCISES["10.4"].cases(6):
        expected = [generation.kv_cache_bytes(
            case["num_layers"], case["d_model"], case["num_heads"], int(length),
            num_key_value_heads=case["num_key_value_heads"],
            dtype={2: "bfloat16", 4: "float32"}[case["bytes_per_number"]],
            sliding_window=case["window"]) for length in case["lengths"]]
        np.testing.assert_array_equal(lesson10.long_context_cache_bytes(*case.values()),
                                      expected)
    mha = lesson10.long_context_cache_bytes(32, 4096, 32, 32, [32_768], 10**6, 2)
    gqa = lesson10.long_context_cache_bytes(32, 4096, 32, 8, [32_768], 10**6, 2)
    assert round(mha[0] / 1e9, 1) == 17.2 and round(gqa[0] / 1e9, 1) == 4.3


# --- Diagnoses that are not a registered mistake ----------------------------------------------


def test_a_rotation_that_changes_lengths_is_told_so():
    def apply_rope(x, positions, max_wavelength):
        rotated = lesson10.apply_rope(x, positions, max_wavelength)
        half = rotated.shape[-1] // 2
        rotated[..., half:] *= 1.5                       # the second features scaled
        return rotated

    assert reason_for("10.1", apply_rope).startswith("Your rotated vectors do not have the "
                                                     "lengths of the inputs")


def test_weights_over_the_wrong_axis_are_named():
    def grouped_query_attention(*arguments):
        output, weights = lesson10.grouped_query_attention(*arguments)
        return output, weights / weights.sum(axis=-1, keepdims=True) * 0.5

    assert "do not sum to 1 along the keys" in reason_for("10.2", grouped_query_attention)


def test_weights_without_the_query_head_axis_name_the_shapes():
    def grouped_query_attention(*arguments):
        output, weights = lesson10.grouped_query_attention(*arguments)
        return output, weights.mean(axis=1)

    reason = reason_for("10.2", grouped_query_attention)
    assert reason.startswith("Your `weights` has shape (2, 5, 5), expected (2, 4, 5, 5)")


def test_an_int_mask_passes():
    def causal_window_mask(query_length, key_length, window, offset):
        return lesson10.causal_window_mask(query_length, key_length, window, offset).astype(int)

    assert run_check("10.3", causal_window_mask).passed


# --- Slips found by a learner's pass, written as a learner writes them -------------------------


def test_frequencies_over_half_the_depth_are_named():
    def apply_rope(x, positions, max_wavelength):
        half = x.shape[-1] // 2
        frequencies = max_wavelength ** (-np.arange(0, x.shape[-1], 2) * 2 / x.shape[-1])
        angles = np.asarray(positions)[:, None] * frequencies
        first, second = x[..., :half], x[..., half:]
        return np.concatenate([first * np.cos(angles) - second * np.sin(angles),
                               second * np.cos(angles) + first * np.sin(angles)], axis=-1)

    assert reason_for("10.1", apply_rope).startswith("Your frequencies fall off twice as fast")


def _learner_gqa(causal_rows="first", masked=-1e9, diagonal=0, output_bias_added=True):
    """A learner's grouped-query attention; the arguments make one slip each."""
    def grouped_query_attention(query, value, query_kernel, query_bias, key_kernel, key_bias,
                                value_kernel, value_bias, output_kernel, output_bias,
                                use_causal_mask):
        queries = np.einsum("btd,dhk->bthk", query, query_kernel) + query_bias
        group = query_kernel.shape[1] // key_kernel.shape[1]
        keys = np.repeat(np.einsum("btd,dhk->bthk", value, key_kernel) + key_bias, group, 2)
        values = np.repeat(np.einsum("btd,dhk->bthk", value, value_kernel) + value_bias, group,
                           2)
        scores = np.einsum("bqhd,bkhd->bhqk", queries, keys) / np.sqrt(query_kernel.shape[-1])
        if use_causal_mask:
            query_length, key_length = scores.shape[-2:]
            shift = diagonal if causal_rows == "first" else key_length - query_length
            allowed = np.tril(np.ones((query_length, key_length), bool), k=shift)
            scores = np.where(allowed, scores, masked)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        output = np.einsum("bhqk,bkhd,hdo->bqo", weights, values, output_kernel)
        return (output + output_bias if output_bias_added else output), weights

    return grouped_query_attention


def test_the_learner_gqa_without_slips_passes():
    assert run_check("10.2", _learner_gqa()).passed


def test_a_causal_mask_aligned_on_the_last_keys_is_named():
    reason = reason_for("10.2", _learner_gqa(causal_rows="last"))
    assert reason.startswith("With more keys than queries, your causal mask lines the queries "
                             "up with the last keys")


def test_masked_scores_set_to_zero_are_named():
    assert reason_for("10.2", _learner_gqa(masked=0.0)).startswith(
        "Your masked keys still get attention")


def test_a_causal_mask_without_the_diagonal_is_named():
    assert reason_for("10.2", _learner_gqa(diagonal=-1)).startswith(
        "Under your causal mask no query sees its own key")


def test_a_forgotten_output_bias_is_named():
    assert reason_for("10.2", _learner_gqa(output_bias_added=False)).startswith(
        "You left out the bias of the output projection")


def test_window_masks_that_misplace_the_query_are_named():
    def without_itself(query_length, key_length, window, offset):
        i = offset + np.arange(query_length)[:, None]
        j = np.arange(key_length)
        return (j < i) & (i - j <= window)

    def at_the_last_keys(query_length, key_length, window, offset):
        i = key_length - query_length + np.arange(query_length)[:, None]
        j = np.arange(key_length)
        return (j <= i) & (i - j < window)

    assert reason_for("10.3", without_itself).startswith("Your queries do not see their own key")
    assert reason_for("10.3", at_the_last_keys).startswith("You placed the queries at the last "
                                                           "key positions")


def test_cache_slips_in_units_and_window_are_named():
    def cache(bytes_factor=1, slots=0, cap=np.minimum, numbers=False):
        def long_context_cache_bytes(num_layers, d_model, num_heads, num_key_value_heads,
                                     lengths, window, bytes_per_number):
            kept = cap(np.asarray(lengths), window + slots)
            size = 1 if numbers else bytes_per_number * bytes_factor
            return 2 * num_layers * kept * num_key_value_heads * (d_model // num_heads) * size

        return long_context_cache_bytes

    assert run_check("10.4", cache()).passed
    assert reason_for("10.4", cache(numbers=True)).startswith("You counted numbers, not bytes")
    assert reason_for("10.4", cache(bytes_factor=8)).startswith("You counted bits, not bytes")
    assert reason_for("10.4", cache(slots=1)).startswith("Your cache keeps window + 1 positions")
    assert reason_for("10.4", cache(cap=np.maximum)).startswith("Your cache holds the larger of "
                                                                "the length and the window")
