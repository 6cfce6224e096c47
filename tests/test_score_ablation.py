"""The attention statistics lesson 04 reads from ``scripts/score_ablation.py``'s results: checked
on weights whose answers are known (one-hot rows, uniform rows, padding, rows past the end)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "score_ablation.py"


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("score_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_statistics_of_one_hot_rows_on_the_last_token(ablation):
    source_ids = np.array([[5, 6, 7, 0], [5, 6, 0, 0]])  # lengths 3 and 2
    hypotheses = [["a", "b"], ["c"]]                       # 3 and 2 real steps (with <end>)
    weights = np.zeros((2, 4, 4))
    weights[0, :, 2] = 1.0   # sentence 1: always its last real token
    weights[1, :, 1] = 1.0   # sentence 2: likewise
    weights[0, 3] = 0.25     # a step past the translation's end: must not count
    stats = ablation.attention_statistics(weights, source_ids, hypotheses, max_length=4)
    assert stats["rows"] == 5
    assert stats["mean_largest_weight"] == 1.0 and stats["saturated_rows"] == 1.0
    assert stats["mean_entropy"] == 0.0 and stats["largest_on_last_token"] == 1.0
    assert stats["uniform_entropy"] == pytest.approx(
        np.round((3 * np.log(3) + 2 * np.log(2)) / 5, 4))


def test_statistics_of_uniform_rows_and_unnormalised_rows(ablation):
    source_ids = np.array([[5, 6, 7, 8]])
    weights = np.full((1, 2, 4), 0.25)
    weights[0, 1] *= 0.5  # local-p's rows sum to less than 1: normalised before the entropy
    stats = ablation.attention_statistics(weights, source_ids, [["a"]], max_length=2)
    assert stats["rows"] == 2 and stats["saturated_rows"] == 0.0
    assert stats["mean_largest_weight"] == 0.25
    assert stats["mean_entropy"] == pytest.approx(np.round(np.log(4), 4))
    assert stats["largest_on_last_token"] == 0.0  # argmax of a tie is the first token
