"""Exercises of lesson 04, Luong attention (``solutions/04_luong_attention.ipynb``).

04.1 ``concat_score``  04.2 ``local_m_mask``  04.3 ``predicted_positions``
04.4 ``LocalPAttention`` (build: a Keras layer). The references are NumPy; 04.4's check builds
the learner's layer in the learner's kernel (Keras is imported there only), sets its weights from
the case by name, calls it and returns its outputs as arrays.

Local attention follows Luong, Pham & Manning 2015, §3.2: local-m aligns target step ``t`` with
source position ``p_t = t``; local-p predicts ``p_t = L sigmoid(v_p . tanh(W_p h_t))`` and
weights the softmax over the window ``[p_t - D, p_t + D]`` by a Gaussian of standard deviation
``D / 2`` centred on ``p_t``. Positions count from 0, and the window holds the source positions
``s`` with ``|s - p_t| <= D`` that are real tokens.
"""

import numpy as np

from course_lib.checks.build import describe_layer_call, float32, numpy_of, set_weight
from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

GRADING_TIMEOUT_S = 180
"""Keras's import and the layer's check take about 20 s of one core; 180 s leaves room for a
busy machine."""

LOCAL_P_WEIGHTS = ("score_kernel", "position_kernel", "position_vector")

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
        sigma = {None: D / 2, "D": D, "sqrt D/2": np.sqrt(D / 2),
                 "no 2": D / 2 / np.sqrt(2)}.get(sigma, sigma)
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


def _local_p_layer(query, values, mask, score_kernel, position_kernel, position_vector, D, *,
                   lengths="real", sigmoid=True, tanh=True, **weighting):
    """local-p attention as a layer computes it, ``(context, weights, positions)``; the keywords
    give the usual mistakes (``weighting`` goes to :func:`_local_p`)."""
    query, values = np.asarray(query, dtype=np.float64), np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    length = {"real": np.sum(mask, axis=1), "padded": np.full(len(mask), mask.shape[1]),
              "minus one": np.sum(mask, axis=1) - 1}[lengths][:, None]  # (B, 1)
    hidden = query @ position_kernel
    activation = (np.tanh(hidden) if tanh else hidden) @ position_vector  # (B, Tq)
    positions = length * (1 / (1 + np.exp(-activation)) if sigmoid else activation)
    scores = query @ score_kernel @ np.swapaxes(values, -1, -2)  # (B, Tq, S): general
    weights = _local_p(scores, positions, mask, D, **weighting)
    return weights @ values, weights, positions


def local_p_attention(query, values, mask, score_kernel, position_kernel, position_vector, D):
    """Luong's local-p attention with the general score, for all decoder steps at once:
    ``(context (B, Tq, dv), weights (B, Tq, S), positions (B, Tq))``.

    ``p_t = L sigmoid(v_p . tanh(W_p h_t))`` (``L`` each sentence's real length); scores
    ``e_ts = h_t W_a h̄_s``; weights: the softmax of the scores over the window of real positions
    ``|s - p_t| <= D``, times ``exp(-(s - p_t)^2 / (2 (D/2)^2))``, zero elsewhere; context: the
    weighted sum of the values.
    """
    return _local_p_layer(query, values, mask, score_kernel, position_kernel, position_vector, D)


def invoke_local_p(layer_class, case):
    """How 04.4 runs the learner's layer, in the learner's kernel: build it with the half-width
    and units, set its weights by name, call it."""
    units = np.shape(case["position_vector"])[0]
    query, values = float32(case["query"]), float32(case["values"])
    mask = np.asarray(case["mask"], dtype=bool)
    layer = layer_class(half_width=int(case["D"]), units=int(units))
    layer(query, values, mask=mask)  # builds the weights
    for name in LOCAL_P_WEIGHTS:
        set_weight(layer, name, case[name])
    returned = layer(query, values, mask=mask)
    if not isinstance(returned, tuple | list) or len(returned) != 3:
        raise TypeError(f"your layer returned {type(returned).__name__}; it must return "
                        f"(context, weights, positions)")
    return tuple(numpy_of(value) for value in returned)


def describe_local_p(case):
    """What 04.4's layer was built with and called on (its weights are set by the check)."""
    return describe_layer_call(
        "LocalPAttention", {"half_width": int(case["D"]),
                            "units": np.shape(case["position_vector"])[0]},
        {"query": case["query"], "values": case["values"], "mask": case["mask"]})


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


