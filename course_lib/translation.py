"""English → French translation data and its evaluation (lessons 03, 04 and 08).

The corpus is ``datasets/tatoeba_fra_eng/fra.txt`` (Tatoeba, CC BY 2.0 FR; see its
``SOURCE.md``): 22,392 ``English<TAB>French`` lines, short sentences, several French
translations for many English ones. Everything the translators share lives here, so that
lesson 04's ablation and lesson 08's Transformer use *the same split and vocabulary* as
lesson 03:

========================  =========================================================================
step                      function
========================  =========================================================================
read, normalise, dedupe   :func:`load_pairs`: the special spaces French puts before ``! ? : ;``
                          (U+202F, U+00A0, U+2009) and curly apostrophes become plain ones;
                          pairs equal after that are dropped
tokenise                  :func:`tokenize`: lower-case, punctuation split off, French elisions
                          kept on the article (``l'homme`` → ``l'`` ``homme``), hyphenated
                          inversions split (``est-ce`` → ``est`` ``-ce``), English clitics split
                          (``don't`` → ``do`` ``n't``); :func:`detokenize` joins them back
split                     :func:`split_by_source`: by *distinct English sentence*, all French
                          references of an English sentence on the same side, so no test
                          sentence was seen in training
vocabulary                :class:`Vocabulary`: capped size or minimum count, ``<unk>`` for the rest
encode                    :func:`encode_pairs` → ``course_lib.data.SequencePairs``
all of it, with defaults  :func:`load_corpus` → :class:`Corpus`
a held-out training part   :func:`validation_corpus`: the training side split again, for choosing
                          a recipe without looking at the test split
score                     :func:`corpus_scores`: BLEU and chrF (sacrebleu), all references of each
                          English sentence
========================  =========================================================================

The models that translate it are elsewhere: ``course_lib.gru_translator`` (lessons 03 and 04)
and ``course_lib.transformer_translator`` (lesson 08); they train with ``course_lib.training``.

Ids follow ``course_lib.data``: ``PAD_ID = 0``, ``START_ID = 1``, ``END_ID = 2``, and here
``UNK_ID = 3`` (a word outside the vocabulary); real tokens start at ``FIRST_WORD_ID = 4``.

Scores are computed on our tokens: hypotheses and references are tokenised by :func:`tokenize`
(lower-cased, punctuation split), joined with spaces, and scored by sacrebleu with
``tokenize="none"`` and ``lowercase=True`` (a no-op on lower-cased text, but it puts ``case:lc``
in the signature), so the signature says exactly what was measured. Every step is deterministic:
the same file, arguments and seed give the same split, vocabulary and arrays on any machine.
"""

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from course_lib.data import END_ID, PAD_ID, SPECIAL_TOKENS, START_ID, teacher_forcing_pairs
from course_lib.validation import require_positive_int

DATA_PATH = Path(__file__).resolve().parent.parent / "datasets" / "tatoeba_fra_eng" / "fra.txt"

UNK_ID = 3
FIRST_WORD_ID = 4
UNK_TOKEN = "<unk>"
VOCABULARY_SPECIALS = SPECIAL_TOKENS + (UNK_TOKEN,)  # ids 0, 1, 2, 3
LANGUAGES = ("en", "fr")

# The defaults every translator lesson shares (lesson 03 chose them by measurement; see
# docs/translator_weights.md). Change them and the split or the vocabulary changes.
TEST_FRACTION = 0.1
SPLIT_SEED = 0
SOURCE_VOCABULARY_SIZE = 2000
TARGET_VOCABULARY_SIZE = 2500

_SPACES = {"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\t": " "}
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'"}
_TRANSLATE = str.maketrans({**_SPACES, **_APOSTROPHES})

