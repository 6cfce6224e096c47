"""Exercises of lesson 06, self-attention and positions
(``solutions/06_self_attention_and_positions.ipynb``).

06.1 ``sinusoidal_encoding``  06.2 ``undo_permutation``  06.3 ``rotation_for_offset``
06.4 ``build_order_classifier`` (build: a model that must learn word order).

06.4 has no single right output: its check trains the learner's model on the lesson's order
task, "does A come before B?", for a fixed budget, and judges the predictions it returns on
held-out swapped pairs (on which a model blind to word order scores exactly 50 %) in the
grader's process. Keras is imported only inside :func:`invoke_order_classifier`.
"""

import numpy as np

from course_lib.checks.core import Case, Exercise, Mistake, NamedOutputs

GRADING_TIMEOUT_S = 300
"""Keras's import and two trainings of the order classifier (the self-check's, in the notebook,
and the grader's) take about 60 s of one core; 300 s leaves room for a busy machine."""

PAD, A, B = 0, 1, 2
ORDER_VOCABULARY = 12  # ids 3..11 are filler tokens
ORDER_TRAINING = {"examples": 2000, "epochs": 5, "batch_size": 64, "learning_rate": 3e-3}
"""06.4's training budget: the check compiles and fits the learner's model with these."""
ORDER_BAR = 0.8
"""06.4's bar: accuracy on held-out swapped pairs; a model blind to word order scores 0.5."""

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


def order_task(count, min_length, max_length, padded_length, rng, swapped_pairs=False):
    """``(ids (count, padded_length), labels (count,))``: random filler tokens with exactly one
    A and one B, right-padded with PAD; label 1 when A comes before B. With ``swapped_pairs``,
    every second row is the row before it with A and B exchanged (a permutation of it, with the
    other label), so a model blind to word order scores exactly 50 %."""
    ids = np.full((count, padded_length), PAD, dtype="int32")
    labels = np.zeros(count, dtype="int32")
    for row in range(0, count, 2 if swapped_pairs else 1):
        length = int(rng.integers(min_length, max_length + 1))
        ids[row, :length] = rng.integers(3, ORDER_VOCABULARY, size=length)
        where_a, where_b = rng.choice(length, size=2, replace=False)
        ids[row, where_a], ids[row, where_b] = A, B
        labels[row] = where_a < where_b
        if swapped_pairs:
            ids[row + 1] = ids[row]
            ids[row + 1, where_a], ids[row + 1, where_b] = B, A
            labels[row + 1] = 1 - labels[row]
    return ids, labels


def order_data(seed):
    """06.4's data from its case's seed: training sequences of 4 to 16 tokens padded to 16, and
    held-out swapped pairs of 4 to 12 tokens padded to 12."""
    rng = np.random.default_rng(seed)
    train = order_task(ORDER_TRAINING["examples"], 4, 16, 16, rng)
    test = order_task(600, 4, 12, 12, rng, swapped_pairs=True)
    return train, test


def invoke_order_classifier(build, case):
    """How 06.4 runs the learner's function, in the learner's kernel: build the model from the
    seed, compile and fit it on the training set with the fixed budget, then return its
    probabilities on the held-out pairs, and on the same pairs with four more padding
    positions."""
    import keras

    (train_ids, train_labels), (test_ids, _) = order_data(int(case["seed"]))
    keras.utils.set_random_seed(int(case["seed"]))
    model = build(ORDER_VOCABULARY, 16)
    if not isinstance(model, keras.Model):
        raise TypeError(f"build_order_classifier returned {type(model).__name__}; it must "
                        f"return a keras.Model")
    model.compile(keras.optimizers.Adam(ORDER_TRAINING["learning_rate"]), "binary_crossentropy")
    model.fit(train_ids, train_labels.astype("float32"), epochs=ORDER_TRAINING["epochs"],
              batch_size=ORDER_TRAINING["batch_size"], verbose=0)
    padded = np.concatenate([test_ids, np.full((len(test_ids), 4), PAD, "int32")], axis=1)
    probabilities = [np.asarray(keras.ops.convert_to_numpy(model.predict(ids, verbose=0)))
                     for ids in (test_ids, padded)]
    return tuple(p.reshape(len(test_ids), -1)[:, 0] if p.ndim == 2 and p.shape[1] == 1 else p
                 for p in probabilities)


