"""Lesson 11's recall sweep: exact against linear attention as the number of pairs grows.

    .venv/bin/python scripts/recall_sweep.py            # -> notebooks/results/11_recall.json
    .venv/bin/python scripts/recall_sweep.py --pairs 4 16 --seeds 0 --out /tmp/recall.json

For every number of key → value pairs ``P`` (``course_lib.recall.associative_recall_task``:
64 keys, 16 values), every model and every seed, a fresh :class:`course_lib.recall.RecallModel`
is trained on its own training set and scored on held-out sequences:

- ``softmax``: exact attention, queries and keys of width 16;
- ``linear``: linear attention with the same widths, its state ``S`` is 16 × 64;
- ``linear, key_dim 64``: linear attention with a state four times as tall (64 × 64), to see
  whether a larger state holds more pairs.

The JSON keeps one record per run (test accuracy, the last epoch's training accuracy and loss,
wall and CPU seconds), the configuration, the command, the machine and its load.
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

from course_lib.recall import (  # noqa: E402
    RecallModel,
    associative_recall_task,
    recall_accuracy,
    train_recall,
)

OUTPUT = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "11_recall.json"
MODELS = {"softmax": ("softmax", 16), "linear": ("linear", 16),
          "linear_key_dim_64": ("linear", 64)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--num-keys", type=int, default=64)
    parser.add_argument("--num-values", type=int, default=16)
    parser.add_argument("--train-examples", type=int, default=20_000)
    parser.add_argument("--test-examples", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    runs = []
    for pairs in args.pairs:
        for seed in args.seeds:
            # Data seeds apart from the model seeds, and the test set apart from the training set.
            train = associative_recall_task(args.train_examples, pairs, args.num_keys,
                                            args.num_values, seed=1000 + seed)
            test = associative_recall_task(args.test_examples, pairs, args.num_keys,
                                           args.num_values, seed=2000 + seed)
            for name in args.models:
                attention, key_dim = MODELS[name]
                keras.utils.set_random_seed(seed)
                model = RecallModel(args.num_keys, args.num_values, attention=attention,
                                    key_dim=key_dim)
                history, seconds = train_recall(model, train, epochs=args.epochs,
                                                batch_size=args.batch_size,
                                                learning_rate=args.learning_rate, seed=seed)
                accuracy = recall_accuracy(model, test)
                runs.append({"pairs": pairs, "model": name, "attention": attention,
                             "key_dim": key_dim, "seed": seed, "test_accuracy": round(accuracy, 4),
                             "train_accuracy": round(history.history["accuracy"][-1], 4),
                             "train_loss": round(history.history["loss"][-1], 4),
                             "train_seconds": round(seconds.wall, 1),
                             "train_cpu_seconds": round(seconds.cpu, 1)})
                print(f"P {pairs:3d}  seed {seed}  {name:<18} test accuracy {accuracy:.3f}  "
                      f"({seconds.cpu:.0f} CPU s, load {os.getloadavg()[0]:.1f})", flush=True)
    results = {
        "command": "python scripts/recall_sweep.py" + "".join(f" {a}" for a in argv),
        "config": {"num_keys": args.num_keys, "num_values": args.num_values, "d_model": 64,
                   "hidden_units": 64, "train_examples": args.train_examples,
                   "test_examples": args.test_examples, "epochs": args.epochs,
                   "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                   "models": {name: {"attention": attention, "key_dim": key_dim}
                              for name, (attention, key_dim) in MODELS.items()
                              if name in args.models},
                   "chance": 1 / args.num_values},
        "pairs": args.pairs,
        "seeds": args.seeds,
        "runs": runs,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "seconds": {"wall": round(time.perf_counter() - wall_start, 1),
                    "cpu": round(time.process_time() - cpu_start, 1)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"-> {args.out} ({results['seconds']['cpu']:.0f} CPU s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