# A word is letters, digits, apostrophes and hyphens; anything else is one punctuation token.
_PIECES = re.compile(r"[\w'-]+|[^\w\s]")
_WORD = re.compile(r"[\w'-]")
# French elided articles and pronouns: l'homme, j'ai, qu'il, jusqu'à, s'il, ç'a ...
# (not aujourd'hui or quelqu'un, whose apostrophe is inside a word).
_FRENCH_ELISION = re.compile(r"^(jusqu|lorsqu|puisqu|quoiqu|qu|[cçdjlmnst])'(?=\w)")
# English clitics, split as in the Penn Treebank: do n't, i 'm, you 're, tom 's, we 'll ...
_ENGLISH_CLITICS = ("n't", "'s", "'m", "'re", "'ll", "'ve", "'d")
_ENGLISH_CLITIC = re.compile(r"^(\w+?)(n't|'s|'m|'re|'ll|'ve|'d)$")
# French punctuation that takes a space before it (typography), for detokenize.
_SPACED_PUNCTUATION = ("!", "?", ":", ";", "»")


# ---------------------------------------------------------------------------------------------
# Reading the file


def normalize(text):
    """One sentence with plain spaces and apostrophes: U+202F, U+00A0, U+2009 → space,
    ’ ‘ → ``'``, Unicode NFC, runs of spaces collapsed, ends stripped. Case is kept."""
    text = unicodedata.normalize("NFC", str(text)).translate(_TRANSLATE)
    return " ".join(text.split())


def load_pairs(path=None):
    """The ``(english, french)`` pairs of a Tatoeba file, normalised, exact duplicates dropped.

    Args:
        path: a file of ``English<TAB>French`` lines (UTF-8); defaults to the course's
            ``datasets/tatoeba_fra_eng/fra.txt`` (found relative to this package, not to the
            working folder). Empty lines are skipped.

    Returns:
        A list of ``(english, french)`` string tuples in file order (the course's file is
        sorted by English length), each pair once: a pair equal to an earlier one after
        :func:`normalize` is dropped. The course's file has 6 exact duplicates, and 84 more
        pairs that differ only in the space before ``!`` or ``?`` (``Entrez\u202f!`` and
        ``Entrez !``): 22,392 lines give 22,302 pairs.

    Raises:
        ValueError: a line without exactly one tab, or with an empty side (the message names
            the file and the line number); FileNotFoundError: no such file.
    """
    path = DATA_PATH if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Tatoeba pairs file at {path}.")
    text = path.read_text(encoding="utf-8")
    pairs, seen = [], set()
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            found = "no tab" if len(columns) == 1 else f"{len(columns) - 1} tabs"
            raise ValueError(f"{path.name}, line {number}: expected 'English<TAB>French', "
                             f"found {found}: {line[:60]!r}.")
        english, french = normalize(columns[0]), normalize(columns[1])
        if not english or not french:
            side = "English" if not english else "French"
            raise ValueError(f"{path.name}, line {number}: the {side} side is empty: "
                             f"{line[:60]!r}.")
        if (english, french) not in seen:
            seen.add((english, french))
            pairs.append((english, french))
    if not pairs:
        raise ValueError(f"{path.name} holds no pairs.")
    return pairs


# ---------------------------------------------------------------------------------------------
# Tokens


def _require_language(language):
    if language not in LANGUAGES:
        raise ValueError(f"`language` must be one of {LANGUAGES}, received {language!r}.")


