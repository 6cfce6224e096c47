"""Exercises of lesson 02, attention from scratch (``solutions/02_attention_from_scratch.ipynb``).

02.1 ``softmax_with_temperature``  02.2 ``masked_softmax``  02.3 ``attention_lookup``
02.4 ``AttentionRegressor`` (build: attention as a regression that fits its own temperature).
All in NumPy, so a graded kernel never imports TensorFlow.

02.4 has no single right output: any τ whose leave-one-out error is within
:data:`LOO_TOLERANCE` of the smallest is right. Its check judges the learner's τ, predictions and
weights by their properties (:func:`judge_regressor`), against the smallest error over
:data:`TEMPERATURE_RANGE`, found here by a fine search.
"""

import math

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

TEMPERATURE_RANGE = (1e-3, 1e3)
"""The temperatures 02.4's fit searches, as its docstring states."""

LOO_TOLERANCE = 1e-3
"""02.4 accepts a τ whose leave-one-out error is at most (1 + LOO_TOLERANCE) times the smallest
one in TEMPERATURE_RANGE: the precision its docstring asks for."""

# --- References -----------------------------------------------------------------------------


def softmax_with_temperature(scores, temperature, axis=-1):
    """softmax(scores / temperature) along ``axis``, shifted by the maximum so exp() cannot
    overflow."""
    return softmax(np.asarray(scores, dtype=np.float64) / temperature, axis=axis)


def masked_softmax(scores, mask):
    """Softmax along the last axis over the keys where ``mask`` is True; a row with no such key
    gets zeros."""
    return softmax(scores, mask=mask)


def attention_lookup(query, keys, values, temperature=1.0):
    """Scaled dot-product lookup of each query among the keys, for any leading batch axes:
    ``(output, weights)``."""
    d = np.shape(query)[-1]
    scores = np.asarray(query) @ np.swapaxes(keys, -1, -2) / np.sqrt(d)
    weights = softmax_with_temperature(scores, temperature, axis=-1)
    return weights @ values, weights


def _squared_distances(queries, keys):
    """``||q_i - k_j||^2`` for every pair: ``(m, n)``."""
    queries, keys = np.asarray(queries, dtype=np.float64), np.asarray(keys, dtype=np.float64)
    return np.sum((queries[:, None, :] - keys[None, :, :]) ** 2, axis=-1)


def regression_weights(queries, keys, temperature, scores="distance"):
    """02.4's weights: softmax over the training points of ``-||q - x_j||^2 / τ`` (``scores``
    names the usual slips, for the diagnoses)."""
    if scores == "distance":
        raw = -_squared_distances(queries, keys) / temperature
    elif scores == "times":
        raw = -_squared_distances(queries, keys) * temperature
    elif scores == "not squared":
        raw = -np.sqrt(_squared_distances(queries, keys)) / temperature
    elif scores == "far":
        raw = _squared_distances(queries, keys) / temperature
    else:  # "dot": the lookup of 02.3, q . x / τ
        raw = np.asarray(queries, dtype=np.float64) @ np.asarray(keys, np.float64).T / temperature
    return softmax(raw, axis=-1)


