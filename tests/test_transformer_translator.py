"""Tests of course_lib.transformer_translator: the model, its loss, schedule, training, decoding
and the shipped weights (lesson 08)."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import transformer_translator as tt
from course_lib import translation
from course_lib.data import END_ID, PAD_ID, START_ID

TINY = {"d_model": 16, "num_layers": 2, "num_heads": 2, "intermediate_dim": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus():
    return translation.load_corpus()


@pytest.fixture(scope="module", params=[False, True], ids=["post_ln", "pre_ln"])
def model(request, corpus):
    return tt.build_transformer(corpus, seed=0, normalize_first=request.param, **TINY)


def random_ids(rng, shape, vocabulary_size):
    return rng.integers(4, vocabulary_size, size=shape).astype("int32")


def logits_of(model, source, target):
    return ops.convert_to_numpy(model((source, target), training=False))


# ---------------------------------------------------------------------------------------------
# The model


def test_shapes_and_sizes(model, corpus):
    rng = np.random.default_rng(0)
    source = random_ids(rng, (3, 5), len(corpus.source_vocabulary))
    target = random_ids(rng, (3, 7), len(corpus.target_vocabulary))
    assert logits_of(model, source, target).shape == (3, 7, len(corpus.target_vocabulary))
    assert len(model.encoder_blocks) == len(model.decoder_blocks) == 2
    assert hasattr(model, "encoder_norm") == model.normalize_first


def test_decoder_is_causal(model, corpus):
    """Changing target token j changes no logits at positions before j."""
    rng = np.random.default_rng(1)
    source = random_ids(rng, (2, 6), len(corpus.source_vocabulary))
    target = random_ids(rng, (2, 8), len(corpus.target_vocabulary))
    changed = target.copy()
    changed[:, 5:] = random_ids(rng, (2, 3), len(corpus.target_vocabulary))
    before, after = logits_of(model, source, target), logits_of(model, source, changed)
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-5)
    assert np.abs(before[:, 5:] - after[:, 5:]).max() > 1e-3


def test_source_padding_is_ignored(model, corpus):
    """More padding after the source changes nothing; a real token there does."""
    rng = np.random.default_rng(2)
    source = random_ids(rng, (2, 4), len(corpus.source_vocabulary))
    target = random_ids(rng, (2, 5), len(corpus.target_vocabulary))
    padded = np.concatenate([source, np.full((2, 3), PAD_ID, "int32")], axis=1)
    np.testing.assert_allclose(logits_of(model, source, target),
                               logits_of(model, padded, target), atol=1e-5)
    padded[:, -1] = 7
    assert np.abs(logits_of(model, source, target) - logits_of(model, padded, target)).max() \
        > 1e-3


def test_tied_output_projection_is_the_target_embedding(corpus):
    tied = tt.build_transformer(corpus, seed=0, **TINY)
    untied = tt.build_transformer(corpus, seed=0, tie_embeddings=False, **TINY)
    assert untied.count_params() - tied.count_params() == TINY["d_model"] * len(
        corpus.target_vocabulary)
    states = np.random.default_rng(3).normal(size=(1, 2, TINY["d_model"])).astype("float32")
    embeddings = ops.convert_to_numpy(tied.target_embedding.embeddings)
    np.testing.assert_allclose(ops.convert_to_numpy(tied.project(states)),
                               states @ embeddings.T, atol=1e-5)


def test_embeddings_are_scaled_by_sqrt_d(corpus):
    model = tt.build_transformer(corpus, seed=0, **TINY)
    ids = np.array([[5, 6, 7]], "int32")
    table = ops.convert_to_numpy(model.source_embedding.embeddings)
    positions = ops.convert_to_numpy(model.position_encoding(np.zeros((1, 3, 16), "float32")))
    expected = table[ids] * 4.0 + positions
    got = ops.convert_to_numpy(model._embed(ids, model.source_embedding, model.source_dropout,
                                            False))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bad_sizes_raise(corpus):
    with pytest.raises(ValueError, match="divisible"):
        tt.build_transformer(corpus, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="Unknown sizes"):
        tt.build_transformer(corpus, width=30)
    with pytest.raises(ValueError, match="num_layers"):
        tt.TransformerTranslator(10, 10, num_layers=0)


def test_save_and_load_give_the_same_outputs(tmp_path, corpus):
    model = tt.build_transformer(corpus, seed=0, normalize_first=True, **TINY)
    rng = np.random.default_rng(4)
    source = random_ids(rng, (2, 4), len(corpus.source_vocabulary))
    target = random_ids(rng, (2, 3), len(corpus.target_vocabulary))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(logits_of(loaded, source, target),
                               logits_of(model, source, target), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Cross-attention weights


def test_cross_attention_weights_say_where_each_target_position_looked(model, corpus):
    rng = np.random.default_rng(5)
    source = random_ids(rng, (2, 5), len(corpus.source_vocabulary))
    source[0, 3:] = PAD_ID
    target = random_ids(rng, (2, 4), len(corpus.target_vocabulary))
    weights = tt.cross_attention_weights(model, source, target)
    assert weights.shape == (2, TINY["num_heads"], 4, 5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[0, :, :, 3:] == 0.0)  # padded source positions
    first_block = tt.cross_attention_weights(model, source, target, layer=0)
    assert np.abs(first_block - weights).max() > 1e-3


def test_warmup_cosine_schedule():
    schedule = tt.WarmupCosineDecay(1e-3, warmup_steps=10, total_steps=110)
    rates = np.array([float(schedule(step)) for step in range(110)])
    np.testing.assert_allclose(rates[:10], 1e-3 * np.arange(1, 11) / 10, rtol=1e-5)
    assert rates.argmax() == 9 and rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(rates[9:]) <= 1e-12)
    assert rates[59] == pytest.approx(0.5e-3, rel=1e-2)  # half-way down the cosine
    with pytest.raises(ValueError, match="warmup_steps"):
        tt.WarmupCosineDecay(1e-3, 10, 10)


def same_shape(pairs, count):
    """``count`` pairs of 4 source tokens and 5 target words (+ END): one batch shape, so
    Keras traces the training step once."""
    target_lengths = np.sum(pairs.targets != PAD_ID, axis=1)
    return pairs.select(np.flatnonzero((pairs.source_lengths == 4) & (target_lengths == 6))[:count])


def test_fit_lowers_the_loss_and_records_times(corpus):
    model = tt.build_transformer(corpus, seed=0, **TINY)
    pairs = same_shape(corpus.train, 128)
    assert len(pairs) == 128
    history, times = tt.fit_transformer(model, pairs, epochs=3, batch_size=32,
                                        learning_rate=3e-3, warmup_steps=5,
                                        validation_pairs=same_shape(corpus.test, 32), seed=0)
    assert len(history["loss"]) == len(history["val_loss"]) == 3
    assert len(history["batch_loss"]) == 12
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert times.wall > 0 and times.cpu > 0


# ---------------------------------------------------------------------------------------------
# Decoding


def test_greedy_decode_is_the_argmax_of_its_own_prefix(model, corpus):
    """Every decoded token is the argmax of the model's logits on the decoded prefix, and
    everything after the first END is padding."""
    source = corpus.test_source_ids[:6]
    predictions, weights = tt.greedy_decode(model, source, max_length=5, batch_size=4)
    assert predictions.shape == (6, 5) and weights.shape == (6, 5, source.shape[1])
    prefix = np.concatenate([np.full((6, 1), START_ID, "int32"), predictions[:, :-1]], axis=1)
    expected = logits_of(model, source, prefix).argmax(axis=-1)
    for row in range(6):
        ended = np.flatnonzero(predictions[row] == END_ID)
        stop = ended[0] + 1 if len(ended) else 5
        assert np.array_equal(predictions[row, :stop], expected[row, :stop])
        assert np.all(predictions[row, stop:] == PAD_ID)
        assert np.all(weights[row, stop:] == 0.0)
    # step t's weights: the last block's cross-attention of position t, averaged over heads
    cross = tt.cross_attention_weights(model, source, prefix).mean(axis=1)
    decoded = predictions != PAD_ID
    np.testing.assert_allclose(weights[decoded], cross[decoded], atol=1e-5)
