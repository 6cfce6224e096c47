"""Grouped-query attention, Ainslie et al. 2023, "GQA: Training Generalized Multi-Query
Transformer Models from Multi-Head Checkpoints", §2; multi-query attention, Shazeer 2019, "Fast
Transformer Decoding: One Write-Head is All You Need"."""

import math

import keras
import numpy as np
from keras import ops

from course_lib.attention import masked_softmax, position_visibility
from course_lib.layers.alibi_bias import AlibiBias
from course_lib.layers.multi_head_attention import (
    KERAS_WEIGHT_NAMES,
    combined_mask,
    project_heads,
)
from course_lib.layers.rotary_embedding import RotaryEmbedding
from course_lib.layers.weight_copy import assign_variable, find_variable, has_variable
from course_lib.validation import (
    require_positive_int,
    require_rank,
    require_same_dim,
)

POSITION_ENCODINGS = (None, "rotary", "alibi")


def attention_parameters(d_model, head_dim, num_query_heads, num_key_value_heads,
                         use_bias=True):
    """Weights of a grouped-query attention layer on inputs of depth ``d_model``:

    ``(d_model + 1) · H_q · head_dim`` (queries) ``+ 2 (d_model + 1) · H_kv · head_dim`` (keys
    and values) ``+ H_q · head_dim · d_model + d_model`` (output), without the ``+ 1`` and
    ``+ d_model`` bias terms when ``use_bias`` is False. ``H_kv = H_q`` is multi-head
    attention, ``H_kv = 1`` multi-query attention."""
    counts = [require_positive_int(name, value) for name, value in (
        ("d_model", d_model), ("head_dim", head_dim), ("num_query_heads", num_query_heads),
        ("num_key_value_heads", num_key_value_heads))]
    d_model, head_dim, query_heads, kv_heads = counts
    inputs = d_model + (1 if use_bias else 0)
    return (inputs * query_heads * head_dim + 2 * inputs * kv_heads * head_dim
            + query_heads * head_dim * d_model + (d_model if use_bias else 0))


def ring_slot_positions(slots, cache_update_index):
    """The position each slot of a ring-buffer cache holds just before ``cache_update_index``
    is written: position ``p`` lives in slot ``p mod S``, so slot ``s`` holds the latest
    ``p < index`` with ``p ≡ s (mod S)``; a negative position marks a slot not written yet.
    ``(S,)`` int32; the index may be traced. With ``S`` larger than every position written,
    slot ``s`` simply holds position ``s``."""
    last = ops.cast(cache_update_index, "int32") - 1
    return last - ops.mod(last - ops.arange(slots, dtype="int32"), slots)


def ring_write(slots, new, cache_update_index):
    """``slots (B, S, H, d)`` with the new entries ``new (B, T, H, d)`` of positions ``index …
    index + T - 1`` written to slots ``position mod S`` (when ``T > S`` only the last ``S``
    survive, as in a ring). One-hot placement rather than a scatter, so the index may be
    traced and the shapes stay fixed."""
    slot_count, new_count = ops.shape(slots)[1], ops.shape(new)[1]
    order = ops.arange(new_count, dtype="int32")
    targets = ops.mod(order + ops.cast(cache_update_index, "int32"), slot_count)      # (T,)
    survives = ops.greater_equal(order, new_count - slot_count)                      # (T,)
    placement = ops.logical_and(ops.expand_dims(targets, 1)
                                == ops.expand_dims(ops.arange(slot_count, dtype="int32"), 0),
                                ops.expand_dims(survives, 1))                         # (T, S)
    placement = ops.cast(placement, slots.dtype)
    written = ops.max(placement, axis=0)                                              # (S,)
    keep = ops.reshape(1 - written, (1, -1, 1, 1))                                  # (1, S, 1, 1)
    moved = ops.einsum("ts,bthd->bshd", placement, ops.cast(new, slots.dtype))      # (B, S, H, d)
    return slots * keep + moved