def order_cases(rng):
    """One training run: its seed is the only input (the data come from it)."""
    return [{"seed": int(rng.integers(0, 2**31 - 1))}]


def order_judgement(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """06.4: probabilities of the right shape, unchanged by padding, and right on at least
    ORDER_BAR of the held-out swapped pairs."""
    _, (test_ids, labels) = order_data(int(case["seed"]))
    probabilities = mine["probabilities"]
    padded = mine["probabilities_with_more_padding"]
    if probabilities.shape != labels.shape:
        return (f"Your model's output has shape {probabilities.shape} for {len(labels)} "
                f"sequences; it must give one probability per sequence, (B, 1) or (B,). Hint: "
                f"what turns a sequence of token vectors into one number?")
    if np.any(~np.isfinite(probabilities)) or probabilities.min() < 0 or probabilities.max() > 1:
        return ("Your model's outputs are not probabilities between 0 and 1. Hint: which "
                "activation ends a binary classifier?")
    if padded.shape != probabilities.shape or not np.allclose(padded, probabilities, atol=1e-4):
        return ("Your model's output changes when the same sequences come with more padding: it "
                "reads padding (id 0) as tokens. Hint: where does your model learn which "
                "positions are padding, in the attention and in the pooling?")
    accuracy = float(np.mean((probabilities > 0.5) == labels))
    if accuracy >= ORDER_BAR:
        return None
    if np.allclose(probabilities[0::2], probabilities[1::2], atol=1e-6):
        return (f"Your model scores {accuracy:.1%} on pairs of sequences that differ only by "
                f"the order of A and B: it gives both the same output, so it cannot see word "
                f"order (a bag of words). Hint: what in your model tells position 3 from "
                f"position 7?")
    return (f"Your model gets {accuracy:.1%} of the held-out pairs right after its training "
            f"budget; the bar is {ORDER_BAR:.0%}. Hint: can each token's vector tell where it "
            f"is, and can one token find the other?")


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
            f"a sine or a cosine, between -1 and 1. Hint: are those the angles themselves, or "
            f"their sines and cosines?")


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
                "come back unchanged, only in another place. Hint: which axis holds the "
                "tokens, and does your indexing keep each token's features together?")
    return (f"Your tokens come back in the order {rows} of `permuted`, not in the original order "
            f"{np.argsort(case['permutation']).tolist()}. Hint: token i of `permuted` is token "
            f"permutation[i] of the original: where must it go back to?")


def is_a_rotation(case: Case, mine: NamedOutputs, expected: NamedOutputs) -> str | None:
    """Each 2×2 block turns a vector without stretching it: ``R R^T = I``."""
    matrix = mine["rotation"]
    if np.allclose(matrix @ matrix.T, np.eye(matrix.shape[0]), atol=1e-6):
        return None
    return ("Your matrix is not a rotation (R @ R.T is not the identity), so it changes the "
            "length of PE(p). Hint: each 2×2 block turns one pair of features, and nothing "
            "lies outside the blocks.")


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
                "cosines. Hint: which function goes on feature 0?"),
        Mistake(_encoding_mistake(concatenate=True),
                "You put all the sines first and all the cosines after them (concatenated); "
                "this encoding interleaves them. Hint: features 2i and 2i + 1 are the sine and "
                "the cosine of the same angle."),
        Mistake(_encoding_mistake(concatenate=True, swap=True),
                "You put all the cosines first and all the sines after them; this encoding "
                "interleaves them, sine first. Hint: features 2i and 2i + 1 are the sine and "
                "the cosine of the same angle."),
        Mistake(_encoding_mistake(exponent="half"),
                "Your exponent is i/depth for pair i; it is 2i/depth. Hint: read the exponent in "
                "the formula again, for feature 2i."),
        Mistake(_encoding_mistake(exponent="feature"),
                "You gave each feature j its own frequency 1/w**(j/depth), so a feature's sine "
                "and cosine turn at different speeds. Hint: features 2i and 2i + 1 share one "
                "frequency: which exponent does feature 2i + 1 use?"),
        Mistake(_encoding_mistake(multiply=True),
                "You multiply the positions by max_wavelength**(2i/depth) instead of dividing "
                "by it, so the slow features turn fastest. Hint: the last features must turn "
                "slowest."),
        Mistake(_encoding_mistake(shift=1),
                "Your positions are off by one: you encode position p + 1 where p is asked. "
                "Hint: the first token of a sequence is position 0, and sin 0 = 0, cos 0 = 1."),
        Mistake(_encoding_mistake(renumber=True),
                "You numbered the rows 0, 1, 2, … instead of using the `positions` you were "
                "given. Hint: the positions are an argument."),
        Mistake(_encoding_mistake(renumber=True, shift=1),
                "You numbered the rows 1, 2, 3, … instead of using the `positions` you were "
                "given. Hint: the positions are an argument."),
        Mistake(_encoding_mistake(wavelength=10000),
                "Your encoding ignores `max_wavelength` (always 10000). Hint: use the "
                "argument."),
    ),
    properties=(encoding_in_range, position_zero_row),
    shape_hints={"encoding": "one row per position, one column per feature"},
    error_hint="positions is a 1-D array of integers, and every position meets every "
               "frequency: a column against a row.",
    hint="compute the first two rows by hand, feature by feature, and compare.",
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
                "permutation[i] of the original: where must it go back to?"),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[..., permutation, :],
                "You applied the permutation a second time instead of undoing it. Hint: undoing "
                "a permutation takes its inverse."),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[..., np.argsort(permutation)],
                "You reordered the last axis, the features; the tokens are on axis -2. Hint: "
                "which axis does your indexing reorder?"),
        Mistake(lambda permuted, permutation: np.asarray(permuted)[np.argsort(permutation)],
                "You reordered axis 0, which holds the tokens of a single sequence (T, d) but "
                "the sequences of a batch (B, T, d). Hint: the tokens are on axis -2, whatever "
                "comes before it."),
    ),
    properties=(undoes_with_a_gather,),
    shape_hints={"original": "the shape of `permuted`"},
    error_hint="the tokens are on axis -2 (a single sequence is (T, d), a batch (B, T, d)): "
               "count the axis from the end.",
)

