"""Bahdanau (additive) attention, Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by
Jointly Learning to Align and Translate", eq. 6 and appendix A.1.2."""

import keras
from keras import ops

from course_lib.attention import additive_score
from course_lib.layers.query_values_attention import QueryValuesAttention
from course_lib.validation import require_positive_int


@keras.saving.register_keras_serializable(package="course_lib")
class BahdanauAttention(QueryValuesAttention):
    """Additive attention: ``e_ij = v . tanh(W1 s_i + W2 h_j)``, ``a_i = softmax(e_i)``,
    ``c_i = sum_j a_ij h_j``.

    ``s_i`` is the decoder state (the query), ``h_j`` the encoder states (the values, which also
    serve as keys). ``W1 (dq, units)``, ``W2 (dv, units)`` and ``v (units,)`` are learned; as in
    the paper there is no bias.

    Equal to ``keras.layers.AdditiveAttention()([s @ W1, h, h @ W2])`` with its ``scale`` set
    to ``v`` (Keras's layer has no ``W1``, ``W2``: ``docs/conventions.md``, section 2).

    Args:
        units: size of the hidden layer of the scoring network.

    Call arguments and returns: see ``QueryValuesAttention``; query ``(B, dq)`` or
    ``(B, Tq, dq)``, values ``(B, Tv, dv)``, mask ``(B, Tv)``.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = require_positive_int("units", units)

    def build(self, query_shape, values_shape):
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(query_shape[-1], self.units), initializer="glorot_uniform"
        )
        self.values_kernel = self.add_weight(
            name="values_kernel", shape=(values_shape[-1], self.units),
            initializer="glorot_uniform",
        )
        self.score_vector = self.add_weight(
            name="score_vector", shape=(self.units,), initializer="glorot_uniform"
        )

    def score(self, query, values):
        return additive_score(query, values, self.query_kernel, self.values_kernel,
                              self.score_vector)

    def project(self, query, values):
        """``(s W1, h W2)``: the inputs that make ``keras.layers.AdditiveAttention`` equal us."""
        return ops.matmul(query, self.query_kernel), ops.matmul(values, self.values_kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
