"""``LocalAttention`` (Luong et al. 2015, §3.2): local-m and local-p.

Properties: zero weight outside the window and on padding; local-m with ``D >= S`` is global
attention; local-p's weights are the window's softmax times a Gaussian of ``sigma = D / 2``
centred on the *unrounded* predicted position ``p_t = L sigmoid(v_p . tanh(W_p h_t))`` (each
sentence's own length ``L``); the layer agrees with the NumPy references of lesson 04's
exercise checks; save/load; bad input. Runs on every backend (``-m backends``).
"""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.checks import lesson04
from course_lib.layers import LocalAttention, LuongAttention
from course_lib.models import GRUEncoderDecoder, LocalGRUEncoderDecoder, greedy_decode
from course_lib.numpy_softmax import softmax
from tests.layer_cases import length_mask, random_tensor, randomize_weights, to_numpy

pytestmark = pytest.mark.backends

B, TQ, S, D = 3, 6, 7, 16
LENGTHS = [7, 4, 2]  # a full sentence, a padded one, a very short one


@pytest.fixture
def data():
    return {"query": random_tensor((B, TQ, D), seed=1), "values": random_tensor((B, S, D), 2),
            "mask": length_mask(LENGTHS, S)}


def built(layer, data, seed=0):
    layer(data["query"], data["values"], mask=data["mask"])
    randomize_weights(layer, seed)
    return layer


def scores_of(layer, data):
    return to_numpy(layer.score(data["query"], data["values"])).astype("float64")


def window_of(positions, half_width, mask):
    """``|s - p_t| <= D`` and a real token: ``(B, TQ, S)``."""
    offsets = np.arange(S) - np.asarray(positions, "float64")[..., None]
    return (np.abs(offsets) <= half_width) & np.asarray(mask)[:, None, :]


@pytest.mark.parametrize("half_width", [1, 2, 3])
@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_local_m_is_the_softmax_over_the_window_t_plus_minus_d(data, half_width, score):
    layer = built(LocalAttention(half_width, mode="monotonic", score=score), data)
    context, weights = layer(data["query"], data["values"], mask=data["mask"])
    weights = to_numpy(weights)
    window = lesson04.local_m_mask(TQ, S, half_width)[None] & data["mask"][:, None, :]
    assert np.all(weights[~window] == 0.0)  # exactly zero outside the window and on padding
    rows = window.any(axis=-1)
    np.testing.assert_allclose(weights.sum(axis=-1), rows.astype("float64"), atol=1e-5)
    expected = softmax(scores_of(layer, data), mask=window)
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(context), expected @ data["values"], atol=1e-4)


def test_local_m_window_past_the_end_of_the_source_is_empty(data):
    """Target step t >= L + D has no real token within D: zero weights and context, no NaN."""
    layer = LocalAttention(1, mode="monotonic", score="dot")
    context, weights = layer(data["query"], data["values"], mask=data["mask"])
    weights, context = to_numpy(weights), to_numpy(context)
    assert not np.isnan(weights).any()
    assert np.all(weights[2, 3:] == 0.0) and np.all(context[2, 3:] == 0.0)  # L = 2, D = 1
    assert np.all(weights[2, :3].sum(axis=-1) > 0.99)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_local_m_with_d_at_least_the_source_length_is_global_attention(data, score):
    local = built(LocalAttention(S, mode="monotonic", score=score), data, seed=3)
    glob = LuongAttention(score)
    glob(data["query"], data["values"], mask=data["mask"])
    glob.set_weights(local.get_weights())
    for mask in (data["mask"], None):
        local_context, local_weights = local(data["query"], data["values"], mask=mask)
        global_context, global_weights = glob(data["query"], data["values"], mask=mask)
        np.testing.assert_allclose(to_numpy(local_weights), to_numpy(global_weights), atol=1e-6)
        np.testing.assert_allclose(to_numpy(local_context), to_numpy(global_context), atol=1e-5)
    # the same support: every real token, nothing else
    assert np.array_equal(to_numpy(local_weights) > 0, to_numpy(global_weights) > 0)


