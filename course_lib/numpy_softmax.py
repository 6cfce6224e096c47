"""The softmax in NumPy, for the self-checks and the lessons that work in NumPy.

``softmax(s)_j = exp(s_j - max_k s_k) / sum_k exp(s_k - max_k s_k)`` along ``axis``: subtracting
the maximum changes nothing mathematically and keeps ``exp`` from overflowing. With a ``mask``
(True = attend), masked entries get weight 0 and the rest are renormalised; a row with nothing to
attend to gets all zeros, never NaN (the convention of ``course_lib.attention.masked_softmax``).
Computed in float64, so the checks compare learners' answers with a reference that has no
rounding error of its own to speak of.
"""

import numpy as np


def softmax(scores, axis=-1, mask=None):
    """Softmax of ``scores`` along ``axis``; ``mask`` broadcasts to ``scores``, True = attend."""
    scores = np.asarray(scores, dtype=np.float64)
    if mask is None:
        exponentials = np.exp(scores - np.max(scores, axis=axis, keepdims=True))
        return exponentials / np.sum(exponentials, axis=axis, keepdims=True)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), scores.shape)
    kept = np.where(mask, scores, -np.inf)
    row_max = np.max(kept, axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)  # fully masked rows: nothing to shift
    exponentials = np.where(mask, np.exp(kept - row_max), 0.0)
    totals = np.sum(exponentials, axis=axis, keepdims=True)
    return np.divide(exponentials, totals, out=np.zeros_like(exponentials), where=totals > 0)
