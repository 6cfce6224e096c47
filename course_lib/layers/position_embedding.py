"""Learned position embeddings (BERT, Devlin et al. 2019, §3; GPT; the ViT, Dosovitskiy et al.
2021, §3.1): one trainable vector per position."""

import keras
from keras import ops

from course_lib.layers.weight_copy import assign_variable, find_variable
from course_lib.validation import require_positive_int, require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class LearnedPositionEmbedding(keras.layers.Layer):
    """``PE[p]``: row ``p`` of a trainable table ``(sequence_length, D)``, to be *added* to the
    token at position ``p``.

    Unlike the sinusoidal encoding (lesson 06) the table may learn any pattern the task needs:
    in a Vision Transformer, a 2-D layout of the patches, which nobody wrote in. It has no row
    for a position beyond ``sequence_length``. Equal to
    ``keras_hub.layers.PositionEmbedding`` (``copy_weights_from``), which the lessons used before;
    the library's own keeps ``course_lib`` free of keras_hub.

    Args:
        sequence_length: the number of positions the table holds.
        initializer: initial values of the table (``"glorot_uniform"``, as keras_hub's).

    Call arguments:
        inputs: ``(B, T, D)`` with ``T <= sequence_length``; only its shape is used.
        start_index: the position of the first token.

    Returns:
        ``PE[start_index : start_index + T]`` broadcast to ``(B, T, D)``.
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = require_positive_int("sequence_length", sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        if len(inputs_shape) != 3:
            raise ValueError(f"`inputs` must have rank 3, (batch, tokens, depth), but received "
                             f"shape {tuple(inputs_shape)}.")
        self.embeddings = self.add_weight(name="embeddings",
                                          shape=(self.sequence_length, inputs_shape[-1]),
                                          initializer=self.initializer)

    def call(self, inputs, start_index=0):
        shape = require_rank("inputs", inputs, 3)
        length, depth = shape[1], self.embeddings.shape[-1]
        if length is not None and isinstance(start_index, int) and (
                start_index + length > self.sequence_length):
            raise ValueError(f"`inputs` of shape {shape} starting at position {start_index} "
                             f"need {start_index + length} positions, but the table holds "
                             f"sequence_length={self.sequence_length}.")
        if shape[-1] is not None and shape[-1] != depth:
            raise ValueError(f"`inputs` of shape {shape} have depth {shape[-1]}, but the table "
                             f"was built with depth {depth}.")
        length = ops.shape(inputs)[1]
        table = ops.cast(self.embeddings, self.compute_dtype)  # (sequence_length, D)
        table = ops.slice(table, (start_index, 0), (length, depth))  # (T, D)
        return ops.broadcast_to(table, ops.shape(inputs))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def copy_weights_from(self, keras_hub_layer):
        """Take the table of a built ``keras_hub.layers.PositionEmbedding`` by name."""
        source = find_variable(keras_hub_layer, "embeddings")
        if not self.built:
            self.build((None, None, tuple(source.shape)[-1]))
        assign_variable(self.embeddings, source)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer)}
