"""Transformer encoder and decoder blocks, Vaswani et al. 2017, "Attention Is All You Need", §3.1.

Post-LN (the paper, and keras_hub's default): ``x = LayerNorm(x + Dropout(Sublayer(x)))``.
Pre-LN (``normalize_first=True``; Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture"): ``x = x + Dropout(Sublayer(LayerNorm(x)))``, which keeps an identity path from
input to output and trains deep stacks without a learning-rate warm-up.

The decoder block built without cross-attention is the block of a decoder-only Transformer
(GPT-2, Radford et al. 2019, is its pre-LN form); for generating one token at a time its
self-attention reads and updates a key/value cache (``CachedMultiHeadAttention``).
"""

import keras
from keras import ops

from course_lib.attention import causal_mask
from course_lib.layers.cached_attention import CachedMultiHeadAttention
from course_lib.layers.multi_head_attention import MultiHeadAttention
from course_lib.layers.weight_copy import assign_variable, find_variable, has_variable
from course_lib.validation import (
    require_positive_int,
    require_rank,
    require_shape,
    static_shape,
)


def _require_mask(name, mask, expected):
    require_shape(name, mask, expected)
    return ops.cast(mask, "bool")


class TransformerBlock(keras.layers.Layer):
    """What the encoder and decoder blocks share: their settings, their sublayers' construction,
    and the feed-forward sublayer ``FFN(x) = W2 act(W1 x + b1) + b2`` with ``W1 (d,
    intermediate_dim)``, ``W2 (intermediate_dim, d)``. Every sublayer takes the block's dtype
    policy, so the block runs in mixed precision as Keras's own layers do."""

    def __init__(self, intermediate_dim, num_heads, dropout=0.0, normalize_first=False,
                 layer_norm_epsilon=1e-5, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = require_positive_int("intermediate_dim", intermediate_dim)
        self.num_heads = require_positive_int("num_heads", num_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout!r}.")
        self.dropout = float(dropout)
        self.normalize_first = bool(normalize_first)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.activation = keras.activations.get(activation)
        self.supports_masking = True

    def _attention(self, x_shape, name, layer_class=MultiHeadAttention):
        hidden_dim = x_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The model depth d_model={hidden_dim} (last axis of the input, received shape "
                f"{tuple(x_shape)}) must be divisible by num_heads={self.num_heads}.")
        return layer_class(self.num_heads, hidden_dim // self.num_heads, dropout=self.dropout,
                           dtype=self.dtype_policy, name=name)

    def _layer_norm(self, name, shape):
        layer = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                                dtype=self.dtype_policy, name=name)
        layer.build(shape)
        return layer

    def _dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _build_feedforward(self, x_shape):
        self.feedforward_layer_norm = self._layer_norm("feedforward_layer_norm", x_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, dtype=self.dtype_policy,
            name="feedforward_intermediate_dense")
        self.feedforward_intermediate_dense.build(x_shape)
        self.feedforward_output_dense = keras.layers.Dense(
            x_shape[-1], dtype=self.dtype_policy, name="feedforward_output_dense")
        self.feedforward_output_dense.build((*x_shape[:-1], self.intermediate_dim))
        self.feedforward_dropout = self._dropout("feedforward_dropout")

    def _feedforward_sublayer(self, x, training):
        """``LN(x + Drop(FFN(x)))`` (post-LN) or ``x + Drop(FFN(LN(x)))`` (pre-LN)."""
        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_intermediate_dense(x)
        x = self.feedforward_output_dense(x)
        x = self.feedforward_dropout(x, training=training)
        x = residual + x
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)
        return x

    def _copy_plain_sublayers(self, keras_hub_layer, names):
        """Dense and LayerNormalization sublayers that carry the same names in keras_hub."""
        for name in names:
            ours = getattr(self, name)
            for weight in ("kernel", "bias") if isinstance(ours, keras.layers.Dense) else (
                    "gamma", "beta"):
                assign_variable(getattr(ours, weight),
                                find_variable(keras_hub_layer, f"{name}/{weight}"))

    def get_config(self):
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "normalize_first": self.normalize_first,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation": keras.activations.serialize(self.activation),
        }


FEEDFORWARD_SUBLAYERS = ("feedforward_layer_norm", "feedforward_intermediate_dense",
                         "feedforward_output_dense")


