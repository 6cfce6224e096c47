"""Exercises of lesson 07, multi-head attention (``solutions/07_multi_head_attention.ipynb``).

07.1 ``split_heads``  07.2 ``merge_heads``  07.3 ``MultiHeadAttention`` (build: a Keras layer
with its own ``copy_weights_from``)  07.4 ``attention_parameter_count``.

The references are NumPy. 07.3's check builds a ``keras.layers.MultiHeadAttention`` in the
learner's kernel, gives it the case's weights, has the learner's layer copy them with its own
``copy_weights_from``, calls it, and returns its outputs as arrays; the grader compares them with
the NumPy reference, which computes what the Keras layer does.

Conventions (those of ``keras.layers.MultiHeadAttention``): head ``h`` owns the contiguous
features ``h * key_dim … (h + 1) * key_dim − 1``; kernels are stored ``(d, H, key_dim)`` (query,
key), ``(d, H, value_dim)`` (value) and ``(H, value_dim, d_out)`` (output); queries are scaled by
``1 / sqrt(key_dim)``; masks are boolean, True = attend.
"""

import numpy as np

from course_lib.checks.build import describe_layer_call, float32, numpy_of
from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

GRADING_TIMEOUT_S = 180
"""Keras's import and the layer's check take about 20 s of one core; 180 s leaves room for a
busy machine."""

KERAS_WEIGHTS = ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel",
                 "value_bias", "output_kernel", "output_bias")
"""The weights of ``keras.layers.MultiHeadAttention``, in the order of its ``weights``."""

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


def multi_head_attention(query, value, key, query_kernel, query_bias, key_kernel, key_bias,
                         value_kernel, value_bias, output_kernel, output_bias, attention_mask,
                         use_causal_mask, key_given=True):
    """What ``keras.layers.MultiHeadAttention`` computes: ``(output (B, Tq, d_out),
    weights (B, H, Tq, Tv))``.

    Queries from ``query``, keys from ``key`` and values from ``value`` (``key`` is ``value``'s
    copy when the layer was called without one), each projected by its kernel plus its bias;
    queries scaled by ``1 / sqrt(key_dim)``; the softmax over the keys allowed by
    ``attention_mask`` (boolean ``(B, Tq, Tv)``, True = attend) AND, with ``use_causal_mask``,
    the top-left causal mask (key ``j`` allowed for query ``i`` when ``j <= i``); the heads'
    outputs merged and projected by the output kernel plus its bias.
    """
    return _attention_variant(query, value, key, query_kernel, query_bias, key_kernel, key_bias,
                              value_kernel, value_bias, output_kernel, output_bias,
                              attention_mask, use_causal_mask)


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


