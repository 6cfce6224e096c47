"""Lesson 13's shipped models score what their scripts recorded, and the sentiment classifier
refuses a vocabulary it was not trained with."""

import json
from pathlib import Path

import pytest

from course_lib import glimpses, sentiment
from course_lib import sentiment_classifier as sc
from course_lib.translation import Vocabulary

RESULTS = Path(__file__).resolve().parents[1] / "notebooks" / "results"


def record(name):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def test_the_shipped_glimpse_classifiers_score_as_recorded():
    shipped = record("13_glimpse_attention.json")["shipped"]
    task = glimpses.load_glimpse_task()
    assert set(shipped) == set(glimpses.SHIPPED_WEIGHTS)
    for choice, recorded in shipped.items():
        scores = glimpses.evaluate(glimpses.load_shipped_glimpse_classifier(choice), task.test)
        assert round(scores["accuracy"], 4) == recorded["test_accuracy"]
        assert round(scores["location_accuracy"], 4) == recorded["test_location_accuracy"]
    with pytest.raises(ValueError, match="`choice` must be one of"):
        glimpses.load_shipped_glimpse_classifier("reinforce_no_baseline")


def test_the_shipped_sentence_classifier_scores_as_recorded_with_its_vocabulary():
    results = record("13_attention_explanations.json")
    assert results["split"]["vocabulary_fingerprint"] == sc.SHIPPED_VOCABULARY_FINGERPRINT
    data = sentiment.load_sentiment()
    classifier = sc.load_shipped_sentence_classifier(data.vocabulary)
    assert round(sc.accuracy(classifier, data.test), 4) == results["shipped"]["test_accuracy"]
    other = Vocabulary.build([["a", "b"]])
    with pytest.raises(ValueError, match="is not the one the shipped classifier was trained"):
        sc.load_shipped_sentence_classifier(other)
