"""Generating text one token at a time: the next-token distribution, and the decoding loop
with or without a key/value cache.

**Choosing the next token** from the logits ``z`` (``(..., V)``) of the last position:

=================  ===========================================================================
rule               distribution the token is drawn from
=================  ===========================================================================
greedy             all the mass on ``argmax z`` (no randomness)
temperature ``τ``  ``softmax(z / τ)``: ``τ < 1`` sharpens, ``τ > 1`` flattens
top-k              ``softmax(z / τ)`` kept on its ``k`` largest entries, renormalised (Fan et
                   al. 2018)
top-p (nucleus)    ``softmax(z / τ)`` kept on the smallest set of most likely tokens whose total
                   is at least ``p``, renormalised (Holtzman et al. 2020): the token that takes
                   the total across ``p`` is kept
=================  ===========================================================================

Temperature always comes first, as in ``keras_hub.samplers`` (the filter acts on the
distribution that is sampled). These are NumPy functions of logits: the lesson proves them equal
to keras_hub's samplers, and the draws are reproducible from a seed on any backend.

**The loop** (:func:`generate`): feed the prompt, pick a token, append it, repeat. Without a
cache, each step runs the model on the whole sequence so far (its last ``context_length``
tokens) and keeps the last position's logits: step ``t`` recomputes the keys and values of all
``t`` earlier tokens. With a cache (``model.call_with_cache``), the prompt is read once, then each
step feeds one token at its position and reuses the stored keys and values. Both give the same
tokens, as long as the sequence fits in the model's context.

A model for :func:`generate` needs ``model(ids)`` → logits ``(B, T, V)``, ``context_length``,
and, for the cache, ``empty_cache(batch_size, length)`` and
``call_with_cache(ids, cache, index)`` → ``(logits, cache)`` (``course_lib.gpt.GPT`` has them).
"""

import keras
import numpy as np
from keras import ops

from course_lib.numpy_softmax import softmax
from course_lib.validation import require_positive_int


def _logits_array(logits):
    logits = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"`logits` must have a vocabulary axis last, received shape "
                         f"{logits.shape}.")
    return logits


def temperature_distribution(logits, temperature=1.0):
    """``softmax(logits / temperature)`` over the last axis (float64)."""
    if not temperature > 0:
        raise ValueError(f"`temperature` must be positive, received {temperature!r}; use "
                         f"greedy decoding for the limit τ → 0.")
    return softmax(_logits_array(logits) / temperature)


