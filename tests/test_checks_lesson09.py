"""Lesson 09's self-checks name each mistake, and their references agree with the library.

(tests/test_checks.py checks every registered mistake on five seeds; tests/test_grading.py grades
the solution notebook and its learner copy.) Here: the NumPy references equal
``course_lib.generation``'s filters, our ``CachedMultiHeadAttention`` and the cache's size; the
reference generation loop gives the tokens of uncached greedy decoding; and the diagnoses that
are read from the outputs (recomputing the prefix, a wrong nucleus) say what they should.
"""

import numpy as np
import pytest

from course_lib import generation
from course_lib.checks import EXERCISES, lesson09, run_check


def reason_for(exercise_id, function):
    verdict = run_check(exercise_id, function)
    assert not verdict.passed, verdict.reason
    return verdict.reason


# --- The references agree with the library ----------------------------------------------------


def test_top_p_reference_equals_the_library_filter():
    for case in EXERCISES["09.1"].cases(3):
        np.testing.assert_allclose(
            lesson09.top_p_filter(case["logits"], case["p"], case["temperature"]),
            generation.top_p_distribution(case["logits"], case["p"], case["temperature"]),
            rtol=0, atol=1e-12)


def test_cached_attention_reference_equals_our_cached_layer():
    from keras import ops

    from course_lib.layers.cached_attention import CachedMultiHeadAttention

    for case in EXERCISES["09.2"].cases(4):
        x, heads, index = case["x"], case["num_heads"], case["index"]
        batch, slots, depth = case["cache_keys"].shape
        head_dim = depth // heads
        layer = CachedMultiHeadAttention(heads, head_dim, use_bias=False)
        layer.build(x.shape, x.shape)
        for kernel, matrix in ((layer.query_kernel, case["Wq"]), (layer.key_kernel, case["Wk"]),
                               (layer.value_kernel, case["Wv"])):
            kernel.assign(matrix.reshape(depth, heads, head_dim).astype("float32"))
        layer.output_kernel.assign(case["Wo"].reshape(heads, head_dim, depth).astype("float32"))
        cache = np.stack([case["cache_keys"], case["cache_values"]], axis=1)   # (B, 2, S, d)
        cache = cache.reshape(batch, 2, slots, heads, head_dim).astype("float32")
        output, new_cache = layer(x.astype("float32"), x.astype("float32"), cache=cache,
                                  cache_update_index=index)
        expected, keys, values = lesson09.cached_attention_step(*case.values())
        np.testing.assert_allclose(ops.convert_to_numpy(output), expected, atol=1e-4)
        new_cache = ops.convert_to_numpy(new_cache).reshape(batch, 2, slots, depth)
        np.testing.assert_allclose(new_cache[:, 0], keys, atol=1e-5)
        np.testing.assert_allclose(new_cache[:, 1], values, atol=1e-5)


def test_generation_reference_gives_the_uncached_greedy_tokens():
    for case in EXERCISES["09.3"].cases(5):
        tokens, per_step, first_call, lost_keys = lesson09.invoke_with_tiny_decoder(
            lesson09.generate_with_cache, case)
        decoder = lesson09.TinyDecoder(case)
        uncached = list(case["prompt"])
        while len(uncached) < len(case["prompt"]) + case["max_new_tokens"]:
            logits, _ = decoder.step(np.asarray(uncached), decoder.empty_cache(), 0)
            uncached.append(int(np.argmax(logits[-1])))
        np.testing.assert_array_equal(tokens, uncached)
        assert per_step == 1
        assert first_call == len(case["prompt"])
        assert lost_keys == 0


def test_cache_bytes_reference_equals_the_library():
    for case in EXERCISES["09.4"].cases(6):
        expected = [generation.cache_bytes(case["num_layers"], case["num_heads"],
                                           case["d_model"] // case["num_heads"], length,
                                           case["batch_size"], case["bytes_per_number"])
                    for length in case["lengths"]]
        np.testing.assert_array_equal(lesson09.kv_cache_bytes(*case.values()), expected)


# --- Diagnoses that are not a registered mistake ---------------------------------------------


def test_a_loop_that_recomputes_the_prefix_is_told_so():
    def generate_with_cache(step, cache, prompt, max_new_tokens):
        tokens = list(prompt)
        for _ in range(max_new_tokens):
            logits, cache = step(np.asarray(tokens), cache, 0)   # the whole sequence each time
            tokens.append(int(np.argmax(logits[-1])))
        return np.asarray(tokens)

    reason = reason_for("09.3", generate_with_cache)
    assert reason.startswith("After reading the prompt, your loop fed")
    assert "recomputes the keys and values" in reason


def test_returning_only_the_new_tokens_names_the_shapes():
    def generate_with_cache(step, cache, prompt, max_new_tokens):
        return lesson09.generate_with_cache(step, cache, prompt, max_new_tokens)[len(prompt):]

    reason = reason_for("09.3", generate_with_cache)
    assert reason.startswith("Your `tokens` has shape (6,), expected (10,)")
    assert "the prompt followed by" in reason


