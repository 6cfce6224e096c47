"""Exercises of lesson 10, positions and heads for long contexts
(``solutions/10_long_context_attention.ipynb``).

10.1 ``apply_rope``  10.2 ``grouped_query_attention`` (build)  10.3 ``causal_window_mask``
10.4 ``long_context_cache_bytes``. All in NumPy, so a graded kernel never imports TensorFlow;
the tests prove the references equal keras_hub's ``RotaryEmbedding``, Keras's
``GroupQueryAttention`` and ``MultiHeadAttention(sliding_window=w)``, and the library's
``kv_cache_bytes``.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def apply_rope(x, positions, max_wavelength):
    """Rotary position embedding of ``x (..., T, d)``, the token at row ``t`` sitting at
    ``positions[t]``: feature ``i`` and feature ``i + d/2`` turn together by the angle
    ``positions[t] · max_wavelength^(−2i/d)``, ``i = 0 … d/2 − 1``."""
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[-1] // 2
    frequencies = float(max_wavelength) ** (-2.0 * np.arange(half) / x.shape[-1])   # (d/2,)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * frequencies        # (T, d/2)
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * np.cos(angles) - second * np.sin(angles),
                           second * np.cos(angles) + first * np.sin(angles)], axis=-1)


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


def long_context_cache_bytes(num_layers, d_model, num_heads, num_key_value_heads, lengths,
                             window, bytes_per_number):
    """Bytes of one sequence's key/value cache at each length: keys and values (2) of every
    layer, for ``min(length, window)`` positions, ``num_key_value_heads`` heads of
    ``d_model / num_heads`` numbers each."""
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), window)
    per_position = 2 * num_layers * num_key_value_heads * (d_model // num_heads)
    return lengths * per_position * bytes_per_number


# --- Wrong answers that learners write ---------------------------------------------------------


def _rope_variant(layout="halves", direction=1, exponent_factor=2.0, own_positions=False):
    def wrong(x, positions, max_wavelength):
        x = np.asarray(x, dtype=np.float64)
        half = x.shape[-1] // 2
        frequencies = float(max_wavelength) ** (-exponent_factor * np.arange(half)
                                                / x.shape[-1])
        where = np.arange(len(positions)) if own_positions else np.asarray(positions)
        angles = direction * where.astype(np.float64)[:, None] * frequencies
        if layout == "halves":
            first, second = x[..., :half], x[..., half:]
        else:                                                # neighbours (2i, 2i + 1)
            first, second = x[..., 0::2], x[..., 1::2]
        turned_first = first * np.cos(angles) - second * np.sin(angles)
        turned_second = second * np.cos(angles) + first * np.sin(angles)
        if layout == "halves":
            return np.concatenate([turned_first, turned_second], axis=-1)
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = turned_first, turned_second
        return out

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


def _cache_variant(heads="kv", windowed=True, keys_and_values=2, kept="min", extra_slots=0,
                   unit="bytes"):
    def wrong(num_layers, d_model, num_heads, num_key_value_heads, lengths, window,
              bytes_per_number):
        lengths = np.asarray(lengths, dtype=np.int64)
        if windowed:
            cap = np.minimum if kept == "min" else np.maximum
            lengths = cap(lengths, window + extra_slots)
        bytes_per_number = {"bytes": bytes_per_number, "numbers": 1,
                            "bits": 8 * bytes_per_number}[unit]
        cached_heads = num_key_value_heads if heads == "kv" else num_heads
        return lengths * keys_and_values * num_layers * cached_heads * (d_model // num_heads) \
            * bytes_per_number

    return wrong


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def rope_cases(rng):
    """Three inputs: ``(T, d)``, ``(B, T, d)`` and ``(B, T, H, d)``-like ``(B, H, T, d)``,
    depths 8, 6 and 10, positions that do not start at 0 and are not in order, wavelengths
    10000, 100 and 30."""
    cases = []
    for shape, wavelength in (((5, 8), 10000.0), ((2, 6, 6), 100.0), ((2, 3, 4, 10), 30.0)):
        positions = rng.permutation(np.arange(2, 40))[:shape[-2]]
        cases.append({"x": rng.normal(size=shape), "positions": positions.astype(np.int64),
                      "max_wavelength": wavelength})
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


def cache_cases(rng):
    """Models whose layers, width, heads and key/value heads differ (so each factor shows),
    the 32-layer model of the published figures among them, with a window shorter than some
    lengths, and one without a window (a window longer than every length)."""
    cases = []
    for layers, d_model, heads, kv_heads, window, size in (
            (32, 4096, 32, 8, 40_000, 2), (4, 128, 4, 1, 64, 4),
            (int(rng.integers(2, 9)), 512, 8, 2, int(rng.integers(100, 900)), 2)):
        lengths = np.sort(rng.choice(np.arange(16, 32_769), size=3, replace=False))
        cases.append({"num_layers": layers, "d_model": d_model, "num_heads": heads,
                      "num_key_value_heads": kv_heads, "lengths": lengths.astype(np.int64),
                      "window": window, "bytes_per_number": size})
    return cases


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


# --- The exercises ----------------------------------------------------------------------------

APPLY_ROPE = Exercise(
    exercise_id="10.1",
    function_name="apply_rope",
    make_cases=rope_cases,
    reference=apply_rope,
    outputs=("rotated",),
    mistakes=(
        Mistake(_rope_variant(layout="neighbours"),
                "You turned neighbouring features (0, 1), (2, 3), … together; this layout "
                "(keras_hub's, GPT-NeoX's) pairs feature i with feature i + d/2. Hint: cut the "
                "last axis into two halves, not into even and odd features."),
        Mistake(_rope_variant(direction=-1),
                "You turned each pair by minus the angle (clockwise): with the same positions "
                "and frequencies the rotation goes the other way. Hint: a positive angle turns "
                "the first feature of a pair towards the second."),
        Mistake(_rope_variant(exponent_factor=1.0),
                "Your frequencies fall off half as fast as they should: pair i turns with "
                "max_wavelength to the power −2i/d. Hint: look at the exponent of your "
                "frequencies for the last pair."),
        Mistake(_rope_variant(exponent_factor=4.0),
                "Your frequencies fall off twice as fast as they should: the exponent of pair i "
                "is −2i/d, with d the whole depth and i counting pairs (0, 1, 2, …). Hint: "
                "with d = 8, does your last pair (i = 3) turn with max_wavelength^(−3/4)?"),
        Mistake(_rope_variant(own_positions=True),
                "You rotated row t by the angle of position t, not by the position it was "
                "given: the rows of a cache step sit at positions[t]. Hint: use the argument "
                "positions for the angles."),
    ),
    properties=(_keeps_lengths,),
    shape_hints={"rotated": "the shape of x"},
    error_hint="x is (..., T, d) with the positions along its second-to-last axis; the angles "
               "are (T, d/2).",
    hint="for each pair (i, i + d/2), the angle is the position times max_wavelength^(−2i/d); "
         "rotate the pair by it.",
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

LONG_CONTEXT_CACHE_BYTES = Exercise(
    exercise_id="10.4",
    function_name="long_context_cache_bytes",
    make_cases=cache_cases,
    reference=long_context_cache_bytes,
    outputs=("bytes",),
    mistakes=(
        Mistake(_cache_variant(heads="query"),
                "You counted d_model numbers per position and layer, as for multi-head "
                "attention: only the key/value heads have keys and values to cache. Hint: how "
                "many heads do the keys have under grouped-query attention, and how deep is "
                "each?"),
        Mistake(_cache_variant(windowed=False),
                "You kept every position: with a sliding window the cache never holds more "
                "than window positions. Hint: cap each length at the window."),
        Mistake(_cache_variant(keys_and_values=1),
                "You counted the keys only: the cache holds a key and a value per position, "
                "head and layer. Hint: there is a factor 2."),
        Mistake(_cache_variant(unit="numbers"),
                "You counted numbers, not bytes. Hint: each number takes bytes_per_number "
                "bytes."),
        Mistake(_cache_variant(unit="bits"),
                "You counted bits, not bytes: bytes_per_number is already in bytes. Hint: no "
                "factor 8."),
        Mistake(_cache_variant(extra_slots=1),
                "Your cache keeps window + 1 positions: a query sees itself and the window − 1 "
                "before it, so the ring buffer needs window slots. Hint: cap each length at "
                "the window itself."),
        Mistake(_cache_variant(kept="max"),
                "Your cache holds the larger of the length and the window: a short sequence "
                "cannot fill the window, and a long one is capped by it. Hint: which of the two "
                "bounds the positions kept?"),
    ),
    shape_hints={"bytes": "one number per length: the shape of lengths"},
    hint="per position: keys and values, every layer, the key/value heads of d_model / "
         "num_heads numbers; times min(length, window) and the bytes per number.",
    rtol=0.0,
    atol=0.0,
)

EXERCISES = (APPLY_ROPE, GROUPED_QUERY_ATTENTION, CAUSAL_WINDOW_MASK, LONG_CONTEXT_CACHE_BYTES)
