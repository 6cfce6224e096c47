"""``store_float16``: a weights file shrinks, loses the optimizer's state, and loads back into
the same model as its float32 weights rounded to float16."""

import h5py
import keras
import numpy as np

from course_lib.shipped_weights import store_float16


def _model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(256, activation="tanh"),
                             keras.layers.Dense(256, activation="tanh"), keras.layers.Dense(3)])


def _trained_model():
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.default_rng(0).normal(size=(64, 6)), np.zeros((64, 3)), epochs=1,
              verbose=0)  # Adam now has moments, which save_weights stores too
    return model


def _groups(path):
    with h5py.File(path, "r") as file:
        return set(file.keys())


def test_store_float16_rounds_the_weights_and_drops_the_optimizer(tmp_path):
    model = _trained_model()
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    size_before = path.stat().st_size
    assert "optimizer" in _groups(path)

    store_float16(path)

    assert "optimizer" not in _groups(path)
    assert path.stat().st_size < size_before / 2
    assert not path.with_suffix(".tmp").exists()
    loaded = _model()  # as a lesson loads it: no optimizer
    loaded.load_weights(path)
    for original, restored in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert restored.dtype == np.float32
        np.testing.assert_array_equal(restored, original.astype("float16").astype("float32"))
    assert any(np.any(w != w.astype("float16").astype("float32")) for w in model.get_weights())
