"""The block of a decoder-only Transformer (GPT): causal self-attention and a feed-forward net,
pre-LN, with a key/value cache for generation.

Radford et al. 2019 ("Language Models are Unsupervised Multitask Learners", GPT-2, §2.3) moved
the LayerNorm of Vaswani et al.'s block to the input of each sublayer (pre-LN, Xiong et al.
2020):

``h = x + Dropout(CausalSelfAttention(LN_1(x)))``,  ``y = h + Dropout(FFN(LN_2(h)))``,
``FFN(z) = W_2 act(W_1 z + b_1) + b_2``.

It is lesson 08's ``TransformerDecoderBlock(normalize_first=True)`` built without
cross-attention, and keras_hub's ``TransformerDecoder(normalize_first=True)`` called without
encoder inputs, with the same sublayer names (so ``copy_weights_from`` takes keras_hub's
weights); what it adds is the cache of ``CachedMultiHeadAttention``.
"""

import keras

from course_lib.layers.cached_attention import CachedMultiHeadAttention
from course_lib.layers.weight_copy import assign_variable, find_variable, has_variable
from course_lib.validation import require_positive_int, require_rank

# Dense and LayerNormalization sublayers that carry the same names in keras_hub's decoder.
PLAIN_SUBLAYERS = ("self_attention_layer_norm", "feedforward_layer_norm",
                   "feedforward_intermediate_dense", "feedforward_output_dense")


@keras.saving.register_keras_serializable(package="course_lib")
class DecoderOnlyBlock(keras.layers.Layer):
    """One pre-LN decoder-only block (see the module docstring); each head has depth
    ``d_model / num_heads``.

    Args:
        intermediate_dim: width ``d_ff`` of the feed-forward hidden layer.
        num_heads: attention heads; must divide ``d_model``.
        dropout: rate on the attention weights and both residual branches (training only).
        layer_norm_epsilon: epsilon of both layer norms.
        activation: of the feed-forward hidden layer (GPT-2: GELU).

    Call arguments:
        x: ``(B, T, d_model)``.
        attention_mask: optional boolean ``(B, T, S)``, True = attend, AND-ed with the causal
            mask (``S = T`` without a cache, the cache's length with one).
        cache: optional ``(B, 2, S, num_heads, d_model / num_heads)``, this block's keys and
            values (see ``CachedMultiHeadAttention``); ``x`` then holds the new tokens only.
        cache_update_index: position of ``x``'s first token; required with ``cache``.
        return_attention_scores: also return the attention weights ``(B, H, T, S)``.
        training: enables dropout.

    Returns:
        ``y (B, T, d_model)``; with ``return_attention_scores`` also the weights, and with a
        ``cache`` also the updated cache, in that order: ``(y, weights, cache)``.
    """

    def __init__(self, intermediate_dim, num_heads, dropout=0.0, layer_norm_epsilon=1e-5,
                 activation="gelu", **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = require_positive_int("intermediate_dim", intermediate_dim)
        self.num_heads = require_positive_int("num_heads", num_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout!r}.")
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.activation = keras.activations.get(activation)

    def build(self, x_shape):
        d_model = x_shape[-1]
        if d_model is None or d_model % self.num_heads:
            raise ValueError(f"The model depth d_model={d_model} (last axis of the input, "
                             f"received shape {tuple(x_shape)}) must be divisible by "
                             f"num_heads={self.num_heads}.")
        policy = self.dtype_policy
        self.self_attention = self.make_attention(d_model)
        self.self_attention.build(x_shape, x_shape)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="self_attention_layer_norm")
        self.self_attention_layer_norm.build(x_shape)
        self.self_attention_dropout = keras.layers.Dropout(self.dropout, dtype=policy,
                                                           name="self_attention_dropout")
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="feedforward_layer_norm")
        self.feedforward_layer_norm.build(x_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, dtype=policy,
            name="feedforward_intermediate_dense")
        self.feedforward_intermediate_dense.build(x_shape)
        self.feedforward_output_dense = keras.layers.Dense(
            d_model, dtype=policy, name="feedforward_output_dense")
        self.feedforward_output_dense.build((*x_shape[:-1], self.intermediate_dim))
        self.feedforward_dropout = keras.layers.Dropout(self.dropout, dtype=policy,
                                                        name="feedforward_dropout")

    def make_attention(self, d_model):
        """The causal self-attention sublayer: ``CachedMultiHeadAttention`` with heads of
        ``d_model / num_heads``; a variant of the block (other positions, shared keys) overrides
        this."""
        return CachedMultiHeadAttention(self.num_heads, d_model // self.num_heads,
                                        dropout=self.dropout, dtype=self.dtype_policy,
                                        name="self_attention")

    def call(self, x, attention_mask=None, cache=None, cache_update_index=None,
             return_attention_scores=False, training=None):
        require_rank("x", x, 3)
        normed = self.self_attention_layer_norm(x)
        if cache is None:
            attended = self.self_attention(
                normed, normed, attention_mask=attention_mask, use_causal_mask=True,
                return_attention_scores=return_attention_scores, training=training)
        else:
            attended = self.self_attention(
                normed, normed, attention_mask=attention_mask, cache=cache,
                cache_update_index=cache_update_index,
                return_attention_scores=return_attention_scores, training=training)
        if return_attention_scores or cache is not None:
            attended, *extras = attended          # extras: [weights][, cache]
        else:
            extras = []
        h = x + self.self_attention_dropout(attended, training=training)

        hidden = self.feedforward_intermediate_dense(self.feedforward_layer_norm(h))
        feedforward = self.feedforward_output_dense(hidden)
        y = h + self.feedforward_dropout(feedforward, training=training)
        return (y, *extras) if extras else y

    def copy_weights_from(self, keras_hub_layer):
        """Take the weights of a built ``keras_hub.layers.TransformerDecoder`` without
        cross-attention, by name (build it with ``normalize_first=True`` for the same
        function)."""
        if has_variable(keras_hub_layer, "cross_attention/query/kernel"):
            raise ValueError(f"'{keras_hub_layer.name}' has cross-attention; a decoder-only "
                             f"block has none.")
        if not self.built:
            d_model = tuple(find_variable(keras_hub_layer,
                                          "self_attention/query/kernel").shape)[0]
            self.build((None, None, d_model))
        self.self_attention.copy_weights_from(keras_hub_layer, _prefix="self_attention")
        for name in PLAIN_SUBLAYERS:
            ours = getattr(self, name)
            parts = ("kernel", "bias") if isinstance(ours, keras.layers.Dense) else ("gamma",
                                                                                    "beta")
            for part in parts:
                assign_variable(getattr(ours, part),
                                find_variable(keras_hub_layer, f"{name}/{part}"))

    def get_config(self):
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation": keras.activations.serialize(self.activation),
        }
