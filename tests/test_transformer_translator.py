"""Tests of course_lib.transformer_translator: the model, its loss, schedule, training, decoding
and the shipped weights (lesson 08)."""

import json

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


def test_cross_attention_queries_reproduce_the_block(model, corpus):
    """Continuing from cross_attention_queries gives the block's own output, so the weights
    read there are the ones the block used."""
    rng = np.random.default_rng(5)
    source = random_ids(rng, (2, 5), len(corpus.source_vocabulary))
    source[0, 3:] = PAD_ID
    memory, mask = model.encode(source)
    y = rng.normal(size=(2, 4, TINY["d_model"])).astype("float32")
    block = model.decoder_blocks[0]
    queries, residual = tt.cross_attention_queries(block, y)
    cross = residual + block.cross_attention(queries, memory,
                                             attention_mask=ops.expand_dims(mask, 1))
    if not block.normalize_first:
        cross = block.cross_attention_layer_norm(cross)
    expected = ops.convert_to_numpy(block(y, memory, encoder_padding_mask=mask))
    np.testing.assert_allclose(ops.convert_to_numpy(block._feedforward(cross, False)), expected,
                               atol=1e-5)


def test_cross_attention_weights_sum_to_one_over_the_real_source(model, corpus):
    source = np.array([[5, 6, 7, PAD_ID], [8, 9, 10, 11]], "int32")
    target = np.array([[START_ID, 5, 6], [START_ID, 7, 8]], "int32")
    weights = tt.cross_attention_weights(model, source, target)
    assert weights.shape == (2, TINY["num_heads"], 3, 4)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[0, :, :, 3] == 0)


# ---------------------------------------------------------------------------------------------
# Loss, schedule, training


def test_loss_without_smoothing_is_the_masked_cross_entropy():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(3, 5, 11)).astype("float32")
    targets = rng.integers(1, 11, size=(3, 5))
    targets[0, 3:] = PAD_ID
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                            ignore_class=PAD_ID)
    np.testing.assert_allclose(float(tt.MaskedSmoothedCrossEntropy(0.0)(targets, logits)),
                               float(keras_loss(targets, logits)), rtol=1e-5)


def test_loss_with_smoothing_equals_keras_label_smoothing_on_real_tokens():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 4, 9)).astype("float32")
    targets = rng.integers(1, 9, size=(2, 4))
    targets[1, 2:] = PAD_ID
    real = targets != PAD_ID
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    expected = float(keras_loss(np.eye(9)[targets[real]], logits[real]))
    np.testing.assert_allclose(float(tt.MaskedSmoothedCrossEntropy(0.1)(targets, logits)),
                               expected, rtol=1e-5)


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


def test_validation_corpus_keeps_the_test_split_out(corpus):
    validation = tt.validation_corpus(corpus)
    train_keys = {translation.source_key(e) for e, _ in validation.train_pairs}
    held_keys = {translation.source_key(e) for e, _ in validation.test_pairs}
    test_keys = {translation.source_key(e) for e, _ in corpus.test_pairs}
    assert not train_keys & held_keys and not (train_keys | held_keys) & test_keys
    assert len(validation.train_pairs) + len(validation.test_pairs) == len(corpus.train_pairs)
    assert validation.source_vocabulary is corpus.source_vocabulary
    assert validation.train.encoder_inputs.shape[1] == corpus.train.encoder_inputs.shape[1]


# ---------------------------------------------------------------------------------------------
# Decoding


def test_greedy_decode_is_the_argmax_of_its_own_prefix(model, corpus):
    """Every decoded token is the argmax of the model's logits on the decoded prefix, and
    everything after the first END is padding."""
    source = corpus.test_source_ids[:6]
    predictions = tt.greedy_decode(model, source, max_length=5, batch_size=4)
    assert predictions.shape == (6, 5)
    prefix = np.concatenate([np.full((6, 1), START_ID, "int32"), predictions[:, :-1]], axis=1)
    expected = logits_of(model, source, prefix).argmax(axis=-1)
    for row in range(6):
        ended = np.flatnonzero(predictions[row] == END_ID)
        stop = ended[0] + 1 if len(ended) else 5
        assert np.array_equal(predictions[row, :stop], expected[row, :stop])
        assert np.all(predictions[row, stop:] == PAD_ID)


# ---------------------------------------------------------------------------------------------
# The shipped weights


@pytest.fixture(scope="module")
def results():
    if not (translation.WEIGHTS_DIR / tt.RESULTS_FILE).is_file():
        pytest.skip("no shipped Transformer weights (run scripts/train_transformer.py)")
    return tt.transformer_results()


def test_shipped_results_meet_the_target(results):
    assert results["bleu"] >= 30 and results["chrf"] >= 45
    assert results["split"]["scored_on"] == "held-out test split"
    assert "nrefs:var|case:lc|eff:no|tok:none|smooth:exp" in results["bleu_signature"]
    weights = translation.WEIGHTS_DIR / results["weights"]
    assert weights.stat().st_size == results["weights_bytes"] < 8 * 2**20
    assert json.dumps(results["model"]) == json.dumps(tt.SIZES)


def test_shipped_weights_load_and_translate(results, corpus):
    model = tt.load_transformer(corpus)
    assert model.count_params() == results["parameters"]
    scores, hypotheses = tt.evaluate(model, corpus, limit=200)
    assert scores.bleu > 25
    assert all(hypotheses)


def test_load_checks_the_vocabulary(results, corpus):
    other = translation.load_corpus(target_vocabulary_size=2400)
    with pytest.raises(ValueError, match="target vocabulary"):
        tt.load_transformer(other)
