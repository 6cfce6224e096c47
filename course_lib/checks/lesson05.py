"""Exercises of lesson 05, scaled dot-product attention and masks
(``solutions/05_scaled_dot_product_and_masks.ipynb``).

05.1 ``causal_mask_with_offset``  05.2 ``decoder_self_attention_mask``  05.3 ``softmax_jacobian``
05.4 ``bayes_accuracy``. All in NumPy, so a graded kernel never imports TensorFlow.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def causal_mask_with_offset(query_length, key_length, offset):
    """``mask[i, j] = j <= offset + i``: query ``i`` is the token at position ``offset + i`` and
    sees the keys up to its own position (decoding with a cache of ``key_length`` slots)."""
    rows = np.arange(query_length)[:, None]
    columns = np.arange(key_length)[None, :]
    return columns <= offset + rows


def decoder_self_attention_mask(token_ids, pad_id):
    """``mask[b, i, j] = (j <= i) and token i is not padding and token j is not padding``."""
    token_ids = np.asarray(token_ids)
    real = token_ids != pad_id  # (B, T)
    length = token_ids.shape[-1]
    causal = np.tril(np.ones((length, length), dtype=bool))  # (T, T), j <= i
    return causal[None, :, :] & real[:, :, None] & real[:, None, :]


def softmax_jacobian(weights):
    """``J[..., i, j] = d a_i / d e_j = a_i (delta_ij - a_j)``, i.e. ``diag(a) - a a^T`` per row."""
    weights = np.asarray(weights, dtype=np.float64)
    diagonal = weights[..., :, None] * np.eye(weights.shape[-1])
    return diagonal - weights[..., :, None] * weights[..., None, :]


def bayes_accuracy(transition, initial, length):
    """The expected accuracy of the best predictor of each token of a Markov chain from the
    tokens before it, averaged over the ``length`` tokens of a sequence.

    Token 1 is predicted from nothing: the best guess is the most likely first token,
    right with probability ``max(initial)``. Token ``t + 1`` is predicted from token ``t``
    (in a Markov chain the earlier ones add nothing): right with probability
    ``sum_i p_t(i) max_j P[i, j]``, where ``p_t = initial P^(t-1)`` is the distribution of
    token ``t``.
    """
    transition = np.asarray(transition, dtype=np.float64)
    distribution = np.asarray(initial, dtype=np.float64)
    best_next = transition.max(axis=1)  # the chance of the best guess after each token
    total = distribution.max()
    for _ in range(length - 1):
        total += distribution @ best_next
        distribution = distribution @ transition
    return total / length


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def offset_cases(rng):
    """Fewer queries than keys first (so a transposed mask has another shape), then a one-token
    step with a full cache, a chunk in a half-filled fixed-size cache, a square mask and a
    top-left non-square one. The shapes are fixed; the grader's seed moves the offsets."""
    chunk = int(rng.integers(2, 4))
    return [
        {"query_length": 3, "key_length": 7, "offset": 4},       # bottom-right: 7 - 3
        {"query_length": 1, "key_length": 6, "offset": 5},       # one step, full cache
        {"query_length": 2, "key_length": 8, "offset": chunk},   # half-filled cache
        {"query_length": 5, "key_length": 5, "offset": 0},       # the lesson's mask
        {"query_length": 3, "key_length": 6, "offset": 0},       # top-left, as in Keras
        {"query_length": 4, "key_length": 9, "offset": int(rng.integers(1, 5))},
    ]


def _padded(rng, lengths, width, pad_id, left=False):
    ids = np.full((len(lengths), width), pad_id)
    for row, length in enumerate(lengths):
        tokens = rng.integers(pad_id + 1, pad_id + 20, size=length)
        if left:
            ids[row, width - length:] = tokens
        else:
            ids[row, :length] = tokens
    return ids


