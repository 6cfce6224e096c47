"""Lesson 10's self-checks name each mistake, and their references agree with Keras, keras_hub
and the library.

(tests/test_checks.py checks every registered mistake on five seeds; tests/test_grading.py grades
the solution notebook and its learner copy.) Here: the NumPy references equal rotations by
explicit 2 × 2 blocks and keras_hub's ``RotaryEmbedding`` on permuted features, Keras's
``GroupQueryAttention`` with the case's weights, the mask of Keras's
``MultiHeadAttention(sliding_window=w)`` shifted by the offset, and a search with the library's
``kv_cache_bytes``; the diagnoses read from the outputs say what they should.
"""

import math

import numpy as np

from course_lib import generation
from course_lib.attention import sliding_window_mask
from course_lib.checks import EXERCISES, lesson10, run_check


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- The references agree with Keras, keras_hub and the library ---------------------------------


def _rows(case):
    """Each sequence of a RoPE case: its rows ``(T, d)`` and their positions ``(T,)``."""
    x = case["x"]
    positions = np.broadcast_to(case["positions"], x.shape[:-1])
    for index in np.ndindex(x.shape[:-2]):
        yield index, x[index], positions[index]


def test_rope_reference_turns_each_neighbour_pair_by_its_block():
    for case in EXERCISES["10.1"].cases(3):
        rotated = lesson10.apply_rope(*case.values())
        depth = case["x"].shape[-1]
        for index, rows, positions in _rows(case):
            for row, position, turned in zip(rows, positions, rotated[index], strict=True):
                blocks = np.zeros((depth, depth))
                for pair in range(depth // 2):
                    angle = position * case["base"] ** (-2 * pair / depth)
                    blocks[2 * pair:2 * pair + 2, 2 * pair:2 * pair + 2] = [
                        [np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
                np.testing.assert_allclose(turned, blocks @ row, atol=1e-12)


def test_rope_reference_is_keras_hubs_halves_rope_of_permuted_features():
    import keras_hub
    from keras import ops

    for case in EXERCISES["10.1"].cases(3):
        depth = case["x"].shape[-1]
        evens_then_odds = np.concatenate([np.arange(0, depth, 2), np.arange(1, depth, 2)])
        layer = keras_hub.layers.RotaryEmbedding(max_wavelength=case["base"])
        rotated = lesson10.apply_rope(*case.values())
        for index, rows, positions in _rows(case):
            halves = ops.convert_to_numpy(layer(rows[None, :, evens_then_odds].astype("float32"),
                                                positions=positions))[0]
            np.testing.assert_allclose(rotated[index][:, evens_then_odds], halves, atol=2e-5)


def test_rope_reference_scores_depend_on_the_offset_only():
    generator = np.random.default_rng(7)
    query, key = generator.normal(size=(2, 1, 12))
    places = generator.integers(0, 5000, size=8)
    scores = [(lesson10.apply_rope(query, [m], 10_000.0)
               @ lesson10.apply_rope(key, [m + 11], 10_000.0).T).item() for m in places]
    assert np.ptp(scores) < 1e-9 * np.abs(scores).max()
    assert abs(scores[0] - (lesson10.apply_rope(query, [0], 10_000.0)
                            @ lesson10.apply_rope(key, [12], 10_000.0).T).item()) > 1e-3


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


def _cache_bytes(case, length):
    """The library's bytes for ``length`` tokens of the case's model and batch."""
    window = None if case["window"] == math.inf else case["window"]
    return generation.kv_cache_bytes(
        case["num_layers"], case["d_model"], case["num_heads"], length,
        num_key_value_heads=case["num_key_value_heads"], batch_size=case["batch_size"],
        dtype={2: "bfloat16", 4: "float32"}[case["bytes_per_number"]], sliding_window=window)


def test_longest_context_reference_is_the_last_length_the_library_fits():
    for seed in range(4):
        for case in EXERCISES["10.4"].cases(seed):
            tokens, budget = lesson10.longest_context(*case.values()), case["memory_bytes"]
            if tokens == math.inf:                        # a full ring fits, and stays full
                window = case["window"]
                assert _cache_bytes(case, window) <= budget
                assert _cache_bytes(case, 100 * window) == _cache_bytes(case, window)
            else:
                assert isinstance(tokens, int)
                assert tokens == 0 or _cache_bytes(case, tokens) <= budget
                assert _cache_bytes(case, tokens + 1) > budget


def test_longest_context_grows_with_the_budget_and_a_window_ends_it():
    sizes = (12, 768, 12, 4)                               # layers, d_model, heads, key/value heads
    per_position = 2 * 12 * 4 * 64 * 2
    budgets = np.sort(np.random.default_rng(8).integers(1, 3000 * per_position, size=40))
    full = [lesson10.longest_context(int(b), *sizes, math.inf, 2, 1) for b in budgets]
    windowed = [lesson10.longest_context(int(b), *sizes, 1024, 2, 1) for b in budgets]
    assert full == sorted(full) and full[-1] > 1024
    assert all(w == math.inf if f >= 1024 else w == f for f, w in zip(full, windowed,
                                                                      strict=True))
    # the published figure: 32,768 multi-head tokens in bfloat16 are 2^34 bytes, exactly
    assert lesson10.longest_context(2**34, 32, 4096, 32, 32, math.inf, 2, 1) == 32_768
    assert lesson10.longest_context(2**34 - 1, 32, 4096, 32, 32, math.inf, 2, 1) == 32_767
    assert lesson10.longest_context(2**34, 32, 4096, 32, 8, math.inf, 2, 4) == 32_768


# --- Diagnoses that are not a registered mistake ----------------------------------------------


def test_a_rotation_that_changes_lengths_is_told_so():
    def apply_rope(x, positions, base):
        rotated = lesson10.apply_rope(x, positions, base)
        rotated[..., 1::2] *= 1.5                        # the second feature of each pair scaled
        return rotated

    assert reason_for("10.1", apply_rope).startswith("Your rotated vectors do not have the "
                                                     "lengths of the inputs")


def test_angles_not_linear_in_the_position_break_the_offset_property():
    def apply_rope(x, positions, base):
        d = x.shape[-1]
        angles = np.sqrt(np.asarray(positions, float))[..., None] * base ** (
            -np.arange(0, d, 2) / d)
        out = np.empty_like(x)
        out[..., 0::2] = x[..., 0::2] * np.cos(angles) - x[..., 1::2] * np.sin(angles)
        out[..., 1::2] = x[..., 1::2] * np.cos(angles) + x[..., 0::2] * np.sin(angles)
        return out

    assert reason_for("10.1", apply_rope).startswith("The score of your rotated query and key "
                                                     "changes with where the pair sits")


def test_positions_of_one_sequence_only_get_the_broadcasting_hint():
    def apply_rope(x, positions, base):                  # positions taken as (T,) only
        d = x.shape[-1]
        angles = np.outer(positions, base ** (-np.arange(0, d, 2) / d))
        out = np.empty_like(x)
        out[..., 0::2] = x[..., 0::2] * np.cos(angles) - x[..., 1::2] * np.sin(angles)
        out[..., 1::2] = x[..., 1::2] * np.cos(angles) + x[..., 0::2] * np.sin(angles)
        return out

    reason = reason_for("10.1", apply_rope)
    assert reason.startswith("`apply_rope` raised ValueError") and "broadcasts to it" in reason


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


def _learner_rope(frequencies=lambda base, d: base ** (-np.arange(0, d, 2) / d),
                  angles_per_feature=None):
    """A learner's interleaved RoPE; the arguments make one slip each."""
    def apply_rope(x, positions, base):
        d = x.shape[-1]
        angles = np.asarray(positions)[..., None] * frequencies(base, d)
        if angles_per_feature:                           # one angle per feature, cos/sin caches
            angles = angles_per_feature(angles)
            swapped = np.stack([-x[..., 1::2], x[..., 0::2]], axis=-1).reshape(x.shape)
            return x * np.cos(angles) + swapped * np.sin(angles)
        out = np.empty(x.shape)
        out[..., 0::2] = x[..., 0::2] * np.cos(angles) - x[..., 1::2] * np.sin(angles)
        out[..., 1::2] = x[..., 1::2] * np.cos(angles) + x[..., 0::2] * np.sin(angles)
        return out

    return apply_rope


def test_the_learner_rope_without_slips_passes():
    assert run_check("10.1", _learner_rope()).passed
    assert run_check("10.1", _learner_rope(
        angles_per_feature=lambda angles: np.repeat(angles, 2, axis=-1))).passed


def test_the_lessons_rope_pasted_is_named_the_halves_layout():
    def apply_rope(x, positions, base):                  # the lesson's rope, renamed
        half = x.shape[-1] // 2
        theta = base ** (-2.0 * np.arange(half) / x.shape[-1])
        turn = np.exp(1j * np.asarray(positions)[..., None] * theta)
        pairs = (x[..., :half] + 1j * x[..., half:]) * turn
        return np.concatenate([pairs.real, pairs.imag], axis=-1)

    assert reason_for("10.1", apply_rope).startswith("You paired feature i with feature i + d/2")


def test_halves_ordered_angle_caches_are_named():
    reason = reason_for("10.1", _learner_rope(
        angles_per_feature=lambda angles: np.concatenate([angles, angles], axis=-1)))
    assert reason.startswith("The two features of a pair turn by different angles")


def test_frequency_slips_are_named():
    over_half_the_depth = _learner_rope(lambda base, d: base ** (-np.arange(0, d, 2) * 2 / d))
    counted_from_one = _learner_rope(lambda base, d: base ** (-2 * np.arange(1, d // 2 + 1) / d))
    paper_minus_one = _learner_rope(lambda base, d: base ** (-2 * (np.arange(d // 2) - 1) / d))
    assert reason_for("10.1", over_half_the_depth).startswith("Your frequencies fall off twice "
                                                              "as fast")
    assert reason_for("10.1", counted_from_one).startswith("Your first pair turns slower")
    assert reason_for("10.1", paper_minus_one).startswith("Your first pair turns faster")


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


def _learner_context(batch=True, rounding="down", fits_below=False, window_rule="ring",
                     heads="kv"):
    """A learner's longest context; the arguments make one slip each."""
    def longest_context(memory_bytes, num_layers, d_model, num_heads, num_key_value_heads,
                        window, bytes_per_number, batch_size):
        head_dim = d_model // num_heads
        cached = num_key_value_heads if heads == "kv" else num_heads
        per_token = 2 * num_layers * cached * head_dim * bytes_per_number
        if batch:
            per_token *= batch_size
        ring = window * per_token
        if window_rule == "ring" and (ring < memory_bytes if fits_below else ring <= memory_bytes):
            return math.inf
        if fits_below:
            memory_bytes -= 1
        if rounding == "up":
            return math.ceil(memory_bytes / per_token)
        if rounding == "none":
            return memory_bytes / per_token
        tokens = memory_bytes // per_token
        return min(tokens, window) if window_rule == "min" else tokens

    return longest_context


def test_the_learner_context_without_slips_passes():
    assert run_check("10.4", _learner_context()).passed


def test_context_slips_are_named():
    named = {
        "You sized the cache of one sequence": _learner_context(batch=False),
        "You rounded the number of positions up": _learner_context(rounding="up"),
        "Your answer misses a cache that fills the budget exactly": _learner_context(
            fits_below=True),
        "Your answer ignores the window": _learner_context(window_rule="ignored"),
        "You returned the window as the longest context": _learner_context(window_rule="min"),
        "You cached all num_heads heads": _learner_context(heads="query"),
    }
    for start, longest_context in named.items():
        assert reason_for("10.4", longest_context).startswith(start)


def test_context_answers_out_of_the_contract_are_told_what_is_wrong():
    # the lesson's calculator inverted: a fraction of a token, and the batch forgotten
    def longest_context(memory_bytes, num_layers, d_model, num_heads, num_key_value_heads,
                        window, bytes_per_number, batch_size):
        one_token = 2 * num_layers * num_key_value_heads * (d_model // num_heads) \
            * bytes_per_number
        return math.inf if window * one_token <= memory_bytes else memory_bytes / one_token

    assert reason_for("10.4", longest_context).startswith("Your answer, ")
    assert "is not a whole number" in reason_for("10.4", longest_context)
    # two slips at once: no batch and "strictly below": too long, said as the contract says it
    reason = reason_for("10.4", _learner_context(batch=False, fits_below=True))
    assert reason.startswith("The cache of a context of your answer's length does not fit")

    # a window that fits, answered with a large number instead of math.inf
    def with_a_large_number(*arguments):
        answer = lesson10.longest_context(*arguments)
        return 10**9 if answer == math.inf else answer

    assert reason_for("10.4", with_a_large_number).startswith("With this window every length "
                                                              "fits")
