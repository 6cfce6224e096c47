"""Tests of course_lib.data (synthetic tasks) and course_lib.models (the seq2seq models)."""

import keras
import numpy as np
import pytest

from course_lib import data, models

# The attention layers do not declare mask support, so Keras warns when they get a mask: noise.
pytestmark = pytest.mark.filterwarnings("ignore:Layer 'attention'.*mask:UserWarning")

# ---------------------------------------------------------------------------------------------
# course_lib.data


def test_reversal_task_shapes_and_padding_convention():
    pairs = data.reversal_task(64, min_length=2, max_length=7, vocabulary_size=9, seed=0)
    assert len(pairs) == 64
    assert pairs.encoder_inputs.shape == (64, 7)
    assert pairs.decoder_inputs.shape == (64, 8)
    assert pairs.targets.shape == (64, 8)
    assert pairs.source_lengths.shape == (64,)
    for array in (pairs.encoder_inputs, pairs.decoder_inputs, pairs.targets):
        assert array.dtype == np.int32
    assert pairs.source_lengths.min() >= 2 and pairs.source_lengths.max() <= 7
    assert pairs.source_vocabulary == pairs.target_vocabulary == data.symbol_vocabulary(9)
    for source, decoder_input, target, length in zip(
            pairs.encoder_inputs, pairs.decoder_inputs, pairs.targets, pairs.source_lengths,
            strict=True):
        real = source[:length]
        assert np.all((real >= data.FIRST_TOKEN_ID) & (real < 9))
        assert np.all(source[length:] == data.PAD_ID)
        np.testing.assert_array_equal(target[:length], real[::-1])
        assert target[length] == data.END_ID
        assert np.all(target[length + 1:] == data.PAD_ID)
        # Teacher forcing: the decoder input is the target shifted right behind START.
        assert decoder_input[0] == data.START_ID
        np.testing.assert_array_equal(decoder_input[1:length + 1], target[:length])
        assert np.all(decoder_input[length + 1:] == data.PAD_ID)


def test_reversal_task_is_deterministic_with_a_seed():
    first = data.reversal_task(32, 3, 10, 12, seed=5)
    again = data.reversal_task(32, 3, 10, 12, seed=5)
    other = data.reversal_task(32, 3, 10, 12, seed=6)
    for name in ("encoder_inputs", "decoder_inputs", "targets", "source_lengths"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.encoder_inputs, other.encoder_inputs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_examples=0), "num_examples"),
    (dict(num_examples=2.5), "num_examples"),
    (dict(num_examples=True), "num_examples"),
    (dict(min_length=0), "min_length"),
    (dict(min_length=9, max_length=4), "min_length"),
    (dict(max_length="8"), "max_length"),
    (dict(vocabulary_size=3), "vocabulary_size"),
    (dict(seed=-1), "seed"),
    (dict(seed=None), "seed"),
])
def test_reversal_task_rejects_bad_arguments(kwargs, name):
    arguments = dict(num_examples=4, min_length=2, max_length=8, vocabulary_size=10, seed=0)
    with pytest.raises(ValueError, match=f"`{name}`"):
        data.reversal_task(**{**arguments, **kwargs})


def test_teacher_forcing_pairs_and_tokens():
    source_vocabulary = data.SPECIAL_TOKENS + ("x", "y", "z")
    target_vocabulary = data.SPECIAL_TOKENS + ("un", "deux")
    pairs = data.teacher_forcing_pairs([[3, 4, 5], [5]], [[4], [3, 4, 3]], source_vocabulary,
                                       target_vocabulary)
    np.testing.assert_array_equal(pairs.encoder_inputs, [[3, 4, 5], [5, 0, 0]])
    np.testing.assert_array_equal(pairs.decoder_inputs, [[1, 4, 0, 0], [1, 3, 4, 3]])
    np.testing.assert_array_equal(pairs.targets, [[4, 2, 0, 0], [3, 4, 3, 2]])
    assert data.to_tokens(pairs.encoder_inputs[1], source_vocabulary) == ["z"]
    assert data.to_tokens(pairs.targets[1], target_vocabulary) == ["un", "deux", "un"]
    assert data.to_tokens(pairs.targets[0], target_vocabulary, keep_special=True) == [
        "deux", "<end>"]
    assert len(pairs.select(pairs.source_lengths == 3)) == 1
    with pytest.raises(ValueError, match="same length"):
        data.teacher_forcing_pairs([[3]], [[3], [4]], source_vocabulary, target_vocabulary)
    with pytest.raises(ValueError, match="`source_length`"):
        data.teacher_forcing_pairs([[3, 4]], [[3]], source_vocabulary, target_vocabulary,
                                   source_length=1)


def test_symbol_vocabulary():
    vocabulary = data.symbol_vocabulary(31)
    assert vocabulary[:3] == data.SPECIAL_TOKENS
    assert vocabulary[3:6] == ("a", "b", "c") and vocabulary[-1] == "s27"
    assert len(set(vocabulary)) == 31


# ---------------------------------------------------------------------------------------------
# course_lib.models


@pytest.fixture(scope="module")
def pairs():
    return data.reversal_task(16, 2, 6, 10, seed=0)


