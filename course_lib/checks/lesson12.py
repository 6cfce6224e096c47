"""Exercises of lesson 12, attention beyond text (``solutions/12_attention_beyond_text.ipynb``).

12.1 ``patch_tokens`` (the build exercise: a ViT's input, eq. 1 of Dosovitskiy et al. 2021)
12.2 ``attention_rollout``  12.3 ``forecast_windows``  12.4 ``mean_attention_distance``.
All in NumPy, so a graded kernel never imports TensorFlow.

Conventions (those of ``course_lib``): images are ``(B, H, W, C)``, channels last; a patch
embedding's kernel is stored as a ``keras.layers.Conv2D`` kernel ``(p, p, C, D)``; patches are
numbered row by row; the class token is token 0; attention weights are ``(B, H, Tq, Tk)``, row
``i`` holding query ``i``'s weights over the keys; a forecasting window is oldest first.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs, sums_to_one
from course_lib.numpy_softmax import softmax

# --- References -----------------------------------------------------------------------------


def _patches(images, p, grid_order=(1, 3), pixel_order=(2, 4, 5)):
    """``(B, H, W, C) → (B, N, p·p·C)``: the grid axes in ``grid_order`` and each patch's
    pixels in ``pixel_order`` (axes of the ``(B, R, p, Cg, p, C)`` view)."""
    images = np.asarray(images, dtype=np.float64)
    batch, height, width, channels = images.shape
    grid = images.reshape(batch, height // p, p, width // p, p, channels)  # (B, R, p, Cg, p, C)
    patches = grid.transpose(0, *grid_order, *pixel_order)
    return patches.reshape(batch, (height // p) * (width // p), p * p * channels)


def patch_tokens(images, kernel, bias, class_token, positions):
    """The input of a Vision Transformer: ``[x_class; x_1 E; …; x_N E] + E_pos``.

    ``x_n`` is patch ``n`` (row by row) flattened in (row, column, channel) order, ``E`` the
    ``(p, p, C, D)`` kernel read as ``(p·p·C, D)``, plus ``bias``: the output of a strided
    convolution. Returns ``(B, 1 + N, D)``.
    """
    p, _, channels, depth = np.shape(kernel)
    embedded = _patches(images, p) @ np.reshape(kernel, (p * p * channels, depth)) + bias
    batch = embedded.shape[0]
    token = np.broadcast_to(np.asarray(class_token, dtype=np.float64), (batch, 1, depth))
    return np.concatenate([token, embedded], axis=1) + positions


def _rollout(maps, residual_weight=0.5, fuse=np.mean, reverse=False, renormalise=True,
             per_head=False, combine="product"):
    """The reference rollout with one switch flipped (each mistake below is one flip)."""
    maps = np.asarray(maps, dtype=np.float64)  # (L, B, H, T, T)
    length = maps.shape[-1]
    identity = np.eye(length)
    if not per_head:
        maps = fuse(maps, axis=2)  # (L, B, T, T)
    mixed = (1.0 - residual_weight) * maps + residual_weight * identity
    if renormalise:
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


def attention_rollout(attention_maps):
    """``R = Ã_L ⋯ Ã_1``, ``Ã_l`` = rows of ``½ mean_h A_l + ½ I`` re-normalised to sum to 1
    (Abnar & Zuidema 2020): ``(L, B, H, T, T) → (B, T, T)``."""
    return _rollout(attention_maps)


def forecast_windows(series, window, first_test_index):
    """Pairs ``(series[t − L : t], series[t])`` for every ``t ≥ L``; targets before
    ``first_test_index`` train, the others test: ``(train_inputs, train_targets, test_inputs,
    test_targets)``."""
    series = np.asarray(series, dtype=np.float64)
    targets = np.arange(window, len(series))
    inputs = np.stack([series[t - window:t] for t in targets])
    train = targets < first_test_index
    return inputs[train], series[targets[train]], inputs[~train], series[targets[~train]]


def _grid_centres(rows, columns, patch_size, column_major=False):
    index = np.arange(rows * columns)
    if column_major:
        row, column = index % rows, index // rows
    else:
        row, column = index // columns, index % columns
    return np.stack([row, column], axis=-1) * patch_size  # (N, 2), in pixels


def _distance_variant(weights, grid_rows, grid_columns, patch_size, renormalise=True,
                      unit=None, metric="euclidean", column_major=False, weighted=True,
                      over_heads=False):
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
    per_query = (weights * distances).sum(axis=-1)  # (B, H, N)
    return per_query.mean() if over_heads else per_query.mean(axis=(0, 2))


def mean_attention_distance(weights, grid_rows, grid_columns, patch_size):
    """Per head, the attention-weighted distance in pixels between a patch query and the patch
    keys (weights over the patches re-normalised, the class token left out), averaged over
    images and queries: ``(B, H, 1 + N, 1 + N) → (H,)``."""
    return _distance_variant(weights, grid_rows, grid_columns, patch_size)


# --- Wrong answers that learners write ---------------------------------------------------------


def _tokens_variant(images, kernel, bias, class_token, positions, grid_order=(1, 3),
                    pixel_order=(2, 4, 5), no_transpose=False, use_bias=True, token_last=False,
                    token_position=True):
    p, _, channels, depth = np.shape(kernel)
    if no_transpose:
        images = np.asarray(images, dtype=np.float64)
        batch, height, width, _ = images.shape
        patches = images.reshape(batch, (height // p) * (width // p), p * p * channels)
    else:
        patches = _patches(images, p, grid_order, pixel_order)
    embedded = patches @ np.reshape(kernel, (p * p * channels, depth))
    if use_bias:
        embedded = embedded + bias
    batch = embedded.shape[0]
    token = np.broadcast_to(np.asarray(class_token, dtype=np.float64), (batch, 1, depth))
    positions = np.asarray(positions, dtype=np.float64)
    if not token_position:
        return np.concatenate([token, embedded + positions[1:]], axis=1)
    parts = [embedded, token] if token_last else [token, embedded]
    return np.concatenate(parts, axis=1) + positions


def _tokens_mistake(**variant):
    def wrong(images, kernel, bias, class_token, positions):
        return _tokens_variant(images, kernel, bias, class_token, positions, **variant)
    return wrong


def _rollout_mistake(**variant):
    def wrong(attention_maps):
        return _rollout(attention_maps, **variant)
    return wrong


def _windows_variant(series, window, first_test_index, shift=0, split_by="target",
                     newest_first=False):
    """``shift=1``: each input ends with its target. ``split_by``: ``"count"`` (the first
    ``first_test_index`` windows train, the same as splitting by a window's first index),
    ``"whole_window"`` (a test input must lie wholly in the test years)."""
    series = np.asarray(series, dtype=np.float64)
    targets = np.arange(window, len(series))
    inputs = np.stack([series[t - window + shift:t + shift] for t in targets])
    if newest_first:
        inputs = inputs[:, ::-1]
    if split_by == "count":
        train = np.arange(len(targets)) < first_test_index
        test = ~train
    elif split_by == "whole_window":
        train, test = targets < first_test_index, targets - window >= first_test_index
    else:
        train = targets < first_test_index
        test = ~train
    return inputs[train], series[targets[train]], inputs[test], series[targets[test]]


def _windows_mistake(**variant):
    def wrong(series, window, first_test_index):
        return _windows_variant(series, window, first_test_index, **variant)
    return wrong


def _distance_mistake(**variant):
    def wrong(weights, grid_rows, grid_columns, patch_size):
        return _distance_variant(weights, grid_rows, grid_columns, patch_size, **variant)
    return wrong


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def token_cases(rng):
    """The lesson's 8 × 8 digits in 2 × 2 patches, then images with H ≠ W, several channels
    (so that the order of the pixels inside a patch matters) and 3 × 3 patches; class token and
    positions far from 0 (so that leaving one out shows)."""
    cases = []
    for batch, height, width, channels, p, depth in ((2, 8, 8, 1, 2, 5), (3, 6, 4, 2, 2, 3),
                                                     (1, 6, 9, 3, 3, 4), (2, 4, 6, 2, 2, 6)):
        patches = (height // p) * (width // p)
        cases.append({
            "images": rng.normal(size=(batch, height, width, channels)),
            "kernel": rng.normal(size=(p, p, channels, depth)) / p,
            "bias": rng.normal(size=depth),
            "class_token": rng.normal(loc=1.0, size=depth),
            "positions": rng.normal(size=(1 + patches, depth)),
        })
    return cases


def _attention(rng, shape, sharpness=2.0):
    return softmax(sharpness * rng.normal(size=shape))


def rollout_cases(rng):
    """Stacks of 2 to 4 blocks (so that the order of the product matters), several heads with
    different maps (so that how they are combined matters), a batch."""
    return [{"attention_maps": _attention(rng, (blocks, batch, heads, tokens, tokens))}
            for blocks, batch, heads, tokens in ((2, 2, 3, 5), (3, 1, 2, 4), (4, 2, 4, 6))]


def window_cases(rng):
    """Distinct values, so that any shifted window or misplaced target shows; a split near the
    middle and one close to the end (fewer test targets than the window)."""
    cases = []
    for length, window, split in ((20, 4, 12), (30, 6, 24), (16, 3, 10)):
        split = split + int(rng.integers(-1, 2))
        cases.append({"series": rng.normal(size=length).cumsum(), "window": window,
                      "first_test_index": split})
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
    if tokens.ndim != 3 or tokens.shape != expected["tokens"].shape:
        return None
    if np.allclose(tokens[:, 0], expected["tokens"][:, 0], atol=1e-6):
        return None
    return ("Your token 0 is not the class token plus positions[0]. Hint: the class token does "
            "not depend on the image; it stands in front of the patches and gets a position "
            "like every token.")


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
                "Your patches are not p × p squares: reshaping the image straight to "
                "(B, N, p·p·C) takes runs of neighbouring pixels along the rows. Hint: give the "
                "patch grid and the pixels inside a patch axes of their own first, then gather "
                "each patch's pixels together."),
        Mistake(_tokens_mistake(grid_order=(3, 1)),
                "Your patches are numbered column by column; they go row by row (patch n at grid "
                "row n // columns), the order in which a convolution's output is read. Hint: "
                "put the grid-row axis before the grid-column axis when you flatten the grid."),
        Mistake(_tokens_mistake(pixel_order=(4, 2, 5)),
                "Inside each patch your pixels go column by column; the kernel (p, p, C, D) "
                "holds them row by row, so each weight meets the wrong pixel. Hint: keep the "
                "axes of a patch in the kernel's order, (row in patch, column in patch, "
                "channel)."),
        Mistake(_tokens_mistake(pixel_order=(5, 2, 4)),
                "Inside each patch your pixels are ordered channel first; the kernel (p, p, C, D) "
                "holds them as (row, column, channel), so each weight meets the wrong pixel. "
                "Hint: keep the channel axis last inside a patch."),
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
    error_hint="images are (B, H, W, C) and the kernel (p, p, C, D): read p, C and D from the "
               "kernel's shape, and the grid from H // p and W // p.",
    hint="compare your patch n of one image with the pixels of rows p·r … p·r + p − 1 and "
         "columns p·c … p·c + p − 1, where (r, c) is patch n's place on the grid.",
)

ATTENTION_ROLLOUT = Exercise(
    exercise_id="12.2",
    function_name="attention_rollout",
    make_cases=rollout_cases,
    reference=attention_rollout,
    outputs=("rollout",),
    mistakes=(
        Mistake(_rollout_mistake(reverse=True),
                "You multiplied the blocks in the wrong order: the lowest block acts first, so "
                "it stands rightmost, R = Ã_L ⋯ Ã_2 Ã_1. Hint: think of f(g(x)): g, applied "
                "first, is written last."),
        Mistake(_rollout_mistake(residual_weight=0.0),
                "Your rollout leaves out the residual connections: each block's output keeps "
                "its own input besides what attention brings. Hint: mix each block's averaged "
                "map half and half with the identity before multiplying."),
        Mistake(_rollout_mistake(per_head=True),
                "You rolled out each head on its own and averaged at the end; but every head of "
                "a block reads the output of all the heads below, not of one. Hint: average "
                "the heads within each block first, then chain the blocks."),
        Mistake(_rollout_mistake(fuse=np.max),
                "You combined the heads with their maximum; the rollout averages them. Hint: "
                "take the mean over the heads axis."),
        Mistake(_rollout_mistake(combine="last"),
                "Your rollout is the last block's map alone; it must follow the flow through "
                "every block. Hint: chain the blocks' maps by matrix products."),
        Mistake(_rollout_mistake(combine="mean"),
                "You averaged the blocks' maps; the flow through a stack composes them. Hint: "
                "chain the blocks' maps by matrix products."),
    ),
    properties=(sums_to_one("rollout", over="the input tokens"),),
    shape_hints={"rollout": "(batch, tokens, tokens)"},
    error_hint="attention_maps is (L, B, H, T, T): the blocks on axis 0, the heads on axis 2.",
    hint="for one block, Ã = ½ · (mean of the heads) + ½ · I, each row summing to 1; then "
         "R = Ã_L ⋯ Ã_1.",
)

FORECAST_WINDOWS = Exercise(
    exercise_id="12.3",
    function_name="forecast_windows",
    make_cases=window_cases,
    reference=forecast_windows,
    outputs=("train_inputs", "train_targets", "test_inputs", "test_targets"),
    mistakes=(
        Mistake(_windows_mistake(shift=1),
                "Each of your inputs ends with its own target: the model would be shown the "
                "answer. Hint: the input of the target at index t is the `window` values "
                "before t, which stop at t − 1."),
        Mistake(_windows_mistake(split_by="count"),
                "Your split goes by where a window stands (its number, or its first index), so "
                "the last training pairs predict test values. Hint: send each pair to a side by "
                "the index of its target."),
        Mistake(_windows_mistake(split_by="whole_window"),
                "Your test side misses the first `window` test targets: a test input may reach "
                "back into the training period (those values are known by then). Hint: every "
                "target from first_test_index on is a test target."),
        Mistake(_windows_mistake(newest_first=True),
                "Your windows run newest first; they go oldest first, so that column −1 holds "
                "the year just before the target. Hint: keep the series' own order inside a "
                "window."),
    ),
    shape_hints={"train_inputs": "(training pairs, window)", "train_targets": "(training pairs,)",
                 "test_inputs": "(test pairs, window)", "test_targets": "(test pairs,)"},
    error_hint="the first target with a full window is at index `window`; collect the windows "
               "in a list and stack them.",
    hint="print the index of each target and the indices of its window for a short series "
         "(np.arange(12.0)) and check them against the contract.",
)

MEAN_ATTENTION_DISTANCE = Exercise(
    exercise_id="12.4",
    function_name="mean_attention_distance",
    make_cases=distance_cases,
    reference=mean_attention_distance,
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
        Mistake(_distance_mistake(weighted=False),
                "Your distances ignore the attention weights: you averaged over all the keys "
                "alike. Hint: weight each key's distance by the query's attention weight on "
                "it."),
        Mistake(_distance_mistake(over_heads=True),
                "You averaged over the heads too; the exercise wants one distance per head. "
                "Hint: average over the images and the queries only."),
    ),
    properties=(distances_in_range,),
    shape_hints={"distances": "(heads,)"},
    error_hint="weights is (B, H, 1 + N, 1 + N) with the class token at index 0: the patches "
               "are tokens 1 … N, on a grid_rows × grid_columns grid.",
    hint="for one image, one head and one patch query, work out the weighted mean distance by "
         "hand on a 2 × 2 grid and compare.",
)

EXERCISES = (PATCH_TOKENS, ATTENTION_ROLLOUT, FORECAST_WINDOWS, MEAN_ATTENTION_DISTANCE)
