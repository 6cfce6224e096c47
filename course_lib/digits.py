"""The 8 × 8 handwritten digits of lessons 12 and 13: loading and a fixed stratified split.

The data are the 1,797 images of ``datasets/digits/digits.csv.gz`` (UCI "Optical Recognition of
Handwritten Digits", Alpaydin & Kaynak 1998, CC BY 4.0; the copy shipped in scikit-learn; see its
``SOURCE.md``). Each row holds the 64 pixels of an 8 × 8 image in row-major order, integers 0–16
(the number of "on" bits in a 4 × 4 block of a 32 × 32 bitmap), then the class 0–9.

=====================  ===========================================================================
step                   function
=====================  ===========================================================================
read                   :func:`load_digits` → ``(images (N, 8, 8) float32 in 0…16, labels (N,))``;
                       the course's file is checked against its SHA-256; a malformed row raises a
                       ``ValueError`` naming the file, the line and what is wrong
split                  :func:`split_digits` → train, validation and test indices, stratified by
                       class, the same on every machine for a given seed
both, with defaults    :func:`load_digits_split` → :class:`DigitsSplit`, images scaled to 0…1 with
                       a channel axis, ``(N, 8, 8, 1)``, as the models of lesson 12 read them
=====================  ===========================================================================
"""

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).resolve().parent.parent / "datasets" / "digits" / "digits.csv.gz"
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SIDE = 8
PIXELS = SIDE * SIDE
MAX_PIXEL = 16
CLASSES = 10

# The lesson's split: a quarter of each class held out for the test, 15 % for validation.
TEST_FRACTION = 0.25
VALIDATION_FRACTION = 0.15
SPLIT_SEED = 0


def _parse_row(text, line_number, path):
    fields = text.split(",")
    if len(fields) != PIXELS + 1:
        raise ValueError(f"{path.name}, line {line_number}: expected {PIXELS + 1} comma-separated "
                         f"integers (64 pixels and the class), found {len(fields)} fields.")
    try:
        values = [int(field) for field in fields]
    except ValueError:
        raise ValueError(f"{path.name}, line {line_number}: expected integers, found "
                         f"{text[:60]!r}.") from None
    pixels, label = values[:PIXELS], values[PIXELS]
    if min(pixels) < 0 or max(pixels) > MAX_PIXEL:
        raise ValueError(f"{path.name}, line {line_number}: pixels must lie in 0…{MAX_PIXEL}, "
                         f"found values from {min(pixels)} to {max(pixels)}.")
    if not 0 <= label < CLASSES:
        raise ValueError(f"{path.name}, line {line_number}: the class (last field) must be "
                         f"0…{CLASSES - 1}, found {label}.")
    return pixels, label


def load_digits(path=None):
    """The digits as ``(images, labels)``: ``(N, 8, 8)`` float32 pixels 0–16, ``(N,)`` int32.

    Args:
        path: a gzip-compressed CSV in the format of ``datasets/digits/digits.csv.gz``;
            defaults to the course's copy, which must match its SHA-256 (``SOURCE.md``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the course's file differs from the shipped one (checksum), the file is not
            gzip, or a row is malformed (the message names the file and the line).
    """
    path = DATA_FILE if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No digits file at {path}.")
    raw = path.read_bytes()
    if path == DATA_FILE and hashlib.sha256(raw).hexdigest() != SHA256:
        raise ValueError(f"{path.name} differs from the copy the course ships (SHA-256 "
                         f"{SHA256[:12]}…): restore it from the repository.")
    try:
        text = gzip.decompress(raw).decode("ascii")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name} is not a gzip-compressed ASCII CSV ({error}).") from None
    rows = [(number, line) for number, line in enumerate(text.split("\n"), start=1)
            if line.strip()]
    if not rows:
        raise ValueError(f"{path.name} holds no rows.")
    parsed = [_parse_row(line.strip(), number, path) for number, line in rows]
    images = np.array([pixels for pixels, _ in parsed], dtype=np.float32).reshape(-1, SIDE, SIDE)
    labels = np.array([label for _, label in parsed], dtype=np.int32)
    return images, labels


def split_digits(labels, test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION,
                 seed=SPLIT_SEED):
    """Train, validation and test indices, stratified by class.

    Within each class the indices are shuffled with ``numpy.random.default_rng(seed)`` (one
    generator, classes in order 0…9); the first ``round(test_fraction · n)`` go to the test
    side, the next ``round(validation_fraction · n)`` to validation, the rest to training. Each
    side is returned sorted, so each class keeps its share everywhere.

    Returns:
        ``(train, validation, test)``: three sorted int arrays that partition ``range(N)``.

    Raises:
        ValueError: fractions outside ``[0, 1)`` or summing to 1 or more, or a class too small
            to give every side at least one image.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be one class per image, shape (N,), received "
                         f"{labels.shape}.")
    for name, fraction in (("test_fraction", test_fraction),
                           ("validation_fraction", validation_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), received {fraction!r}.")
    if test_fraction + validation_fraction >= 1.0:
        raise ValueError(f"test_fraction + validation_fraction must be below 1, received "
                         f"{test_fraction} + {validation_fraction}.")
    rng = np.random.default_rng(seed)
    sides = ([], [], [])
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * len(members))
        n_validation = round(validation_fraction * len(members))
        too_few = ((test_fraction > 0 and n_test == 0)
                   or (validation_fraction > 0 and n_validation == 0)
                   or len(members) - n_test - n_validation < 1)
        if too_few:
            raise ValueError(f"class {label} has {len(members)} images: too few to split "
                             f"with these fractions.")
        test, validation = members[:n_test], members[n_test:n_test + n_validation]
        train = members[n_test + n_validation:]
        for side, part in zip(sides, (train, validation, test), strict=True):
            side.append(part)
    train, validation, test = (np.sort(np.concatenate(side)) for side in sides)
    return train, validation, test


@dataclass(frozen=True)
class DigitsSplit:
    """The split digits, images scaled to 0…1 with a channel axis: ``(N, 8, 8, 1)`` float32,
    labels ``(N,)`` int32. ``*_index`` are the rows of :func:`load_digits` on each side."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    train_index: np.ndarray
    validation_index: np.ndarray
    test_index: np.ndarray


def load_digits_split(path=None, seed=SPLIT_SEED):
    """:func:`load_digits` then :func:`split_digits` with the lesson's fractions."""
    images, labels = load_digits(path)
    scaled = (images / MAX_PIXEL)[..., None]  # (N, 8, 8, 1), 0…1
    train, validation, test = split_digits(labels, seed=seed)
    return DigitsSplit(scaled[train], labels[train], scaled[validation], labels[validation],
                       scaled[test], labels[test], train, validation, test)
