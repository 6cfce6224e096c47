"""Copy a built Keras layer's weights into one of ours, by name (never by position).

Keras names a weight by its path, e.g. ``transformer_encoder/self_attention_layer/query/kernel``.
Matching on the tail of that path (``self_attention_layer/query/kernel``) finds the same weight
whether the layer stands alone or sits inside a model, and a renamed or missing weight fails
loudly instead of being copied into the wrong place.
"""

from keras import ops


def find_variable(layer, suffix):
    """The one weight of ``layer`` whose path ends with ``suffix``; ValueError otherwise."""
    matches = [v for v in layer.weights if v.path == suffix or v.path.endswith("/" + suffix)]
    if len(matches) != 1:
        found = ", ".join(v.path for v in layer.weights) or "no weights (is it built?)"
        raise ValueError(
            f"Expected exactly one weight of layer '{layer.name}' named '.../{suffix}', found "
            f"{len(matches)}. Its weights: {found}."
        )
    return matches[0]


def has_variable(layer, suffix):
    """Whether ``layer`` has a weight whose path ends with ``suffix``."""
    return any(v.path == suffix or v.path.endswith("/" + suffix) for v in layer.weights)


def assign_variable(target, source):
    """``target.assign(source)`` after checking that the shapes agree."""
    if tuple(target.shape) != tuple(source.shape):
        raise ValueError(
            f"Cannot copy weight '{source.path}' of shape {tuple(source.shape)} into "
            f"'{target.path}' of shape {tuple(target.shape)}."
        )
    target.assign(ops.convert_to_tensor(source.value, dtype=target.dtype))

