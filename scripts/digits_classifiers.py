"""Lesson 12's image classifiers over seeds: a small ViT, an MLP and a CNN of about the same
size on the 8 × 8 digits, written to ``notebooks/results/12_digits_classifiers.json``; the ViT
of the first seed is shipped as ``weights/vit_digits.weights.h5``.

    .venv/bin/python scripts/digits_classifiers.py                  # 3 models, seeds 0 1 2 3 4
    .venv/bin/python scripts/digits_classifiers.py --models vit --seeds 0 --no-weights   # a look

Every model reads the same split (``course_lib.digits.load_digits_split``: 1,078 training, 269
validation and 450 test images, stratified by class) and trains with the same recipe
(``course_lib.vision.fit_classifier``: Adam, a cosine decay, a fixed number of epochs, nothing
chosen on the test images). For each model and seed the file holds the test accuracy, the
validation accuracy after every epoch and the seconds taken; the lesson plots and checks them.
The shipped ViT's weights are stored as float16 (``course_lib.shipped_weights.store_float16``)
and its test accuracy is measured again after that round trip.
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

from course_lib import digits, vision  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402
from course_lib.training import Stopwatch  # noqa: E402

MODELS = ["vit", "mlp", "cnn"]
SEEDS = [0, 1, 2, 3, 4]
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "notebooks" / "results" / "12_digits_classifiers.json"


def run(name, seed, data):
    """Train one model with the lesson's recipe; return it and its record for the JSON file."""
    keras.utils.set_random_seed(seed)
    model = vision.BUILDERS[name]()
    watch = Stopwatch()
    history = vision.fit_classifier(model, data, seed=seed, **vision.TRAINING)
    timing = watch.elapsed()
    record = {
        "model": name,
        "seed": seed,
        "parameters": model.count_params(),
        "test_accuracy": round(vision.accuracy(model, data.test_images, data.test_labels), 4),
        "validation_accuracy_by_epoch": [round(float(a), 4)
                                         for a in history.history["val_accuracy"]],
        "train_loss_by_epoch": [float(f"{loss:.4g}") for loss in history.history["loss"]],
        "train_seconds": round(timing.wall, 1),
        "train_cpu_seconds": round(timing.cpu, 1),
    }
    print(f"{name:4} seed {seed}  {record['parameters']:6,} parameters  test accuracy "
          f"{record['test_accuracy']:.4f}  ({record['train_seconds']:.0f} s, cpu "
          f"{record['train_cpu_seconds']:.0f} s)", flush=True)
    return model, record


def ship(model, data, weights_dir):
    """Save ``model``'s weights as float16 and measure the shipped weights' test accuracy."""
    path = Path(weights_dir) / vision.SHIPPED_WEIGHTS
    model.save_weights(path)
    store_float16(path)
    shipped = vision.build_vit()
    shipped.load_weights(path)
    return {"file": f"weights/{vision.SHIPPED_WEIGHTS}", "bytes": path.stat().st_size,
            "test_accuracy": round(vision.accuracy(shipped, data.test_images,
                                                   data.test_labels), 4)}


def summary(runs):
    """Per model: the mean, the sample standard deviation, the lowest and highest accuracy."""
    table = {}
    for name in dict.fromkeys(run["model"] for run in runs):
        accuracies = np.array([run["test_accuracy"] for run in runs if run["model"] == name])
        table[name] = {"seeds": len(accuracies), "mean": round(float(accuracies.mean()), 4),
                       "std": round(float(accuracies.std(ddof=1)), 4) if len(accuracies) > 1
                       else 0.0,
                       "min": round(float(accuracies.min()), 4),
                       "max": round(float(accuracies.max()), 4)}
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--no-weights", action="store_true", help="do not ship the ViT")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    data = digits.load_digits_split()
    start, load_before = time.perf_counter(), os.getloadavg()
    runs, shipped = [], None
    for name in args.models:
        for seed in args.seeds:
            model, record = run(name, seed, data)
            runs.append(record)
            if name == "vit" and seed == args.seeds[0] and not args.no_weights:
                shipped = {"seed": seed, **ship(model, data, args.weights_dir)}
    result = {
        "command": " ".join(["python scripts/digits_classifiers.py", *(argv or sys.argv[1:])]),
        "recipe": {"vit": vision.VIT_SIZES, "mlp_units": vision.MLP_UNITS,
                   "cnn_filters": list(vision.CNN_FILTERS), "training": vision.TRAINING},
        "split": {"train": len(data.train_labels), "validation": len(data.validation_labels),
                  "test": len(data.test_labels), "seed": digits.SPLIT_SEED},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
                    "keras": keras.__version__, "backend": keras.backend.backend(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - start, 1),
        "total_train_cpu_seconds": round(sum(run["train_cpu_seconds"] for run in runs), 1),
        "summary": summary(runs),
        "shipped_vit": shipped,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result["summary"].items():
        print(f"{name:4} test accuracy {row['mean']:.4f} ± {row['std']:.4f} "
              f"(min {row['min']:.4f}, max {row['max']:.4f}, {row['seeds']} seeds)")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