def decoder_mask_cases(rng):
    """Right padding (with an empty sequence: a row of all padding), left padding (whose first
    queries have no real key before them), no padding at all, and a pad id that is not 0 while
    0 is a real token."""
    with_zeros = rng.integers(0, 4, size=(2, 5))
    with_zeros[0, 3:] = 7  # pad_id 7, two padded positions at the end
    with_zeros[1, :1] = 7  # one at the start
    with_zeros[:, 1] = 0   # 0 is a real token here
    return [
        {"token_ids": _padded(rng, [4, 2, 0], 5, 0), "pad_id": 0},
        {"token_ids": _padded(rng, [3, 6], 6, 0, left=True), "pad_id": 0},
        {"token_ids": rng.integers(1, 9, size=(1, 4)), "pad_id": 0},
        {"token_ids": with_zeros, "pad_id": 7},
    ]


def jacobian_cases(rng):
    """One row of weights (a plain vector), a batch of rows, rows with a batch and a head axis,
    and a batch holding a one-hot row (a saturated softmax: Jacobian 0) and a uniform row."""
    extremes = softmax(rng.normal(size=(3, 5)))
    extremes[0] = np.eye(5)[int(rng.integers(5))]
    extremes[1] = 0.2
    return [
        {"weights": softmax(rng.normal(size=4))},
        {"weights": softmax(2 * rng.normal(size=(3, 6)))},
        {"weights": softmax(rng.normal(size=(2, 2, 3)))},
        {"weights": extremes},
    ]


def _random_chain(rng, states, concentration=0.7):
    transition = rng.dirichlet(np.full(states, concentration), size=states)
    initial = rng.dirichlet(np.full(states, 1.0))
    return transition, initial


def bayes_cases(rng):
    """Chains that are not symmetric (so reading the matrix transposed shows) with a first token
    that is not uniform and not stationary (so the token distribution changes along the
    sequence), of lengths 1 (the first token alone), 2 and more."""
    cases = []
    for states, length in ((3, 1), (4, 2), (3, 6), (5, 12), (2, 4)):
        transition, initial = _random_chain(rng, states)
        cases.append({"transition": transition, "initial": initial, "length": length})
    return cases


# --- Diagnoses specific to these exercises ----------------------------------------------------


def _position_condition(case: Case, mine: np.ndarray, expected: np.ndarray):
    """The positions where the learner says attend but must not, and the reverse."""
    mine = mine.astype(bool)
    expected = expected.astype(bool)
    return mine & ~expected, ~mine & expected


