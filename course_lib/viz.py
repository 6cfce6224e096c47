"""Plots the lessons share: attention heat maps with token labels, per-head grids, training curves.

Every function draws on a given matplotlib ``Axes`` (or makes one), sets a title and axis labels,
and returns the ``Axes`` or ``Figure`` so a lesson can add to it. Weights may be NumPy arrays or
backend tensors.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
from keras import ops


def _as_numpy(array):
    return np.asarray(ops.convert_to_numpy(array))


def _check_labels(weights, query_tokens, key_tokens):
    if weights.ndim != 2:
        raise ValueError(f"Expected weights of shape (queries, keys), received {weights.shape}.")
    if query_tokens is not None and len(query_tokens) != weights.shape[0]:
        raise ValueError(f"{len(query_tokens)} query tokens for weights of shape "
                         f"{weights.shape}: need one label per row.")
    if key_tokens is not None and len(key_tokens) != weights.shape[1]:
        raise ValueError(f"{len(key_tokens)} key tokens for weights of shape "
                         f"{weights.shape}: need one label per column.")


def alignment_heatmap(weights, key_tokens=None, query_tokens=None, title="Attention weights",
                      xlabel="source (keys)", ylabel="target (queries)", ax=None,
                      annotate=False, colorbar=True):
    """Draw a ``(queries, keys)`` weight matrix with the tokens on both axes.

    Row ``i`` shows where query ``i`` looked: for a translator, which source words were read
    while the ``i``-th target word was written (Bahdanau et al. 2015, Fig. 3).

    Args:
        weights: ``(Tq, Tk)`` array, rows summing to one (or zero where fully masked).
        key_tokens: labels of the columns (source words); query_tokens: labels of the rows.
        annotate: write each weight in its cell (for small matrices).
        colorbar: add a colour bar (off in grids, where one shared bar is clearer).
    """
    weights = _as_numpy(weights)
    _check_labels(weights, query_tokens, key_tokens)
    if ax is None:
        width = max(3.0, 0.45 * weights.shape[1] + 1.5)
        height = max(2.5, 0.45 * weights.shape[0] + 1.0)
        _, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(weights.max())),
                      aspect="auto")
    if key_tokens is not None:
        ax.set_xticks(range(len(key_tokens)), labels=list(key_tokens), rotation=60, ha="right")
    if query_tokens is not None:
        ax.set_yticks(range(len(query_tokens)), labels=list(query_tokens))
    if annotate:
        for (row, column), value in np.ndenumerate(weights):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value < 0.6 * weights.max() else "black")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def head_grid(weights, key_tokens=None, query_tokens=None, title="Attention weights per head",
              columns=4):
    """One heat map per head for weights of shape ``(heads, Tq, Tk)``; returns the Figure."""
    weights = _as_numpy(weights)
    if weights.ndim != 3:
        raise ValueError(f"Expected weights of shape (heads, queries, keys), received "
                         f"{weights.shape}.")
    heads = weights.shape[0]
    columns = min(columns, heads)
    rows = math.ceil(heads / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows),
                                squeeze=False, constrained_layout=True)
    for head, ax in enumerate(axes.flat):
        if head >= heads:
            ax.axis("off")
            continue
        alignment_heatmap(weights[head], key_tokens, query_tokens, title=f"head {head + 1}",
                          ax=ax, colorbar=False)
    figure.suptitle(title)
    return figure


def training_curves(history, metrics=("loss",), title="Training curves", ax=None):
    """Plot per-epoch metrics from a Keras ``History`` (or its ``.history`` dict).

    For each metric its ``val_`` counterpart is drawn dashed when present.
    """
    logs = getattr(history, "history", history)
    missing = [m for m in metrics if m not in logs]
    if missing:
        raise ValueError(f"Metrics {missing} are not in the history; it has {sorted(logs)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for metric in metrics:
        epochs = np.arange(1, len(logs[metric]) + 1)
        line = ax.plot(epochs, logs[metric], marker="o", label=metric)[0]
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], marker="o", linestyle="--",
                    color=line.get_color(), label=f"val_{metric}")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(metrics))
    ax.legend()
    return ax


def weight_bars(weights, key_tokens, labels=None, title="Attention weights", xlabel="keys",
                ylabel="weight", ax=None):
    """Bar chart of one or more rows of attention weights over the same keys.

    Several rows are drawn side by side, one colour each, to compare one query's weights under
    different settings (temperatures, a quoted table beside the real softmax).

    Args:
        weights: ``(Tk,)`` for one row, or ``(rows, Tk)``.
        key_tokens: the ``Tk`` labels of the keys (repeated words are fine).
        labels: one legend entry per row; required when there is more than one row.
    """
    weights = _as_numpy(weights)
    received = weights.shape
    if weights.ndim == 1:
        weights = weights[None, :]
    if weights.ndim != 2:
        raise ValueError(f"Expected weights of shape (keys,) or (rows, keys), received "
                         f"{received}.")
    rows, keys = weights.shape
    if len(key_tokens) != keys:
        raise ValueError(f"{len(key_tokens)} key tokens for weights of shape {received}: "
                         f"need one label per key.")
    if labels is None and rows > 1:
        raise ValueError(f"Weights of shape {received} have {rows} rows: pass one label "
                         f"per row in `labels`.")
    if labels is not None and len(labels) != rows:
        raise ValueError(f"{len(labels)} labels for weights of shape {received}: need one "
                         f"label per row.")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.35 * keys * (rows + 1) + 1.5), 3.2))
    width = 0.8 / rows
    positions = np.arange(keys)
    for row in range(rows):
        ax.bar(positions + (row - (rows - 1) / 2) * width, weights[row], width=width,
               label=None if labels is None else labels[row])
    ax.set_xticks(positions, labels=list(key_tokens))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if labels is not None:
        ax.legend()
    return ax
