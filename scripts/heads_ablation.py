"""Lesson 07's heads ablation: 1, 2, 4, 8 and 16 heads at the same parameter count, written to
``notebooks/results/07_heads_ablation.json``.

    .venv/bin/python scripts/heads_ablation.py                    # heads 1 2 4 8 16, seeds 1 2 3
    .venv/bin/python scripts/heads_ablation.py --heads 1 4 --seeds 1   # a subset, for a look

For each number of heads ``H`` and each seed it trains lesson 07's model
(``course_lib.tasks.attention_classifier``: embedding + sinusoidal positions, one
self-attention layer with ``key_dim = d_model / H``, a residual, a small MLP) on the lesson's
task (``course_lib.tasks.previous_and_largest_task``: at each position, the largest token minus
the previous one) with exactly the lesson's recipe, then records the held-out accuracy and loss,
the accuracy after every epoch, and where each head looks (its mean weight on the previous
position and on the largest token). The notebook asserts that the recipe stored here is its own
and re-trains two of the runs.

Three controls follow: one head with four times the epochs (is one head unable, or slow?), and
one head on each relation alone (``relation="previous"``, ``"largest"``). Fifteen trainings and
the controls take several minutes on a 2-core CPU, more than a lesson's 3 minutes, so
the lesson reads the stored file. Seconds (wall clock and CPU) and the load are stored too.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib import tasks  # noqa: E402

# Lesson 07's recipe: notebooks/07_multi_head_attention.ipynb asserts it equals its own.
TASK = {"length": 12, "vocabulary_size": 16}
TRAIN_SET = {"num_examples": 20000, "seed": 0}
TEST_SET = {"num_examples": 2000, "seed": 1}
MODEL = {"d_model": 32, "hidden_units": 64}
TRAINING = {"epochs": 8, "batch_size": 64, "learning_rate": 3e-3}
HEADS = [1, 2, 4, 8, 16]
SEEDS = [1, 2, 3]
LONGER = 4  # the one-head control trains this many times longer
OUTPUT = Path(__file__).resolve().parent.parent / "notebooks" / "results" / \
    "07_heads_ablation.json"


def head_focus(model, task):
    """Per head, the mean weight a query ``i ≥ 1`` puts on position ``i − 1`` and on the
    largest token(s) of its sequence: two lists of ``H`` numbers."""
    weights = tasks.attention_weights(model, task.inputs)  # (N, H, T, T)
    queries = np.arange(1, weights.shape[-1])
    on_previous = weights[:, :, queries, queries - 1].mean(axis=(0, 2))
    largest = (task.inputs == task.inputs.max(axis=1, keepdims=True)).astype("float64")
    on_largest = np.einsum("nhqk,nk->nhq", weights[:, :, 1:, :], largest).mean(axis=(0, 2))
    return [round(float(v), 4) for v in on_previous], [round(float(v), 4) for v in on_largest]


def run(heads, seed, train, test, epochs, relation="both"):
    """Train one model with the lesson's recipe; return its record for the JSON file."""
    model = tasks.attention_classifier(TASK["vocabulary_size"], heads, seed=seed, **MODEL)
    training = {**TRAINING, "epochs": epochs}
    history, timing = tasks.fit_classifier(model, train, validation=test, seed=seed, **training)
    accuracy, loss = tasks.evaluate_classifier(model, test)
    on_previous, on_largest = head_focus(model, test)
    attention = model.get_layer("attention")
    return {
        "heads": heads,
        "key_dim": attention.key_dim,
        "seed": seed,
        "relation": relation,
        "epochs": epochs,
        "parameters": model.count_params(),
        "attention_parameters": attention.count_params(),
        "test_accuracy": round(accuracy, 4),
        "test_loss": float(f"{loss:.4g}"),  # four significant digits: it goes down to 1e-5
        "accuracy_by_epoch": [round(float(a), 4) for a in history.history["val_accuracy"]],
        "on_previous": on_previous,
        "on_largest": on_largest,
        "train_seconds": round(timing.wall, 1),
        "train_cpu_seconds": round(timing.cpu, 1),
    }


def report(record):
    print(f"heads {record['heads']:2d}  seed {record['seed']}  {record['relation']:8}  "
          f"epochs {record['epochs']:2d}  accuracy {record['test_accuracy']:.4f}  "
          f"loss {record['test_loss']:.4f}  train {record['train_seconds']:5.1f} s "
          f"(cpu {record['train_cpu_seconds']:5.1f} s)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads", type=int, nargs="+", default=HEADS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--no-controls", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    train = tasks.previous_and_largest_task(**TRAIN_SET, **TASK)
    test = tasks.previous_and_largest_task(**TEST_SET, **TASK)
    start, load_before = time.perf_counter(), os.getloadavg()
    runs, controls = [], []
    for heads in args.heads:
        for seed in args.seeds:
            runs.append(run(heads, seed, train, test, TRAINING["epochs"]))
            report(runs[-1])
    if not args.no_controls:
        seed = args.seeds[0]
        controls.append(run(1, seed, train, test, LONGER * TRAINING["epochs"]))
        report(controls[-1])
        for relation in ("previous", "largest"):
            one_relation = {name: tasks.previous_and_largest_task(**spec, **TASK,
                                                                  relation=relation)
                            for name, spec in (("train", TRAIN_SET), ("test", TEST_SET))}
            controls.append(run(1, seed, one_relation["train"], one_relation["test"],
                                TRAINING["epochs"], relation=relation))
            report(controls[-1])
    result = {
        "command": " ".join(["python scripts/heads_ablation.py", *(argv or sys.argv[1:])]),
        "recipe": {"task": TASK, "train_set": TRAIN_SET, "test_set": TEST_SET, "model": MODEL,
                   "training": TRAINING},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
                    "keras": keras.__version__, "backend": keras.backend.backend(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - start, 1),
        "total_train_cpu_seconds": round(sum(r["train_cpu_seconds"] for r in runs + controls), 1),
        "runs": runs,
        "controls": controls,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
