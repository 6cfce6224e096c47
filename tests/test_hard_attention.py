"""Lesson 13's hard attention, on every backend: the glimpse sensor reads the right pixels, the
Gumbel-max sample has the softmax's distribution and the straight-through gradient is the relaxed
sample's, REINFORCE's surrogate has the score-function gradient, and the exact moments of the
REINFORCE estimate (and the straight-through estimate) that the lesson reports are what sampling
and automatic differentiation give."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import glimpses
from course_lib.attribution import input_gradient
from course_lib.estimators import (
    gumbel_noise,
    gumbel_softmax,
    reinforce_losses,
    relaxed_one_hot,
    sample_choices,
)
from course_lib.layers import GlimpseSensor
from course_lib.numpy_softmax import softmax
from tests.layer_cases import random_tensor, to_numpy

pytestmark = pytest.mark.backends


def numpy_glimpse(image, location, size):
    """The pixels of glimpse ``location`` of one image ``(H, W, C)``, by slicing."""
    columns = image.shape[1] // size
    row, column = divmod(location, columns)
    return image[size * row:size * (row + 1), size * column:size * (column + 1)]


def test_the_sensor_cuts_every_glimpse_row_by_row():
    images = random_tensor((2, 6, 9, 2), 1)
    glimpses_ = to_numpy(GlimpseSensor(3)(images))
    assert glimpses_.shape == (2, 6, 3, 3, 2)
    for b in range(2):
        for k in range(6):
            np.testing.assert_array_equal(glimpses_[b, k], numpy_glimpse(images[b], k, 3))


def test_the_sensor_reads_only_the_glimpse_at_each_location():
    images = random_tensor((3, 8, 8, 1), 2)
    locations = np.array([0, 3, 2])
    read = to_numpy(GlimpseSensor(4)(images, locations))
    assert read.shape == (3, 4, 4, 1)
    for b, location in enumerate(locations):
        np.testing.assert_array_equal(read[b], numpy_glimpse(images[b], location, 4))
    other = to_numpy(GlimpseSensor(4)(images, np.array([1, 3, 2])))
    assert np.abs(other[0] - read[0]).max() > 0.1


def test_gumbel_max_samples_follow_the_softmax():
    logits = np.array([[1.0, 0.0, -1.0, 2.0]], dtype="float32")
    many = np.repeat(logits, 20_000, axis=0)
    sample = to_numpy(gumbel_softmax(many, temperature=0.5, hard=True, seed=3))
    assert set(np.unique(sample)) == {0.0, 1.0} and np.all(sample.sum(axis=-1) == 1.0)
    np.testing.assert_allclose(sample.mean(axis=0), softmax(logits[0]), atol=0.015)
    choices, log_probabilities = (to_numpy(x) for x in sample_choices(many, seed=4))
    np.testing.assert_allclose(np.bincount(choices, minlength=4) / len(choices),
                               softmax(logits[0]), atol=0.015)
    np.testing.assert_allclose(log_probabilities, np.log(softmax(logits[0]))[choices],
                               rtol=1e-5)


def test_gumbel_noise_has_the_gumbel_mean_and_variance():
    noise = to_numpy(gumbel_noise((50_000,), seed=5))
    assert abs(noise.mean() - np.euler_gamma) < 0.02
    assert abs(noise.var() - np.pi ** 2 / 6) < 0.05


def test_straight_through_passes_the_relaxed_samples_gradient():
    perturbed = random_tensor((3, 5), 6)
    weights = ops.convert_to_tensor(random_tensor((3, 5), 7))
    hard = to_numpy(relaxed_one_hot(perturbed, temperature=0.7))
    np.testing.assert_array_equal(hard, np.eye(5)[perturbed.argmax(axis=-1)])
    through_hard = input_gradient(
        lambda x: ops.sum(relaxed_one_hot(x, 0.7) * weights, axis=-1), perturbed)
    through_soft = input_gradient(
        lambda x: ops.sum(ops.softmax(x / 0.7, axis=-1) * weights, axis=-1), perturbed)
    np.testing.assert_allclose(through_hard, through_soft, rtol=1e-5, atol=1e-6)
    assert np.abs(through_hard).max() > 1e-2
    with pytest.raises(ValueError, match="`temperature` must be positive, received 0"):
        relaxed_one_hot(perturbed, temperature=0)


def test_reinforce_surrogate_has_the_score_function_gradient():
    logits = random_tensor((4, 3), 8)
    choices = np.array([0, 2, 1, 2])
    reward = np.array([1.0, -0.5, 2.0, 0.3], dtype="float32")
    baseline = np.array([0.5, 0.5, -1.0, 0.0], dtype="float32")

    def policy_loss(x, with_baseline=True):
        log_probability = ops.take_along_axis(ops.log_softmax(x, axis=-1),
                                              choices[:, None], axis=-1)[:, 0]
        policy, _ = reinforce_losses(log_probability, reward,
                                     baseline if with_baseline else None)
        return policy

    score = np.eye(3)[choices] - softmax(logits)  # ∇ log π_k
    np.testing.assert_allclose(input_gradient(policy_loss, logits),
                               -(reward - baseline)[:, None] * score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(input_gradient(lambda x: policy_loss(x, False), logits),
                               -reward[:, None] * score, rtol=1e-5, atol=1e-6)
    # the baseline learns the reward by least squares, and no gradient reaches the reward
    _, baseline_loss = reinforce_losses(ops.zeros(4), reward, baseline)
    np.testing.assert_allclose(to_numpy(baseline_loss), (baseline - reward) ** 2, rtol=1e-6)
    reward_gradient = input_gradient(
        lambda r: sum(reinforce_losses(ops.zeros(4), r, baseline)), reward)
    np.testing.assert_array_equal(reward_gradient, np.zeros(4))


def test_exact_reinforce_moments_are_what_sampling_gives():
    rng = np.random.default_rng(9)
    probabilities = softmax(rng.normal(size=(2, 4)))
    losses = rng.uniform(0.0, 3.0, size=(2, 4))
    baseline = np.array([1.0, 2.5])
    mean, variance = glimpses.reinforce_gradient_moments(probabilities, losses, baseline)
    exact = probabilities * (losses - (probabilities * losses).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(mean, exact, atol=1e-12)
    # the mean does not depend on the baseline; the variance does
    other_mean, other_variance = glimpses.reinforce_gradient_moments(probabilities, losses, 0.0)
    np.testing.assert_allclose(other_mean, exact, atol=1e-12)
    assert np.all(np.abs(other_variance - variance) > 1e-3)
    draws = 200_000
    for b in range(2):
        chosen = rng.choice(4, size=draws, p=probabilities[b])
        samples = (losses[b, chosen] - baseline[b])[:, None] * (np.eye(4)[chosen]
                                                               - probabilities[b])
        np.testing.assert_allclose(samples.mean(axis=0), exact[b], atol=0.01)
        np.testing.assert_allclose(samples.var(axis=0).sum(), variance[b], rtol=0.02)


def test_straight_through_formula_equals_automatic_differentiation():
    rng = np.random.default_rng(10)
    scores = rng.normal(size=(3, 4)).astype("float32")
    features = rng.normal(size=(3, 4, 5)).astype("float32")
    kernel = rng.normal(size=(5, 6)).astype("float32")
    bias = rng.normal(size=6).astype("float32")
    labels = np.array([0, 5, 2])
    noise = rng.gumbel(size=(1, 3, 4)).astype("float32")

    def loss(s):
        sample = relaxed_one_hot(s + noise[0], temperature=0.5)  # (B, K)
        logits = ops.einsum("bk,bkd->bd", sample, features) @ kernel + bias
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    formula = glimpses.straight_through_gradients(scores, features, kernel, bias, labels,
                                                  noise, 0.5)[0]
    np.testing.assert_allclose(formula, input_gradient(loss, scores), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def small_task():
    split = glimpses.digits.load_digits_split()
    return glimpses.GlimpseTask(*(glimpses.make_canvases(images[:n], labels[:n], seed=n)
                                  for images, labels, n in (
                                      (split.train_images, split.train_labels, 128),
                                      (split.validation_images, split.validation_labels, 40),
                                      (split.test_images, split.test_labels, 40))))


def test_canvases_put_each_digit_in_its_cell_and_only_clutter_elsewhere():
    split = glimpses.digits.load_digits_split()
    images = split.test_images[:30]
    task = glimpses.make_canvases(images, split.test_labels[:30], copies=2, seed=1)
    assert task.canvases.shape == (60, 24, 24, 1) and len(task) == 60
    cells = to_numpy(GlimpseSensor(8)(task.canvases))  # (N, 9, 8, 8, 1)
    digit_index = np.tile(np.arange(30), 2)
    np.testing.assert_array_equal(cells[np.arange(60), task.locations], images[digit_index])
    np.testing.assert_array_equal(task.labels, split.test_labels[:30][digit_index])
    others = np.ones((60, 9), dtype=bool)
    others[np.arange(60), task.locations] = False
    clutter = cells[others]  # (60 · 8, 8, 8, 1): two 4 × 4 fragments at most
    assert np.all((clutter > 0).sum(axis=(1, 2, 3)) <= 2 * 16)
    assert (clutter.sum(axis=(1, 2, 3)) > 0).mean() > 0.9
    assert len(np.unique(task.locations)) == 9
    again = glimpses.make_canvases(images, split.test_labels[:30], copies=2, seed=1)
    np.testing.assert_array_equal(again.canvases, task.canvases)
    other = glimpses.make_canvases(images, split.test_labels[:30], copies=2, seed=2)
    assert not np.array_equal(other.locations, task.locations)
    with pytest.raises(ValueError, match=r"`images` must be \(N, g, g, 1\), received shape"):
        glimpses.make_canvases(images[..., 0], split.test_labels[:30])


@pytest.mark.parametrize("choice", glimpses.CHOICES)
def test_hard_choices_read_one_glimpse_at_test_time(choice, small_task):
    model = glimpses.build_glimpse_classifier(choice, seed=1)
    canvases = small_task.test.canvases[:6]
    outputs = model(canvases)
    scores = to_numpy(outputs["scores"])
    assert to_numpy(outputs["logits"]).shape == (6, 10) and scores.shape == (6, 9)
    np.testing.assert_array_equal(to_numpy(outputs["locations"]), scores.argmax(axis=-1))
    all_features = model.encode(model.sensor(canvases))  # (B, K, D)
    if choice == "soft":
        features = ops.einsum("bk,bkd->bd", softmax(scores).astype("float32"), all_features)
    else:
        features = to_numpy(all_features)[np.arange(6), scores.argmax(axis=-1)]
    np.testing.assert_allclose(to_numpy(outputs["logits"]), to_numpy(model.head(features)),
                               rtol=1e-5, atol=1e-5)


def test_in_training_the_hard_models_sample_their_locations(small_task):
    for choice in ("reinforce", "gumbel"):
        model = glimpses.build_glimpse_classifier(choice, seed=2)
        canvases = small_task.train.canvases[:64]
        first = to_numpy(model(canvases, training=True)["locations"])
        second = to_numpy(model(canvases, training=True)["locations"])
        best = to_numpy(model(canvases)["locations"])
        assert np.mean(first != second) > 0.3 and np.mean(first != best) > 0.3


@pytest.mark.parametrize("choice", glimpses.CHOICES)
def test_each_model_trains_and_its_weights_reload(choice, small_task, tmp_path):
    model = glimpses.build_glimpse_classifier(choice, seed=3)
    before = glimpses.evaluate(model, small_task.train)["cross_entropy"]
    record = glimpses.fit_glimpse_classifier(model, small_task, epochs=6, batch_size=8,
                                             learning_rate=1e-2, measure_at=(0, 6),
                                             statistics_data=small_task.validation)
    assert len(record["validation_accuracy"]) == 6 and np.all(np.isfinite(record["loss"]))
    assert glimpses.evaluate(model, small_task.train)["cross_entropy"] < before - 0.05
    statistics = record["gradient_statistics"][6]
    assert statistics["reinforce_no_baseline_variance"] > statistics["exact_norm"] > 0
    assert ("reinforce_baseline_variance" in statistics) == (choice == "reinforce")
    model.save_weights(tmp_path / "glimpse.weights.h5")
    clone = glimpses.GlimpseClassifier.from_config(model.get_config())
    clone(small_task.test.canvases[:1])
    clone.load_weights(tmp_path / "glimpse.weights.h5")
    np.testing.assert_allclose(to_numpy(clone(small_task.test.canvases)["logits"]),
                               to_numpy(model(small_task.test.canvases)["logits"]), atol=1e-6)


def test_soft_attention_reads_nine_glimpses_and_hard_attention_one():
    encoder = 8 * 8 * 64 + 64 * 64
    scorer = 9 * (4 * 4 * 16 + 16)
    head = 64 * 10
    costs = {choice: (glimpses.multiply_adds(model), glimpses.multiply_adds(model, True))
             for choice in glimpses.CHOICES
             for model in [glimpses.build_glimpse_classifier(choice)]}
    assert costs["soft"] == (scorer + 9 * encoder + 9 * 64 + head,) * 2
    assert costs["reinforce"] == (scorer + encoder + head, scorer + encoder + head + 9 * 16)
    assert costs["gumbel"] == (costs["reinforce"][0], costs["soft"][0])
