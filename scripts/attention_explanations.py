"""Lesson 13's questions to lesson 06's sentiment classifier over seeds: do the attention weights
rank the words as gradient × input and leave-one-out do, does shuffling them change the
prediction, and does the classifier need them at all (the same model trained with uniform
weights)? Written to ``notebooks/results/13_attention_explanations.json``; the attention model of
the first seed is shipped as ``weights/sentiment_classifier.weights.h5``.

    .venv/bin/python scripts/attention_explanations.py             # seeds 1-5, both poolings
    .venv/bin/python scripts/attention_explanations.py --seeds 1 --no-weights    # a look

Every model reads lesson 06's split (``course_lib.sentiment.load_sentiment``: 2,158 training,
239 validation and 603 test sentences) and trains with lesson 06's recipe
(``course_lib.sentiment_classifier.fit_sentence_classifier``). The accounts, their agreement and
the counterfactual test (``course_lib.explanations``) are measured on the 603 test sentences,
with the weights as stored (float16), which the lesson loads and measures again.
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

from course_lib import explanations, sentiment  # noqa: E402
from course_lib import sentiment_classifier as sc  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402
from course_lib.training import Stopwatch  # noqa: E402

POOLINGS = ["attention", "uniform"]
SEEDS = [1, 2, 3, 4, 5]
PERMUTATIONS = 100
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "notebooks" / "results" / "13_attention_explanations.json"


def rounded(values, digits=4):
    return [None if np.isnan(value) else round(float(value), digits) for value in values]


def describe(values):
    """Mean, quartiles and the share above 0 of the finite values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    low, median, high = np.percentile(values, [25, 50, 75])
    return {"sentences": int(len(values)), "mean": round(float(values.mean()), 4),
            "median": round(float(median), 4), "quartiles": [round(float(low), 4),
                                                             round(float(high), 4)],
            "positive_share": round(float(np.mean(values > 0)), 4)}


def examine(model, data, seed):
    """The attention model's accounts, their agreement and the counterfactual test."""
    ids = data.test.ids
    attributions = explanations.word_attributions(model, ids)
    pairs = explanations.agreement(attributions)
    test = explanations.counterfactual_test(model, ids, PERMUTATIONS, seed=seed)
    rates = explanations.flip_rates(test, data.test.labels)
    given = test["probability"] >= 0.5
    peaked = test["largest_weight"] >= np.median(test["largest_weight"])
    flips = (test["permuted"] >= 0.5) != given[None]  # (P, B)
    mask = attributions["mask"]
    self_weights = model.explain(ids)["self_attention"]  # (B, T, T)
    own = np.einsum("btt->bt", self_weights)[mask]  # each real word's weight on itself
    return {
        "agreement": {pair: {"tau": describe(values["tau"]),
                             "same_top_word": round(float(np.mean(values["same_top_word"])), 4)}
                      for pair, values in pairs.items()},
        "counterfactual": {**{key: round(value, 4) for key, value in rates.items()},
                           "permuted_flip_rate_peaked_half": round(float(flips[:, peaked].mean()),
                                                                    4),
                           "permuted_flip_rate_flat_half": round(float(flips[:, ~peaked].mean()),
                                                                  4),
                           "largest_weight_median": round(float(np.median(
                               test["largest_weight"])), 4)},
        "self_attention_on_own_word": round(float(own.mean()), 4),
        "per_sentence_tau": {pair: rounded(values["tau"]) for pair, values in pairs.items()},
    }


