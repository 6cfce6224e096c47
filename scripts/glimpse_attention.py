"""Lesson 13's soft and hard attention over seeds: the glimpse task of ``course_lib.glimpses``
(a digit in one of 9 cells of a cluttered 24 × 24 canvas, read through one glimpse), with soft
attention, hard attention trained by REINFORCE (with and without a learned baseline) and by the
straight-through Gumbel-softmax, written to ``notebooks/results/13_glimpse_attention.json``; the
soft, REINFORCE (with baseline) and Gumbel models of the first seed are shipped in ``weights/``.

    .venv/bin/python scripts/glimpse_attention.py                       # 4 models, seeds 0-4
    .venv/bin/python scripts/glimpse_attention.py --models soft --seeds 0 --no-weights  # a look

Every model reads the same canvases (``course_lib.glimpses.load_glimpse_task``: 3,234 training,
269 validation and 900 test canvases from the digits' fixed split) and trains with one recipe
(``fit_glimpse_classifier``: Adam, a cosine decay, a fixed number of epochs; nothing is chosen on
the test canvases). For each model and seed the file holds the test accuracy and location
accuracy (the best-scored cell is the digit's), the validation curves, the multiply-adds per
canvas, and, for REINFORCE with a baseline, the bias and variance of the three estimators of the
location gradient (``location_gradient_statistics``) at several epochs. Shipped weights are
stored as float16 and every run's test scores are measured after that round trip.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from course_lib import glimpses  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402
from course_lib.training import Stopwatch  # noqa: E402

MODELS = {"soft": {"choice": "soft"}, "reinforce": {"choice": "reinforce"},
          "reinforce_no_baseline": {"choice": "reinforce", "use_baseline": False},
          "gumbel": {"choice": "gumbel"}}
SHIPPED = glimpses.SHIPPED_WEIGHTS
SEEDS = [0, 1, 2, 3, 4]
MEASURE_AT = (0, 1, 2, 5, 10, 20)
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "notebooks" / "results" / "13_glimpse_attention.json"


def stored_float16(model, name, path):
    """Save ``model``'s weights to ``path`` as float16 and load them into a fresh model."""
    model.save_weights(path)
    store_float16(path)
    stored = glimpses.build_glimpse_classifier(**MODELS[name])
    stored.load_weights(path)
    return stored


def run(name, seed, task, weights_path, epochs):
    """Train one model; return its record for the JSON file (scores after float16 storage)."""
    model = glimpses.build_glimpse_classifier(seed=seed, **MODELS[name])
    measure_at = MEASURE_AT if name == "reinforce" else ()
    watch = Stopwatch()
    history = glimpses.fit_glimpse_classifier(model, task, epochs=epochs, seed=seed,
                                              measure_at=[e for e in measure_at if e <= epochs],
                                              statistics_data=task.validation)
    timing = watch.elapsed()
    stored = stored_float16(model, name, weights_path)
    test = glimpses.evaluate(stored, task.test)
    record = {
        "model": name,
        "seed": seed,
        "parameters": model.count_params(),
        "test_accuracy": round(test["accuracy"], 4),
        "test_location_accuracy": round(test["location_accuracy"], 4),
        "test_cross_entropy": round(test["cross_entropy"], 4),
        "multiply_adds": {"test": glimpses.multiply_adds(model),
                          "training": glimpses.multiply_adds(model, training=True)},
        "validation_accuracy_by_epoch": [round(a, 4) for a in history["validation_accuracy"]],
        "validation_location_accuracy_by_epoch": [
            round(a, 4) for a in history["validation_location_accuracy"]],
        "validation_cross_entropy_by_epoch": [
            round(a, 4) for a in history["validation_cross_entropy"]],
        "gradient_statistics": {str(epoch): {key: float(f"{value:.4g}")
                                             for key, value in statistics.items()}
                                for epoch, statistics in history["gradient_statistics"].items()},
        "train_seconds": round(timing.wall, 1),
        "train_cpu_seconds": round(timing.cpu, 1),
    }
    print(f"{name:22} seed {seed}  test accuracy {record['test_accuracy']:.4f}  location "
          f"{record['test_location_accuracy']:.4f}  ({record['train_seconds']:.0f} s, cpu "
          f"{record['train_cpu_seconds']:.0f} s)", flush=True)
    return record


def summary(runs):
    """Per model: mean, sample standard deviation, lowest and highest test accuracy and
    location accuracy."""
    table = {}
    for name in dict.fromkeys(run["model"] for run in runs):
        rows = [run for run in runs if run["model"] == name]
        table[name] = {"seeds": len(rows), "multiply_adds": rows[0]["multiply_adds"]}
        for metric in ("test_accuracy", "test_location_accuracy"):
            values = np.array([run[metric] for run in rows])
            table[name][metric] = {
                "mean": round(float(values.mean()), 4),
                "std": round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0,
                "min": round(float(values.min()), 4), "max": round(float(values.max()), 4)}
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--epochs", type=int, default=glimpses.TRAINING["epochs"])
    parser.add_argument("--no-weights", action="store_true", help="ship no weights")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    task = glimpses.load_glimpse_task()
    start, load_before = time.perf_counter(), os.getloadavg()
    runs, shipped = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            for seed in args.seeds:
                ship = name in SHIPPED and seed == args.seeds[0] and not args.no_weights
                path = (args.weights_dir / SHIPPED[name] if ship
                        else Path(scratch) / f"{name}_{seed}.weights.h5")
                runs.append(run(name, seed, task, path, args.epochs))
                if ship:
                    shipped[name] = {"seed": seed, "file": f"weights/{SHIPPED[name]}",
                                     "bytes": path.stat().st_size,
                                     "test_accuracy": runs[-1]["test_accuracy"],
                                     "test_location_accuracy":
                                         runs[-1]["test_location_accuracy"]}
    result = {
        "command": " ".join(["python scripts/glimpse_attention.py", *(argv or sys.argv[1:])]),
        "task": {"grid": glimpses.GRID, "fragments": glimpses.FRAGMENTS,
                 "fragment_size": glimpses.FRAGMENT_SIZE, "copies": glimpses.COPIES,
                 "seed": glimpses.TASK_SEED, "train": len(task.train),
                 "validation": len(task.validation), "test": len(task.test)},
        "recipe": {"sizes": glimpses.SIZES,
                   "training": {**glimpses.TRAINING, "epochs": args.epochs},
                   "models": MODELS, "gradient_statistics_at_epochs": list(MEASURE_AT)},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
                    "keras": keras.__version__, "backend": keras.backend.backend(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - start, 1),
        "total_cpu_seconds": round(time.process_time(), 1),
        "total_train_cpu_seconds": round(sum(run["train_cpu_seconds"] for run in runs), 1),
        "summary": summary(runs),
        "shipped": shipped,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result["summary"].items():
        accuracy, location = row["test_accuracy"], row["test_location_accuracy"]
        print(f"{name:22} test accuracy {accuracy['mean']:.4f} ± {accuracy['std']:.4f}, "
              f"location {location['mean']:.4f} ± {location['std']:.4f} ({row['seeds']} seeds), "
              f"multiply-adds {row['multiply_adds']}")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
