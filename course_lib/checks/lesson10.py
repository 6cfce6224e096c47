"""Exercises of lesson 10, positions and heads for long contexts
(``solutions/10_long_context_attention.ipynb``).

10.1 ``apply_rope`` (the RoFormer paper's interleaved layout)  10.2 ``grouped_query_attention``
(build)  10.3 ``causal_window_mask``  10.4 ``longest_context`` (the context a memory budget
holds). All in NumPy, so a graded kernel never imports TensorFlow; the tests prove the
references equal keras_hub's ``RotaryEmbedding`` on permuted features, Keras's
``GroupQueryAttention`` and ``MultiHeadAttention(sliding_window=w)``, and a search with the
library's ``kv_cache_bytes``.
"""

import math

import numpy as np

from course_lib.checks.core import (
    Case,
    Exercise,
    Mistake,
    NamedOutputs,
    describe_case,
    sums_to_one,
)
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def apply_rope(x, positions, base):
    """Rotary position embedding in the RoFormer paper's interleaved layout: ``x (..., T, d)``,
    ``positions`` of a shape that broadcasts to ``x.shape[:-1]``; the neighbouring features
    ``2i`` and ``2i + 1`` of a row at position ``p`` turn together by the angle
    ``p · base^(−2i/d)``, ``i = 0 … d/2 − 1`` (Su et al. 2021, §3.2)."""
    x = np.asarray(x, dtype=np.float64)
    frequencies = float(base) ** (-2.0 * np.arange(x.shape[-1] // 2) / x.shape[-1])   # (d/2,)
    angles = np.asarray(positions, dtype=np.float64)[..., None] * frequencies     # (..., T, d/2)
    even, odd = x[..., 0::2], x[..., 1::2]                                         # (..., T, d/2)
    turned = np.stack([even * np.cos(angles) - odd * np.sin(angles),
                       odd * np.cos(angles) + even * np.sin(angles)], axis=-1)  # (..., T, d/2, 2)
    return turned.reshape(x.shape)


def grouped_query_attention(query, value, query_kernel, query_bias, key_kernel, key_bias,
                            value_kernel, value_bias, output_kernel, output_bias,
                            use_causal_mask):
    """``keras.layers.GroupQueryAttention`` in NumPy, the keys being ``value``: ``H_q`` query
    heads share ``H_kv`` key/value heads (query head ``h`` uses key/value head ``⌊h / G⌋``,
    ``G = H_q / H_kv``); scores scaled by ``1 / √head_dim``; query ``i`` sees keys ``j <= i``
    with ``use_causal_mask``. Kernels in Keras's layout: ``query_kernel (D, H_q, hd)``,
    ``key_kernel`` and ``value_kernel (D, H_kv, hd)``, ``output_kernel (H_q, hd, D)``.
    Returns ``(output (B, Tq, D), weights (B, H_q, Tq, Tk))``."""
    query = np.asarray(query, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    head_dim = query_kernel.shape[-1]
    group = query_kernel.shape[1] // key_kernel.shape[1]
    queries = np.einsum("btd,dhk->bthk", query, query_kernel) + query_bias      # (B, Tq, Hq, hd)
    keys = np.einsum("btd,dhk->bthk", value, key_kernel) + key_bias             # (B, Tk, Hkv, hd)
    values = np.einsum("btd,dhk->bthk", value, value_kernel) + value_bias       # (B, Tk, Hkv, hd)
    keys, values = np.repeat(keys, group, axis=2), np.repeat(values, group, axis=2)
    scores = np.einsum("bqhk,bshk->bhqs", queries, keys) / np.sqrt(head_dim)
    mask = None
    if use_causal_mask:
        mask = np.tril(np.ones((query.shape[1], value.shape[1]), dtype=bool))
    weights = softmax(scores, mask=mask)                                         # (B, Hq, Tq, Tk)
    heads = np.einsum("bhqs,bshk->bqhk", weights, values)                       # (B, Tq, Hq, hd)
    return np.einsum("bqhk,hkd->bqd", heads, output_kernel) + output_bias, weights


def causal_window_mask(query_length, key_length, window, offset):
    """Boolean ``(Tq, Tk)``: query ``i``, at position ``offset + i``, sees key ``j`` when
    ``offset + i − window < j <= offset + i`` (itself and the ``window − 1`` keys before it)."""
    query_positions = offset + np.arange(query_length)[:, None]
    keys = np.arange(key_length)[None, :]
    return (keys <= query_positions) & (keys > query_positions - window)


def longest_context(memory_bytes, num_layers, d_model, num_heads, num_key_value_heads, window,
                    bytes_per_number, batch_size):
    """The longest context, in tokens, whose key/value cache fits in ``memory_bytes``: each of
    the ``batch_size`` sequences caches a key and a value (2) in every layer for
    ``min(length, window)`` positions, ``num_key_value_heads`` heads of ``d_model / num_heads``
    numbers each. ``math.inf`` when the ring of ``window`` positions fits, since the cache then
    stops growing; ``window = math.inf`` is full attention."""
    per_position = (batch_size * 2 * num_layers * num_key_value_heads * (d_model // num_heads)
                    * bytes_per_number)
    if window * per_position <= memory_bytes:
        return math.inf
    return int(memory_bytes // per_position)


# --- Wrong answers that learners write ---------------------------------------------------------


def _rope_variant(layout="neighbours", direction=1, exponent_factor=2.0, pair_shift=0,
                  own_positions=False, halves_angles=False):
    def wrong(x, positions, base):
        x = np.asarray(x, dtype=np.float64)
        half = x.shape[-1] // 2
        frequencies = float(base) ** (-exponent_factor * (np.arange(half) + pair_shift)
                                      / x.shape[-1])
        where = np.arange(x.shape[-2]) if own_positions else np.asarray(positions)
        angles = direction * where.astype(np.float64)[..., None] * frequencies
        if halves_angles:                    # angle j of the halves layout given to feature j
            angles = np.concatenate([angles, angles], axis=-1)
            turned = np.stack([-x[..., 1::2], x[..., 0::2]], axis=-1).reshape(x.shape)
            return x * np.cos(angles) + turned * np.sin(angles)
        if layout == "halves":
            first, second = x[..., :half], x[..., half:]
        else:                                                # neighbours (2i, 2i + 1)
            first, second = x[..., 0::2], x[..., 1::2]
        turned_first = first * np.cos(angles) - second * np.sin(angles)
        turned_second = second * np.cos(angles) + first * np.sin(angles)
        if layout == "halves":
            return np.concatenate([turned_first, turned_second], axis=-1)
        return np.stack([turned_first, turned_second], axis=-1).reshape(x.shape)

    return wrong


def _gqa_variant(grouping="repeat", scale="head", causal="lower", bias="all", softmax_axis=-1,
                 masked_score=None):
    def wrong(query, value, query_kernel, query_bias, key_kernel, key_bias, value_kernel,
              value_bias, output_kernel, output_bias, use_causal_mask):
        query = np.asarray(query, dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        head_dim = query_kernel.shape[-1]
        query_heads, kv_heads = query_kernel.shape[1], key_kernel.shape[1]
        group = query_heads // kv_heads
        on = 1.0 if bias in ("all", "input projections") else 0.0
        out_on = 1.0 if bias == "all" else 0.0
        queries = np.einsum("btd,dhk->bthk", query, query_kernel) + on * query_bias
        keys = np.einsum("btd,dhk->bthk", value, key_kernel) + on * key_bias
        values = np.einsum("btd,dhk->bthk", value, value_kernel) + on * value_bias
        if grouping == "repeat":
            keys, values = np.repeat(keys, group, axis=2), np.repeat(values, group, axis=2)
        else:                                 # query head h reads key head h mod H_kv
            keys, values = np.tile(keys, (1, 1, group, 1)), np.tile(values, (1, 1, group, 1))
        divisor = {"head": np.sqrt(head_dim), "model": np.sqrt(query.shape[-1]),
                   "none": 1.0}[scale]
        scores = np.einsum("bqhk,bshk->bhqs", queries, keys) / divisor
        mask = None
        if use_causal_mask and causal != "none":
            rows, columns = np.arange(query.shape[1])[:, None], np.arange(value.shape[1])
            if causal == "last keys":        # the queries lined up with the last Tq keys
                rows = rows + value.shape[1] - query.shape[1]
            mask = columns >= rows if causal == "upper" else columns <= rows
        if mask is not None and masked_score is not None:   # masked scores replaced, kept
            scores, mask = np.where(mask, scores, masked_score), None
        weights = softmax(scores, mask=mask, axis=softmax_axis)
        heads = np.einsum("bhqs,bshk->bqhk", weights, values)
        return np.einsum("bqhk,hkd->bqd", heads, output_kernel) + out_on * output_bias, weights

    return wrong


def _window_variant(extra=0, use_offset=True, causal=True, windowed=True, offset_keys=False,
                    sees_itself=True, at_last_keys=False):
    def wrong(query_length, key_length, window, offset):
        shift = offset if use_offset else 0
        if at_last_keys:
            shift = key_length - query_length
        positions = shift + np.arange(query_length)[:, None]
        keys = np.arange(key_length)[None, :] + (offset if offset_keys else 0)
        if offset_keys:
            positions = np.arange(query_length)[:, None]
        visible = keys <= positions if causal else np.ones_like(keys <= positions)
        if not sees_itself:                  # the window keys strictly before the query
            return (keys < positions) & (positions - keys <= window)
        if windowed:
            distance = positions - keys if causal else np.abs(positions - keys)
            visible = visible & (distance < window + extra)
        return visible

    return wrong


def _context_variant(keys_and_values=2, heads="kv", batched=True, unit="bytes", window="ring",
                     count="whole", fits="at most"):
    def wrong(memory_bytes, num_layers, d_model, num_heads, num_key_value_heads, window_size,
              bytes_per_number, batch_size):
        cached_heads = num_key_value_heads if heads == "kv" else num_heads
        size = bytes_per_number * (8 if unit == "bits" else 1)
        per_position = ((batch_size if batched else 1) * keys_and_values * num_layers
                        * cached_heads * (d_model // num_heads) * size)
        budget = memory_bytes if fits == "at most" else memory_bytes - 1  # "fits": strictly below
        if window != "ignored" and window_size * per_position <= budget:
            return window_size if window == "caps the context" else math.inf
        positions = budget // per_position
        return {"whole": positions, "first that does not fit": positions + 1,
                "rounded up": -(-budget // per_position),
                "fraction": budget / per_position}[count]

    return wrong


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def rope_cases(rng):
    """Four inputs. First the offset probe: ``x (2, T, 8)`` holds one query repeated in row 0
    and one key repeated in row 1, the key always a fixed offset after the query, at positions
    up to 700. Then ``(T, d)`` with positions ``(T,)``; ``(B, T, d)`` with per-sequence positions
    ``(B, T)``; and ``(B, H, T, d)`` with positions ``(B, 1, T)``: depths 6, 10 and 4, positions
    that do not start at 0 and are not in order, bases 10000, 100, 30 and 500."""
    length, offset = 6, int(rng.integers(3, 10))
    starts = rng.permutation(np.arange(0, 700))[:length]
    query, key = rng.normal(size=(2, 1, 8))
    cases = [{"x": np.stack([np.repeat(query, length, axis=0), np.repeat(key, length, axis=0)]),
              "positions": np.stack([starts, starts + offset]).astype(np.int64),
              "base": 10000.0}]
    for shape, positions_shape, base in (((5, 6), (5,), 100.0), ((2, 4, 10), (2, 4), 30.0),
                                         ((2, 3, 5, 4), (2, 1, 5), 500.0)):
        positions = rng.permutation(np.arange(2, 60))[:np.prod(positions_shape)]
        cases.append({"x": rng.normal(size=shape),
                      "positions": positions.reshape(positions_shape).astype(np.int64),
                      "base": base})
    return cases


def gqa_cases(rng):
    """Four layers: 4 query heads on 2 key/value heads, causal self-attention; 6 on 3 over 7
    keys for 4 queries (not causal: cross-attention); multi-query (4 on 1), causal; and
    multi-head (2 on 2), causal, 4 queries over 6 keys (Keras's causal mask starts both at the
    first position). Head depth 3, model depth 8 or 6, so a wrong reshape shows; random
    biases, so a forgotten one shows."""
    cases = []
    for batch, query_length, key_length, depth, query_heads, kv_heads, causal in (
            (2, 5, 5, 8, 4, 2, True), (1, 4, 7, 6, 6, 3, False), (2, 5, 5, 8, 4, 1, True),
            (1, 4, 6, 6, 2, 2, True)):
        head_dim = 3
        query = rng.normal(size=(batch, query_length, depth))
        value = query if key_length == query_length else rng.normal(
            size=(batch, key_length, depth))
        cases.append({
            "query": query, "value": np.array(value),
            "query_kernel": rng.normal(scale=0.8, size=(depth, query_heads, head_dim)),
            "query_bias": rng.normal(size=(query_heads, head_dim)),
            "key_kernel": rng.normal(scale=0.8, size=(depth, kv_heads, head_dim)),
            "key_bias": rng.normal(size=(kv_heads, head_dim)),
            "value_kernel": rng.normal(scale=0.8, size=(depth, kv_heads, head_dim)),
            "value_bias": rng.normal(size=(kv_heads, head_dim)),
            "output_kernel": rng.normal(scale=0.6, size=(query_heads, head_dim, depth)),
            "output_bias": rng.normal(size=(depth,)),
            "use_causal_mask": causal})
    return cases


def window_cases(rng):
    """A prompt (offset 0), one step deep into a cache (offset past the window) and a chunk
    of three queries at an offset, with windows 3 to 5 shorter than the keys."""
    cases = [{"query_length": 6, "key_length": 6, "window": 3, "offset": 0},
             {"query_length": 1, "key_length": 12, "window": int(rng.integers(3, 6)),
              "offset": int(rng.integers(7, 11))},
             {"query_length": 3, "key_length": 10, "window": 4,
              "offset": int(rng.integers(4, 7))}]
    return cases


def context_cases(rng):
    """Six budgets, each model's sizes different, so that each factor shows: a 32-layer,
    d_model 4,096 model with 8 key/value heads, full attention, tens of GB that are not a whole
    number of positions; a small model, a batch of 3, on exactly k positions; three windows,
    whose ring fits with room to spare, fits exactly, or does not fit (a batch of 2 to 4); and a
    budget smaller than one position."""
    def case(memory_bytes, layers, d_model, heads, kv_heads, window, size, batch):
        return {"memory_bytes": int(memory_bytes), "num_layers": layers, "d_model": d_model,
                "num_heads": heads, "num_key_value_heads": kv_heads, "window": window,
                "bytes_per_number": size, "batch_size": batch}

    def per_position(layers, d_model, heads, kv_heads, size, batch):
        return batch * 2 * layers * kv_heads * (d_model // heads) * size

    llama = int(rng.integers(20, 80)) * 10**9 + int(rng.integers(1, 10**5))
    llama += llama % per_position(32, 4096, 32, 8, 2, 1) == 0         # not a whole number
    small_layers = int(rng.integers(2, 9))
    small = per_position(small_layers, 512, 8, 2, 4, 3) * int(rng.integers(1000, 5000))
    roomy_window, exact_window = int(rng.integers(500, 2000)), int(rng.integers(100, 400))
    roomy = per_position(4, 256, 8, 1, 2, 2) * roomy_window
    exact = per_position(6, 384, 6, 3, 4, 1) * exact_window
    layers, batch = int(rng.integers(8, 25)), int(rng.integers(2, 5))
    short = per_position(layers, 1024, 16, 4, 2, batch)
    return [case(llama, 32, 4096, 32, 8, math.inf, 2, 1),
            case(small, small_layers, 512, 8, 2, math.inf, 4, 3),
            case(roomy + int(rng.integers(1, roomy)), 4, 256, 8, 1, roomy_window, 2, 2),
            case(exact, 6, 384, 6, 3, exact_window, 4, 1),
            case(short * int(rng.integers(100, 4000)) + int(rng.integers(1, short)), layers, 1024,
                 16, 4, 4096, 2, batch),
            case(int(rng.integers(1, per_position(2, 64, 4, 4, 4, 1))), 2, 64, 4, 4, math.inf, 4,
                 1)]


# --- Diagnoses read from the outputs ----------------------------------------------------------


def _keeps_lengths(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """A rotation keeps every pair's length."""
    values = mine["rotated"]
    x = np.asarray(case["x"], dtype=np.float64)
    if values.shape != x.shape:
        return None
    if np.allclose(np.linalg.norm(values, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-6):
        return None
    return ("Your rotated vectors do not have the lengths of the inputs: a rotation changes "
            "directions, never lengths. Hint: each pair must be multiplied by the cosine and "
            "the sine of one and the same angle.")


def _is_offset_probe(case: Case) -> bool:
    """The first case of :func:`rope_cases`: one query in row 0, one key in row 1, the key's
    positions a fixed offset after the query's."""
    x, positions = np.asarray(case["x"]), np.asarray(case["positions"])
    return (x.ndim == 3 and x.shape[0] == 2 and positions.shape == x.shape[:2]
            and np.all(x == x[:, :1]) and np.ptp(positions[1] - positions[0]) == 0)


def _scores_depend_on_the_offset_only(case: Case, mine: NamedOutputs,
                                      expected: NamedOutputs) -> str | None:
    """RoPE's point: the score of a rotated query and a rotated key depends on the offset
    between their positions, not on where the pair sits."""
    if not _is_offset_probe(case) or mine["rotated"].shape != np.shape(case["x"]):
        return None
    scores = np.sum(mine["rotated"][0] * mine["rotated"][1], axis=-1)        # one per place
    if np.ptp(scores) <= 1e-6 * max(1.0, float(np.max(np.abs(scores)))):
        return None
    return ("The score of your rotated query and key changes with where the pair sits, though "
            "the key is always the same offset after the query: RoPE's scores depend on that "
            "offset only. Hint: both features of a pair must turn by one angle, linear in the "
            "position, so that two rotations compose into the rotation by their difference.")


def _queries_see_themselves(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Under the causal mask, query i attends to key i (its own position) too."""
    if not case["use_causal_mask"]:
        return None
    weights, right = mine["weights"], expected["weights"]
    if weights.shape != right.shape:
        return None
    own = np.arange(1, min(weights.shape[-2:]))            # row 0 may hold a fully masked row
    if np.all(np.abs(weights[..., own, own]) < 1e-9) and np.all(right[..., own, own] > 0):
        return ("Under your causal mask no query sees its own key: query i may see keys "
                "j ≤ i, itself included. Hint: look at the diagonal of your mask.")
    return None


def _fits_and_is_the_longest(case: Case, mine: NamedOutputs,
                             expected: NamedOutputs) -> str | None:
    """The answer is a whole number of tokens whose cache fits, and one more token does not."""
    tokens, right = float(np.asarray(mine["tokens"]).flat[0]), float(expected["tokens"])
    if not np.isfinite(tokens) or np.asarray(mine["tokens"]).size != 1:
        return None                      # infinity where it should not be is said before
    where = f"(with {describe_case(case)})"
    if tokens != round(tokens):
        return (f"Your answer, {tokens:g} tokens, is not a whole number {where}: a context holds "
                f"whole positions. Hint: how many whole positions fit in the budget?")
    if right == math.inf:
        return (f"With this window every length fits {where}: the cache stops growing at window "
                f"positions, and that many fit. Hint: the contract's answer is then math.inf.")
    if tokens > right:
        return (f"The cache of a context of your answer's length does not fit in memory_bytes "
                f"{where}. Hint: add up what one cached position costs, for every sequence of "
                f"the batch.")
    return (f"A context one token longer than your answer still fits in memory_bytes {where}. "
            f"Hint: add up what one cached position costs; the answer is the longest length "
            f"whose cache is at most the budget.")


# --- The exercises ----------------------------------------------------------------------------

APPLY_ROPE = Exercise(
    exercise_id="10.1",
    function_name="apply_rope",
    make_cases=rope_cases,
    reference=apply_rope,
    outputs=("rotated",),
    mistakes=(
        Mistake(_rope_variant(layout="halves"),
                "You paired feature i with feature i + d/2, the lesson's layout (keras_hub's, "
                "GPT-NeoX's); this exercise pairs neighbours, features 2i and 2i + 1, as the "
                "RoFormer paper does. Hint: which feature turns together with feature 1?"),
        Mistake(_rope_variant(halves_angles=True),
                "The two features of a pair turn by different angles: your angles are laid out "
                "for the halves layout, pair i's at features i and i + d/2. Hint: which angle "
                "do features 0 and 1 get, and which do features 2 and 3 get?"),
        Mistake(_rope_variant(direction=-1),
                "You turned each pair by minus the angle (clockwise): with the same positions "
                "and frequencies the rotation goes the other way. Hint: a positive angle turns "
                "the first feature of a pair towards the second."),
        Mistake(_rope_variant(exponent_factor=1.0),
                "Your frequencies fall off half as fast as they should: pair i turns with base "
                "to the power −2i/d. Hint: look at the exponent of your frequencies for the "
                "last pair."),
        Mistake(_rope_variant(exponent_factor=4.0),
                "Your frequencies fall off twice as fast as they should: the exponent of pair i "
                "is −2i/d, with d the whole depth and i counting pairs (0, 1, 2, …), not "
                "features. Hint: with d = 8, does your last pair (i = 3) turn with "
                "base^(−3/4)?"),
        Mistake(_rope_variant(pair_shift=1),
                "Your first pair turns slower than one radian per position: each pair turns at "
                "the frequency of the next one. Hint: with pairs counted from 0, what is the "
                "exponent of pair 0?"),
        Mistake(_rope_variant(pair_shift=-1),
                "Your first pair turns faster than one radian per position: each pair turns at "
                "the frequency of the one before (the paper counts pairs from 1 and subtracts "
                "1 in the exponent). Hint: with pairs counted from 0, what is the exponent of "
                "pair 0?"),
        Mistake(_rope_variant(own_positions=True),
                "You rotated row t by the angle of position t, not by the position it was "
                "given: the rows of a cache step sit at positions[t]. Hint: use the argument "
                "positions for the angles."),
    ),
    properties=(_keeps_lengths, _scores_depend_on_the_offset_only),
    shape_hints={"rotated": "the shape of x"},
    error_hint="x is (..., T, d) with the rows along its second-to-last axis; positions has the "
               "shape of x's axes before the last, or one that broadcasts to it, and the angles "
               "have one more axis, of d/2 pairs.",
    hint="features 2i and 2i + 1 form pair i; its angle is the row's position times "
         "base^(−2i/d); rotate the pair by it.",
)

GROUPED_QUERY_ATTENTION = Exercise(
    exercise_id="10.2",
    function_name="grouped_query_attention",
    make_cases=gqa_cases,
    reference=grouped_query_attention,
    outputs=("output", "weights"),
    mistakes=(
        Mistake(_gqa_variant(grouping="tile"),
                "Your query heads are grouped the wrong way: query head h reads key head h mod "
                "H_kv, but Keras's groups are runs of neighbouring heads. Hint: which key head "
                "do query heads 0 and 1 share?"),
        Mistake(_gqa_variant(scale="model"),
                "You scaled the scores by 1/√D, the model depth; each head's scores are scaled "
                "by the square root of its own depth. Hint: look at the last axis of the "
                "kernels."),
        Mistake(_gqa_variant(scale="none"),
                "Your scores are missing the 1/√(head depth) scaling. Hint: divide the query-key "
                "dot products by the square root of the head depth."),
        Mistake(_gqa_variant(causal="upper"),
                "Your causal mask has the wrong polarity: each query sees itself and the "
                "future, not the past (True means attend). Hint: query i may see keys j ≤ i."),
        Mistake(_gqa_variant(causal="none"),
                "With use_causal_mask your queries still see later keys. Hint: mask the keys "
                "after each query's own position before the softmax."),
        Mistake(_gqa_variant(causal="last keys"),
                "With more keys than queries, your causal mask lines the queries up with the "
                "last keys; Keras's lets query i see keys j ≤ i, counting both from the first. "
                "Hint: with 4 queries and 6 keys, which keys may query 0 see?"),
        Mistake(_gqa_variant(masked_score=0.0),
                "Your masked keys still get attention: a masked score set to 0 still counts in "
                "the softmax, since exp(0) = 1. Hint: which score gives a key a weight of "
                "exactly 0?"),
        Mistake(_gqa_variant(bias="none"),
                "You left out the biases of the projections. Hint: each projection adds its "
                "bias, the output projection too."),
        Mistake(_gqa_variant(bias="input projections"),
                "You left out the bias of the output projection. Hint: the last step, back to "
                "D, adds output_bias."),
        Mistake(_gqa_variant(softmax_axis=-2),
                "Your attention weights sum to 1 over the queries, not over the keys. Hint: "
                "which axis of the scores holds the keys?"),
    ),
    properties=(_queries_see_themselves, sums_to_one("weights", over="the keys")),
    shape_hints={"output": "(B, Tq, D)", "weights": "(B, H_q, Tq, Tk), one map per query head"},
    error_hint="query_kernel is (D, H_q, hd), key_kernel (D, H_kv, hd): H_q / H_kv query heads "
               "share each key/value head.",
    hint="project, give each query head its group's keys and values, scale, mask, softmax "
         "over the keys, weight the values, project the heads back to D.",
)

CAUSAL_WINDOW_MASK = Exercise(
    exercise_id="10.3",
    function_name="causal_window_mask",
    make_cases=window_cases,
    reference=causal_window_mask,
    outputs=("mask",),
    mistakes=(
        Mistake(_window_variant(extra=1),
                "Each query sees window + 1 keys: itself and window before it. Hint: the window "
                "counts the query's own key."),
        Mistake(_window_variant(extra=-1),
                "Each query sees window − 1 keys. Hint: the window is itself and the window − 1 "
                "keys before it."),
        Mistake(_window_variant(use_offset=False),
                "Your mask ignores the offset: query i sits at position offset + i, deep in the "
                "cache. Hint: compare the keys with the queries' positions, not their rows."),
        Mistake(_window_variant(offset_keys=True),
                "You shifted the keys by the offset instead of the queries: the keys are the "
                "cache's slots 0 … Tk − 1, the queries sit at offset + i. Hint: which of the "
                "two is the new block of tokens?"),
        Mistake(_window_variant(sees_itself=False),
                "Your queries do not see their own key: each sees the window keys before it. "
                "Hint: the window counts the query's own position, key j = offset + i."),
        Mistake(_window_variant(at_last_keys=True),
                "You placed the queries at the last key positions, Tk − Tq + i, not at offset "
                "+ i: a cache can hold slots past the block's position. Hint: use the argument "
                "offset for the queries' positions."),
        Mistake(_window_variant(causal=False),
                "Your window is a band on both sides: queries see keys after their own "
                "position. Hint: a decoder's window only looks back."),
        Mistake(_window_variant(windowed=False),
                "Your mask is causal but has no window: queries see every earlier key. Hint: "
                "keys more than window − 1 positions back are masked too."),
    ),
    shape_hints={"mask": "(query_length, key_length)"},
    hint="query i is at position offset + i; key j is visible when it is at most that position "
         "and less than window positions before it.",
    rtol=0.0,
    atol=0.0,
)

LONGEST_CONTEXT = Exercise(
    exercise_id="10.4",
    function_name="longest_context",
    make_cases=context_cases,
    reference=longest_context,
    outputs=("tokens",),
    mistakes=(
        Mistake(_context_variant(keys_and_values=1),
                "Your contexts are twice too long: you cached the keys only, but every position "
                "keeps a key and a value in each layer and head. Hint: count what one layer "
                "stores per cached position."),
        Mistake(_context_variant(heads="query"),
                "You cached all num_heads heads: under grouped-query attention only the "
                "key/value heads have keys and values to cache. Hint: how many heads do the "
                "keys have, and how deep is each?"),
        Mistake(_context_variant(batched=False),
                "You sized the cache of one sequence: each of the batch_size sequences keeps "
                "its own keys and values. Hint: what does one cached position cost for the "
                "whole batch?"),
        Mistake(_context_variant(unit="bits"),
                "You counted bits, not bytes: bytes_per_number and memory_bytes are both in "
                "bytes. Hint: no factor 8."),
        Mistake(_context_variant(count="first that does not fit"),
                "Your answer is the first length that does not fit: its cache is over the "
                "budget. Hint: the answer is the longest context whose cache still fits."),
        Mistake(_context_variant(count="rounded up"),
                "You rounded the number of positions up: the last, partial position does not "
                "fit. Hint: a position is cached whole or not at all."),
        Mistake(_context_variant(fits="strictly below"),
                "Your answer misses a cache that fills the budget exactly: a cache of exactly "
                "memory_bytes fits. Hint: fitting means at most the budget, not less than it."),
        Mistake(_context_variant(count="fraction"),
                "Your answer is not a whole number of tokens: a context holds whole positions. "
                "Hint: how many whole positions fit in the budget?"),
        Mistake(_context_variant(window="ignored"),
                "Your answer ignores the window: with a sliding window the cache stops growing "
                "at window positions, so once they fit, every length fits. Hint: compare the "
                "budget with the cache of a full ring of window slots."),
        Mistake(_context_variant(window="caps the context"),
                "You returned the window as the longest context: the window caps the cache, not "
                "the text, which can then grow without end. Hint: what does the contract return "
                "when every length fits?"),
    ),
    properties=(_fits_and_is_the_longest,),
    shape_hints={"tokens": "one number: an int, or math.inf"},
    nan_hint="math.inf is the answer only when there is a window and the cache of its window "
             "positions fits in memory_bytes; with window = math.inf (full attention) the cache "
             "grows with every token.",
    hint="one cached position costs keys and values, in every layer, for each key/value head "
         "of d_model / num_heads numbers, for each sequence of the batch; the answer is the "
         "longest length whose cache is at most memory_bytes.",
    rtol=0.0,
    atol=0.0,
)

EXERCISES = (APPLY_ROPE, GROUPED_QUERY_ATTENTION, CAUSAL_WINDOW_MASK, LONGEST_CONTEXT)
