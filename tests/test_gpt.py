"""Lesson 09's library: the cached attention layer, lesson 08's decoder block with a cache, the
GPT model and its shipped weights, generation with and without a cache, the samplers, and the
Tiny Shakespeare data.

Equality with keras_hub (``CachedMultiHeadAttention``, ``TransformerDecoder`` with a cache, the
samplers' distributions), the KV cache's defining property (cached generation gives the tokens
of uncached generation), causal no-leak (also under the cache), save/load and bad input, on
TensorFlow and JAX (``@pytest.mark.backends``).
"""

import dataclasses
from unittest import mock

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import generation, gpt, shakespeare
from course_lib.layers import TransformerDecoderBlock
from course_lib.layers.cached_attention import CachedMultiHeadAttention, cache_visibility
from course_lib.shipped_weights import WEIGHTS_DIR

TINY = {"context_length": 12, "num_layers": 2, "num_heads": 2, "d_model": 16,
        "intermediate_dim": 32, "dropout": 0.0}
VOCABULARY = 11


def numpy(x):
    return ops.convert_to_numpy(x)


def randomize(layer, seed, scale=0.3):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype("float32"))


@pytest.fixture(scope="module")
def tiny_gpt():
    model = gpt.build_gpt(VOCABULARY, seed=0, **TINY)
    randomize(model, seed=1)
    return model


# ---------------------------------------------------------------------------------------------
# CachedMultiHeadAttention


@pytest.mark.backends
def test_cached_steps_equal_full_causal_attention():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    layer = CachedMultiHeadAttention(num_heads=4, key_dim=4)
    layer.build(x.shape, x.shape)
    randomize(layer, seed=2)
    full = numpy(layer(x, x, use_causal_mask=True))
    cache = np.zeros((2, 2, 6, 4, 4), "float32")
    first, cache = layer(x[:, :3], x[:, :3], cache=cache, cache_update_index=0)   # a prompt
    outputs = [numpy(first)]
    for t in range(3, 6):
        output, cache = layer(x[:, t:t + 1], x[:, t:t + 1], cache=cache, cache_update_index=t)
        outputs.append(numpy(output))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, rtol=0, atol=1e-5)


@pytest.mark.backends
def test_one_cached_step_equals_keras_hub_cached_attention():
    keras_hub = pytest.importorskip("keras_hub")
    from keras_hub.src.layers.modeling.transformer_layer_utils import compute_causal_mask

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 1, 16)).astype("float32")
    cache = rng.normal(size=(2, 2, 7, 4, 4)).astype("float32")   # stale slots after the index
    theirs = keras_hub.layers.CachedMultiHeadAttention(num_heads=4, key_dim=4)
    theirs(x, x)
    randomize(theirs, seed=3)
    ours = CachedMultiHeadAttention(num_heads=4, key_dim=4)
    ours.copy_weights_from(theirs)
    index = 4
    their_out, their_cache = theirs(x, x, cache=cache, cache_update_index=index,
                                    attention_mask=compute_causal_mask(2, 7, 1, index))
    our_out, our_cache = ours(x, x, cache=cache, cache_update_index=index)
    np.testing.assert_allclose(numpy(our_out), numpy(their_out), rtol=0, atol=1e-5)
    np.testing.assert_allclose(numpy(our_cache), numpy(their_cache), rtol=0, atol=1e-6)
    assert not np.allclose(numpy(our_cache)[:, :, index], cache[:, :, index])   # written


@pytest.mark.backends
def test_cache_visibility_is_the_causal_mask_with_an_offset():
    mask = numpy(cache_visibility(2, 6, 3))
    assert mask.tolist() == [[True] * 4 + [False] * 2, [True] * 5 + [False]]


@pytest.mark.backends
@pytest.mark.parametrize("call, message", [
    (lambda layer, x, cache: layer(x, x, cache=cache), "needs a `cache_update_index`"),
    (lambda layer, x, cache: layer(x, x, cache_update_index=0), "without a `cache`"),
    (lambda layer, x, cache: layer(x, x, cache=cache[:, :, :, :2], cache_update_index=0),
     r"\(2, 2, 5, 2, 4\)"),
    (lambda layer, x, cache: layer(x, x, cache=cache, cache_update_index=5),
     "does not fit 1 new token"),
    (lambda layer, x, cache: layer(x, x, cache=cache[:1], cache_update_index=0),
     "Batch sizes must agree"),
    (lambda layer, x, cache: layer(x, x, cache=cache, cache_update_index=0,
                                   query_mask=np.ones((2, 1), bool)), "Padding masks"),
])
def test_cached_attention_bad_input(call, message):
    layer = CachedMultiHeadAttention(num_heads=4, key_dim=4)
    x = np.ones((2, 1, 16), "float32")
    cache = np.zeros((2, 2, 5, 4, 4), "float32")
    with pytest.raises(ValueError, match=message):
        call(layer, x, cache)