@keras.saving.register_keras_serializable(package="course_lib")
class TransformerEncoderBlock(TransformerBlock):
    """One encoder layer: multi-head self-attention, then a position-wise feed-forward net, each
    inside a residual connection with layer normalization (post-LN, or pre-LN with
    ``normalize_first=True``). Equal to ``keras_hub.layers.TransformerEncoder`` with the same
    weights (``copy_weights_from``); each head has depth ``d_model / num_heads``.

    Args:
        intermediate_dim: width of the feed-forward hidden layer (``d_ff``, 4 × d in the paper).
        num_heads: number of attention heads; must divide ``d_model``.
        dropout: rate for the attention weights and both residual branches (training only).
        normalize_first: pre-LN if True, post-LN (the paper) if False.
        layer_norm_epsilon: epsilon of both layer norms.
        activation: activation of the feed-forward hidden layer.

    Call arguments:
        x: ``(B, T, d_model)``.
        padding_mask: boolean ``(B, T)``, True at real tokens.
        attention_mask: boolean ``(B, T, T)``, True = attend; AND-ed with ``padding_mask``.
        return_attention_scores: also return the self-attention weights ``(B, H, T, T)``.
        training: enables dropout.

    Returns:
        ``(B, T, d_model)``, or ``(output, weights)`` with ``return_attention_scores=True``.
    """

    def build(self, x_shape):
        self.self_attention = self._attention(x_shape, "self_attention")
        self.self_attention.build(x_shape, x_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", x_shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self._build_feedforward(x_shape)

    def call(self, x, padding_mask=None, attention_mask=None, return_attention_scores=False,
             training=None):
        batch, length, _ = require_rank("x", x, 3)
        mask = None
        if padding_mask is not None:
            mask = ops.expand_dims(_require_mask("padding_mask", padding_mask, (batch, length)), 1)
        if attention_mask is not None:
            attention_mask = _require_mask("attention_mask", attention_mask,
                                           (batch, length, length))
            mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)

        # Self-attention sublayer.
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x, scores = self.self_attention(x, x, attention_mask=mask,
                                        return_attention_scores=True, training=training)
        x = self.self_attention_dropout(x, training=training)
        x = residual + x
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        x = self._feedforward_sublayer(x, training)
        return (x, scores) if return_attention_scores else x

    def copy_weights_from(self, keras_hub_layer):
        """Take the weights of a built ``keras_hub.layers.TransformerEncoder`` by name."""
        if not self.built:
            hidden_dim = tuple(find_variable(
                keras_hub_layer, "self_attention_layer/query/kernel").shape)[0]
            self.build((None, None, hidden_dim))
        self.self_attention.copy_weights_from(keras_hub_layer, _prefix="self_attention_layer")
        self._copy_plain_sublayers(keras_hub_layer,
                                   ("self_attention_layer_norm", *FEEDFORWARD_SUBLAYERS))


