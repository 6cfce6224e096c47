"""Attention as functions: scores, a masked softmax, and scaled dot-product attention.

The three steps of every attention mechanism in this course:

1. **score** each key against each query, ``e_ij = score(q_i, k_j)``;
2. turn a row of scores into weights that sum to one, ``a_ij = softmax_j(e_ij)``, giving masked
   keys weight zero;
3. return the weighted sum of the values, ``c_i = sum_j a_ij v_j`` (the *context vector*).

Score functions (shapes: query ``(..., Tq, dq)``, keys ``(..., Tk, dk)``, scores ``(..., Tq, Tk)``):

================  ==================================  ===============  =========================
name              formula                             parameters       paper
================  ==================================  ===============  =========================
``dot_score``     ``q . k``                           none             Luong et al. 2015
``general_score`` ``q W k``                           ``W (dq, dk)``   Luong et al. 2015
``concat_score``  ``v . tanh(W [q; k])``              ``W, v``         Luong et al. 2015
``additive_score````v . tanh(W1 q + W2 k)``           ``W1, W2, v``    Bahdanau et al. 2015
================  ==================================  ===============  =========================

``concat`` and ``additive`` are the same function written two ways: ``W [q; k] = W1 q + W2 k``
when ``W = [W1; W2]``, so ``concat_score`` splits ``W`` and calls ``additive_score``.

Masks are boolean and **True means attend** (the Keras convention). All functions use
``keras.ops`` only, so they run on the TensorFlow, JAX and PyTorch backends.
"""

from keras import ops

from course_lib.validation import (
    require_broadcastable,
    require_positive_int,
    require_rank,
    require_same_dim,
    static_shape,
)


def large_negative(dtype):
    """A finite stand-in for minus infinity: softmax sends it to zero without producing NaN."""
    return -3e4 if str(dtype) in ("float16", "bfloat16") else -1e9


def masked_softmax(scores, mask=None, axis=-1):
    """Softmax of ``scores`` along ``axis`` in which masked entries get exactly zero weight.

    ``softmax(e)_j = exp(e_j) / sum_k exp(e_k)`` over the entries where ``mask`` is True.

    A row whose entries are all masked gets all-zero weights, never NaN and never the uniform
    row that adding ``-1e9`` alone would give (the trap of d2l PR #2423): a query that may look
    at nothing should receive nothing.

    Args:
        scores: float tensor of any rank.
        mask: optional boolean tensor broadcastable to ``scores``; True = attend.
        axis: the axis that sums to one (the keys).

    Returns:
        Weights with the shape of ``scores``.
    """
    if mask is None:
        return ops.softmax(scores, axis=axis)
    require_broadcastable(
        "mask", static_shape(mask), static_shape(scores),
        hint=" A padding mask of shape (batch, keys) needs a query axis: mask[:, None, :].",
    )
    mask = ops.cast(mask, "bool")
    masked_scores = ops.where(mask, scores, ops.cast(large_negative(scores.dtype), scores.dtype))
    weights = ops.softmax(masked_scores, axis=axis)
    # Zero the masked entries explicitly, so a fully masked row becomes zeros, not uniform.
    return weights * ops.cast(mask, weights.dtype)


def padding_mask(ids, pad_id=0):
    """``True`` where ``ids`` holds a real token, ``False`` at padding: shape of ``ids``.

    For attention over keys, add a query axis: ``padding_mask(ids)[:, None, :]`` has shape
    ``(batch, 1, Tk)`` and broadcasts over every query.
    """
    return ops.not_equal(ids, pad_id)


def causal_mask(query_length, key_length=None):
    """Boolean ``(Tq, Tk)`` mask with ``mask[i, j] = j <= i``: query ``i`` sees keys up to ``i``.

    Top-left aligned, as in Keras (``keras.layers.Attention(use_causal_mask=True)`` and
    ``keras.layers.MultiHeadAttention``), also when ``Tq != Tk``.
    """
    key_length = query_length if key_length is None else key_length
    rows = ops.expand_dims(ops.arange(query_length), 1)
    columns = ops.expand_dims(ops.arange(key_length), 0)
    return ops.greater_equal(rows, columns)


def position_visibility(query_positions, key_positions, window=None, causal=True):
    """Boolean ``(Tq, Tk)``: which key positions each query position may see.

    A key is visible when its position is not negative (a negative position marks an empty
    cache slot), when it is not in the future (``j <= i``, if ``causal``) and, with a
    ``window`` ``w``, when it lies within ``w - 1`` positions (``i - j < w`` if causal, so the
    query sees itself and the ``w - 1`` keys before it; ``|i - j| < w`` otherwise, Keras's
    band). Positions are int tensors ``(Tq,)`` and ``(Tk,)``; they may be traced.
    """
    queries = ops.expand_dims(ops.cast(query_positions, "int32"), 1)            # (Tq, 1)
    keys = ops.expand_dims(ops.cast(key_positions, "int32"), 0)                 # (1, Tk)
    visible = ops.greater_equal(keys, 0)
    if causal:
        visible = ops.logical_and(visible, ops.less_equal(keys, queries))
    if window is not None:
        distance = queries - keys if causal else ops.abs(queries - keys)
        visible = ops.logical_and(visible, ops.less(distance, window))
    return visible


