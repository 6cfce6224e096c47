"""Training through a discrete choice: the score-function (REINFORCE) and the straight-through
Gumbel-softmax estimators of ``∇_s E_{k ~ softmax(s)} [L_k]``.

A model that *picks* one of ``K`` places (hard attention) cannot be differentiated with respect
to the scores ``s`` that chose it: the choice is a step function of ``s``. Two ways around it:

- **REINFORCE** (Williams 1992; hard attention in Mnih et al. 2014 and Xu et al. 2015):
  since ``∇_s E[R] = E[(R − b) ∇_s log π_k]`` for any ``b`` that does not depend on the choice,
  sample ``k ~ π = softmax(s)``, observe the reward ``R_k``, and follow
  ``(R_k − b) ∇_s log π_k = (R_k − b)(e_k − π)``. Unbiased; its variance grows with
  ``|R − b|``, so ``b`` is a *baseline* learned to predict ``R`` (:func:`reinforce_losses`).
- **Straight-through Gumbel-softmax** (Jang et al. 2017; Maddison et al. 2017; Bengio et al.
  2013 for straight-through): ``k = argmax_j (s_j + g_j)`` with ``g_j`` Gumbel noise is an exact
  sample of ``softmax(s)``; the forward pass uses its one-hot ``e_k``, the backward pass the
  gradient of the relaxed sample ``y = softmax((s + g) / τ)`` (:func:`gumbel_softmax`). Low
  variance, but biased, and the backward pass needs every ``L_j``'s input, not just ``k``'s.

Shapes: scores (logits) ``(…, K)``; one choice per row. ``keras.ops`` only (any backend).
"""

import keras
from keras import ops


def gumbel_noise(shape, seed=None, dtype="float32"):
    """Standard Gumbel noise ``g = −log(−log u)``, ``u ~ Uniform(0, 1)``, of ``shape``.

    ``seed``: an int or a ``keras.random.SeedGenerator`` (as in ``keras.random``)."""
    tiny = 1e-10  # keeps both logarithms finite at the ends of the interval
    uniform = keras.random.uniform(shape, minval=tiny, maxval=1.0 - tiny, dtype=dtype,
                                   seed=seed)
    return -ops.log(-ops.log(uniform))


def relaxed_one_hot(perturbed_logits, temperature=1.0, hard=True):
    """``y = softmax(perturbed_logits / τ)`` over the last axis; with ``hard``, the one-hot of its
    argmax in the forward pass and ``y``'s gradient in the backward pass (straight-through):
    ``e_k + (y − stop_gradient(y))``.

    Args:
        perturbed_logits: ``(…, K)``, the scores plus Gumbel noise.
        temperature: ``τ > 0``; as ``τ → 0``, ``y`` tends to the one-hot.
        hard: whether to return the straight-through one-hot (True) or ``y`` itself.

    Returns:
        ``(…, K)``, each row summing to 1.
    """
    if not temperature > 0:
        raise ValueError(f"`temperature` must be positive, received {temperature!r}.")
    soft = ops.softmax(perturbed_logits / temperature, axis=-1)  # (…, K)
    if not hard:
        return soft
    choice = ops.argmax(perturbed_logits, axis=-1)  # (…,)
    one_hot = ops.one_hot(choice, ops.shape(perturbed_logits)[-1], dtype=soft.dtype)  # (…, K)
    return one_hot + (soft - ops.stop_gradient(soft))  # exactly e_k forward: x − x = 0


def gumbel_softmax(logits, temperature=1.0, hard=True, seed=None):
    """A sample of ``softmax(logits)`` by the Gumbel-max trick, relaxed for gradients:
    :func:`relaxed_one_hot` of ``logits + g`` with fresh Gumbel noise ``g``.

    With ``hard=True`` (straight-through) the forward value is exactly a one-hot sample whose
    choice ``k`` has probability ``softmax(logits)_k``; the gradient is that of
    ``softmax((logits + g) / τ)``. Jang et al. 2017, "Categorical Reparameterization with
    Gumbel-Softmax". ``(…, K) → (…, K)``.
    """
    noise = gumbel_noise(ops.shape(logits), seed=seed, dtype=logits.dtype)
    return relaxed_one_hot(logits + noise, temperature, hard)


def sample_choices(logits, seed=None):
    """``k ~ softmax(logits)`` for each row, with its log-probability ``log π_k``.

    Returns:
        ``(choices (…,) int32, log_probabilities (…,))``; the log-probability carries the
        gradient ``e_k − π`` with respect to ``logits``.
    """
    flat = ops.reshape(logits, (-1, ops.shape(logits)[-1]))  # (N, K)
    choices = ops.cast(keras.random.categorical(flat, 1, seed=seed)[:, 0], "int32")  # (N,)
    choices = ops.reshape(choices, ops.shape(logits)[:-1])  # (…,)
    log_probabilities = ops.log_softmax(logits, axis=-1)  # (…, K)
    chosen = ops.take_along_axis(log_probabilities, ops.expand_dims(choices, -1), axis=-1)
    return choices, chosen[..., 0]


def reinforce_losses(log_probability, reward, baseline=None):
    """The two surrogate losses of REINFORCE with a learned baseline, one value per example.

    ``policy = −stop_gradient(R − b) · log π_k``: its gradient with respect to the scores is
    ``−(R − b)(e_k − π)``, so minimising it climbs the expected reward (Williams 1992,
    with a reinforcement baseline). ``baseline = (b − stop_gradient(R))²``: trains ``b`` to
    predict the reward, which shrinks ``|R − b|`` and so the estimator's variance. Neither
    passes a gradient into ``R``.

    Args:
        log_probability: ``(B,)``, ``log π_k`` of the sampled choice (with its gradient).
        reward: ``(B,)``, ``R_k``.
        baseline: ``(B,)`` or None (no baseline: ``b = 0`` and a baseline loss of 0).

    Returns:
        ``(policy_loss (B,), baseline_loss (B,))``.
    """
    reward = ops.stop_gradient(reward)
    if baseline is None:
        return -reward * log_probability, ops.zeros_like(reward)
    advantage = ops.stop_gradient(reward - baseline)
    return -advantage * log_probability, ops.square(baseline - reward)
