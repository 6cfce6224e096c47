"""Which input words mattered to a prediction: three accounts, how to compare them, and the
counterfactual test of attention weights.

===============================  ================================================================
account                          what it measures, for word ``t`` of a sentence
===============================  ================================================================
attention weight ``a_t``         how much of the pooled vector comes from state ``h_t`` (which
                                 after self-attention mixes many words, not word ``t`` alone)
:func:`gradient_times_input`     ``Σ_d x_{t,d} ∂f/∂x_{t,d}``: the first-order change in ``f`` if
                                 word ``t``'s vector were scaled to zero (Shrikumar et al. 2016;
                                 Jain & Wallace 2019 compare attention with gradients)
:func:`leave_one_out`            ``f(x) − f(x without word t)``: the change when the word is
                                 deleted and the sentence closes up (Li et al. 2016; Jain &
                                 Wallace 2019)
===============================  ================================================================

:func:`rank_correlations` compares two accounts sentence by sentence with Kendall's τ_b over the
real words (as Jain & Wallace 2019 do). :func:`permuted_weights` feeds the
counterfactual test (Jain & Wallace 2019, §4.2): shuffle the attention weights among the words
and see whether the prediction moves; Wiegreffe & Pinter (2019) answer that a model whose output
ignores such shuffles may still need attention, which is tested by training with uniform weights.

Shapes: sentences ``(B, T)`` ids, right-padded with ``pad_id``; word vectors ``(B, T, D)``;
attributions and weights ``(B, T)``, 0 at padding. NumPy in and out, except the function handed
to :func:`gradient_times_input`, which must be written in ``keras.ops``.
"""

import keras
import numpy as np

from course_lib.validation import require_positive_int


def input_gradient(function, inputs):
    """``∂ Σ_b function(inputs)_b / ∂ inputs``: with rows that do not interact (no batch
    statistics, dropout off), row ``b`` holds the gradient of ``function``'s output ``b``.

    The one piece of this module that differs by backend (TensorFlow's ``GradientTape``,
    ``jax.grad``); ``function`` maps a tensor like ``inputs`` to ``(B,)`` numbers.
    """
    inputs = np.asarray(inputs, dtype="float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            total = tf.reduce_sum(function(tensor))
        return tape.gradient(total, tensor,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda x: jnp.sum(function(x)))(jnp.asarray(inputs)))
    raise ValueError(f"input_gradient supports the tensorflow and jax backends, not {backend!r}.")


def gradient_times_input(function, inputs, mask=None):
    """``Σ_d x_{b,t,d} · ∂f_b/∂x_{b,t,d}``: one number per position, ``(B, T, D) → (B, T)``.

    Signed: positive where the word's vector pushes ``f`` up. Positions where ``mask`` (``(B,
    T)``, True at real words) is False get 0.
    """
    inputs = np.asarray(inputs, dtype="float32")
    if inputs.ndim != 3:
        raise ValueError(f"`inputs` must be (batch, tokens, depth), received shape "
                         f"{inputs.shape}.")
    attribution = (input_gradient(function, inputs) * inputs).sum(axis=-1)
    if mask is not None:
        mask = _check_mask(mask, attribution.shape)
        attribution = np.where(mask, attribution, 0.0)
    return attribution.astype(np.float64)


def _check_mask(mask, shape):
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(shape):
        raise ValueError(f"`mask` of shape {mask.shape} must have the shape {tuple(shape)} of "
                         f"the attributions.")
    return mask


