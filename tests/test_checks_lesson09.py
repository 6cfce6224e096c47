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
        tokens, per_step = lesson09.invoke_with_tiny_decoder(lesson09.generate_with_cache, case)
        decoder = lesson09.TinyDecoder(case)
        uncached = list(case["prompt"])
        while len(uncached) < len(case["prompt"]) + case["max_new_tokens"]:
            logits, _ = decoder.step(np.asarray(uncached), decoder.empty_cache(), 0)
            uncached.append(int(np.argmax(logits[-1])))
        np.testing.assert_array_equal(tokens, uncached)
        assert per_step == 1


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
