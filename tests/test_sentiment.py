"""The sentiment sentences of lesson 06: read as the files are (header, CRLF, U+0085), split
stratified and deterministic, encoded with the translator lessons' tokenizer and vocabulary; and
the plot of the classifier's word weights."""

from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import viz  # noqa: E402
from course_lib.data import PAD_ID  # noqa: E402
from course_lib.sentiment import (  # noqa: E402
    FILES,
    SITES,
    Sentence,
    encode_sentences,
    label_counts,
    load_sentences,
    load_sentiment,
    sentence_key,
    split_sentences,
)
from course_lib.translation import UNK_ID, Vocabulary, tokenize  # noqa: E402


@pytest.fixture(scope="module")
def sentences():
    return load_sentences()


@pytest.fixture(scope="module")
def data():
    return load_sentiment()


# --- Reading ----------------------------------------------------------------------------------


def test_three_thousand_sentences_balanced_by_site_and_label(sentences):
    assert len(sentences) == 3000
    assert label_counts(sentences) == {(site, label): 500 for site in SITES for label in (0, 1)}
    assert [s.site for s in sentences[:1]] == ["amazon"] and sentences[-1].site == "yelp"


def test_header_line_crlf_and_trailing_spaces_are_gone(sentences):
    assert all(s.text != "sentence" for s in sentences)
    assert not any("\r" in s.text or "\t" in s.text or s.text != s.text.strip()
                   for s in sentences)
    assert sentences[0] == Sentence(
        "So there is no way for me to plug it in here in the US unless I go by a converter.",
        0, "amazon")


def test_nel_inside_a_sentence_does_not_split_it(sentences):
    """U+0085 is a line break for str.splitlines(): read naively, imdb has 1,002 sentences."""
    texts = [s.text for s in sentences]
    assert "The script is\u2026was there a script?" in texts
    assert not any(0x80 <= ord(character) <= 0x9F for text in texts for character in text)
    assert sum(s.site == "imdb" for s in sentences) == 1000


def test_files_without_header_and_bad_lines(tmp_path):
    for name in FILES.values():
        (tmp_path / name).write_text("Good.\t1\r\nBad.\t0\r\n", encoding="utf-8")
    assert load_sentences(data_dir=tmp_path, sites="yelp") == [
        Sentence("Good.", 1, "yelp"), Sentence("Bad.", 0, "yelp")]
    (tmp_path / FILES["imdb"]).write_text("sentence\tscore\r\nFine.\t1\r\nOdd line\r\n",
                                          encoding="utf-8")
    with pytest.raises(ValueError, match=r"imdb_labelled.txt, line 3: expected"):
        load_sentences(data_dir=tmp_path)
    with pytest.raises(ValueError, match="`sites` must be"):
        load_sentences(sites=("twitter",))
    with pytest.raises(FileNotFoundError):
        load_sentences(data_dir=tmp_path / "nowhere")


# --- Split ------------------------------------------------------------------------------------


def test_split_is_deterministic_stratified_and_disjoint(sentences):
    train, test = split_sentences(sentences, 0.2, seed=0)
    assert (train, test) == split_sentences(sentences, 0.2, seed=0)
    assert test != split_sentences(sentences, 0.2, seed=1)[1]
    assert len(train) + len(test) == 3000
    for (site, label), count in label_counts(test).items():
        assert abs(count - 0.2 * 500) <= 4, (site, label, count)  # duplicates go as groups
    train_keys = {sentence_key(s.text) for s in train}
    assert not train_keys & {sentence_key(s.text) for s in test}
    # the sentences repeated in the files fall on one side with all their copies
    counts = Counter(sentence_key(s.text) for s in sentences)
    repeated = {key for key, count in counts.items() if count > 1}
    assert len(repeated) == 19
    test_counts = Counter(sentence_key(s.text) for s in test)
    assert all(test_counts[key] in (0, counts[key]) for key in repeated)


def test_split_keeps_file_order_within_each_side(sentences):
    train, test = split_sentences(sentences)
    test_keys = {sentence_key(s.text) for s in test}
    assert train == [s for s in sentences if sentence_key(s.text) not in test_keys]
    assert test == [s for s in sentences if sentence_key(s.text) in test_keys]


@pytest.mark.parametrize("arguments, message", [
    (([], 0.2, 0), "empty"),
    (([("a", 1, "yelp")] * 3, 1.5, 0), "test_fraction"),
    (([("a", 1, "yelp")] * 3, 0.2, -1), "seed"),
    (([("Great.", 1, "yelp"), ("great .", 0, "yelp")], 0.5, 0), "labelled both"),
    (([("a", 1, "yelp"), ("b", 1, "yelp")], 0.1, 0), "at least one on each side"),
])
def test_split_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        split_sentences(*arguments)


