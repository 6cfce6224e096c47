"""Exercises of lesson 06, self-attention and positions
(``solutions/06_self_attention_and_positions.ipynb``).

06.1 ``sinusoidal_encoding``  06.2 ``undo_permutation``  06.3 ``rotation_for_offset``.
All in NumPy, so a graded kernel never imports TensorFlow.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs

# --- References -----------------------------------------------------------------------------


def _frequencies(depth, max_wavelength, pair_exponent=True):
    """``omega_i = 1 / w^(2i/d)`` for the pairs ``i = 0 .. d/2 - 1`` (``w^(i/d)`` if not
    ``pair_exponent``: the usual slip)."""
    pairs = np.arange(depth // 2)
    exponent = 2 * pairs / depth if pair_exponent else pairs / depth
    return 1.0 / np.power(float(max_wavelength), exponent)


def sinusoidal_encoding(positions, depth, max_wavelength=10000):
    """``PE[r, 2i] = sin(p_r / w^(2i/d))``, ``PE[r, 2i+1] = cos(p_r / w^(2i/d))`` for the
    positions ``p_r`` given: shape ``(len(positions), depth)``, interleaved as in
    ``keras_hub.layers.SinePositionEncoding``."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    angles = positions[:, None] * np.repeat(_frequencies(depth, max_wavelength), 2)[None, :]
    even = np.arange(depth) % 2 == 0
    return np.where(even, np.sin(angles), np.cos(angles))


def undo_permutation(permuted, permutation):
    """The inverse of ``permuted = original[..., permutation, :]``: the original order of the
    tokens (axis -2), for any leading axes."""
    return np.asarray(permuted)[..., np.argsort(permutation), :]


