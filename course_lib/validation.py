"""Input checks shared by the attention functions and layers.

Every check raises a ``ValueError`` whose message names the argument, the shape it received and
the shape it expected, so that a learner reads *what* was wrong instead of a broadcasting error
deep inside a backend. Dimensions that are unknown while a model is traced (``None``) are not
checked: they are checked again when real data flows.
"""

import numbers


def static_shape(tensor):
    """The shape of ``tensor`` as a tuple, with ``None`` for dimensions unknown at trace time.

    While a functional model is traced, an unknown dimension is ``None``, a tensor (TensorFlow)
    or a symbolic dimension (JAX); only plain integers count as known.
    """
    # Imported here, not at the top: NumPy-only modules (course_lib.data, the exercise checks that
    # every graded kernel loads) use this module's count checks without loading a backend.
    from keras import ops

    return tuple(int(d) if isinstance(d, numbers.Integral) else None for d in ops.shape(tensor))


def require_rank(name, tensor, ranks):
    """Raise unless ``tensor`` has one of ``ranks`` dimensions (``ranks``: an int or a tuple)."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    shape = static_shape(tensor)
    if len(shape) not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"`{name}` must have rank {wanted}, but received shape {shape} (rank {len(shape)})."
        )
    return shape


def require_same_dim(what, first_name, first_shape, first_axis, second_name, second_shape,
                     second_axis):
    """Raise when two known dimensions that must agree (batch, length, depth) differ."""
    a, b = first_shape[first_axis], second_shape[second_axis]
    if a is not None and b is not None and a != b:
        raise ValueError(
            f"{what} must agree: `{first_name}` has shape {first_shape} and `{second_name}` "
            f"has shape {second_shape} ({a} != {b})."
        )


def require_broadcastable(name, shape, target_shape, hint=""):
    """Raise unless ``shape`` broadcasts to ``target_shape`` without changing ``target_shape``.

    Used for masks: a mask may have fewer leading axes or size-1 axes, but it may not stretch the
    scores it masks.
    """
    if len(shape) > len(target_shape):
        raise ValueError(
            f"`{name}` of shape {shape} has more dimensions than the scores it masks, "
            f"{target_shape}.{hint}"
        )
    for size, target in zip(reversed(shape), reversed(target_shape), strict=False):
        if size is None or target is None or size == 1:
            continue
        if size != target:
            raise ValueError(
                f"`{name}` of shape {shape} does not broadcast to the attention scores of shape "
                f"{target_shape}.{hint}"
            )


def shape_matches(shape, expected):
    """Whether ``shape`` equals ``expected``, an unknown (``None``) dimension matching anything."""
    return len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected, strict=True))


def require_shape(name, tensor, expected):
    """Raise unless ``tensor`` has shape ``expected`` (``None`` matches any size)."""
    shape = static_shape(tensor)
    if not shape_matches(shape, expected):
        raise ValueError(f"`{name}` must have shape {tuple(expected)}, received {shape}.")
    return shape


def require_positive_int(name, value, minimum=1):
    """``value`` as an ``int`` when it is an integer >= ``minimum`` (1 by default), else a
    ``ValueError`` naming the argument and the value.

    Python and NumPy integers are accepted. Booleans are refused (``True`` is an ``int`` to
    Python, but ``units=True`` is a mistake, not one unit), and so are floats, whole or not:
    ``2.5`` heads must not quietly become 2.
    """
    wanted = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be {wanted}, received {value!r} "
                         f"of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be {wanted}, received {value!r}.")
    return int(value)
