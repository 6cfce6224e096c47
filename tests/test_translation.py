"""Tests of course_lib.translation: the Tatoeba corpus, its split and vocabulary, and the scores."""


import numpy as np
import pytest

from course_lib import data, translation
from course_lib.translation import Vocabulary, corpus_scores, tokenize


@pytest.fixture(scope="module")
def pairs():
    return translation.load_pairs()


@pytest.fixture(scope="module")
def corpus():
    return translation.load_corpus()


def write(tmp_path, text, name="pairs.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Reading and normalising


def test_normalize_replaces_the_special_spaces_and_apostrophes():
    assert translation.normalize("Va\u202f!") == "Va !"
    assert translation.normalize("Quoi\u00a0?") == "Quoi ?"
    assert translation.normalize("Hein\u2009?") == "Hein ?"
    assert translation.normalize("  J\u2019ai   faim. ") == "J'ai faim."


def test_load_pairs_normalises_and_drops_duplicates(tmp_path):
    path = write(tmp_path, "Go.\tVa !\nRun!\tCours\u202f!\nRun!\tCours !\nGo.\tVa !\n\n"
                           "Run!\tCourez\u00a0!")
    assert translation.load_pairs(path) == [("Go.", "Va !"), ("Run!", "Cours !"),
                                            ("Run!", "Courez !")]


def test_the_course_file(pairs):
    assert len(pairs) == 22302  # 22,392 lines; equal after normalising the spaces: 90 fewer
    assert len(set(pairs)) == len(pairs)
    assert pairs[0] == ("Go.", "Va !")
    assert all("\u202f" not in f and "\u00a0" not in f and "\u2009" not in f for _, f in pairs)


@pytest.mark.parametrize("text, line, what", [
    ("Go.\tVa !\nRun! Cours !\n", 2, "no tab"),
    ("Go.\tVa !\tAllez !\n", 1, "2 tabs"),
    ("Go.\tVa !\n\nHi.\t \n", 3, "French side is empty"),
])
def test_load_pairs_names_the_file_and_line_of_a_bad_line(tmp_path, text, line, what):
    path = write(tmp_path, text, "bad.txt")
    with pytest.raises(ValueError, match=f"bad.txt, line {line}: .*{what}"):
        translation.load_pairs(path)


def test_load_pairs_rejects_a_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        translation.load_pairs(tmp_path / "nothing.txt")
    with pytest.raises(ValueError, match="holds no pairs"):
        translation.load_pairs(write(tmp_path, "\n\n"))


# ---------------------------------------------------------------------------------------------
# Tokens


@pytest.mark.parametrize("text, tokens", [
    ("Va !", ["va", "!"]),
    ("Je l'ai vu aujourd'hui.", ["je", "l'", "ai", "vu", "aujourd'hui", "."]),
    ("Qu'est-ce que c'est ?", ["qu'", "est", "-ce", "que", "c'", "est", "?"]),
    ("J\u2019ai faim\u202f!", ["j'", "ai", "faim", "!"]),
    ("Quelqu'un m'a appelé, jusqu'à midi.",
     ["quelqu'un", "m'", "a", "appelé", ",", "jusqu'", "à", "midi", "."]),
    ("Va-t'en !", ["va", "-t'", "en", "!"]),
    ("A-t-il dit « oui » ?", ["a", "-t", "-il", "dit", "«", "oui", "»", "?"]),
])
def test_tokenize_french(text, tokens):
    assert tokenize(text, "fr") == tokens


@pytest.mark.parametrize("text, tokens", [
    ("Run!", ["run", "!"]),
    ("I don't know Tom's dog.", ["i", "do", "n't", "know", "tom", "'s", "dog", "."]),
    ("I can't, we're late.", ["i", "ca", "n't", ",", "we", "'re", "late", "."]),
    ("'Hello,' he said.", ["'", "hello", ",", "'", "he", "said", "."]),
])
def test_tokenize_english(text, tokens):
    assert tokenize(text, "en") == tokens


def test_detokenize_inverts_tokenize_on_the_whole_corpus(pairs):
    for english, french in pairs[::7]:
        for text, language in ((english, "en"), (french, "fr")):
            tokens = tokenize(text, language)
            assert tokenize(translation.detokenize(tokens, language), language) == tokens
    assert translation.detokenize(tokenize("Qu'est-ce que c'est ?")) == "qu'est-ce que c'est ?"
    assert translation.detokenize(tokenize("I don't know.", "en"), "en") == "i don't know."


def test_tokenize_rejects_bad_input():
    with pytest.raises(ValueError, match="language"):
        tokenize("Hello.", "de")
    with pytest.raises(ValueError, match="string"):
        tokenize(["hello"], "en")


# ---------------------------------------------------------------------------------------------
# Split


def test_split_keeps_every_english_sentence_on_one_side(pairs):
    train, test = translation.split_by_source(pairs, test_fraction=0.1, seed=0)
    assert len(train) + len(test) == len(pairs)
    train_keys = {translation.source_key(e) for e, _ in train}
    test_keys = {translation.source_key(e) for e, _ in test}
    assert not train_keys & test_keys
    assert len(test_keys) == round(0.1 * len(train_keys | test_keys))
    # every French reference of a test sentence is on the test side
    all_references, test_references = {}, {}
    for english, french in pairs:
        all_references.setdefault(translation.source_key(english), []).append(french)
    for english, french in test:
        test_references.setdefault(translation.source_key(english), []).append(french)
    assert all(test_references[key] == all_references[key] for key in test_keys)


def test_split_is_deterministic_with_a_seed(pairs):
    first = translation.split_by_source(pairs[:3000], 0.2, seed=3)
    assert first == translation.split_by_source(pairs[:3000], 0.2, seed=3)
    assert first != translation.split_by_source(pairs[:3000], 0.2, seed=4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(test_fraction=0.0), "test_fraction"),
    (dict(test_fraction=1.5), "test_fraction"),
    (dict(test_fraction=0.01), "at least one"),
    (dict(seed=-1), "seed"),
])
def test_split_rejects_bad_arguments(kwargs, message):
    few = [("Go.", "Va !"), ("Run!", "Cours !"), ("Hi.", "Salut !")]
    with pytest.raises(ValueError, match=message):
        translation.split_by_source(few, **{"test_fraction": 0.5, "seed": 0, **kwargs})
    with pytest.raises(ValueError, match="empty"):
        translation.split_by_source([], 0.5, 0)


