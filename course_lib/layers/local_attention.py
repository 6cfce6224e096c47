"""Local attention, Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural
Machine Translation", §3.2, eqs. 9 and 10."""

import keras
from keras import ops

from course_lib.attention import masked_softmax
from course_lib.layers.luong import LuongAttention
from course_lib.validation import require_positive_int, shape_matches, static_shape

MODES = ("monotonic", "predictive")


@keras.saving.register_keras_serializable(package="course_lib")
class LocalAttention(LuongAttention):
    """Attention over a window of ``2D + 1`` source positions around an aligned position ``p_t``.

    Global attention (``LuongAttention``) lets decoder step ``t`` weigh *every* source position.
    Local attention first picks a position ``p_t`` in the source, then attends only to the
    window ``|s - p_t| <= D`` (cut to the sentence's real tokens). Positions count from 0.

    ================  ========================================================================
    ``mode``          aligned position ``p_t`` and weights ``a_t(s)``
    ================  ========================================================================
    ``"monotonic"``   local-m: ``p_t = t`` (the sentences run in step);
                      ``a_t(s) = softmax over the window of e_ts``
    ``"predictive"``  local-p: ``p_t = L sigmoid(v_p . tanh(W_p h_t))`` (eq. 9), ``L`` the
                      sentence's number of real tokens; ``a_t(s) = softmax over the window of
                      e_ts  *  exp(-(s - p_t)^2 / (2 sigma^2))`` with ``sigma = D / 2`` (eq. 10)
    ================  ========================================================================

    ``e_ts`` is one of Luong's content scores (``score``, as in ``LuongAttention``). ``p_t`` is a
    real number: neither the window nor the Gaussian rounds it, and ``W_p``, ``v_p`` learn
    through the Gaussian alone (the window's edge is a hard cut). As in the paper the local-p
    weights are not renormalised after the Gaussian, so they sum to less than one. Outside the
    window and on padding every weight is exactly zero; a window that holds no real token (in
    local-m, a target step past the end of the source) gives zero weights and a zero context.
    With ``D`` at least the source length, local-m is global attention.

    Cost: the scores are still computed for every pair and masked (simple, and on a CPU with
    sentences of ~10 tokens nothing is gained by gathering ``2D + 1`` columns); what local
    attention changes is *which* positions may get weight.

    Args:
        half_width: ``D``, a positive integer: the window holds ``2D + 1`` positions.
        mode: ``"monotonic"`` (local-m) or ``"predictive"`` (local-p).
        score: ``"dot"``, ``"general"`` or ``"concat"`` (see ``LuongAttention``).
        units: hidden size of the concat score (defaults to the query depth).
        position_units: the hidden size of local-p's position network, ``W_p (dq,
            position_units)`` and ``v_p (position_units,)`` (defaults to the query depth);
            unused by local-m.

    Call arguments:
        query: ``(B, dq)`` (one decoder step) or ``(B, Tq, dq)``.
        values: ``(B, S, dv)``, the encoder states (keys and values).
        mask: optional boolean, True = a real source token: ``(B, S)`` or ``(B, Tq, S)``.
        positions: local-m only, the decoder steps ``t`` of the queries: ``(B,)`` for a 2-D
            query (e.g. the step of greedy decoding), ``(B, Tq)`` or ``(Tq,)`` for a 3-D one;
            defaults to ``0, 1, ..., Tq - 1``. local-p predicts its positions instead.

    Returns:
        ``(context, weights)``: ``(B, dv)`` and ``(B, S)`` for a 2-D query, ``(B, Tq, dv)`` and
        ``(B, Tq, S)`` for a 3-D one. :meth:`aligned_positions` returns the ``p_t``.
    """

    def __init__(self, half_width, mode="predictive", score="general", units=None,
                 position_units=None, **kwargs):
        super().__init__(score=score, units=units, **kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, received {mode!r}.")
        self.half_width = require_positive_int("half_width", half_width)
        self.mode = mode
        self.position_units = (None if position_units is None
                               else require_positive_int("position_units", position_units))

    def build(self, query_shape, values_shape):
        super().build(query_shape, values_shape)
        if self.mode == "predictive":
            units = self.position_units or query_shape[-1]
            self.position_kernel = self.add_weight(  # W_p
                name="position_kernel", shape=(query_shape[-1], units),
                initializer="glorot_uniform")
            self.position_vector = self.add_weight(  # v_p
                name="position_vector", shape=(units,), initializer="glorot_uniform")

    @property
    def sigma(self):
        """The standard deviation of local-p's Gaussian, ``D / 2``."""
        return self.half_width / 2

    @staticmethod
    def _lengths(mask, values, dtype):
        """``L``, the number of real source tokens: ``(B, 1)`` or ``(B, Tq)`` (from the mask)."""
        if mask is None:  # every position is real: L = S (counted, so S may be unknown)
            return ops.sum(ops.ones_like(values[:, None, :, 0], dtype=dtype), axis=-1)
        return ops.sum(ops.cast(mask, dtype), axis=-1)

    def aligned_positions(self, query, values, mask=None, positions=None):
        """``p_t`` of every query: ``(B, Tq)`` floats (``(B,)`` for a 2-D query).

        local-m returns the decoder steps (``positions`` or ``0 .. Tq - 1``); local-p predicts
        ``L sigmoid(v_p . tanh(W_p h_t))`` with ``L`` each sentence's real length.
        """
        query, mask, single_step = self._prepare(query, values, mask)
        aligned = self._positions(query, values, mask, positions, single_step)
        return ops.squeeze(aligned, 1) if single_step else aligned

    def _prepare(self, query, values, mask):
        query, mask, single_step = super()._prepare(query, values, mask)
        if not self.built:  # aligned_positions() may come before any call of the layer
            self.build(static_shape(query), static_shape(values))
        return query, mask, single_step

    def _positions(self, query, values, mask, positions, single_step):
        dtype = query.dtype
        zeros = ops.zeros_like(query[..., 0])  # (B, Tq): broadcasts positions to every query
        if self.mode == "predictive":
            if positions is not None:
                raise ValueError("`positions` is for local-m (mode='monotonic'); local-p "
                                 "predicts its positions from the query.")
            activation = ops.matmul(ops.tanh(ops.matmul(query, self.position_kernel)),
                                    self.position_vector)  # (B, Tq)
            return self._lengths(mask, values, dtype) * ops.sigmoid(activation)
        if positions is None:  # 0, 1, ..., Tq - 1 (counted, so Tq may be unknown)
            return ops.cumsum(ops.ones_like(zeros), axis=1) - 1
        positions_shape = static_shape(positions)
        query_shape = static_shape(query)
        expected = [(query_shape[0],)] if single_step else [(query_shape[1],),
                                                           (query_shape[0], query_shape[1])]
        if not any(shape_matches(positions_shape, shape) for shape in expected):
            wanted = " or ".join(str(s) for s in expected)
            received = (query_shape[0], query_shape[2]) if single_step else query_shape
            raise ValueError(f"`positions` must have shape {wanted} for query of shape "
                             f"{received}, but received shape {positions_shape}.")
        positions = ops.cast(positions, dtype)
        return zeros + (positions[:, None] if single_step else positions)

    def call(self, query, values, mask=None, positions=None):
        query, mask, single_step = self._prepare(query, values, mask)
        aligned = self._positions(query, values, mask, positions, single_step)[..., None]
        source = ops.cumsum(ops.ones_like(values[0, :, 0]), axis=0) - 1  # s = 0 .. S - 1
        offsets = source - aligned  # (B, Tq, S): s - p_t
        window = ops.less_equal(ops.abs(offsets), float(self.half_width))
        if mask is not None:
            window = ops.logical_and(window, mask)
        weights = masked_softmax(self.score(query, values), window)
        if self.mode == "predictive":
            weights = weights * ops.exp(-ops.square(offsets) / (2 * self.sigma ** 2))
        return self._outputs(ops.matmul(weights, values), weights, single_step)

    def get_config(self):
        return {**super().get_config(), "half_width": self.half_width, "mode": self.mode,
                "position_units": self.position_units}
