"""Attention without the n × n matrix: tiled exact attention, block-sparse patterns, and linear
attention.

Scaled dot-product attention (``course_lib.attention``) forms a ``Tq × Tk`` score matrix: its
memory grows as n² and its time as n² d. Three ways around it, each in ``keras.ops`` only:

``tiled_attention`` — *exact*, in blocks of keys (the idea behind FlashAttention).
    Keys are read ``block_size`` at a time. Each query keeps a running maximum ``m``, a running
    sum ``l`` and an unnormalised output ``o``; a block with scores ``s`` updates them as
    (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"; Rabe & Staats 2021,
    "Self-attention does not need O(n²) memory"; Dao et al. 2022, "FlashAttention")::

        m' = max(m, max_j s_j)
        l' = l · exp(m − m') + Σ_j exp(s_j − m')
        o' = o · exp(m − m') + Σ_j exp(s_j − m') v_j          output = o / l after the last block

    The result equals ``softmax(Q Kᵀ / √d) V`` up to rounding; memory is ``Tq × block_size``
    scores at a time, linear in n.

``block_sparse_attention`` — *a sparse pattern*, sliding window plus global tokens
    (Beltagy et al. 2020, "Longformer"; Zaheer et al. 2020, "BigBird", whose random blocks are
    left out). Query ``i`` attends key ``j`` when ``|i − j| ≤ window`` or either of them is
    one of the first ``global_tokens`` positions (:func:`longformer_mask`). The sequence is
    cut into blocks; each query block scores only its neighbouring key blocks and the global
    keys, so the cost grows as ``n · (3 · block + global)``, not n².

``linear_attention``, ``causal_linear_attention`` — *a kernel instead of the softmax*
    (Katharopoulos et al. 2020, "Transformers are RNNs"). With a positive feature map
    ``φ(x) = elu(x) + 1`` in place of ``exp(q · k)``::

        out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ  /  φ(q_i)ᵀ Σ_j φ(k_j)

    and matrix products are associative, ``(φ(Q) φ(K)ᵀ) V = φ(Q) (φ(K)ᵀ V)``: the ``d × dv``
    state ``S = φ(K)ᵀ V`` replaces the n × n matrix, so time and memory grow as n. In the
    causal version the sums run over ``j ≤ i``: a recurrence ``S_i = S_{i−1} + φ(k_i) v_iᵀ``,
    ``z_i = z_{i−1} + φ(k_i)`` with a state of fixed size whatever the length — an RNN.
    :func:`linear_attention_weights` gives the n × n weights of the same computation (the
    masked parallel form), for pictures and tests.

Shapes: query ``(..., Tq, d)``, keys ``(..., Tk, d)``, values ``(..., Tk, dv)``, outputs
``(..., Tq, dv)``. Masks are boolean, True = attend; a query that may attend no key gets a zero
output, as in ``course_lib.attention.scaled_dot_product_attention`` (``docs/conventions.md``).
"""

import math

import numpy as np
from keras import ops

from course_lib.attention import (
    causal_mask,
    check_attention_inputs,
    large_negative,
    masked_softmax,
    scaled_dot_product_attention,
    sliding_window_mask,
)
from course_lib.validation import require_broadcastable, require_positive_int, static_shape