def boolean_values(output_name):
    def check_boolean(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
        values = np.unique(mine[output_name])
        if np.isin(values, (0, 1)).all():
            return None
        shown = ", ".join(f"{value:g}" for value in values[:4])
        return (f"Your `{output_name}` holds values other than True and False ({shown}). "
                f"Hint: return a boolean array, True = attend, e.g. the result of a comparison "
                f"such as `columns <= rows`; an additive mask of 0 and -inf is another "
                f"convention.")
    return check_boolean


def mask_sees_the_future(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.1: True where the key comes after the query's position."""
    leaks, hides = _position_condition(case, mine["mask"], expected["mask"])
    if leaks.any():
        i, j = np.argwhere(leaks)[0]
        return (f"Your mask lets query {i} (the token at position {case['offset'] + i}) see "
                f"key {j}, which comes after it: the future leaks (called with "
                f"query_length={case['query_length']}, key_length={case['key_length']}, "
                f"offset={case['offset']}). Hint: query i may see key j exactly when "
                f"j <= offset + i.")
    if hides.any():
        i, j = np.argwhere(hides)[0]
        return (f"Your mask hides key {j} from query {i}, though key {j} is not after the "
                f"query's position offset + i = {case['offset'] + i}. Hint: query i may see "
                f"key j exactly when j <= offset + i.")
    return None


def decoder_mask_errors(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.2: name the first wrong entry and which rule it breaks."""
    leaks, hides = _position_condition(case, mine["mask"], expected["mask"])
    ids, pad_id = np.asarray(case["token_ids"]), case["pad_id"]
    for b, i, j in np.argwhere(leaks):
        if j > i:
            return (f"Your mask lets query {i} of sequence {b} see key {j}, a later position: "
                    f"the future leaks. Hint: AND with the causal mask, j <= i.")
        side = "query" if ids[b, i] == pad_id else "key"
        return (f"Your mask is True for query {i} and key {j} of sequence {b}, but the {side} "
                f"is padding (pad_id={pad_id}). Hint: AND the causal mask with the padding mask "
                f"of the queries, real[:, :, None], and of the keys, real[:, None, :].")
    if hides.any():
        b, i, j = np.argwhere(hides)[0]
        return (f"Your mask hides key {j} from query {i} of sequence {b}, though both are real "
                f"tokens and j <= i. Hint: a real token sees every real token up to itself.")
    return None


def rows_sum_to_zero(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.3: the weights always sum to 1, so each column of J sums to 0 (J is symmetric, so
    each row too)."""
    jacobian = mine["jacobian"]
    if np.allclose(jacobian.sum(axis=-2), 0, atol=1e-6):
        if not np.allclose(jacobian, np.swapaxes(jacobian, -1, -2), atol=1e-8):
            return ("Your Jacobian is not symmetric, but diag(a) - a a^T is. Hint: entry "
                    "(i, j) is a_i (delta_ij - a_j); the product a_i a_j is the same both ways.")
        return None
    return ("The columns of your Jacobian do not sum to 0. Nudging one score cannot change the "
            "total weight, which is always 1, so sum_i d a_i / d e_j = 0. Hint: J = diag(a) - "
            "a a^T, with a[..., :, None] * a[..., None, :] for the outer product.")


def accuracy_in_range(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.4: an accuracy lies between the best first guess's chance alone and 1."""
    value = float(mine["accuracy"])
    if 0.0 <= value <= 1.0:
        return None
    return (f"Your accuracy is {value:.4g}, but an accuracy lies between 0 and 1. Hint: average "
            f"the chances of being right over the `length` tokens (do not sum them).")


def _bayes_ignoring_first_token(transition, initial, length):
    total = bayes_accuracy(transition, initial, length) * length - np.max(initial)
    return total / (length - 1)


def _bayes_with_first_guess(first_guess):
    def wrong(transition, initial, length):
        return bayes_accuracy(transition, initial, length) + (
            first_guess(transition, initial) - np.max(initial)) / length
    return wrong


def _bayes_weights_states_equally(transition, initial, length):
    return (np.max(initial) + (length - 1) * np.mean(np.max(transition, axis=1))) / length


def _bayes_with_fixed_distribution(transition, initial, length):
    return (np.max(initial) + (length - 1) * (initial @ np.max(transition, axis=1))) / length


def _bayes_one_step_ahead(transition, initial, length):
    """Weights the guess after token t by the distribution of token t + 1 (one step too far)."""
    transition = np.asarray(transition, dtype=np.float64)
    distribution = np.asarray(initial, dtype=np.float64)
    total = distribution.max()
    for _ in range(length - 1):
        distribution = distribution @ transition
        total += distribution @ transition.max(axis=1)
    return total / length


# --- The exercises ------------------------------------------------------------------------------

CAUSAL_MASK_WITH_OFFSET = Exercise(
    exercise_id="05.1",
    function_name="causal_mask_with_offset",
    make_cases=offset_cases,
    reference=causal_mask_with_offset,
    outputs=("mask",),
    mistakes=(
        Mistake(lambda query_length, key_length, offset: ~causal_mask_with_offset(
                    query_length, key_length, offset),
                "Your mask is the wrong way round: True where the query must not look. Here "
                "True means attend (the Keras convention); a mask of the other polarity lets "
                "every query see only the future. Hint: j <= offset + i, not j > offset + i."),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, 0),
                "Your mask ignores `offset`: it is top-left aligned, so with a cache the new "
                "queries cannot see the keys already there. Hint: query i is the token at "
                "position offset + i; compare j with offset + i."),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, key_length - query_length),
                "Your mask is always bottom-right aligned (offset = key_length - query_length), "
                "whatever `offset` says; in a fixed-size cache the slots after the queries are "
                "not filled yet. Hint: use the `offset` you are given."),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, offset - 1),
                "Your mask hides each query from its own key (the diagonal): off by one. Hint: "
                "a token may look at itself, so use j <= offset + i, not j < offset + i."),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, offset + 1),
                "Your mask lets each query see one key past its own position: off by one, and "
                "the next token leaks. Hint: j <= offset + i, not j <= offset + i + 1."),
        Mistake(lambda query_length, key_length, offset: (
                    np.arange(key_length)[None, :] >= offset + np.arange(query_length)[:, None]),
                "Your mask lets query i see its own position and everything after it, not "
                "before it (np.triu where np.tril is meant). Hint: j <= offset + i."),
    ),
    properties=(boolean_values("mask"), mask_sees_the_future),
    shape_hints={"mask": "one row per query, one column per key"},
    nan_hint="a boolean mask holds no infinity: return True/False (True = attend), not an "
             "additive mask of 0 and -inf.",
    atol=0.0,
    rtol=0.0,
)