# ---------------------------------------------------------------------------------------------
# Vocabulary and encoding


def test_vocabulary_ids_follow_course_lib_data():
    assert translation.VOCABULARY_SPECIALS[:3] == data.SPECIAL_TOKENS
    assert (data.PAD_ID, data.START_ID, data.END_ID, translation.UNK_ID) == (0, 1, 2, 3)
    vocabulary = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"], ["d"]])
    assert vocabulary.tokens == ("<pad>", "<start>", "<end>", "<unk>", "b", "a", "c", "d")
    assert vocabulary.encode(["a", "zebra"]) == [5, translation.UNK_ID]
    assert vocabulary.decode([1, 5, 3, 2, 4, 0]) == ["a", "<unk>"]


def test_vocabulary_caps_and_min_count():
    sentences = [["x"] * 5 + ["y"] * 3 + ["z"] * 2 + ["w"]]
    assert Vocabulary.build(sentences, max_size=6).tokens[4:] == ("x", "y")
    assert Vocabulary.build(sentences, min_count=2).tokens[4:] == ("x", "y", "z")
    assert Vocabulary.build(sentences, max_size=6).coverage([["x", "w", "z", "y"]]) == 0.5
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(sentences, max_size=4)
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(sentences, min_count=0)
    with pytest.raises(ValueError, match="string"):
        Vocabulary.build(["not tokenised"])
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(("a", "b"))