def leave_one_out_errors(x, y, temperatures, own_weight="masked"):
    """Mean squared error of predicting each training target from the others, for each of
    ``temperatures`` (a 1-D array): ``(len(temperatures),)``.

    ``own_weight``: "masked" (the right one: point i is masked out before the softmax), "kept"
    (no leave-one-out at all) or "zeroed" (its weight set to 0 after the softmax, the others
    left as they were)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)[:, None, None]
    scores = -_squared_distances(x, x)[None] / temperatures  # (G, n, n)
    itself = np.eye(len(x), dtype=bool)
    if own_weight == "masked":
        weights = softmax(scores, mask=~itself)
    else:
        weights = softmax(scores)
        if own_weight == "zeroed":
            weights = np.where(itself, 0.0, weights)
    return np.mean((weights @ y - y) ** 2, axis=-1)


def leave_one_out_error(x, y, temperature, own_weight="masked"):
    """:func:`leave_one_out_errors` at one temperature, as a float."""
    return float(leave_one_out_errors(x, y, [temperature], own_weight)[0])


def best_temperature(x, y, own_weight="masked"):
    """``(τ, error)`` minimising the leave-one-out error over TEMPERATURE_RANGE: a grid of
    2001 temperatures evenly spaced in log τ, then a golden-section search around the best."""
    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    grid = np.linspace(low, high, 2001)
    errors = np.concatenate([leave_one_out_errors(x, y, np.exp(chunk), own_weight)
                             for chunk in np.array_split(grid, 8)])
    best = int(np.argmin(errors))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        error_c, error_d = leave_one_out_errors(x, y, np.exp([c, d]), own_weight)
        if error_c < error_d:
            b = d
        else:
            a = c
    tau = math.exp((a + b) / 2)
    error = leave_one_out_error(x, y, tau, own_weight)
    if error > errors[best]:  # the grid point itself was better (a kink): keep it
        tau, error = math.exp(grid[best]), float(errors[best])
    return tau, error


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def softmax_cases(rng):
    """Rows of different lengths (so a wrong axis shows), τ above and below 1, an ``axis`` that
    is not the last one, and scores near 1000 with a small τ (so a missing max-shift overflows)."""
    return [
        {"scores": rng.normal(size=(3, 5)), "temperature": 1.0, "axis": -1},
        {"scores": 3 * rng.normal(size=(4, 6)), "temperature": 0.5, "axis": -1},
        {"scores": rng.normal(size=(4, 3)), "temperature": 2.0, "axis": 0},
        {"scores": rng.normal(size=(2, 3, 4)), "temperature": 1.5, "axis": 1},
        {"scores": 1000 + 5 * rng.normal(size=(2, 5)), "temperature": 0.05, "axis": -1},
    ]


def masked_softmax_cases(rng):
    """Masks with attended and masked keys in one row, a row with one key, fully masked rows,
    and a padding mask ``(batch, 1, keys)`` broadcast over the queries."""
    row_mask = rng.random((5, 6)) < 0.5
    row_mask[0] = True  # nothing masked
    row_mask[1] = False  # everything masked: the row must be zeros
    row_mask[2] = np.arange(6) == 4  # a single key left
    row_mask[3:, 0], row_mask[3:, 1] = True, False  # both kinds in the last rows
    padding_mask = np.array([[[True, True, False, False]], [[False, False, False, False]]])
    return [
        {"scores": 2 * rng.normal(size=(5, 6)), "mask": row_mask},
        {"scores": rng.normal(size=(2, 3, 4)), "mask": padding_mask},
        {"scores": rng.normal(size=(4,)), "mask": np.array([True, False, True, True])},
    ]


def attention_cases(rng):
    """One plain matrix of queries and two batches of them (where ``keys.T`` is wrong); fewer
    queries than keys and values narrower than keys, so that a transposed or mixed-up result
    changes the shape; d up to 16, so that a missing 1/√d shows."""
    def lookup(batch, n_queries, n_keys, d, d_values, temperature, spread=1.0):
        return {"query": spread * rng.normal(size=(*batch, n_queries, d)),
                "keys": rng.normal(size=(*batch, n_keys, d)),
                "values": rng.normal(size=(*batch, n_keys, d_values)),
                "temperature": temperature}
    return [lookup((), 3, 5, 4, 2, 1.0), lookup((2,), 1, 6, 16, 3, 0.5),
            lookup((3,), 4, 7, 9, 5, 2.0, spread=2.0)]


def regression_cases(rng):
    """Noisy samples of a smooth function, in one dimension and in two, at other sizes and noise
    levels, so that the best τ lies well inside TEMPERATURE_RANGE and differs from case to case;
    queries between the training points."""
    def regression(n, dimensions, noise, queries):
        x = rng.uniform(0, 5, size=(n, dimensions))
        y = np.sin(x.sum(axis=1)) + noise * rng.normal(size=n)
        return {"x": x, "y": y, "queries": rng.uniform(0, 5, size=(queries, dimensions))}
    return [regression(30, 1, 0.2, 7), regression(40, 2, 0.3, 9), regression(25, 1, 0.05, 6)]


# --- Diagnoses specific to these exercises ----------------------------------------------------


def _masked_and_attended_rows(case: Case, weights: np.ndarray):
    mask = np.broadcast_to(case["mask"], weights.shape)
    mixed = np.any(mask, axis=-1) & np.any(~mask, axis=-1)
    return weights[mixed], mask[mixed]


def mask_polarity(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Zero weight exactly where the mask is True: the mask was read the other way round."""
    weights, mask = _masked_and_attended_rows(case, mine["weights"])
    if weights.size and np.allclose(weights[mask], 0) and not np.allclose(weights[~mask], 0):
        return ("Your mask has the opposite polarity: your weights are zero where the mask is "
                "True. Here True means attend (the Keras convention). Hint: does your softmax "
                "keep the scores where the mask is True, or hide them?")
    return None


