"""Plots the lessons share: attention heat maps with token labels, per-head grids, training curves,
images with what a model looked at drawn over them.

Every function draws on a given matplotlib ``Axes`` (or makes one), sets a title and axis labels,
and returns the ``Axes`` or ``Figure`` so a lesson can add to it. Weights may be NumPy arrays or
backend tensors.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator


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


def metric_curves(curves, title, xlabel, ylabel, ax=None, logx=False, ylim=(-0.02, 1.02),
                  styles=None):
    """One line per named curve, e.g. accuracy against source length for several models.

    Args:
        curves: ``{label: {x: y}}``, e.g. ``{"attention": {3: 1.0, 4: 0.99, …}, …}``; the
            points of each curve are drawn in increasing ``x``.
        logx: a base-2 logarithmic x axis (for sizes 16, 32, 64, …), ticks at the points.
        ylim: the y range (defaults to a fraction's, 0 to 1); None lets matplotlib choose.
        styles: optional ``{label: keyword arguments of Axes.plot}`` (colour, line style, …).
    """
    if not curves:
        raise ValueError("`curves` is empty: need at least one {label: {x: y}}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    ticks = set()
    for label, points in curves.items():
        xs = sorted(points)
        ticks.update(xs)
        style = {"marker": "o", "markersize": 3, **(styles or {}).get(label, {})}
        ax.plot(xs, [points[x] for x in xs], label=label, **style)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks), labels=[str(x) for x in sorted(ticks)])
        ax.minorticks_off()
    elif all(float(x).is_integer() for x in ticks):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def mask_heatmap(mask, key_tokens=None, query_tokens=None, title="Attention mask",
                 xlabel="keys (attended to)", ylabel="queries (attending)", ax=None,
                 legend=True):
    """Draw a boolean ``(queries, keys)`` attention mask in two colours, tokens on both axes.

    True (attend) is dark, False (masked) light, as in the Keras convention: row ``i`` shows the
    keys query ``i`` may look at. A row that is all light is a *fully masked* query (lesson 05).

    Args:
        mask: ``(Tq, Tk)`` boolean (or 0/1) array or tensor.
        key_tokens: labels of the columns; query_tokens: labels of the rows.
        legend: add a two-entry legend, "attend (True)" and "masked (False)".
    """
    mask = _as_numpy(mask)
    _check_labels(mask, query_tokens, key_tokens)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"Expected a boolean mask, received values {np.unique(mask)[:5]} "
                         f"in an array of shape {mask.shape}.")
    if ax is None:
        width = max(3.0, 0.45 * mask.shape[1] + 1.5)
        height = max(2.5, 0.45 * mask.shape[0] + 1.0)
        _, ax = plt.subplots(figsize=(width, height))
    colours = ["#ececec", "#2a788e"]  # masked, attend
    ax.imshow(mask.astype(float), cmap=ListedColormap(colours), vmin=0.0, vmax=1.0,
              aspect="auto")
    ax.set_xticks(np.arange(mask.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(mask.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    if key_tokens is not None:
        ax.set_xticks(range(len(key_tokens)), labels=list(key_tokens), rotation=60, ha="right")
    if query_tokens is not None:
        ax.set_yticks(range(len(query_tokens)), labels=list(query_tokens))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(handles=[Patch(color=colours[1], label="attend (True)"),
                           Patch(color=colours[0], label="masked (False)")],
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize="small")
    return ax


def token_weights(tokens, weights, row_labels=None, title="Weight of each word",
                  xlabel="word position", ylabel="sentence", ax=None, colorbar=True,
                  cmap="Oranges"):
    """Sentences as rows of word cells, each cell coloured by the word's weight.

    For one weight per word, such as the attention-pooling weights of a sentence classifier
    (lesson 06): which words a sentence's summary vector was read from. Rows may have
    different lengths; cells past the end of a sentence stay blank.

    Args:
        tokens: a list of sentences, each a list of word strings.
        weights: one row of weights per sentence, at least as long as the sentence (a padded
            ``(sentences, T)`` array is fine: the weights past each sentence are ignored).
        row_labels: one label per sentence (e.g. the true and predicted class).
        cmap: a matplotlib colour map; the colour scale runs from 0 to the largest weight.
    """
    tokens = [list(sentence) for sentence in tokens]
    if not tokens or min(len(sentence) for sentence in tokens) == 0:
        raise ValueError("`tokens` must hold at least one sentence, none of them empty.")
    if len(weights) != len(tokens):
        raise ValueError(f"{len(weights)} rows of weights for {len(tokens)} sentences: need one "
                         f"row per sentence.")
    rows = [_as_numpy(row).reshape(-1) for row in weights]
    for index, (sentence, row) in enumerate(zip(tokens, rows, strict=True)):
        if row.shape[0] < len(sentence):
            raise ValueError(f"Sentence {index} has {len(sentence)} words but only "
                             f"{row.shape[0]} weights.")
    if row_labels is not None and len(row_labels) != len(tokens):
        raise ValueError(f"{len(row_labels)} row labels for {len(tokens)} sentences: need one "
                         f"label per sentence.")
    width = max(len(sentence) for sentence in tokens)
    grid = np.full((len(tokens), width), np.nan)
    for index, (sentence, row) in enumerate(zip(tokens, rows, strict=True)):
        grid[index, :len(sentence)] = row[:len(sentence)]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.85 * width + 2.5), 0.55 * len(tokens) + 1.2))
    top = max(1e-9, float(np.nanmax(grid)))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
    for (row, column), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(column, row, tokens[row][column], ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * top else "black")
    ax.set_xticks(range(width))
    ax.set_yticks(range(len(tokens)),
                  labels=list(row_labels) if row_labels is not None else range(len(tokens)))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="weight")
    return ax


def loglog_curves(curves, title, xlabel, ylabel, ax=None, guides=None, styles=None,
                  legend_location="best"):
    """Curves on log–log axes, e.g. a layer's time against sequence length (lesson 08).

    On log–log axes ``y ∝ n^p`` is a straight line of slope ``p``, so a cost that grows as
    ``n`` and one that grows as ``n²`` are told apart by eye; dotted guide lines of a given
    slope make the reading exact.

    Args:
        curves: ``{label: {x: y}}`` with positive ``x`` and ``y``; drawn in increasing ``x``.
        guides: optional ``{slope: (label of the curve to anchor at, x)}``: a dotted grey line
            ``y ∝ x^slope`` through that curve's point at ``x``, labelled ``∝ n^slope``.
        styles: optional ``{label: keyword arguments of Axes.plot}``.
        legend_location: where the legend goes (matplotlib's ``loc``).
    """
    if not curves:
        raise ValueError("`curves` is empty: need at least one {label: {x: y}}.")
    for label, points in curves.items():
        if min(points) <= 0 or min(points.values()) <= 0:
            raise ValueError(f"Curve {label!r} has a value <= 0, which log axes cannot show.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ticks = set()
    for label, points in curves.items():
        xs = sorted(points)
        ticks.update(xs)
        style = {"marker": "o", "markersize": 3, **(styles or {}).get(label, {})}
        ax.plot(xs, [points[x] for x in xs], label=label, **style)
    xs = np.array(sorted(ticks), dtype=float)
    lowest = min(min(points.values()) for points in curves.values())
    for slope, (label, anchor) in (guides or {}).items():
        if label not in curves or anchor not in curves[label]:
            raise ValueError(f"Guide of slope {slope}: no point x={anchor} on curve {label!r}.")
        ys = curves[label][anchor] * (xs / anchor) ** slope
        shown = ys >= lowest  # not below the data: a guide must not stretch the axes
        ax.plot(xs[shown], ys[shown], linestyle=":", color="grey", linewidth=1)
        ax.annotate(f"∝ n^{slope:g}", (xs[shown][0], ys[shown][0]), fontsize="small",
                    color="grey", xytext=(2, 2), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs, labels=[f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc=legend_location)
    return ax


def image_grid(images, titles=None, overlays=None, title="Images", columns=6, cmap="gray_r",
               overlay_cmap="inferno", overlay_alpha=0.55, value_range=None,
               xlabel="pixel column", ylabel="pixel row"):
    """Small images side by side, each with its own title, optionally a heat map over each.

    For the 8 × 8 digits of lesson 12: the digits themselves, their patches, or a map of what
    a model looked at (an attention rollout, upsampled to the image's pixels) drawn over each
    digit. Only the first image's axes are labelled; the others share them.

    Args:
        images: ``(n, H, W)`` or ``(n, H, W, 1)``.
        titles: one label per image (its class, a patch number).
        overlays: ``(n, H, W)``, drawn over the images with ``overlay_alpha``, each scaled to
            its own maximum.
        value_range: ``(low, high)`` of the images' colour scale; each image's own by default.

    Returns:
        The Figure.
    """
    images = _as_numpy(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"Expected images of shape (n, H, W) or (n, H, W, 1), received "
                         f"{images.shape}.")
    count = len(images)
    if titles is not None and len(titles) != count:
        raise ValueError(f"{len(titles)} titles for {count} images: need one per image.")
    if overlays is not None:
        overlays = _as_numpy(overlays)
        if overlays.shape != images.shape:
            raise ValueError(f"`overlays` of shape {overlays.shape} must match the images' "
                             f"shape {images.shape}.")
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 1.9 * rows + 0.4),
                                squeeze=False, constrained_layout=True)
    low, high = value_range if value_range is not None else (None, None)
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.axis("off")
            continue
        ax.imshow(images[index], cmap=cmap, vmin=low, vmax=high)
        if overlays is not None:
            ax.imshow(overlays[index], cmap=overlay_cmap, alpha=overlay_alpha, vmin=0.0,
                      vmax=max(1e-12, float(overlays[index].max())))
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize="small")
    axes[0, 0].set_xlabel(xlabel, fontsize="x-small")
    axes[0, 0].set_ylabel(ylabel, fontsize="x-small")
    figure.suptitle(title)
    return figure


def head_distances(distances, title="Mean attention distance per head",
                   xlabel="encoder block", ylabel="mean attention distance (pixels)",
                   reference=None, reference_label="uniform attention", ax=None):
    """One dot per head at each block, as in the ViT paper's Fig. 7 (right).

    Args:
        distances: ``(blocks, heads)``, e.g. from ``course_lib.attention_maps``.
        reference: an optional distance drawn as a dashed line (what uniform attention gives).
    """
    distances = _as_numpy(distances)
    if distances.ndim != 2:
        raise ValueError(f"Expected distances of shape (blocks, heads), received "
                         f"{distances.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.4))
    blocks, heads = distances.shape
    for head in range(heads):
        ax.scatter(np.arange(1, blocks + 1), distances[:, head], label=f"head {head + 1}",
                   zorder=3)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=reference_label)
    ax.set_xticks(np.arange(1, blocks + 1))
    ax.set_xlim(0.5, blocks + 0.5)
    ax.set_ylim(bottom=0.0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
