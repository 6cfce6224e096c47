"""Exercises of lesson 07, multi-head attention (``solutions/07_multi_head_attention.ipynb``).

07.1 ``split_heads``  07.2 ``merge_heads``  07.3 ``multi_head_attention``
07.4 ``attention_parameter_count``. All in NumPy, so a graded kernel never imports TensorFlow.

Conventions (those of ``keras.layers.MultiHeadAttention``): head ``h`` owns the contiguous
features ``h * key_dim … (h + 1) * key_dim − 1``; kernels are stored ``(d, H, key_dim)`` (query,
key), ``(d, H, value_dim)`` (value) and ``(H, value_dim, d_out)`` (output); queries are scaled by
``1 / sqrt(key_dim)``; masks are boolean, True = attend.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def split_heads(x, num_heads):
    """``(..., T, d) → (..., H, T, d / H)``: token ``t``'s features ``h·k … h·k + k − 1`` go
    to head ``h``, for any number of leading axes."""
    x = np.asarray(x)
    *leading, length, depth = x.shape
    return np.swapaxes(x.reshape(*leading, length, num_heads, depth // num_heads), -2, -3)


def merge_heads(x):
    """``(..., H, T, k) → (..., T, H·k)``, the inverse of :func:`split_heads`."""
    x = np.asarray(x)
    *leading, heads, length, depth = x.shape
    return np.swapaxes(x, -2, -3).reshape(*leading, length, heads * depth)


def multi_head_attention(query, value, query_kernel, key_kernel, value_kernel, output_kernel,
                         mask):
    """Multi-head attention of ``query`` over ``value`` (keys = values' inputs), no biases, as
    ``keras.layers.MultiHeadAttention`` computes it: ``(output (B, Tq, d_out),
    weights (B, H, Tq, Tv))``."""
    key_dim = np.shape(query_kernel)[-1]
    queries = np.einsum("bqd,dhk->bhqk", query, query_kernel) / np.sqrt(key_dim)
    keys = np.einsum("bvd,dhk->bhvk", value, key_kernel)
    values = np.einsum("bvd,dhk->bhvk", value, value_kernel)
    scores = queries @ np.swapaxes(keys, -1, -2)  # (B, H, Tq, Tv)
    weights = softmax(scores, mask=np.asarray(mask, dtype=bool)[..., None, :, :])
    heads = weights @ values  # (B, H, Tq, value_dim)
    return np.einsum("bhqv,hvo->bqo", heads, output_kernel), weights


def attention_parameter_count(d_model, num_heads, key_dim, value_dim, use_bias):
    """The number of weights of ``keras.layers.MultiHeadAttention(num_heads, key_dim,
    value_dim, use_bias)`` on inputs of depth ``d_model`` (output depth ``d_model``)."""
    kernels = 2 * d_model * num_heads * key_dim + 2 * d_model * num_heads * value_dim
    biases = 2 * num_heads * key_dim + num_heads * value_dim + d_model
    return kernels + (biases if use_bias else 0)


# --- Wrong answers that learners write ---------------------------------------------------------


def _split_without_transpose(x, num_heads):
    *leading, length, depth = np.shape(x)
    return np.reshape(x, (*leading, length, num_heads, depth // num_heads))


def _split_by_direct_reshape(x, num_heads):
    *leading, length, depth = np.shape(x)
    return np.reshape(x, (*leading, num_heads, length, depth // num_heads))


def _split_interleaved(x, num_heads):
    *leading, length, depth = np.shape(x)
    return np.moveaxis(np.reshape(x, (*leading, length, depth // num_heads, num_heads)), -1, -3)


def _split_heads_first(x, num_heads):
    return np.stack(np.split(np.asarray(x), num_heads, axis=-1), axis=0)


def _split_heads_and_depth_swapped(x, num_heads):
    *leading, length, depth = np.shape(x)
    return np.swapaxes(np.reshape(x, (*leading, length, depth // num_heads, num_heads)), -2, -3)


def _merge_without_transpose(x):
    *leading, heads, length, depth = np.shape(x)
    return np.reshape(x, (*leading, length, heads * depth))


def _merge_interleaved(x):
    *leading, heads, length, depth = np.shape(x)
    return np.reshape(np.moveaxis(x, -3, -1), (*leading, length, heads * depth))


def _merge_along_tokens(x):
    *leading, heads, length, depth = np.shape(x)
    return np.reshape(x, (*leading, heads * length, depth))


def _merge_by_sum(x):
    return np.sum(x, axis=-3)


def _attention_variant(query, value, query_kernel, key_kernel, value_kernel, output_kernel, mask,
                       scale=None, use_mask=True, invert_mask=False, softmax_axis=-1,
                       merge=merge_heads, project=True):
    """The reference with one switch flipped: each wrong answer below is one flip.

    ``scale(key_dim, value_dim, d_model)`` replaces ``1 / sqrt(key_dim)``. Masked scores become
    ``-inf``, as learners write it, so a row (or column) with nothing left gives NaN.
    """
    key_dim, value_dim = np.shape(query_kernel)[-1], np.shape(value_kernel)[-1]
    factor = 1 / np.sqrt(key_dim) if scale is None else scale(key_dim, value_dim,
                                                                np.shape(query)[-1])
    queries = np.einsum("bqd,dhk->bhqk", query, query_kernel) * factor
    keys = np.einsum("bvd,dhk->bhvk", value, key_kernel)
    values = np.einsum("bvd,dhk->bhvk", value, value_kernel)
    scores = queries @ np.swapaxes(keys, -1, -2)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool)[..., None, :, :], scores.shape)
    if not use_mask:
        mask = np.ones_like(mask)
    if invert_mask:
        mask = ~mask
    kept = np.where(mask, scores, -np.inf)  # as learners write it: an empty row gives NaN
    exponentials = np.exp(kept - kept.max(axis=softmax_axis, keepdims=True))
    weights = exponentials / exponentials.sum(axis=softmax_axis, keepdims=True)
    merged = merge(weights @ values)  # (B, Tq, H * value_dim)
    if not project:
        return merged, weights
    heads, head_dim, _ = np.shape(output_kernel)
    return merged @ np.reshape(output_kernel, (heads * head_dim, -1)), weights


def _count(d_model, num_heads, key_dim, value_dim, use_bias, value_as_key=False,
           output_projection=True, output_bias=True, full_width=False, bias_always=False):
    """The reference count with one switch flipped."""
    value_dim = key_dim if value_as_key else value_dim
    query_width = d_model if full_width else key_dim
    value_width = d_model if full_width else value_dim
    total = 2 * d_model * num_heads * query_width + d_model * num_heads * value_width
    if output_projection:
        total += num_heads * value_width * d_model
    if use_bias or bias_always:
        total += 2 * num_heads * query_width + num_heads * value_width
        total += d_model if output_projection and output_bias else 0
    return total


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def split_cases(rng):
    """One sequence without a batch axis, batches with one and with two leading axes; tokens,
    heads and key_dim all different (so that a missing or wrong transpose changes the shape),
    key_dim ≥ 2 (so that an interleaved split differs from a contiguous one)."""
    return [{"x": rng.normal(size=(*leading, length, heads * depth)), "num_heads": heads}
            for leading, length, heads, depth in (((2,), 5, 3, 4), ((), 6, 4, 2),
                                                  ((2, 3), 4, 5, 2), ((3,), 4, 2, 5))]


def merge_cases(rng):
    """``(..., H, T, k)`` with one, no and two leading axes, every axis of its own length."""
    return [{"x": rng.normal(size=shape)}
            for shape in ((2, 3, 5, 4), (4, 6, 2), (2, 3, 2, 4, 5), (3, 5, 3, 2))]


def _random_mask(rng, batch, query_length, value_length):
    """``(B, Tq, Tv)`` with at least one True and one False in most rows, never an empty row."""
    mask = rng.random((batch, query_length, value_length)) < 0.6
    mask[:, :, 0] |= ~mask.any(axis=-1)
    mask[0, 0, -1] = False
    return mask


def attention_cases(rng):
    """Cross-attention with Tq ≠ Tv, query depth ≠ value depth ≠ output depth, and
    value_dim ≠ key_dim (so that each axis and each scale is told apart), under a padding mask
    on the keys and a random mask; then self-attention under a causal mask. Kernels of spread
    1/√depth keep the scores of order 1, so that a missing or wrong scale shows."""
    cases = []
    for (batch, query_length, value_length, query_depth, value_depth, heads, key_dim,
         value_dim, output_depth, mask_kind) in (
            (2, 3, 5, 6, 4, 2, 3, 2, 5, "padding"),
            (3, 4, 6, 8, 8, 4, 2, 3, 8, "random"),
            (1, 5, 5, 6, 6, 3, 2, 4, 6, "causal")):
        if mask_kind == "padding":
            lengths = rng.integers(2, value_length + 1, size=batch)
            lengths[0] = value_length - 1  # at least one padded key
            mask = (np.arange(value_length)[None, :] < lengths[:, None])[:, None, :]
        elif mask_kind == "random":
            mask = _random_mask(rng, batch, query_length, value_length)
        else:
            mask = np.tril(np.ones((1, query_length, value_length), dtype=bool))
        query = rng.normal(size=(batch, query_length, query_depth))
        value = query.copy() if mask_kind == "causal" else rng.normal(
            size=(batch, value_length, value_depth))
        cases.append({
            "query": query,
            "value": value,
            "query_kernel": rng.normal(size=(query_depth, heads, key_dim)) / np.sqrt(query_depth),
            "key_kernel": rng.normal(size=(value_depth, heads, key_dim)) / np.sqrt(value_depth),
            "value_kernel": rng.normal(size=(value_depth, heads, value_dim)) / np.sqrt(
                value_depth),
            "output_kernel": rng.normal(size=(heads, value_dim, output_depth)) / np.sqrt(
                heads * value_dim),
            "mask": mask,
        })
    return cases


def count_cases(rng):
    """The lesson's layer (key_dim = value_dim = d / H), then key_dim ≠ d / H, value_dim ≠
    key_dim, one head, and layers without biases."""
    heads = int(rng.choice([2, 4]))
    return [
        {"d_model": 32, "num_heads": 4, "key_dim": 8, "value_dim": 8, "use_bias": True},
        {"d_model": 16, "num_heads": heads, "key_dim": int(rng.integers(3, 7)),
         "value_dim": int(rng.integers(7, 10)), "use_bias": True},
        {"d_model": 12, "num_heads": 3, "key_dim": 5, "value_dim": int(rng.integers(2, 4)),
         "use_bias": False},
        {"d_model": int(rng.choice([10, 20])), "num_heads": 1, "key_dim": 7, "value_dim": 3,
         "use_bias": True},
        {"d_model": 64, "num_heads": 8, "key_dim": 8, "value_dim": 8, "use_bias": False},
    ]


# --- Diagnoses specific to these exercises ----------------------------------------------------


def _attention_mask(case: Case, weights: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(case["mask"], dtype=bool)[..., None, :, :], weights.shape)


def weights_transposed(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Right weights with queries and keys swapped (where they are square, the shape cannot
    tell)."""
    swapped, reference = np.swapaxes(mine["weights"], -1, -2), expected["weights"]
    if swapped.shape == reference.shape and np.allclose(swapped, reference, rtol=1e-4,
                                                        atol=1e-6):
        return ("Your weights are transposed: row i should hold query i's weights over the keys "
                "(summing to 1), one column per key. Hint: scores = queries @ "
                "np.swapaxes(keys, -1, -2), softmax along the last axis.")
    return None


def mask_polarity(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Zero weight exactly where the mask is True: the mask was read the other way round."""
    weights = mine["weights"]
    mask = _attention_mask(case, weights)
    mixed = np.any(mask, axis=-1) & np.any(~mask, axis=-1)
    rows, row_mask = weights[mixed], mask[mixed]
    if rows.size and np.allclose(rows[row_mask], 0) and not np.allclose(rows[~row_mask], 0):
        return ("Your mask works the other way round: your weights are zero where the mask is "
                "True. True means attend (the Keras convention). Hint: keep the scores where the "
                "mask is True: np.where(mask[:, None], scores, -np.inf).")
    return None


def masked_keys_ignored(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Weight on keys whose mask is False."""
    weights = mine["weights"]
    mask = _attention_mask(case, weights)
    if not np.allclose(weights[~mask], 0, atol=1e-6):
        return ("Your weights are not zero on the masked keys (mask False). Hint: the mask is "
                "(B, Tq, Tv) and the scores (B, H, Tq, Tv): give the mask a heads axis, "
                "mask[:, None], then np.where(mask[:, None], scores, -np.inf).")
    return None


def same_weights_in_every_head(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    """One attention pattern copied to every head: one big head, not H small ones."""
    weights = mine["weights"]
    if weights.shape[1] > 1 and np.allclose(weights, weights[:, :1]):
        return ("Your weights are the same in every head: you computed one attention over all "
                "the features and copied it. Hint: each head scores its own key_dim-wide "
                "slice: scores (B, H, Tq, Tv) = queries (B, H, Tq, k) @ keys transposed.")
    return None


# --- The exercises ------------------------------------------------------------------------------

SPLIT_HEADS = Exercise(
    exercise_id="07.1",
    function_name="split_heads",
    make_cases=split_cases,
    reference=split_heads,
    outputs=("heads",),
    mistakes=(
        Mistake(_split_without_transpose,
                "Your result has shape (..., tokens, heads, key_dim): you reshaped but did not "
                "move the heads axis in front of the tokens. Hint: after the reshape, swap "
                "axes -3 and -2 (np.swapaxes)."),
        Mistake(_split_by_direct_reshape,
                "You reshaped straight to (..., heads, tokens, key_dim): the shape is right but "
                "the numbers are not, since a reshape keeps the memory order, so each \"head\" "
                "gets pieces of several tokens. Hint: reshape to (..., T, H, d // H) first, "
                "then swap axes -3 and -2."),
        Mistake(_split_interleaved,
                "Your heads take every H-th feature (features h, h + H, h + 2H, ...) instead of "
                "a block of key_dim neighbouring features. Hint: reshape to (..., T, H, d // H), "
                "not (..., T, d // H, H); Keras's kernels (d, H, key_dim) cut d that way."),
        Mistake(_split_heads_first,
                "Your result has the heads first, shape (heads, ..., tokens, key_dim), as a "
                "list of np.split pieces becomes. Hint: stack the pieces on axis -3, "
                "np.stack(pieces, axis=-3), or reshape and swap axes -3 and -2."),
        Mistake(_split_heads_and_depth_swapped,
                "Your result has shape (..., key_dim, tokens, heads): you swapped the number of "
                "heads and key_dim in the reshape. Hint: reshape to (..., T, num_heads, "
                "d // num_heads), then swap axes -3 and -2."),
    ),
    shape_hints={"heads": "(..., heads, tokens, d / heads)"},
    error_hint="each head gets d // num_heads features, and x may have any number of leading "
               "axes (none, one, several): reshape to x.shape[:-1] + (num_heads, d // num_heads) "
               "and swap axes -3 and -2 instead of transpose(0, 2, 1, 3).",
    hint="print split[0, h, t] beside x[0, t] for a small x (np.arange) and check that head h "
         "holds features h*k to h*k + k - 1 of token t.",
)

MERGE_HEADS = Exercise(
    exercise_id="07.2",
    function_name="merge_heads",
    make_cases=merge_cases,
    reference=merge_heads,
    outputs=("merged",),
    mistakes=(
        Mistake(_merge_without_transpose,
                "You reshaped (..., H, T, k) straight to (..., T, H·k): the shape is right but a "
                "reshape keeps the memory order, so each token gets pieces of other tokens. "
                "Hint: swap axes -3 and -2 first, then reshape."),
        Mistake(_merge_interleaved,
                "Your output interleaves the heads (feature j of every head side by side) "
                "instead of putting head h's k features in one block, h*k to h*k + k - 1. Hint: "
                "move the heads axis next to the key_dim axis, in front of it: swap axes -3 and "
                "-2, then reshape."),
        Mistake(_merge_along_tokens,
                "You stacked the heads along the tokens, shape (..., H·T, k). Each token should "
                "get the concatenation of its H head outputs: shape (..., T, H·k). Hint: swap "
                "axes -3 and -2, then reshape to (..., T, H * k)."),
        Mistake(_merge_by_sum,
                "You summed the heads (shape (..., T, k)); merging concatenates them, so that no "
                "head's output is lost: shape (..., T, H·k). Hint: swap axes -3 and -2, then "
                "reshape."),
    ),
    shape_hints={"merged": "(..., tokens, heads * key_dim)"},
    error_hint="x may have any number of leading axes: use x.shape[:-3] for them, and "
               "np.swapaxes(x, -3, -2) instead of transpose(0, 2, 1, 3).",
    hint="merge_heads(split_heads(x, H)) must give x back: try it on np.arange(24.0)."
         "reshape(2, 12).",
)

MULTI_HEAD_ATTENTION = Exercise(
    exercise_id="07.3",
    function_name="multi_head_attention",
    make_cases=attention_cases,
    reference=multi_head_attention,
    outputs=("output", "weights"),
    mistakes=(
        Mistake(lambda *args: _attention_variant(*args, scale=lambda k, v, d: 1.0),
                "Your scores are missing the 1/√key_dim scaling. Hint: multiply the queries by "
                "1 / np.sqrt(key_dim), key_dim = query_kernel.shape[-1]."),
        Mistake(lambda *args: _attention_variant(*args, scale=lambda k, v, d: 1 / np.sqrt(d)),
                "You scaled the scores by 1/√d_model (the query's depth), but each head's score "
                "is a dot product of key_dim numbers, so its spread grows like √key_dim. Hint: "
                "scale by 1 / np.sqrt(key_dim), key_dim = query_kernel.shape[-1]."),
        Mistake(lambda *args: _attention_variant(*args, scale=lambda k, v, d: 1 / np.sqrt(v)),
                "You scaled the scores by 1/√value_dim, but the scores are dot products of "
                "queries and keys. Hint: scale by 1 / np.sqrt(key_dim), key_dim = "
                "query_kernel.shape[-1]."),
        Mistake(lambda *args: _attention_variant(*args, invert_mask=True),
                "Your mask works the other way round: you attend where the mask is False. "
                "True means attend (the Keras convention). Hint: np.where(mask[:, None], "
                "scores, -np.inf) keeps the scores where the mask is True."),
        Mistake(lambda *args: _attention_variant(*args, softmax_axis=-2),
                "Your softmax runs over the queries (axis -2): each key's column sums to 1, and a "
                "masked key's column, all -inf, gives NaN. Hint: softmax along the last axis, "
                "the keys: max and sum with axis=-1, keepdims=True."),
        Mistake(lambda *args: _attention_variant(*args, use_mask=False),
                "Your weights ignore the mask. Hint: before the softmax, np.where(mask[:, None], "
                "scores, -np.inf) (the mask needs a heads axis)."),
        Mistake(lambda *args: _attention_variant(*args, merge=_merge_without_transpose),
                "Your weights are right, but you merged the heads by reshaping (B, H, Tq, k) "
                "straight to (B, Tq, H·k): each query gets pieces of other queries. Hint: swap "
                "the heads and the queries axes before the reshape (your merge_heads)."),
        Mistake(lambda *args: _attention_variant(*args, project=False),
                "Your weights are right, but you returned the merged heads without the output "
                "projection. Hint: np.einsum(\"bhqv,hvo->bqo\", heads, output_kernel)."),
    ),
    properties=(weights_transposed, mask_polarity, sums_to_one("weights", over="the keys"),
                masked_keys_ignored, same_weights_in_every_head),
    shape_hints={"output": "(batch, queries, output depth)",
                 "weights": "(batch, heads, queries, keys)"},
    error_hint="queries come from `query`, keys and values from `value` (Tv tokens of their own "
               "depth); the mask is (B, Tq, Tv) and the scores (B, H, Tq, Tv), so use "
               "mask[:, None].",
    nan_hint="the softmax runs along the last axis (the keys): along the queries, a masked key's "
             "column is all -inf and gives 0/0. Subtract the row maximum before exp().",
    hint="check each step's shape: queries (B, H, Tq, k), keys (B, H, Tv, k), values "
         "(B, H, Tv, v), weights (B, H, Tq, Tv), heads (B, H, Tq, v), output (B, Tq, d_out).",
)

ATTENTION_PARAMETER_COUNT = Exercise(
    exercise_id="07.4",
    function_name="attention_parameter_count",
    make_cases=count_cases,
    reference=attention_parameter_count,
    outputs=("parameters",),
    mistakes=(
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, full_width=True),
                "You gave every head full-width projections (d_model × d_model each). Hint: each "
                "head projects to key_dim (queries, keys) or value_dim (values) features, so a "
                "kernel is d_model × H × key_dim."),
        Mistake(lambda d, h, k, v, b: 4 * d * d + (4 * d if b else 0),
                "You used 4·d² + 4·d, which holds only when key_dim = value_dim = d_model / "
                "num_heads. Hint: key_dim and value_dim are given and need not be that; count "
                "each kernel from its shape, (d_model, H, key_dim) and so on."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, value_as_key=True),
                "You used key_dim for the values too. Hint: the value kernel is (d_model, H, "
                "value_dim) and the output kernel (H, value_dim, d_model)."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, False),
                "You left out the biases. Hint: with use_bias=True the query and key "
                "projections have one per head and feature (H × key_dim each), the value "
                "projection H × value_dim, and the output d_model."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, bias_always=True),
                "You counted the biases also when use_bias is False. Hint: without biases each "
                "projection is its kernel alone."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, output_bias=False),
                "You left out the output projection's bias. Hint: with use_bias=True it adds "
                "d_model numbers."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, output_projection=False),
                "You left out the output projection W_O. Hint: it is (H, value_dim, d_model), "
                "plus a bias of d_model numbers when use_bias is True."),
    ),
    shape_hints={"parameters": "a single number"},
    rtol=0.0,
    atol=0.5,
    hint="add up the shapes of the eight weights: query, key, value and output kernels, and "
         "their biases when use_bias is True.",
)

EXERCISES = (SPLIT_HEADS, MERGE_HEADS, MULTI_HEAD_ATTENTION, ATTENTION_PARAMETER_COUNT)