def test_encode_pairs_shapes_and_padding():
    pairs = [("Go.", "Va !"), ("I see Tom.", "Je vois Tom.")]
    source = Vocabulary.build([tokenize(e, "en") for e, _ in pairs])
    target = Vocabulary.build([["va", "!", "je", "vois"]])  # "tom" and "." unknown
    encoded = translation.encode_pairs(pairs, source, target)
    assert encoded.encoder_inputs.shape == (2, 4) and encoded.targets.shape == (2, 5)
    assert encoded.encoder_inputs.dtype == np.int32
    np.testing.assert_array_equal(encoded.encoder_inputs[0, 2:], [data.PAD_ID] * 2)
    np.testing.assert_array_equal(encoded.source_lengths, [2, 4])
    unk = translation.UNK_ID
    va, bang, je, vois = target.encode(["va", "!", "je", "vois"])
    np.testing.assert_array_equal(encoded.targets, [[va, bang, data.END_ID, 0, 0],
                                                    [je, vois, unk, unk, data.END_ID]])
    np.testing.assert_array_equal(encoded.decoder_inputs, [[data.START_ID, va, bang, 0, 0],
                                                           [data.START_ID, je, vois, unk, unk]])
    assert data.to_tokens(encoded.targets[1], encoded.target_vocabulary) == [
        "je", "vois", "<unk>", "<unk>"]


def test_load_corpus_is_the_shared_split_and_vocabulary(corpus):
    summary = corpus.summary()
    assert summary["source_vocabulary"] == translation.SOURCE_VOCABULARY_SIZE
    assert summary["target_vocabulary"] == translation.TARGET_VOCABULARY_SIZE
    assert summary["train_pairs"] + summary["test_pairs"] == 22302
    assert len(corpus.test_sources) == len(corpus.test_references) == len(corpus.test_source_ids)
    assert corpus.test.encoder_inputs.shape[1] == corpus.train.encoder_inputs.shape[1]
    assert corpus.test.targets.shape[1] == corpus.train.targets.shape[1] == \
        corpus.max_target_length
    train_sources = {translation.source_key(e) for e, _ in corpus.train_pairs}
    assert not train_sources & {tuple(s) for s in corpus.test_sources}
    again = translation.load_corpus()
    assert again.target_vocabulary.fingerprint() == corpus.target_vocabulary.fingerprint()
    np.testing.assert_array_equal(again.train.targets, corpus.train.targets)


# ---------------------------------------------------------------------------------------------
# Scores


def test_perfect_translations_score_100_and_garbage_about_0(corpus):
    references = corpus.test_references[:300]
    perfect = corpus_scores([refs[-1] for refs in references], references)
    assert perfect.bleu == pytest.approx(100.0) and perfect.chrf == pytest.approx(100.0)
    garbage = corpus_scores([["xq", "zzv", "wk"]] * len(references), references)
    assert garbage.bleu < 1.0 and garbage.chrf < 5.0
    assert "nrefs:var" in perfect.bleu_signature and "tok:none" in perfect.bleu_signature
    assert "case:lc" in perfect.bleu_signature and "version:2.6.0" in perfect.bleu_signature


def test_scores_use_every_reference():
    references = [["je suis là , tom .", "me voici enfin , tom ."], ["merci beaucoup !"]]
    first = corpus_scores(["je suis là , tom .", "merci beaucoup !"], references)
    second = corpus_scores(["me voici enfin , tom .", "merci beaucoup !"], references)
    assert first.bleu == pytest.approx(100.0) and second.bleu == pytest.approx(100.0)
    only_first = corpus_scores(["me voici enfin , tom .", "merci beaucoup !"],
                               [refs[:1] for refs in references])
    assert 0 < only_first.bleu < 50
    # strings are tokenised like the references: "Merci beaucoup !" is "merci beaucoup !"
    assert corpus_scores(["Je suis là, Tom.", "Merci beaucoup\u202f!"],
                         references).bleu == pytest.approx(100.0)


@pytest.mark.parametrize("hypotheses, references, message", [
    (["a"], [["a"], ["b"]], "1 hypotheses for 2"),
    ([], [], "empty"),
    (["a"], [[]], "non-empty list"),
    (["a"], ["a"], "non-empty list"),
    ([3], [["a"]], "hypotheses\\[0\\]"),
])
def test_scores_reject_bad_input(hypotheses, references, message):
    with pytest.raises(ValueError, match=message):
        corpus_scores(hypotheses, references)
