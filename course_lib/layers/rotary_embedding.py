"""Rotary position embedding (RoPE), Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
Position Embedding", §3.2."""

import keras
from keras import ops

from course_lib.validation import require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class RotaryEmbedding(keras.layers.Layer):
    """Rotate pairs of features by angles proportional to the position:

    ``θ_i = w^(-2i/d)`` for ``i = 0 … d/2 - 1`` (``w`` the ``max_wavelength``), and for the
    vector ``x = [x₁, x₂]`` (its two halves, ``d/2`` features each) at position ``p``:

    ``RoPE(x, p) = [x₁ cos(pθ) − x₂ sin(pθ),  x₂ cos(pθ) + x₁ sin(pθ)]``

    so feature ``i`` and feature ``i + d/2`` turn together by the angle ``p θ_i``: a 2-D
    rotation ``R(p θ_i)`` of that pair. Applied to queries and keys (not to the values, and
    not added to the input as lesson 06's sinusoidal encoding is), it makes their dot product
    depend on the offset between the two positions only:
    ``RoPE(q, m) · RoPE(k, n) = q · R((n − m) θ) k``, since ``R(a)ᵀ R(b) = R(b − a)``.

    The pairs ``(i, i + d/2)`` are GPT-NeoX's layout (the paper pairs neighbours ``(2i,
    2i+1)``; the two differ by a fixed permutation of the features). Equal to
    ``keras_hub.layers.RotaryEmbedding`` (its default ``rope_type="linear"``); the layer has no
    weights.

    Args:
        max_wavelength: ``w``, the longest wavelength (10000 in the paper).
        scaling_factor: positions are divided by it (linear position interpolation, Chen et
            al. 2023); 1 leaves them as they are.

    Call arguments:
        inputs: ``(B, T, d)`` or ``(B, T, heads, d)``, ``d`` even; the sequence on axis 1.
        start_index: position of the first token (for a cache: the index of the new tokens).
        positions: the positions themselves, ``(T,)`` or ``(B, T)``; replaces ``start_index``.

    Returns:
        The rotated ``inputs``, same shape.
    """

    def __init__(self, max_wavelength=10000, scaling_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        if not max_wavelength > 1:
            raise ValueError(f"`max_wavelength` must be > 1, received {max_wavelength!r}.")
        if not scaling_factor > 0:
            raise ValueError(f"`scaling_factor` must be positive, received {scaling_factor!r}.")
        self.max_wavelength = max_wavelength
        self.scaling_factor = float(scaling_factor)
        self.built = True

    def angles(self, positions, depth):
        """``p θ_i``: ``(..., T, d/2)`` float32 for positions ``(..., T)``."""
        exponents = ops.arange(0, depth, 2, dtype="float32") / float(depth)      # 2i / d
        inverse_frequency = ops.power(float(self.max_wavelength), -exponents)    # θ_i
        positions = ops.cast(positions, "float32") / self.scaling_factor
        return ops.expand_dims(positions, -1) * inverse_frequency

    def call(self, inputs, start_index=0, positions=None):
        shape = require_rank("inputs", inputs, (3, 4))
        depth = shape[-1]
        if depth is not None and depth % 2:
            raise ValueError(f"`inputs` of shape {shape} have an odd depth {depth}: rotary "
                             f"embedding turns pairs of features, so the depth must be even.")
        if positions is None:
            positions = ops.arange(ops.shape(inputs)[1]) + start_index                 # (T,)
        else:
            require_rank("positions", positions, (1, 2))
        angles = self.angles(positions, ops.shape(inputs)[-1])          # ((B,) T, d/2)
        if len(ops.shape(angles)) == 2:
            angles = ops.expand_dims(angles, 0)                        # (1, T, d/2)
        if len(shape) == 4:
            angles = ops.expand_dims(angles, 2)                        # (B|1, T, 1, d/2)
        cos = ops.cast(ops.cos(angles), self.compute_dtype)
        sin = ops.cast(ops.sin(angles), self.compute_dtype)
        first, second = ops.split(inputs, 2, axis=-1)                  # each (..., d/2)
        return ops.concatenate([first * cos - second * sin, second * cos + first * sin],
                               axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor}
