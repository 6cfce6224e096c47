"""Exercises of lesson 02, attention from scratch (``solutions/02_attention_from_scratch.ipynb``).

02.1 ``softmax_with_temperature``  02.2 ``masked_softmax``  02.3 ``attention_lookup``
02.4 ``temperature_for_confidence``. All in NumPy, so a graded kernel never imports TensorFlow.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

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


def best_key_weight(scores, temperature):
    """The weight softmax(scores / temperature) gives the highest score."""
    gaps = np.max(scores) - np.asarray(scores, dtype=np.float64)
    return 1.0 / np.sum(np.exp(-gaps / temperature))


def temperature_for_confidence(scores, confidence):
    """The temperature at which the best key gets exactly ``confidence`` of the weight.

    The best key's weight falls from 1 (τ → 0) to 1/n (τ → ∞) as τ grows, so bisection on
    log τ finds the single τ where it crosses ``confidence``.
    """
    low, high = 1.0, 1.0
    while best_key_weight(scores, low) < confidence:
        low /= 2
    while best_key_weight(scores, high) > confidence:
        high *= 2
    for _ in range(200):
        middle = np.sqrt(low * high)
        if best_key_weight(scores, middle) > confidence:
            low = middle
        else:
            high = middle
    return np.sqrt(low * high)


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


def confidence_cases(rng):
    """Two keys (where the two-key formula is right) and more keys (where it is not), each with a
    single best key and a confidence above 1/n."""
    cases = []
    for n_keys, confidence in ((2, 0.75), (5, 0.9), (8, 0.5), (6, 0.99)):
        scores = np.round(2 * rng.normal(size=n_keys), 3)
        scores[np.argmax(scores)] += 0.25  # a clear winner: the answer exists and is unique
        cases.append({"scores": scores, "confidence": confidence})
    return cases


# --- Diagnoses specific to these exercises ----------------------------------------------------


def _masked_and_attended_rows(case: Case, weights: np.ndarray):
    mask = np.broadcast_to(case["mask"], weights.shape)
    mixed = np.any(mask, axis=-1) & np.any(~mask, axis=-1)
    return weights[mixed], mask[mixed]


def mask_polarity(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Zero weight exactly where the mask is True: the mask was read the other way round."""
    weights, mask = _masked_and_attended_rows(case, mine["weights"])
    if weights.size and np.allclose(weights[mask], 0) and not np.allclose(weights[~mask], 0):
        return ("Your mask works the other way round: your weights are zero where the mask is "
                "True. Here True means attend (the Keras convention). Hint: keep the scores where "
                "the mask is True, e.g. np.where(mask, scores, -np.inf).")
    return None


def masked_keys_ignored(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Weight on keys whose mask is False."""
    weights, mask = _masked_and_attended_rows(case, mine["weights"])
    if weights.size and not np.allclose(weights[~mask], 0, atol=1e-6):
        return ("Your weights are not zero on the masked keys (mask False). Hint: replace their "
                "scores by -np.inf (or a large negative number) before the softmax.")
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
            f"Hint: after the softmax, set the rows with no attended key to zero.")


def reaches_confidence(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Read the learner's τ back through the softmax: does the best key get the confidence?"""
    temperature, confidence = float(mine["temperature"]), case["confidence"]
    if not temperature > 0:
        return f"Your temperature is {temperature:.4g}; a temperature must be positive."
    weight = best_key_weight(case["scores"], temperature)
    if abs(weight - confidence) <= 1e-5:
        return (f"Your τ = {temperature:.6g} is close but not precise enough. Hint: keep "
                f"bisecting until the interval is narrower than 1e-7 × τ.")
    too = "small (the lookup is harder than asked)" if weight > confidence else "large"
    return (f"At your τ = {temperature:.4g} the best key gets {weight:.4f} of the weight, not "
            f"{confidence}: your τ is too {too}. Hint: that weight falls as τ grows; bisect on τ "
            f"until it equals the confidence.")


def _two_key_temperature(scores, confidence):
    best, runner_up = np.sort(scores)[-2:][::-1]
    return (best - runner_up) / np.log(confidence / (1 - confidence))


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
                "Hint: a small τ must sharpen the weights (τ → 0 is a hard lookup), so use "
                "scores / temperature."),
        Mistake(lambda scores, temperature, axis: softmax_with_temperature(scores, 1.0, axis),
                "Your weights do not depend on the temperature. Hint: divide the scores by τ "
                "before the softmax."),
        Mistake(lambda scores, temperature, axis: softmax_with_temperature(
                    scores, temperature, -1),
                "Your softmax always runs along the last axis, whatever `axis` says. Hint: pass "
                "axis=axis (with keepdims=True) to both the max and the sum."),
    ),
    properties=(sums_to_one("weights", over="the axis you were given", axis_argument="axis"),),
    nan_hint="subtract the maximum along the axis before exp(): softmax(s) = softmax(s - max s), "
             "and exp(1000 / 0.05) overflows.",
)

