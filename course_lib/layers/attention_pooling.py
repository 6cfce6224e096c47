"""Attention pooling: one learned query reads a sequence into one vector (the sentence vector of
lesson 06's classifier; the attention of Yang et al. 2016, "Hierarchical Attention Networks",
with the query applied to the states directly)."""

import keras
from keras import ops

from course_lib.attention import masked_softmax
from course_lib.validation import require_rank, static_shape


@keras.saving.register_keras_serializable(package="course_lib")
class AttentionPooling(keras.layers.Layer):
    """``a = softmax_t(w · h_t)`` over the real tokens, ``s = Σ_t a_t h_t``.

    A single learned vector ``w`` of shape ``(D,)`` scores every token's state; the weights are
    a distribution over the tokens where ``mask`` is True (padding gets exactly 0, a row with no
    real token gets all zeros), and the pooled vector is their weighted average. The weights
    ``a`` are what a heat map of "which words the classifier read" shows.

    Args:
        initializer: the initial value of ``w`` (``"glorot_uniform"``).

    Call arguments:
        values: ``(B, T, D)``, the token states ``h``.
        mask: optional ``(B, T)`` boolean, True at real tokens.

    Returns:
        ``(pooled (B, D), weights (B, T))``.
    """

    def __init__(self, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, values_shape, mask_shape=None):
        if len(values_shape) != 3:
            raise ValueError(f"`values` must have rank 3, (batch, tokens, depth), but received "
                             f"shape {tuple(values_shape)}.")
        self.query = self.add_weight(name="query", shape=(values_shape[-1],),
                                     initializer=self.initializer)

    def call(self, values, mask=None):
        shape = require_rank("values", values, 3)
        depth = self.query.shape[0]
        if shape[-1] is not None and shape[-1] != depth:
            raise ValueError(f"`values` of shape {shape} have depth {shape[-1]}, but the layer "
                             f"was built for depth {depth}.")
        if mask is not None:
            mask_shape = static_shape(mask)
            if len(mask_shape) != 2 or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(mask_shape, shape[:2], strict=True)):
                raise ValueError(f"`mask` of shape {mask_shape} must be (batch, tokens) for "
                                 f"`values` of shape {shape}.")
        scores = ops.einsum("btd,d->bt", values, ops.cast(self.query, values.dtype))  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        pooled = ops.einsum("bt,btd->bd", weights, values)  # (B, D)
        return pooled, weights

    def compute_output_shape(self, values_shape, mask_shape=None):
        return (values_shape[0], values_shape[2]), (values_shape[0], values_shape[1])

    def get_config(self):
        return {**super().get_config(),
                "initializer": keras.initializers.serialize(self.initializer)}