@keras.saving.register_keras_serializable(package="course_lib")
class TransformerDecoderBlock(TransformerBlock):
    """One decoder layer: causal multi-head self-attention, then cross-attention to the encoder's
    outputs, then the feed-forward net, each inside a residual connection with layer
    normalization. Without ``encoder_outputs`` (when built so) it is a decoder-only block
    (GPT-style) with no cross-attention. Equal to ``keras_hub.layers.TransformerDecoder`` with
    the same weights (``copy_weights_from``), with or without a cache.

    The self-attention is a ``CachedMultiHeadAttention``: without a cache it is lesson 07's
    ``MultiHeadAttention``; with ``self_attention_cache`` (keras_hub's argument names) ``x``
    holds only the new tokens, at positions ``self_attention_cache_update_index …``, their keys
    and values are written into the cache, and they attend to every cached position up to their
    own. Generating token ``t`` then costs one position per layer instead of ``t``.

    Args: as ``TransformerEncoderBlock``.

    Call arguments:
        x: the target sequence so far, ``(B, T, d_model)``.
        encoder_outputs: ``(B, S, d_enc)``, or None for a decoder-only block.
        decoder_padding_mask: boolean ``(B, T)``; encoder_padding_mask: boolean ``(B, S)``.
        use_causal_mask: position ``i`` sees targets ``j <= i`` only (True for training a
            translator; switching it off lets the decoder read the answer: lesson 05's trap).
        return_attention_scores: also return the attention weights: the self-attention's
            ``(B, H, T, T)`` (``(B, H, T, L)`` with a cache) and, with cross-attention, the
            cross-attention's ``(B, H, T, S)`` (where each target position looked in the
            source).
        self_attention_cache: ``(B, 2, L, H, d_model / H)``, the keys and values of ``L``
            positions (see ``CachedMultiHeadAttention``), or None. With a cache the
            self-attention is always causal and takes no ``decoder_padding_mask``.
        self_attention_cache_update_index: the position of ``x``'s first token (an int or an
            int tensor); required with a cache.
        training: enables dropout.

    Returns:
        ``(B, T, d_model)``; with ``return_attention_scores=True``, ``(output, self_weights,
        cross_weights)``, or ``(output, self_weights)`` for a decoder-only block; with a cache,
        the updated cache comes last: ``(output, cache)``, ``(output, self_weights, cache)``…
    """

    def build(self, x_shape, encoder_outputs_shape=None):
        self.self_attention = self._attention(x_shape, "self_attention",
                                              CachedMultiHeadAttention)
        self.self_attention.build(x_shape, x_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", x_shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.has_cross_attention = encoder_outputs_shape is not None
        if self.has_cross_attention:
            self.cross_attention = self._attention(x_shape, "cross_attention")
            self.cross_attention.build(x_shape, encoder_outputs_shape)
            self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm",
                                                               x_shape)
            self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self._build_feedforward(x_shape)

    def call(self, x, encoder_outputs=None, decoder_padding_mask=None,
             encoder_padding_mask=None, use_causal_mask=True, return_attention_scores=False,
             self_attention_cache=None, self_attention_cache_update_index=None, training=None):
        batch, length, _ = require_rank("x", x, 3)
        if (encoder_outputs is not None) != self.has_cross_attention:
            received = ("no `encoder_outputs`" if encoder_outputs is None else
                        f"`encoder_outputs` of shape {static_shape(encoder_outputs)}")
            raise ValueError(
                "This decoder block was built " + ("with" if self.has_cross_attention else
                                                   "without")
                + " cross-attention, so `encoder_outputs` must be "
                + ("given" if self.has_cross_attention else "None")
                + f"; received `x` of shape {static_shape(x)} and {received}.")
        cached = self_attention_cache is not None
        if cached and (decoder_padding_mask is not None or not use_causal_mask):
            raise ValueError("With a `self_attention_cache` the self-attention is causal over "
                             "the cache: give no `decoder_padding_mask` and keep "
                             "`use_causal_mask=True`.")
        if not cached and self_attention_cache_update_index is not None:
            raise ValueError(f"`self_attention_cache_update_index` "
                             f"({self_attention_cache_update_index!r}) was given without a "
                             f"`self_attention_cache`.")
        self_mask = None
        if decoder_padding_mask is not None:
            self_mask = ops.expand_dims(
                _require_mask("decoder_padding_mask", decoder_padding_mask, (batch, length)), 1)
        if use_causal_mask and not cached:
            future = ops.expand_dims(causal_mask(ops.shape(x)[1]), 0)
            self_mask = future if self_mask is None else ops.logical_and(self_mask, future)

        # Causal self-attention sublayer (with a cache: over the cached positions too).
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        if cached:
            x, self_scores, self_attention_cache = self.self_attention(
                x, x, cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                return_attention_scores=True, training=training)
        else:
            x, self_scores = self.self_attention(x, x, attention_mask=self_mask,
                                                 return_attention_scores=True,
                                                 training=training)
        x = self.self_attention_dropout(x, training=training)
        x = residual + x
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        # Cross-attention sublayer: the queries come from the target, keys and values from
        # the encoder's outputs.
        cross_scores = None
        if self.has_cross_attention:
            encoder_shape = require_rank("encoder_outputs", encoder_outputs, 3)
            cross_mask = None
            if encoder_padding_mask is not None:
                cross_mask = ops.expand_dims(_require_mask(
                    "encoder_padding_mask", encoder_padding_mask, encoder_shape[:2]), 1)
            residual = x
            if self.normalize_first:
                x = self.cross_attention_layer_norm(x)
            x, cross_scores = self.cross_attention(x, encoder_outputs, attention_mask=cross_mask,
                                                   return_attention_scores=True,
                                                   training=training)
            x = self.cross_attention_dropout(x, training=training)
            x = residual + x
            if not self.normalize_first:
                x = self.cross_attention_layer_norm(x)

        x = self._feedforward_sublayer(x, training)
        outputs = [x]
        if return_attention_scores:
            outputs += [self_scores, cross_scores] if self.has_cross_attention else [self_scores]
        if cached:
            outputs.append(self_attention_cache)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def copy_weights_from(self, keras_hub_layer):
        """Take the weights of a built ``keras_hub.layers.TransformerDecoder`` by name."""
        theirs_has_cross = has_variable(keras_hub_layer, "cross_attention/query/kernel")
        if not self.built:
            hidden_dim = tuple(find_variable(
                keras_hub_layer, "self_attention/query/kernel").shape)[0]
            encoder_shape = None
            if theirs_has_cross:
                encoder_dim = tuple(find_variable(
                    keras_hub_layer, "cross_attention/key/kernel").shape)[0]
                encoder_shape = (None, None, encoder_dim)
            self.build((None, None, hidden_dim), encoder_shape)
        if theirs_has_cross != self.has_cross_attention:
            raise ValueError(
                f"Cross-attention differs: this block has_cross_attention="
                f"{self.has_cross_attention}, '{keras_hub_layer.name}' {theirs_has_cross}.")
        self.self_attention.copy_weights_from(keras_hub_layer, _prefix="self_attention")
        names = ["self_attention_layer_norm", *FEEDFORWARD_SUBLAYERS]
        if self.has_cross_attention:
            self.cross_attention.copy_weights_from(keras_hub_layer, _prefix="cross_attention")
            names.append("cross_attention_layer_norm")
        self._copy_plain_sublayers(keras_hub_layer, names)
