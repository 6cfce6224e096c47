"""Attention with linear biases (ALiBi), Press, Smith & Lewis 2022, "Train Short, Test Long:
Attention with Linear Biases Enables Input Length Extrapolation", §3."""

import math

import keras
import numpy as np
from keras import ops

from course_lib.validation import require_positive_int, require_rank


def alibi_slopes(num_heads, alibi_bias_max=8):
    """The heads' slopes ``m_h``, a float64 array ``(num_heads,)``.

    For ``H`` a power of two, the geometric sequence ``m_h = 2^(-alibi_bias_max (h + 1) / H)``,
    ``h = 0 … H-1`` (1/2, 1/4, … 1/256 for 8 heads); otherwise the slopes of the power of two
    below ``H``, then every other slope of the power of two above it (the paper's rule).
    """
    num_heads = require_positive_int("num_heads", num_heads)
    if not alibi_bias_max > 0:
        raise ValueError(f"`alibi_bias_max` must be positive, received {alibi_bias_max!r}.")
    if math.log2(num_heads).is_integer():
        return 2.0 ** (-alibi_bias_max * np.arange(1, num_heads + 1) / num_heads)
    below = 2 ** math.floor(math.log2(num_heads))
    extra = alibi_slopes(2 * below, alibi_bias_max)[0::2][:num_heads - below]
    return np.concatenate([alibi_slopes(below, alibi_bias_max), extra])


@keras.saving.register_keras_serializable(package="course_lib")
class AlibiBias(keras.layers.Layer):
    """Add to the attention scores a penalty that grows linearly with the distance:

    ``scores[b, h, i, j] + m_h · (j − i)`` for query position ``i`` and key position ``j``
    (``j <= i`` under a causal mask, so the bias is ``−m_h × distance``), with one fixed slope
    ``m_h`` per head (:func:`alibi_slopes`). No position is added to the input: a head with a
    large slope looks at the last few tokens, one with a small slope far back. Nothing is
    learned and nothing depends on a largest position, so the same bias applies to sequences
    longer than the training ones (the paper's point).

    ``keras_hub.layers.AlibiBias`` adds ``m_h · (j − (T_k − 1))``, the distance to the *last*
    key: for query ``i`` that differs from ours by ``m_h · (T_k − 1 − i)``, the same for every
    key of the row, which the softmax removes. So the two give the same attention weights (and
    the same scores on the last query row); ours also serves queries at any position of a
    cache, since it is written in positions.

    Args:
        alibi_bias_max: the slopes run from ``2^(-alibi_bias_max/H)`` down to
            ``2^(-alibi_bias_max)`` (8 in the paper).

    Call arguments:
        attention_scores: ``(B, H, Tq, Tk)``.
        query_positions: ``(Tq,)`` ints, default ``0 … Tq-1``.
        key_positions: ``(Tk,)`` ints, default ``0 … Tk-1``.

    Returns:
        The biased scores, ``(B, H, Tq, Tk)``.
    """

    def __init__(self, alibi_bias_max=8, **kwargs):
        super().__init__(**kwargs)
        alibi_slopes(1, alibi_bias_max)                       # validates alibi_bias_max
        self.alibi_bias_max = alibi_bias_max
        self.built = True

    def bias(self, num_heads, query_positions, key_positions):
        """``m_h · (j − i)``: ``(H, Tq, Tk)`` in the compute dtype."""
        slopes = ops.convert_to_tensor(alibi_slopes(num_heads, self.alibi_bias_max), "float32")
        offsets = (ops.expand_dims(ops.cast(key_positions, "float32"), 0)
                   - ops.expand_dims(ops.cast(query_positions, "float32"), 1))  # (Tq, Tk)
        bias = ops.reshape(slopes, (-1, 1, 1)) * offsets                         # (H, Tq, Tk)
        return ops.cast(bias, self.compute_dtype)

    def call(self, attention_scores, query_positions=None, key_positions=None):
        shape = require_rank("attention_scores", attention_scores, 4)
        if shape[1] is None:
            raise ValueError(f"`attention_scores` of shape {shape} need a known number of "
                             f"heads (axis 1): each head has its own slope.")
        if query_positions is None:
            query_positions = ops.arange(ops.shape(attention_scores)[2])
        if key_positions is None:
            key_positions = ops.arange(ops.shape(attention_scores)[3])
        for name, positions, axis in (("query_positions", query_positions, 2),
                                      ("key_positions", key_positions, 3)):
            positions_shape = require_rank(name, positions, 1)
            if None not in (positions_shape[0], shape[axis]) and positions_shape[0] != shape[
                    axis]:
                raise ValueError(f"`{name}` of shape {positions_shape} does not match axis "
                                 f"{axis} of `attention_scores` of shape {shape}.")
        return attention_scores + self.bias(shape[1], query_positions, key_positions)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alibi_bias_max": self.alibi_bias_max}