@pytest.mark.backends
def test_cached_attention_needs_value_dim_equal_to_key_dim():
    layer = CachedMultiHeadAttention(num_heads=2, key_dim=4, value_dim=8)
    x = np.ones((1, 1, 8), "float32")
    with pytest.raises(ValueError, match="value_dim == key_dim"):
        layer(x, x, cache=np.zeros((1, 2, 3, 2, 4), "float32"), cache_update_index=0)


# ---------------------------------------------------------------------------------------------
# Lesson 08's decoder block with a self-attention cache


@pytest.mark.backends
@pytest.mark.parametrize("cross_attention", [False, True], ids=["decoder_only", "with_cross"])
def test_decoder_block_with_a_cache_equals_keras_hub(cross_attention):
    """Cached steps equal the full pass, and keras_hub's cached steps (keras_hub wants a cache of
    the cross-attention's keys too, which our block recomputes: compared with its full pass)."""
    keras_hub = pytest.importorskip("keras_hub")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    encoder = (rng.normal(size=(2, 3, 16)).astype("float32"),) if cross_attention else ()
    theirs = keras_hub.layers.TransformerDecoder(32, 4, normalize_first=True, activation="gelu")
    theirs(x, *encoder)
    randomize(theirs, seed=4)
    ours = TransformerDecoderBlock(32, 4, normalize_first=True, activation="gelu")
    ours.copy_weights_from(theirs)
    full = numpy(ours(x, *encoder))
    np.testing.assert_allclose(full, numpy(theirs(x, *encoder)), rtol=0, atol=1e-5)

    our_cache = their_cache = np.zeros((2, 2, 6, 4, 4), "float32")
    for start, stop in ((0, 2), (2, 3), (3, 4), (4, 5), (5, 6)):
        ours_step, our_cache = ours(x[:, start:stop], *encoder, self_attention_cache=our_cache,
                                    self_attention_cache_update_index=start)
        np.testing.assert_allclose(numpy(ours_step), full[:, start:stop], rtol=0, atol=1e-5)
        if not cross_attention:
            theirs_step, their_cache = theirs(x[:, start:stop], self_attention_cache=their_cache,
                                              self_attention_cache_update_index=start)
            np.testing.assert_allclose(numpy(ours_step), numpy(theirs_step), rtol=0, atol=1e-5)
    if not cross_attention:
        np.testing.assert_allclose(numpy(our_cache), numpy(their_cache), rtol=0, atol=1e-5)


@pytest.mark.backends
def test_decoder_block_with_a_cache_returns_causal_weights_over_the_cache():
    x = np.random.default_rng(4).normal(size=(1, 2, 16)).astype("float32")
    block = TransformerDecoderBlock(32, 4, normalize_first=True)
    block.build(x.shape)
    cache = np.random.default_rng(5).normal(size=(1, 2, 6, 4, 4)).astype("float32")
    y, weights, new_cache = block(x, self_attention_cache=cache,
                                  self_attention_cache_update_index=3,
                                  return_attention_scores=True)
    weights = numpy(weights)
    assert weights.shape == (1, 4, 2, 6) and numpy(new_cache).shape == cache.shape
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[..., 0, 4:] == 0) and np.all(weights[..., 1, 5:] == 0)  # j <= 3 + i
    assert np.all(weights[..., 1, :5] > 0)
    y_alone, _ = block(x, self_attention_cache=cache, self_attention_cache_update_index=3)
    np.testing.assert_allclose(numpy(y), numpy(y_alone), rtol=0, atol=1e-6)