def _local_p_layer_cases(rng):
    """Padded batches (so the window must stop at each sentence's last real token, and the
    positions scale with each sentence's own length), query and value depths that differ,
    D from 1 to 3, and position weights spread enough that some p_t fall near both ends of a
    sentence (where the window is clipped)."""
    def attention(lengths, width, n_queries, query_depth, value_depth, units, D):
        lengths = np.asarray(lengths)
        return {"query": rng.normal(size=(len(lengths), n_queries, query_depth)),
                "values": rng.normal(size=(len(lengths), width, value_depth)),
                "mask": _lengths_mask(lengths, width),
                "score_kernel": rng.normal(size=(query_depth, value_depth)) / np.sqrt(
                    query_depth),
                "position_kernel": rng.normal(size=(query_depth, units)) / np.sqrt(query_depth),
                "position_vector": 2.0 * rng.normal(size=units), "D": D}
    return [attention([8, 5], 8, 4, 5, 6, 4, 2),
            attention(rng.permutation([10, 6, 3]), 10, 5, 4, 3, 3, 3),
            attention([7, 4], 7, 6, 6, 4, 5, 1)]


# --- Wrong implementations and diagnoses ------------------------------------------------------


def _unclipped_slices(target_length, source_length, D):
    """The window written with slices whose start is not clipped at 0: a negative start counts
    from the end, so the first steps' windows come out empty."""
    mask = np.zeros((target_length, source_length), dtype=bool)
    for step in range(target_length):
        mask[step, step - D:step + D + 1] = True
    return mask


def _window_outside(positions: np.ndarray, D: int, width: int) -> np.ndarray:
    return np.abs(np.arange(width) - np.asarray(positions, dtype=np.float64)[..., None]) > D


