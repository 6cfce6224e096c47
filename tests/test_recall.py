"""``course_lib.recall``: the associative-recall task and its one-layer model."""

import keras
import numpy as np
import pytest

from course_lib.recall import RecallModel, associative_recall_task
from tests.layer_cases import to_numpy


def test_each_answer_is_the_value_stored_under_the_query_key():
    task = associative_recall_task(50, num_pairs=6, num_keys=10, num_values=4, seed=3)
    assert task.inputs.shape == (50, 7, 2) and task.targets.shape == (50,)
    assert task.num_pairs == 6 and len(task) == 50
    for sequence, target in zip(task.inputs, task.targets, strict=True):
        keys, values = sequence[:-1, 0], sequence[:-1, 1]
        assert len(set(keys)) == 6  # distinct keys: one answer
        (position,) = np.flatnonzero(keys == sequence[-1, 0])
        assert values[position] == target
        assert sequence[-1, 1] == 4  # the query's value slot holds the blank
    assert task.inputs[:, :-1, 1].max() < 4


def test_the_same_seed_gives_the_same_task_and_another_seed_another():
    first = associative_recall_task(20, 5, 16, 8, seed=1)
    assert np.array_equal(first.inputs, associative_recall_task(20, 5, 16, 8, seed=1).inputs)
    assert not np.array_equal(first.inputs, associative_recall_task(20, 5, 16, 8, seed=2).inputs)


def test_more_pairs_than_keys_is_refused():
    with pytest.raises(ValueError, match=r"`num_pairs` \(9\) cannot exceed `num_keys` \(8\)"):
        associative_recall_task(10, num_pairs=9, num_keys=8, num_values=4, seed=0)


@pytest.mark.backends
@pytest.mark.parametrize("attention", ["softmax", "linear"])
def test_the_model_reads_the_stored_pairs(attention):
    """Logits ``(B, num_values)``, which change when the stored values change: the query reads
    the pairs through the attention."""
    keras.utils.set_random_seed(0)
    model = RecallModel(10, 4, attention=attention, d_model=8, key_dim=4, hidden_units=8)
    task = associative_recall_task(3, num_pairs=5, num_keys=10, num_values=4, seed=0)
    logits = to_numpy(model(task.inputs))
    assert logits.shape == (3, 4)
    changed = task.inputs.copy()
    changed[:, :-1, 1] = (changed[:, :-1, 1] + 1) % 4  # every stored value
    assert np.abs(to_numpy(model(changed)) - logits).max() > 1e-4
    assert RecallModel.from_config(model.get_config()).attention == attention


def test_an_unknown_attention_is_refused():
    with pytest.raises(ValueError, match="`attention` must be one of"):
        RecallModel(10, 4, attention="sparse")