@pytest.mark.backends
def test_decoder_block_cache_bad_input():
    block = TransformerDecoderBlock(32, 4)
    x = np.ones((2, 1, 16), "float32")
    cache = np.zeros((2, 2, 5, 4, 4), "float32")
    with pytest.raises(ValueError, match="give no `decoder_padding_mask`"):
        block(x, decoder_padding_mask=np.ones((2, 1), bool), self_attention_cache=cache,
              self_attention_cache_update_index=0)
    with pytest.raises(ValueError, match="keep `use_causal_mask=True`"):
        block(x, use_causal_mask=False, self_attention_cache=cache,
              self_attention_cache_update_index=0)
    with pytest.raises(ValueError, match="without a `self_attention_cache`"):
        block(x, self_attention_cache_update_index=0)
    with pytest.raises(ValueError, match="needs a `cache_update_index`"):
        block(x, self_attention_cache=cache)
    with pytest.raises(ValueError, match=r"\(2, 2, 5, 4, 4\), received \(2, 2, 5, 2, 8\)"):
        block(x, self_attention_cache=cache.reshape(2, 2, 5, 2, 8),
              self_attention_cache_update_index=0)


# ---------------------------------------------------------------------------------------------
# The GPT model


@pytest.mark.backends
def test_cached_logits_equal_full_logits(tiny_gpt):
    ids = np.random.default_rng(6).integers(0, VOCABULARY, size=(3, 10)).astype("int32")
    full = numpy(tiny_gpt(ids))
    cache = tiny_gpt.empty_cache(3, 10)
    prompt_logits, cache = tiny_gpt.call_with_cache(ids[:, :4], cache, 0)
    pieces = [numpy(prompt_logits)]
    for t in range(4, 10):
        logits, cache = tiny_gpt.call_with_cache(ids[:, t:t + 1], cache, t)
        pieces.append(numpy(logits))
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=0, atol=1e-5)
    assert numpy(cache).shape == (3, 2, 2, 10, 2, 8)


@pytest.mark.backends
def test_changing_later_tokens_changes_no_earlier_logit(tiny_gpt):
    rng = np.random.default_rng(7)
    ids = rng.integers(0, VOCABULARY, size=(2, 12)).astype("int32")
    changed = ids.copy()
    changed[:, 7:] = (ids[:, 7:] + 1 + rng.integers(0, VOCABULARY - 1, size=(2, 5))) % VOCABULARY
    before, after = numpy(tiny_gpt(ids)), numpy(tiny_gpt(changed))
    np.testing.assert_allclose(before[:, :7], after[:, :7], rtol=0, atol=1e-6)
    assert np.abs(before[:, 7:] - after[:, 7:]).max() > 1e-2


@pytest.mark.backends
def test_a_new_token_changes_only_its_own_cache_slot(tiny_gpt):
    prompt = np.array([[3, 1, 4, 1, 5]], "int32")
    _, cache = tiny_gpt.call_with_cache(prompt, tiny_gpt.empty_cache(1, 8), 0)
    caches = [numpy(tiny_gpt.call_with_cache(np.array([[token]], "int32"), cache, 5)[1])
              for token in (2, 7)]
    for new_cache in caches:
        np.testing.assert_array_equal(new_cache[:, :, :, :5], numpy(cache)[:, :, :, :5])
    assert np.abs(caches[0][:, :, :, 5] - caches[1][:, :, :, 5]).max() > 1e-3


@pytest.mark.backends
def test_gpt_survives_save_and_load(tiny_gpt, tmp_path):
    ids = np.random.default_rng(8).integers(0, VOCABULARY, size=(2, 9)).astype("int32")
    tiny_gpt.save(tmp_path / "gpt.keras")
    loaded = keras.models.load_model(tmp_path / "gpt.keras")
    assert isinstance(loaded, gpt.GPT) and loaded.get_config() == tiny_gpt.get_config()
    np.testing.assert_allclose(numpy(loaded(ids)), numpy(tiny_gpt(ids)), rtol=0, atol=1e-6)


@pytest.mark.backends
def test_gpt_bad_input(tiny_gpt):
    with pytest.raises(ValueError, match=r"longer than the model's context_length=12"):
        tiny_gpt(np.zeros((1, 13), "int32"))
    with pytest.raises(ValueError, match="must have rank 2"):
        tiny_gpt(np.zeros((13,), "int32"))
    with pytest.raises(ValueError, match="longer than the model's context_length=12"):
        tiny_gpt.empty_cache(1, 13)
    with pytest.raises(ValueError, match=r"\(1, 2, 2, None, 2, 8\), received \(1, 3, 2, 5, 2, 8\)"):
        tiny_gpt.call_with_cache(np.zeros((1, 1), "int32"), np.zeros((1, 3, 2, 5, 2, 8)), 0)
    with pytest.raises(ValueError, match="divisible by `num_heads`"):
        gpt.GPT(VOCABULARY, 8, num_heads=3, d_model=16)
    with pytest.raises(ValueError, match="`num_layers` must be a positive integer"):
        gpt.GPT(VOCABULARY, 8, num_layers=True)
    with pytest.raises(ValueError, match="Unknown sizes"):
        gpt.build_gpt(VOCABULARY, layers=2)


