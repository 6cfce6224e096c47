"""Exercises of lesson 05, scaled dot-product attention and masks
(``solutions/05_scaled_dot_product_and_masks.ipynb``).

05.1 ``causal_mask_with_offset``  05.2 ``decoder_self_attention_mask``
05.3 ``CausalSelfAttention`` (build: a Keras layer)  05.4 ``bayes_accuracy``.

The references are NumPy; 05.3's check builds the learner's layer in the learner's kernel (Keras
is imported there only, inside :func:`invoke_self_attention`), sets its weights from the case
and returns its outputs as arrays.
"""

import numpy as np

from course_lib.checks.build import describe_layer_call, float32, numpy_of, set_weight
from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

GRADING_TIMEOUT_S = 180
"""Keras's import and the layer's check take about 20 s of one core; 180 s leaves room for a
busy machine."""

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


def _allowed_keys(padding_mask, length, causal="tril", queries=True, keys=True,
                  polarity=True):
    """``(B, T, T)`` (or ``(1, T, T)`` without a padding mask): which keys each query may see;
    the switches give the usual mistakes."""
    ones = np.ones((length, length), dtype=bool)
    allowed = {"tril": np.tril(ones), "triu": np.triu(ones), "future": ~np.tril(ones),
               "none": ones}[causal][None]
    if padding_mask is None:  # the layer was called without one: every token is real
        return allowed
    real = np.asarray(padding_mask, dtype=bool) == polarity  # (B, T)
    if queries:
        allowed = allowed & real[:, :, None]
    if keys:
        allowed = allowed & real[:, None, :]
    return allowed


def _self_attention(x, padding_mask, query_kernel, key_kernel, value_kernel, changed_x,
                    mask_given=True, *, scale="sqrt key_dim", allowed=None, fill=None,
                    softmax_axis=-1, mask_after_softmax=False):
    """Masked self-attention on ``x`` and on ``changed_x``; the keywords give the mistakes.

    ``allowed(padding_mask, T)`` replaces the right mask (``padding_mask`` is None when the
    layer is called without one); ``fill`` replaces the masked scores by a number (as a large
    negative constant does) instead of giving them weight exactly 0.
    """
    key_dim, depth = np.shape(query_kernel)[-1], np.shape(query_kernel)[0]
    factor = {"sqrt key_dim": 1 / np.sqrt(key_dim), "none": 1.0, "key_dim": 1 / key_dim,
              "sqrt depth": 1 / np.sqrt(depth)}[scale]

    def attend(inputs):
        inputs = np.asarray(inputs, dtype=np.float64)
        length = inputs.shape[1]
        queries = inputs @ query_kernel * factor  # (B, T, k)
        keys, values = inputs @ key_kernel, inputs @ value_kernel  # (B, T, k), (B, T, v)
        scores = queries @ np.swapaxes(keys, -1, -2)  # (B, T, T)
        mask = (allowed or _allowed_keys)(padding_mask if mask_given else None, length)
        if fill is not None:
            weights = softmax(np.where(mask, scores, fill), axis=softmax_axis)
        elif mask_after_softmax:
            weights = softmax(scores, axis=softmax_axis) * mask
        else:
            weights = softmax(scores, axis=softmax_axis, mask=mask)
        return weights @ values, weights

    output, weights = attend(x)
    return output, weights, attend(changed_x)[0]


def causal_self_attention(x, padding_mask, query_kernel, key_kernel, value_kernel, changed_x,
                          mask_given=True):
    """One head of masked self-attention, run on ``x`` and on ``changed_x``:
    ``(output (B, T, v), weights (B, T, T), output on changed_x)``.

    ``weights[b, i, j]`` is the softmax of ``q_i . k_j / sqrt(key_dim)`` over the keys ``j`` that
    query ``i`` may see: ``j <= i``, and tokens ``i`` and ``j`` both real; a query with none (a
    padded one) gets zeros. ``mask_given`` only says how the learner's layer was called.
    """
    return _self_attention(x, padding_mask, query_kernel, key_kernel, value_kernel, changed_x,
                           mask_given)


SELF_ATTENTION_KERNELS = ("query_kernel", "key_kernel", "value_kernel")