def _split_word(word, language):
    """Split one word of letters, digits, apostrophes and hyphens (see :func:`tokenize`)."""
    if "'" not in word and "-" not in word:
        return [word]
    # quotes and dashes at the ends of a word are punctuation: 'hello' -> ' hello '
    leading = re.match(r"^['-]*", word).group()
    trailing = re.search(r"['-]*$", word[len(leading):]).group()
    if language == "en" and leading == "'" and word[1:] in ("s", "m", "re", "ll", "ve", "d"):
        leading = ""  # a lone clitic, as in "Tom 's"
    if language == "fr" and trailing == "'" and _FRENCH_ELISION.match(word[len(leading):]
                                                                      + "x"):
        trailing = ""  # a lone elided article, as in "l' "
    core = word[len(leading):len(word) - len(trailing)]
    tokens = list(leading)
    clitic = None
    if language == "en" and (match := _ENGLISH_CLITIC.match(core)) is not None:
        core, clitic = match.group(1), match.group(2)
    # hyphenated inversions and compounds: est-ce -> est -ce, a-t-il -> a -t -il
    for piece in re.split(r"(?=-)", core):
        if language == "fr":
            hyphen = "-" if piece.startswith("-") else ""
            rest = piece[len(hyphen):]
            while (match := _FRENCH_ELISION.match(rest)) is not None:
                tokens.append(hyphen + rest[:match.end()])  # the article with its apostrophe
                rest, hyphen = rest[match.end():], ""
            piece = hyphen + rest
        if piece:
            tokens.append(piece)
    if clitic is not None:
        tokens.append(clitic)
    return tokens + list(trailing)


def tokenize(text, language="fr"):
    """Lower-cased tokens of one sentence, punctuation split off.

    >>> tokenize("Je l'ai vu aujourd'hui !")
    ['je', "l'", 'ai', 'vu', "aujourd'hui", '!']
    >>> tokenize("Est-ce qu'il vient ?")
    ['est', '-ce', "qu'", 'il', 'vient', '?']
    >>> tokenize("I don't know Tom's dog.", "en")
    ['i', 'do', "n't", 'know', 'tom', "'s", 'dog', '.']

    Rules: :func:`normalize`, lower-case, then every character that is not a letter, a digit,
    an apostrophe or a hyphen is a token of its own (``. , ! ? « »`` …). In French an elided
    article or pronoun keeps its apostrophe and becomes a token (``l' j' c' n' d' m' t' s'
    qu' jusqu'`` …), while an apostrophe inside a word stays (``aujourd'hui``, ``quelqu'un``);
    a hyphen starts a new token (``vas-y`` → ``vas -y``, ``peut-être`` → ``peut -être``), which
    keeps the vocabulary small. In English the clitics ``n't 's 'm 're 'll 've 'd`` are split
    as in the Penn Treebank (``can't`` → ``ca n't``). :func:`detokenize` joins them back.

    Args:
        text: one sentence.
        language: ``"fr"`` or ``"en"``.
    """
    _require_language(language)
    if not isinstance(text, str):
        raise ValueError(f"`text` must be a string, received {type(text).__name__}.")
    return list(_tokenize(text, language))


@functools.lru_cache(maxsize=1 << 17)
def _tokenize(text, language):
    tokens = []
    for piece in _PIECES.findall(normalize(text).lower()):
        tokens.extend(_split_word(piece, language) if _WORD.match(piece) else [piece])
    return tuple(tokens)


def detokenize(tokens, language="fr"):
    """A readable sentence from tokens (lower-case stays): the inverse of :func:`tokenize` up
    to case and spacing. French keeps a space before ``! ? : ; »`` as its typography wants.

    >>> detokenize(['est', '-ce', "qu'", 'il', 'vient', '?'])
    "est-ce qu'il vient ?"
    >>> detokenize(['i', 'do', "n't", 'know', '.'], "en")
    "i don't know."
    """
    _require_language(language)
    text, previous = "", None
    for token in tokens:
        glue = (previous is None
                or len(previous) > 1 and previous.endswith("'")      # l'homme, qu'il
                or len(token) > 1 and token.startswith("-")          # est-ce, vas-y
                or language == "en" and token in _ENGLISH_CLITICS    # don't, tom's
                or re.fullmatch(r"[.,!?:;)»%]", token) is not None   # closing punctuation
                and not (language == "fr" and token in _SPACED_PUNCTUATION))
        text += token if glue else " " + token
        previous = token
    return text


# ---------------------------------------------------------------------------------------------
# Split


