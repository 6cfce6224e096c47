"""Exercises of lesson 04, Luong attention (``solutions/04_luong_attention.ipynb``).

04.1 ``concat_score``  04.2 ``local_m_mask``  04.3 ``predicted_positions``
04.4 ``local_p_weights``. All in NumPy, so a graded kernel never imports TensorFlow.

Local attention follows Luong, Pham & Manning 2015, §3.2: local-m aligns target step ``t`` with
source position ``p_t = t``; local-p predicts ``p_t = L sigmoid(v_p . tanh(W_p h_t))`` and
weights the softmax over the window ``[p_t - D, p_t + D]`` by a Gaussian of standard deviation
``D / 2`` centred on ``p_t``. Positions count from 0, and the window holds the source positions
``s`` with ``|s - p_t| <= D`` that are real tokens.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def _additive(query, keys, W1, W2, v):
    hidden = np.tanh((np.asarray(query) @ W1)[:, :, None, :]
                     + (np.asarray(keys) @ W2)[:, None, :, :])
    return hidden @ v


def concat_score(query, keys, W, v):
    """Luong's concat score ``e_ij = v . tanh(W [q_i; k_j])`` for a batch: ``(B, Tq, Tk)``."""
    query_depth = np.shape(query)[-1]
    return _additive(query, keys, W[:query_depth], W[query_depth:], v)


def local_m_mask(target_length, source_length, D):
    """``mask[t, s] = |s - t| <= D``: local-m's window of ``2D + 1`` positions around ``t``."""
    steps = np.arange(target_length)[:, None]
    positions = np.arange(source_length)[None, :]
    return np.abs(positions - steps) <= D


def predicted_positions(query, W_p, v_p, source_mask):
    """local-p's aligned positions ``p_t = L sigmoid(v_p . tanh(W_p h_t))``: ``(B, Tq)``, with
    ``L`` each sentence's number of real tokens."""
    lengths = np.sum(source_mask, axis=1)[:, None]  # (B, 1)
    activation = np.tanh(np.asarray(query) @ W_p) @ v_p  # (B, Tq)
    return lengths / (1 + np.exp(-activation))


