"""Lesson 01's context-size sweep: accuracy against the size of the encoder's state, with and
without attention, written to ``notebooks/results/01_context_size_sweep.json``.

    .venv/bin/python scripts/sweep_context_size.py                 # units 16 32 64 128
    .venv/bin/python scripts/sweep_context_size.py --units 16 64   # a subset, for a quick look

For each size it trains lesson 01's two models (the GRU encoder–decoder whose decoder sees only
the encoder's final state, and the same model with Bahdanau attention) with exactly the
lesson's recipe (task, data, seed, epochs, learning rate; the notebook asserts that the recipe
stored here is its own), then decodes the lesson's held-out sequences greedily and records
token and whole-sequence accuracy by source length. Eight trainings take a few minutes on a
2-core CPU, more than a lesson's 3 minutes, so the lesson plots the stored file.
Seconds (wall clock and CPU) and the machine's load are stored with the results.
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

from course_lib import data, models  # noqa: E402

# Lesson 01's recipe: notebooks/01_the_bottleneck.ipynb asserts it equals its own.
SEED = 1
TASK = {"min_length": 3, "max_length": 24, "vocabulary_size": 13}
TRAIN_SET = {"num_examples": 20000, "seed": 0}
TEST_SET = {"num_examples": 6600, "seed": 1}
MODEL = {"embedding_dim": 32, "attention": "bahdanau"}
TRAINING = {"epochs": 4, "batch_size": 128, "learning_rate": 5e-3}
OUTPUT = Path(__file__).resolve().parent.parent / "notebooks" / "results" / \
    "01_context_size_sweep.json"


def run(units, attention, train_pairs, test_pairs):
    """Train one model with the lesson's recipe; return its record for the JSON file."""
    model = models.gru_encoder_decoder(TASK["vocabulary_size"], MODEL["embedding_dim"], units,
                                       attention=attention, seed=SEED)
    history, timing = models.fit_seq2seq(model, train_pairs, seed=SEED, **TRAINING)
    by_length = models.accuracy_by_length(model, test_pairs)
    return {
        "units": units,
        "attention": attention,
        "parameters": model.count_params(),
        "train_seconds": round(timing.wall, 1),
        "train_cpu_seconds": round(timing.cpu, 1),
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "token_accuracy": {str(k): round(v.token, 4) for k, v in by_length.items()},
        "sequence_accuracy": {str(k): round(v.sequence, 4) for k, v in by_length.items()},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    train_pairs = data.reversal_task(**TRAIN_SET, **TASK)
    test_pairs = data.reversal_task(**TEST_SET, **TASK)
    start, load_before = time.perf_counter(), os.getloadavg()
    runs = []
    for units in args.units:
        for attention in (None, MODEL["attention"]):
            record = run(units, attention, train_pairs, test_pairs)
            runs.append(record)
            print(f"units {units:4d}  attention {attention!s:9}  "
                  f"train {record['train_seconds']:5.1f} s (cpu {record['train_cpu_seconds']:5.1f}"
                  f" s)  sequence accuracy at 20: {record['sequence_accuracy']['20']:.3f}",
                  flush=True)
    result = {
        "command": " ".join(["python scripts/sweep_context_size.py", *(argv or sys.argv[1:])]),
        "recipe": {"seed": SEED, "task": TASK, "train_set": TRAIN_SET, "test_set": TEST_SET,
                   "model": MODEL, "training": TRAINING},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
                    "keras": keras.__version__, "backend": keras.backend.backend(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - start, 1),
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
