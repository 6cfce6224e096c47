"""Exercises of lesson 12, attention beyond text (``solutions/12_attention_beyond_text.ipynb``).

12.1 ``patch_tokens`` (the build exercise: a ViT's input tokens, eq. 1 of Dosovitskiy et al.
2021, for patches of any height and width and images of any number of channels)
12.2 ``rollout_heatmap`` (attention rollout read out as a map over the image's pixels)
12.3 ``forecast_windows`` (pairs for forecasting several steps ahead, without look-ahead)
12.4 ``attention_distance_by_patch`` (the mean attention distance of each head, per query patch).
All in NumPy, so a graded kernel never imports TensorFlow. Each varies what the lesson wrote.

Conventions (those of ``course_lib``): images are ``(B, H, W, C)``, channels last; a patch
embedding's kernel is stored as a ``keras.layers.Conv2D`` kernel ``(ph, pw, C, D)``; patches are
numbered row by row; the class token is token 0; attention weights are ``(B, H, Tq, Tk)``, row
``i`` holding query ``i``'s weights over the keys; a forecasting window is oldest first.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def _patches(images, ph, pw, grid_order=(1, 3), pixel_order=(2, 4, 5)):
    """``(B, H, W, C) → (B, N, ph·pw·C)``: the grid axes in ``grid_order`` and each patch's
    pixels in ``pixel_order`` (axes of the ``(B, R, ph, Cg, pw, C)`` view)."""
    images = np.asarray(images, dtype=np.float64)
    batch, height, width, channels = images.shape
    grid = images.reshape(batch, height // ph, ph, width // pw, pw, channels)
    patches = grid.transpose(0, *grid_order, *pixel_order)
    return patches.reshape(batch, (height // ph) * (width // pw), ph * pw * channels)


def _tokens_variant(images, kernel, bias, class_token, positions, grid_order=(1, 3),
                    pixel_order=(2, 4, 5), no_transpose=False, use_bias=True, token_last=False,
                    token_position=True, kernel_axes=(0, 1, 2, 3), token_bias=False):
    """The reference with one switch flipped (each mistake below is one flip)."""
    ph, pw, channels, depth = np.shape(kernel)
    if no_transpose:
        images = np.asarray(images, dtype=np.float64)
        batch, height, width, _ = images.shape
        patches = images.reshape(batch, (height // ph) * (width // pw), ph * pw * channels)
    else:
        patches = _patches(images, ph, pw, grid_order, pixel_order)
    kernel = np.transpose(kernel, kernel_axes)
    embedded = patches @ np.reshape(kernel, (ph * pw * channels, depth))
    if use_bias:
        embedded = embedded + bias
    batch = embedded.shape[0]
    token = np.broadcast_to(np.asarray(class_token, dtype=np.float64), (batch, 1, depth))
    if token_bias:
        token = token + bias
    positions = np.asarray(positions, dtype=np.float64)
    if not token_position:
        return np.concatenate([token, embedded + positions[1:]], axis=1)
    parts = [embedded, token] if token_last else [token, embedded]
    return np.concatenate(parts, axis=1) + positions


def patch_tokens(images, kernel, bias, class_token, positions):
    """``[x_class; x_1 E; …; x_N E] + E_pos``: patch ``n`` (row by row) of ``ph × pw`` pixels,
    flattened in (row, column, channel) order, times ``E``, the ``(ph, pw, C, D)`` kernel read
    as ``(ph·pw·C, D)``, plus ``bias``: a convolution of stride ``(ph, pw)``. ``(B, 1 + N, D)``."""
    return _tokens_variant(images, kernel, bias, class_token, positions)


def _rollout(maps, residual_weight=0.5, fuse=np.mean, reverse=False, per_head=False,
             combine="product"):
    """Attention rollout ``(L, B, H, T, T) → (B, T, T)``, with one switch flipped."""
    maps = np.asarray(maps, dtype=np.float64)
    identity = np.eye(maps.shape[-1])
    if not per_head:
        maps = fuse(maps, axis=2)  # (L, B, T, T)
    mixed = (1.0 - residual_weight) * maps + residual_weight * identity
    mixed = mixed / mixed.sum(axis=-1, keepdims=True)
    if combine == "last":
        result = mixed[-1]
    elif combine == "mean":
        result = mixed.mean(axis=0)
    else:
        result = mixed[0]
        for block in mixed[1:]:
            result = result @ block if reverse else block @ result
    return result.mean(axis=1) if per_head else result


def _heatmap_variant(attention_maps, grid_rows, grid_columns, patch_size, read="row",
                     renormalise=True, column_major=False, tile=False, **rollout):
    shares = _rollout(attention_maps, **rollout)  # (B, T, T)
    shares = shares[:, 0, 1:] if read == "row" else shares[:, 1:, 0]  # (B, N)
    if renormalise:
        shares = shares / shares.sum(axis=-1, keepdims=True)
    batch = shares.shape[0]
    if column_major:
        grid = shares.reshape(batch, grid_columns, grid_rows).transpose(0, 2, 1)
    else:
        grid = shares.reshape(batch, grid_rows, grid_columns)
    if tile:
        return np.tile(grid, (1, patch_size, patch_size))
    return np.repeat(np.repeat(grid, patch_size, axis=1), patch_size, axis=2)


def rollout_heatmap(attention_maps, grid_rows, grid_columns, patch_size):
    """The class token's rollout over the patches as a map over the pixels: row 0 of
    ``R = Ã_L ⋯ Ã_1`` (``Ã_l`` = rows of ``½ mean_h A_l + ½ I`` divided by their sums), its
    patch entries rescaled to sum to 1, each patch's share given to each of its pixels:
    ``(L, B, H, T, T) → (B, grid_rows · p, grid_columns · p)``."""
    return _heatmap_variant(attention_maps, grid_rows, grid_columns, patch_size)


def _windows_variant(series, window, horizon, first_test_index, shift=0, split="all_targets",
                     newest_first=False, last_pair=True):
    """The reference with one switch flipped: ``shift=1``, each input reaches its first target;
    ``split``: ``"first_target"`` (a pair trains when its first target does),
    ``"last_target_at_split"`` (a training pair may end at ``first_test_index``),
    ``"test_overlaps"`` (a pair straddling the split is a test pair), ``"count"`` (the first
    ``first_test_index`` pairs train), ``"whole_window"`` (a test input must lie wholly in the
    test period); ``last_pair=False`` drops the last pair."""
    series = np.asarray(series, dtype=np.float64)
    starts = np.arange(window, len(series) - horizon + (1 if last_pair else 0))
    inputs = np.stack([series[t - window + shift:t + shift] for t in starts])  # (pairs, L)
    if newest_first:
        inputs = inputs[:, ::-1]
    targets = np.stack([series[t:t + horizon] for t in starts])  # (pairs, horizon)
    train, test = starts + horizon <= first_test_index, starts >= first_test_index
    if split == "last_target_at_split":
        train = starts + horizon <= first_test_index + 1
        test = test & ~train  # with a horizon of 1, the pair at the split went to training
    elif split == "first_target":
        train = starts < first_test_index
    elif split == "test_overlaps":
        test = starts + horizon > first_test_index
    elif split == "count":
        train = np.arange(len(starts)) < first_test_index
        test = ~train
    elif split == "whole_window":
        test = starts - window >= first_test_index
    return inputs[train], targets[train], inputs[test], targets[test]


def forecast_windows(series, window, horizon, first_test_index):
    """Pairs (the ``window`` values before t, the ``horizon`` values from t on) for every t with
    a full window and a full horizon; a pair trains when all its targets lie before
    ``first_test_index``, tests when its first target is at or after it, and is left out when it
    straddles the split: ``(train_inputs, train_targets, test_inputs, test_targets)``."""
    return _windows_variant(series, window, horizon, first_test_index)


def _grid_centres(rows, columns, patch_size, column_major=False):
    index = np.arange(rows * columns)
    if column_major:
        row, column = index % rows, index // rows
    else:
        row, column = index // columns, index % columns
    return np.stack([row, column], axis=-1) * patch_size  # (N, 2), in pixels


def _distance_variant(weights, grid_rows, grid_columns, patch_size, renormalise=True,
                      unit=None, metric="euclidean", column_major=False, weighted=True,
                      over_heads=False, by="query", laid_out_by_columns=False):
    weights = np.asarray(weights, dtype=np.float64)[:, :, 1:, 1:]  # (B, H, N, N): patches
    if not weighted:
        weights = np.ones_like(weights)
    if renormalise or not weighted:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    centres = _grid_centres(grid_rows, grid_columns,
                            patch_size if unit is None else unit, column_major)
    offsets = centres[:, None, :] - centres[None, :, :]  # (N, N, 2)
    if metric == "euclidean":
        distances = np.sqrt((offsets ** 2).sum(axis=-1))
    else:
        distances = np.abs(offsets).sum(axis=-1)
    weighted_distances = weights * distances  # (B, H, N, N)
    per_patch = weighted_distances.sum(axis=-1 if by == "query" else -2).mean(axis=0)  # (H, N)
    if over_heads:
        per_patch = per_patch.mean(axis=0, keepdims=True)
    if laid_out_by_columns:
        return np.swapaxes(per_patch.reshape(-1, grid_columns, grid_rows), -1, -2)
    return per_patch.reshape(-1, grid_rows, grid_columns)


def attention_distance_by_patch(weights, grid_rows, grid_columns, patch_size):
    """Per head and query patch, the attention-weighted distance in pixels to the patch keys
    (the query's weights over the patches rescaled to sum to 1, the class token left out),
    averaged over the images: ``(B, H, 1 + N, 1 + N) → (H, grid_rows, grid_columns)``."""
    return _distance_variant(weights, grid_rows, grid_columns, patch_size)


# --- Wrong answers that learners write ---------------------------------------------------------


def _tokens_mistake(**variant):
    def wrong(images, kernel, bias, class_token, positions):
        return _tokens_variant(images, kernel, bias, class_token, positions, **variant)
    return wrong


def _heatmap_mistake(**variant):
    def wrong(attention_maps, grid_rows, grid_columns, patch_size):
        return _heatmap_variant(attention_maps, grid_rows, grid_columns, patch_size, **variant)
    return wrong


def _windows_mistake(**variant):
    def wrong(series, window, horizon, first_test_index):
        return _windows_variant(series, window, horizon, first_test_index, **variant)
    return wrong


def _distance_mistake(**variant):
    def wrong(weights, grid_rows, grid_columns, patch_size):
        return _distance_variant(weights, grid_rows, grid_columns, patch_size, **variant)
    return wrong


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def token_cases(rng):
    """The lesson's 8 × 8 digits in 2 × 2 patches, then patches taller than wide and wider than
    tall, images with H ≠ W and several channels (so that the order of the pixels inside a patch
    matters); class token and positions far from 0 (so that leaving one out shows)."""
    cases = []
    for batch, height, width, channels, ph, pw, depth in (
            (2, 8, 8, 1, 2, 2, 5), (3, 6, 4, 2, 3, 2, 3), (1, 6, 9, 3, 2, 3, 4),
            (2, 4, 6, 2, 2, 2, 6)):
        patches = (height // ph) * (width // pw)
        cases.append({
            "images": rng.normal(size=(batch, height, width, channels)),
            "kernel": rng.normal(size=(ph, pw, channels, depth)) / np.sqrt(ph * pw),
            "bias": rng.normal(size=depth),
            "class_token": rng.normal(loc=1.0, size=depth),
            "positions": rng.normal(size=(1 + patches, depth)),
        })
    return cases


def _attention(rng, shape, sharpness=2.0):
    return softmax(sharpness * rng.normal(size=shape))


def heatmap_cases(rng):
    """Stacks of 2 to 4 blocks (so that the order of the product matters), several heads with
    different maps, grids with rows ≠ columns (so that the grid's orientation shows) and patches
    of 2 and 3 pixels."""
    cases = []
    for blocks, batch, heads, rows, columns, patch_size in ((2, 2, 3, 2, 3, 2),
                                                            (3, 1, 2, 4, 4, 2),
                                                            (4, 2, 4, 3, 2, 3)):
        tokens = 1 + rows * columns
        cases.append({"attention_maps": _attention(rng, (blocks, batch, heads, tokens, tokens)),
                      "grid_rows": rows, "grid_columns": columns, "patch_size": patch_size})
    return cases


def window_cases(rng):
    """Distinct values (so that any shifted window or misplaced target shows), horizons of 1 to
    4, splits in the middle and near the end."""
    cases = []
    for length, window, horizon, split in ((20, 4, 3, 12), (30, 6, 2, 22), (16, 3, 4, 10),
                                           (18, 3, 1, 12)):
        split = split + int(rng.integers(-1, 2))
        cases.append({"series": rng.normal(size=length).cumsum(), "window": window,
                      "horizon": horizon, "first_test_index": split})
    return cases


def distance_cases(rng):
    """Grids with rows ≠ columns (so that numbering the patches column by column shows), a
    4 × 4 grid of 2 × 2 patches as in the lesson, patch sizes other than 1 (pixels are not patch
    steps), and real weight on the class token (so that forgetting to re-normalise shows)."""
    cases = []
    for batch, heads, rows, columns, patch_size in ((2, 3, 2, 3, 2), (1, 2, 4, 4, 2),
                                                    (3, 4, 3, 2, 3)):
        tokens = 1 + rows * columns
        cases.append({"weights": _attention(rng, (batch, heads, tokens, tokens)),
                      "grid_rows": rows, "grid_columns": columns, "patch_size": patch_size})
    return cases


# --- Diagnoses read from the outputs ----------------------------------------------------------


def class_token_row(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Token 0 must be the class token plus the first position, the same in every image."""
    tokens = mine["tokens"]
    if tokens.shape != expected["tokens"].shape:
        return None
    if np.allclose(tokens[:, 0], expected["tokens"][:, 0], atol=1e-6):
        return None
    return ("Your token 0 is not the class token plus positions[0]. Hint: the class token does "
            "not depend on the image; it stands in front of the patches and gets a position "
            "like every token.")


def patch_shares_sum_to_one(case: Case, mine: NamedOutputs,
                            expected: NamedOutputs) -> str | None:
    """Each patch's share appears on its p × p pixels, and the shares sum to 1."""
    heatmap = mine["heatmap"]
    if heatmap.shape != expected["heatmap"].shape:
        return None
    totals = heatmap.sum(axis=(1, 2)) / case["patch_size"] ** 2
    if np.allclose(totals, 1.0, atol=1e-6):
        return None
    return (f"Your patch shares sum to {totals.min():.3g}…{totals.max():.3g} per image, not 1. "
            f"Hint: after taking the class token's weights on the patches, divide them by their "
            f"sum.")


def distances_in_range(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """A mean distance lies between 0 and the grid's diagonal."""
    distances = mine["distances"]
    longest = case["patch_size"] * np.hypot(case["grid_rows"] - 1, case["grid_columns"] - 1)
    if distances.shape != expected["distances"].shape:
        return None
    if np.all((distances >= -1e-9) & (distances <= longest + 1e-9)):
        return None
    return (f"Your distances go from {distances.min():.3g} to {distances.max():.3g} pixels, but a "
            f"weighted mean of distances on this grid lies between 0 and its diagonal, "
            f"{longest:.3g}. Hint: use weights that sum to 1 over the patch keys.")


# --- The exercises ----------------------------------------------------------------------------

PATCH_TOKENS = Exercise(
    exercise_id="12.1",
    function_name="patch_tokens",
    make_cases=token_cases,
    reference=patch_tokens,
    outputs=("tokens",),
    mistakes=(
        Mistake(_tokens_mistake(no_transpose=True),
                "Your patches are not ph × pw rectangles: reshaping the image straight to "
                "(B, N, ph·pw·C) takes runs of neighbouring pixels along the rows. Hint: give "
                "the patch grid and the pixels inside a patch axes of their own first, then "
                "gather each patch's pixels together."),
        Mistake(_tokens_mistake(grid_order=(3, 1)),
                "Your patches are numbered column by column; they go row by row (patch n at grid "
                "row n // columns), the order in which a convolution's output is read. Hint: "
                "put the grid-row axis before the grid-column axis when you flatten the grid."),
        Mistake(_tokens_mistake(pixel_order=(4, 2, 5)),
                "Inside each patch your pixels go column by column; the kernel (ph, pw, C, D) "
                "holds them row by row, so each weight meets the wrong pixel. Hint: keep the "
                "axes of a patch in the kernel's order, (row in patch, column in patch, "
                "channel)."),
        Mistake(_tokens_mistake(pixel_order=(5, 2, 4)),
                "Inside each patch your pixels are ordered channel first; the kernel (ph, pw, "
                "C, D) holds them as (row, column, channel), so each weight meets the wrong "
                "pixel. Hint: keep the channel axis last inside a patch."),
        Mistake(_tokens_mistake(kernel_axes=(1, 0, 2, 3)),
                "You read the kernel with its first two axes swapped, as (column, row, channel) "
                "while your patches run (row, column, channel), so each weight meets the wrong "
                "pixel. Hint: flatten the kernel's (ph, pw, C) axes in the order you flatten a "
                "patch's pixels."),
        Mistake(_tokens_mistake(token_bias=True),
                "Your class token has the patch embedding's bias added; the bias belongs to the "
                "convolution, which only the patches go through. Hint: token 0 is the class "
                "token plus positions[0], nothing else."),
        Mistake(_tokens_mistake(use_bias=False),
                "Your patch embeddings leave out the bias. Hint: every patch's projection gets "
                "the same bias vector added, as a convolution's output does."),
        Mistake(_tokens_mistake(token_last=True),
                "Your class token comes after the patches; it is token 0, in front of them "
                "(the classifier reads token 0). Hint: put it first when you join it to the "
                "patches."),
        Mistake(_tokens_mistake(token_position=False),
                "Your class token has no position added: positions has 1 + N rows, and row 0 "
                "belongs to the class token. Hint: add the whole table after the class token "
                "joins the patches."),
    ),
    properties=(class_token_row,),
    shape_hints={"tokens": "(batch, 1 + patches, depth)"},
    error_hint="images are (B, H, W, C) and the kernel (ph, pw, C, D): read the patch height "
               "and width from the kernel's first two axes (they may differ), and the grid from "
               "H // ph and W // pw.",
    hint="compare your patch n of one image with the pixels of rows ph·r … ph·r + ph − 1 and "
         "columns pw·c … pw·c + pw − 1, where (r, c) is patch n's place on the grid.",
)

ROLLOUT_HEATMAP = Exercise(
    exercise_id="12.2",
    function_name="rollout_heatmap",
    make_cases=heatmap_cases,
    reference=rollout_heatmap,
    outputs=("heatmap",),
    mistakes=(
        Mistake(_heatmap_mistake(reverse=True),
                "You multiplied the blocks in the wrong order: the lowest block acts first, so "
                "it stands rightmost, R = Ã_L ⋯ Ã_2 Ã_1. Hint: think of f(g(x)): g, applied "
                "first, is written last."),
        Mistake(_heatmap_mistake(residual_weight=0.0),
                "Your rollout leaves out the residual connections: each block's output keeps "
                "its own input besides what attention brings. Hint: mix each block's averaged "
                "map half and half with the identity before multiplying."),
        Mistake(_heatmap_mistake(per_head=True),
                "You rolled out each head on its own and averaged at the end; but every head of "
                "a block reads the output of all the heads below, not of one. Hint: average "
                "the heads within each block first, then chain the blocks."),
        Mistake(_heatmap_mistake(fuse=np.max),
                "You combined the heads with their maximum; the rollout averages them. Hint: "
                "take the mean over the heads axis."),
        Mistake(_heatmap_mistake(combine="last"),
                "Your map is the last block's attention alone; the rollout follows the flow "
                "through every block. Hint: chain the blocks' maps by matrix products."),
        Mistake(_heatmap_mistake(combine="mean"),
                "You averaged the blocks' maps; the flow through a stack composes them. Hint: "
                "chain the blocks' maps by matrix products."),
        Mistake(_heatmap_mistake(read="column"),
                "You read column 0 of the rollout, how much each patch draws on the class "
                "token; the class token's view of the patches is row 0. Hint: row i of R is "
                "what output token i is made of."),
        Mistake(_heatmap_mistake(renormalise=False),
                "Your patch shares do not sum to 1: the class token keeps part of the rollout "
                "for itself. Hint: after taking its weights on the patches, divide them by "
                "their sum."),
        Mistake(_heatmap_mistake(column_major=True),
                "Your patches land on the grid column by column; patch n sits at row "
                "n // grid_columns, column n % grid_columns. Hint: reshape the N shares to "
                "(grid_rows, grid_columns) directly."),
        Mistake(_heatmap_mistake(tile=True),
                "Your map repeats the whole grid of shares instead of blowing up each patch to "
                "its p × p pixels. Hint: repeat each entry p times along the rows, then along "
                "the columns."),
    ),
    properties=(patch_shares_sum_to_one,),
    shape_hints={"heatmap": "(batch, grid_rows · patch_size, grid_columns · patch_size)"},
    error_hint="attention_maps is (L, B, H, T, T): the blocks on axis 0, the heads on axis 2; "
               "T = 1 + grid_rows · grid_columns.",
    hint="for one block, Ã = ½ · (mean of the heads) + ½ · I, each row summing to 1; chain "
         "R = Ã_L ⋯ Ã_1; then read the class token's row over the patches.",
)

FORECAST_WINDOWS = Exercise(
    exercise_id="12.3",
    function_name="forecast_windows",
    make_cases=window_cases,
    reference=forecast_windows,
    outputs=("train_inputs", "train_targets", "test_inputs", "test_targets"),
    mistakes=(
        Mistake(_windows_mistake(shift=1),
                "Each of your inputs ends with its pair's first target: the model would be "
                "shown part of the answer. Hint: the input of a pair whose targets start at t "
                "stops at t − 1."),
        Mistake(_windows_mistake(split="first_target"),
                "Some of your training pairs have targets in the test period: a pair whose "
                "targets straddle first_test_index was put on the training side. Hint: a "
                "training pair needs all its targets before first_test_index."),
        Mistake(_windows_mistake(split="last_target_at_split"),
                "Some of your training pairs have their last target at first_test_index, the "
                "first held-out value. Hint: is index first_test_index itself before "
                "first_test_index?"),
        Mistake(_windows_mistake(split="test_overlaps"),
                "Some of your test pairs start before first_test_index: a pair straddling the "
                "split tests years that are not all held out. Hint: a test pair's first target "
                "is at or after first_test_index."),
        Mistake(_windows_mistake(split="count"),
                "Your split goes by where a pair stands in the list, not by its targets' "
                "indices. Hint: compare each pair's target indices with first_test_index."),
        Mistake(_windows_mistake(split="whole_window"),
                "Your test side misses pairs whose input reaches back before first_test_index; "
                "an input may reach into the training period (those values are known by then). "
                "Hint: only the targets decide a pair's side."),
        Mistake(_windows_mistake(newest_first=True),
                "Your windows run newest first; they go oldest first, so that column −1 holds "
                "the value just before the first target. Hint: keep the series' own order "
                "inside a window."),
        Mistake(_windows_mistake(last_pair=False),
                "You left out the last pair, whose targets end with the series' last value. "
                "Hint: a pair starting at t needs t + horizon ≤ len(series)."),
    ),
    shape_hints={"train_inputs": "(training pairs, window)",
                 "train_targets": "(training pairs, horizon)",
                 "test_inputs": "(test pairs, window)", "test_targets": "(test pairs, horizon)"},
    error_hint="the first pair's targets start at index `window`; collect the windows and the "
               "targets in lists and stack them.",
    hint="print the indices of each pair's window and targets for a short series "
         "(np.arange(12.0)) and check them against the contract.",
)

ATTENTION_DISTANCE_BY_PATCH = Exercise(
    exercise_id="12.4",
    function_name="attention_distance_by_patch",
    make_cases=distance_cases,
    reference=attention_distance_by_patch,
    outputs=("distances",),
    mistakes=(
        Mistake(_distance_mistake(renormalise=False),
                "Your distances are too short: the weight a patch puts on the class token counts "
                "as distance 0. Hint: after leaving the class token out, rescale each query's "
                "weights over the patches to sum to 1."),
        Mistake(_distance_mistake(unit=1),
                "Your distances are in patch steps, not pixels. Hint: a step from one patch to "
                "the next is patch_size pixels."),
        Mistake(_distance_mistake(metric="manhattan"),
                "Your distances are city-block distances (|Δrow| + |Δcolumn|); the mean "
                "attention distance uses straight-line ones. Hint: the length of the offset "
                "between the two patch centres, by Pythagoras."),
        Mistake(_distance_mistake(column_major=True),
                "You placed the patches on the grid column by column; they are numbered row by "
                "row (patch n at row n // grid_columns). Hint: check where your patch 1 sits."),
        Mistake(_distance_mistake(laid_out_by_columns=True),
                "Your distances are right, but laid out on the grid column by column: query "
                "patch n belongs at grid row n // grid_columns, column n % grid_columns. Hint: a "
                "head's N values fill its grid one row at a time."),
        Mistake(_distance_mistake(weighted=False),
                "Your distances ignore the attention weights: you averaged over all the keys "
                "alike. Hint: weight each key's distance by the query's attention weight on "
                "it."),
        Mistake(_distance_mistake(by="key"),
                "Your map is by key patch (how far away the queries that read a patch are); the "
                "exercise wants it by query patch. Hint: sum the weighted distances over the "
                "keys, the last axis."),
        Mistake(_distance_mistake(over_heads=True),
                "You averaged over the heads too; the exercise wants one map per head. Hint: "
                "average over the images only."),
    ),
    properties=(distances_in_range,),
    shape_hints={"distances": "(heads, grid_rows, grid_columns)"},
    error_hint="weights is (B, H, 1 + N, 1 + N) with the class token at index 0: the patches "
               "are tokens 1 … N, on a grid_rows × grid_columns grid.",
    hint="for one image, one head and one patch query, work out the weighted mean distance by "
         "hand on a 2 × 2 grid and compare.",
)

EXERCISES = (PATCH_TOKENS, ROLLOUT_HEATMAP, FORECAST_WINDOWS, ATTENTION_DISTANCE_BY_PATCH)