def _attention_variant(query, value, key, query_kernel, query_bias, key_kernel, key_bias,
                       value_kernel, value_bias, output_kernel, output_bias, attention_mask,
                       use_causal_mask, key_given=True, *, scale=None, invert_mask=False,
                       use_mask=True, use_causal=True, causal_bottom_right=False,
                       softmax_axis=-1, merge=merge_heads, biases=True, output_bias_used=True,
                       keys_from_value=False, bias_after_scale=False, mask_after_softmax=False):
    """The reference with one switch flipped: each wrong answer below is one flip.

    ``scale(key_dim, value_dim, query_depth)`` replaces ``1 / sqrt(key_dim)``. Masked scores
    get weight exactly 0, as the reference's; every query of the cases keeps at least one key.
    """
    key_dim, value_dim = np.shape(query_kernel)[-1], np.shape(value_kernel)[-1]
    factor = 1 / np.sqrt(key_dim) if scale is None else scale(key_dim, value_dim,
                                                                np.shape(query)[-1])
    bias = 1.0 if biases else 0.0
    keys_input = value if keys_from_value else key
    queries = np.einsum("bqd,dhk->bhqk", query, query_kernel)
    if bias_after_scale:
        queries = queries * factor + bias * np.asarray(query_bias)[:, None, :]
    else:
        queries = (queries + bias * np.asarray(query_bias)[:, None, :]) * factor
    keys = np.einsum("bvd,dhk->bhvk", keys_input, key_kernel) + bias * np.asarray(key_bias)[:, None]
    values = (np.einsum("bvd,dhk->bhvk", value, value_kernel)
              + bias * np.asarray(value_bias)[:, None, :])
    scores = queries @ np.swapaxes(keys, -1, -2)  # (B, H, Tq, Tv)
    query_length, value_length = scores.shape[-2:]
    mask = np.broadcast_to(np.asarray(attention_mask, dtype=bool), (len(scores), query_length,
                                                                   value_length))
    if not use_mask:
        mask = np.ones_like(mask)
    if use_causal_mask and use_causal:
        shift = value_length - query_length if causal_bottom_right else 0
        mask = mask & (np.arange(value_length)[None, :] <= np.arange(query_length)[:, None]
                       + shift)
    if invert_mask:
        mask = ~mask
    if mask_after_softmax:
        weights = softmax(scores, axis=softmax_axis) * mask[:, None]
    else:
        weights = softmax(scores, axis=softmax_axis, mask=mask[:, None])
    merged = merge(weights @ values)  # (B, Tq, H * value_dim)
    heads, head_dim, _ = np.shape(output_kernel)
    output = merged @ np.reshape(output_kernel, (heads * head_dim, -1))
    if biases and output_bias_used:
        output = output + output_bias
    return output, weights


def _count(d_model, num_heads, key_dim, value_dim, use_bias, value_as_key=False,
           output_projection=True, output_bias=True, full_width=False, bias_always=False,
           output_bias_per_head=False, biases_without_heads=False):
    """The reference count with one switch flipped."""
    value_dim = key_dim if value_as_key else value_dim
    query_width = d_model if full_width else key_dim
    value_width = d_model if full_width else value_dim
    total = 2 * d_model * num_heads * query_width + d_model * num_heads * value_width
    if output_projection:
        total += num_heads * value_width * d_model
    if use_bias or bias_always:
        heads = 1 if biases_without_heads else num_heads
        total += 2 * heads * query_width + heads * value_width
        if output_projection and output_bias:
            total += num_heads * d_model if output_bias_per_head else d_model
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
    """Cross-attention with Tq ≠ Tv, query depth ≠ value depth, value_dim ≠ key_dim (so that
    each axis and each scale is told apart), under a padding mask on the keys; a separate `key`
    (other numbers than `value`, so a layer that ignores it shows) under a random mask; a causal
    cross-attention with Tq < Tv (where Keras's top-left causal mask differs from a bottom-right
    one); and self-attention under a causal mask and padding. Kernels of spread 1/√depth keep the
    scores of order 1, so that a missing or wrong scale shows; biases are not zero, so that a
    copy without them shows. Every query keeps at least one key."""
    cases = []
    for (batch, query_length, value_length, query_depth, value_depth, key_depth, heads,
         key_dim, value_dim, mask_kind, causal) in (
            (2, 3, 5, 6, 4, None, 2, 3, 2, "padding", False),
            (3, 4, 6, 8, 5, 5, 4, 2, 3, "random", False),
            (2, 3, 5, 4, 6, None, 2, 4, 3, "padding", True),
            (2, 5, 5, 6, 6, None, 3, 2, 4, "padding", True)):
        if mask_kind == "padding":
            lengths = rng.integers(min(query_length, value_length), value_length + 1, size=batch)
            lengths[0] = value_length - 1  # at least one padded key
            mask = np.broadcast_to(np.arange(value_length)[None, :] < lengths[:, None],
                                   (query_length, batch, value_length)).transpose(1, 0, 2)
        else:
            mask = _random_mask(rng, batch, query_length, value_length)
        query = rng.normal(size=(batch, query_length, query_depth))
        self_attention = causal and query_length == value_length
        value = query.copy() if self_attention else rng.normal(
            size=(batch, value_length, value_depth))
        key = rng.normal(size=(batch, value_length, key_depth)) if key_depth else value.copy()
        key_depth = key.shape[-1]
        cases.append({
            "query": query, "value": value, "key": key,
            "query_kernel": rng.normal(size=(query_depth, heads, key_dim)) / np.sqrt(query_depth),
            "query_bias": 0.5 * rng.normal(size=(heads, key_dim)),
            "key_kernel": rng.normal(size=(key_depth, heads, key_dim)) / np.sqrt(key_depth),
            "key_bias": 0.5 * rng.normal(size=(heads, key_dim)),
            "value_kernel": rng.normal(size=(value.shape[-1], heads, value_dim)) / np.sqrt(
                value.shape[-1]),
            "value_bias": 0.5 * rng.normal(size=(heads, value_dim)),
            "output_kernel": rng.normal(size=(heads, value_dim, query_depth)) / np.sqrt(
                heads * value_dim),
            "output_bias": 0.5 * rng.normal(size=query_depth),
            "attention_mask": np.ascontiguousarray(mask), "use_causal_mask": causal,
            "key_given": key_depth != value.shape[-1] or not np.array_equal(key, value),
        })
    return cases


