"""Tiny Shakespeare as characters, for lesson 09's character-level GPT.

The data are ``datasets/tinyshakespeare/input.txt`` (1,115,394 characters of Shakespeare's
plays, public domain, prepared by Andrej Karpathy for char-rnn; see its ``SOURCE.md``).

===========================  ====================================================================
step                         function
===========================  ====================================================================
read                         :func:`load_text` — the file as one string
vocabulary                   :class:`CharVocabulary` — the sorted distinct characters (65), one
                             id each; ``encode`` / ``decode``
split                        :func:`load_shakespeare` — the first 90 % of the characters for
                             training, the last 10 % for validation (nanoGPT's split)
batches                      :func:`random_windows` (training: windows at random offsets, the
                             targets one character further on) and :func:`consecutive_windows`
                             (evaluation: the validation text cut into windows)
===========================  ====================================================================

Everything is NumPy and deterministic: the same file and seed give the same arrays anywhere.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.validation import require_positive_int

DATA_FILE = Path(__file__).resolve().parent.parent / "datasets" / "tinyshakespeare" / "input.txt"
TRAIN_FRACTION = 0.9


def load_text(path=None):
    """The whole text of ``path`` (default: the course's copy of Tiny Shakespeare)."""
    path = Path(path or DATA_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"No text file at {path}.")
    return path.read_text(encoding="utf-8")


class CharVocabulary:
    """One id per distinct character of a text, in sorted order (``"\\n"`` is id 0 in
    Tiny Shakespeare, ``" "`` id 1, then punctuation, capitals, small letters)."""

    def __init__(self, characters):
        self.characters = "".join(sorted(set(characters)))
        if not self.characters:
            raise ValueError("A character vocabulary needs at least one character.")
        self._ids = {character: index for index, character in enumerate(self.characters)}

    def __len__(self):
        return len(self.characters)

    def __contains__(self, character):
        return character in self._ids

    def encode(self, text):
        """``text`` as an int32 array of ids; a ValueError names characters not in the
        vocabulary."""
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ValueError(f"Characters not in the vocabulary: {unknown!r} (the vocabulary "
                             f"has {len(self)} characters: {self.characters!r}).")
        return np.array([self._ids[character] for character in text], dtype=np.int32)

    def decode(self, ids):
        """The text of a sequence of ids (any integer array of rank 1)."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"`ids` must have rank 1, received shape {ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), received values from "
                             f"{ids.min()} to {ids.max()}.")
        return "".join(self.characters[int(index)] for index in ids)

    def fingerprint(self):
        """A short hash of the characters in order: weights trained with one vocabulary must
        not be read with another."""
        return hashlib.sha256(self.characters.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class CharCorpus:
    """A text split for language modelling: ``train_ids`` and ``validation_ids`` (int32)."""

    vocabulary: CharVocabulary
    train_ids: np.ndarray
    validation_ids: np.ndarray

    def summary(self):
        return {"characters": int(len(self.train_ids) + len(self.validation_ids)),
                "vocabulary_size": len(self.vocabulary),
                "train_characters": int(len(self.train_ids)),
                "validation_characters": int(len(self.validation_ids)),
                "vocabulary_fingerprint": self.vocabulary.fingerprint()}


def load_shakespeare(path=None, train_fraction=TRAIN_FRACTION):
    """The corpus: the vocabulary of the whole text, its first ``train_fraction`` of the
    characters for training and the rest for validation (no shuffling: the validation text
    is the end of the file, scenes the model never read)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must be in (0, 1), received {train_fraction!r}.")
    text = load_text(path)
    vocabulary = CharVocabulary(text)
    ids = vocabulary.encode(text)
    split = int(train_fraction * len(ids))
    return CharCorpus(vocabulary, ids[:split], ids[split:])


def random_windows(ids, batch_size, length, rng):
    """``(inputs, targets)``, both ``(batch_size, length)`` int32: windows of ``ids`` at
    random offsets drawn from ``rng``; ``targets[b, t] = ids[offset_b + t + 1]``, the next
    character after ``inputs[b, t]``."""
    batch_size = require_positive_int("batch_size", batch_size)
    length = require_positive_int("length", length)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) <= length:
        raise ValueError(f"`ids` must be a sequence longer than length={length}, received "
                         f"shape {ids.shape}.")
    offsets = rng.integers(0, len(ids) - length, size=batch_size)
    window = offsets[:, None] + np.arange(length)[None, :]               # (B, T)
    return ids[window].astype(np.int32), ids[window + 1].astype(np.int32)


def consecutive_windows(ids, length):
    """``(inputs, targets)`` ``(N, length)``: ``ids`` cut into ``N`` back-to-back windows
    (the remainder that does not fill a window is dropped). Every character but the first
    is a target exactly once per ``length`` characters; each window starts with no context,
    as the training windows do, so the mean loss is comparable to the training loss."""
    length = require_positive_int("length", length)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) <= length:
        raise ValueError(f"`ids` must be a sequence longer than length={length}, received "
                         f"shape {ids.shape}.")
    count = (len(ids) - 1) // length
    inputs = ids[:count * length].reshape(count, length)                # (N, T)
    targets = ids[1:count * length + 1].reshape(count, length)          # (N, T)
    return inputs.astype(np.int32), targets.astype(np.int32)
