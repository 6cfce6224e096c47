"""Lesson 13's questions to lesson 06's sentiment classifier: do its attention weights say which
words mattered?

- :func:`word_attributions`: three accounts of each word of each sentence, the attention-pooling
  weight ``a_t``, gradient × input (of the logit, with respect to the word vector ``√d E[w_t]``)
  and leave-one-out (``P(positive)`` of the sentence less that of the sentence without the word),
  with :mod:`course_lib.attribution`.
- :func:`agreement`: Kendall's τ_b of each pair of accounts over each sentence's words (the
  magnitudes: a large negative effect matters as much as a large positive one), and how often
  the words they rank first coincide.
- :func:`counterfactual_test`: the prediction with the attention weights shuffled among the
  words (Jain & Wallace 2019, §4.2) or made uniform, the states left as they are.

Within a sentence the ranks do not depend on reading the logit or the probability: the sigmoid
is increasing, so it keeps the order of leave-one-out's signed changes, and it scales every
gradient of one sentence by the same factor.
"""

import numpy as np
from keras import ops

from course_lib.attribution import (
    gradient_times_input,
    leave_one_out,
    permuted_weights,
    rank_correlations,
)
from course_lib.data import PAD_ID
from course_lib.validation import require_positive_int

ACCOUNTS = ("attention", "gradient_times_input", "leave_one_out")
PAIRS = (("attention", "gradient_times_input"), ("attention", "leave_one_out"),
         ("gradient_times_input", "leave_one_out"))


def word_attributions(model, ids):
    """The three accounts for sentences ``ids`` ``(B, T)`` of a ``SentenceClassifier``:
    a dict of ``(B, T)`` arrays (``attention``, ``gradient_times_input``, ``leave_one_out``,
    ``mask``) and ``probability`` ``(B,)``; 0 at padding."""
    ids = np.asarray(ids)
    inside = model.explain(ids)
    mask = inside["mask"]
    mask_tensor = ops.convert_to_tensor(mask)
    word_vectors = ops.convert_to_numpy(model.word_vectors(ids))

    def logit(vectors):
        return model.logit_from_word_vectors(vectors, mask_tensor)

    def probability(sentences):
        return model.explain(sentences)["probability"]

    return {"attention": np.where(mask, inside["pooling"], 0.0).astype(np.float64),
            "gradient_times_input": gradient_times_input(logit, word_vectors, mask),
            "leave_one_out": leave_one_out(probability, ids, pad_id=PAD_ID),
            "mask": mask, "probability": inside["probability"]}


def _first(values, mask):
    return np.argmax(np.where(mask, values, -np.inf), axis=-1)


def agreement(attributions, min_words=2):
    """Per pair of accounts, Kendall's τ_b of their magnitudes over each sentence's words
    (sentences of at least ``min_words`` words), and whether their largest words coincide.

    Returns:
        ``{"first/second": {"tau": (B,) with NaN for short or constant sentences,
        "same_top_word": (B,) bool}}``.
    """
    min_words = require_positive_int("min_words", min_words)
    mask = attributions["mask"] & (attributions["mask"].sum(axis=-1, keepdims=True)
                                   >= min_words)
    result = {}
    for first, second in PAIRS:
        a, b = np.abs(attributions[first]), np.abs(attributions[second])
        result[f"{first}/{second}"] = {
            "tau": rank_correlations(a, b, mask),
            "same_top_word": _first(a, mask) == _first(b, mask)}
    return result


def counterfactual_test(model, ids, permutations=100, seed=0):
    """The prediction when the pooling weights are shuffled among the real words, and when they
    are uniform, each sentence's states ``h`` unchanged.

    Returns:
        A dict: ``probability (B,)`` as the model gives it, ``permuted (P, B)`` with the
        shuffled weights, ``uniform (B,)`` with weights ``1/n``, and ``largest_weight (B,)``.
    """
    inside = model.explain(np.asarray(ids))
    states, mask = inside["states"], inside["mask"]
    shuffled = permuted_weights(inside["pooling"], mask, permutations, seed)

    def probability(weights):
        logit = ops.convert_to_numpy(model.logit_from_pooling(
            states, np.asarray(weights, dtype=states.dtype))).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logit))

    uniform = mask / mask.sum(axis=-1, keepdims=True)
    return {"probability": inside["probability"],
            "permuted": np.stack([probability(weights) for weights in shuffled]),
            "uniform": probability(uniform),
            "largest_weight": np.where(mask, inside["pooling"], 0.0).max(axis=-1)}


def flip_rates(test, labels=None):
    """From :func:`counterfactual_test`: the share of predictions (P ≥ 0.5) that change under a
    shuffle (over sentences and shuffles) and under uniform weights; the median over sentences
    of the median ``|ΔP|`` under shuffles (Jain & Wallace's measure); with ``labels``, the
    accuracy as given, shuffled and uniform. A dict of floats."""
    given = test["probability"] >= 0.5
    permuted, uniform = test["permuted"] >= 0.5, test["uniform"] >= 0.5
    rates = {"permuted_flip_rate": float(np.mean(permuted != given[None])),
             "uniform_flip_rate": float(np.mean(uniform != given)),
             "median_permuted_change": float(np.median(np.median(
                 np.abs(test["permuted"] - test["probability"][None]), axis=0)))}
    if labels is not None:
        truth = np.asarray(labels) == 1
        rates.update({"accuracy": float(np.mean(given == truth)),
                      "permuted_accuracy": float(np.mean(permuted == truth[None])),
                      "uniform_accuracy": float(np.mean(uniform == truth))})
    return rates
