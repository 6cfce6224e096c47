"""Multi-head self-attention with a key/value cache, for generating one token at a time.

A decoder that generates token ``t`` needs the keys and values of tokens ``0 … t``. The keys and
values of ``0 … t-1`` were already computed at the earlier steps and do not change (causal
attention: a token's key and value depend on the tokens before it only), so they are kept in a
**cache** and each step projects the new token alone:

``K_cache[:, index : index + T] = x_new W_K``,  ``V_cache[:, index : index + T] = x_new W_V``,
``out_i = softmax(q_i K_cache^T / sqrt(key_dim), keys j <= index + i) V_cache``.

This is how GPT-2 and every generating Transformer decode (keras_hub's
``CachedMultiHeadAttention``, whose call arguments and cache layout this layer shares).
"""

import math

import keras
from keras import ops

from course_lib.attention import masked_softmax
from course_lib.layers.multi_head_attention import MultiHeadAttention, project_heads
from course_lib.validation import require_rank, require_same_dim, static_shape


def cache_visibility(query_length, cache_length, cache_update_index):
    """Boolean ``(Tq, S)``: query ``i``, the token at position ``index + i``, sees cache slots
    ``j <= index + i`` (itself and the past; later slots hold the future or nothing yet).

    Lesson 05's causal mask with an offset; ``cache_update_index`` may be a traced tensor.
    """
    positions = ops.arange(query_length) + ops.cast(cache_update_index, "int32")
    return ops.expand_dims(positions, 1) >= ops.expand_dims(ops.arange(cache_length), 0)


@keras.saving.register_keras_serializable(package="course_lib")
class CachedMultiHeadAttention(MultiHeadAttention):
    """``MultiHeadAttention`` that can read and update a key/value cache.

    Without ``cache`` it is exactly ``course_lib.layers.MultiHeadAttention`` (same weights, same
    arguments). With ``cache`` it is causal self-attention over the cache:

    1. the new keys and values, ``key W_K`` and ``value W_V`` of shape ``(B, T, H, key_dim)``,
       are written into the cache at slots ``cache_update_index … cache_update_index + T - 1``;
    2. query ``i`` attends to the cache slots ``j <= cache_update_index + i``;
    3. the layer returns its output and the updated cache.

    The cache is a tensor ``(B, 2, S, H, key_dim)``: ``cache[:, 0]`` the keys, ``cache[:, 1]`` the
    values, for ``S`` positions allocated up front (so that a compiled step has fixed shapes),
    as in ``keras_hub.layers.CachedMultiHeadAttention``. It takes
    ``2 · S · H · key_dim`` numbers per sequence and layer. It needs ``value_dim == key_dim``.
    A cache is for generating, so with one the attention weights get no dropout.

    Call arguments (beside ``MultiHeadAttention``'s):
        cache: ``(B, 2, S, H, key_dim)`` or None.
        cache_update_index: the position of the first new token (an int or an int tensor);
            required with ``cache``. ``cache_update_index + T`` must not exceed ``S``.

    Returns:
        Without ``cache``, as ``MultiHeadAttention``. With ``cache``: ``(output, cache)``, or
        ``(output, weights (B, H, T, S), cache)`` with ``return_attention_scores=True``.
    """

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, use_causal_mask=False, return_attention_scores=False,
             training=None, cache=None, cache_update_index=None):
        if cache is None:
            if cache_update_index is not None:
                raise ValueError(f"`cache_update_index` ({cache_update_index!r}) was given "
                                 f"without a `cache`.")
            return super().call(query, value, key=key, query_mask=query_mask,
                                value_mask=value_mask, key_mask=key_mask,
                                attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                                return_attention_scores=return_attention_scores,
                                training=training)
        key = value if key is None else key
        self._check_cache_call(query, value, key, cache, cache_update_index,
                               (query_mask, value_mask, key_mask))
        query_length, cache_length = ops.shape(query)[1], ops.shape(cache)[2]

        queries = project_heads(query, self.query_kernel, self.query_bias)      # (B, T, H, dk)
        queries = queries * ops.cast(1.0 / math.sqrt(self.key_dim), queries.dtype)
        new_keys = project_heads(key, self.key_kernel, self.key_bias)           # (B, T, H, dk)
        new_values = project_heads(value, self.value_kernel, self.value_bias)   # (B, T, H, dk)
        start = [0, cache_update_index, 0, 0]
        keys = ops.slice_update(cache[:, 0], start, ops.cast(new_keys, cache.dtype))
        values = ops.slice_update(cache[:, 1], start, ops.cast(new_values, cache.dtype))
        cache = ops.stack([keys, values], axis=1)                               # (B, 2, S, H, dk)

        mask = cache_visibility(query_length, cache_length, cache_update_index)  # (T, S)
        if attention_mask is not None:
            mask = ops.logical_and(mask, ops.cast(attention_mask, "bool"))       # (B, T, S)
        scores = ops.einsum("bqhk,bshk->bhqs", queries, keys)                   # (B, H, T, S)
        weights = masked_softmax(scores, ops.expand_dims(mask, -3))
        heads = ops.einsum("bhqs,bshv->bqhv", weights, values)                  # (B, T, H, dv)
        output = ops.einsum("bqhv,hvo->bqo", heads, self.output_kernel)
        if self.use_bias:
            output = output + self.output_bias
        if return_attention_scores:
            return output, weights, cache
        return output, cache

    def _check_cache_call(self, query, value, key, cache, cache_update_index, padding_masks):
        if cache_update_index is None:
            raise ValueError("A `cache` needs a `cache_update_index`: the position at which "
                             "the new keys and values are written.")
        if any(mask is not None for mask in padding_masks):
            raise ValueError("Padding masks (query_mask, value_mask, key_mask) are not used "
                             "with a cache; pass an `attention_mask` of shape (B, T, S).")
        if self.value_dim != self.key_dim:
            raise ValueError(f"A cache holds keys and values in one tensor, so it needs "
                             f"value_dim == key_dim; this layer has key_dim={self.key_dim}, "
                             f"value_dim={self.value_dim}.")
        query_shape = require_rank("query", query, 3)
        value_shape = require_rank("value", value, 3)
        key_shape = require_rank("key", key, 3)
        cache_shape = require_rank("cache", cache, 5)
        require_same_dim("Batch sizes", "query", query_shape, 0, "cache", cache_shape, 0)
        require_same_dim("Batch sizes", "value", value_shape, 0, "cache", cache_shape, 0)
        require_same_dim("New keys and values", "key", key_shape, 1, "value", value_shape, 1)
        require_same_dim("Query and new key lengths", "query", query_shape, 1, "value",
                         value_shape, 1)
        expected = (query_shape[0], 2, cache_shape[2], self.num_heads, self.key_dim)
        if any(a is not None and b is not None and a != b
               for a, b in zip(cache_shape, expected, strict=True)):
            raise ValueError(f"`cache` must have shape (batch, 2, length, num_heads, key_dim) "
                             f"= {expected}, received {cache_shape}.")
        if isinstance(cache_update_index, int) and None not in (query_shape[1], cache_shape[2]):
            if not 0 <= cache_update_index <= cache_shape[2] - query_shape[1]:
                raise ValueError(
                    f"`cache_update_index` {cache_update_index} does not fit {query_shape[1]} "
                    f"new token(s) into a cache of {cache_shape[2]} positions (`cache` of "
                    f"shape {static_shape(cache)}).")