@pytest.mark.parametrize("half_width", [1, 2, 4])
def test_local_p_positions_lie_in_each_sentence_and_match_eq_9(data, half_width):
    layer = built(LocalAttention(half_width, mode="predictive", score="general"), data)
    positions = to_numpy(layer.aligned_positions(data["query"], data["values"],
                                                 mask=data["mask"]))
    assert positions.shape == (B, TQ)
    lengths = np.array(LENGTHS)[:, None]
    assert np.all((positions > 0) & (positions < lengths))  # inside each sentence, unrounded
    assert not np.allclose(positions, np.round(positions))
    expected = lesson04.predicted_positions(data["query"], to_numpy(layer.position_kernel),
                                            to_numpy(layer.position_vector), data["mask"])
    np.testing.assert_allclose(positions, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("half_width", [1, 2, 3])
@pytest.mark.parametrize("score", ["dot", "general"])
def test_local_p_weights_are_the_window_softmax_times_a_gaussian(data, half_width, score):
    layer = built(LocalAttention(half_width, mode="predictive", score=score), data, seed=4)
    _, weights = layer(data["query"], data["values"], mask=data["mask"])
    weights = to_numpy(weights).astype("float64")
    positions = to_numpy(layer.aligned_positions(data["query"], data["values"],
                                                 mask=data["mask"])).astype("float64")
    window = window_of(positions, half_width, data["mask"])
    assert window.any(axis=-1).all()  # p_t in (0, L) and D >= 1: never an empty window
    assert np.all(weights[~window] == 0.0)
    # the exercise's reference: softmax over the window, times exp(-(s - p_t)^2 / (2 (D/2)^2))
    expected = lesson04.local_p_weights(scores_of(layer, data), positions, data["mask"],
                                        half_width)
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    # the Gaussian is the ratio to the window's softmax; not renormalised, so sums are < 1
    window_softmax = softmax(scores_of(layer, data), mask=window)
    gaussian = np.exp(-(np.arange(S) - positions[..., None]) ** 2 / (2 * (half_width / 2) ** 2))
    np.testing.assert_allclose(weights[window], (window_softmax * gaussian)[window], atol=1e-5)
    assert layer.sigma == half_width / 2
    assert np.all(weights.sum(axis=-1) < 1.0) and np.all(weights.sum(axis=-1) > 0.0)


def test_a_single_decoder_step_equals_its_row_of_the_full_call(data):
    for mode in ("monotonic", "predictive"):
        layer = built(LocalAttention(2, mode=mode), data, seed=5)
        context, weights = layer(data["query"], data["values"], mask=data["mask"])
        for t in (0, 3, 5):
            kwargs = {"positions": np.full((B,), t)} if mode == "monotonic" else {}
            step_context, step_weights = layer(data["query"][:, t], data["values"],
                                               mask=data["mask"], **kwargs)
            np.testing.assert_allclose(to_numpy(step_weights), to_numpy(weights)[:, t],
                                       atol=1e-6)
            np.testing.assert_allclose(to_numpy(step_context), to_numpy(context)[:, t],
                                       atol=1e-5)


def test_local_m_takes_explicit_positions_and_a_query_by_key_mask(data):
    layer = LocalAttention(1, mode="monotonic", score="dot")
    shifted = np.arange(TQ) + 2
    _, weights = layer(data["query"], data["values"], mask=data["mask"], positions=shifted)
    window = window_of(np.broadcast_to(shifted, (B, TQ)), 1, data["mask"])
    assert np.all(to_numpy(weights)[~window] == 0.0)
    full_mask = np.broadcast_to(data["mask"][:, None, :], (B, TQ, S))
    _, same = layer(data["query"], data["values"], mask=full_mask, positions=shifted)
    np.testing.assert_allclose(to_numpy(same), to_numpy(weights), atol=1e-7)


def test_local_p_learns_its_position_through_the_gaussian(data):
    """The window is a hard cut, but the Gaussian is smooth in p_t: W_p gets a gradient."""
    layer = built(LocalAttention(2, mode="predictive", score="dot"), data, seed=6)
    backend = keras.backend.backend()

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            context, _ = layer(data["query"], data["values"], mask=data["mask"])
            value = ops.sum(ops.square(context))
        gradients = tape.gradient(value, [v.value for v in layer.trainable_variables])
    elif backend == "jax":
        import jax

        def loss(trainable):
            (context, _), _ = layer.stateless_call(trainable, [], data["query"], data["values"],
                                                   mask=data["mask"])
            return ops.sum(ops.square(context))

        gradients = jax.grad(loss)([v.value for v in layer.trainable_variables])
    else:
        pytest.skip(f"no gradient helper for the {backend} backend")
    names = [v.name for v in layer.trainable_variables]
    assert names == ["position_kernel", "position_vector"]
    assert all(np.abs(to_numpy(g)).max() > 0 for g in gradients)


@pytest.mark.parametrize("mode", ["monotonic", "predictive"])
def test_survives_keras_save_and_load(data, mode, tmp_path):
    query = keras.Input((TQ, D))
    values = keras.Input((S, D))
    mask = keras.Input((S,), dtype="bool")
    layer = LocalAttention(2, mode=mode, score="concat", units=5, position_units=7,
                           name="local")
    context, weights = layer(query, values, mask=mask)
    model = keras.Model([query, values, mask], [context, weights])
    randomize_weights(model, seed=7)
    inputs = [data["query"], data["values"], data["mask"]]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    loaded_layer = loaded.get_layer("local")
    assert type(loaded_layer) is LocalAttention
    assert loaded_layer.get_config() == layer.get_config()
    assert loaded_layer.get_config()["half_width"] == 2
    for expected, actual in zip(model(inputs), loaded(inputs), strict=True):
        np.testing.assert_allclose(to_numpy(actual), to_numpy(expected), rtol=0, atol=1e-6)
    clone = LocalAttention.from_config(layer.get_config())
    clone(data["query"], data["values"], mask=data["mask"])
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(data["query"], data["values"],
                                              mask=data["mask"])[1]),
                               to_numpy(layer(data["query"], data["values"],
                                              mask=data["mask"])[1]), atol=1e-7)


