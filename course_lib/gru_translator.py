"""Lesson 03's translator: a GRU encoder–decoder with attention, English → French.

The model is ``course_lib.models.GRUEncoderDecoder`` (Bahdanau's additive score, or none for
the bottleneck baseline, or one of Luong's scores for lesson 04's ablation), sized for the
vocabularies of ``course_lib.translation.load_corpus()``:

===================  =========================================================================
step                 function
===================  =========================================================================
build                :func:`build_translator`: embedding 128, GRU 128 (:data:`SIZES`, chosen on
                     a validation split: ``docs/translator_weights.md``)
train                ``course_lib.models.fit_seq2seq_bucketed`` with :data:`TRAINING`
shipped weights      :func:`load_translator` (``weights/translator_*.weights.h5``, written by
                     ``scripts/train_translator.py``); :func:`translator_results` its record
decode and score     ``greedy_decode`` (``course_lib.models.greedy_decode``), :func:`translate`,
                     :func:`evaluate`
===================  =========================================================================

:func:`greedy_decode`, :func:`translate` and :func:`evaluate` return the same kinds of things as
their namesakes in ``course_lib.transformer_translator``: ``(ids, attention weights)``,
``(token lists, attention weights)`` and ``(Scores, hypotheses)``.
"""

from course_lib import models
from course_lib.models import greedy_decode
from course_lib.shipped_weights import (
    load_shipped_weights,
    require_training_vocabularies,
    shipped_results,
)
from course_lib.translation import corpus_scores

__all__ = ["SIZES", "TRAINING", "build_translator", "evaluate", "greedy_decode", "load_translator",
           "translate", "translator_results"]

RESULTS_FILE = "translator_results.json"
SIZES = {"embedding_dim": 128, "units": 128}
TRAINING = {"epochs": 15, "batch_size": 128, "learning_rate": 5e-3, "seed": 1}


def build_translator(corpus, attention, embedding_dim=SIZES["embedding_dim"],
                     units=SIZES["units"], seed=None):
    """A built ``course_lib.models.GRUEncoderDecoder`` sized for ``corpus``'s vocabularies.

    ``attention`` is ``"bahdanau"``, None (no attention) or one of Luong's scores (lesson 04);
    the initial weights come from ``seed`` (see ``course_lib.models.gru_encoder_decoder``).
    """
    return models.gru_encoder_decoder(len(corpus.source_vocabulary), embedding_dim, units,
                                      attention=attention,
                                      target_vocabulary_size=len(corpus.target_vocabulary),
                                      seed=seed)


def translator_results(weights_dir=None):
    """The JSON record ``scripts/train_translator.py`` wrote beside the weights (a dict)."""
    return shipped_results(RESULTS_FILE, "scripts/train_translator.py", weights_dir)


def load_translator(corpus, attention, weights_dir=None):
    """The trained translator (``"bahdanau"`` or None) with the shipped weights.

    Checks first that ``corpus`` has the vocabularies the weights were trained with (their
    fingerprints are in the results file): other vocabularies would load without error and
    translate nonsense.
    """
    results = translator_results(weights_dir)
    require_training_vocabularies(corpus, results)
    name = "no_attention" if attention is None else attention
    if name not in results["models"]:
        raise ValueError(f"No trained translator with attention {attention!r}; there are "
                         f"{sorted(results['models'])}.")
    model = build_translator(corpus, attention, **results["model"])
    return load_shipped_weights(model, results["models"][name]["weights"], weights_dir)


def translate(model, source_ids, target_vocabulary, max_length, batch_size=1024):
    """Greedy translations of ``source_ids (N, S)``: ``(token lists, attention weights (N, T,
    S) or None)``. ``max_length`` is the number of decoding steps
    (``Corpus.max_target_length``)."""
    predictions, weights = greedy_decode(model, source_ids, max_length, batch_size=batch_size)
    return [target_vocabulary.decode(row) for row in predictions], weights


def evaluate(model, corpus, limit=None, batch_size=1024):
    """Translate the distinct test sentences of ``corpus`` (the first ``limit`` of them, or
    all) and score them against all their references: ``(Scores, hypotheses)``."""
    count = len(corpus.test_sources) if limit is None else int(limit)
    hypotheses, _ = translate(model, corpus.test_source_ids[:count], corpus.target_vocabulary,
                              corpus.max_target_length, batch_size=batch_size)
    return corpus_scores(hypotheses, corpus.test_references[:count]), hypotheses
