"""Lesson 12's forecasts of the yearly sunspot number over seeds, written to
``notebooks/results/12_sunspot_forecasts.json``; the attention forecaster of the first seed is
shipped as ``weights/sunspot_attention.weights.h5``.

    .venv/bin/python scripts/sunspot_forecasts.py                    # seeds 0 1 2 3 4
    .venv/bin/python scripts/sunspot_forecasts.py --seeds 0 --no-weights   # a look

Each model forecasts year ``t`` from the ``L = 12`` years before it
(``course_lib.forecasting.forecast_windows``); targets from 1959 on (the last 50 years) are
held out, everything is fitted on the years before, and the values are scaled with the mean and
spread of those years only. Two baselines need no seed: persistence (next year = this year) and
a linear autoregression on the 12 lags fitted by least squares. Two neural models train per
seed with the same recipe (``course_lib.forecasting.fit_forecaster``): the attention forecaster
(one query from the last year over the window, learned positions, a residual connection) and a
GRU. For each the file holds the test RMSE and MAE in sunspot units, and, for the attention
model, the weight it gives each lag, averaged over the heads and the 50 test years.
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

from course_lib import forecasting as fc  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402
from course_lib.training import Stopwatch  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "notebooks" / "results" / "12_sunspot_forecasts.json"


def errors(predictions, targets):
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    return {"rmse": round(fc.rmse(predictions, targets), 3),
            "mae": round(float(np.mean(np.abs(predictions - targets))), 3)}


def run(name, seed, windows, scale):
    """Train one neural forecaster; return the model, its lag-weight model and its record."""
    mean, std = scale
    keras.utils.set_random_seed(seed)
    if name == "attention":
        model, weights_model = fc.build_attention_forecaster(fc.WINDOW, **fc.ATTENTION_SIZES)
    else:
        model, weights_model = fc.build_gru_forecaster(fc.WINDOW, fc.GRU_UNITS), None
    watch = Stopwatch()
    history = fc.fit_forecaster(model, (windows.train_inputs - mean) / std,
                                (windows.train_targets - mean) / std, seed=seed, **fc.TRAINING)
    timing = watch.elapsed()
    test_inputs = (windows.test_inputs - mean) / std
    predictions = model.predict(test_inputs, verbose=0) * std + mean
    record = {"model": name, "seed": seed, "parameters": model.count_params(),
              **errors(predictions, windows.test_targets),
              "final_train_loss": float(f"{history.history['loss'][-1]:.4g}"),
              "train_seconds": round(timing.wall, 1),
              "train_cpu_seconds": round(timing.cpu, 1)}
    if weights_model is not None:
        record["lag_weights"] = [round(float(w), 4)
                                 for w in fc.lag_weights(weights_model, test_inputs)]
    print(f"{name:9} seed {seed}  test RMSE {record['rmse']:6.2f}  MAE {record['mae']:6.2f}  "
          f"({record['train_seconds']:.0f} s, cpu {record['train_cpu_seconds']:.0f} s)",
          flush=True)
    return model, record


def ship(model, windows, scale, weights_dir):
    """Save the attention forecaster as float16 and score the shipped weights again."""
    mean, std = scale
    path = Path(weights_dir) / fc.SHIPPED_WEIGHTS
    model.save_weights(path)
    store_float16(path)
    shipped, _ = fc.build_attention_forecaster(fc.WINDOW, **fc.ATTENTION_SIZES)
    shipped.load_weights(path)
    predictions = shipped.predict((windows.test_inputs - mean) / std, verbose=0) * std + mean
    return {"file": f"weights/{fc.SHIPPED_WEIGHTS}", "bytes": path.stat().st_size,
            **errors(predictions, windows.test_targets)}


def summary(runs, baselines):
    table = {name: {"seeds": 0, "rmse_mean": result["rmse"], "rmse_std": 0.0,
                    "mae_mean": result["mae"]} for name, result in baselines.items()}
    for name in dict.fromkeys(run["model"] for run in runs):
        rmses = np.array([run["rmse"] for run in runs if run["model"] == name])
        maes = np.array([run["mae"] for run in runs if run["model"] == name])
        table[name] = {"seeds": len(rmses), "rmse_mean": round(float(rmses.mean()), 3),
                       "rmse_std": round(float(rmses.std(ddof=1)), 3) if len(rmses) > 1
                       else 0.0,
                       "rmse_min": round(float(rmses.min()), 3),
                       "rmse_max": round(float(rmses.max()), 3),
                       "mae_mean": round(float(maes.mean()), 3)}
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--no-weights", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    years, values = fc.load_sunspots()
    first_test_index = int(np.flatnonzero(years == fc.FIRST_TEST_YEAR)[0])
    windows = fc.forecast_windows(values, fc.WINDOW, first_test_index)
    scale = fc.training_scale(values, first_test_index)
    start, load_before = time.perf_counter(), os.getloadavg()
    intercept, coefficients = fc.fit_linear_autoregression(windows.train_inputs,
                                                           windows.train_targets)
    baselines = {
        "persistence": errors(fc.persistence_forecast(windows.test_inputs),
                              windows.test_targets),
        "linear_autoregression": errors(fc.linear_autoregression_forecast(
            windows.test_inputs, intercept, coefficients), windows.test_targets),
    }
    runs, shipped = [], None
    for name in ("attention", "gru"):
        for seed in args.seeds:
            model, record = run(name, seed, windows, scale)
            runs.append(record)
            if name == "attention" and seed == args.seeds[0] and not args.no_weights:
                shipped = {"seed": seed, **ship(model, windows, scale, args.weights_dir)}
    attention_lags = np.array([run["lag_weights"] for run in runs if run["model"] == "attention"])
    result = {
        "command": " ".join(["python scripts/sunspot_forecasts.py", *(argv or sys.argv[1:])]),
        "recipe": {"window": fc.WINDOW, "first_test_year": fc.FIRST_TEST_YEAR,
                   "attention": fc.ATTENTION_SIZES, "gru_units": fc.GRU_UNITS,
                   "training": fc.TRAINING},
        "split": {"train_targets": [int(years[windows.train_target_index[0]]),
                                    int(years[windows.train_target_index[-1]])],
                  "test_targets": [int(years[windows.test_target_index[0]]),
                                   int(years[windows.test_target_index[-1]])],
                  "train_pairs": len(windows.train_targets),
                  "test_pairs": len(windows.test_targets),
                  "scale": {"mean": round(scale[0], 4), "std": round(scale[1], 4)}},
        "linear_autoregression": {"intercept": round(intercept, 4),
                                  "coefficients_oldest_first": [round(float(a), 4)
                                                                for a in coefficients]},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
                    "keras": keras.__version__, "backend": keras.backend.backend(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - start, 1),
        "total_train_cpu_seconds": round(sum(run["train_cpu_seconds"] for run in runs), 1),
        "baselines": baselines,
        "summary": summary(runs, baselines),
        "lag_weights_mean": [round(float(w), 4) for w in attention_lags.mean(axis=0)],
        "shipped_attention": shipped,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result["summary"].items():
        print(f"{name:22} test RMSE {row['rmse_mean']:6.2f} ± {row['rmse_std']:.2f}  "
              f"MAE {row['mae_mean']:6.2f}  ({row['seeds']} seeds)")
    print(f"wrote {args.output} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
