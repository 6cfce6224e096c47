"""Reading a trained encoder's attention maps: attention rollout and mean attention distance.

Both take the self-attention weights of a stack of encoder blocks, one ``(B, H, T, T)`` array per
block (``TransformerEncoderBlock(..., return_attention_scores=True)`` returns them), row ``i``
holding query ``i``'s weights over the keys. ``keras.ops`` only: they run on any backend and
return backend tensors (``keras.ops.convert_to_numpy`` for NumPy).

- :func:`attention_rollout` (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
  §3): how much each input token reaches each output token through the whole stack, the
  residual connections included. Row 0 of a ViT's rollout is the class token's view of the
  patches: what the classifier's input was made of.
- :func:`mean_attention_distance` (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words",
  §4.5 and Fig. 7): how far, in pixels, each head looks on average, one number per head: small
  for a head that reads its neighbourhood, like a convolution, large for one that reads the
  whole image.
"""

from keras import ops

from course_lib.validation import require_positive_int, static_shape


def _require_maps(name, maps):
    shape = static_shape(maps)
    if len(shape) != 4 or shape[-1] != shape[-2]:
        raise ValueError(f"`{name}` must be self-attention weights of shape (batch, heads, "
                         f"tokens, tokens), received {shape}.")
    return shape


def attention_rollout(attention_maps, residual_weight=0.5):
    """``R = Ã_L ⋯ Ã_2 Ã_1`` with ``Ã_l = normalise((1 − α) mean_h A_l^h + α I)``.

    Each block's output at token ``i`` is its input at ``i`` (the residual connection) plus
    attention over all tokens. Abnar & Zuidema model that as ``α I + (1 − α) A`` with
    ``α = 0.5``, average the heads, re-normalise the rows to sum to 1, and chain the blocks by
    matrix products, lower block on the right: ``R[i, j]`` is the share of input token ``j`` in
    output token ``i`` after all ``L`` blocks, if attention were the only thing that mixes tokens
    (the feed-forward nets act on each token alone, so that much is true; what the projections
    do to each token's content is ignored).

    Args:
        attention_maps: a list of ``L`` arrays ``(B, H, T, T)``, the lowest block first.
        residual_weight: ``α`` in ``[0, 1]``; 0 gives the plain product of the attention maps.

    Returns:
        ``(B, T, T)``, each row summing to 1.

    Raises:
        ValueError: no maps, a map that is not ``(B, H, T, T)``, maps of different shapes, or
            ``residual_weight`` outside ``[0, 1]``.
    """
    if not 0.0 <= residual_weight <= 1.0:
        raise ValueError(f"`residual_weight` must be in [0, 1], received {residual_weight!r}.")
    maps = list(attention_maps)
    if not maps:
        raise ValueError("`attention_maps` is empty: pass one (B, H, T, T) array per block.")
    first = _require_maps("attention_maps[0]", maps[0])
    rollout = None
    for index, weights in enumerate(maps):
        shape = _require_maps(f"attention_maps[{index}]", weights)
        if shape != first:
            raise ValueError(f"`attention_maps[{index}]` has shape {shape}, but "
                             f"`attention_maps[0]` has {first}: every block's maps must agree.")
        weights = ops.convert_to_tensor(weights, "float32")
        mixed = ops.mean(weights, axis=1)  # (B, T, T): the heads averaged
        identity = ops.eye(first[-1], dtype="float32")  # (T, T)
        mixed = (1.0 - residual_weight) * mixed + residual_weight * identity
        mixed = mixed / ops.sum(mixed, axis=-1, keepdims=True)
        rollout = mixed if rollout is None else ops.matmul(mixed, rollout)  # (B, T, T)
    return rollout


def patch_distances(grid_shape, patch_size=1):
    """``(N, N)`` Euclidean distances, in pixels, between the centres of the ``N = rows ·
    columns`` patches of a grid numbered row by row (as ``PatchEmbedding`` numbers them)."""
    rows = require_positive_int("grid rows", grid_shape[0])
    columns = require_positive_int("grid columns", grid_shape[1])
    patch_size = require_positive_int("patch_size", patch_size)
    index = ops.arange(rows * columns)
    row = ops.cast(index // columns, "float32") * patch_size  # (N,)
    column = ops.cast(index % columns, "float32") * patch_size
    squared = ((row[:, None] - row[None, :]) ** 2
               + (column[:, None] - column[None, :]) ** 2)  # (N, N)
    return ops.sqrt(squared)


def mean_attention_distance(weights, grid_shape, patch_size=1, class_tokens=1):
    """One block's mean attention distance per head, in pixels: ``(H,)``.

    ``d_h = mean over images b and patch queries i of Σ_j a^h_bij ‖c_i − c_j‖``, with ``c_i`` the
    centre of patch ``i`` in pixels and ``a^h_bi·`` query ``i``'s weights over the *patch* keys,
    re-normalised to sum to 1 (the weight a patch puts on the class token has no place in the
    image, so it is left out). The class token is not a query either. As in the ViT paper's
    Fig. 7, a head at distance 1–2 pixels reads the next patches, one near the image's size
    reads all of it.

    Args:
        weights: ``(B, H, T, T)`` self-attention weights, ``T = class_tokens + rows · columns``.
        grid_shape: ``(rows, columns)`` of patches.
        patch_size: the side of a patch in pixels.
        class_tokens: how many tokens precede the patches.

    Raises:
        ValueError: ``weights`` not ``(B, H, T, T)``, or ``T`` not ``class_tokens + rows ·
            columns``.
    """
    shape = _require_maps("weights", weights)
    class_tokens = require_positive_int("class_tokens", class_tokens, minimum=0)
    patches = require_positive_int("grid rows", grid_shape[0]) * require_positive_int(
        "grid columns", grid_shape[1])
    if shape[-1] is not None and shape[-1] != class_tokens + patches:
        raise ValueError(f"`weights` of shape {shape} have {shape[-1]} tokens, but a "
                         f"{grid_shape[0]} × {grid_shape[1]} grid with {class_tokens} class "
                         f"token(s) has {class_tokens + patches}.")
    weights = ops.convert_to_tensor(weights, "float32")
    among_patches = weights[:, :, class_tokens:, class_tokens:]  # (B, H, N, N)
    totals = ops.sum(among_patches, axis=-1, keepdims=True)
    among_patches = among_patches / ops.maximum(totals, 1e-12)
    distances = patch_distances(grid_shape, patch_size)  # (N, N)
    per_query = ops.sum(among_patches * distances, axis=-1)  # (B, H, N)
    return ops.mean(per_query, axis=(0, 2))  # (H,)