def test_a_fixed_number_of_tokens_is_not_the_nucleus():
    def top_p_filter(logits, p, temperature):
        return generation.top_k_distribution(logits, 3, temperature)

    assert reason_for("09.1", top_p_filter).startswith("Your nucleus is not the right set")


def test_an_unfinished_step_function_is_not_done_yet():
    def cached_attention_step(x, cache_keys, cache_values, index, Wq, Wk, Wv, Wo, num_heads):
        raise NotImplementedError

    assert reason_for("09.2", cached_attention_step).startswith("not done yet")


def test_tiny_decoder_refuses_tokens_past_its_cache():
    case = EXERCISES["09.3"].cases(0)[0]
    decoder = lesson09.TinyDecoder(case)
    with pytest.raises(ValueError, match="do not fit"):
        decoder.step(np.zeros(3), decoder.empty_cache(), case["cache_slots"] - 2)


# --- Slips a learner makes, in the learner's own code, named by the check -------------------


def _cached_step(write_offset=0, see_all_new=False, softmax_axis=-1, interleaved=False,
                 in_place=False):
    """A learner's cached attention step, with one slip switched on."""
    def cached_attention_step(x, cache_keys, cache_values, index, Wq, Wk, Wv, Wo, num_heads):
        batch, length, depth = x.shape
        slots, head_dim = cache_keys.shape[1], depth // num_heads
        keys = cache_keys if in_place else cache_keys.copy()
        values = cache_values if in_place else cache_values.copy()
        start = 0 if write_offset is None else index + write_offset
        keys[:, start:start + length] = x @ Wk
        values[:, start:start + length] = x @ Wv

        def heads(tensor):
            if interleaved:
                return tensor.reshape(batch, -1, head_dim, num_heads).transpose(0, 3, 1, 2)
            return tensor.reshape(batch, -1, num_heads, head_dim).transpose(0, 2, 1, 3)

        scores = heads(x @ Wq) @ heads(keys).transpose(0, 1, 3, 2) / np.sqrt(head_dim)
        last_seen = index + (length - 1 if see_all_new else np.arange(length)[:, None])
        scores = np.where(np.arange(slots) <= last_seen, scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
        weights = np.nan_to_num(weights / weights.sum(axis=softmax_axis, keepdims=True))
        attended = weights @ heads(values)
        if interleaved:
            merged = attended.transpose(0, 2, 3, 1).reshape(batch, length, depth)
        else:
            merged = attended.transpose(0, 2, 1, 3).reshape(batch, length, depth)
        return merged @ Wo, keys, values

    return cached_attention_step


def test_the_learners_own_cached_step_passes_also_when_it_writes_in_place():
    assert run_check("09.2", _cached_step()).passed
    assert run_check("09.2", _cached_step(in_place=True)).passed


@pytest.mark.parametrize("offset, first_slot", [(1, "from 5 on"), (None, "from 0 on")])
def test_new_keys_written_in_other_slots_are_named_with_their_place(offset, first_slot):
    reason = reason_for("09.2", _cached_step(write_offset=offset))
    assert reason.startswith(f"Your new keys went into slots {first_slot}, but the first new "
                             f"token is at position index = 4")


def test_new_tokens_that_see_each_other_both_ways_are_named():
    assert reason_for("09.2", _cached_step(see_all_new=True)).startswith(
        "Your new tokens see each other in both directions")


def test_a_softmax_over_the_queries_is_named():
    assert reason_for("09.2", _cached_step(softmax_axis=-2)).startswith(
        "Your softmax runs over the queries")


def test_interleaved_heads_are_named():
    assert reason_for("09.2", _cached_step(interleaved=True)).startswith(
        "Your heads take every num_heads-th feature")


def test_a_prompt_read_one_token_per_call_is_named():
    def generate_with_cache(step, cache, prompt, max_new_tokens):
        tokens = [int(token) for token in prompt]
        for position, token in enumerate(tokens):
            logits, cache = step(np.array([token]), cache, position)
        while len(tokens) < len(prompt) + max_new_tokens:
            tokens.append(int(np.argmax(logits[-1])))
            logits, cache = step(np.array(tokens[-1:]), cache, len(tokens) - 1)
        return np.array(tokens)

    assert reason_for("09.3", generate_with_cache).startswith(
        "You read the prompt one token per call")


def test_a_loop_that_keeps_the_prompts_cache_is_named():
    def generate_with_cache(step, cache, prompt, max_new_tokens):
        logits, prompt_cache = step(np.asarray(prompt), cache, 0)
        tokens = [int(token) for token in prompt]
        for _ in range(max_new_tokens):
            tokens.append(int(np.argmax(logits[-1])))
            logits, _ = step(np.array(tokens[-1:]), prompt_cache, len(tokens) - 1)
        return np.array(tokens)

    assert reason_for("09.3", generate_with_cache).startswith(
        "You give every step the cache that reading the prompt returned")


def test_a_byte_count_that_assumes_float32_is_named():
    def kv_cache_bytes(num_layers, num_heads, d_model, lengths, batch_size, bytes_per_number):
        return 2 * num_layers * batch_size * np.asarray(lengths) * d_model * 4

    assert reason_for("09.4", kv_cache_bytes).startswith(
        "Your count does not change with bytes_per_number")
