"""The shipped translators, measured: each loads, translates, and scores on the held-out test
split exactly what its record says (the record is what the lessons and the README quote), and
refuses a corpus whose vocabularies differ from the ones it was trained on."""

import dataclasses

import pytest

from course_lib import gru_translator, translation
from course_lib import transformer_translator as tt
from course_lib.shipped_weights import WEIGHTS_DIR
from course_lib.translation import Vocabulary

SIGNATURE = "nrefs:var|case:lc|eff:no|tok:none|smooth:exp"


@pytest.fixture(scope="module")
def corpus():
    return translation.load_corpus()


@pytest.mark.parametrize("attention, target", [("bahdanau", 30.0), (None, 15.0)],
                         ids=["bahdanau", "no_attention"])
def test_gru_translator_scores_what_its_record_says(corpus, attention, target):
    results = gru_translator.translator_results()
    record = results["models"]["no_attention" if attention is None else attention]
    model = gru_translator.load_translator(corpus, attention)
    scores, hypotheses = gru_translator.evaluate(model, corpus)
    assert len(hypotheses) == results["corpus"]["test_english_sentences"]
    assert scores.bleu == pytest.approx(record["bleu"], abs=0.05)
    assert scores.chrf == pytest.approx(record["chrf"], abs=0.05)
    assert SIGNATURE in scores.bleu_signature
    assert scores.bleu > target


def test_transformer_translator_scores_what_its_record_says(corpus):
    results = tt.transformer_results()
    model = tt.load_transformer(corpus)
    assert model.count_params() == results["parameters"]
    assert (WEIGHTS_DIR / results["weights"]).stat().st_size == results["weights_bytes"]
    scores, hypotheses = tt.evaluate(model, corpus)
    assert len(hypotheses) == results["corpus"]["test_english_sentences"]
    assert scores.bleu == pytest.approx(results["bleu"], abs=0.05)
    assert scores.chrf == pytest.approx(results["chrf"], abs=0.05)
    assert scores.bleu >= 30 and scores.chrf >= 45  # lesson 08's targets


def test_translators_translate_a_sentence(corpus):
    ids = translation.encode_sources(["I'm hungry.", "Tom is here."], corpus.source_vocabulary)
    for translator, model in ((gru_translator, gru_translator.load_translator(corpus, "bahdanau")),
                              (tt, tt.load_transformer(corpus))):
        outputs, weights = translator.translate(model, ids, corpus.target_vocabulary, 12)
        assert outputs[0][-1] == "." and "tom" in outputs[1]
        assert weights.shape == (2, 12, ids.shape[1])


@pytest.mark.parametrize("load", [lambda c: gru_translator.load_translator(c, "bahdanau"),
                                  tt.load_transformer], ids=["gru", "transformer"])
def test_loading_checks_the_vocabularies(corpus, load):
    other = dataclasses.replace(corpus, target_vocabulary=Vocabulary.build([["autre"]]))
    with pytest.raises(ValueError, match="target vocabulary"):
        load(other)
