"""``course_lib.recall``: the associative-recall task and its one-layer model."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib.recall import RecallModel, associative_recall_task
from tests.layer_cases import to_numpy

ROOT = Path(__file__).resolve().parents[1]


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


def run_sweep(arguments):
    spec = importlib.util.spec_from_file_location("recall_sweep",
                                                  ROOT / "scripts" / "recall_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(arguments)


def test_the_sweep_writes_one_record_per_pairs_seed_and_model(tmp_path):
    out = tmp_path / "recall.json"
    assert run_sweep(["--pairs", "2", "3", "--seeds", "0", "--models", "softmax", "linear",
                      "--train-examples", "64", "--test-examples", "32", "--epochs", "1",
                      "--out", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert [(run["pairs"], run["model"]) for run in results["runs"]] == [
        (2, "softmax"), (2, "linear"), (3, "softmax"), (3, "linear")]
    assert all(0 <= run["test_accuracy"] <= 1 for run in results["runs"])
    assert results["config"]["train_examples"] == 64 and results["config"]["chance"] == 1 / 16


def test_the_committed_sweep_has_every_run():
    """Lesson 11 plots the mean of every (pairs, model) over the seeds: none may be missing."""
    results = json.loads((ROOT / "notebooks" / "results" / "11_recall.json").read_text(
        encoding="utf-8"))
    runs = {(run["pairs"], run["model"], run["seed"]) for run in results["runs"]}
    models = results["config"]["models"]
    assert runs == {(pairs, model, seed) for pairs in results["pairs"] for model in models
                    for seed in results["seeds"]}
    assert len(results["runs"]) == len(runs)
