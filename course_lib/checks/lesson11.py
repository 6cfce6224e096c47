"""Exercises of lesson 11, efficient attention (``solutions/11_efficient_attention.ipynb``).

11.1 ``online_softmax_update``  11.2 ``dilated_window_mask``  11.3 ``causal_linear_attention``
(the build exercise: the recurrence over chunks of positions). All in NumPy, so a graded
kernel never imports TensorFlow.

Conventions: scores are already scaled; masks are boolean, True = attend; the feature map of
linear attention is ``φ(x) = elu(x) + 1`` (Katharopoulos et al. 2020).
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, matches_variant

# --- References -----------------------------------------------------------------------------


def online_softmax_update(running_max, running_sum, output, scores, values):
    """One block of the online softmax: the state ``(m, l, o)`` of each query after its keys so
    far, updated with a block of ``b`` more keys (scores ``(..., Tq, b)``, values
    ``(..., b, dv)``): ``m' = max(m, max_j s_j)``, ``l' = l e^{m − m'} + Σ_j e^{s_j − m'}``,
    ``o' = o e^{m − m'} + Σ_j e^{s_j − m'} v_j``."""
    new_max = np.maximum(running_max, np.max(scores, axis=-1))
    rescale = np.exp(running_max - new_max)  # (..., Tq)
    weights = np.exp(scores - new_max[..., None])  # (..., Tq, b)
    return (new_max, running_sum * rescale + weights.sum(axis=-1),
            output * rescale[..., None] + weights @ values)


def dilated_window_mask(length, window, dilation, global_tokens):
    """Longformer's dilated sliding window with global tokens, ``(length, length)`` bool:
    query ``i`` attends ``i + m · dilation`` for ``m = −window … window``, and the first
    ``global_tokens`` positions attend and are attended by every position."""
    offsets = np.arange(length)[:, None] - np.arange(length)[None, :]  # i − j
    local = (np.abs(offsets) <= window * dilation) & (offsets % dilation == 0)
    is_global = np.arange(length) < global_tokens
    return local | is_global[:, None] | is_global[None, :]


def elu_plus_one(x):
    """``φ(x) = elu(x) + 1``: ``x + 1`` for ``x > 0``, ``exp(x)`` otherwise."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def causal_linear_attention(query, keys, values, chunk_size):
    """Causal linear attention as a recurrence over chunks of ``chunk_size`` positions: inside a
    chunk the masked parallel form, between chunks the state ``S = Σ φ(k_j) v_jᵀ`` and the
    normaliser ``z = Σ φ(k_j)``; ``out_t = φ(q_t)ᵀ S_t / φ(q_t) · z_t`` with the sums over
    ``j ≤ t``. Returns ``(outputs (..., T, dv), state (..., d, dv), normaliser (..., d))``, the
    state and normaliser after the last token; every chunk size gives the same numbers."""
    return _chunked(query, keys, values, chunk_size)


def _chunked(query, keys, values, chunk_size, mask_within=True, state_first=False,
             within_chunk=True, accumulate=True, full_chunks_only=False,
             feature_map=elu_plus_one):
    """The reference, and with one switch flipped, a wrong answer."""
    query_features, key_features = feature_map(query), feature_map(keys)
    values = np.asarray(values, dtype=np.float64)
    *leading, length, depth = np.shape(query)
    state = np.zeros((*leading, depth, values.shape[-1]))
    normaliser = np.zeros((*leading, depth))
    outputs = np.zeros((*leading, length, values.shape[-1]))
    last_start = length - chunk_size + 1 if full_chunks_only else length
    for start in range(0, last_start, chunk_size):
        chunk = slice(start, min(start + chunk_size, length))
        chunk_queries, chunk_keys = query_features[..., chunk, :], key_features[..., chunk, :]
        chunk_values = values[..., chunk, :]
        if state_first:
            state = state + np.swapaxes(chunk_keys, -1, -2) @ chunk_values
            normaliser = normaliser + chunk_keys.sum(axis=-2)
        within = chunk_queries @ np.swapaxes(chunk_keys, -1, -2)  # (..., c, c)
        if mask_within:
            within = within * np.tril(np.ones(within.shape[-2:]))
        if not within_chunk:
            within = np.zeros_like(within)
        numerator = chunk_queries @ state + within @ chunk_values
        denominator = chunk_queries @ normaliser[..., None] + within.sum(axis=-1, keepdims=True)
        outputs[..., chunk, :] = numerator / denominator
        if not state_first:
            state = (state if accumulate else 0.0) + np.swapaxes(chunk_keys, -1, -2) @ chunk_values
            normaliser = (normaliser if accumulate else 0.0) + chunk_keys.sum(axis=-2)
    return outputs, state, normaliser


# --- Wrong answers that learners write ---------------------------------------------------------


def _update_variant(rescale_sum=True, rescale_output=True, inverted=False, block_max_only=False,
                    old_max_weights=False, normalised=False, first_block_guarded=False):
    def wrong(running_max, running_sum, output, scores, values):
        block_max = np.max(scores, axis=-1)
        new_max = block_max if block_max_only else np.maximum(running_max, block_max)
        rescale = np.exp(new_max - running_max) if inverted else np.exp(running_max - new_max)
        if first_block_guarded:  # no keys seen yet: nothing to rescale
            rescale = np.where(np.isneginf(running_max), 0.0, rescale)
        base = running_max if old_max_weights else new_max
        weights = np.exp(scores - base[..., None])
        new_sum = (running_sum * rescale if rescale_sum else running_sum) + weights.sum(-1)
        new_output = ((output * rescale[..., None] if rescale_output else output)
                      + weights @ values)
        if normalised:
            new_output = new_output / new_sum[..., None]
        return new_max, new_sum, new_output

    return wrong


def _mask_variant(dilated=True, reach_times_dilation=True, strict=False, global_rows=True,
                  global_columns=True, one_sided=False, extra_globals=0):
    def wrong(length, window, dilation, global_tokens):
        offsets = np.arange(length)[:, None] - np.arange(length)[None, :]
        reach = window * dilation if reach_times_dilation else window
        local = np.abs(offsets) < reach if strict else np.abs(offsets) <= reach
        if dilated:
            local &= offsets % dilation == 0
        if one_sided:
            local &= offsets >= 0
        is_global = np.arange(length) < global_tokens + extra_globals
        if global_rows:
            local = local | is_global[:, None]
        if global_columns:
            local = local | is_global[None, :]
        return local

    return wrong


def _linear_variant(feature_map=elu_plus_one, causal=True, state_before_output=False,
                    normalise=True, map_values=False, raw_normaliser=False):
    def wrong(query, keys, values, chunk_size):  # the same at every chunk size
        query_features, key_features = feature_map(query), feature_map(keys)
        values = feature_map(values) if map_values else np.asarray(values, dtype=np.float64)
        normalised_keys = np.asarray(keys, dtype=np.float64) if raw_normaliser else key_features
        *leading, length, depth = np.shape(query)
        state = np.zeros((*leading, depth, values.shape[-1]))
        normaliser = np.zeros((*leading, depth))
        outputs = np.zeros((*leading, length, values.shape[-1]))
        if not causal:  # every position reads the sums over the whole sequence
            state = np.einsum("...td,...tv->...dv", key_features, values)
            normaliser = normalised_keys.sum(axis=-2)
        for t in range(length):
            if causal and not state_before_output:
                state = state + key_features[..., t, :, None] * values[..., t, None, :]
                normaliser = normaliser + normalised_keys[..., t, :]
            numerator = np.einsum("...d,...dv->...v", query_features[..., t, :], state)
            denominator = np.sum(query_features[..., t, :] * normaliser, axis=-1, keepdims=True)
            outputs[..., t, :] = numerator / denominator if normalise else numerator
            if causal and state_before_output:
                state = state + key_features[..., t, :, None] * values[..., t, None, :]
                normaliser = normaliser + normalised_keys[..., t, :]
        return outputs, state, normaliser

    return wrong


def _elu(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, np.exp(np.minimum(x, 0.0)) - 1.0)



def _exp(x):
    return np.exp(np.asarray(x, dtype=np.float64))


def _relu_plus_one(x):
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0) + 1.0


def _guarded_inverted_sum(running_max, running_sum, output, scores, values):
    """The running sum of an upside-down factor guarded for the first block (right there)."""
    return _update_variant(inverted=True, first_block_guarded=True)(
        running_max, running_sum, output, scores, values)[1]


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def update_cases(rng):
    """The first block (no keys seen yet: ``m = −∞``, ``l = 0``, ``o = 0``); then states made by
    a real earlier block, with a new block whose scores are far above the old maximum in some
    rows and below it in others (so every rescaling shows); ``Tq``, ``b`` and ``dv`` all
    different; one and two leading axes."""
    cases = []
    for leading, queries, block, value_depth, first in (((), 3, 4, 2, True),
                                                        ((2,), 4, 5, 3, False),
                                                        ((2, 3), 2, 3, 4, False)):
        if first:
            state = (np.full((*leading, queries), -np.inf), np.zeros((*leading, queries)),
                     np.zeros((*leading, queries, value_depth)))
        else:
            earlier = rng.normal(scale=2.0, size=(*leading, queries, 6))
            state = online_softmax_update(np.full((*leading, queries), -np.inf),
                                          np.zeros((*leading, queries)),
                                          np.zeros((*leading, queries, value_depth)), earlier,
                                          rng.normal(size=(*leading, 6, value_depth)))
        shift = np.where(np.arange(queries) % 2 == 0, 4.0, -3.0)[:, None]  # up, down, up, ...
        scores = rng.normal(scale=2.0, size=(*leading, queries, block)) + shift
        cases.append({"running_max": state[0], "running_sum": state[1], "output": state[2],
                      "scores": scores, "values": rng.normal(size=(*leading, block,
                                                                   value_depth))})
    return cases


def mask_cases(rng):
    """Windows dilated by 2 and 3 (and one plain window), with and without global tokens,
    windows of more than one step, lengths long enough for the dilated reach to stay inside."""
    return [
        {"length": int(rng.integers(12, 17)), "window": 2, "dilation": 2, "global_tokens": 1},
        {"length": int(rng.integers(10, 14)), "window": int(rng.integers(1, 3)), "dilation": 3,
         "global_tokens": 0},
        {"length": 9, "window": 3, "dilation": 1, "global_tokens": int(rng.integers(1, 3))},
        {"length": int(rng.integers(14, 19)), "window": 2, "dilation": 3, "global_tokens": 2},
    ]


def linear_cases(rng):
    """One sequence and batches with one and two leading axes; depth ≠ value depth (so a
    transposed state has another shape); inputs of spread 1.5, so that both branches of
    elu(x) + 1 are used; chunks of one token, chunks that do not divide the length, and one
    chunk longer than the sequence."""
    cases = []
    for leading, length, depth, value_depth, chunk_size in (
            ((), 7, 3, 4, 3), ((2,), 9, 4, 2, 1), ((2, 3), 5, 2, 3, 2), ((2,), 6, 3, 2, 8)):
        cases.append({"query": rng.normal(scale=1.5, size=(*leading, length, depth)),
                      "keys": rng.normal(scale=1.5, size=(*leading, length, depth)),
                      "values": rng.normal(size=(*leading, length, value_depth)),
                      "chunk_size": int(chunk_size)})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def _running_max_is_the_larger(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    if np.allclose(mine["running_max"], expected["running_max"]):
        return None
    return ("Your new running maximum is not the larger of the old one and the block's largest "
            "score, query by query. Hint: the maximum over the keys seen so far can only grow; "
            "compare the two element-wise.")


def _first_output_is_the_first_value(case: Case, mine: NamedOutputs,
                                     expected: NamedOutputs) -> str | None:
    """At position 0 the only key is key 0, so the output must be value 0 exactly."""
    first = mine["outputs"][..., 0, :]
    if np.allclose(first, np.asarray(case["values"])[..., 0, :], rtol=1e-4, atol=1e-6):
        return None
    return ("Your output at position 0 is not value 0: the first query sees only the first key, "
            "so its weights are (1). Hint: include token t in the sums before you read them at "
            "position t, and divide by the normaliser.")


# --- The exercises ----------------------------------------------------------------------------

_INVERTED_RESCALE = ("Your rescaling factor is upside down: it grows the old terms when the "
                     "maximum grows. Hint: exp(a − b) turns a term relative to b into one "
                     "relative to a; which maximum is which here?")

ONLINE_SOFTMAX_UPDATE = Exercise(
    exercise_id="11.1",
    function_name="online_softmax_update",
    make_cases=update_cases,
    reference=online_softmax_update,
    outputs=("running_max", "running_sum", "output"),
    mistakes=(
        Mistake(_update_variant(rescale_output=False),
                "Your running sum is rescaled when the maximum grows, but your output is not: "
                "its old terms stay measured against the old maximum. Hint: every quantity "
                "summed relative to the old maximum needs the same factor."),
        Mistake(_update_variant(rescale_sum=False),
                "Your output is rescaled when the maximum grows, but your running sum is not. "
                "Hint: the sum of the old exponentials was taken relative to the old maximum "
                "too."),
        Mistake(_update_variant(rescale_sum=False, rescale_output=False),
                "Neither your running sum nor your output is rescaled when the maximum grows: "
                "old and new terms end up measured against different maxima. Hint: multiply "
                "the old terms by the exponential of the change of the maximum."),
        Mistake(_update_variant(inverted=True), _INVERTED_RESCALE),
        Mistake(_update_variant(block_max_only=True),
                "Your new maximum is the block's largest score alone, which forgets larger "
                "scores seen in earlier blocks. Hint: the running maximum is over all the keys "
                "seen so far."),
        Mistake(_update_variant(old_max_weights=True),
                "Your block's exponentials are taken relative to the old maximum while the rest "
                "of the state uses the new one (and with no keys seen yet, the old maximum is "
                "−∞). Hint: compute the new maximum first and use it for every exponential."),
        Mistake(_update_variant(normalised=True),
                "Your output is divided by the running sum: the state should keep the "
                "unnormalised sum, divided once at the end. Hint: return the weighted sum of "
                "the values as it is."),
    ),
    properties=(_running_max_is_the_larger,
                # an inverted factor with a guard for the first block: right there, wrong after
                matches_variant("running_sum", _guarded_inverted_sum, _INVERTED_RESCALE)),
    shape_hints={"running_max": "one number per query: (..., Tq)",
                 "running_sum": "one number per query: (..., Tq)",
                 "output": "(..., Tq, dv)"},
    nan_hint="before the first block the running maximum is −∞: compute the new maximum "
             "before any exponential, and only ever exponentiate a number ≤ 0.",
    hint="process one row by hand with two blocks and compare output / running_sum with the "
         "softmax over all the scores at once.",
)

DILATED_WINDOW_MASK = Exercise(
    exercise_id="11.2",
    function_name="dilated_window_mask",
    make_cases=mask_cases,
    reference=dilated_window_mask,
    outputs=("mask",),
    mistakes=(
        Mistake(_mask_variant(dilated=False),
                "Your window attends every position within window · dilation, not every "
                "dilation-th one. Hint: the offset i − j must also be a multiple of the "
                "dilation."),
        Mistake(_mask_variant(reach_times_dilation=False),
                "Your window stops at |i − j| ≤ window, so it holds fewer keys than asked: "
                "window steps of size dilation reach further. Hint: how far is the window-th "
                "key on each side?"),
        Mistake(_mask_variant(strict=True),
                "Your window leaves out the farthest key on each side (|i − j| < reach). Hint: "
                "m runs from −window to window, both included."),
        Mistake(_mask_variant(global_rows=False),
                "Your global tokens are attended by everyone but do not attend every position "
                "themselves. Hint: a global token is global as a query too."),
        Mistake(_mask_variant(global_columns=False),
                "Your global tokens attend every position, but the other positions do not "
                "attend them. Hint: a global token is global as a key too."),
        Mistake(_mask_variant(extra_globals=1),
                "You made one position too many global: global_tokens + 1 of them. Hint: with "
                "global_tokens = 1, only position 0 is global; with 0, none."),
        Mistake(_mask_variant(one_sided=True),
                "Your window only looks back (j ≤ i); this pattern looks both ways. Hint: use "
                "the absolute offset |i − j|."),
    ),
    shape_hints={"mask": "(length, length), rows are queries"},
    hint="draw the mask for length 10, window 1, dilation 2, one global token by hand and "
         "compare it with yours row by row.",
)

CAUSAL_LINEAR_ATTENTION = Exercise(
    exercise_id="11.3",
    function_name="causal_linear_attention",
    make_cases=linear_cases,
    reference=causal_linear_attention,
    outputs=("outputs", "state", "normaliser"),
    mistakes=(
        Mistake(_linear_variant(causal=False),
                "Every position of yours reads the sums over the whole sequence, the later "
                "tokens included. Hint: position t may only use tokens 0 … t; update the state "
                "as you go."),
        Mistake(_linear_variant(state_before_output=True),
                "Your output at position t leaves out token t itself (you read the state before "
                "adding it). Hint: causal means keys j ≤ t, so t is one of them."),
        Mistake(_linear_variant(normalise=False),
                "Your outputs are not divided by the normaliser φ(q_t) · z_t, so the weights do "
                "not sum to 1. Hint: the denominator is the same product with z_t in place of "
                "S_t."),
        Mistake(_linear_variant(feature_map=_elu),
                "Your feature map is elu(x), which can be negative; it is elu(x) + 1, positive "
                "everywhere, so that every weight is positive. Hint: add 1 after the elu."),
        Mistake(_linear_variant(feature_map=_exp),
                "Your feature map is exp(x); the one asked for is elu(x) + 1. Hint: elu(x) is x "
                "for x > 0 and exp(x) − 1 otherwise."),
        Mistake(_linear_variant(feature_map=_relu_plus_one),
                "Your feature map is max(x, 0) + 1, flat at 1 for every negative input; "
                "elu(x) + 1 is exp(x) there. Hint: elu is x for x > 0 and exp(x) − 1 "
                "otherwise (relu is not elu)."),
        Mistake(_linear_variant(map_values=True),
                "You applied the feature map to the values too; it maps only queries and keys "
                "(it replaces the exponential of q · k). Hint: the state adds the values as "
                "they are."),
        Mistake(_linear_variant(raw_normaliser=True),
                "Your normaliser sums the raw keys instead of their features φ(k). Hint: z_t "
                "must be the sum of the same vectors that the state uses."),
        Mistake(lambda q, k, v, c: _chunked(q, k, v, c, mask_within=False),
                "Inside a chunk, your positions read the later positions of the same chunk. "
                "Hint: the products within a chunk need the causal mask too (j ≤ t)."),
        Mistake(lambda q, k, v, c: _chunked(q, k, v, c, state_first=True),
                "You add the chunk to the state before reading it, so the chunk is counted "
                "twice (once through the state, once inside the chunk). Hint: read the state of "
                "the earlier chunks first, then add this one."),
        Mistake(lambda q, k, v, c: _chunked(q, k, v, c, within_chunk=False),
                "Your positions read only the earlier chunks, through the state, and leave out "
                "their own chunk. Hint: add the masked products within the chunk to both the "
                "numerator and the denominator."),
        Mistake(lambda q, k, v, c: _chunked(q, k, v, c, accumulate=False),
                "Your state holds only the last chunk's keys and values: each chunk replaces "
                "the state instead of adding to it, so the earlier chunks are forgotten. Hint: "
                "S and z are running sums over every token so far."),
        Mistake(lambda q, k, v, c: _chunked(q, k, v, c, full_chunks_only=True),
                "Your loop leaves out the last, shorter chunk (the whole sequence when "
                "chunk_size exceeds its length): those positions get no output and never reach "
                "the state. Hint: the chunks must cover every position up to the end."),
    ),
    properties=(_first_output_is_the_first_value,),
    shape_hints={"outputs": "(..., T, dv)", "state": "(..., d, dv), whatever T and the chunks",
                 "normaliser": "(..., d)"},
    error_hint="the inputs may have any number of leading axes: take the positions (and the "
               "chunks) along the second-to-last axis, and let the products act on the last two; "
               "the last chunk may be shorter than chunk_size, even the whole sequence.",
    nan_hint="with φ(x) = elu(x) + 1 every feature is positive, so the denominator at position "
             "t is positive once token t is in the sums.",
    hint="work two positions by hand: after token 0 the output must be v_0; after token 1 a "
         "mixture of v_0 and v_1 whose weights are φ(q_1)·φ(k_0) and φ(q_1)·φ(k_1), normalised.",
)

EXERCISES = (ONLINE_SOFTMAX_UPDATE, DILATED_WINDOW_MASK, CAUSAL_LINEAR_ATTENTION)
