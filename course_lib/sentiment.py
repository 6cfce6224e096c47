"""Sentiment-labelled sentences for the sentence classifier of lesson 06.

The data are the 3,000 sentences of ``datasets/sentiment_labelled_sentences/`` (Kotzias et al.,
KDD 2015; UCI, CC BY 4.0; see its ``SOURCE.md``): 1,000 product, film and restaurant review
sentences from amazon.com, imdb.com and yelp.com, each labelled 1 (positive) or 0 (negative),
500 of each label per site.

==========================  =======================================================================
step                        function
==========================  =======================================================================
read                        :func:`load_sentences` — the three ``sentence<TAB>score`` files, their
                            header line skipped, CRLF endings removed, the stray cp1252 characters
                            of ``imdb_labelled.txt`` (U+0085, U+0096, U+0097) read as ``… – —``
split                       :func:`split_sentences` — stratified by site and label, deterministic
                            from a seed; a sentence that occurs twice falls on one side only
tokenise, vocabulary        ``course_lib.translation.tokenize(text, "en")`` and
                            ``course_lib.translation.Vocabulary`` (the translator lessons' own)
encode                      :func:`encode_sentences` → ``(N, T)`` ids, right-padded with ``PAD_ID``
all of it, with defaults    :func:`load_sentiment` → :class:`SentimentData`
==========================  =======================================================================

Ids follow ``course_lib.translation``: ``PAD_ID = 0`` (padding), ``UNK_ID = 3`` (a word outside
the vocabulary), words from ``FIRST_WORD_ID = 4``; ids 1 and 2 (``<start>``, ``<end>``) are
reserved by the shared vocabulary and never occur in a sentence. Everything is NumPy and
deterministic: the same files, arguments and seed give the same split and arrays on any machine.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from course_lib.data import PAD_ID
from course_lib.translation import Vocabulary, tokenize
from course_lib.validation import require_positive_int

DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "sentiment_labelled_sentences"
SITES = ("amazon", "imdb", "yelp")
FILES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt",
         "yelp": "yelp_labelled.txt"}
HEADER = "sentence\tscore"
LABELS = ("negative", "positive")  # index = label

# The defaults of lesson 06. Change them and the split or the vocabulary changes.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0
MIN_COUNT = 2
LENGTH = 48

# imdb_labelled.txt holds Windows-1252 punctuation decoded as Latin-1: C1 control characters.
_C1_AS_CP1252 = str.maketrans({"\x85": "\u2026", "\x96": "\u2013", "\x97": "\u2014"})


class Sentence(NamedTuple):
    """One labelled sentence: its text, its label (1 positive, 0 negative) and its site."""

    text: str
    label: int
    site: str


def _clean(text):
    """Stray cp1252 punctuation made readable, whitespace runs collapsed, ends stripped."""
    return " ".join(text.translate(_C1_AS_CP1252).split())


def load_sentences(sites=SITES, data_dir=None):
    """The labelled sentences of ``sites``, in file order (amazon, imdb, yelp by default).

    Each file is UTF-8 ``sentence<TAB>score`` with CRLF line endings and a header line
    ``sentence\\tscore`` (this copy has one, the UCI original does not: both are accepted).
    Lines are split on ``\\n`` only, never with ``str.splitlines()``, which would also split
    inside a sentence at U+0085. The sentence is :func:`_clean`-ed; nothing is dropped.

    Args:
        sites: any of ``"amazon"``, ``"imdb"``, ``"yelp"``.
        data_dir: a folder holding the three files; defaults to the course's (found relative to
            this package, not to the working folder).

    Returns:
        A list of :class:`Sentence`.

    Raises:
        ValueError: an unknown site, or a line that is not ``sentence<TAB>0|1`` (the message
            names the file and the line number); FileNotFoundError: a missing file.
    """
    data_dir = DATA_DIR if data_dir is None else Path(data_dir)
    if isinstance(sites, str):
        sites = (sites,)
    unknown = [site for site in sites if site not in FILES]
    if unknown or not sites:
        raise ValueError(f"`sites` must be a non-empty selection of {SITES}, received "
                         f"{tuple(sites)!r}.")
    sentences = []
    for site in sites:
        path = data_dir / FILES[site]
        if not path.is_file():
            raise FileNotFoundError(f"No sentiment file at {path}.")
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r")
            if not line.strip() or (number == 1 and line == HEADER):
                continue
            text, tab, score = line.rpartition("\t")
            if not tab or score.strip() not in ("0", "1") or not text.strip():
                raise ValueError(f"{path.name}, line {number}: expected "
                                 f"'sentence<TAB>0' or 'sentence<TAB>1', found {line[:60]!r}.")
            sentences.append(Sentence(_clean(text), int(score), site))
    return sentences


def sentence_key(text):
    """The identity of a sentence for the split: its tokens (``Great phone.`` and ``great
    phone .`` are one sentence)."""
    return tuple(tokenize(text, "en"))


def split_sentences(sentences, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """Split sentences into ``(train, test)``, stratified by site and label.

    Sentences with the same tokens (:func:`sentence_key`; 19 sentences of the course's files
    occur two or more times) form one group, so no test sentence is also a training sentence.
    Within each (site, label) stratum the distinct sentences are sorted, shuffled with
    ``numpy.random.default_rng(seed)``, and the first ``round(test_fraction * n)`` go to the
    test side with all their copies: each site and label keeps its share on both sides.
    Sentences keep their original order within each side.

    Args:
        sentences: :class:`Sentence` tuples (or ``(text, label, site)`` triples).
        test_fraction: share of each stratum's distinct sentences held out, in ``(0, 1)``.
        seed: integer seed (≥ 0).

    Returns:
        ``(train, test)``, two lists of the same tuples.

    Raises:
        ValueError: bad arguments, or one sentence carrying two labels.
    """
    sentences = [Sentence(*sentence) for sentence in sentences]
    if not sentences:
        raise ValueError("`sentences` is empty: nothing to split.")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or \
            not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1), received "
                         f"{test_fraction!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, received {seed!r}.")
    keys = [sentence_key(sentence.text) for sentence in sentences]
    labels = {}
    for key, sentence in zip(keys, sentences, strict=True):
        if labels.setdefault(key, sentence.label) != sentence.label:
            raise ValueError(f"The sentence {sentence.text!r} is labelled both 0 and 1.")
    strata = {}
    for key, sentence in zip(keys, sentences, strict=True):
        strata.setdefault((sentence.site, sentence.label), set()).add(key)
    rng = np.random.default_rng(int(seed))
    test_keys = set()
    for stratum in sorted(strata):
        distinct = sorted(strata[stratum])
        count = int(round(test_fraction * len(distinct)))
        test_keys.update(distinct[i] for i in rng.permutation(len(distinct))[:count])
    train = [s for s, key in zip(sentences, keys, strict=True) if key not in test_keys]
    test = [s for s, key in zip(sentences, keys, strict=True) if key in test_keys]
    if not train or not test:
        raise ValueError(f"`test_fraction` {test_fraction} leaves {len(train)} training and "
                         f"{len(test)} test sentences: need at least one on each side.")
    return train, test


def encode_sentences(token_lists, vocabulary, length=None):
    """``(N, T)`` int32 ids of tokenised sentences, right-padded with ``PAD_ID``.

    Unknown words become ``UNK_ID``. A sentence longer than ``length`` keeps its first
    ``length`` tokens (``length`` defaults to the longest sentence, so nothing is cut).
    """
    token_lists = [list(tokens) for tokens in token_lists]
    if not token_lists or min(len(tokens) for tokens in token_lists) == 0:
        raise ValueError("`token_lists` must hold at least one sentence, none of them empty.")
    longest = max(len(tokens) for tokens in token_lists)
    length = longest if length is None else length
    length = require_positive_int("length", length)
    ids = np.full((len(token_lists), length), PAD_ID, dtype="int32")
    for row, tokens in enumerate(token_lists):
        kept = vocabulary.encode(tokens[:length])
        ids[row, :len(kept)] = kept
    return ids


@dataclass(frozen=True)
class Side:
    """One side of the split: its sentences, their tokens, ids and labels, row by row.

    Attributes:
        sentences: the :class:`Sentence` tuples.
        tokens: their token lists (before any cut to the padded length).
        ids: ``(N, T)`` int32 ids, right-padded with ``PAD_ID``.
        labels: ``(N,)`` int32 labels, 1 positive, 0 negative.
    """

    sentences: list
    tokens: list
    ids: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.sentences)


@dataclass(frozen=True)
class SentimentData:
    """The split, the vocabulary and the arrays of lesson 06's classifier.

    Attributes:
        train: the :class:`Side` the models learn from.
        validation: sentences held out of the training side, to choose when to stop training.
        test: sentences held out of everything, scored once at the end.
        vocabulary: a ``course_lib.translation.Vocabulary`` built on ``train`` only.
    """

    train: Side
    validation: Side
    test: Side
    vocabulary: Vocabulary

    @property
    def length(self):
        """``T``, the padded length of every sentence."""
        return int(self.train.ids.shape[1])

    def summary(self):
        """A dict of sizes, shares and coverage (for printing)."""
        sides = {"train": self.train, "validation": self.validation, "test": self.test}
        summary = {f"{name}_sentences": len(side) for name, side in sides.items()}
        summary.update({f"{name}_positive_share": round(float(side.labels.mean()), 4)
                        for name, side in sides.items()})
        summary["vocabulary"] = len(self.vocabulary)
        summary.update({f"{name}_coverage": round(self.vocabulary.coverage(side.tokens), 4)
                        for name, side in sides.items()})
        summary["length"] = self.length
        summary["cut_sentences"] = sum(len(tokens) > self.length for side in sides.values()
                                       for tokens in side.tokens)
        return summary


def _side(sentences, vocabulary, length):
    tokens = [tokenize(s.text, "en") for s in sentences]
    return Side(sentences, tokens, encode_sentences(tokens, vocabulary, length),
                np.array([s.label for s in sentences], dtype="int32"))


def load_sentiment(test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION,
                   seed=SPLIT_SEED, min_count=MIN_COUNT, max_size=None, length=LENGTH,
                   sites=SITES, data_dir=None):
    """Read, split three ways, build the vocabulary on the training side, encode.

    The test side is :func:`split_sentences` of all sentences; the validation side is
    :func:`split_sentences` of the rest, with the same seed; the training side is what remains.
    All three are stratified by site and label.

    Args:
        test_fraction: share of all sentences held out for the test.
        validation_fraction: share of the remaining sentences held out for validation.
        seed: see :func:`split_sentences`.
        min_count, max_size: see ``Vocabulary.build``; by default a word must occur twice in the
            training sentences to get an id (the others become ``<unk>``).
        length: the padded length ``T``; longer sentences keep their first ``T`` tokens
            (``LENGTH = 48`` cuts 16 of the 3,000, the longest has 83); None: the longest
            sentence of any side, so nothing is cut.
        sites, data_dir: see :func:`load_sentences`.

    Returns:
        A :class:`SentimentData`.
    """
    rest, test = split_sentences(load_sentences(sites, data_dir), test_fraction, seed)
    train, validation = split_sentences(rest, validation_fraction, seed)
    train_tokens = [tokenize(s.text, "en") for s in train]
    vocabulary = Vocabulary.build(train_tokens, max_size, min_count)
    if length is None:
        length = max(len(sentence_key(s.text)) for s in rest + test)
    return SentimentData(_side(train, vocabulary, length), _side(validation, vocabulary, length),
                         _side(test, vocabulary, length), vocabulary)


def label_counts(sentences):
    """``{(site, label): count}`` of a list of sentences, sorted by key."""
    return dict(sorted(Counter((s.site, s.label) for s in sentences).items()))