@pytest.mark.parametrize("mode", ["monotonic", "predictive"])
def test_works_in_a_functional_model_with_unknown_lengths(data, mode):
    query, values = keras.Input((None, D)), keras.Input((None, D))
    mask = keras.Input((None,), dtype="bool")
    layer = LocalAttention(2, mode=mode, score="general")
    model = keras.Model([query, values, mask], layer(query, values, mask=mask))
    context, weights = model([data["query"], data["values"], data["mask"]])
    expected_context, expected_weights = layer(data["query"], data["values"], mask=data["mask"])
    np.testing.assert_allclose(to_numpy(weights), to_numpy(expected_weights), atol=1e-6)
    _, shorter = model([data["query"][:, :2], data["values"][:, :5], data["mask"][:, :5]])
    assert tuple(shorter.shape) == (B, 2, 5)
    unmasked = LocalAttention(2, mode=mode)
    unmasked(data["query"], data["values"])  # no mask: L = S
    if mode == "predictive":
        positions = to_numpy(unmasked.aligned_positions(data["query"], data["values"]))
        assert np.all((positions > 0) & (positions < S))


def test_parameter_counts():
    for mode, extra in (("monotonic", 0), ("predictive", D * 5 + 5)):
        layer = LocalAttention(2, mode=mode, score="general", position_units=5)
        layer(random_tensor((1, 2, D)), random_tensor((1, 3, D)))
        assert layer.count_params() == D * D + extra


def test_local_p_translator_decodes_and_survives_save_and_load(tmp_path):
    model = LocalGRUEncoderDecoder(11, 13, embedding_dim=4, units=8, half_width=1)
    source = np.array([[4, 5, 6, 0], [7, 8, 9, 10]], "int32")
    decoder_inputs = np.array([[1, 4, 5], [1, 6, 7]], "int32")
    logits = model((source, decoder_inputs))
    assert isinstance(model, GRUEncoderDecoder) and model.attention_name == "local-p"
    predictions, weights = greedy_decode(model, source, 5)
    assert predictions.shape == (2, 5) and weights.shape == (2, 5, 4)
    assert np.all(weights[0, :, 3] == 0.0)  # the padding of the first sentence
    model.save(tmp_path / "translator.keras")
    loaded = keras.models.load_model(tmp_path / "translator.keras")
    assert type(loaded) is LocalGRUEncoderDecoder and loaded.half_width == 1
    np.testing.assert_allclose(to_numpy(loaded((source, decoder_inputs))), to_numpy(logits),
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"half_width": 0}, "`half_width` must be a positive integer, received 0"),
    ({"half_width": 1.5}, "`half_width` must be a positive integer, received 1.5 of type float"),
    ({"half_width": 2, "mode": "local"}, "`mode` must be one of"),
    ({"half_width": 2, "score": "additive"}, "`score` must be one of"),
    ({"half_width": 2, "position_units": 0}, "`position_units` must be a positive integer"),
    ({"half_width": 2, "score": "concat", "scaled": True},
     "`scaled=True` is for the dot and general scores"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LocalAttention(**kwargs)


def test_bad_input_names_the_shapes(data):
    query, values, mask = data["query"], data["values"], data["mask"]
    with pytest.raises(ValueError, match=r"`query` must have rank 2 or 3.*\(3, 6, 16, 1\)"):
        LocalAttention(2, mode="monotonic")(query[..., None], values)
    with pytest.raises(ValueError, match=r"`values` must have rank 3.*\(3, 7\)"):
        LocalAttention(2, mode="monotonic")(query, values[..., 0])
    layer = LocalAttention(2, mode="monotonic", score="dot")
    with pytest.raises(ValueError, match=r"Batch sizes must agree.*\(2, 7, 16\)"):
        layer(query, values[:2])
    with pytest.raises(ValueError, match=r"`mask` must have shape.*received shape \(3, 6\)"):
        layer(query, values, mask=mask[:, :6])
    with pytest.raises(ValueError, match=r"`positions` must have shape \(6,\) or \(3, 6\).*"
                                         r"received shape \(5,\)"):
        layer(query, values, mask=mask, positions=np.arange(5))
    with pytest.raises(ValueError, match=r"dot score needs query and values of the same depth"):
        LocalAttention(2, mode="monotonic", score="dot")(query, values[..., :8])
    predictive = LocalAttention(2)
    with pytest.raises(ValueError, match="`positions` is for local-m"):
        predictive(query, values, mask=mask, positions=np.arange(TQ))