def source_key(english):
    """The identity of an English sentence for the split: its tokens (so ``Go.`` and ``go.``
    are one sentence, ``Go!`` another)."""
    return tuple(tokenize(english, "en"))


def split_by_source(pairs, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """Split pairs into ``(train, test)`` by distinct English sentence.

    The distinct English sentences (:func:`source_key`) are sorted, shuffled with
    ``numpy.random.default_rng(seed)``, and the first ``round(test_fraction * n)`` go to the
    test side *with every French translation they have*: no English sentence is on both
    sides, so the test measures translation of sentences never seen, not recall of their
    other references. Pairs keep their original order within each side.

    Args:
        pairs: ``(english, french)`` tuples, e.g. from :func:`load_pairs`.
        test_fraction: share of distinct English sentences held out, in ``(0, 1)``.
        seed: integer seed (≥ 0).

    Returns:
        ``(train_pairs, test_pairs)``, two lists of the same tuples.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("`pairs` is empty: nothing to split.")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or \
            not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1), received "
                         f"{test_fraction!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, received {seed!r}.")
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"`pairs[{index}]` must be an (english, french) pair, received "
                             f"{pair!r}.")
    keys = [source_key(english) for english, _ in pairs]
    distinct = sorted(set(keys))
    test_count = int(round(test_fraction * len(distinct)))
    if not 0 < test_count < len(distinct):
        raise ValueError(f"`test_fraction` {test_fraction} of {len(distinct)} distinct English "
                         f"sentences leaves {test_count} for the test side: need at least one "
                         f"on each side.")
    order = np.random.default_rng(int(seed)).permutation(len(distinct))
    test_keys = {distinct[i] for i in order[:test_count]}
    train = [pair for pair, key in zip(pairs, keys, strict=True) if key not in test_keys]
    test = [pair for pair, key in zip(pairs, keys, strict=True) if key in test_keys]
    return train, test


def group_references(pairs):
    """``(sources, references)``: the distinct English sentences of ``pairs`` as token lists,
    in order of first appearance, and for each the list of all its French references (token
    lists), in file order: the input of :func:`corpus_scores`."""
    groups = {}
    for english, french in pairs:
        groups.setdefault(source_key(english), []).append(tokenize(french, "fr"))
    return [list(key) for key in groups], list(groups.values())


# ---------------------------------------------------------------------------------------------
# Vocabulary


class Vocabulary:
    """Token strings ↔ ids: ``<pad> <start> <end> <unk>`` (ids 0–3), then the words.

    Build one from training sentences with :meth:`build`; a token it does not hold encodes to
    ``UNK_ID``. ``tokens`` is the tuple of token strings indexed by id, the form
    ``course_lib.data.SequencePairs`` and ``course_lib.data.to_tokens`` take.
    """

    def __init__(self, tokens):
        tokens = tuple(tokens)
        if tokens[:len(VOCABULARY_SPECIALS)] != VOCABULARY_SPECIALS:
            raise ValueError(f"A vocabulary must start with {VOCABULARY_SPECIALS}, received "
                             f"{tokens[:len(VOCABULARY_SPECIALS)]}.")
        if len(set(tokens)) != len(tokens):
            repeated = sorted(t for t, n in Counter(tokens).items() if n > 1)[:5]
            raise ValueError(f"A vocabulary must not repeat tokens; repeated: {repeated}.")
        self.tokens = tokens
        self._ids = {token: index for index, token in enumerate(tokens)}

    @classmethod
    def build(cls, sentences, max_size=None, min_count=1):
        """The most frequent tokens of ``sentences`` (lists of tokens), most frequent first
        (ties in alphabetical order, so the result is deterministic).

        Args:
            max_size: the size of the id space, the four special tokens included; None for no
                cap.
            min_count: keep only tokens seen at least this many times.
        """
        if max_size is not None:  # room for at least one word beside the special tokens
            max_size = require_positive_int("max_size", max_size,
                                            minimum=len(VOCABULARY_SPECIALS) + 1)
        min_count = require_positive_int("min_count", min_count)
        counts = Counter()
        for index, sentence in enumerate(sentences):
            if isinstance(sentence, str):
                raise ValueError(f"`sentences[{index}]` is a string; pass lists of tokens "
                                 f"(see tokenize()).")
            counts.update(sentence)
        for special in VOCABULARY_SPECIALS:
            counts.pop(special, None)
        words = sorted((t for t, n in counts.items() if n >= min_count),
                       key=lambda t: (-counts[t], t))
        if max_size is not None:
            words = words[:max_size - len(VOCABULARY_SPECIALS)]
        return cls(VOCABULARY_SPECIALS + tuple(words))

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, token):
        return token in self._ids

    def __repr__(self):
        return f"Vocabulary({len(self)} tokens: {', '.join(self.tokens[4:9])}, …)"

    def encode(self, tokens):
        """Ids of ``tokens`` (a list of strings), ``UNK_ID`` for unknown ones."""
        if isinstance(tokens, str):
            raise ValueError("`tokens` is a string; pass a list of tokens (see tokenize()).")
        return [self._ids.get(token, UNK_ID) for token in tokens]

    def decode(self, ids):
        """Tokens of one id sequence: stops at ``END_ID``, drops padding and ``START_ID``;
        ``UNK_ID`` gives ``"<unk>"``."""
        tokens = []
        for token_id in np.asarray(ids).reshape(-1).tolist():
            if token_id == END_ID:
                break
            if token_id in (PAD_ID, START_ID):
                continue
            if not 0 <= token_id < len(self.tokens):
                raise ValueError(f"Id {token_id} is outside this vocabulary of "
                                 f"{len(self.tokens)} tokens.")
            tokens.append(self.tokens[token_id])
        return tokens

    def coverage(self, sentences):
        """Share of the tokens of ``sentences`` (lists of tokens) that are in the vocabulary."""
        total = known = 0
        for sentence in sentences:
            total += len(sentence)
            known += sum(token in self._ids for token in sentence)
        return known / max(total, 1)

    def fingerprint(self):
        """A short hash of the tokens in order: equal fingerprints, equal vocabularies."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()[:16]


def encode_pairs(pairs, source_vocabulary, target_vocabulary, source_length=None,
                 target_length=None):
    """``course_lib.data.SequencePairs`` of text pairs, ready for teacher forcing.

    Each English sentence is tokenised and encoded with ``source_vocabulary``, each French one
    with ``target_vocabulary`` (unknown words → ``UNK_ID``); arrays are right-padded with
    ``PAD_ID`` to ``source_length`` / ``target_length`` (default: the longest in ``pairs``,
    + 1 for the target's ``END_ID``). ``decoder_inputs`` is ``START_ID`` + target, ``targets``
    the target + ``END_ID`` (see ``course_lib.data``).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("`pairs` is empty: nothing to encode.")
    sources = [source_vocabulary.encode(tokenize(english, "en")) for english, _ in pairs]
    targets = [target_vocabulary.encode(tokenize(french, "fr")) for _, french in pairs]
    return teacher_forcing_pairs(sources, targets, source_vocabulary.tokens,
                                 target_vocabulary.tokens, source_length=source_length,
                                 target_length=target_length)


def encode_sources(sources, source_vocabulary, source_length=None):
    """``(N, S)`` int32 ids of English sentences (strings or token lists), padded."""
    sources = [tokenize(s, "en") if isinstance(s, str) else list(s) for s in sources]
    if not sources or min(len(s) for s in sources) == 0:
        raise ValueError("`sources` must hold at least one sentence, none of them empty.")
    longest = max(len(s) for s in sources)
    source_length = longest if source_length is None else source_length
    if source_length < longest:
        raise ValueError(f"`source_length` ({source_length}) is shorter than the longest "
                         f"source ({longest}).")
    ids = np.full((len(sources), source_length), PAD_ID, dtype="int32")
    for row, source in enumerate(sources):
        ids[row, :len(source)] = source_vocabulary.encode(source)
    return ids


# ---------------------------------------------------------------------------------------------
# The corpus of the lessons


@dataclass(frozen=True)
class Corpus:
    """The split, the vocabularies and the encoded arrays the translator lessons share.

    Attributes:
        train_pairs, test_pairs: the ``(english, french)`` text pairs of each side.
        source_vocabulary, target_vocabulary: :class:`Vocabulary`, built on the training
            side only.
        train: ``SequencePairs`` of every training pair (one row per French reference).
        test: ``SequencePairs`` of every test pair, padded like ``train`` (teacher-forced loss
            and accuracy on held-out data).
        test_sources: the distinct English test sentences, as token lists.
        test_source_ids: ``(N, S)`` their ids, padded like ``train``: what the model translates.
        test_references: for each test sentence, all its French references (token lists).
        max_target_length: ``T`` of ``train``: the number of greedy decoding steps.
    """

    train_pairs: list
    test_pairs: list
    source_vocabulary: Vocabulary
    target_vocabulary: Vocabulary
    train: object
    test: object
    test_sources: list
    test_source_ids: np.ndarray
    test_references: list
    max_target_length: int

    def summary(self):
        """A dict of sizes and coverage (for printing and for results files)."""
        train_en = [tokenize(e, "en") for e, _ in self.train_pairs]
        train_fr = [tokenize(f, "fr") for _, f in self.train_pairs]
        test_fr = [ref for refs in self.test_references for ref in refs]
        return {
            "train_pairs": len(self.train_pairs),
            "test_pairs": len(self.test_pairs),
            "train_english_sentences": len({tuple(s) for s in train_en}),
            "test_english_sentences": len(self.test_sources),
            "source_vocabulary": len(self.source_vocabulary),
            "target_vocabulary": len(self.target_vocabulary),
            "source_coverage_train": round(self.source_vocabulary.coverage(train_en), 4),
            "target_coverage_train": round(self.target_vocabulary.coverage(train_fr), 4),
            "source_coverage_test": round(self.source_vocabulary.coverage(self.test_sources), 4),
            "target_coverage_test": round(self.target_vocabulary.coverage(test_fr), 4),
            "source_length": int(self.train.encoder_inputs.shape[1]),
            "target_length": int(self.max_target_length),
        }


def load_corpus(test_fraction=TEST_FRACTION, seed=SPLIT_SEED,
                source_vocabulary_size=SOURCE_VOCABULARY_SIZE,
                target_vocabulary_size=TARGET_VOCABULARY_SIZE, min_count=1, path=None):
    """Read, split, build the vocabularies on the training side, encode: a :class:`Corpus`.

    The defaults are the course's (lessons 03, 04 and 08 call it without arguments and get the
    same split and vocabulary). Test sentences longer than the longest training sentence (none
    with the defaults) are rejected rather than silently cut.
    """
    train_pairs, test_pairs = split_by_source(load_pairs(path), test_fraction, seed)
    source_vocabulary = Vocabulary.build((tokenize(e, "en") for e, _ in train_pairs),
                                         source_vocabulary_size, min_count)
    target_vocabulary = Vocabulary.build((tokenize(f, "fr") for _, f in train_pairs),
                                         target_vocabulary_size, min_count)
    train = encode_pairs(train_pairs, source_vocabulary, target_vocabulary)
    source_length, target_length = train.encoder_inputs.shape[1], train.targets.shape[1]
    test = encode_pairs(test_pairs, source_vocabulary, target_vocabulary, source_length,
                        target_length)
    test_sources, test_references = group_references(test_pairs)
    test_source_ids = encode_sources(test_sources, source_vocabulary, source_length)
    return Corpus(train_pairs, test_pairs, source_vocabulary, target_vocabulary, train, test,
                  test_sources, test_source_ids, test_references, int(target_length))


def validation_corpus(corpus, fraction=0.1, seed=1):
    """A :class:`Corpus` for choosing a recipe without the test split.

    The training side of ``corpus`` is split again by distinct English sentence
    (:func:`split_by_source`): the larger part is the new training side, the rest takes the place
    of the test side. The vocabularies and padded lengths stay ``corpus``'s, so a model chosen
    here has exactly the shape of the final one. The test split is never touched.
    """
    train_pairs, held_out = split_by_source(corpus.train_pairs, fraction, seed)
    source_length = corpus.train.encoder_inputs.shape[1]
    target_length = corpus.max_target_length
    sv, tv = corpus.source_vocabulary, corpus.target_vocabulary
    sources, references = group_references(held_out)
    return Corpus(train_pairs, held_out, sv, tv,
                  encode_pairs(train_pairs, sv, tv, source_length, target_length),
                  encode_pairs(held_out, sv, tv, source_length, target_length),
                  sources, encode_sources(sources, sv, source_length), references,
                  target_length)


# ---------------------------------------------------------------------------------------------
# Scores


class Scores(NamedTuple):
    """Corpus BLEU and chrF (0–100) and sacrebleu's signatures of how they were computed."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str

    def __str__(self):
        return f"BLEU {self.bleu:.1f}, chrF {self.chrf:.1f}"