# --- Vocabulary and arrays ---------------------------------------------------------------------


def test_load_sentiment_sizes(data):
    summary = data.summary()
    assert (summary["train_sentences"], summary["validation_sentences"],
            summary["test_sentences"]) == (2158, 239, 603)
    for side in ("train", "validation", "test"):
        assert abs(summary[f"{side}_positive_share"] - 0.5) < 0.01
    assert summary["length"] == 48 and summary["cut_sentences"] == 16
    assert summary["vocabulary"] == len(data.vocabulary) == 1784
    keys = [{sentence_key(s.text) for s in side.sentences}
            for side in (data.train, data.validation, data.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


def test_vocabulary_is_the_translators_built_on_training_words_seen_twice(data):
    assert isinstance(data.vocabulary, Vocabulary)
    counts = Counter(token for tokens in data.train.tokens for token in tokens)
    words = data.vocabulary.tokens[4:]
    assert all(counts[word] >= 2 for word in words)
    assert {word for word, count in counts.items() if count >= 2} == set(words)
    assert data.train.tokens[0] == tokenize(data.train.sentences[0].text, "en")


def test_ids_are_padded_right_and_unknown_words_are_unk(data):
    for side in (data.train, data.validation, data.test):
        assert side.ids.dtype == np.int32 and side.ids.shape == (len(side), 48)
        assert side.labels.dtype == np.int32 and set(side.labels) == {0, 1}
        lengths = np.minimum([len(tokens) for tokens in side.tokens], 48)
        real = side.ids != PAD_ID
        assert np.array_equal(real.sum(axis=1), lengths)
        assert np.array_equal(real, np.arange(48)[None, :] < lengths[:, None])  # no holes
        assert not np.isin(side.ids, (1, 2)).any()   # <start> and <end> never occur
    row = data.test.tokens.index(next(t for t in data.test.tokens if "disapoinment" in t))
    assert data.test.ids[row, data.test.tokens[row].index("disapoinment")] == UNK_ID


def test_encode_sentences_cuts_and_rejects(data):
    ids = encode_sentences([["great", "phone"], ["great"]], data.vocabulary, length=1)
    assert ids.shape == (2, 1) and ids[0, 0] == ids[1, 0] == data.vocabulary.encode(["great"])[0]
    assert encode_sentences([["a", "b", "c"]], data.vocabulary).shape == (1, 3)
    with pytest.raises(ValueError, match="none of them empty"):
        encode_sentences([["a"], []], data.vocabulary)
    with pytest.raises(ValueError, match="`length`"):
        encode_sentences([["a"]], data.vocabulary, length=0)


def test_no_sentence_cut_without_a_length():
    data = load_sentiment(length=None)
    assert data.length == 83 and data.summary()["cut_sentences"] == 0


# --- The plot of one weight per word ------------------------------------------------------------


def test_token_weights_draws_each_word_in_its_cell():
    tokens = [["great", "phone", "."], ["not", "good"]]
    weights = np.array([[0.7, 0.2, 0.1, 0.0], [0.6, 0.4, 0.0, 0.0]])  # padded to 4
    ax = viz.token_weights(tokens, weights, row_labels=["positive", "negative"], title="T")
    assert ax.get_title() == "T" and ax.get_xlabel() == "word position"
    assert [label.get_text() for label in ax.get_yticklabels()] == ["positive", "negative"]
    assert [text.get_text() for text in ax.texts] == ["great", "phone", ".", "not", "good"]
    grid = ax.images[0].get_array()
    assert grid.mask[1, 2] and not grid.mask[0, 2]      # blank past the end of a sentence
    plt.close(ax.figure)


@pytest.mark.parametrize("tokens, weights, labels, message", [
    ([["a", "b"]], np.ones((2, 2)), None, "rows of weights"),
    ([["a", "b", "c"]], np.ones((1, 2)), None, "only 2 weights"),
    ([["a"]], np.ones((1, 1)), ["x", "y"], "row labels"),
    ([[]], np.ones((1, 1)), None, "none of them empty"),
])
def test_token_weights_rejects_mismatched_input(tokens, weights, labels, message):
    with pytest.raises(ValueError, match=message):
        viz.token_weights(tokens, weights, row_labels=labels)