def test_the_shipped_gpt_scores_what_its_record_says(corpus):
    results = gpt.gpt_results()
    model = gpt.load_gpt(corpus)
    assert model.count_params() == results["parameters"]
    assert (WEIGHTS_DIR / results["weights"]).stat().st_size == results["weights_bytes"]
    windows = results["curve"]["validation_windows"]
    loss = gpt.validation_loss(model, corpus.validation_ids, max_windows=windows)
    assert loss == pytest.approx(results["curve"]["validation_loss"][-1], abs=0.005)
    assert results["validation_loss"] <= 1.70                       # lesson 09's target
    other = dataclasses.replace(corpus, vocabulary=shakespeare.CharVocabulary("abc"))
    with pytest.raises(ValueError, match="trained with the character vocabulary"):
        gpt.load_gpt(other)


# ---------------------------------------------------------------------------------------------
# Generation


@pytest.mark.backends
def test_cached_generation_gives_the_uncached_tokens(tiny_gpt):
    """Compiled, as the lesson and the benchmark run it; eager below."""
    prompts = np.random.default_rng(9).integers(0, VOCABULARY, size=(3, 3))
    decoder = generation.Decoder(tiny_gpt, compiled=True)
    for choice in ({"greedy": True}, {"temperature": 0.8, "top_p": 0.9, "seed": 4},
                   {"temperature": 1.3, "top_k": 3, "seed": 5}):
        cached = decoder.generate(prompts, 8, use_cache=True, **choice)
        uncached = decoder.generate(prompts, 8, use_cache=False, **choice)
        np.testing.assert_array_equal(cached, uncached)
        np.testing.assert_array_equal(cached[:, :3], prompts)
    assert len({tuple(row) for row in cached}) > 1


def test_eager_generation_gives_the_compiled_tokens(tiny_gpt):
    prompt = np.array([1, 2, 3])
    compiled = generation.Decoder(tiny_gpt, compiled=True).generate(prompt, 5, greedy=True)
    np.testing.assert_array_equal(generation.generate(tiny_gpt, prompt, 5, greedy=True),
                                  compiled)


def test_generation_past_the_context(tiny_gpt):
    short_context = gpt.build_gpt(VOCABULARY, seed=0, **{**TINY, "context_length": 4})
    long = generation.generate(short_context, [1, 2], 5, use_cache=False, greedy=True)
    assert long.shape == (1, 7)
    with pytest.raises(ValueError, match="a cache cannot slide"):
        generation.generate(short_context, [1, 2], 3, use_cache=True, greedy=True)
    with pytest.raises(ValueError, match="`prompt_ids` must be"):
        generation.generate(tiny_gpt, np.zeros((1, 1, 2)), 3)
    with pytest.raises(ValueError, match="`max_new_tokens` must be a positive integer"):
        generation.generate(tiny_gpt, [1], 0)


def keras_hub_distribution(sampler, logits):
    """The distribution a keras_hub sampler draws the next token from, read exactly: its
    probabilities are computed once, then ``keras.random.categorical`` is made to return each
    candidate in turn (one row per candidate), recording the log-probabilities it was given."""
    probabilities = sampler.compute_probabilities(np.repeat(logits[None], len(logits), 0))
    recorded = {}

    def every_candidate(candidate_logits, num_samples, seed=None, dtype="int32"):
        recorded["logits"] = numpy(candidate_logits)[0]
        rows, count = numpy(candidate_logits).shape
        return ops.reshape(ops.arange(rows, dtype=dtype) % count, (rows, 1))

    with mock.patch.object(keras.random, "categorical", every_candidate):
        tokens = numpy(sampler.get_next_token(probabilities))
    candidates = recorded["logits"].shape[-1]
    weights = np.exp(recorded["logits"].astype(np.float64))
    distribution = np.zeros(len(logits))
    distribution[tokens[:candidates]] = weights / weights.sum()
    return distribution