def _as_text(sentence, where):
    if isinstance(sentence, str):
        return " ".join(tokenize(sentence, "fr"))
    if isinstance(sentence, (list, tuple)) and all(isinstance(t, str) for t in sentence):
        return " ".join(sentence)
    raise ValueError(f"{where} must be a string or a list of token strings, received "
                     f"{sentence!r}.")


def corpus_scores(hypotheses, references_by_source):
    """Corpus BLEU and chrF of translations, every reference of each sentence used.

    Args:
        hypotheses: one translation per source sentence: a token list, or a string (then
            tokenised with :func:`tokenize`).
        references_by_source: for each source sentence, the list of *all* its references
            (token lists or strings), e.g. ``Corpus.test_references``. Sentences may have
            different numbers of references.

    Returns:
        :class:`Scores`. sacrebleu scores the space-joined tokens with ``tokenize="none"``
        and ``lowercase=True``; BLEU is ``sacrebleu.metrics.BLEU`` (4-grams, exponential
        smoothing, brevity penalty against the closest reference length), chrF is
        ``sacrebleu.metrics.CHRF`` (character 6-grams, β = 2).
    """
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError as error:  # pragma: no cover - sacrebleu is a dev dependency
        raise ImportError("corpus_scores needs sacrebleu: pip install -e '.[dev]'.") from error
    hypotheses, references_by_source = list(hypotheses), list(references_by_source)
    if len(hypotheses) != len(references_by_source):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references_by_source)} "
                         f"source sentences: need one hypothesis per sentence.")
    if not hypotheses:
        raise ValueError("`hypotheses` is empty: nothing to score.")
    texts = [_as_text(h, f"`hypotheses[{i}]`") for i, h in enumerate(hypotheses)]
    references = []
    for i, refs in enumerate(references_by_source):
        if isinstance(refs, str) or not isinstance(refs, (list, tuple)) or not refs:
            raise ValueError(f"`references_by_source[{i}]` must be a non-empty list of "
                             f"references, received {refs!r}.")
        references.append([_as_text(r, f"`references_by_source[{i}]` item") for r in refs])
    width = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    bleu = BLEU(tokenize="none", lowercase=True, force=True)  # tokenised on purpose
    chrf = CHRF(lowercase=True)
    bleu_score = bleu.corpus_score(texts, streams)
    chrf_score = chrf.corpus_score(texts, streams)
    return Scores(float(bleu_score.score), float(chrf_score.score),
                  str(bleu.get_signature()), str(chrf.get_signature()))