@keras.saving.register_keras_serializable(package="course_lib")
class GroupedQueryAttention(keras.layers.Layer):
    """Multi-head attention in which ``G = H_q / H_kv`` query heads share one key/value head:

    ``head_h = softmax(Q_h K_g(h)ᵀ / √head_dim + bias) V_g(h)``, ``g(h) = ⌊h / G⌋``,
    ``output = Concat(head_1 … head_Hq) W_O``.

    With ``H_kv = H_q`` it is multi-head attention (lesson 07), with ``H_kv = 1`` multi-query
    attention. The keys and values, and so the key/value cache of a generating model, shrink by
    ``G`` (``2 · H_kv · head_dim`` numbers per token and layer instead of ``2 · H_q ·
    head_dim``); the queries keep all their heads. Equal to ``keras.layers.GroupQueryAttention``
    with the same weights (``copy_weights_from``; query head ``h`` uses key/value head
    ``⌊h / G⌋``, as Keras's ``ops.repeat`` of the keys), and to
    ``keras.layers.MultiHeadAttention`` when ``H_kv = H_q``.

    ============================  ================================================
    weight                        shape
    ============================  ================================================
    ``query_kernel``, ``_bias``   ``(D, H_q, head_dim)``, ``(H_q, head_dim)``
    ``key_kernel``, ``_bias``     ``(D, H_kv, head_dim)``, ``(H_kv, head_dim)``
    ``value_kernel``, ``_bias``   ``(D, H_kv, head_dim)``, ``(H_kv, head_dim)``
    ``output_kernel``, ``_bias``  ``(H_q, head_dim, D)``, ``(D,)``
    ============================  ================================================

    Options for long contexts (each off by default, where the layer equals Keras's):

    - ``sliding_window=w``: query ``i`` sees keys ``j`` with ``|i − j| < w`` (Keras's band;
      with the causal mask, itself and the ``w − 1`` keys before it);
    - ``position_encoding="rotary"``: queries and keys rotated by their positions
      (``RotaryEmbedding``) before the scores; ``"alibi"``: the scores biased by
      ``m_h · (j − i)`` (``AlibiBias``).

    **The cache.** With ``cache`` (``(B, 2, S, H_kv, head_dim)``: keys, then values) the layer
    is causal self-attention for new tokens at positions ``index … index + T − 1``: they attend
    to the cached keys and to their own, then their keys and values are written into the cache,
    position ``p`` in slot ``p mod S``. A cache as long as the sequence is the usual one (slot
    ``p`` holds position ``p``); with a sliding window, ``S = w`` slots are enough for ever, a
    ring buffer in which each new key overwrites the one that just left the window (the new
    tokens bring their own keys, so even ``w − 1`` would do). Keys are cached already rotated,
    so a cached key never needs its position again.

    Args:
        head_dim: depth of each head's queries, keys and values.
        num_query_heads: ``H_q``.
        num_key_value_heads: ``H_kv``; must divide ``H_q``.
        dropout: on the attention weights, in training only.
        use_bias: whether the four projections have biases.
        sliding_window: ``w``, or None for full attention.
        position_encoding: None, ``"rotary"`` or ``"alibi"``.
        max_wavelength: of the rotary embedding.
        alibi_bias_max: of the ALiBi slopes.
        seed: of the dropout.

    Call arguments (as ``keras.layers.GroupQueryAttention``):
        query ``(B, Tq, D)``, value ``(B, Tv, Dv)``, key ``(B, Tv, Dk)`` (defaults to value);
        query_mask, value_mask, key_mask: boolean ``(B, T)`` padding masks;
        attention_mask: boolean ``(B, Tq, Tv)`` or broadcastable, True = attend;
        use_causal_mask: query ``i`` sees keys ``j <= i`` (top-left aligned);
        return_attention_scores: also return the weights;
        training: enables dropout;
        cache: ``(B, 2, S, H_kv, head_dim)`` or None (self-attention only, no padding or
            attention masks, always causal);
        cache_update_index: the position of the first new token (an int or an int tensor).

    Returns:
        ``(B, Tq, D)``, or ``(output, weights (B, H_q, Tq, Tv))`` with
        ``return_attention_scores``; with a cache, the updated cache comes last, and the
        weights are ``(B, H_q, T, S + T)`` (the cached slots, then the new tokens).
    """

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
                 use_bias=True, sliding_window=None, position_encoding=None,
                 max_wavelength=10000, alibi_bias_max=8, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.head_dim = require_positive_int("head_dim", head_dim)
        self.num_query_heads = require_positive_int("num_query_heads", num_query_heads)
        self.num_key_value_heads = require_positive_int("num_key_value_heads",
                                                        num_key_value_heads)
        if self.num_query_heads % self.num_key_value_heads:
            raise ValueError(f"`num_query_heads` ({num_query_heads}) must be divisible by "
                             f"`num_key_value_heads` ({num_key_value_heads}): each key/value "
                             f"head serves the same number of query heads.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout!r}.")
        self.sliding_window = (None if sliding_window is None
                               else require_positive_int("sliding_window", sliding_window))
        if position_encoding not in POSITION_ENCODINGS:
            raise ValueError(f"`position_encoding` must be one of {POSITION_ENCODINGS}, "
                             f"received {position_encoding!r}.")
        if position_encoding == "rotary" and self.head_dim % 2:
            raise ValueError(f"Rotary embedding turns pairs of features: `head_dim` must be "
                             f"even, received {head_dim}.")
        self.position_encoding = position_encoding
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.max_wavelength = max_wavelength
        self.alibi_bias_max = alibi_bias_max
        self.seed = seed
        policy = self.dtype_policy
        self.rotary = (RotaryEmbedding(max_wavelength, dtype=policy, name="rotary")
                       if position_encoding == "rotary" else None)
        self.alibi = (AlibiBias(alibi_bias_max, dtype=policy, name="alibi")
                      if position_encoding == "alibi" else None)
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed, dtype=policy)
        self.supports_masking = True

    @property
    def group_size(self):
        """``G``: the query heads that share one key/value head."""
        return self.num_query_heads // self.num_key_value_heads

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        query_heads, kv_heads, depth = (self.num_query_heads, self.num_key_value_heads,
                                        self.head_dim)
        # Keras's order (kernel, then bias, per projection).
        self.query_kernel = self.add_weight(name="query_kernel",
                                            shape=(query_shape[-1], query_heads, depth),
                                            initializer="glorot_uniform")
        self.query_bias = (self.add_weight(name="query_bias", shape=(query_heads, depth),
                                           initializer="zeros") if self.use_bias else None)
        self.key_kernel = self.add_weight(name="key_kernel",
                                          shape=(key_shape[-1], kv_heads, depth),
                                          initializer="glorot_uniform")
        self.key_bias = (self.add_weight(name="key_bias", shape=(kv_heads, depth),
                                         initializer="zeros") if self.use_bias else None)
        self.value_kernel = self.add_weight(name="value_kernel",
                                            shape=(value_shape[-1], kv_heads, depth),
                                            initializer="glorot_uniform")
        self.value_bias = (self.add_weight(name="value_bias", shape=(kv_heads, depth),
                                           initializer="zeros") if self.use_bias else None)
        self.output_kernel = self.add_weight(name="output_kernel",
                                             shape=(query_heads, depth, query_shape[-1]),
                                             initializer="glorot_uniform")
        self.output_bias = (self.add_weight(name="output_bias", shape=(query_shape[-1],),
                                            initializer="zeros") if self.use_bias else None)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, use_causal_mask=False, return_attention_scores=False,
             training=None, cache=None, cache_update_index=None):
        key = value if key is None else key
        query_shape = require_rank("query", query, 3)
        value_shape = require_rank("value", value, 3)
        key_shape = require_rank("key", key, 3)
        require_same_dim("Batch sizes", "query", query_shape, 0, "value", value_shape, 0)
        require_same_dim("Batch sizes", "key", key_shape, 0, "value", value_shape, 0)
        require_same_dim("Key and value lengths", "key", key_shape, 1, "value", value_shape, 1)
        if cache is None and cache_update_index is not None:
            raise ValueError(f"`cache_update_index` ({cache_update_index!r}) was given without "
                             f"a `cache`.")

        queries = project_heads(query, self.query_kernel, self.query_bias)   # (B, Tq, Hq, hd)
        keys = project_heads(key, self.key_kernel, self.key_bias)            # (B, Tv, Hkv, hd)
        values = project_heads(value, self.value_kernel, self.value_bias)    # (B, Tv, Hkv, hd)

        if cache is None:
            query_positions = ops.arange(ops.shape(query)[1])
            key_positions = ops.arange(ops.shape(key)[1])
            mask = combined_mask(query, value, query_mask, value_mask, key_mask,
                                 attention_mask, use_causal_mask, self.sliding_window)
        else:
            self._check_cache_call(query_shape, value_shape, key_shape, cache,
                                   cache_update_index,
                                   (query_mask, value_mask, key_mask, attention_mask))
            query_positions = ops.arange(ops.shape(query)[1]) + ops.cast(cache_update_index,
                                                                         "int32")
            key_positions = query_positions                    # the new tokens' own keys

        if self.rotary is not None:
            queries = self.rotary(queries, positions=query_positions)
            keys = self.rotary(keys, positions=key_positions)

        if cache is not None:
            # Attend to the cached slots and to the new tokens, then write the new ones in.
            slot_positions = ring_slot_positions(ops.shape(cache)[2], cache_update_index)
            new_keys, new_values = ops.cast(keys, cache.dtype), ops.cast(values, cache.dtype)
            keys = ops.concatenate([cache[:, 0], new_keys], axis=1)         # (B, S+T, Hkv, hd)
            values = ops.concatenate([cache[:, 1], new_values], axis=1)     # (B, S+T, Hkv, hd)
            key_positions = ops.concatenate([slot_positions, query_positions], axis=0)
            mask = position_visibility(query_positions, key_positions, self.sliding_window)
            mask = mask[None, None]                                         # (1, 1, T, S+T)
            cache = ops.stack([ring_write(cache[:, 0], new_keys, cache_update_index),
                               ring_write(cache[:, 1], new_values, cache_update_index)],
                              axis=1)                                       # (B, 2, S, Hkv, hd)

        output, weights = self._attend(queries, keys, values, mask, query_positions,
                                       key_positions, training)
        outputs = (output, weights) if return_attention_scores else (output,)
        if cache is not None:
            outputs = (*outputs, cache)
        return outputs[0] if len(outputs) == 1 else outputs

    def _attend(self, queries, keys, values, mask, query_positions, key_positions, training):
        """Scores of each query head against its group's key head, softmax, weighted values,
        output projection. ``queries (B, Tq, Hq, hd)``, ``keys``/``values (B, Tk, Hkv, hd)``,
        ``mask`` broadcastable to ``(B, Hq, Tq, Tk)`` or None."""
        batch, query_length = ops.shape(queries)[0], ops.shape(queries)[1]
        key_length = ops.shape(keys)[1]
        kv_heads, group = self.num_key_value_heads, self.group_size
        queries = queries * ops.cast(1.0 / math.sqrt(self.head_dim), queries.dtype)
        grouped = ops.reshape(queries, (batch, query_length, kv_heads, group,
                                        self.head_dim))                   # (B, Tq, Hkv, G, hd)
        scores = ops.einsum("bqkgd,bskd->bkgqs", grouped, keys)          # (B, Hkv, G, Tq, Tk)
        scores = ops.reshape(scores, (batch, self.num_query_heads, query_length,
                                      key_length))                        # (B, Hq, Tq, Tk)
        if self.alibi is not None:
            scores = self.alibi(scores, query_positions, key_positions)
        weights = masked_softmax(scores, mask)
        dropped = self.dropout_layer(weights, training=training)
        dropped = ops.reshape(dropped, (batch, kv_heads, group, query_length,
                                        key_length))                      # (B, Hkv, G, Tq, Tk)
        heads = ops.einsum("bkgqs,bskd->bqkgd", dropped, values)         # (B, Tq, Hkv, G, hd)
        heads = ops.reshape(heads, (batch, query_length, self.num_query_heads,
                                    self.head_dim))                       # (B, Tq, Hq, hd)
        output = ops.einsum("bqhd,hdo->bqo", heads, self.output_kernel)  # (B, Tq, D)
        if self.use_bias:
            output = output + self.output_bias
        return output, weights

    def _check_cache_call(self, query_shape, value_shape, key_shape, cache, cache_update_index,
                          masks):
        if cache_update_index is None:
            raise ValueError("A `cache` needs a `cache_update_index`: the position of the "
                             "first new token.")
        if any(mask is not None for mask in masks):
            raise ValueError("With a `cache` the attention is causal over the cache: give no "
                             "padding masks and no `attention_mask`.")
        cache_shape = require_rank("cache", cache, 5)
        require_same_dim("Query and new key lengths", "query", query_shape, 1, "value",
                         value_shape, 1)
        require_same_dim("Query and new key lengths", "query", query_shape, 1, "key",
                         key_shape, 1)
        expected = (query_shape[0], 2, cache_shape[2], self.num_key_value_heads, self.head_dim)
        if any(a is not None and b is not None and a != b
               for a, b in zip(cache_shape, expected, strict=True)):
            raise ValueError(f"`cache` must have shape (batch, 2, slots, num_key_value_heads, "
                             f"head_dim) = {expected}, received {cache_shape}.")
        slots = cache_shape[2]
        if slots is None or not isinstance(cache_update_index, int | np.integer):
            return
        if cache_update_index < 0:
            raise ValueError(f"`cache_update_index` must be >= 0, received "
                             f"{cache_update_index}.")
        if self.sliding_window is None and cache_update_index > slots:
            raise ValueError(
                f"A cache of {slots} slots (`cache` of shape {cache_shape}) has lost positions "
                f"before {cache_update_index - slots}, which new tokens at index "
                f"{cache_update_index} must see without a sliding window: allocate at least "
                f"as many slots as positions.")
        if self.sliding_window is not None and slots < self.sliding_window - 1:
            raise ValueError(f"A cache of {slots} slots (`cache` of shape {cache_shape}) "
                             f"cannot hold the {self.sliding_window - 1} earlier keys that a "
                             f"window of {self.sliding_window} sees.")

    def compute_mask(self, query, value, key=None, query_mask=None, value_mask=None,
                     key_mask=None, attention_mask=None, **kwargs):
        return query_mask if query_mask is not None else getattr(query, "_keras_mask", None)

    def copy_weights_from(self, keras_layer, _prefix=""):
        """Take the weights of a built ``keras.layers.GroupQueryAttention`` (or, when
        ``H_kv = H_q``, ``keras.layers.MultiHeadAttention``) by name; builds this layer from
        their shapes first if needed. A ValueError names any weight missing or of another
        shape (other heads, head_dim, use_bias or input depths)."""
        prefix = f"{_prefix}/" if _prefix else ""
        if not self.built:
            depth = {role: tuple(find_variable(keras_layer, f"{prefix}{role}/kernel").shape)[0]
                     for role in ("query", "key", "value")}
            self.build((None, None, depth["query"]), (None, None, depth["value"]),
                       (None, None, depth["key"]))
        theirs_has_bias = has_variable(keras_layer, f"{prefix}query/bias")
        if theirs_has_bias != self.use_bias:
            raise ValueError(f"use_bias differs: this layer has use_bias={self.use_bias}, "
                             f"layer '{keras_layer.name}' has use_bias={theirs_has_bias}.")
        for ours, theirs in KERAS_WEIGHT_NAMES.items():
            if self.use_bias or not ours.endswith("bias"):
                assign_variable(getattr(self, ours), find_variable(keras_layer, prefix + theirs))

    def get_config(self):
        return {**super().get_config(), "head_dim": self.head_dim,
                "num_query_heads": self.num_query_heads,
                "num_key_value_heads": self.num_key_value_heads, "dropout": self.dropout,
                "use_bias": self.use_bias, "sliding_window": self.sliding_window,
                "position_encoding": self.position_encoding,
                "max_wavelength": self.max_wavelength, "alibi_bias_max": self.alibi_bias_max,
                "seed": self.seed}