def _mask_from(token_ids, pad_id, causal="tril", query=True, key=True, combine="and",
               compare_with=None, padding_polarity=True):
    """Wrong (and right) variants of the decoder mask, for the mistake models."""
    token_ids = np.asarray(token_ids)
    padding = compare_with if compare_with is not None else pad_id
    real = (token_ids != padding) == padding_polarity
    length = token_ids.shape[-1]
    ones = np.ones((length, length), dtype=bool)
    causal_part = {"tril": np.tril(ones), "triu": np.triu(ones), "future": ~np.tril(ones),
                   "none": ones}[causal][None]
    padding_part = np.ones((len(token_ids), length, length), dtype=bool)
    if query:
        padding_part = padding_part & real[:, :, None]
    if key:
        padding_part = padding_part & real[:, None, :]
    return causal_part & padding_part if combine == "and" else causal_part | padding_part


DECODER_SELF_ATTENTION_MASK = Exercise(
    exercise_id="05.2",
    function_name="decoder_self_attention_mask",
    make_cases=decoder_mask_cases,
    reference=decoder_self_attention_mask,
    outputs=("mask",),
    mistakes=(
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, combine="or"),
                "You combine the causal and the padding masks with OR: a key is then attended "
                "when either allows it, so padding and the future leak. Hint: attend only "
                "where every mask allows it: causal & padding (AND)."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, key=False),
                "Your padding mask is on the queries (rows) only: real queries still attend to "
                "padded keys. Hint: mask the keys with real[:, None, :] (a column per key)."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, query=False),
                "Your padding mask is on the keys (columns) only: a padded query still "
                "attends. Hint: AND with the queries' padding mask too, real[:, :, None], so a "
                "padded query's whole row is False (it gets zero weights)."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, query=False, key=False),
                "Your mask ignores the padding: it is the causal mask alone. Hint: AND it with "
                "the padding mask of the queries and of the keys (token_ids != pad_id)."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="none"),
                "Your mask has no causal part: every query sees the tokens after it. Hint: AND "
                "with np.tril(np.ones((T, T), dtype=bool)), True where j <= i."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="future"),
                "Your causal part is the wrong way round: each query sees only the tokens after "
                "it (the polarity trap of the lesson). Hint: True = attend, where j <= i."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="triu"),
                "Your causal part lets query i see itself and every later token (np.triu where "
                "np.tril is meant). Hint: True where j <= i: np.tril."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, compare_with=0),
                "You compare the tokens with 0 instead of `pad_id`. Hint: real = "
                "token_ids != pad_id; a vocabulary may use another id for padding."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, padding_polarity=False),
                "Your padding mask is True at the padding, the other polarity. Hint: real "
                "tokens are True: token_ids != pad_id."),
    ),
    properties=(boolean_values("mask"), decoder_mask_errors),
    shape_hints={"mask": "(batch, queries, keys): one T x T mask per sequence"},
    nan_hint="a boolean mask holds no infinity: return True/False (True = attend), not an "
             "additive mask of 0 and -inf.",
    error_hint="build the causal (T, T) mask, the padding mask real = token_ids != pad_id of "
               "shape (B, T), and combine them with broadcasting: real[:, :, None] for the "
               "queries, real[:, None, :] for the keys.",
    atol=0.0,
    rtol=0.0,
)

