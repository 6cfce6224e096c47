"""The common frame of encoder–decoder attention: a query looks at a sequence of values.

Bahdanau and Luong attention differ only in how they *score* a query against the encoder's
states; everything else (a single decoder step or all steps at once, masks, the weighted sum)
is the same and lives here.
"""

import keras
from keras import ops

from course_lib.attention import masked_softmax
from course_lib.validation import require_rank, require_same_dim, shape_matches, static_shape


class QueryValuesAttention(keras.layers.Layer):
    """Base layer: ``score(query, values)`` → masked softmax → weighted sum of ``values``.

    Call arguments:
        query: one decoder state ``(B, dq)`` or all decoder steps at once ``(B, Tq, dq)`` (the
            second form runs every teacher-forced step in one matrix product).
        values: the encoder states ``(B, Tv, dv)``; they serve as keys and values.
        mask: optional boolean, True = attend: ``(B, Tv)`` (padding of the source) or, with a
            3-D query, ``(B, Tq, Tv)``.

    Returns:
        ``(context, weights)``: ``(B, dv)`` and ``(B, Tv)`` for a 2-D query,
        ``(B, Tq, dv)`` and ``(B, Tq, Tv)`` for a 3-D one.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The source's padding mask is consumed here (explicit ``mask``); nothing of it carries
        # over to the context vectors, which are defined for every query step.
        self.supports_masking = True

    def compute_mask(self, query, values, mask=None):
        return None

    def score(self, query, values):
        """Scores ``(B, Tq, Tv)`` for query ``(B, Tq, dq)`` and values ``(B, Tv, dv)``."""
        raise NotImplementedError

    def call(self, query, values, mask=None):
        query, mask, single_step = self._prepare(query, values, mask)
        weights = masked_softmax(self.score(query, values), mask)
        return self._outputs(ops.matmul(weights, values), weights, single_step)

    def _prepare(self, query, values, mask):
        """Check the shapes; return the query as steps ``(B, Tq, dq)`` (one step for a 2-D
        query), the mask as ``(B, 1 or Tq, Tv)`` booleans (or None), and whether it was 2-D."""
        query_shape = require_rank("query", query, (2, 3))
        values_shape = require_rank("values", values, 3)
        require_same_dim("Batch sizes", "query", query_shape, 0, "values", values_shape, 0)
        single_step = len(query_shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)
        if mask is not None:
            mask = self._attention_mask(mask, static_shape(query), values_shape, single_step)
        return query, mask, single_step

    @staticmethod
    def _outputs(context, weights, single_step):
        """``(context, weights)``, without the step axis for a 2-D query."""
        if single_step:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    @staticmethod
    def _attention_mask(mask, query_shape, values_shape, single_step):
        mask_shape = static_shape(mask)
        batch, query_length, value_length = query_shape[0], query_shape[1], values_shape[1]
        expected = [(batch, value_length)] + ([] if single_step else [(batch, query_length,
                                                                        value_length)])
        for shape in expected:
            if shape_matches(mask_shape, shape):
                mask = ops.cast(mask, "bool")
                return ops.expand_dims(mask, 1) if len(mask_shape) == 2 else mask
        wanted = " or ".join(str(s) for s in expected)
        raise ValueError(
            f"`mask` must have shape {wanted} for query of shape "
            f"{query_shape if not single_step else (query_shape[0], query_shape[2])} and "
            f"values of shape {values_shape}, but received shape {mask_shape}."
        )