@pytest.mark.backends
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_filtered_distributions_equal_keras_hub_samplers(temperature):
    keras_hub = pytest.importorskip("keras_hub")
    logits = np.random.default_rng(10).normal(scale=2.0, size=12).astype("float32")
    ours = generation.temperature_distribution(logits, temperature)
    theirs = numpy(keras_hub.samplers.TopKSampler(k=3, temperature=temperature)
                   .compute_probabilities(logits[None]))[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    for k in (1, 3, 7):
        np.testing.assert_allclose(
            generation.top_k_distribution(logits, k, temperature),
            keras_hub_distribution(keras_hub.samplers.TopKSampler(k=k, temperature=temperature),
                                   logits), rtol=1e-5, atol=1e-7)
    for p in (0.3, 0.75, 0.95):
        ours = generation.top_p_distribution(logits, p, temperature)
        np.testing.assert_allclose(
            ours, keras_hub_distribution(keras_hub.samplers.TopPSampler(p=p,
                                                                        temperature=temperature),
                                         logits), rtol=1e-5, atol=1e-7)
        ranked = np.sort(generation.temperature_distribution(logits, temperature))[::-1]
        kept = int((ours > 0).sum())
        assert ranked[:kept].sum() >= p > ranked[:kept - 1].sum()   # the smallest such set


def test_filters_edge_cases_and_bad_input():
    logits = np.array([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 1.0, 1.5]])
    np.testing.assert_allclose(generation.top_p_distribution(logits, 1.0),
                               generation.temperature_distribution(logits))
    np.testing.assert_array_equal(generation.top_p_distribution(logits, 1e-3),
                                  np.eye(4)[[0, 1]])
    np.testing.assert_array_equal(generation.top_k_distribution(logits, 1), np.eye(4)[[0, 1]])
    np.testing.assert_allclose(generation.top_k_distribution(logits, 9),
                               generation.temperature_distribution(logits))
    assert generation.choose_next_token(logits, greedy=True).tolist() == [0, 1]
    for call, message in (
            (lambda: generation.temperature_distribution(logits, 0.0), "`temperature` must"),
            (lambda: generation.top_p_distribution(logits, 1.5), r"`p` must be in \(0, 1\]"),
            (lambda: generation.top_k_distribution(logits, 0), "`k` must be a positive"),
            (lambda: generation.next_token_distribution(logits, top_k=2, top_p=0.5),
             "not both"),
            (lambda: generation.choose_next_token(logits), "Sampling needs `rng`"),
            (lambda: generation.choose_next_token(logits[0], greedy=True),
             r"\(batch, vocabulary\)")):
        with pytest.raises(ValueError, match=message):
            call()


def test_sampling_follows_the_distribution():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 20_000))
    draws = generation.choose_next_token(logits, np.random.default_rng(0), top_p=0.8)
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0],
                               atol=0.015)


def test_cache_bytes_is_the_size_of_the_models_cache(tiny_gpt):
    cache = numpy(tiny_gpt.empty_cache(3, 7))
    assert generation.cache_bytes(2, 2, 8, 7, batch_size=3) == cache.nbytes
    assert generation.cache_bytes(12, 12, 64, 1024) == 75_497_472   # GPT-2 small, float32


# ---------------------------------------------------------------------------------------------
# The data


@pytest.fixture(scope="module")
def corpus():
    return shakespeare.load_shakespeare()


def test_corpus_split_and_vocabulary(corpus):
    summary = corpus.summary()
    assert summary["characters"] == 1_115_394 and summary["vocabulary_size"] == 65
    assert summary["train_characters"] == int(0.9 * 1_115_394)
    text = shakespeare.load_text()
    assert corpus.vocabulary.decode(corpus.validation_ids[:40]) == text[1_003_854:1_003_894]
    assert corpus.vocabulary.characters[:2] == "\n "
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['é'\]"):
        corpus.vocabulary.encode("café")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 65\)"):
        corpus.vocabulary.decode([3, 65])


def test_windows(corpus):
    rng = np.random.default_rng(0)
    inputs, targets = shakespeare.random_windows(corpus.train_ids, 4, 16, rng)
    assert inputs.shape == targets.shape == (4, 16)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    inputs, targets = shakespeare.consecutive_windows(np.arange(50), 8)
    assert inputs.shape == (6, 8) and targets[0].tolist() == list(range(1, 9))
    with pytest.raises(ValueError, match="longer than length=64"):
        shakespeare.consecutive_windows(np.arange(50), 64)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        shakespeare.random_windows(corpus.train_ids, 0, 16, rng)
