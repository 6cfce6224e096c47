"""Luong (multiplicative) attention, Luong, Pham & Manning 2015, "Effective Approaches to
Attention-based Neural Machine Translation", §3.1, eq. 8."""

import math

import keras

from course_lib.attention import concat_score, dot_score, general_score
from course_lib.layers.query_values_attention import QueryValuesAttention
from course_lib.validation import require_positive_int

SCORES = ("dot", "general", "concat")


@keras.saving.register_keras_serializable(package="course_lib")
class LuongAttention(QueryValuesAttention):
    """Global attention with one of Luong's three content scores.

    ============  ================================  ==============================  ==========
    ``score``     ``e_ij``                          weights                         cost/pair
    ============  ================================  ==============================  ==========
    ``"dot"``     ``h_t . h_s``                     none (needs ``dq == dv``)       ``O(d)``
    ``"general"`` ``h_t W h_s``                     ``W (dq, dv)``                  ``O(d)``*
    ``"concat"``  ``v . tanh(W [h_t; h_s])``        ``W (dq + dv, units)``, ``v``   ``O(d)``*
    ============  ================================  ==============================  ==========

    (*) plus ``O(d^2)`` per query or key for the projection, shared by all pairs.
    ``h_t`` is the decoder state (query), ``h_s`` the encoder states (values, also the keys).

    ``"dot"`` equals ``keras.layers.Attention()([h_t, h_s])``; ``"general"`` equals
    ``keras.layers.Attention()([h_t @ W, h_s])``. Keras's ``score_mode="concat"`` is *not*
    Luong's concat: it has no ``W`` and no ``v`` (``docs/conventions.md``, section 2).

    ``scaled=True`` divides the dot and general scores by ``sqrt(dv)``, the key depth, as the
    Transformer does (Vaswani et al. 2017; lesson 05): for keys of unit variance the scores
    then keep a variance near one whatever the depth, and the softmax does not saturate at the
    start of training. Scaled dot equals ``keras.ops.dot_product_attention``.

    Args:
        score: ``"dot"``, ``"general"`` or ``"concat"``.
        units: hidden size of the concat score (defaults to the query depth); unused otherwise.
        scaled: divide the dot or general score by ``sqrt(dv)`` (not for concat, which is
            bounded by ``|v|_1`` already).
    """

    def __init__(self, score="dot", units=None, scaled=False, **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"`score` must be one of {SCORES}, received {score!r}.")
        if scaled and score == "concat":
            raise ValueError("`scaled=True` is for the dot and general scores; the concat "
                             "score v . tanh(...) is bounded already.")
        self.score_name = score
        self.units = None if units is None else require_positive_int("units", units)
        self.scaled = bool(scaled)

    def build(self, query_shape, values_shape):
        query_depth, values_depth = query_shape[-1], values_shape[-1]
        if self.score_name == "dot" and query_depth != values_depth:
            raise ValueError(
                f"The dot score needs query and values of the same depth, but received query "
                f"shape {tuple(query_shape)} and values shape {tuple(values_shape)}; use "
                f"score='general' to learn a map between them."
            )
        if self.score_name == "general":
            self.kernel = self.add_weight(
                name="kernel", shape=(query_depth, values_depth), initializer="glorot_uniform"
            )
        if self.score_name == "concat":
            units = self.units or query_depth
            self.kernel = self.add_weight(
                name="kernel", shape=(query_depth + values_depth, units),
                initializer="glorot_uniform",
            )
            self.score_vector = self.add_weight(
                name="score_vector", shape=(units,), initializer="glorot_uniform"
            )

    def score(self, query, values):
        if self.score_name == "concat":
            return concat_score(query, values, self.kernel, self.score_vector)
        if self.score_name == "general":
            scores = general_score(query, values, self.kernel)
        else:
            scores = dot_score(query, values)
        if self.scaled:
            scores = scores / math.sqrt(values.shape[-1])  # depths are static once built
        return scores

    def get_config(self):
        return {**super().get_config(), "score": self.score_name, "units": self.units,
                "scaled": self.scaled}