def _rotation(offset, depth, max_wavelength, sign=1.0, frequencies=None, pairs=None):
    """Block-diagonal ``[[cos, sin], [-sin, cos]]`` blocks on the feature pairs ``pairs``."""
    frequencies = _frequencies(depth, max_wavelength) if frequencies is None else frequencies
    pairs = [(2 * i, 2 * i + 1) for i in range(depth // 2)] if pairs is None else pairs
    matrix = np.zeros((depth, depth))
    for (first, second), frequency in zip(pairs, frequencies, strict=True):
        angle = offset * frequency
        matrix[first, first] = matrix[second, second] = np.cos(angle)
        matrix[first, second] = sign * np.sin(angle)
        matrix[second, first] = -sign * np.sin(angle)
    return matrix


def rotation_for_offset(offset, depth, max_wavelength=10000):
    """The ``(depth, depth)`` matrix ``R`` with ``PE(p + offset) = R @ PE(p)`` for every
    position ``p``: one 2×2 rotation ``[[cos θ_i, sin θ_i], [-sin θ_i, cos θ_i]]``,
    ``θ_i = offset / w^(2i/d)``, on each (sin, cos) pair of features ``(2i, 2i + 1)``."""
    return _rotation(offset, depth, max_wavelength)


# --- Inputs: small, and shaped so that each usual mistake shows -------------------------------


def encoding_cases(rng):
    """Positions from 0, from an offset, and scattered (so that numbering the rows 0, 1, 2, …
    shows); depths that differ from the number of positions (so that a transposed result
    shows); a short ``max_wavelength`` (so that ignoring it shows)."""
    scattered = np.sort(rng.choice(200, size=5, replace=False))
    start = int(rng.integers(3, 9))
    return [
        {"positions": np.arange(6), "depth": 8, "max_wavelength": 10000},
        {"positions": np.arange(start, start + 7), "depth": 6, "max_wavelength": 10000},
        {"positions": scattered, "depth": 16, "max_wavelength": 100},
        {"positions": np.arange(10), "depth": 4, "max_wavelength": 10000},
    ]


def _cycle(rng, length):
    """A permutation of ``length`` items that is not its own inverse (so that applying it a
    second time differs from undoing it) and moves every item."""
    while True:
        permutation = rng.permutation(length)
        if not np.array_equal(permutation[permutation], np.arange(length)) and np.all(
                permutation != np.arange(length)):
            return permutation


def permutation_cases(rng):
    """One sequence ``(T, d)``, a batch ``(B, T, d)`` and a batch of heads ``(B, H, T, d)``.
    Features outnumber tokens (so that reordering the features runs, and shows), and the batch
    has as many sequences as tokens (so that reordering the batch runs, and shows)."""
    cases = []
    for shape in ((5, 7), (6, 6, 8), (4, 2, 4, 5)):
        cases.append({"permuted": rng.normal(size=shape), "permutation": _cycle(rng, shape[-2])})
    return cases


def rotation_cases(rng):
    """Offsets forwards and backwards, several depths, a short ``max_wavelength``."""
    return [
        {"offset": 1, "depth": 4, "max_wavelength": 10000},
        {"offset": int(rng.integers(2, 6)), "depth": 8, "max_wavelength": 10000},
        {"offset": -int(rng.integers(2, 6)), "depth": 6, "max_wavelength": 100},
        {"offset": int(rng.integers(10, 40)), "depth": 16, "max_wavelength": 10000},
    ]


# --- Wrong implementations: the usual mistakes -----------------------------------------------


def _encoding_variant(positions, depth, max_wavelength, swap=False, concatenate=False,
                      exponent="pair", shift=0, renumber=False, wavelength=None,
                      multiply=False):
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    if renumber:
        positions = np.arange(len(positions), dtype=np.float64)
    positions = positions + shift
    w = float(max_wavelength if wavelength is None else wavelength)
    if exponent == "pair":  # the right one: 2i/d for both features of pair i
        frequencies = np.repeat(_frequencies(depth, w), 2)
    elif exponent == "half":  # i/d: the pair index without the 2
        frequencies = np.repeat(_frequencies(depth, w, pair_exponent=False), 2)
    else:  # "feature": j/d with j the feature index, so the two features of a pair differ
        frequencies = 1.0 / np.power(w, np.arange(depth) / depth)
    if multiply:
        frequencies = 1.0 / frequencies
    if concatenate:
        angles = positions[:, None] * frequencies[None, ::2]
        first, second = (np.cos, np.sin) if swap else (np.sin, np.cos)
        return np.concatenate([first(angles), second(angles)], axis=1)
    angles = positions[:, None] * frequencies[None, :]
    even = np.arange(depth) % 2 == 0
    if swap:
        return np.where(even, np.cos(angles), np.sin(angles))
    return np.where(even, np.sin(angles), np.cos(angles))


def _encoding_mistake(**variant):
    def wrong(positions, depth, max_wavelength):
        return _encoding_variant(positions, depth, max_wavelength, **variant)
    return wrong


def _rotation_mistake(sign=1.0, exponent="pair", same_angle=False, concatenated=False,
                      wavelength=None):
    def wrong(offset, depth, max_wavelength):
        w = float(max_wavelength if wavelength is None else wavelength)
        frequencies = _frequencies(depth, w, pair_exponent=exponent == "pair")
        if same_angle:
            frequencies = np.ones(depth // 2)
        pairs = [(i, i + depth // 2) for i in range(depth // 2)] if concatenated else None
        return _rotation(offset, depth, w, sign=sign, frequencies=frequencies, pairs=pairs)
    return wrong


# --- Diagnoses read from the outputs ------------------------------------------------------------


def encoding_in_range(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Sines and cosines lie in [-1, 1]."""
    encoding = mine["encoding"]
    if np.all(np.abs(encoding) <= 1 + 1e-9):
        return None
    return (f"Your encoding has values up to {np.max(np.abs(encoding)):.3g}, but every entry is "
            f"a sine or a cosine, between -1 and 1. Hint: take np.sin and np.cos of the angles "
            f"p / max_wavelength**(2i / depth), not the angles themselves.")


def position_zero_row(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """At position 0 every angle is 0: sin 0 = 0 on even features, cos 0 = 1 on odd ones."""
    positions = np.asarray(case["positions"]).reshape(-1)
    if positions[0] != 0:
        return None
    row = mine["encoding"][0]
    if np.allclose(row, expected["encoding"][0], atol=1e-6):
        return None
    return (f"Your row for position 0 is {np.round(row[:4], 3).tolist()}…, but every angle is 0 "
            f"there, so it must be [0, 1, 0, 1, …] (sin 0 on even features, cos 0 on odd). "
            f"Hint: the angle is position × frequency, with nothing added.")


def undoes_with_a_gather(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """The tokens come back as a reordering of the permuted rows: is it the wrong order?"""
    permuted, output = np.asarray(case["permuted"]), mine["original"]
    length = permuted.shape[-2]
    rows = [next((j for j in range(length)
                  if np.allclose(output[..., i, :], permuted[..., j, :])), None)
            for i in range(length)]
    if None in rows:
        return ("Your result is not a reordering of the tokens of `permuted`: each token "
                "(a row along axis -2, all its features, in every sequence of the batch) must "
                "come back unchanged, only in another place. Hint: "
                "permuted[..., np.argsort(permutation), :].")
    return (f"Your tokens come back in the order {rows} of `permuted`, not in the original order "
            f"{np.argsort(case['permutation']).tolist()}. Hint: token i of `permuted` is token "
            f"permutation[i] of the original, so original[..., permutation, :] = permuted.")


def is_a_rotation(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Each 2×2 block turns a vector without stretching it: ``R R^T = I``."""
    matrix = mine["rotation"]
    if np.allclose(matrix @ matrix.T, np.eye(matrix.shape[0]), atol=1e-6):
        return None
    return ("Your matrix is not a rotation (R @ R.T is not the identity), so it changes the "
            "length of PE(p). Hint: each block is [[cos θ, sin θ], [-sin θ, cos θ]], with "
            "both cosines on the diagonal and zeros outside the 2×2 blocks.")


# --- The exercises ------------------------------------------------------------------------------

SINUSOIDAL_ENCODING = Exercise(
    exercise_id="06.1",
    function_name="sinusoidal_encoding",
    make_cases=encoding_cases,
    reference=sinusoidal_encoding,
    outputs=("encoding",),
    mistakes=(
        Mistake(_encoding_mistake(swap=True),
                "Your sines and cosines are swapped: even features must be sines, odd features "
                "cosines. Hint: PE[:, 0::2] = sin(angles), PE[:, 1::2] = cos(angles)."),
        Mistake(_encoding_mistake(concatenate=True),
                "You put all the sines first and all the cosines after them (concatenated); "
                "this encoding interleaves them. Hint: PE[:, 0::2] = sin(angles) and "
                "PE[:, 1::2] = cos(angles)."),
        Mistake(_encoding_mistake(concatenate=True, swap=True),
                "You put all the cosines first and all the sines after them; this encoding "
                "interleaves them, sine first. Hint: PE[:, 0::2] = sin(angles) and "
                "PE[:, 1::2] = cos(angles)."),
        Mistake(_encoding_mistake(exponent="half"),
                "Your exponent is i/depth for pair i; it is 2i/depth. Hint: the two features "
                "of pair i (2i and 2i + 1) share the frequency 1 / max_wavelength**(2i / depth)."),
        Mistake(_encoding_mistake(exponent="feature"),
                "You gave each feature j its own frequency 1/w**(j/depth), so a feature's sine "
                "and cosine turn at different speeds. Hint: features 2i and 2i + 1 share "
                "1 / max_wavelength**(2i / depth): use 2 * (j // 2) in the exponent."),
        Mistake(_encoding_mistake(multiply=True),
                "You multiply the positions by max_wavelength**(2i/depth) instead of dividing "
                "by it, so the slow features turn fastest. Hint: angle = position / "
                "max_wavelength**(2i / depth)."),
        Mistake(_encoding_mistake(shift=1),
                "Your positions are off by one: you encode position p + 1 where p is asked. "
                "Hint: the first token of a sequence is position 0, and sin 0 = 0, cos 0 = 1."),
        Mistake(_encoding_mistake(renumber=True),
                "You numbered the rows 0, 1, 2, … instead of using the `positions` you were "
                "given. Hint: the angles are positions[:, None] times the frequencies."),
        Mistake(_encoding_mistake(renumber=True, shift=1),
                "You numbered the rows 1, 2, 3, … instead of using the `positions` you were "
                "given. Hint: the angles are positions[:, None] times the frequencies."),
        Mistake(_encoding_mistake(wavelength=10000),
                "Your encoding ignores `max_wavelength` (always 10000). Hint: use the argument "
                "in max_wavelength**(2i / depth)."),
    ),
    properties=(encoding_in_range, position_zero_row),
    shape_hints={"encoding": "one row per position, one column per feature"},
    error_hint="positions is a 1-D array of integers; np.asarray(positions)[:, None] makes it a "
               "column that broadcasts against a row of frequencies.",
    hint="compute the angles positions[:, None] / max_wavelength**(2 * (j // 2) / depth) for the "
         "features j, then sin on even j and cos on odd j.",
)

UNDO_PERMUTATION = Exercise(
    exercise_id="06.2",
    function_name="undo_permutation",
    make_cases=permutation_cases,
    reference=undo_permutation,
    outputs=("original",),
    mistakes=(
        Mistake(lambda permuted, permutation: np.asarray(permuted),
                "You returned `permuted` unchanged. Hint: token i of `permuted` is token "
                "permutation[i] of the original: put it back with "
                "permuted[..., np.argsort(permutation), :]."),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[..., permutation, :],
                "You applied the permutation a second time instead of undoing it. Hint: undo "
                "it with its inverse, np.argsort(permutation), or assign "
                "original[..., permutation, :] = permuted."),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[..., np.argsort(permutation)],
                "You reordered the last axis, the features; the tokens are on axis -2. Hint: "
                "permuted[..., np.argsort(permutation), :] keeps the features of each token "
                "together."),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[np.argsort(permutation)],
                "You reordered axis 0, which holds the tokens of a single sequence (T, d) but "
                "the sequences of a batch (B, T, d). Hint: index axis -2 whatever comes before "
                "it: permuted[..., np.argsort(permutation), :]."),
    ),
    properties=(undoes_with_a_gather,),
    shape_hints={"original": "the shape of `permuted`"},
    error_hint="the tokens are on axis -2 (a single sequence is (T, d), a batch (B, T, d)): "
               "permuted[..., index, :] reorders them whatever the leading axes.",
)

ROTATION_FOR_OFFSET = Exercise(
    exercise_id="06.3",
    function_name="rotation_for_offset",
    make_cases=rotation_cases,
    reference=rotation_for_offset,
    outputs=("rotation",),
    mistakes=(
        Mistake(_rotation_mistake(sign=-1.0),
                "Your matrix shifts backwards: R @ PE(p) = PE(p - offset). [[cos, -sin], [sin, "
                "cos]] turns (x, y); our pairs are (sin, cos). Hint: use [[cos θ, sin θ], "
                "[-sin θ, cos θ]] on each pair."),
        Mistake(_rotation_mistake(same_angle=True),
                "Every pair of your matrix turns by the same angle, `offset` radians; each pair "
                "turns at its own speed. Hint: θ_i = offset / max_wavelength**(2i / depth) for "
                "the pair of features (2i, 2i + 1)."),
        Mistake(_rotation_mistake(exponent="half"),
                "Your angles use the exponent i/depth for pair i; it is 2i/depth, as in the "
                "encoding. Hint: θ_i = offset / max_wavelength**(2i / depth)."),
        Mistake(_rotation_mistake(concatenated=True),
                "Your blocks pair feature i with feature i + depth/2 (the concatenated layout); "
                "in this encoding a pair is features 2i and 2i + 1. Hint: fill "
                "R[2i:2i+2, 2i:2i+2] with the 2×2 rotation of pair i."),
        Mistake(_rotation_mistake(wavelength=10000),
                "Your matrix ignores `max_wavelength` (always 10000). Hint: θ_i = offset / "
                "max_wavelength**(2i / depth)."),
    ),
    properties=(is_a_rotation,),
    shape_hints={"rotation": "depth rows and depth columns"},
    hint="check your matrix on the encoding itself: R @ PE(p) must equal PE(p + offset) for "
         "every p, pair by pair: (sin(a + θ), cos(a + θ)) from (sin a, cos a).",
)

EXERCISES = (SINUSOIDAL_ENCODING, UNDO_PERMUTATION, ROTATION_FOR_OFFSET)