def invoke_multi_head_attention(layer_class, case):
    """How 07.3 runs the learner's layer, in the learner's kernel: a Keras layer gets the case's
    weights, the learner's layer copies them with its own ``copy_weights_from``, then is called
    with and without ``return_attention_scores``."""
    import keras

    heads, key_dim = np.shape(case["query_kernel"])[1:]
    value_dim = np.shape(case["value_kernel"])[-1]
    query, value = float32(case["query"]), float32(case["value"])
    key = float32(case["key"]) if case["key_given"] else None
    keras_layer = keras.layers.MultiHeadAttention(num_heads=int(heads), key_dim=int(key_dim),
                                                  value_dim=int(value_dim))
    keras_layer(query, value, key)  # builds its weights
    keras_layer.set_weights([float32(case[name]) for name in KERAS_WEIGHTS])
    ours = layer_class(num_heads=int(heads), key_dim=int(key_dim), value_dim=int(value_dim))
    ours(query, value, key)  # builds the learner's weights
    ours.copy_weights_from(keras_layer)
    options = {"key": key, "attention_mask": np.asarray(case["attention_mask"], dtype=bool),
               "use_causal_mask": bool(case["use_causal_mask"])}
    returned = ours(query, value, return_attention_scores=True, **options)
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise TypeError(f"with return_attention_scores=True your layer returned "
                        f"{type(returned).__name__}; it must return the pair (output, scores)")
    output, weights = (numpy_of(value) for value in returned)
    alone = ours(query, value, **options)
    if isinstance(alone, tuple | list):
        raise TypeError("with return_attention_scores=False your layer must return the output "
                        "alone, as Keras's does")
    if not np.allclose(numpy_of(alone), output, atol=1e-6):
        raise ValueError("your layer's output changes with return_attention_scores")
    return output, weights


def describe_multi_head_attention(case):
    """What 07.3's layer was built with and called on (its weights come from a Keras layer)."""
    heads, key_dim = np.shape(case["query_kernel"])[1:]
    value_dim = np.shape(case["value_kernel"])[-1]
    built = describe_layer_call(
        "MultiHeadAttention", {"num_heads": heads, "key_dim": key_dim, "value_dim": value_dim},
        {"query": case["query"], "value": case["value"],
         "key": case["key"] if case["key_given"] else None,
         "attention_mask": case["attention_mask"]})
    return (f"{built}, use_causal_mask={bool(case['use_causal_mask'])}, its weights copied from "
            f"a keras.layers.MultiHeadAttention")


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
    """The keys each query may see, ``(B, H, Tq, Tv)``: the attention mask AND, with
    ``use_causal_mask``, the top-left causal mask."""
    mask = np.asarray(case["attention_mask"], dtype=bool)
    if case["use_causal_mask"]:
        query_length, value_length = mask.shape[-2:]
        mask = mask & (np.arange(value_length)[None, :] <= np.arange(query_length)[:, None])
    return np.broadcast_to(mask[:, None], weights.shape)