def masked_keys_ignored(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Weight on keys whose mask is False."""
    weights, mask = _masked_and_attended_rows(case, mine["weights"])
    if weights.size and not np.allclose(weights[~mask], 0, atol=1e-6):
        return ("Your weights are not zero on the masked keys (mask False). Hint: what must a "
                "masked key's score be for the softmax to give it exactly 0?")
    return None


def fully_masked_rows_are_zero(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    """A row whose every key is masked must give zeros (not a uniform row, the d2l trap)."""
    weights = mine["weights"]
    mask = np.broadcast_to(case["mask"], weights.shape)
    empty_rows = weights[~np.any(mask, axis=-1)]
    if empty_rows.size == 0 or np.allclose(empty_rows, 0, atol=1e-6):
        return None
    uniform = np.allclose(empty_rows, 1 / weights.shape[-1])
    shape = "a uniform row, " if uniform else ""
    return (f"A row whose keys are all masked should get all-zero weights, but yours sums to "
            f"{np.sum(empty_rows[0]):.3g} ({shape}as if the masked keys were attended). "
            f"Hint: a row with no key to attend has nothing to average: decide its weights "
            f"yourself.")


def temperature_is_positive(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """02.4: τ is one positive number."""
    temperature = mine["temperature"]
    if temperature.shape != () or not np.isfinite(temperature) or temperature <= 0:
        return (f"Your `temperature` is {np.array2string(temperature, precision=4)}; it must be "
                f"one positive number, stored by fit as self.temperature. Hint: what does your "
                f"fit keep once its search is over?")
    return None


_SCORE_SLIPS = {
    "times": "Your weights multiply the squared distances by τ instead of dividing them by it. "
             "Hint: a small τ must sharpen the weights.",
    "not squared": "Your weights use the distance, not its square. Hint: the score of "
                   "training point j is minus the squared distance over τ.",
    "far": "Your weights favour the farthest training points: the score must be minus the "
           "squared distance. Hint: which points should a query look up most?",
    "dot": "Your weights score the training points by a dot product (as in exercise 02.3); "
           "here the score is minus the squared distance over τ. Hint: for a regression on "
           "positions, which points are alike?",
}


def predictions_follow_the_formula(case: Case, mine: NamedOutputs,
                                   expected: NamedOutputs) -> str | None:
    """02.4: at the learner's own τ, the weights and predictions must be the formula's."""
    temperature = float(mine["temperature"])
    queries, x, y = case["queries"], case["x"], case["y"]
    weights, predictions = mine["weights"], mine["predictions"]
    right = regression_weights(queries, x, temperature)
    if weights.shape != right.shape:
        return (f"Your `weights` have shape {weights.shape}, expected {right.shape}: one row per "
                f"query, one column per training point. Hint: which axis holds the training "
                f"points?")
    if predictions.shape != (len(queries),):
        return (f"Your `predictions` have shape {predictions.shape}, expected "
                f"({len(queries)},): one number per query. Hint: the prediction is a weighted "
                f"sum of the targets.")
    if np.allclose(weights, right, rtol=1e-5, atol=1e-9):
        if np.allclose(predictions, right @ y, rtol=1e-5, atol=1e-9):
            return None
        return ("Your weights are right but your predictions are not their weighted sum of the "
                "training targets. Hint: each prediction averages y with its row of weights.")
    for slip, message in _SCORE_SLIPS.items():
        with np.errstate(all="ignore"):
            wrong = regression_weights(queries, x, temperature, scores=slip)
        if np.allclose(weights, wrong, rtol=1e-5, atol=1e-9):
            return message
    if np.allclose(weights.sum(axis=0), 1.0) and not np.allclose(weights.sum(axis=1), 1.0):
        return ("Your weights sum to 1 over the queries, not over the training points. Hint: "
                "each query's weights over the training points sum to 1.")
    return (f"At your τ = {temperature:.6g} your weights differ from the softmax of "
            f"-||q - x_j||² / τ over the training points. Hint: compute one query's weights by "
            f"hand.")


def temperature_is_fitted(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """02.4: τ's leave-one-out error within LOO_TOLERANCE of the smallest; else why not."""
    x, y, temperature = case["x"], case["y"], float(mine["temperature"])
    best, smallest = best_temperature(x, y)
    error = leave_one_out_error(x, y, temperature)
    if error <= (1 + LOO_TOLERANCE) * smallest:
        return None
    low, high = TEMPERATURE_RANGE
    if temperature <= 2 * low and best > 10 * temperature:  # at the bottom: scored in-sample
        return (f"Your τ = {temperature:.6g} is the smallest your search allows: scored on "
                f"training points that may look themselves up, a smaller τ always fits better, "
                f"as each point copies its own target (a leak); its leave-one-out error is "
                f"{error:.6g}, the best {smallest:.6g}. Hint: when point i is predicted during "
                f"fit, which training point must it not see?")
    zeroed, _ = best_temperature(x, y, own_weight="zeroed")
    if abs(math.log(temperature / zeroed)) < 0.01:
        return ("Your fit removes each point's own weight after the softmax, so the other "
                "weights no longer sum to 1 and every leave-one-out prediction shrinks. Hint: "
                "leave point i out before the softmax, so its weights are renormalised.")
    if not low <= temperature <= high:
        return (f"Your τ = {temperature:.6g} is outside the range the docstring gives, "
                f"{low:g} to {high:g}. Hint: search that range.")
    return (f"Your τ = {temperature:.6g} has a leave-one-out error of {error:.6g}; the smallest "
            f"in the range is {smallest:.6g}, and the fit must come within "
            f"{LOO_TOLERANCE:.1%} of it. Hint: is your search over τ fine enough, and spaced "
            f"evenly in log τ?")


def invoke_regressor(regressor_class, case):
    """How 02.4 runs the learner's class: fit on the training points, predict the queries."""
    regressor = regressor_class()
    regressor.fit(np.array(case["x"]), np.array(case["y"]))
    predictions, weights = regressor.predict(np.array(case["queries"]))
    return regressor.temperature, predictions, weights


# --- The exercises ------------------------------------------------------------------------------

SOFTMAX_WITH_TEMPERATURE = Exercise(
    exercise_id="02.1",
    function_name="softmax_with_temperature",
    make_cases=softmax_cases,
    reference=softmax_with_temperature,
    outputs=("weights",),
    mistakes=(
        Mistake(lambda scores, temperature, axis: softmax_with_temperature(
                    scores, 1 / temperature, axis),
                "You multiply the scores by the temperature instead of dividing them by it. "
                "Hint: a small τ must sharpen the weights (τ → 0 is a hard lookup)."),
        Mistake(lambda scores, temperature, axis: softmax_with_temperature(scores, 1.0, axis),
                "Your weights do not depend on the temperature. Hint: where does τ enter the "
                "formula?"),
        Mistake(lambda scores, temperature, axis: softmax_with_temperature(
                    scores, temperature, -1),
                "Your softmax always runs along the last axis, whatever `axis` says. Hint: every "
                "reduction of your softmax must use the `axis` you are given."),
    ),
    properties=(sums_to_one("weights", over="the axis you were given", axis_argument="axis"),),
    nan_hint="exp(1000 / 0.05) overflows; softmax(s) = softmax(s - c) for any constant c, so "
             "which c keeps every exponent at most 0?",
)

MASKED_SOFTMAX = Exercise(
    exercise_id="02.2",
    function_name="masked_softmax",
    make_cases=masked_softmax_cases,
    reference=masked_softmax,
    outputs=("weights",),
    properties=(mask_polarity, masked_keys_ignored, fully_masked_rows_are_zero,
                sums_to_one("weights", over="the keys")),
    nan_hint="a row whose keys are all masked gives 0/0; such a row has no key to attend, "
             "and its weights are all zero.",
)

ATTENTION_LOOKUP = Exercise(
    exercise_id="02.3",
    function_name="attention_lookup",
    make_cases=attention_cases,
    reference=attention_lookup,
    outputs=("output", "weights"),
    mistakes=(
        Mistake(lambda query, keys, values, temperature: attention_lookup(
                    query, keys, values, temperature / np.sqrt(np.shape(query)[-1])),
                "Your scores are missing the 1/√d scaling (d, the length of a query). Hint: "
                "without it the softmax saturates as d grows."),
        Mistake(lambda query, keys, values, temperature: attention_lookup(
                    query, keys, values, temperature * np.sqrt(np.shape(query)[-1])),
                "You divide the scores by d instead of √d. Hint: the variance of q·k grows like "
                "d, so its spread like √d."),
        Mistake(lambda query, keys, values, temperature: attention_lookup(
                    query, keys, values, 1.0),
                "Your weights do not depend on the temperature. Hint: τ divides the scaled "
                "scores too."),
        Mistake(lambda query, keys, values, temperature: (
                    attention_lookup(query, keys, values, temperature)[1] @ keys,
                    attention_lookup(query, keys, values, temperature)[1]),
                "Your output is a weighted sum of the keys; a lookup returns the values. Hint: "
                "what does a dictionary lookup return?"),
    ),
    properties=(sums_to_one("weights", over="the keys"),),
    error_hint="with batch axes in front, which axes of the keys must trade places for every "
               "query to meet every key of its own batch entry?",
    shape_hints={"output": "one row per query, one column per value feature",
                 "weights": "one row per query, one column per key"},
    nan_hint="an exp() of a large score overflows; softmax(s) = softmax(s - c) for any "
             "constant c.",
)

ATTENTION_REGRESSOR = Exercise(
    exercise_id="02.4",
    function_name="AttentionRegressor",
    make_cases=regression_cases,
    reference=None,
    outputs=("temperature", "predictions", "weights"),
    properties=(temperature_is_positive, predictions_follow_the_formula, temperature_is_fitted),
    invoke=invoke_regressor,
    describe=lambda case: (f"fit on x of shape {np.shape(case['x'])} and y of shape "
                           f"{np.shape(case['y'])}, then predict on queries of shape "
                           f"{np.shape(case['queries'])}"),
    error_hint="the check calls AttentionRegressor(), then fit(x, y), then predict(queries), "
               "and reads the attribute temperature; the error's last line says which failed.",
)

EXERCISES = (SOFTMAX_WITH_TEMPERATURE, MASKED_SOFTMAX, ATTENTION_LOOKUP, ATTENTION_REGRESSOR)