@pytest.mark.parametrize("attention", models.ATTENTIONS)
def test_model_shapes_with_different_vocabularies(attention):
    keras.utils.set_random_seed(0)
    model = models.gru_encoder_decoder(11, embedding_dim=8, units=12, attention=attention,
                                       target_vocabulary_size=7)
    logits = model((np.full((3, 5), 4, "int32"), np.full((3, 6), 1, "int32")))
    assert tuple(logits.shape) == (3, 6, 7)
    encoder_outputs, state, mask = model.encode(np.array([[4, 5, 0, 0]], "int32"))
    assert tuple(encoder_outputs.shape) == (1, 4, 12) and tuple(state.shape) == (1, 12)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mask), [[True, True, False, False]])
    _, _, weights = model.decode(np.ones((1, 3), "int32"), state, encoder_outputs, mask)
    if attention is None:
        assert weights is None
    else:
        weights = keras.ops.convert_to_numpy(weights)
        assert weights.shape == (1, 3, 4)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert np.all(weights[..., 2:] == 0.0)  # padding gets no attention


def test_bottleneck_decoder_sees_only_the_final_state(pairs, monkeypatch):
    """Replace everything the encoder returns except its final state by noise: the model
    without attention must not change its output; the one with attention must."""
    inputs = (pairs.encoder_inputs, pairs.decoder_inputs)
    for attention, should_change in ((None, False), ("bahdanau", True)):
        keras.utils.set_random_seed(0)
        model = models.gru_encoder_decoder(10, 8, 12, attention=attention)
        before = keras.ops.convert_to_numpy(model(inputs))
        encode = model.encode

        def noisy_encode(source_ids, training=None, encode=encode):
            outputs, state, mask = encode(source_ids, training=training)
            noise = np.random.default_rng(1).normal(size=tuple(outputs.shape))
            return keras.ops.convert_to_tensor(noise, "float32"), state, mask

        monkeypatch.setattr(model, "encode", noisy_encode)
        after = keras.ops.convert_to_numpy(model(inputs))
        monkeypatch.undo()
        assert (not np.allclose(before, after, atol=1e-6)) == should_change, attention


def test_bottleneck_model_has_no_attention_weights():
    keras.utils.set_random_seed(0)
    plain = models.gru_encoder_decoder(10, 8, 12)
    attentive = models.gru_encoder_decoder(10, 8, 12, attention="bahdanau")
    assert plain.attention is None
    assert not any("attention" in w.path for w in plain.weights)
    # Otherwise the same layers: the attention adds W1, W2, v, and the combine layer
    # reads [s; c] (24 inputs) instead of s (12).
    extra = sum(int(np.prod(w.shape)) for w in attentive.attention.weights) + 12 * 12
    assert attentive.count_params() == plain.count_params() + extra


def test_greedy_decode_and_accuracy(pairs):
    keras.utils.set_random_seed(0)
    model = models.gru_encoder_decoder(10, 8, 12, attention="dot")
    predictions, weights = models.greedy_decode(model, pairs.encoder_inputs, 7, batch_size=5)
    assert predictions.shape == (16, 7) and predictions.dtype == np.int32
    assert weights.shape == (16, 7, 6)
    for row in predictions:  # nothing but padding after the first END
        ends = np.flatnonzero(row == data.END_ID)
        if len(ends):
            assert np.all(row[ends[0] + 1:] == data.PAD_ID)
    # Greedy decoding step by step equals teacher forcing on its own outputs.
    decoder_inputs = np.concatenate([np.full((16, 1), data.START_ID), predictions[:, :-1]], 1)
    logits = keras.ops.convert_to_numpy(model((pairs.encoder_inputs, decoder_inputs)))
    first_end = np.where((predictions == data.END_ID).any(1),
                         (predictions == data.END_ID).argmax(1), 7)
    for row, end in enumerate(first_end):
        np.testing.assert_array_equal(logits[row, :end + 1].argmax(-1),
                                      predictions[row, :end + 1])
    by_length = models.accuracy_by_length(model, pairs)
    assert sorted(by_length) == sorted(set(pairs.source_lengths.tolist()))
    plain = models.gru_encoder_decoder(10, 8, 12)
    assert models.greedy_decode(plain, pairs.encoder_inputs, 3)[1] is None


def test_decoding_accuracy():
    targets = np.array([[5, 4, 2, 0], [3, 2, 0, 0]])
    assert models.decoding_accuracy(targets, targets) == (1.0, 1.0)
    predictions = np.array([[5, 4, 3, 3], [3, 2, 9, 9]])  # row 0 misses END; after END ignored
    assert models.decoding_accuracy(predictions, targets) == pytest.approx((4 / 5, 1 / 2))
    assert models.decoding_accuracy(predictions[:, :1], targets) == pytest.approx((2 / 5, 0.0))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        models.decoding_accuracy(targets[0], targets)


@pytest.mark.parametrize("kwargs, name", [
    (dict(attention="luong"), "attention"),
    (dict(units=0), "units"),
    (dict(embedding_dim=2.0), "embedding_dim"),
])
def test_model_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        models.GRUEncoderDecoder(**{"source_vocabulary_size": 10,
                                    "target_vocabulary_size": 10, **kwargs})


def test_fit_seq2seq_trains_and_times(pairs):
    keras.utils.set_random_seed(0)
    model = models.gru_encoder_decoder(10, 8, 12, attention="dot")
    history, timing = models.fit_seq2seq(model, pairs, epochs=2, batch_size=16, seed=0)
    assert len(history.history["loss"]) == 2 and timing.wall > 0 and timing.cpu > 0


def test_save_and_load_round_trip(pairs, tmp_path):
    model = models.gru_encoder_decoder(10, 8, 12, attention="bahdanau", bidirectional=True,
                                       target_vocabulary_size=11, seed=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    inputs = (pairs.encoder_inputs, pairs.decoder_inputs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)),
                               keras.ops.convert_to_numpy(model(inputs)), atol=1e-6)
    assert loaded.get_config()["bidirectional"] is True
    assert loaded.get_config()["target_vocabulary_size"] == 11
