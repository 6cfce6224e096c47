"""Sinusoidal position encoding, Vaswani et al. 2017, "Attention Is All You Need", §3.5."""

import keras
from keras import ops

from course_lib.validation import require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """``PE(p, 2i) = sin(p / w^(2i/d))``, ``PE(p, 2i+1) = cos(p / w^(2i/d))``, ``w`` the
    ``max_wavelength``.

    Each pair of features is a clock turning at its own speed, from one turn every ``2 pi``
    positions down to one every ``2 pi w``, so every position gets a distinct pattern and
    ``PE(p + k)`` is a fixed rotation of ``PE(p)`` for any offset ``k``. Interleaved (even
    features sine, odd cosine), equal to ``keras_hub.layers.SinePositionEncoding``.

    The layer has no weights: it returns the encoding of the positions of ``inputs``, to be
    *added* to the token embeddings.

    Args:
        max_wavelength: the longest wavelength ``w`` (10000 in the paper).

    Call arguments:
        inputs: ``(..., T, d)``; only its shape is used.
        start_index: position of the first step (for decoding one step at a time).

    Returns:
        The encoding, broadcast to the shape of ``inputs``.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        if max_wavelength <= 1:
            raise ValueError(f"`max_wavelength` must be > 1, received {max_wavelength!r}.")
        self.max_wavelength = max_wavelength

    def call(self, inputs, start_index=0):
        require_rank("inputs", inputs, (2, 3, 4))
        shape = ops.shape(inputs)
        length, depth = shape[-2], shape[-1]
        dtype = self.compute_dtype
        positions = ops.cast(ops.arange(length) + start_index, dtype)
        pair_index = ops.cast(2 * (ops.arange(depth) // 2), dtype)  # 0, 0, 2, 2, 4, 4, ...
        inverse_frequency = ops.power(
            ops.cast(1.0 / self.max_wavelength, dtype), pair_index / ops.cast(depth, dtype))
        angles = ops.expand_dims(positions, 1) * ops.expand_dims(inverse_frequency, 0)
        is_odd_feature = ops.equal(ops.arange(depth) % 2, 1)
        encoding = ops.where(is_odd_feature, ops.cos(angles), ops.sin(angles))
        return ops.broadcast_to(encoding, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