def positions_differ(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """04.4: p_t wrong in a way no named mistake covers."""
    positions, right = mine["positions"], expected["positions"]
    if positions.shape == right.shape and np.allclose(positions, right, rtol=1e-4, atol=1e-4):
        return None
    if positions.shape != right.shape:
        return (f"Your positions have shape {positions.shape}, expected {right.shape}: one p_t "
                f"per sentence and decoder step. Hint: p_t comes from the decoder state h_t "
                f"alone, scaled by its own sentence's length.")
    return ("Your positions p_t differ from L · sigmoid(v_p · tanh(W_p h_t)). Hint: exercise "
            "04.3 computes them; check L (each sentence's real length) and the order of the "
            "tanh and the sigmoid.")


def weights_outside_the_window(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    """Non-zero weight on source positions farther than D from p_t."""
    weights = mine["weights"]
    if weights.shape != expected["weights"].shape:
        return None
    outside = _window_outside(expected["positions"], case["D"], weights.shape[-1])
    if not np.allclose(weights[outside], 0.0, atol=1e-6):
        return ("Your weights are not zero outside the window: positions farther than D from "
                "p_t get weight. Hint: the softmax runs over the window |s - p_t| <= D only.")
    return None


def weights_on_padding(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Non-zero weight on padded source positions."""
    weights = mine["weights"]
    if weights.shape != expected["weights"].shape:
        return None
    padding = ~np.broadcast_to(np.asarray(case["mask"], bool)[:, None, :], weights.shape)
    if not np.allclose(weights[padding], 0.0, atol=1e-6):
        return ("Your weights are not zero on the padding: the window must stop at each "
                "sentence's last real token. Hint: which positions does `mask` say are real?")
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
                "query (the decoder state) first. Hint: which rows of W meet the query, and "
                "which the key?"),
        Mistake(lambda query, keys, W, v: (
                    (query @ W[:query.shape[-1]])[:, :, None, :]
                    + (keys @ W[query.shape[-1]:])[:, None, :, :]) @ v,
                "Your scores are missing the tanh: without it v·W[q; k] is a query term plus a "
                "key term, and the softmax over the keys cancels the query term. Hint: where "
                "does the nonlinearity of the scoring network go?"),
        Mistake(lambda query, keys, W, v: np.tanh(
                    ((query @ W[:query.shape[-1]])[:, :, None, :]
                     + (keys @ W[query.shape[-1]:])[:, None, :, :]) @ v),
                "You apply the tanh after multiplying by v; the score is v · tanh(W [q; k]). "
                "Hint: the tanh is the hidden layer of the scoring network, before v."),
        Mistake(lambda query, keys, W, v: np.tanh(
                    (query @ W[:query.shape[-1]])[:, :, None, :]
                    + (keys @ W[query.shape[-1]:])[:, None, :, :]).sum(axis=-1),
                "You summed the hidden units instead of weighting them by v. Hint: v turns each "
                "(units,) hidden vector into one score."),
        Mistake(lambda query, keys, W, v: softmax(concat_score(query, keys, W, v)),
                "You returned the attention weights (a softmax over the keys); this exercise "
                "asks for the scores before the softmax. Hint: leave out the softmax."),
    ),
    shape_hints={"scores": "one row per query, one column per key, for each batch entry"},
    error_hint="W has dq + dk rows, one per feature of [q; k]; every query meets every key, so "
               "the pairs need an axis for the queries and one for the keys.",
    hint="compute one score by hand, for the first query and the first key, and compare it "
         "with your [0, 0, 0].",
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
                "means attend (the Keras convention). Hint: is your mask True inside the window "
                "or outside it?"),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D - 1),
                "Your window is two positions too narrow: it leaves out s = t - D and s = t + D. "
                "Hint: the window [t - D, t + D] holds 2D + 1 positions, its ends included."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D // 2),
                "Your window is about D positions wide; Luong's holds 2D + 1: D on each side of "
                "t. Hint: the window is |s - t| <= D."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D) & (np.arange(source_length) >= np.arange(
                        target_length)[:, None]),
                "Your window only looks ahead of t (s from t to t + D); it reaches D positions "
                "on both sides. Hint: the window is |s - t| <= D, on either side of t."),
        Mistake(lambda target_length, source_length, D: local_m_mask(
                    target_length, source_length, D) & (np.arange(source_length) <= np.arange(
                        target_length)[:, None]),
                "Your window only looks behind t (s from t - D to t); it reaches D positions "
                "on both sides. Hint: the window is |s - t| <= D, on either side of t."),
        Mistake(_unclipped_slices,
                "At the start of the sequence your windows are empty: for t < D the slice start "
                "t - D is negative, and a negative start counts from the end of the row. Hint: "
                "where does the window of step 0 start?"),
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
                "own length L. Hint: a short sentence's positions must stay inside it: how many "
                "real tokens does each sentence have?"),
        Mistake(lambda query, W_p, v_p, source_mask: predicted_positions(
                    query, W_p, v_p, source_mask) * (np.sum(source_mask, axis=1) - 1)[:, None]
                / np.sum(source_mask, axis=1)[:, None],
                "You scaled by L - 1; Luong et al. scale by the source length, L sigmoid(...), so "
                "p_t lies between 0 and L. Hint: use L itself."),
        Mistake(lambda query, W_p, v_p, source_mask: predicted_positions(
                    query, W_p, v_p, source_mask) / np.sum(source_mask, axis=1)[:, None],
                "Your positions are between 0 and 1: you forgot to scale the sigmoid by the "
                "source length. Hint: p_t is a position in the sentence, between 0 and L."),
        Mistake(lambda query, W_p, v_p, source_mask: np.sum(source_mask, axis=1)[:, None]
                * (np.tanh(query @ W_p) @ v_p),
                "You forgot the sigmoid, so your positions can fall outside the sentence "
                "(below 0 or above L). Hint: what keeps L times a number between 0 and L?"),
        Mistake(lambda query, W_p, v_p, source_mask: np.sum(source_mask, axis=1)[:, None]
                / (1 + np.exp(-(query @ W_p) @ v_p)),
                "You forgot the tanh: p_t = L sigmoid(v_p . tanh(W_p h_t)). Hint: the position "
                "network has a tanh hidden layer before v_p."),
        Mistake(lambda query, W_p, v_p, source_mask: query.shape[1] / (
                    1 + np.exp(-(np.tanh(query @ W_p) @ v_p))),
                "You scaled by the number of target steps; p_t is a position in the source, so "
                "scale by the source length L. Hint: which array tells the length of each "
                "source sentence?"),
    ),
    shape_hints={"positions": "one row per sentence, one column per target step"},
    error_hint="each sentence has one length L, and (B, Tq) positions to scale: the lengths "
               "need an axis for the target steps.",
    hint="compute the position of the first decoder step of the first sentence by hand and "
         "compare it with your [0, 0].",
)

def _layer_mistake(**variant):
    def wrong(query, values, mask, score_kernel, position_kernel, position_vector, D):
        return _local_p_layer(query, values, mask, score_kernel, position_kernel,
                              position_vector, D, **variant)
    return wrong


LOCAL_P_ATTENTION = Exercise(
    exercise_id="04.4",
    function_name="LocalPAttention",
    make_cases=_local_p_layer_cases,
    reference=local_p_attention,
    outputs=("context", "weights", "positions"),
    mistakes=(
        Mistake(_layer_mistake(lengths="padded"),
                "Your positions are scaled by the padded length S, not by each sentence's own "
                "length L: a short sentence's p_t can fall in its padding. Hint: how many real "
                "tokens does each sentence have?"),
        Mistake(_layer_mistake(lengths="minus one"),
                "Your positions are scaled by L - 1; Luong et al. scale by the source length, "
                "L sigmoid(...), so p_t lies between 0 and L. Hint: use L itself."),
        Mistake(_layer_mistake(sigmoid=False),
                "Your positions have no sigmoid, so they can fall outside the sentence (below 0 "
                "or above L). Hint: p_t = L sigmoid(v_p · tanh(W_p h_t))."),
        Mistake(_layer_mistake(tanh=False),
                "Your positions miss the tanh: p_t = L sigmoid(v_p · tanh(W_p h_t)). Hint: the "
                "position network has a tanh hidden layer, like Bahdanau's score."),
        Mistake(_layer_mistake(gaussian=False),
                "Your weights are the softmax over the window without the Gaussian. Hint: "
                "local-p multiplies them by a Gaussian of the distance to p_t, which favours the "
                "positions nearest it."),
        Mistake(_layer_mistake(sigma="D"),
                "Your Gaussian has σ = D; Luong et al. take σ = D / 2, so the window's edges "
                "get exp(-2) of the weight. Hint: check σ."),
        Mistake(_layer_mistake(sigma="sqrt D/2"),
                "You divide (s - p_t)² by 2σ instead of 2σ². Hint: the Gaussian's exponent is "
                "-(s - p_t)² / (2σ²)."),
        Mistake(_layer_mistake(sigma="no 2"),
                "Your Gaussian divides (s - p_t)² by σ², not by 2σ², so it falls off too fast. "
                "Hint: the Gaussian's exponent is -(s - p_t)² / (2σ²)."),
        Mistake(_layer_mistake(window_centre=np.floor),
                "Your window is centred on the position rounded down; this exercise's window "
                "holds the positions with |s - p_t| <= D for the real p_t. Hint: do not round "
                "p_t, down or otherwise."),
        Mistake(_layer_mistake(renormalise=True),
                "You renormalised the weights after the Gaussian so that they sum to 1; Luong's "
                "local-p weights do not: the Gaussian multiplies the softmax and that is all. "
                "Hint: drop the last normalisation."),
        Mistake(_layer_mistake(use_window=False),
                "Your softmax runs over the whole sentence, not the window: positions farther "
                "than D from p_t keep some weight. Hint: the softmax runs over |s - p_t| <= D "
                "only."),
        Mistake(_layer_mistake(softmax_over_sentence=True),
                "Your softmax runs over the whole sentence and is cut to the window afterwards, "
                "so the weights in the window sum to less than the softmax's 1. Hint: mask the "
                "scores before the softmax, not the weights after it."),
        Mistake(_layer_mistake(use_mask=False),
                "Your window is not clipped to the sentence: near its end it reaches into the "
                "padding. Hint: which positions does `mask` say are real?"),
        Mistake(_layer_mistake(centre=np.round, window_centre=np.round),
                "You rounded p_t; local-p's p_t is a real number, and both the window "
                "(|s - p_t| <= D) and the Gaussian use it as it is. Hint: do not round it."),
        Mistake(_layer_mistake(centre=np.round),
                "Your Gaussian is centred on the rounded position; local-p's p_t is a real "
                "number, and the Gaussian uses it as it is. Hint: do not round it."),
        Mistake(_layer_mistake(window_centre=np.round),
                "Your window is centred on the rounded position; this exercise's window holds "
                "the positions with |s - p_t| <= D for the real p_t. Hint: do not round it."),
    ),
    properties=(positions_differ, weights_on_padding, weights_outside_the_window),
    shape_hints={"context": "(B, Tq, d_values): one context vector per decoder step",
                 "weights": "(B, Tq, S): one row per decoder step, one column per source "
                            "position",
                 "positions": "(B, Tq): one p_t per decoder step"},
    invoke=invoke_local_p,
    reference_invoke=lambda reference, case: reference(*case.values()),
    describe=describe_local_p,
    nan_hint="the window always holds a real position (p_t lies between 0 and L): NaN comes "
             "from a softmax over an empty or -inf row, or an exp that overflows.",
    error_hint="the check builds your layer with half_width and units, calls it once to build "
               "it, sets score_kernel, position_kernel and position_vector by name, then calls "
               "it again; the error's last line says which step failed.",
    hint="take one decoder step by hand: its p_t, the real positions s with |s - p_t| <= D, "
         "the softmax of their scores, times the Gaussian.",
    rtol=1e-4,
    atol=2e-5,
)

EXERCISES = (CONCAT_SCORE, LOCAL_M_MASK, PREDICTED_POSITIONS, LOCAL_P_ATTENTION)