def weights_transposed(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Right weights with queries and keys swapped (where they are square, the shape cannot
    tell)."""
    swapped, reference = np.swapaxes(mine["weights"], -1, -2), expected["weights"]
    if swapped.shape == reference.shape and np.allclose(swapped, reference, rtol=1e-4,
                                                        atol=1e-6):
        return ("Your weights are transposed: row i should hold query i's weights over the keys "
                "(summing to 1), one column per key. Hint: which axis of the scores holds the "
                "keys, and along which axis does your softmax run?")
    return None


def mask_polarity(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Zero weight exactly where the mask is True: the mask was read the other way round."""
    weights = mine["weights"]
    if weights.shape != expected["weights"].shape:
        return None
    mask = _attention_mask(case, weights)
    mixed = np.any(mask, axis=-1) & np.any(~mask, axis=-1)
    rows, row_mask = weights[mixed], mask[mixed]
    if rows.size and np.allclose(rows[row_mask], 0) and not np.allclose(rows[~row_mask], 0):
        return ("Your mask has the opposite polarity: your weights are zero where the mask is "
                "True. True means attend (the Keras convention). Hint: does your layer keep "
                "the scores where the mask is True, or hide them?")
    return None


def masked_keys_ignored(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Weight on keys whose mask is False."""
    weights = mine["weights"]
    if weights.shape != expected["weights"].shape:
        return None
    mask = _attention_mask(case, weights)
    if not np.allclose(weights[~mask], 0, atol=1e-6):
        b, h, i, j = np.argwhere(~mask & ~np.isclose(weights, 0, atol=1e-6))[0]
        what = ("after it (use_causal_mask)" if case["use_causal_mask"] and j > i
                else "masked by attention_mask")
        return (f"Your weights are not zero on the masked keys: in head {h}, query {i} of "
                f"sequence {b} gives weight to key {j}, which is {what}. Hint: the mask is "
                f"(B, Tq, Tv) and the scores (B, H, Tq, Tv): does your mask reach every head?")
    return None


def same_weights_in_every_head(case: Case, mine: NamedOutputs,
                               expected: NamedOutputs) -> str | None:
    """One attention pattern copied to every head: one big head, not H small ones."""
    weights = mine["weights"]
    if weights.ndim == 4 and weights.shape[1] > 1 and np.allclose(weights, weights[:, :1]):
        return ("Your weights are the same in every head: you computed one attention over all "
                "the features and copied it. Hint: each head scores its own key_dim-wide "
                "slice of the queries and keys.")
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
                "Your result has shape (..., tokens, heads, key_dim): the features are cut into "
                "heads, but the heads axis is not in front of the tokens. Hint: which two axes "
                "must trade places?"),
        Mistake(_split_by_direct_reshape,
                "You reshaped straight to (..., heads, tokens, key_dim): the shape is right but "
                "the numbers are not, since a reshape keeps the memory order, so each \"head\" "
                "gets pieces of several tokens. Hint: cut each token's features first, then move "
                "the axes."),
        Mistake(_split_interleaved,
                "Your heads take every H-th feature (features h, h + H, h + 2H, ...) instead of "
                "a block of key_dim neighbouring features. Hint: in which order do the head and "
                "key_dim axes come when d is cut? Keras's kernels (d, H, key_dim) cut it heads "
                "first."),
        Mistake(_split_heads_first,
                "Your result has the heads first, shape (heads, ..., tokens, key_dim), as a "
                "list of np.split pieces becomes. Hint: the heads axis goes just before the "
                "tokens axis, after any leading axes."),
        Mistake(_split_heads_and_depth_swapped,
                "Your result has shape (..., key_dim, tokens, heads): you swapped the number of "
                "heads and key_dim in the reshape. Hint: which of the two has num_heads "
                "entries?"),
    ),
    shape_hints={"heads": "(..., heads, tokens, d / heads)"},
    error_hint="x may have any number of leading axes (none, one, several): count the axes you "
               "reshape and swap from the end, not from the front.",
    hint="fill a small x with consecutive numbers and compare your head h of token t with "
         "features h*k to h*k + k - 1 of x's token t.",
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
                "Hint: what must be next to each other in memory before the reshape?"),
        Mistake(_merge_interleaved,
                "Your output interleaves the heads (feature j of every head side by side) "
                "instead of putting head h's k features in one block, h*k to h*k + k - 1. Hint: "
                "in which order must the heads axis and the key_dim axis come before the "
                "reshape?"),
        Mistake(_merge_along_tokens,
                "You stacked the heads along the tokens, shape (..., H·T, k). Each token should "
                "get the concatenation of its H head outputs: shape (..., T, H·k). Hint: which "
                "axis must the heads be merged into?"),
        Mistake(_merge_by_sum,
                "You summed the heads (shape (..., T, k)); merging concatenates them, so that no "
                "head's output is lost: shape (..., T, H·k). Hint: the merged depth is H times "
                "a head's."),
    ),
    shape_hints={"merged": "(..., tokens, heads * key_dim)"},
    error_hint="x may have any number of leading axes: count the axes from the end, not from "
               "the front.",
    hint="merging must undo splitting: check that your merge of your split of a small x gives x "
         "back.",
)


def _layer_mistake(**variant):
    def wrong(*arguments):
        return _attention_variant(*arguments, **variant)
    return wrong


MULTI_HEAD_ATTENTION = Exercise(
    exercise_id="07.3",
    function_name="MultiHeadAttention",
    make_cases=attention_cases,
    reference=multi_head_attention,
    outputs=("output", "weights"),
    mistakes=(
        Mistake(_layer_mistake(scale=lambda k, v, d: 1.0),
                "Your scores are missing the 1/√key_dim scaling. Hint: Keras divides each "
                "head's queries by the square root of a depth: which one?"),
        Mistake(_layer_mistake(scale=lambda k, v, d: 1 / np.sqrt(d)),
                "You scaled the scores by 1/√d_model (the query's depth), but each head's score "
                "is a dot product of key_dim numbers, so its spread grows like √key_dim. Hint: "
                "scale by the depth of one head's queries."),
        Mistake(_layer_mistake(scale=lambda k, v, d: 1 / np.sqrt(v)),
                "You scaled the scores by 1/√value_dim, but the scores are dot products of "
                "queries and keys. Hint: scale by the depth of one head's queries and keys."),
        Mistake(_layer_mistake(bias_after_scale=True),
                "You add the query bias after scaling the queries; Keras scales the projected "
                "query with its bias. Hint: which comes first, the bias or the 1/√key_dim?"),
        Mistake(_layer_mistake(mask_after_softmax=True),
                "You zero the masked weights after the softmax, so each row's weights no longer "
                "sum to 1 over the keys it may see. Hint: the softmax must run over the allowed "
                "keys only: hide the others before it."),
        Mistake(_layer_mistake(invert_mask=True),
                "Your mask has the opposite polarity: you attend where the mask is False. "
                "True means attend (the Keras convention). Hint: does your layer keep the "
                "scores where the mask is True?"),
        Mistake(_layer_mistake(use_mask=False),
                "Your weights ignore `attention_mask`. Hint: masked keys get weight 0, in every "
                "head."),
        Mistake(_layer_mistake(use_causal=False),
                "Your layer ignores `use_causal_mask`: with it, query i must not see the keys "
                "after position i. Hint: the causal mask is AND-ed with `attention_mask`."),
        Mistake(_layer_mistake(causal_bottom_right=True),
                "Your causal mask is bottom-right aligned (the last query sees every key); "
                "Keras's is top-left: query i sees keys 0 to i, also when there are more keys "
                "than queries. Hint: compare the key's index with the query's index itself."),
        Mistake(_layer_mistake(softmax_axis=-2),
                "Your softmax runs over the queries (axis -2): each key's column sums to 1. "
                "Hint: each query's weights over the keys sum to 1: which axis holds the keys?"),
        Mistake(_layer_mistake(merge=_merge_without_transpose),
                "Your weights are right, but you merged the heads by reshaping (B, H, Tq, v) "
                "straight to (B, Tq, H·v): each query gets pieces of other queries. Hint: your "
                "merge_heads of exercise 07.2 does it right."),
        Mistake(_layer_mistake(biases=False),
                "Your layer leaves out the biases: its output is what Keras's computes with "
                "every bias at 0. Hint: does your copy_weights_from copy all eight weights, and "
                "does your call add the four biases?"),
        Mistake(_layer_mistake(output_bias_used=False),
                "Your layer leaves out the output projection's bias. Hint: the output is the "
                "merged heads times the output kernel, plus the output bias."),
        Mistake(_layer_mistake(keys_from_value=True),
                "Your keys come from `value` even when a separate `key` is given. Hint: keys are "
                "projected from `key`, which defaults to `value` only when it is None."),
    ),
    properties=(weights_transposed, mask_polarity, sums_to_one("weights", over="the keys"),
                masked_keys_ignored, same_weights_in_every_head),
    shape_hints={"output": "(batch, queries, query depth)",
                 "weights": "(batch, heads, queries, keys)"},
    invoke=invoke_multi_head_attention,
    reference_invoke=lambda reference, case: reference(*case.values()),
    describe=describe_multi_head_attention,
    error_hint="the check builds your layer, calls it once to build it, copies a Keras layer's "
               "weights with your copy_weights_from, then calls it with the other arguments; "
               "the error's last line says which step failed.",
    nan_hint="a masked score of -inf gives 0/0 only where a whole row is masked, which no query "
             "of the check has: is your softmax over the keys?",
    hint="check each step's shape: queries (B, H, Tq, k), keys (B, H, Tv, k), values "
         "(B, H, Tv, v), weights (B, H, Tq, Tv), heads (B, H, Tq, v), output (B, Tq, d).",
    rtol=1e-4,
    atol=2e-5,
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
                "head projects to key_dim (queries, keys) or value_dim (values) features."),
        Mistake(lambda d, h, k, v, b: 4 * d * d + (4 * d if b else 0),
                "You used 4·d² + 4·d, which holds only when key_dim = value_dim = d_model / "
                "num_heads. Hint: key_dim and value_dim are given and need not be that; count "
                "each weight from its shape."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, value_as_key=True),
                "You used key_dim for the values too. Hint: which weights have a value_dim "
                "axis?"),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, False),
                "You left out the biases. Hint: with use_bias=True each of the four projections "
                "has one."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, bias_always=True),
                "You counted the biases also when use_bias is False. Hint: without biases each "
                "projection is its kernel alone."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, output_bias=False),
                "You left out the output projection's bias. Hint: with use_bias=True the output "
                "projection has a bias too."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, output_bias_per_head=True),
                "You counted the output bias once per head (H × d_model); it has shape "
                "(d_model,): the heads are merged before it is added. Hint: recount it from "
                "its shape."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, biases_without_heads=True),
                "You counted the query, key and value biases once for all heads (key_dim or "
                "value_dim numbers each); each has one number per head and feature, shape "
                "(H, key_dim) or (H, value_dim). Hint: recount them from their shapes."),
        Mistake(lambda d, h, k, v, b: _count(d, h, k, v, b, output_projection=False),
                "You left out the output projection. Hint: the heads are merged and projected "
                "back to d_model by a kernel of their own (with a bias when use_bias is True)."),
    ),
    shape_hints={"parameters": "a single number"},
    rtol=0.0,
    atol=0.5,
    hint="add up the sizes of the eight weights from their shapes: four kernels, and four "
         "biases when use_bias is True.",
)

EXERCISES = (SPLIT_HEADS, MERGE_HEADS, MULTI_HEAD_ATTENTION, ATTENTION_PARAMETER_COUNT)