def invoke_self_attention(layer_class, case):
    """How 05.3 runs the learner's layer: build it, set its kernels from the case, call it on
    ``x`` and on ``changed_x``. Runs in the learner's kernel."""
    key_dim, value_dim = np.shape(case["query_kernel"])[-1], np.shape(case["value_kernel"])[-1]
    layer = layer_class(key_dim=int(key_dim), value_dim=int(value_dim))
    mask = np.asarray(case["padding_mask"], dtype=bool) if case["mask_given"] else None
    layer(float32(case["x"]), padding_mask=mask)  # builds the weights
    for name in SELF_ATTENTION_KERNELS:
        set_weight(layer, name, case[name])
    results = []
    for inputs in (case["x"], case["changed_x"]):
        returned = layer(float32(inputs), padding_mask=mask)
        if not isinstance(returned, tuple | list) or len(returned) != 2:
            raise TypeError(f"your layer returned {type(returned).__name__}; it must return "
                            f"the pair (output, weights)")
        results.append([numpy_of(value) for value in returned])
    (output, weights), (changed, _) = results
    return output, weights, changed


def describe_self_attention(case):
    """What 05.3's layer was built with and called on (its kernels are set by the check)."""
    key_dim, value_dim = np.shape(case["query_kernel"])[-1], np.shape(case["value_kernel"])[-1]
    mask = case["padding_mask"] if case["mask_given"] else None
    return describe_layer_call("CausalSelfAttention", {"key_dim": key_dim, "value_dim": value_dim},
                               {"x": case["x"], "padding_mask": mask})


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


def self_attention_cases(rng):
    """Right padding (a full sequence beside a short one), left padding (whose first queries
    are padding: their rows must be zeros), and no padding with no mask passed at all. Depths
    differ (key_dim, value_dim and the input's), so a projection or a scale taken from the wrong
    depth shows; kernels of spread about 1 make scores of order 1 to 3, so a missing or wrong
    scale shows. ``changed_x`` redraws every token from position ``T // 2`` on: the outputs
    before it must not move."""
    cases = []
    for lengths, width, depth, key_dim, value_dim, left in (([5, 3], 5, 6, 3, 4, False),
                                                            ([6, 4, 2], 6, 4, 2, 3, True),
                                                            ([4, 4], 4, 8, 4, 2, False)):
        x = rng.normal(size=(len(lengths), width, depth))
        changed = x.copy()
        changed[:, width // 2:] = rng.normal(size=(len(lengths), width - width // 2, depth))
        positions = np.arange(width)[None, :]
        lengths = np.asarray(lengths)[:, None]
        mask = positions >= width - lengths if left else positions < lengths
        cases.append({
            "x": x, "padding_mask": mask,
            "query_kernel": rng.normal(size=(depth, key_dim)) * 1.2 / np.sqrt(depth),
            "key_kernel": rng.normal(size=(depth, key_dim)) * 1.2 / np.sqrt(depth),
            "value_kernel": rng.normal(size=(depth, value_dim)) / np.sqrt(depth),
            "changed_x": changed, "mask_given": not bool(mask.all()),
        })
    return cases


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
                f"Hint: return a boolean array, True = attend (a comparison gives one); an "
                f"additive mask of 0 and -inf is another convention.")
    return check_boolean


