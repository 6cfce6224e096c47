"""A glimpse sensor: the image seen through one of K windows. Mnih et al. 2014, "Recurrent Models
of Visual Attention" (the sensor ρ(x, l)), reduced to one resolution and a grid of places."""

import keras
from keras import ops

from course_lib.validation import require_positive_int, require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class GlimpseSensor(keras.layers.Layer):
    """Cut an image into its ``K`` candidate glimpses, or read only the glimpse at a location.

    The image ``(H, W, C)`` is divided into ``K = (H / g)(W / g)`` square windows of ``g × g``
    pixels, numbered row by row (glimpse ``k`` sits at grid row ``k // (W / g)``, column
    ``k % (W / g)``). A location ``l ∈ {0, …, K − 1}`` names one of them, and

        ρ(x, l) = x[g · (l // (W / g)) : … + g,  g · (l % (W / g)) : … + g]

    is what a model that looks at ``l`` sees. Mnih et al.'s sensor is a "retina" of several
    resolutions centred anywhere; this one keeps what the lesson needs: a fixed set of places to
    choose from, each seen in full resolution, so that soft attention (a weighted sum over all
    ``K`` glimpses) and hard attention (one glimpse) can be compared on equal terms.

    Args:
        glimpse_size: ``g``, the side of a glimpse in pixels; must divide the image's height and
            width.

    Call arguments:
        images: ``(B, H, W, C)``, channels last.
        locations: optional ``(B,)`` integers in ``0 … K − 1``.

    Returns:
        Without ``locations``: ``(B, K, g, g, C)``, every glimpse, row by row. With them:
        ``(B, g, g, C)``, the glimpse at each image's location.
    """

    def __init__(self, glimpse_size, **kwargs):
        super().__init__(**kwargs)
        self.glimpse_size = require_positive_int("glimpse_size", glimpse_size)

    def grid(self, image_shape):
        """``(rows, columns)`` of glimpses for ``image_shape`` ``(B, H, W, C)``; a ValueError
        names the shape when ``g`` does not divide ``H`` or ``W``."""
        _, height, width, _ = image_shape
        g = self.glimpse_size
        for side, size in (("height", height), ("width", width)):
            if size is not None and size % g:
                raise ValueError(f"`images` of shape {tuple(image_shape)}: the {side} {size} is "
                                 f"not a multiple of glimpse_size={g}.")
        return (None if height is None else height // g, None if width is None else width // g)

    def build(self, images_shape, locations_shape=None):
        if len(images_shape) != 4:
            raise ValueError(f"`images` must have rank 4, (batch, height, width, channels), "
                             f"but received shape {tuple(images_shape)}.")
        self.grid(images_shape)

    def call(self, images, locations=None):
        shape = require_rank("images", images, 4)
        rows, columns = self.grid(shape)
        g, channels = self.glimpse_size, shape[-1]
        batch = ops.shape(images)[0]
        if rows is None or columns is None:
            rows, columns = ops.shape(images)[1] // g, ops.shape(images)[2] // g
        images = ops.cast(images, self.compute_dtype)
        x = ops.reshape(images, (batch, rows, g, columns, g, channels))  # (B, R, g, Cg, g, C)
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, R, Cg, g, g, C): one glimpse per (R, Cg)
        glimpses = ops.reshape(x, (batch, rows * columns, g, g, channels))  # (B, K, g, g, C)
        if locations is None:
            return glimpses
        location_shape = require_rank("locations", locations, 1)
        if shape[0] is not None and location_shape[0] is not None and \
                shape[0] != location_shape[0]:
            raise ValueError(f"`locations` of shape {location_shape} must hold one location per "
                             f"image of `images` of shape {shape}.")
        index = ops.reshape(ops.cast(locations, "int32"), (batch, 1, 1, 1, 1))  # (B, 1, 1, 1, 1)
        return ops.take_along_axis(glimpses, index, axis=1)[:, 0]  # (B, g, g, C)

    def compute_output_shape(self, images_shape, locations_shape=None):
        rows, columns = self.grid(images_shape)
        g, channels = self.glimpse_size, images_shape[-1]
        if locations_shape is not None:
            return (images_shape[0], g, g, channels)
        count = None if rows is None or columns is None else rows * columns
        return (images_shape[0], count, g, g, channels)

    def get_config(self):
        return {**super().get_config(), "glimpse_size": self.glimpse_size}
