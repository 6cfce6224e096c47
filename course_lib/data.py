"""Data for the lessons: synthetic tasks generated from a seed, and (later) the offline data sets.

Every task comes as :class:`SequencePairs`, source and target token ids laid out for an
encoder–decoder trained with *teacher forcing*:

==================  ============  ==============================================================
array               shape         content (ids, ``int32``)
==================  ============  ==============================================================
``encoder_inputs``  ``(N, S)``    the source tokens, right-padded with ``PAD_ID``
``decoder_inputs``  ``(N, T)``    ``START_ID`` then the target tokens (the target shifted right)
``targets``         ``(N, T)``    the target tokens then ``END_ID``: what each step must predict
==================  ============  ==============================================================

``S`` is the longest source, ``T`` the longest target plus one. Padding convention: id ``0``
(``PAD_ID``) is padding, ``1`` (``START_ID``) starts the decoder, ``2`` (``END_ID``) ends the
target; real tokens are ``3`` and up (``FIRST_TOKEN_ID``). A vocabulary is a tuple of token
strings indexed by id, whose first three entries are ``SPECIAL_TOKENS``.

Everything is NumPy and deterministic: the same arguments and seed give the same arrays on any
machine and backend.
"""

from dataclasses import dataclass

import numpy as np

from course_lib.validation import require_positive_int

PAD_ID = 0
START_ID = 1
END_ID = 2
FIRST_TOKEN_ID = 3
SPECIAL_TOKENS = ("<pad>", "<start>", "<end>")


@dataclass(frozen=True)
class SequencePairs:
    """Source/target pairs ready for teacher forcing (shapes and ids: see the module docstring).

    Attributes:
        encoder_inputs: ``(N, S)`` source ids, right-padded with ``PAD_ID``.
        decoder_inputs: ``(N, T)`` ``START_ID`` + target ids, padded.
        targets: ``(N, T)`` target ids + ``END_ID``, padded.
        source_lengths: ``(N,)`` number of real tokens in each source.
        source_vocabulary, target_vocabulary: token strings indexed by id.
    """

    encoder_inputs: np.ndarray
    decoder_inputs: np.ndarray
    targets: np.ndarray
    source_lengths: np.ndarray
    source_vocabulary: tuple
    target_vocabulary: tuple

    def __len__(self):
        return len(self.encoder_inputs)

    def select(self, index):
        """The pairs at ``index`` (a boolean mask or integer indices), e.g.
        ``pairs.select(pairs.source_lengths == 20)``."""
        return SequencePairs(self.encoder_inputs[index], self.decoder_inputs[index],
                             self.targets[index], self.source_lengths[index],
                             self.source_vocabulary, self.target_vocabulary)



def symbol_vocabulary(vocabulary_size):
    """``SPECIAL_TOKENS`` followed by ``vocabulary_size - 3`` symbols ``a, b, c, …`` (then
    ``s26, s27, …`` after ``z``): the vocabulary of the synthetic tasks."""
    vocabulary_size = require_positive_int("vocabulary_size", vocabulary_size, FIRST_TOKEN_ID + 1)
    symbols = [chr(ord("a") + i) if i < 26 else f"s{i}"
               for i in range(vocabulary_size - FIRST_TOKEN_ID)]
    return SPECIAL_TOKENS + tuple(symbols)