def run(pooling, seed, data, weights_path):
    model = sc.build_sentence_classifier(len(data.vocabulary), pooling=pooling, seed=seed)
    watch = Stopwatch()
    history = sc.fit_sentence_classifier(model, data, seed=seed)
    timing = watch.elapsed()
    model.save_weights(weights_path)
    store_float16(weights_path)
    stored = sc.build_sentence_classifier(len(data.vocabulary), pooling=pooling)
    stored.load_weights(weights_path)
    record = {"pooling": pooling, "seed": seed, "parameters": model.count_params(),
              "epochs": len(history.history["loss"]),
              "test_accuracy": round(sc.accuracy(stored, data.test), 4),
              "validation_accuracy_by_epoch": rounded(history.history["val_accuracy"]),
              "train_seconds": round(timing.wall, 1), "train_cpu_seconds": round(timing.cpu, 1)}
    if pooling == "attention":
        record.update(examine(stored, data, seed))
    print(f"{pooling:9} seed {seed}  test accuracy {record['test_accuracy']:.4f}  "
          f"({record['epochs']} epochs, {record['train_seconds']:.0f} s, cpu "
          f"{record['train_cpu_seconds']:.0f} s)", flush=True)
    return record


def summary(runs):
    """Over the seeds: test accuracy per pooling; for attention, the mean of each statistic."""
    table = {}
    for pooling in dict.fromkeys(run["pooling"] for run in runs):
        rows = [run for run in runs if run["pooling"] == pooling]
        accuracies = np.array([run["test_accuracy"] for run in rows])
        table[pooling] = {"seeds": len(rows), "test_accuracy": {
            "mean": round(float(accuracies.mean()), 4),
            "std": round(float(accuracies.std(ddof=1)), 4) if len(rows) > 1 else 0.0,
            "min": round(float(accuracies.min()), 4), "max": round(float(accuracies.max()), 4)}}
        if pooling == "attention":
            table[pooling]["mean_tau"] = {
                pair: [run["agreement"][pair]["tau"]["mean"] for run in rows]
                for pair in rows[0]["agreement"]}
            table[pooling]["same_top_word"] = {
                pair: [run["agreement"][pair]["same_top_word"] for run in rows]
                for pair in rows[0]["agreement"]}
            table[pooling]["counterfactual"] = {
                key: [run["counterfactual"][key] for run in rows]
                for key in rows[0]["counterfactual"]}
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--poolings", nargs="+", choices=POOLINGS, default=POOLINGS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--no-weights", action="store_true", help="ship no weights")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    data = sentiment.load_sentiment()
    start, load_before = time.perf_counter(), os.getloadavg()
    runs, shipped = [], None
    with tempfile.TemporaryDirectory() as scratch:
        for pooling in args.poolings:
            for seed in args.seeds:
                ship = pooling == "attention" and seed == args.seeds[0] and not args.no_weights
                path = (args.weights_dir / sc.SHIPPED_WEIGHTS if ship
                        else Path(scratch) / f"{pooling}_{seed}.weights.h5")
                runs.append(run(pooling, seed, data, path))
                if ship:
                    shipped = {"seed": seed, "file": f"weights/{sc.SHIPPED_WEIGHTS}",
                               "bytes": path.stat().st_size,
                               "test_accuracy": runs[-1]["test_accuracy"]}
    for record in runs[1:]:  # per-sentence values are kept for the first run only
        record.pop("per_sentence_tau", None)
    result = {
        "command": " ".join(["python scripts/attention_explanations.py",
                             *(argv or sys.argv[1:])]),
        "recipe": {"sizes": sc.SIZES, "training": sc.TRAINING, "permutations": PERMUTATIONS},
        "split": {"train": len(data.train), "validation": len(data.validation),
                  "test": len(data.test), "vocabulary": len(data.vocabulary),
                  "vocabulary_fingerprint": data.vocabulary.fingerprint()},
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
    for pooling, row in result["summary"].items():
        accuracy = row["test_accuracy"]
        print(f"{pooling:9} test accuracy {accuracy['mean']:.4f} ± {accuracy['std']:.4f} "
              f"({row['seeds']} seeds)")
        for pair, taus in row.get("mean_tau", {}).items():
            print(f"  mean Kendall tau {pair:40} {np.round(taus, 3)}")
        for key, values in row.get("counterfactual", {}).items():
            print(f"  {key:34} {values}")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