def _local_p(scores, positions, source_mask, D, *, sigma=None, centre=None, window_centre=None,
             use_window=True, use_mask=True, gaussian=True, renormalise=False,
             softmax_over_sentence=False):
    """local-p's weights, and (through the keywords) the usual ways of getting them wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)[..., None]  # (B, Tq, 1)
    source = np.arange(scores.shape[-1])
    real = np.asarray(source_mask, dtype=bool)[:, None, :] if use_mask else True  # (B, 1, S)
    near = np.abs(source - (positions if window_centre is None else window_centre(positions)))
    window = (near <= D) & real if use_window else np.broadcast_to(real, scores.shape)
    if softmax_over_sentence:
        weights = softmax(scores, mask=real) * window
    else:
        weights = softmax(scores, mask=window)
    if gaussian:
        sigma = D / 2 if sigma is None else sigma
        offset = source - (positions if centre is None else centre(positions))
        weights = weights * np.exp(-offset**2 / (2 * sigma**2))
    if renormalise:
        totals = weights.sum(axis=-1, keepdims=True)
        weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    return weights


def local_p_weights(scores, positions, source_mask, D):
    """Luong's local-p weights ``a_t(s) = softmax over the window (e_t)(s) * exp(-(s - p_t)^2
    / (2 sigma^2))``, ``sigma = D / 2``; zero outside the window and on padding: ``(B, Tq, S)``."""
    return _local_p(scores, positions, source_mask, D)


# --- Inputs -------------------------------------------------------------------------------------


def _score_cases(rng):
    """Query and key depths that differ (so [q; k] and [k; q] give other numbers), fewer queries
    than keys, one decoder step, and more queries than keys."""
    def scores(batch, n_queries, query_depth, n_keys, key_depth, units):
        depth = query_depth + key_depth
        return {"query": rng.normal(size=(batch, n_queries, query_depth)),
                "keys": rng.normal(size=(batch, n_keys, key_depth)),
                "W": rng.normal(size=(depth, units)) / np.sqrt(depth),
                "v": rng.normal(size=units)}
    return [scores(2, 3, 4, 5, 6, 7), scores(3, 1, 5, 4, 5, 3), scores(1, 6, 3, 2, 4, 8)]


def _mask_cases(rng):
    """Fewer target steps than source positions and more (where the last steps' windows fall off
    the end of the source and are empty), and windows that the start of the sequence clips."""
    return [
        {"target_length": 5, "source_length": 8, "D": 3},
        {"target_length": 9, "source_length": 5, "D": 1},
        {"target_length": int(rng.integers(3, 7)), "source_length": int(rng.integers(8, 12)),
         "D": int(rng.integers(2, 4))},
        {"target_length": int(rng.integers(8, 11)), "source_length": int(rng.integers(4, 7)),
         "D": int(rng.integers(1, 3))},
    ]


def _lengths_mask(lengths, width):
    return np.arange(width) < np.asarray(lengths)[:, None]


def _position_cases(rng):
    """Sentences of different real lengths in one padded batch, and target lengths that differ
    from every source length (so a length taken from the wrong place shows)."""
    def positions(batch, n_queries, depth, units, lengths, width):
        return {"query": rng.normal(size=(batch, n_queries, depth)),
                "W_p": rng.normal(size=(depth, units)) / np.sqrt(depth),
                "v_p": 1.5 * rng.normal(size=units),
                "source_mask": _lengths_mask(lengths, width)}
    return [positions(3, 4, 5, 6, [7, 3, 5], 7), positions(2, 1, 4, 3, [2, 6], 9),
            positions(4, 2, 3, 5, rng.integers(3, 9, size=4), 8)]


def _local_p_cases(rng):
    """A padded batch with positions near both ends of each sentence (so the window is clipped
    at the start, at the sentence's end and at the padding), real-valued positions, and D from
    1 to 3."""
    def weights(n_queries, lengths, width, D):
        lengths = np.asarray(lengths)
        positions = lengths[:, None] / (1 + np.exp(-2 * rng.normal(size=(len(lengths),
                                                                         n_queries))))
        positions[0, 0], positions[-1, -1] = 0.3, lengths[-1] - 0.4  # at the two ends
        return {"scores": 2 * rng.normal(size=(len(lengths), n_queries, width)),
                "positions": positions, "source_mask": _lengths_mask(lengths, width), "D": D}
    return [weights(3, [8, 5], 8, 2), weights(4, [10, 6, 3], 10, 3),
            weights(5, [6, 4], 7, 1)]


# --- Wrong implementations and diagnoses ------------------------------------------------------


def _unclipped_slices(target_length, source_length, D):
    """The window written with slices whose start is not clipped at 0: a negative start counts
    from the end, so the first steps' windows come out empty."""
    mask = np.zeros((target_length, source_length), dtype=bool)
    for step in range(target_length):
        mask[step, step - D:step + D + 1] = True
    return mask


def _window_outside(case: Case, weights: np.ndarray) -> np.ndarray:
    positions = np.asarray(case["positions"], dtype=np.float64)[..., None]
    return np.abs(np.arange(weights.shape[-1]) - positions) > case["D"]


def weights_outside_the_window(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    """Non-zero weight on source positions farther than D from p_t."""
    weights = mine["weights"]
    if not np.allclose(weights[_window_outside(case, weights)], 0.0, atol=1e-9):
        return ("Your weights are not zero outside the window: positions farther than D from "
                "p_t get weight. Hint: the softmax runs over the window only, |s - p_t| <= D; "
                "give the other scores -np.inf before it.")
    return None


def weights_on_padding(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Non-zero weight on padded source positions."""
    padding = ~np.broadcast_to(np.asarray(case["source_mask"], bool)[:, None, :],
                               mine["weights"].shape)
    if not np.allclose(mine["weights"][padding], 0.0, atol=1e-9):
        return ("Your weights are not zero on the padding: the window must stop at each "
                "sentence's last real token. Hint: AND the window with source_mask[:, None, :].")
    return None


# --- The exercises ------------------------------------------------------------------------------

CONCAT_SCORE = Exercise(
    exercise_id="04.1",
    function_name="concat_score",
    make_cases=_score_cases,
    reference=concat_score,
    outputs=("scores",),
    mistakes=(
        Mistake(lambda query, keys, W, v: _additive(query, keys, W[keys.shape[-1]:],
                                                    W[:keys.shape[-1]], v),
                "You concatenated in the wrong order, [k; q]; Luong's concat is W [q; k], the "
                "query (the decoder state) first. Hint: the first dq rows of W multiply the "
                "query, the last dk rows the key."),
        Mistake(lambda query, keys, W, v: (
                    (query @ W[:query.shape[-1]])[:, :, None, :]
                    + (keys @ W[query.shape[-1]:])[:, None, :, :]) @ v,
                "Your scores are missing the tanh: without it v·W[q; k] is a query term plus a "
                "key term, and the softmax over the keys cancels the query term. Hint: apply "
                "np.tanh before multiplying by v."),
        Mistake(lambda query, keys, W, v: np.tanh(
                    ((query @ W[:query.shape[-1]])[:, :, None, :]
                     + (keys @ W[query.shape[-1]:])[:, None, :, :]) @ v),
                "You apply the tanh after multiplying by v; the score is v · tanh(W [q; k]). "
                "Hint: tanh the (B, Tq, Tk, units) hidden layer first, then contract it with v."),
        Mistake(lambda query, keys, W, v: np.tanh(
                    (query @ W[:query.shape[-1]])[:, :, None, :]
                    + (keys @ W[query.shape[-1]:])[:, None, :, :]).sum(axis=-1),
                "You summed the hidden units instead of weighting them by v. Hint: multiply by "
                "v (hidden @ v) rather than summing over the last axis."),
        Mistake(lambda query, keys, W, v: softmax(concat_score(query, keys, W, v)),
                "You returned the attention weights (a softmax over the keys); this exercise "
                "asks for the scores before the softmax. Hint: leave out the softmax."),
    ),
    shape_hints={"scores": "one row per query, one column per key, for each batch entry"},
    error_hint="W has dq + dk rows: W[:dq] multiplies the query and W[dq:] the keys (that is "
               "W [q; k]); pair every query with every key by adding (B, Tq, 1, units) and "
               "(B, 1, Tk, units).",
    hint="compute one score by hand: v @ np.tanh(np.concatenate([query[0, 0], keys[0, 0]]) @ W).",
)

LOCAL_M_MASK = Exercise(
    exercise_id="04.2",
    function_name="local_m_mask",
    make_cases=_mask_cases,
    reference=local_m_mask,
    outputs=("mask",),
    mistakes=(
        Mistake(lambda target_length, source_length, D: ~local_m_mask(
                    target_length, source_length, D),
                "Your mask works the other way round: it is True outside the window. Here True "
                "means attend (the Keras convention). Hint: True where |s - t| <= D."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D - 1),
                "Your window is two positions too narrow: it leaves out s = t - D and s = t + D. "
                "Hint: the window [t - D, t + D] holds 2D + 1 positions: |s - t| <= D, not < D."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D // 2),
                "Your window is about D positions wide; Luong's holds 2D + 1: D on each side of "
                "t. Hint: |s - t| <= D."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D) & (np.arange(source_length) >= np.arange(
                        target_length)[:, None]),
                "Your window only looks ahead of t (s from t to t + D); it reaches D positions "
                "on both sides. Hint: |s - t| <= D."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D) & (np.arange(source_length) <= np.arange(
                        target_length)[:, None]),
                "Your window only looks behind t (s from t - D to t); it reaches D positions "
                "on both sides. Hint: |s - t| <= D."),
        Mistake(_unclipped_slices,
                "At the start of the sequence your windows are empty: for t < D the slice start "
                "t - D is negative, and a negative start counts from the end of the row. Hint: "
                "clip the start at 0, max(t - D, 0), or compare |s - t| <= D for all s at once."),
    ),
    shape_hints={"mask": "one row per target step t, one column per source position s"},
    hint="draw the mask for 4 target steps, 6 source positions and D = 1 by hand.",
    rtol=0.0,
    atol=0.0,
)

PREDICTED_POSITIONS = Exercise(
    exercise_id="04.3",
    function_name="predicted_positions",
    make_cases=_position_cases,
    reference=predicted_positions,
    outputs=("positions",),
    mistakes=(
        Mistake(lambda query, W_p, v_p, source_mask: predicted_positions(
                    query, W_p, v_p, np.ones_like(source_mask)),
                "You scaled by the padded length S (the mask's width), not by each sentence's "
                "own length L. Hint: L = source_mask.sum(axis=1), one per sentence; a short "
                "sentence's positions must stay inside it."),
        Mistake(lambda query, W_p, v_p, source_mask: predicted_positions(
                    query, W_p, v_p, source_mask) * (np.sum(source_mask, axis=1) - 1)[:, None]
                / np.sum(source_mask, axis=1)[:, None],
                "You scaled by L - 1; Luong et al. scale by the source length, L sigmoid(...), so "
                "p_t lies between 0 and L. Hint: multiply by L = source_mask.sum(axis=1)."),
        Mistake(lambda query, W_p, v_p, source_mask: predicted_positions(
                    query, W_p, v_p, source_mask) / np.sum(source_mask, axis=1)[:, None],
                "Your positions are between 0 and 1: you forgot to scale the sigmoid by the "
                "source length. Hint: multiply by L = source_mask.sum(axis=1), as a column."),
        Mistake(lambda query, W_p, v_p, source_mask: np.sum(source_mask, axis=1)[:, None]
                * (np.tanh(query @ W_p) @ v_p),
                "You forgot the sigmoid, so your positions can fall outside the sentence "
                "(below 0 or above L). Hint: p_t = L * sigmoid(v_p . tanh(W_p h_t)), and "
                "sigmoid(x) = 1 / (1 + exp(-x))."),
        Mistake(lambda query, W_p, v_p, source_mask: np.sum(source_mask, axis=1)[:, None]
                / (1 + np.exp(-(query @ W_p) @ v_p)),
                "You forgot the tanh: p_t = L sigmoid(v_p . tanh(W_p h_t)). Hint: apply np.tanh "
                "to query @ W_p before multiplying by v_p."),
        Mistake(lambda query, W_p, v_p, source_mask: query.shape[1] / (
                    1 + np.exp(-(np.tanh(query @ W_p) @ v_p))),
                "You scaled by the number of target steps; p_t is a position in the source, so "
                "scale by the source length L. Hint: L = source_mask.sum(axis=1)."),
    ),
    shape_hints={"positions": "one row per sentence, one column per target step"},
    error_hint="source_mask.sum(axis=1) has shape (B,); give it an axis for the target steps, "
               "[:, None], to scale the (B, Tq) sigmoid.",
    hint="compute one position by hand: L * sigmoid(v_p @ np.tanh(query[0, 0] @ W_p)), with "
         "L = source_mask[0].sum().",
)

LOCAL_P_WEIGHTS = Exercise(
    exercise_id="04.4",
    function_name="local_p_weights",
    make_cases=_local_p_cases,
    reference=local_p_weights,
    outputs=("weights",),
    mistakes=(
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, gaussian=False),
                "Your weights are the softmax over the window without the Gaussian. Hint: "
                "multiply them by exp(-(s - p_t)² / (2σ²)) with σ = D / 2, which favours the "
                "positions nearest p_t."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, sigma=D),
                "Your Gaussian has σ = D; Luong et al. take σ = D / 2, so the window's edges "
                "get exp(-2) of the weight. Hint: sigma = D / 2."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, sigma=np.sqrt(D / 2)),
                "You divide (s - p_t)² by 2σ instead of 2σ². Hint: with σ = D / 2, the "
                "denominator is 2 * sigma**2 = D² / 2."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, renormalise=True),
                "You renormalised the weights after the Gaussian so that they sum to 1; Luong's "
                "local-p weights do not: the Gaussian multiplies the softmax and that is all. "
                "Hint: drop the last division."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, use_window=False),
                "Your softmax runs over the whole sentence, not the window: positions farther "
                "than D from p_t keep some weight. Hint: give the scores outside |s - p_t| <= D "
                "-np.inf before the softmax."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, softmax_over_sentence=True),
                "Your softmax runs over the whole sentence and is cut to the window afterwards, "
                "so the weights in the window sum to less than the softmax's 1. Hint: mask the "
                "scores outside the window before the softmax, so it runs over the window only."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, use_mask=False),
                "Your window is not clipped to the sentence: near its end it reaches into the "
                "padding. Hint: AND the window with source_mask[:, None, :]."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, centre=np.round),
                "Your Gaussian is centred on the rounded position; local-p's p_t is a real "
                "number, and the Gaussian uses it as it is. Hint: exp(-(s - p_t)² / (2σ²)) "
                "with the unrounded p_t."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, window_centre=np.round,
                    centre=np.round),
                "You rounded p_t; local-p's p_t is a real number, and both the window "
                "(|s - p_t| <= D) and the Gaussian use it as it is. Hint: do not round it."),
        Mistake(lambda scores, positions, source_mask, D: _local_p(
                    scores, positions, source_mask, D, window_centre=np.round),
                "Your window is centred on the rounded position; this exercise's window holds "
                "the positions with |s - p_t| <= D for the real p_t. Hint: compare "
                "np.abs(s - p_t) <= D without rounding."),
    ),
    properties=(weights_on_padding, weights_outside_the_window),
    shape_hints={"weights": "one row per target step, one column per source position, for each "
                            "sentence"},
    nan_hint="give the scores outside the window -np.inf, and subtract the row maximum over "
             "the window (not over -inf) before exp().",
    error_hint="give positions an axis for the source, positions[..., None] (B, Tq, 1), and "
               "source_mask one for the target steps, source_mask[:, None, :] (B, 1, S).",
    hint="take one decoder step by hand: the real positions s with |s - p_t| <= D, the softmax "
         "of their scores, times exp(-(s - p_t)**2 / (2 * (D / 2)**2)).",
)

EXERCISES = (CONCAT_SCORE, LOCAL_M_MASK, PREDICTED_POSITIONS, LOCAL_P_WEIGHTS)
