"""Every layer survives ``.keras`` save → ``load_model`` inside a model, and a
``get_config`` → ``from_config`` round trip (docs/conventions.md, section 3)."""

import keras
import numpy as np
import pytest

from tests.layer_cases import LAYER_CASES, assert_differ, randomize_weights, to_numpy

pytestmark = pytest.mark.backends

CASES = pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.id)


def _numpy_outputs(outputs):
    """A layer's or model's outputs (a tensor or a tuple) as a list of NumPy arrays."""
    return [to_numpy(x) for x in keras.tree.flatten(outputs)]


def _assert_same_outputs(actual, expected):
    for actual_array, expected_array in zip(_numpy_outputs(actual), _numpy_outputs(expected),
                                            strict=True):
        np.testing.assert_allclose(actual_array, expected_array, rtol=0, atol=1e-6)


@CASES
def test_model_survives_keras_save_and_load(case, tmp_path):
    layer = case.make()
    model = case.model(layer)
    randomize_weights(model, seed=1)  # nothing left at its initial value
    inputs = list(case.data().values())

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")

    loaded_layer = loaded.get_layer(layer.name)
    assert type(loaded_layer) is type(layer)
    assert loaded_layer.get_config() == layer.get_config()
    for weight, loaded_weight in zip(layer.weights, loaded_layer.weights, strict=True):
        assert loaded_weight.path == weight.path
        np.testing.assert_array_equal(to_numpy(loaded_weight), to_numpy(weight))
    _assert_same_outputs(loaded(inputs), model(inputs))


@CASES
def test_config_round_trip_gives_the_same_layer(case):
    layer = case.built_layer(seed=2)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config

    data = case.data()
    with_initial_weights = case.call(clone, data)  # builds the clone
    if layer.weights:
        assert_differ(_numpy_outputs(with_initial_weights)[0],
                      _numpy_outputs(case.call(layer, data))[0])
    clone.set_weights(layer.get_weights())
    _assert_same_outputs(case.call(clone, data), case.call(layer, data))


@CASES
def test_layer_is_registered_under_course_lib(case):
    layer = case.make()
    assert keras.saving.get_registered_name(type(layer)) == f"course_lib>{type(layer).__name__}"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