def top_k_distribution(logits, k, temperature=1.0):
    """``softmax(logits / τ)`` kept on the ``k`` most likely tokens and renormalised."""
    k = require_positive_int("k", k)
    probabilities = temperature_distribution(logits, temperature)
    if k >= probabilities.shape[-1]:
        return probabilities
    # the k-th largest probability of each row; ties with it are kept too
    threshold = np.sort(probabilities, axis=-1)[..., -k][..., None]
    kept = np.where(probabilities >= threshold, probabilities, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def top_p_distribution(logits, p, temperature=1.0):
    """``softmax(logits / τ)`` kept on the nucleus and renormalised: the most likely tokens,
    in order, up to and including the one whose cumulative probability reaches ``p``."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"`p` must be in (0, 1], received {p!r}.")
    probabilities = temperature_distribution(logits, temperature)
    order = np.argsort(-probabilities, axis=-1, kind="stable")            # most likely first
    ranked = np.take_along_axis(probabilities, order, axis=-1)
    mass_before = np.cumsum(ranked, axis=-1) - ranked                     # of the tokens above
    keep_ranked = mass_before < p                                         # the first always
    keep = np.zeros_like(keep_ranked)
    np.put_along_axis(keep, order, keep_ranked, axis=-1)
    kept = np.where(keep, probabilities, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def next_token_distribution(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution of the next token under temperature and, optionally, one filter."""
    if top_k is not None and top_p is not None:
        raise ValueError("Give `top_k` or `top_p`, not both.")
    if top_k is not None:
        return top_k_distribution(logits, top_k, temperature)
    if top_p is not None:
        return top_p_distribution(logits, top_p, temperature)
    return temperature_distribution(logits, temperature)


def choose_next_token(logits, rng=None, greedy=False, temperature=1.0, top_k=None,
                      top_p=None):
    """One token id per row of ``logits (B, V)``: the argmax if ``greedy``, otherwise a draw
    from :func:`next_token_distribution` with ``rng`` (a NumPy Generator)."""
    logits = _logits_array(logits)
    if logits.ndim != 2:
        raise ValueError(f"`logits` must be (batch, vocabulary), received shape "
                         f"{logits.shape}.")
    if greedy:
        return logits.argmax(axis=-1).astype(np.int32)
    if rng is None:
        raise ValueError("Sampling needs `rng`, a numpy.random.Generator (or greedy=True).")
    probabilities = next_token_distribution(logits, temperature, top_k, top_p)
    # inverse transform sampling: one uniform number per row
    cumulative = np.cumsum(probabilities, axis=-1)
    uniform = rng.random((len(probabilities), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= uniform).sum(axis=-1),
                      probabilities.shape[-1] - 1).astype(np.int32)


def compile_function(function, fixed_shapes=False):
    """``function`` compiled for the backend, unchanged on backends other than TensorFlow and
    JAX.

    With ``fixed_shapes`` (the cached step: the same shapes at every call) it is compiled
    once into one fused program: ``tf.function(jit_compile=True)`` (XLA) or ``jax.jit``.
    Otherwise (the uncached forward pass, whose length grows at every step) TensorFlow runs it
    as a graph whose shapes relax after two calls with different lengths, so it is not traced
    again at every step (XLA would compile a program per length); JAX compiles one program
    per input shape.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if fixed_shapes:
            return tf.function(function, jit_compile=True)
        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


class Decoder:
    """The two ways of computing next-token logits, eager or compiled:
    ``forward(ids)`` (the whole sequence) and ``step(ids, cache, index)`` (with the cache).

    Build one per model and reuse it: compiling takes seconds, calling a compiled function
    milliseconds.
    """

    def __init__(self, model, compiled=False):
        self.model = model

        def forward(token_ids):
            return model(token_ids, training=False)

        def step(token_ids, cache, index):
            return model.call_with_cache(token_ids, cache, index)

        self.forward = compile_function(forward) if compiled else forward
        self.step = compile_function(step, fixed_shapes=True) if compiled else step

    def generate(self, prompt_ids, max_new_tokens, use_cache=True, seed=None, **choice):
        """See :func:`generate`."""
        prompt = np.asarray(prompt_ids, dtype=np.int32)
        if prompt.ndim == 1:
            prompt = prompt[None, :]
        if prompt.ndim != 2 or prompt.shape[1] < 1:
            raise ValueError(f"`prompt_ids` must be (T,) or (batch, T) with T >= 1, received "
                             f"shape {np.shape(prompt_ids)}.")
        max_new_tokens = require_positive_int("max_new_tokens", max_new_tokens)
        context = self.model.context_length
        total = prompt.shape[1] + max_new_tokens
        if use_cache and total > context:
            raise ValueError(
                f"With a cache the prompt ({prompt.shape[1]} tokens) and the "
                f"{max_new_tokens} new ones must fit in the model's context_length={context}: "
                f"with learned absolute positions a cache cannot slide. Generate fewer "
                f"tokens, or without the cache (it crops the input to the last {context}).")
        rng = np.random.default_rng(seed)
        tokens = np.zeros((len(prompt), total), dtype=np.int32)
        tokens[:, :prompt.shape[1]] = prompt
        if use_cache:
            self._cached_loop(tokens, prompt.shape[1], rng, choice)
        else:
            self._uncached_loop(tokens, prompt.shape[1], rng, choice)
        return tokens

    def _uncached_loop(self, tokens, start, rng, choice):
        context = self.model.context_length
        for position in range(start, tokens.shape[1]):
            window = tokens[:, max(0, position - context):position]     # the last ≤ context
            logits = self.forward(window)
            tokens[:, position] = choose_next_token(logits[:, -1], rng, **choice)

    def _cached_loop(self, tokens, start, rng, choice):
        # the last token is chosen, never fed: the cache holds every position but that one
        cache = self.model.empty_cache(len(tokens), tokens.shape[1] - 1)
        logits, cache = self.step(tokens[:, :start], cache, ops.convert_to_tensor(0, "int32"))
        for position in range(start, tokens.shape[1]):
            tokens[:, position] = choose_next_token(logits[:, -1], rng, **choice)
            if position + 1 < tokens.shape[1]:
                logits, cache = self.step(tokens[:, position:position + 1], cache,
                                          ops.convert_to_tensor(position, "int32"))


def generate(model, prompt_ids, max_new_tokens, use_cache=True, seed=None, compiled=False,
             greedy=False, temperature=1.0, top_k=None, top_p=None):
    """Continue ``prompt_ids`` by ``max_new_tokens`` tokens.

    Args:
        model: a model with the interface of ``course_lib.gpt.GPT`` (module docstring).
        prompt_ids: ``(T,)`` or ``(B, T)`` int ids.
        max_new_tokens: how many tokens to add.
        use_cache: read the prompt once and feed one token per step with a key/value cache
            (prompt and new tokens must then fit in ``model.context_length``); otherwise run
            the model on the whole sequence at every step (cropped to its last
            ``context_length`` tokens).
        seed: of the NumPy generator that draws the tokens (the same seed, the same text).
        compiled: compile the model's calls (see :func:`compile_function`); for one short
            generation the compilation costs more than it saves.
        greedy, temperature, top_k, top_p: how the next token is chosen
            (:func:`choose_next_token`).

    Returns:
        ``(B, T + max_new_tokens)`` int32: the prompt followed by the new tokens.
    """
    choice = {"greedy": greedy, "temperature": temperature, "top_k": top_k, "top_p": top_p}
    return Decoder(model, compiled=compiled).generate(prompt_ids, max_new_tokens,
                                                    use_cache=use_cache, seed=seed, **choice)


def cache_bytes(num_layers, num_heads, head_dim, length, batch_size=1, bytes_per_number=4):
    """Memory of a key/value cache: ``2 (keys and values) × layers × batch × length × heads ×
    head_dim`` numbers of ``bytes_per_number`` bytes (4 for float32)."""
    counts = [require_positive_int(name, value) for name, value in (
        ("num_layers", num_layers), ("num_heads", num_heads), ("head_dim", head_dim),
        ("length", length), ("batch_size", batch_size),
        ("bytes_per_number", bytes_per_number))]
    return 2 * int(np.prod(counts, dtype=np.int64))