MASKED_SOFTMAX = Exercise(
    exercise_id="02.2",
    function_name="masked_softmax",
    make_cases=masked_softmax_cases,
    reference=masked_softmax,
    outputs=("weights",),
    properties=(mask_polarity, masked_keys_ignored, fully_masked_rows_are_zero,
                sums_to_one("weights", over="the keys")),
    nan_hint="a row whose keys are all masked gives 0/0; give such rows all-zero weights "
             "(np.divide(..., where=totals > 0), or multiply by the mask).",
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
                "divide query @ np.swapaxes(keys, -1, -2) by np.sqrt(d); without it the "
                "softmax saturates as d grows."),
        Mistake(lambda query, keys, values, temperature: attention_lookup(
                    query, keys, values, temperature * np.sqrt(np.shape(query)[-1])),
                "You divide the scores by d instead of √d. Hint: the variance of q·k grows like "
                "d, so its standard deviation like √d: divide by np.sqrt(d)."),
        Mistake(lambda query, keys, values, temperature: attention_lookup(
                    query, keys, values, 1.0),
                "Your weights do not depend on the temperature. Hint: divide the scaled scores "
                "by τ as well."),
        Mistake(lambda query, keys, values, temperature: (
                    attention_lookup(query, keys, values, temperature)[1] @ keys,
                    attention_lookup(query, keys, values, temperature)[1]),
                "Your output is a weighted sum of the keys; a lookup returns the values. Hint: "
                "output = weights @ values."),
    ),
    properties=(sums_to_one("weights", over="the keys"),),
    error_hint="with a batch axis in front, keys.T reverses every axis; transpose only the "
               "last two with np.swapaxes(keys, -1, -2).",
    shape_hints={"output": "one row per query, one column per value feature",
                 "weights": "one row per query, one column per key"},
    nan_hint="subtract the row maximum of the scores before exp().",
)

TEMPERATURE_FOR_CONFIDENCE = Exercise(
    exercise_id="02.4",
    function_name="temperature_for_confidence",
    make_cases=confidence_cases,
    reference=temperature_for_confidence,
    outputs=("temperature",),
    mistakes=(
        Mistake(lambda scores, confidence: 1 / temperature_for_confidence(scores, confidence),
                "You returned 1/τ (an inverse temperature). Hint: return τ itself, the number "
                "the scores are divided by."),
        Mistake(_two_key_temperature,
                "You used the two-key formula τ = gap / ln(c / (1 - c)), which ignores every key "
                "but the runner-up. Hint: with more keys they all share the rest of the weight; "
                "bisect on τ with the full softmax."),
    ),
    properties=(reaches_confidence,),
    shape_hints={"temperature": "a single number"},
    rtol=1e-5,
    atol=0.0,
)

EXERCISES = (SOFTMAX_WITH_TEMPERATURE, MASKED_SOFTMAX, ATTENTION_LOOKUP,
             TEMPERATURE_FOR_CONFIDENCE)