def without_each_word(ids, pad_id=0):
    """Every sentence with one of its words deleted and the rest closed up, re-padded.

    Returns:
        ``(variants (M, T), sentence (M,), position (M,))``: variant ``m`` is sentence
        ``sentence[m]`` without its word at ``position[m]``; ``M`` counts the real words.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"`ids` must be (sentences, tokens), received shape {ids.shape}.")
    sentence, position = np.nonzero(ids != pad_id)
    variants = np.full((len(sentence), ids.shape[1]), pad_id, dtype=ids.dtype)
    for row, (n, t) in enumerate(zip(sentence, position, strict=True)):
        kept = np.delete(ids[n][ids[n] != pad_id], np.count_nonzero(ids[n, :t] != pad_id))
        variants[row, :len(kept)] = kept
    return variants, sentence, position


def leave_one_out(predict, ids, pad_id=0, batch_size=1024):
    """``predict(ids) − predict(ids without word t)`` for every real word: ``(B, T)``, 0 at
    padding.

    Args:
        predict: ``(N, T)`` ids → ``(N,)`` numbers (a probability or a logit).
        ids: ``(B, T)``, right-padded with ``pad_id``.
        batch_size: how many variants ``predict`` receives at a time.

    A positive value: the word pushed the prediction up (without it, the prediction falls).
    """
    batch_size = require_positive_int("batch_size", batch_size)
    ids = np.asarray(ids)
    full = np.asarray(predict(ids), dtype=np.float64).reshape(-1)
    if full.shape != (len(ids),):
        raise ValueError(f"`predict` must return one number per sentence: {len(ids)} "
                         f"sentences gave shape {np.shape(full)}.")
    variants, sentence, position = without_each_word(ids, pad_id)
    reduced = np.concatenate([np.asarray(predict(variants[start:start + batch_size]),
                                         dtype=np.float64).reshape(-1)
                              for start in range(0, len(variants), batch_size)])
    attribution = np.zeros(ids.shape, dtype=np.float64)
    attribution[sentence, position] = full[sentence] - reduced
    return attribution


def kendall_tau(first, second):
    """Kendall's τ_b of two equal-length 1-D arrays (ties counted as in Kendall 1945):
    ``(concordant − discordant) / √((n₀ − ties₁)(n₀ − ties₂))`` over the ``n₀ = n(n−1)/2``
    pairs. NaN when either array is constant or shorter than 2."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D arrays of one length, received shapes "
                         f"{first.shape} and {second.shape}.")
    upper = np.triu_indices(len(first), k=1)
    sign_first = np.sign(first[:, None] - first[None, :])[upper]
    sign_second = np.sign(second[:, None] - second[None, :])[upper]
    untied_first, untied_second = np.count_nonzero(sign_first), np.count_nonzero(sign_second)
    if untied_first == 0 or untied_second == 0:
        return float("nan")
    return float(np.sum(sign_first * sign_second) / np.sqrt(untied_first * untied_second))


def rank_correlations(first, second, mask):
    """Kendall's τ_b between two attributions over each sentence's real words: ``(B,)``, NaN for
    a sentence of one word or where one account gives all its words the same value."""
    first, second = np.asarray(first), np.asarray(second)
    mask = _check_mask(mask, first.shape)
    if second.shape != first.shape:
        raise ValueError(f"the two attributions must have one shape, received {first.shape} "
                         f"and {second.shape}.")
    return np.array([kendall_tau(a[m], b[m]) for a, b, m in zip(first, second, mask,
                                                                strict=True)])


def permuted_weights(weights, mask, permutations, seed=0):
    """``permutations`` shuffles of each row's weights among its real words: ``(P, B, T)``.

    The multiset of weights stays (each row still sums to what it summed to); which word gets
    which weight is random; padding keeps 0. Jain & Wallace 2019, §4.2.
    """
    permutations = require_positive_int("permutations", permutations)
    weights = np.asarray(weights, dtype=np.float64)
    mask = _check_mask(mask, weights.shape)
    rng = np.random.default_rng(seed)
    shuffled = np.zeros((permutations, *weights.shape))
    for row, (values, real) in enumerate(zip(weights, mask, strict=True)):
        where = np.flatnonzero(real)
        for p in range(permutations):
            shuffled[p, row, where] = values[where][rng.permutation(len(where))]
    return shuffled
