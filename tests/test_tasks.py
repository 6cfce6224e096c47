"""course_lib.tasks: lesson 07's two-relation task and its one-layer attention model."""

import numpy as np
import pytest

from course_lib import tasks


def test_task_is_deterministic_and_its_answers_are_largest_minus_previous():
    first = tasks.previous_and_largest_task(300, 12, 16, seed=3)
    again = tasks.previous_and_largest_task(300, 12, 16, seed=3)
    other = tasks.previous_and_largest_task(300, 12, 16, seed=4)
    assert np.array_equal(first.inputs, again.inputs)
    assert not np.array_equal(first.inputs, other.inputs)
    assert first.inputs.shape == first.targets.shape == first.weights.shape == (300, 12)
    assert first.inputs.dtype == first.targets.dtype == np.int32
    largest = first.inputs.max(axis=1, keepdims=True)
    assert np.array_equal(first.targets[:, 1:], largest - first.inputs[:, :-1])
    assert (first.weights[:, 0] == 0).all() and (first.weights[:, 1:] == 1).all()
    assert first.inputs.min() >= 0 and first.inputs.max() <= 15
    assert largest.min() >= 4  # the largest value is drawn from V // 4 ... V - 1
    assert len(np.unique(largest)) == 12  # and it is not almost always V - 1
    assert first.vocabulary == tuple(str(token) for token in range(16))


@pytest.mark.parametrize("relation", ["previous", "largest"])
def test_one_relation_controls(relation):
    task = tasks.previous_and_largest_task(50, 8, 10, seed=0, relation=relation)
    both = tasks.previous_and_largest_task(50, 8, 10, seed=0)
    assert np.array_equal(task.inputs, both.inputs)
    expected = (task.inputs[:, :-1] if relation == "previous"
                else np.broadcast_to(task.inputs.max(axis=1, keepdims=True), (50, 7)))
    assert np.array_equal(task.targets[:, 1:], expected)


@pytest.mark.parametrize("arguments, message", [
    ({"num_examples": 0, "length": 5, "vocabulary_size": 8},
     "`num_examples` must be a positive integer, received 0"),
    ({"num_examples": 5, "length": 1, "vocabulary_size": 8},
     "`length` must be an integer of at least 2, received 1"),
    ({"num_examples": 5, "length": 5, "vocabulary_size": 3},
     "`vocabulary_size` must be an integer of at least 4"),
    ({"num_examples": 5, "length": 5.0, "vocabulary_size": 8},
     "`length` must be an integer of at least 2, received 5.0 of type float"),
    ({"num_examples": 5, "length": 5, "vocabulary_size": 8, "relation": "next"}, "`relation`"),
])
def test_task_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        tasks.previous_and_largest_task(seed=0, **arguments)


def test_models_with_any_number_of_heads_have_the_same_parameters():
    counts = {heads: tasks.attention_classifier(16, heads, seed=0).count_params()
              for heads in (1, 2, 4, 8, 16)}
    assert set(counts.values()) == {16 * 32 + (4 * 32 * 32 + 4 * 32) + (32 * 64 + 64)
                                    + (64 * 16 + 16)}
    with pytest.raises(ValueError, match=r"`d_model` \(32\) must be divisible by `num_heads` "
                                         r"\(3\)"):
        tasks.attention_classifier(16, 3)


def test_attention_weights_fit_and_evaluate():
    train = tasks.previous_and_largest_task(256, 6, 8, seed=0)
    test = tasks.previous_and_largest_task(64, 6, 8, seed=1)
    model = tasks.attention_classifier(8, 2, d_model=8, hidden_units=8, seed=0)
    weights = tasks.attention_weights(model, test.inputs)
    assert weights.shape == (64, 2, 6, 6)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    history, timing = tasks.fit_classifier(model, train, epochs=1, validation=test, seed=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert timing.wall > 0 and timing.cpu > 0
    accuracy, loss = tasks.evaluate_classifier(model, test)
    assert 0.0 <= accuracy <= 1.0 and loss > 0
    # the accuracy counts positions 1 ... T-1 only, as Keras's weighted metric does
    assert abs(accuracy - history.history["val_accuracy"][-1]) < 1e-6