def teacher_forcing_pairs(sources, targets, source_vocabulary, target_vocabulary,
                          source_length=None, target_length=None):
    """Pad lists of id sequences into :class:`SequencePairs` (the loaders' common last step).

    Args:
        sources: sequences of source ids (no special tokens), each at least one long.
        targets: sequences of target ids (no special tokens), one per source.
        source_vocabulary, target_vocabulary: token strings indexed by id.
        source_length: ``S``, at least the longest source (default: the longest source).
        target_length: ``T``, at least the longest target + 1 (default: that).

    Returns:
        :class:`SequencePairs`.
    """
    if len(sources) != len(targets):
        raise ValueError(f"`sources` and `targets` must have the same length, received "
                         f"{len(sources)} and {len(targets)}.")
    if len(sources) == 0:
        raise ValueError("`sources` is empty: need at least one pair.")
    longest_source = max(len(s) for s in sources)
    longest_target = max(len(t) for t in targets) + 1
    source_length = longest_source if source_length is None else source_length
    target_length = longest_target if target_length is None else target_length
    if min(len(s) for s in sources) < 1:
        raise ValueError("`sources` holds an empty sequence: every source needs a token.")
    if source_length < longest_source:
        raise ValueError(f"`source_length` ({source_length}) is shorter than the longest "
                         f"source ({longest_source}).")
    if target_length < longest_target:
        raise ValueError(f"`target_length` ({target_length}) is shorter than the longest "
                         f"target + 1 ({longest_target}).")
    encoder_inputs = np.full((len(sources), source_length), PAD_ID, dtype="int32")
    decoder_inputs = np.full((len(sources), target_length), PAD_ID, dtype="int32")
    padded_targets = np.full((len(sources), target_length), PAD_ID, dtype="int32")
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        encoder_inputs[row, :len(source)] = source
        decoder_inputs[row, 0] = START_ID
        decoder_inputs[row, 1:len(target) + 1] = target
        padded_targets[row, :len(target)] = target
        padded_targets[row, len(target)] = END_ID
    lengths = np.array([len(s) for s in sources], dtype="int32")
    return SequencePairs(encoder_inputs, decoder_inputs, padded_targets, lengths,
                         tuple(source_vocabulary), tuple(target_vocabulary))


def reversal_task(num_examples, min_length, max_length, vocabulary_size, seed):
    """Random token sequences and their reversals: ``a c b d`` → ``d b c a``.

    Lengths are drawn uniformly from ``[min_length, max_length]`` and tokens uniformly from the
    ``vocabulary_size - 3`` symbols, independently, with ``numpy.random.default_rng(seed)``.
    Target token ``i`` is source token ``L - 1 - i``, so a perfect alignment is the
    anti-diagonal, and a decoder that must write the whole reversal from one fixed-size vector
    has to hold all ``L`` tokens in it at once (lesson 01, the bottleneck).

    Args:
        num_examples: number of pairs ``N`` (≥ 1).
        min_length, max_length: source lengths, ``1 ≤ min_length ≤ max_length``.
        vocabulary_size: size of the id space, special tokens included (≥ 4), the same for
            source and target; the vocabulary is ``symbol_vocabulary(vocabulary_size)``.
        seed: integer seed (≥ 0); the same seed gives the same pairs.

    Returns:
        :class:`SequencePairs` with ``encoder_inputs (N, max_length)``,
        ``decoder_inputs (N, max_length + 1)``, ``targets (N, max_length + 1)`` and
        ``source_lengths (N,)``. (``S`` and ``T`` come from ``max_length``, not from the
        longest sequence drawn, so sets drawn with the same ``max_length`` line up.)
    """
    num_examples = require_positive_int("num_examples", num_examples)
    min_length = require_positive_int("min_length", min_length)
    max_length = require_positive_int("max_length", max_length)
    if min_length > max_length:
        raise ValueError(f"`min_length` ({min_length}) must not exceed `max_length` "
                         f"({max_length}).")
    vocabulary = symbol_vocabulary(vocabulary_size)
    seed = require_positive_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=num_examples)
    tokens = rng.integers(FIRST_TOKEN_ID, vocabulary_size, size=(num_examples, max_length))
    sources = [row[:length] for row, length in zip(tokens, lengths, strict=True)]
    return teacher_forcing_pairs(sources, [source[::-1] for source in sources], vocabulary,
                                 vocabulary, source_length=max_length,
                                 target_length=max_length + 1)


def to_tokens(ids, vocabulary, keep_special=False):
    """Token strings of one id sequence, e.g. for the axes of a heat map.

    Stops at the first ``END_ID`` (included when ``keep_special``); padding and ``START_ID``
    are dropped unless ``keep_special``.
    """
    tokens = []
    for token_id in np.asarray(ids).tolist():
        if token_id == END_ID:
            if keep_special:
                tokens.append(vocabulary[END_ID])
            break
        if token_id in (PAD_ID, START_ID) and not keep_special:
            continue
        tokens.append(vocabulary[token_id])
    return tokens
