"""Multi-head attention, Vaswani et al. 2017, "Attention Is All You Need", §3.2.2."""

import math

import keras
from keras import ops

from course_lib.attention import causal_mask, masked_softmax
from course_lib.layers.weight_copy import assign_variable, find_variable, has_variable
from course_lib.validation import (
    require_broadcastable,
    require_positive_int,
    require_rank,
    require_same_dim,
    require_shape,
    static_shape,
)


def project_heads(inputs, kernel, bias):
    """``(B, T, D) → (B, T, H, depth)``: one projection, all heads at once (``bias`` may be
    None)."""
    projected = ops.einsum("btd,dhk->bthk", inputs, kernel)
    return projected if bias is None else projected + bias


# Our weight → the tail of the path of the same weight in keras.layers.MultiHeadAttention.
KERAS_WEIGHT_NAMES = {
    "query_kernel": "query/kernel",
    "query_bias": "query/bias",
    "key_kernel": "key/kernel",
    "key_bias": "key/bias",
    "value_kernel": "value/kernel",
    "value_bias": "value/bias",
    "output_kernel": "attention_output/kernel",
    "output_bias": "attention_output/bias",
}


@keras.saving.register_keras_serializable(package="course_lib")
class MultiHeadAttention(keras.layers.Layer):
    """``MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W_O``,
    ``head_h = softmax(Q W_Q^h (K W_K^h)^T / sqrt(key_dim)) V W_V^h``.

    Each head attends in its own ``key_dim``-dimensional subspace, so ``H`` heads can follow
    ``H`` different relations at the cost of one full-width head. The weights have the shapes,
    names and order of ``keras.layers.MultiHeadAttention``, so
    ``copy_weights_from(keras_layer)`` makes the two compute the same function:

    ============================  ========================
    weight                        shape
    ============================  ========================
    ``query_kernel``, ``_bias``   ``(Dq, H, key_dim)``, ``(H, key_dim)``
    ``key_kernel``, ``_bias``     ``(Dk, H, key_dim)``, ``(H, key_dim)``
    ``value_kernel``, ``_bias``   ``(Dv, H, value_dim)``, ``(H, value_dim)``
    ``output_kernel``, ``_bias``  ``(H, value_dim, D_out)``, ``(D_out,)``
    ============================  ========================

    Args:
        num_heads: number of heads ``H``.
        key_dim: depth of each head's queries and keys.
        value_dim: depth of each head's values (defaults to ``key_dim``).
        dropout: dropout rate on the attention weights, applied in training only.
        use_bias: whether the four projections have biases.
        output_dim: depth ``D_out`` of the output (defaults to the query's depth ``Dq``).
        seed: seed of the dropout.

    Call arguments (as ``keras.layers.MultiHeadAttention``):
        query ``(B, Tq, Dq)``, value ``(B, Tv, Dv)``, key ``(B, Tv, Dk)`` (defaults to value);
        attention_mask: boolean ``(B, Tq, Tv)`` (or broadcastable), True = attend;
        query_mask, value_mask, key_mask: boolean ``(B, T)`` padding masks; Keras fills them
            from the inputs' implicit masks (``Embedding(mask_zero=True)``);
        use_causal_mask: query ``i`` attends only to keys ``j <= i`` (top-left aligned);
        return_attention_scores: also return the weights ``(B, H, Tq, Tv)``;
        training: enables dropout.

    All masks are AND-ed. A query whose keys are all masked gets zero weights.

    Returns:
        ``(B, Tq, D_out)``, or ``(output, weights)`` with ``return_attention_scores=True``.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_dim=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout!r}.")
        self.num_heads = require_positive_int("num_heads", num_heads)
        self.key_dim = require_positive_int("key_dim", key_dim)
        self.value_dim = (self.key_dim if value_dim is None
                          else require_positive_int("value_dim", value_dim))
        self.output_dim = None if output_dim is None else require_positive_int("output_dim",
                                                                               output_dim)
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.seed = seed
        # The layer's own dtype policy: a sublayer left on the global policy would cast the
        # weights back to float32 under mixed precision.
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed,
                                                  dtype=self.dtype_policy)
        self.supports_masking = True

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        heads, key_dim, value_dim = self.num_heads, self.key_dim, self.value_dim
        output_dim = self.output_dim or query_shape[-1]
        # Keras's order (kernel, then bias, per projection): .weights.h5 files store by position.
        self.query_kernel = self.add_weight(name="query_kernel",
                                            shape=(query_shape[-1], heads, key_dim),
                                            initializer="glorot_uniform")
        self.query_bias = (self.add_weight(name="query_bias", shape=(heads, key_dim),
                                           initializer="zeros") if self.use_bias else None)
        self.key_kernel = self.add_weight(name="key_kernel",
                                          shape=(key_shape[-1], heads, key_dim),
                                          initializer="glorot_uniform")
        self.key_bias = (self.add_weight(name="key_bias", shape=(heads, key_dim),
                                         initializer="zeros") if self.use_bias else None)
        self.value_kernel = self.add_weight(name="value_kernel",
                                            shape=(value_shape[-1], heads, value_dim),
                                            initializer="glorot_uniform")
        self.value_bias = (self.add_weight(name="value_bias", shape=(heads, value_dim),
                                           initializer="zeros") if self.use_bias else None)
        self.output_kernel = self.add_weight(name="output_kernel",
                                             shape=(heads, value_dim, output_dim),
                                             initializer="glorot_uniform")
        self.output_bias = (self.add_weight(name="output_bias", shape=(output_dim,),
                                            initializer="zeros") if self.use_bias else None)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, use_causal_mask=False, return_attention_scores=False,
             training=None):
        key = value if key is None else key
        query_shape = require_rank("query", query, 3)
        value_shape = require_rank("value", value, 3)
        key_shape = require_rank("key", key, 3)
        require_same_dim("Batch sizes", "query", query_shape, 0, "value", value_shape, 0)
        require_same_dim("Batch sizes", "key", key_shape, 0, "value", value_shape, 0)
        require_same_dim("Key and value lengths", "key", key_shape, 1, "value", value_shape, 1)
        mask = self._combined_mask(query, value, query_mask, value_mask, key_mask,
                                   attention_mask, use_causal_mask)

        queries = project_heads(query, self.query_kernel, self.query_bias)  # (B, Tq, H, key_dim)
        keys = project_heads(key, self.key_kernel, self.key_bias)  # (B, Tv, H, key_dim)
        values = project_heads(value, self.value_kernel, self.value_bias)  # (B, Tv, H, value_dim)
        queries = queries * ops.cast(1.0 / math.sqrt(self.key_dim), queries.dtype)

        scores = ops.einsum("bqhk,bshk->bhqs", queries, keys)  # (B, H, Tq, Tv)
        weights = masked_softmax(scores, mask)
        dropped = self.dropout_layer(weights, training=training)
        heads = ops.einsum("bhqs,bshv->bqhv", dropped, values)  # (B, Tq, H, value_dim)
        output = ops.einsum("bqhv,hvo->bqo", heads, self.output_kernel)  # (B, Tq, D_out)
        if self.use_bias:
            output = output + self.output_bias
        return (output, weights) if return_attention_scores else output

    def _combined_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                       use_causal_mask):
        """AND of every mask given, shaped ``(B, 1, Tq, Tv)`` to broadcast over heads."""
        query_shape, value_shape = static_shape(query), static_shape(value)
        scores_shape = (query_shape[0], query_shape[1], value_shape[1])
        parts = []
        # A query padding mask blanks rows (B, Tq, 1); a value or key mask blanks columns.
        for name, padding, axis, source_shape in (
                ("query_mask", query_mask, -1, query_shape),
                ("value_mask", value_mask, -2, value_shape),
                ("key_mask", key_mask, -2, value_shape)):
            if padding is None:
                continue
            require_shape(name, padding, source_shape[:2])
            parts.append(ops.expand_dims(ops.cast(padding, "bool"), axis))
        if attention_mask is not None:
            mask_shape = static_shape(attention_mask)
            require_broadcastable(
                "attention_mask", mask_shape, scores_shape,
                hint=f" Expected (batch, Tq, Tv) = {scores_shape}.")
            parts.append(ops.cast(attention_mask, "bool"))
        if use_causal_mask:
            parts.append(causal_mask(ops.shape(query)[1], ops.shape(value)[1]))
        if not parts:
            return None
        mask = parts[0]
        for part in parts[1:]:
            mask = ops.logical_and(mask, part)
        return ops.expand_dims(mask, -3)

    def compute_mask(self, query, value, key=None, query_mask=None, value_mask=None,
                     key_mask=None, attention_mask=None, **kwargs):
        return query_mask if query_mask is not None else getattr(query, "_keras_mask", None)

    def copy_weights_from(self, keras_layer, _prefix=""):
        """Take the weights of a built ``keras.layers.MultiHeadAttention`` by name.

        Builds this layer first, from the Keras layer's kernel shapes, if it is not built yet.
        Raises ``ValueError`` when a weight is missing or the shapes differ (heads, key_dim,
        value_dim, use_bias or the input depths do not match).
        """
        prefix = f"{_prefix}/" if _prefix else ""
        if not self.built:
            depth = {role: tuple(find_variable(keras_layer, f"{prefix}{role}/kernel").shape)[0]
                     for role in ("query", "key", "value")}
            self.build((None, None, depth["query"]), (None, None, depth["value"]),
                       (None, None, depth["key"]))
        theirs_has_bias = has_variable(keras_layer, f"{prefix}query/bias")
        if theirs_has_bias != self.use_bias:
            raise ValueError(
                f"use_bias differs: this layer has use_bias={self.use_bias}, layer "
                f"'{keras_layer.name}' has use_bias={theirs_has_bias}.")
        for ours, theirs in KERAS_WEIGHT_NAMES.items():
            if self.use_bias or not ours.endswith("bias"):
                assign_variable(getattr(self, ours), find_variable(keras_layer, prefix + theirs))

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_dim": self.output_dim,
            "seed": self.seed,
        }