ROTATION_FOR_OFFSET = Exercise(
    exercise_id="06.3",
    function_name="rotation_for_offset",
    make_cases=rotation_cases,
    reference=rotation_for_offset,
    outputs=("rotation",),
    mistakes=(
        Mistake(_rotation_mistake(sign=-1.0),
                "Your matrix shifts backwards: R @ PE(p) = PE(p - offset). The textbook rotation "
                "turns (x, y); our pairs are (sin, cos). Hint: work the angle-sum formulas for "
                "one pair."),
        Mistake(_rotation_mistake(same_angle=True),
                "Every pair of your matrix turns by the same angle, `offset` radians; each pair "
                "turns at its own speed. Hint: pair i turns at the frequency of pair i of the "
                "encoding."),
        Mistake(_rotation_mistake(exponent="half"),
                "Your angles use the exponent i/depth for pair i; it is 2i/depth, as in the "
                "encoding. Hint: read the exponent in the formula again."),
        Mistake(_rotation_mistake(concatenated=True),
                "Your blocks pair feature i with feature i + depth/2 (the concatenated layout); "
                "in this encoding a pair is features 2i and 2i + 1. Hint: where on the diagonal "
                "does the block of pair i go?"),
        Mistake(_rotation_mistake(wavelength=10000),
                "Your matrix ignores `max_wavelength` (always 10000). Hint: use the "
                "argument."),
    ),
    properties=(is_a_rotation,),
    shape_hints={"rotation": "depth rows and depth columns"},
    hint="check your matrix on the encoding itself: R @ PE(p) must equal PE(p + offset) for "
         "every p.",
)

ORDER_CLASSIFIER = Exercise(
    exercise_id="06.4",
    function_name="build_order_classifier",
    make_cases=order_cases,
    reference=None,
    outputs=("probabilities", "probabilities_with_more_padding"),
    properties=(order_judgement,),
    invoke=invoke_order_classifier,
    describe=lambda case: (f"build_order_classifier({ORDER_VOCABULARY}, 16), then trained on "
                           f"{ORDER_TRAINING['examples']} sequences"),
    error_hint="the check calls build_order_classifier(vocabulary_size, max_length), compiles "
               "the model it returns (Adam, binary cross-entropy), fits it on ids (B, 16), and "
               "predicts on ids (B, 12) and (B, 16): the error's last line says which step "
               "failed.",
)

EXERCISES = (SINUSOIDAL_ENCODING, UNDO_PERMUTATION, ROTATION_FOR_OFFSET, ORDER_CLASSIFIER)
