"""Tests of course_lib.training: length buckets, the masked loss, and the training loop that the
GRU and Transformer translators share."""

import keras
import numpy as np
import pytest

from course_lib import data, gru_translator, models, training, translation
from course_lib import transformer_translator as tt


@pytest.fixture(scope="module")
def corpus():
    return translation.load_corpus()


def test_length_buckets_cover_every_pair_once_in_batches_of_similar_length(corpus):
    pairs = corpus.test
    batches = training.length_bucketed_batches(pairs, 64, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(pairs)))
    lengths = np.sum(pairs.targets != data.PAD_ID, axis=1)
    # contiguous runs of the pairs sorted by target length: the batches' ranges do not overlap
    ranges = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    assert all(high <= next_low for (_, high), (next_low, _) in zip(ranges, ranges[1:],
                                                                    strict=False))
    again = training.length_bucketed_batches(pairs, 64, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    with pytest.raises(ValueError, match="batch_size"):
        training.length_bucketed_batches(pairs, 0, seed=0)


def test_trimmed_batch_cuts_the_padding_only(corpus):
    pairs = corpus.test
    index = np.arange(10)
    (sources, decoder_inputs), targets = training.trimmed_batch(pairs, index)
    assert sources.shape[1] == pairs.source_lengths[index].max()
    assert np.any(targets[:, -1] != data.PAD_ID) and np.any(sources[:, -1] != data.PAD_ID)
    np.testing.assert_array_equal(sources, pairs.encoder_inputs[index, :sources.shape[1]])
    assert np.all(pairs.encoder_inputs[index, sources.shape[1]:] == data.PAD_ID)
    assert np.all(pairs.targets[index, targets.shape[1]:] == data.PAD_ID)
    assert decoder_inputs.shape == targets.shape


def test_loss_without_smoothing_is_the_masked_cross_entropy():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(3, 5, 11)).astype("float32")
    targets = rng.integers(1, 11, size=(3, 5))
    targets[0, 3:] = data.PAD_ID
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                            ignore_class=data.PAD_ID)
    np.testing.assert_allclose(float(training.MaskedCrossEntropy()(targets, logits)),
                               float(keras_loss(targets, logits)), rtol=1e-5)


def test_loss_with_smoothing_equals_keras_label_smoothing_on_real_tokens():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 4, 9)).astype("float32")
    targets = rng.integers(1, 9, size=(2, 4))
    targets[1, 2:] = data.PAD_ID
    real = targets != data.PAD_ID
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    expected = float(keras_loss(np.eye(9)[targets[real]], logits[real]))
    np.testing.assert_allclose(float(training.MaskedCrossEntropy(0.1)(targets, logits)),
                               expected, rtol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        training.MaskedCrossEntropy(1.0)


def test_bucketed_training_lowers_the_masked_loss(corpus):
    pairs = corpus.test.select(np.arange(0, len(corpus.test), 18))  # 128 pairs, all lengths
    model = gru_translator.build_translator(corpus, "bahdanau", embedding_dim=8, units=8, seed=0)
    before = training.masked_loss(model, pairs)
    # one batch, so one traced training step (each new batch shape costs a trace)
    history, timing = models.fit_seq2seq_bucketed(model, pairs, epochs=2, batch_size=len(pairs),
                                                  validation_pairs=pairs, seed=0)
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    assert timing.wall > 0 and timing.cpu > 0
    assert history["val_loss"][-1] == pytest.approx(training.masked_loss(model, pairs))
    assert history["val_loss"][-1] < before
    # the trimmed, bucketed loss is the padded loss: padding is ignored either way
    padded = model.evaluate((pairs.encoder_inputs, pairs.decoder_inputs), pairs.targets,
                            batch_size=len(pairs), verbose=0)
    assert padded == pytest.approx(history["val_loss"][-1], rel=1e-4)


def test_the_transformer_trains_with_the_same_loop(corpus):
    model = tt.build_transformer(corpus, seed=0, d_model=16, num_layers=1, num_heads=2,
                                 intermediate_dim=32, dropout=0.0)
    pairs = corpus.test.select(np.arange(0, len(corpus.test), 18))
    before = training.masked_loss(model, pairs)
    history, _ = tt.fit_transformer(model, pairs, epochs=2, batch_size=len(pairs),
                                    learning_rate=3e-3, warmup_steps=1, validation_pairs=pairs,
                                    seed=0)
    assert history["val_loss"][-1] == pytest.approx(training.masked_loss(model, pairs))
    assert history["val_loss"][-1] < before


def test_validation_corpus_keeps_the_test_split_out(corpus):
    validation = translation.validation_corpus(corpus)
    train_keys = {translation.source_key(e) for e, _ in validation.train_pairs}
    held_keys = {translation.source_key(e) for e, _ in validation.test_pairs}
    test_keys = {translation.source_key(e) for e, _ in corpus.test_pairs}
    assert not train_keys & held_keys and not (train_keys | held_keys) & test_keys
    assert len(validation.train_pairs) + len(validation.test_pairs) == len(corpus.train_pairs)
    assert validation.source_vocabulary is corpus.source_vocabulary
    assert validation.train.encoder_inputs.shape[1] == corpus.train.encoder_inputs.shape[1]
