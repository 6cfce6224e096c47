"""A learned class token, Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", §3.1, eq. 1
(after BERT's ``[CLS]``, Devlin et al. 2019)."""

import keras
from keras import ops

from course_lib.validation import require_rank


@keras.saving.register_keras_serializable(package="course_lib")
class ClassToken(keras.layers.Layer):
    """Put one learned vector in front of a sequence: ``[x_class; z_1; …; z_N]``.

    The class token belongs to no patch. Through the encoder's self-attention it reads every
    patch, and the classifier reads only its final state, so it is where the model gathers
    what it needs to decide the class (the ViT's counterpart of BERT's ``[CLS]``). It is one
    weight of shape ``(D,)``, the same for every image, zero at the start as in the ViT paper's
    code.

    Args:
        initializer: the initial value of the token (``"zeros"``).

    Call arguments:
        tokens: ``(B, N, D)``.

    Returns:
        ``(B, N + 1, D)``: the class token at position 0, then ``tokens``.
    """

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, tokens_shape):
        if len(tokens_shape) != 3:
            raise ValueError(f"`tokens` must have rank 3, (batch, tokens, depth), but received "
                             f"shape {tuple(tokens_shape)}.")
        self.token = self.add_weight(name="token", shape=(tokens_shape[-1],),
                                     initializer=self.initializer)

    def call(self, tokens):
        shape = require_rank("tokens", tokens, 3)
        depth = self.token.shape[0]
        if shape[-1] is not None and shape[-1] != depth:
            raise ValueError(f"`tokens` of shape {shape} have depth {shape[-1]}, but the class "
                             f"token was built with depth {depth}.")
        batch = ops.shape(tokens)[0]
        token = ops.cast(self.token, tokens.dtype)
        token = ops.broadcast_to(ops.reshape(token, (1, 1, depth)), (batch, 1, depth))  # (B, 1, D)
        return ops.concatenate([token, tokens], axis=1)  # (B, N + 1, D)

    def compute_output_shape(self, tokens_shape):
        length = None if tokens_shape[1] is None else tokens_shape[1] + 1
        return (tokens_shape[0], length, tokens_shape[2])

    def get_config(self):
        return {**super().get_config(),
                "initializer": keras.initializers.serialize(self.initializer)}