SOFTMAX_JACOBIAN = Exercise(
    exercise_id="05.3",
    function_name="softmax_jacobian",
    make_cases=jacobian_cases,
    reference=softmax_jacobian,
    outputs=("jacobian",),
    mistakes=(
        Mistake(lambda weights: -np.asarray(weights)[..., :, None]
                * np.asarray(weights)[..., None, :],
                "You left out the diagonal term: your Jacobian is -a a^T. Hint: d a_i / d e_i = "
                "a_i (1 - a_i), so add diag(a)."),
        Mistake(lambda weights: -softmax_jacobian(weights),
                "Your Jacobian has the wrong sign: a a^T - diag(a). Hint: raising score e_i "
                "raises a_i, so the diagonal a_i (1 - a_i) is positive."),
        Mistake(lambda weights: np.asarray(weights)[..., :, None] * np.eye(np.shape(weights)[-1]),
                "Your Jacobian is diag(a) alone: it misses -a a^T. Hint: raising one score "
                "takes weight from every other key, d a_i / d e_j = -a_i a_j for i != j."),
        Mistake(lambda weights: softmax_jacobian(weights) * np.eye(np.shape(weights)[-1]),
                "Your Jacobian has only its diagonal, a_i (1 - a_i). Hint: the off-diagonal "
                "entries are -a_i a_j: raising one score takes weight from the others."),
    ),
    properties=(rows_sum_to_zero,),
    shape_hints={"jacobian": "one T x T matrix per row of weights, (..., T, T); np.outer "
                             "flattens a batch of rows"},
    error_hint="np.outer flattens its arguments, so it is right for one row only; for any "
               "leading axes use weights[..., :, None] * weights[..., None, :].",
    atol=1e-9,
)

BAYES_ACCURACY = Exercise(
    exercise_id="05.4",
    function_name="bayes_accuracy",
    make_cases=bayes_cases,
    reference=bayes_accuracy,
    outputs=("accuracy",),
    mistakes=(
        Mistake(lambda transition, initial, length: bayes_accuracy(
                    np.asarray(transition).T, initial, length),
                "You read the transition matrix transposed: row i is the distribution of the "
                "token after i, so P[i, j] = P(next = j | current = i). Hint: the best guess "
                "after token i is right with probability transition[i].max(), axis=1."),
        Mistake(_bayes_ignoring_first_token,
                "You left out the first token: it has nothing before it, but it is predicted "
                "too. Hint: count max(initial) for it and average over all `length` tokens."),
        Mistake(_bayes_with_first_guess(lambda transition, initial: 1.0),
                "You count the first token as always right. Hint: it is predicted from "
                "nothing, so the best guess is the most likely first token: right with "
                "probability max(initial)."),
        Mistake(_bayes_with_first_guess(lambda transition, initial: 1 / len(initial)),
                "You count the first token as a uniform guess, 1/V. Hint: the best guess is "
                "the most likely first token, right with probability max(initial)."),
        Mistake(_bayes_weights_states_equally,
                "You weight every previous token equally (a plain mean of the row maxima). "
                "Hint: weight max_j P[i, j] by p_t(i), the probability that the previous "
                "token is i at that step, and move p_t on with p_t @ transition."),
        Mistake(_bayes_with_fixed_distribution,
                "You use `initial` as the distribution of the previous token at every step. "
                "Hint: it changes along the sequence: p_(t+1) = p_t @ transition."),
        Mistake(_bayes_one_step_ahead,
                "Off by one step: you weight the guess after token t by the distribution of "
                "token t + 1. Hint: start with p_1 = initial for the token before the second, "
                "and move it on after using it."),
        Mistake(lambda transition, initial, length: bayes_accuracy(
                    transition, initial, length) * length,
                "You summed the chances of the `length` tokens instead of averaging them. "
                "Hint: divide by `length`."),
    ),
    properties=(accuracy_in_range,),
    shape_hints={"accuracy": "a single number"},
    nan_hint="with length 1 there is only the first token: do not divide by length - 1.",
    error_hint="a sequence of length 1 still has one prediction, its first token (right with "
               "probability max(initial)): average over `length`, not `length - 1`.",
    rtol=1e-6,
    atol=0.0,
)

EXERCISES = (CAUSAL_MASK_WITH_OFFSET, DECODER_SELF_ATTENTION_MASK, SOFTMAX_JACOBIAN,
             BAYES_ACCURACY)