def _divide_or_zero(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, 0 where it is 0 (a query
    that attended nothing)."""
    attended = denominator > 0
    return ops.where(attended, numerator / ops.where(attended, denominator, 1), 0)


def _known_length(name, shape):
    if shape[-2] is None:
        raise ValueError(f"`{name}` of shape {shape} has an unknown length; these functions "
                         f"cut it into blocks, so its length must be known.")
    return shape[-2]


def _require_self_attention(query_shape, keys_shape):
    if query_shape[-2] != keys_shape[-2]:
        raise ValueError(f"Query and key lengths must agree (self-attention over one sequence): "
                         f"`query` has shape {query_shape} and `keys` has shape {keys_shape}.")


def _key_mask_as_bool(key_mask, keys_shape):
    """``key_mask`` ``(..., Tk)`` checked against the keys and cast to bool (None stays None)."""
    if key_mask is None:
        return None
    require_broadcastable("key_mask", static_shape(key_mask), keys_shape[:-1],
                          hint=" It is a padding mask over the keys: (..., Tk), True = attend.")
    return ops.cast(key_mask, "bool")


# --- Tiled exact attention -------------------------------------------------------------------


def tiled_attention(query, keys, values, mask=None, causal=False, block_size=128):
    """``softmax(Q Kᵀ / √d) V`` computed over blocks of keys with an online softmax.

    Equal to :func:`course_lib.attention.scaled_dot_product_attention` (module docstring for the
    update), without ever holding more than ``Tq × block_size`` scores. The blocks are visited
    by ``keras.ops.fori_loop``, one after another: written as a Python loop, the blocks do not
    depend on one another, and a graph compiler computes them all at once, which brings back
    the n² memory (lesson 11 measures it).

    Args:
        query: ``(..., Tq, d)``.
        keys: ``(..., Tk, d)``, ``Tk`` known.
        values: ``(..., Tk, dv)``.
        mask: optional boolean, broadcastable to ``(..., Tq, Tk)``; True = attend. Give a
            padding mask as ``(..., 1, Tk)``: a full ``Tq × Tk`` mask is itself n².
        causal: if True, query ``i`` attends only keys ``j ≤ i`` (AND-ed with ``mask``).
        block_size: keys per block (positive integer).

    Returns:
        ``(..., Tq, dv)``; zero for a query whose keys are all masked.
    """
    query_shape, keys_shape, _ = check_attention_inputs(query, keys, values)
    block_size = require_positive_int("block_size", block_size)
    key_length = _known_length("keys", keys_shape)
    blocks = math.ceil(key_length / block_size)
    if mask is not None:
        require_broadcastable("mask", static_shape(mask), (*query_shape[:-1], key_length),
                              hint=" A padding mask of shape (batch, keys) needs a query axis: "
                                   "mask[:, None, :].")
        mask = _pad_length(_keys_axis_full(ops.cast(mask, "bool"), len(query_shape),
                                           key_length), blocks * block_size, axis=-1)
    keys = _pad_length(keys, blocks * block_size)  # whole blocks; the extra keys are masked
    values = _pad_length(values, blocks * block_size)
    query = query / ops.sqrt(ops.cast(ops.shape(query)[-1], query.dtype))  # scale once
    query_positions = ops.expand_dims(ops.arange(ops.shape(query)[-2]), -1)  # (Tq, 1)
    negative = ops.cast(large_negative(query.dtype), query.dtype)

    def visit_block(block, carry):
        running_max, running_sum, output = carry  # (..., Tq, 1), (..., Tq, 1), (..., Tq, dv)
        start = block * block_size
        scores = ops.matmul(query, ops.swapaxes(_slice_length(keys, start, block_size), -1, -2))
        key_positions = start + ops.arange(block_size)  # (b,)
        attend = key_positions < key_length  # (b,): the padding up to a whole block is out
        if causal:
            attend = ops.logical_and(attend, key_positions <= query_positions)  # (Tq, b)
        if mask is not None:
            attend = ops.logical_and(attend, _slice_length(mask, start, block_size, axis=-1))
        scores = ops.where(attend, scores, negative)  # (..., Tq, b)
        new_max = ops.maximum(running_max, ops.max(scores, axis=-1, keepdims=True))
        rescale = ops.exp(running_max - new_max)  # the old terms, re-based on the new maximum
        weights = ops.exp(scores - new_max) * ops.cast(attend, query.dtype)  # 0 where masked
        running_sum = running_sum * rescale + ops.sum(weights, axis=-1, keepdims=True)
        output = output * rescale + ops.matmul(weights, _slice_length(values, start, block_size))
        return new_max, running_sum, output

    start_max = ops.full((*ops.shape(query)[:-1], 1), negative, query.dtype)  # (..., Tq, 1)
    start_output = ops.zeros((*ops.shape(query)[:-1], ops.shape(values)[-1]), query.dtype)
    _, running_sum, output = ops.fori_loop(
        0, blocks, visit_block, (start_max, ops.zeros_like(start_max), start_output))
    return _divide_or_zero(output, running_sum)


def _pad_length(x, length, axis=-2):
    """``x`` padded with zeros (False) along ``axis`` up to ``length``."""
    padding = [[0, 0] for _ in ops.shape(x)]
    padding[axis] = [0, length - ops.shape(x)[axis]]
    return ops.pad(x, padding)


def _slice_length(x, start, size, axis=-2):
    """``x[..., start:start + size, :]`` (``axis=-2``) or ``x[..., start:start + size]``
    (``axis=-1``), with ``start`` a tensor inside a loop."""
    rank = len(ops.shape(x))
    starts = [0] * rank
    starts[axis] = start
    sizes = list(ops.shape(x))
    sizes[axis] = size
    return ops.slice(x, starts, sizes)


def _keys_axis_full(mask, rank, key_length):
    """A mask with ``rank`` axes and all ``key_length`` keys on its last one (a mask that
    broadcasts over the keys is repeated: cheap, as it has one query row or few)."""
    shape = static_shape(mask)
    mask = ops.reshape(mask, (1,) * (rank - len(shape)) + tuple(ops.shape(mask)))
    return ops.broadcast_to(mask, (*ops.shape(mask)[:-1], key_length))


# --- Block-sparse attention: sliding window and global tokens --------------------------------


def longformer_mask(length, window, global_tokens=0, causal=False):
    """The Longformer pattern as a dense boolean ``(length, length)`` mask, True = attend.

    ``mask[i, j] = |i − j| ≤ window  or  i < global_tokens  or  j < global_tokens``, AND-ed
    with ``j ≤ i`` when ``causal``. :func:`block_sparse_attention` computes attention under
    this mask without forming it; the dense mask is for pictures and tests (it is n²).

    Longformer's ``window`` counts the keys on *each side* of the query; lesson 10's (and
    Keras's) ``sliding_window=w`` counts the query itself, ``|i − j| < w``: the band here is
    :func:`course_lib.attention.sliding_window_mask` with ``w = window + 1``.
    """
    length = require_positive_int("length", length)
    window = require_positive_int("window", window, 0)
    global_tokens = require_positive_int("global_tokens", global_tokens, 0)
    band = ops.convert_to_numpy(sliding_window_mask(window + 1, length, causal=causal))
    is_global = np.arange(length) < global_tokens
    allowed = band | is_global[:, None] | is_global[None, :]
    return allowed & np.tri(length, dtype=bool) if causal else allowed


def _shift_blocks(blocks, offset):
    """Block ``i`` of the result is block ``i + offset`` of ``blocks`` (axis -3), zeros (or
    False) past either end."""
    if offset == 0:
        return blocks
    count = ops.shape(blocks)[-3]
    padding = [[0, 0]] * len(ops.shape(blocks))
    if offset > 0:
        padding[-3] = [0, offset]
        return ops.pad(blocks, padding)[..., offset:offset + count, :, :]
    padding[-3] = [-offset, 0]
    return ops.pad(blocks, padding)[..., :count, :, :]


def block_sparse_attention(query, keys, values, window, global_tokens=0, key_mask=None,
                           causal=False, block_size=None):
    """Self-attention under :func:`longformer_mask`, block by block, in ``O(n · window)``.

    The sequence (padded to a whole number of blocks) is cut into blocks of ``block_size``
    positions. Query block ``i`` scores key blocks ``i − r … i + r`` (``r = ⌈window /
    block_size⌉``; ``i − r … i`` when causal) and the ``global_tokens`` first keys; a mask
    inside those blocks keeps exactly ``|i − j| ≤ window``. The global queries attend every key
    (a ``global_tokens × n`` product).

    Args:
        query, keys: ``(..., n, d)``, the same known length ``n``.
        values: ``(..., n, dv)``.
        window: how far each side a query looks (integer ≥ 0).
        global_tokens: how many leading positions attend, and are attended by, every position.
        key_mask: optional padding mask ``(..., n)``, True at real tokens.
        causal: if True, query ``i`` attends only keys ``j ≤ i``.
        block_size: positions per block; ``max(window, 1)`` by default.

    Returns:
        ``(..., n, dv)``, equal to ``scaled_dot_product_attention`` with the mask
        ``longformer_mask(n, window, global_tokens, causal)`` AND ``key_mask``; zero for a
        query with no key to attend.
    """
    query_shape, keys_shape, _ = check_attention_inputs(query, keys, values)
    _require_self_attention(query_shape, keys_shape)
    length = _known_length("keys", keys_shape)
    window = require_positive_int("window", window, 0)
    global_tokens = min(require_positive_int("global_tokens", global_tokens, 0), length)
    block_size = require_positive_int("block_size", max(window, 1) if block_size is None
                                      else block_size)
    key_mask = _key_mask_as_bool(key_mask, keys_shape)
    leading = tuple(ops.shape(query)[:-2])
    blocks = math.ceil(length / block_size)
    padded = blocks * block_size
    reach = math.ceil(window / block_size)
    offsets = range(-reach, 1 if causal else reach + 1)

    # Static positions: which key each slot of a query block's neighbourhood holds.
    query_positions = np.arange(padded).reshape(blocks, block_size, 1)  # (nb, b, 1)
    key_positions = np.concatenate(  # (nb, 1, W), W = len(offsets) · b
        [(np.arange(blocks)[:, None] + offset) * block_size + np.arange(block_size)
         for offset in offsets], axis=-1)[:, None, :]
    distance = query_positions - key_positions
    local_allowed = ((key_positions >= global_tokens) & (key_positions < length)
                     & (np.abs(distance) <= window))
    global_allowed = np.ones((blocks, block_size, global_tokens), dtype=bool)  # (nb, b, g)
    if causal:
        local_allowed &= distance >= 0
        global_allowed &= np.arange(global_tokens) <= query_positions

    def in_blocks(x):  # (..., n, f) -> (..., nb, b, f)
        padding = [[0, 0]] * len(ops.shape(x))
        padding[-2] = [0, padded - length]
        return ops.reshape(ops.pad(x, padding), (*leading, blocks, block_size, ops.shape(x)[-1]))

    scale = 1 / math.sqrt(query_shape[-1])
    query_blocks = in_blocks(query * scale)  # (..., nb, b, d)
    key_blocks, value_blocks = in_blocks(keys), in_blocks(values)
    local_keys = ops.concatenate([_shift_blocks(key_blocks, o) for o in offsets], axis=-2)
    local_values = ops.concatenate([_shift_blocks(value_blocks, o) for o in offsets], axis=-2)
    global_keys = ops.expand_dims(keys[..., :global_tokens, :], -3)  # (..., 1, g, d)
    global_values = ops.expand_dims(values[..., :global_tokens, :], -3)  # (..., 1, g, dv)
    scores = ops.concatenate([  # (..., nb, b, W + g)
        ops.matmul(query_blocks, ops.swapaxes(local_keys, -1, -2)),
        ops.matmul(query_blocks, ops.swapaxes(global_keys, -1, -2))], axis=-1)
    allowed = ops.convert_to_tensor(np.concatenate(
        [np.broadcast_to(local_allowed, (blocks, block_size, local_allowed.shape[-1])),
         global_allowed], axis=-1))  # (nb, b, W + g)
    if key_mask is not None:
        key_mask = ops.broadcast_to(key_mask, (*leading, length))
        mask_blocks = in_blocks(ops.expand_dims(key_mask, -1))  # (..., nb, b, 1), padding False
        local_real = ops.concatenate([_shift_blocks(mask_blocks, o) for o in offsets], -2)
        global_real = ops.broadcast_to(  # (..., nb, 1, g)
            ops.reshape(key_mask[..., :global_tokens], (*leading, 1, 1, global_tokens)),
            (*leading, blocks, 1, global_tokens))
        real = ops.concatenate([ops.swapaxes(local_real, -1, -2),  # (..., nb, 1, W)
                                global_real], axis=-1)  # (..., nb, 1, W + g)
        allowed = ops.logical_and(allowed, real)
    weights = masked_softmax(scores, allowed)
    window_slots = ops.shape(local_keys)[-2]
    output = (ops.matmul(weights[..., :window_slots], local_values)
              + ops.matmul(weights[..., window_slots:], global_values))  # (..., nb, b, dv)
    output = ops.reshape(output, (*leading, padded, ops.shape(values)[-1]))[..., :length, :]
    if global_tokens == 0:
        return output
    # The global queries attend every key: a (g × n) product.
    global_mask = causal_mask(global_tokens, length) if causal else None
    if key_mask is not None:
        real_keys = ops.expand_dims(key_mask, -2)  # (..., 1, n)
        global_mask = real_keys if global_mask is None else ops.logical_and(global_mask,
                                                                            real_keys)
    global_output, _ = scaled_dot_product_attention(query[..., :global_tokens, :], keys, values,
                                                    mask=global_mask)
    return ops.concatenate([global_output, output[..., global_tokens:, :]], axis=-2)


# --- Linear attention ------------------------------------------------------------------------


def elu_feature_map(x):
    """``φ(x) = elu(x) + 1``, positive everywhere (Katharopoulos et al. 2020, eq. 7)."""
    return ops.elu(x) + 1


def linear_attention(query, keys, values, key_mask=None):
    """Non-causal linear attention ``φ(Q) (φ(K)ᵀ V) / φ(Q) Σ_j φ(k_j)``, in ``O(n d dv)``.

    Args:
        query: ``(..., Tq, d)``; keys ``(..., Tk, d)``; values ``(..., Tk, dv)``.
        key_mask: optional padding mask ``(..., Tk)``, True at real keys.

    Returns:
        ``(..., Tq, dv)``; zero for a query when every key is masked.
    """
    _, keys_shape, _ = check_attention_inputs(query, keys, values)
    key_mask = _key_mask_as_bool(key_mask, keys_shape)
    query_features, key_features = elu_feature_map(query), elu_feature_map(keys)
    if key_mask is not None:
        key_features = key_features * ops.cast(ops.expand_dims(key_mask, -1), keys.dtype)
    state = ops.matmul(ops.swapaxes(key_features, -1, -2), values)  # (..., d, dv)
    normaliser = ops.sum(key_features, axis=-2)  # (..., d)
    numerator = ops.matmul(query_features, state)  # (..., Tq, dv)
    denominator = ops.sum(query_features * ops.expand_dims(normaliser, -2), axis=-1,
                          keepdims=True)  # (..., Tq, 1)
    return _divide_or_zero(numerator, denominator)


def causal_linear_attention(query, keys, values, key_mask=None, chunk_size=64):
    """Causal linear attention as a recurrence with a fixed-size state.

    ``S_i = S_{i−1} + φ(k_i) v_iᵀ`` (``d × dv``), ``z_i = z_{i−1} + φ(k_i)`` (``d``),
    ``out_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i``. The loop runs over chunks of ``chunk_size``
    positions: within a chunk the masked parallel form, ``(φ(Q_c) φ(K_c)ᵀ ⊙ causal) V_c``; across
    chunks only the state. ``chunk_size=1`` is the token-by-token RNN; every chunk size gives
    the same numbers, equal to ``linear_attention_weights(..., causal=True) @ values``.

    Args:
        query, keys: ``(..., n, d)``, the same known length; values ``(..., n, dv)``.
        key_mask: optional padding mask ``(..., n)``, True at real keys.
        chunk_size: positions per step of the recurrence (positive integer).

    Returns:
        ``(..., n, dv)``; zero for a query with no real key at or before it.
    """
    query_shape, keys_shape, _ = check_attention_inputs(query, keys, values)
    _require_self_attention(query_shape, keys_shape)
    length = _known_length("keys", keys_shape)
    chunk_size = require_positive_int("chunk_size", chunk_size)
    key_mask = _key_mask_as_bool(key_mask, keys_shape)
    query_features, key_features = elu_feature_map(query), elu_feature_map(keys)
    if key_mask is not None:
        key_features = key_features * ops.cast(ops.expand_dims(key_mask, -1), keys.dtype)
    chunks = math.ceil(length / chunk_size)
    # Whole chunks: the extra positions come after every real one, so no real query sees them.
    query_features = _pad_length(query_features, chunks * chunk_size)
    key_features = _pad_length(key_features, chunks * chunk_size)
    values = _pad_length(values, chunks * chunk_size)
    within_chunk = ops.cast(causal_mask(chunk_size), query.dtype)  # (c, c): j ≤ i

    def step(chunk, carry):
        state, normaliser, outputs = carry  # (..., d, dv), (..., 1, d), (..., n, dv)
        start = chunk * chunk_size
        chunk_queries = _slice_length(query_features, start, chunk_size)  # (..., c, d)
        chunk_keys = _slice_length(key_features, start, chunk_size)
        chunk_values = _slice_length(values, start, chunk_size)  # (..., c, dv)
        within = ops.matmul(chunk_queries, ops.swapaxes(chunk_keys, -1, -2)) * within_chunk
        numerator = ops.matmul(chunk_queries, state) + ops.matmul(within, chunk_values)
        denominator = (ops.sum(chunk_queries * normaliser, axis=-1, keepdims=True)
                       + ops.sum(within, axis=-1, keepdims=True))  # (..., c, 1)
        starts = [0] * (len(ops.shape(outputs)) - 2) + [start, 0]
        outputs = ops.slice_update(outputs, starts, _divide_or_zero(numerator, denominator))
        state = state + ops.matmul(ops.swapaxes(chunk_keys, -1, -2), chunk_values)
        normaliser = normaliser + ops.sum(chunk_keys, axis=-2, keepdims=True)
        return state, normaliser, outputs

    leading = tuple(ops.shape(query)[:-2])
    depth, value_depth = query_shape[-1], ops.shape(values)[-1]
    start_state = (ops.zeros((*leading, depth, value_depth), query.dtype),
                   ops.zeros((*leading, 1, depth), query.dtype),
                   ops.zeros((*leading, chunks * chunk_size, value_depth), query.dtype))
    _, _, outputs = ops.fori_loop(0, chunks, step, start_state)
    return outputs[..., :length, :]


def linear_attention_weights(query, keys, mask=None, causal=False):
    """The ``Tq × Tk`` weights that linear attention applies without forming them:
    ``a_ij = φ(q_i) · φ(k_j) / Σ_j' φ(q_i) · φ(k_j')`` over the attended keys.

    ``linear_attention_weights(q, k, mask) @ v`` is the *masked parallel form*, n² like softmax
    attention; :func:`linear_attention` and :func:`causal_linear_attention` give the same
    output in ``O(n)``. ``mask`` broadcasts to ``(..., Tq, Tk)`` (True = attend); ``causal``
    keeps ``j ≤ i``. A row with nothing attended is all zeros.
    """
    query_shape, keys_shape = check_attention_inputs(query, keys, keys)[:2]
    similarities = ops.matmul(elu_feature_map(query),
                              ops.swapaxes(elu_feature_map(keys), -1, -2))  # (..., Tq, Tk)
    attend = None
    if mask is not None:
        require_broadcastable("mask", static_shape(mask), (*query_shape[:-1],
                                                                keys_shape[-2]))
        attend = ops.cast(mask, "bool")
    if causal:
        future = causal_mask(ops.shape(query)[-2], ops.shape(keys)[-2])
        attend = future if attend is None else ops.logical_and(attend, future)
    if attend is not None:
        similarities = similarities * ops.cast(attend, similarities.dtype)
    return _divide_or_zero(similarities, ops.sum(similarities, axis=-1, keepdims=True))
