"""Patch embedding, Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", §3.1, eq. 1."""

import keras
from keras import ops

from course_lib.layers.weight_copy import assign_variable, find_variable
from course_lib.validation import require_positive_int, require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class PatchEmbedding(keras.layers.Layer):
    """Cut an image into ``p × p`` patches and project each one: ``z_n = vec(x_n) E + b``.

    The image ``(H, W, C)`` becomes ``N = (H / p)(W / p)`` patches, numbered row by row (patch
    ``n`` sits at grid row ``n // (W / p)``, column ``n % (W / p)``); each patch's ``p · p · C``
    numbers, flattened in (row, column, channel) order, are multiplied by ``E`` of shape
    ``(p · p · C, D)``. That is exactly a convolution with ``D`` filters of size ``p × p`` and
    stride ``p`` (no padding), read out row by row: the kernel is stored as a
    ``keras.layers.Conv2D`` kernel, ``(p, p, C, D)``, and ``copy_weights_from(conv)`` takes a
    built ``Conv2D(D, p, strides=p)``'s weights, so the two give the same numbers.

    Args:
        patch_size: the side ``p`` of a square patch; must divide the image's height and width.
        hidden_dim: ``D``, the depth of each patch's embedding.
        use_bias: whether to add a bias ``b`` of shape ``(D,)``.
        kernel_initializer, bias_initializer: as in ``Conv2D``.

    Call arguments:
        images: ``(B, H, W, C)``, channels last.

    Returns:
        ``(B, N, D)``, the patches in row-major order.
    """

    def __init__(self, patch_size, hidden_dim, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = require_positive_int("patch_size", patch_size)
        self.hidden_dim = require_positive_int("hidden_dim", hidden_dim)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _grid(self, image_shape):
        """``(rows, columns)`` of patches, or a ValueError naming the shape."""
        _, height, width, _ = image_shape
        p = self.patch_size
        for side, size in (("height", height), ("width", width)):
            if size is not None and size % p:
                raise ValueError(f"`images` of shape {tuple(image_shape)}: the {side} {size} is "
                                 f"not a multiple of patch_size={p}.")
        return (None if height is None else height // p, None if width is None else width // p)

    def build(self, image_shape):
        if len(image_shape) != 4:
            raise ValueError(f"`images` must have rank 4, (batch, height, width, channels), "
                             f"but received shape {tuple(image_shape)}.")
        self._grid(image_shape)
        p, channels = self.patch_size, image_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(p, p, channels, self.hidden_dim),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.hidden_dim,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, images):
        shape = require_rank("images", images, 4)
        rows, columns = self._grid(shape)
        channels = self.kernel.shape[2]
        if shape[-1] is not None and shape[-1] != channels:
            raise ValueError(f"`images` of shape {shape} have {shape[-1]} channels, but the "
                             f"layer was built for {channels}.")
        p = self.patch_size
        batch = ops.shape(images)[0]
        if rows is None or columns is None:
            rows, columns = ops.shape(images)[1] // p, ops.shape(images)[2] // p
        x = ops.reshape(images, (batch, rows, p, columns, p, channels))  # (B, R, p, Cg, p, C)
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, R, Cg, p, p, C): one patch per (R, Cg)
        x = ops.reshape(x, (batch, rows * columns, p * p * channels))  # (B, N, p·p·C)
        kernel = ops.reshape(self.kernel, (p * p * channels, self.hidden_dim))  # E, (p·p·C, D)
        x = ops.matmul(x, ops.cast(kernel, x.dtype))  # (B, N, D)
        if self.use_bias:
            x = x + ops.cast(self.bias, x.dtype)
        return x

    def compute_output_shape(self, image_shape):
        rows, columns = self._grid(image_shape)
        patches = None if rows is None or columns is None else rows * columns
        return (image_shape[0], patches, self.hidden_dim)

    def copy_weights_from(self, conv):
        """Take the kernel (and bias) of a built ``keras.layers.Conv2D(hidden_dim, patch_size,
        strides=patch_size)`` by name; ValueError when the shapes or settings differ."""
        if tuple(conv.kernel_size) != (self.patch_size,) * 2 or tuple(conv.strides) != (
                self.patch_size,) * 2 or conv.padding != "valid":
            raise ValueError(f"Expected a Conv2D with kernel_size = strides = "
                             f"({self.patch_size}, {self.patch_size}) and padding 'valid', "
                             f"received kernel_size {tuple(conv.kernel_size)}, strides "
                             f"{tuple(conv.strides)}, padding {conv.padding!r}.")
        if bool(conv.use_bias) != self.use_bias:
            raise ValueError(f"use_bias differs: this layer {self.use_bias}, the Conv2D "
                             f"{conv.use_bias}.")
        source = find_variable(conv, "kernel")
        if not self.built:
            self.build((None, None, None, tuple(source.shape)[2]))
        assign_variable(self.kernel, source)
        if self.use_bias:
            assign_variable(self.bias, find_variable(conv, "bias"))

    def get_config(self):
        return {
            **super().get_config(),
            "patch_size": self.patch_size,
            "hidden_dim": self.hidden_dim,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