def mask_sees_the_future(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.1: True where the key comes after the query's position."""
    leaks, hides = _position_condition(case, mine["mask"], expected["mask"])
    if leaks.any():
        i, j = np.argwhere(leaks)[0]
        return (f"Your mask lets query {i} (the token at position {case['offset'] + i}) see "
                f"key {j}, which comes after it: the future leaks (called with "
                f"query_length={case['query_length']}, key_length={case['key_length']}, "
                f"offset={case['offset']}). Hint: at which position is the token of query i, "
                f"and which keys come at or before it?")
    if hides.any():
        i, j = np.argwhere(hides)[0]
        return (f"Your mask hides key {j} from query {i}, though key {j} is not after the "
                f"query's position offset + i = {case['offset'] + i}. Hint: a query sees every "
                f"key at or before its own position.")
    return None


def decoder_mask_errors(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.2: name the first wrong entry and which rule it breaks."""
    leaks, hides = _position_condition(case, mine["mask"], expected["mask"])
    ids, pad_id = np.asarray(case["token_ids"]), case["pad_id"]
    for b, i, j in np.argwhere(leaks):
        if j > i:
            return (f"Your mask lets query {i} of sequence {b} see key {j}, a later position: "
                    f"the future leaks. Hint: every entry must also pass the causal rule, "
                    f"j <= i.")
        side = "query" if ids[b, i] == pad_id else "key"
        return (f"Your mask is True for query {i} and key {j} of sequence {b}, but the {side} "
                f"is padding (pad_id={pad_id}). Hint: padding is hidden both as a query (a row) "
                f"and as a key (a column).")
    if hides.any():
        b, i, j = np.argwhere(hides)[0]
        return (f"Your mask hides key {j} from query {i} of sequence {b}, though both are real "
                f"tokens and j <= i. Hint: a real token sees every real token up to itself.")
    return None


def _first_changed_position(case: Case) -> int:
    return int(np.flatnonzero(np.any(case["changed_x"] != case["x"], axis=(0, 2)))[0])


def future_leaks(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.3: the outputs of the real tokens before position c must not move when only the tokens
    from c on change."""
    first = _first_changed_position(case)
    before = np.asarray(case["padding_mask"], dtype=bool)[:, :first]
    output, changed = mine["output"], mine["output_with_later_tokens_changed"]
    if output.shape != changed.shape or output.ndim != 3:
        return None
    moved = ~np.all(np.isclose(output[:, :first], changed[:, :first], atol=1e-5), axis=-1)
    if np.any(moved & before):
        b, i = np.argwhere(moved & before)[0]
        return (f"The future leaks: the output of token {i} of sequence {b} changes when only "
                f"the tokens from position {first} on change. Hint: which keys may query i "
                f"see, and is that rule applied before the softmax?")
    return None


def forbidden_weights(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.3: weight where the mask forbids it, named by the rule it breaks."""
    weights = mine["weights"]
    real = np.asarray(case["padding_mask"], dtype=bool)
    allowed = _allowed_keys(real, real.shape[1])
    if weights.shape != allowed.shape:
        return None
    leaking = ~allowed & ~np.isclose(weights, 0.0, atol=1e-6)
    if not leaking.any():
        return None
    b, i, j = np.argwhere(leaking)[0]
    if not real[b, i]:
        return (f"Token {i} of sequence {b} is padding, yet its row of weights is not all zeros. "
                f"Hint: a padded query has no key to look at: what should its weights be, "
                f"and where does your mask say so?")
    if j > i:
        return (f"Query {i} of sequence {b} gives weight to key {j}, a later position: the "
                f"future leaks. Hint: which keys may query i see?")
    return (f"Query {i} of sequence {b} gives weight to key {j}, which is padding. Hint: the "
            f"padding mask applies to the keys too.")


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


def _bayes_variant(*, best_axis=1, move_as_column=False, one_step_ahead=False):
    """The chain's best-guess accuracy with one slip: the best guess after a token read from
    the wrong axis of the transition matrix (``best_axis=0``, the maximum over columns), the
    distribution moved on as P p instead of p P, or the guess after token t weighted by the
    distribution of token t + 1."""
    def wrong(transition, initial, length):
        transition = np.asarray(transition, dtype=np.float64)
        distribution = np.asarray(initial, dtype=np.float64)
        best_next = transition.max(axis=best_axis)
        total = distribution.max()
        for _ in range(length - 1):
            moved = transition @ distribution if move_as_column else distribution @ transition
            if one_step_ahead:
                distribution = moved
            total += distribution @ best_next
            distribution = moved
        return total / length
    return wrong


# --- The exercises ------------------------------------------------------------------------------

POLARITY = ("Here True means attend (the Keras convention); a mask where True, or 1, means "
            "*masked* (as in the TensorFlow tutorial) must be inverted before it is used this way.")

CAUSAL_MASK_WITH_OFFSET = Exercise(
    exercise_id="05.1",
    function_name="causal_mask_with_offset",
    make_cases=offset_cases,
    reference=causal_mask_with_offset,
    outputs=("mask",),
    mistakes=(
        Mistake(lambda query_length, key_length, offset: ~causal_mask_with_offset(
                    query_length, key_length, offset),
                "Your mask has the opposite polarity: True exactly where the query must not "
                "look, so every query would see only the future. " + POLARITY + " Hint: is "
                "your mask True for the keys a query may see, or for the ones it may not?"),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, 0),
                "Your mask ignores `offset`: it is top-left aligned, so with a cache the new "
                "queries cannot see the keys already there. Hint: at which position is the "
                "token of query i?"),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, key_length - query_length),
                "Your mask is always bottom-right aligned (offset = key_length - query_length), "
                "whatever `offset` says; in a fixed-size cache the slots after the queries are "
                "not filled yet. Hint: use the `offset` you are given."),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, offset - 1),
                "Your mask hides each query from its own key (the diagonal): off by one. Hint: "
                "may a token look at itself?"),
        Mistake(lambda query_length, key_length, offset: causal_mask_with_offset(
                    query_length, key_length, offset + 1),
                "Your mask lets each query see one key past its own position: off by one, and "
                "the next token leaks. Hint: compare the key's position with the query's own "
                "position, offset + i."),
        Mistake(lambda query_length, key_length, offset: (
                    np.arange(key_length)[None, :] >= offset + np.arange(query_length)[:, None]),
                "Your mask lets query i see its own position and everything after it, not "
                "before it: the upper triangle where the lower one is meant. Hint: which keys "
                "come at or before the query's position?"),
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


def _masked_where_true(token_ids, pad_id):
    """The TensorFlow tutorial's decoder mask, True (1) where a key is *masked*: the look-ahead
    part (the keys after the query) OR the padded keys."""
    token_ids = np.asarray(token_ids)
    length = token_ids.shape[-1]
    look_ahead = np.triu(np.ones((length, length), dtype=bool), k=1)[None]
    return look_ahead | (token_ids == pad_id)[:, None, :]


def inverted_polarity(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """05.2: True only where the answer is False (and False where it is True): the other
    polarity, whichever way it was built."""
    learner, answer = mine["mask"].astype(bool), expected["mask"].astype(bool)
    if learner.shape == answer.shape and answer.any() and not (learner & answer).any() \
            and learner.any():
        return ("Your mask has the opposite polarity: it is True where a query must not look "
                "and False where it may. " + POLARITY + " Hint: is your mask True for the keys "
                "a query may see?")
    return None


DECODER_SELF_ATTENTION_MASK = Exercise(
    exercise_id="05.2",
    function_name="decoder_self_attention_mask",
    make_cases=decoder_mask_cases,
    reference=decoder_self_attention_mask,
    outputs=("mask",),
    mistakes=(
        Mistake(lambda token_ids, pad_id: ~decoder_self_attention_mask(token_ids, pad_id),
                "Your mask has the opposite polarity: it is True exactly where a query must not "
                "look. " + POLARITY + " Hint: is your mask True for the keys a query may see?"),
        Mistake(_masked_where_true,
                "Your mask has the opposite polarity: True marks the keys to hide (the look-ahead "
                "and the padding), as in the TensorFlow tutorial, where 1 means masked. "
                + POLARITY + " Hint: is your mask True for the keys a query may see?"),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, combine="or"),
                "You combine the causal and the padding masks with OR: a key is then attended "
                "when either allows it, so padding and the future leak. Hint: a key is attended "
                "only when every mask allows it."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, key=False),
                "Your padding mask is on the queries (rows) only: real queries still attend to "
                "padded keys. Hint: padding must be hidden as a key (a column) too."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, query=False),
                "Your padding mask is on the keys (columns) only: a padded query still "
                "attends. Hint: the row of a padded query must be all False, so that it gets "
                "zero weights."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, query=False, key=False),
                "Your mask ignores the padding: it is the causal mask alone. Hint: which tokens "
                "of `token_ids` are padding, and which rows and columns do they concern?"),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="none"),
                "Your mask has no causal part: every query sees the tokens after it. Hint: "
                "query i may see key j only when j <= i."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="future"),
                "Your causal part is the wrong way round: each query sees only the tokens after "
                "it (the polarity trap of the lesson). Hint: True = attend, for the keys at or "
                "before the query."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, causal="triu"),
                "Your causal part lets query i see itself and every later token: the upper "
                "triangle where the lower one is meant. Hint: query i may see key j when "
                "j <= i."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, compare_with=0),
                "You compare the tokens with 0 instead of `pad_id`. Hint: a vocabulary may use "
                "another id for padding: use the argument."),
        Mistake(lambda token_ids, pad_id: _mask_from(token_ids, pad_id, padding_polarity=False),
                "Your padding mask is True at the padding, the other polarity. Hint: real "
                "tokens are the ones to attend, so they are True."),
    ),
    properties=(boolean_values("mask"), inverted_polarity, decoder_mask_errors),
    shape_hints={"mask": "(batch, queries, keys): one T x T mask per sequence"},
    nan_hint="a boolean mask holds no infinity: return True/False (True = attend), not an "
             "additive mask of 0 and -inf.",
    error_hint="the causal part is (T, T) and the padding (B, T): give the padding an axis of "
               "length 1 where it must broadcast, one way for the queries and another for the "
               "keys.",
    atol=0.0,
    rtol=0.0,
)


def _attention_mistake(**variant):
    def wrong(x, padding_mask, query_kernel, key_kernel, value_kernel, changed_x,
              mask_given=True):
        return _self_attention(x, padding_mask, query_kernel, key_kernel, value_kernel,
                               changed_x, mask_given, **variant)
    return wrong


def _allowed(**switches):
    def allowed(padding_mask, length):
        return _allowed_keys(padding_mask, length, **switches)
    return allowed


def _tutorial_mask(padding_mask, length):
    """The TensorFlow tutorial's mask (True = masked: later keys OR padded keys), used as if True
    meant attend."""
    look_ahead = np.triu(np.ones((length, length), dtype=bool), k=1)[None]
    if padding_mask is None:
        return look_ahead
    return look_ahead | ~np.asarray(padding_mask, dtype=bool)[:, None, :]


CAUSAL_SELF_ATTENTION = Exercise(
    exercise_id="05.3",
    function_name="CausalSelfAttention",
    make_cases=self_attention_cases,
    reference=causal_self_attention,
    outputs=("output", "weights", "output_with_later_tokens_changed"),
    mistakes=(
        Mistake(_attention_mistake(allowed=_allowed(polarity=False)),
                "Your padding mask has the opposite polarity: your layer attends to the padding "
                "and ignores the real tokens. Here `padding_mask` is True at a real token (the "
                "Keras convention), not at padding as in masks where 1 means masked. Hint: "
                "which tokens does True mark in `padding_mask`?"),
        Mistake(_attention_mistake(allowed=lambda mask, length: ~_allowed_keys(mask, length)),
                "Your mask has the opposite polarity: your layer attends exactly where it must "
                "not (the later tokens and the padding) and nowhere else. " + POLARITY
                + " Hint: is your mask True for the keys a query may see?"),
        Mistake(_attention_mistake(allowed=_tutorial_mask),
                "Your mask has the opposite polarity: it is True for the later keys and the "
                "padded ones (1 = masked, the TensorFlow tutorial's convention) and your layer "
                "attends there. " + POLARITY + " Hint: is your mask True for the keys a query "
                "may see?"),
        Mistake(_attention_mistake(allowed=_allowed(causal="none")),
                "Your layer has no causal mask: every token attends to the tokens after it, so "
                "the future leaks. Hint: which keys may query i see in a decoder?"),
        Mistake(_attention_mistake(allowed=_allowed(causal="future")),
                "Your causal mask is the wrong way round: each token attends only to the "
                "tokens after it, the polarity trap of the lesson. Hint: True = attend, for "
                "the keys at or before the query."),
        Mistake(_attention_mistake(allowed=_allowed(causal="triu")),
                "Your causal mask lets each token attend to itself and every later token: the "
                "upper triangle where the lower one is meant. Hint: query i may see key j "
                "when j <= i."),
        Mistake(_attention_mistake(allowed=_allowed(queries=False, keys=False)),
                "Your layer ignores `padding_mask`: real tokens attend to padding. Hint: the "
                "padding mask must hide padded keys, and leave padded queries nothing to "
                "attend to."),
        Mistake(_attention_mistake(allowed=_allowed(queries=False)),
                "The padded queries of your layer still attend (their rows of weights are not "
                "zero). Hint: a padded token has no key to look at: its whole row is masked, "
                "and a row with nothing to attend to gets zero weights."),
        Mistake(_attention_mistake(allowed=_allowed(keys=False)),
                "Your padding mask hides the padded queries but not the padded keys: real "
                "tokens still attend to padding. Hint: the padding mask applies to the keys "
                "(columns) too."),
        Mistake(_attention_mistake(fill=-1e9),
                "A padded query's row of weights is uniform instead of zero: a large negative "
                "score on every key of a fully masked row leaves them all equal, and the softmax "
                "shares the weight out. Hint: a row with no key to attend gets zero weights "
                "(course_lib.attention.masked_softmax gives them)."),
        Mistake(_attention_mistake(mask_after_softmax=True),
                "You zero the masked weights after the softmax, so the weights of each row no "
                "longer sum to 1 over the keys it may see. Hint: the softmax must run over the "
                "allowed keys only: hide the others before it."),
        Mistake(_attention_mistake(scale="none"),
                "Your scores are not scaled: the softmax saturates as key_dim grows. Hint: by "
                "what must q . k be divided so that its spread does not grow with key_dim?"),
        Mistake(_attention_mistake(scale="key_dim"),
                "You divide the scores by key_dim instead of its square root. Hint: the variance "
                "of q . k grows like key_dim, so its spread like the square root of key_dim."),
        Mistake(_attention_mistake(scale="sqrt depth"),
                "You scale the scores by the square root of the input's depth d; the dot "
                "products have key_dim terms. Hint: which depth do q and k have?"),
        Mistake(_attention_mistake(softmax_axis=-2),
                "Your softmax runs over the queries (axis -2), so each key's column sums to 1. "
                "Hint: each query's weights over the keys sum to 1: which axis holds the keys?"),
    ),
    properties=(future_leaks, forbidden_weights),
    shape_hints={"output": "(batch, tokens, value_dim)", "weights": "(batch, queries, keys)",
                 "output_with_later_tokens_changed": "(batch, tokens, value_dim)"},
    invoke=invoke_self_attention,
    reference_invoke=lambda reference, case: reference(*case.values()),
    describe=describe_self_attention,
    error_hint="the check builds your layer with key_dim and value_dim, calls it once to build "
               "it, sets its three kernels by name, then calls it again; read the last line of "
               "the error for the step that failed.",
    nan_hint="a fully masked row (a padded query) gives 0/0 if its scores are all -inf: give "
             "such rows zero weights.",
    hint="compare your weights with the rule: query i sees the real keys up to position i, with "
         "softmax weights of the scaled scores.",
    rtol=1e-4,
    atol=2e-5,
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
                "token after i, so P[i, j] = P(next = j | current = i). Hint: along which axis "
                "of `transition` does the next token vary?"),
        Mistake(_bayes_variant(best_axis=0),
                "Your best guess after token i takes the maximum over a column of the transition "
                "matrix (axis 0); the distribution of the token after i is row i. Hint: the "
                "chance of the best guess after i is the largest entry of row i."),
        Mistake(_bayes_variant(move_as_column=True),
                "You move the token distribution on with the transition matrix on the wrong "
                "side (P p instead of p P), which mixes the rows of P. Hint: p_(t+1)(j) sums "
                "p_t(i) P[i, j] over i."),
        Mistake(_bayes_ignoring_first_token,
                "You left out the first token: it has nothing before it, but it is predicted "
                "too. Hint: it is right with probability max(initial), and the average runs "
                "over all `length` tokens."),
        Mistake(_bayes_with_first_guess(lambda transition, initial: 1.0),
                "You count the first token as always right. Hint: it is predicted from "
                "nothing, so the best guess is the most likely first token."),
        Mistake(_bayes_with_first_guess(lambda transition, initial: 1 / len(initial)),
                "You count the first token as a uniform guess, 1/V. Hint: the best guess is "
                "the most likely first token, right with probability max(initial)."),
        Mistake(_bayes_weights_states_equally,
                "You weight every previous token equally (a plain mean of the row maxima). "
                "Hint: the best guess after i counts as often as the previous token is i, "
                "p_t(i), and that distribution moves along the sequence."),
        Mistake(_bayes_with_fixed_distribution,
                "You use `initial` as the distribution of the previous token at every step. "
                "Hint: it changes along the sequence: p_(t+1) = p_t P."),
        Mistake(_bayes_variant(one_step_ahead=True),
                "Off by one step: you weight the guess after token t by the distribution of "
                "token t + 1. Hint: the guess for token 2 uses the distribution of token 1, "
                "which is `initial`."),
        Mistake(lambda transition, initial, length: bayes_accuracy(
                    transition, initial, length) * length,
                "You summed the chances of the `length` tokens instead of averaging them. "
                "Hint: an accuracy lies between 0 and 1."),
    ),
    properties=(accuracy_in_range,),
    shape_hints={"accuracy": "a single number"},
    nan_hint="with length 1 there is only the first token: do not divide by length - 1.",
    error_hint="a sequence of length 1 still has one prediction, its first token: average "
               "over `length`, not `length - 1`.",
    hint="work a chain of two symbols and three tokens by hand: the first guess, then the "
         "guess after each possible previous token, weighted by how likely that token is.",
    rtol=1e-6,
    atol=0.0,
)

EXERCISES = (CAUSAL_MASK_WITH_OFFSET, DECODER_SELF_ATTENTION_MASK, CAUSAL_SELF_ATTENTION,
             BAYES_ACCURACY)