def sliding_window_mask(window, query_length, key_length=None, offset=0, causal=True):
    """Boolean ``(Tq, Tk)`` sliding-window mask (Beltagy et al. 2020, Longformer; Mistral 7B,
    Jiang et al. 2023): query ``i``, at position ``offset + i``, sees key ``j`` when
    ``offset + i − w < j <= offset + i`` (``causal``: itself and the ``w − 1`` keys before
    it), or when ``|offset + i − j| < w`` (not causal: Keras's symmetric band).

    The causal form equals ``keras.layers.MultiHeadAttention(sliding_window=w)`` called with
    ``use_causal_mask=True``: Keras builds the band ``|i − j| < w`` and ANDs it with its
    causal mask. Stacked ``L`` layers of it let information travel ``L (w − 1)`` positions.
    """
    window = require_positive_int("window", window)
    key_length = query_length if key_length is None else key_length
    query_positions = ops.arange(query_length) + ops.cast(offset, "int32")
    return position_visibility(query_positions, ops.arange(key_length), window, causal)


def _check_query_and_keys(query, keys):
    query_shape = require_rank("query", query, (2, 3, 4, 5))
    keys_shape = require_rank("keys", keys, len(query_shape))
    for axis in range(len(query_shape) - 2):
        require_same_dim("Batch dimensions", "query", query_shape, axis, "keys", keys_shape, axis)
    return query_shape, keys_shape


def check_attention_inputs(query, keys, values):
    """Raise a ``ValueError`` naming the shapes unless query ``(..., Tq, d)``, keys
    ``(..., Tk, d)`` and values ``(..., Tk, dv)`` fit together; return the three static shapes.
    """
    query_shape, keys_shape = _check_query_and_keys(query, keys)
    require_same_dim("Query and key depths", "query", query_shape, -1, "keys", keys_shape, -1)
    values_shape = require_rank("values", values, len(keys_shape))
    require_same_dim("Key and value lengths", "keys", keys_shape, -2, "values", values_shape, -2)
    for axis in range(len(keys_shape) - 2):
        require_same_dim("Batch dimensions", "keys", keys_shape, axis, "values", values_shape,
                         axis)
    return query_shape, keys_shape, values_shape


def dot_score(query, keys):
    """Luong's dot score ``e_ij = q_i . k_j``: query ``(..., Tq, d)``, keys ``(..., Tk, d)``."""
    query_shape, keys_shape = _check_query_and_keys(query, keys)
    require_same_dim("Query and key depths", "query", query_shape, -1, "keys", keys_shape, -1)
    return ops.matmul(query, ops.swapaxes(keys, -1, -2))


def general_score(query, keys, weight):
    """Luong's general score ``e_ij = q_i W k_j``; ``weight`` has shape ``(dq, dk)``."""
    query_shape, keys_shape = _check_query_and_keys(query, keys)
    weight_shape = static_shape(weight)
    require_same_dim("Query depth and weight rows", "query", query_shape, -1, "weight",
                     weight_shape, 0)
    require_same_dim("Key depth and weight columns", "keys", keys_shape, -1, "weight",
                     weight_shape, 1)
    return dot_score(ops.matmul(query, weight), keys)


def additive_score(query, keys, query_weight, key_weight, score_vector):
    """Bahdanau's additive score ``e_ij = v . tanh(W1 q_i + W2 k_j)``.

    Shapes: query ``(..., Tq, dq)``, keys ``(..., Tk, dk)``, ``query_weight`` W1 ``(dq, u)``,
    ``key_weight`` W2 ``(dk, u)``, ``score_vector`` v ``(u,)``; scores ``(..., Tq, Tk)``.
    The broadcast sum builds a ``(..., Tq, Tk, u)`` tensor: additive attention costs memory
    in ``Tq * Tk * u`` where dot-product attention costs ``Tq * Tk``.
    """
    _check_query_and_keys(query, keys)
    projected_query = ops.expand_dims(ops.matmul(query, query_weight), -2)  # (..., Tq, 1, u)
    projected_keys = ops.expand_dims(ops.matmul(keys, key_weight), -3)  # (..., 1, Tk, u)
    return ops.sum(ops.tanh(projected_query + projected_keys) * score_vector, axis=-1)


def concat_score(query, keys, weight, score_vector):
    """Luong's concat score ``e_ij = v . tanh(W [q_i; k_j])``; ``weight`` W ``(dq + dk, u)``.

    ``W [q; k]`` equals ``W1 q + W2 k`` with ``W1 = W[:dq]`` and ``W2 = W[dq:]``, so this is
    the additive score with ``W`` split in two.
    """
    query_depth = static_shape(query)[-1]
    return additive_score(query, keys, weight[:query_depth], weight[query_depth:], score_vector)


def scaled_dot_product_attention(query, keys, values, mask=None, causal=False):
    """``softmax(Q K^T / sqrt(d)) V`` (Vaswani et al. 2017, eq. 1), with masks.

    Dividing by ``sqrt(d)`` keeps the variance of ``q . k`` at one whatever the depth ``d``, so
    the softmax does not saturate (lesson 05 measures this).

    Args:
        query: ``(..., Tq, d)``.
        keys: ``(..., Tk, d)``.
        values: ``(..., Tk, dv)``.
        mask: optional boolean, broadcastable to ``(..., Tq, Tk)``; True = attend.
        causal: if True, query ``i`` attends only to keys ``j <= i`` (AND-ed with ``mask``).

    Returns:
        ``(output, weights)``: output ``(..., Tq, dv)``, weights ``(..., Tq, Tk)``. A query
        whose keys are all masked gets zero weights and a zero output.
    """
    check_attention_inputs(query, keys, values)
    depth = ops.cast(ops.shape(query)[-1], query.dtype)
    scores = dot_score(query, keys) / ops.sqrt(depth)
    if causal:
        future = causal_mask(ops.shape(query)[-2], ops.shape(keys)[-2])
        mask = future if mask is None else ops.logical_and(ops.cast(mask, "bool"), future)
    weights = masked_softmax(scores, mask)
    return ops.matmul(weights, values), weights
