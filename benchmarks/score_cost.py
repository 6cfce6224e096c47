"""Lesson 04's cost table, measured: the time to score every query against every key.

    .venv/bin/python benchmarks/score_cost.py   # -> notebooks/results/04_score_cost.json
    .venv/bin/python benchmarks/score_cost.py --depths 16 64 --repeats 11 --out /tmp/s.json

For a batch of ``B`` sentences with ``Tq = Tk = T`` positions and depth ``d`` (and ``u = d``
hidden units where a score has them), it times the score functions of ``course_lib.attention``:

===========  ============================  ===================================================
score        ``e_ij``                      work
===========  ============================  ===================================================
dot          ``q_i · k_j``                 one ``(T × d) · (d × T)`` product per sentence
general      ``q_i W k_j``                 the same, after mapping the queries (``d × d``)
concat       ``v · tanh(W [q_i; k_j])``    a ``(B, T, T, u)`` tensor through ``tanh``
additive     ``v · tanh(W1 q_i + W2 k_j)``  the same tensor, two projections
location     ``(W h_t)_j``                 one ``(T × d) · (d × S)`` product; the keys unused
===========  ============================  ===================================================

Each function is called once to warm up, then ``--repeats`` times, the five interleaved so that a
change in the machine's load hits them alike; the JSON keeps the median wall time and the median
CPU time of this process per call, the ratios to dot measured in the same run, and the load. The
lesson plots the file and checks what it says; nothing in the lesson times anything.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from course_lib.attention import additive_score, concat_score, dot_score, general_score  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "04_score_cost.json"
SCORES = ("dot", "general", "concat", "additive", "location")
LEARNED = {"dot": "none", "general": "W (d×d)", "concat": "W (2d×u), v (u)",
           "additive": "W1, W2 (d×u), v (u)", "location": "W (d×S_max)"}


def score_calls(batch, length, depth, rng):
    """``{score: (function, arguments)}`` on random inputs of the given sizes."""

    def tensor(*shape):
        return ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))

    query, keys = tensor(batch, length, depth), tensor(batch, length, depth)
    W, W1, W2, v = tensor(depth, depth), tensor(depth, depth), tensor(depth, depth), tensor(depth)
    return {"dot": (dot_score, (query, keys)),
            "general": (general_score, (query, keys, W)),
            "concat": (concat_score, (query, keys, ops.concatenate([W1, W2], axis=0), v)),
            "additive": (additive_score, (query, keys, W1, W2, v)),
            "location": (ops.matmul, (query, tensor(depth, length)))}


def timed(function, arguments):
    """``(wall seconds, CPU seconds)`` of one call, waiting for its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    ops.convert_to_numpy(function(*arguments))
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(depths, batch, length, repeats, seed=0):
    rng = np.random.default_rng(seed)
    wall_ms = {name: [] for name in SCORES}
    cpu_ms = {name: [] for name in SCORES}
    for depth in depths:
        calls = score_calls(batch, length, depth, rng)
        for function, arguments in calls.values():
            timed(function, arguments)  # warm-up: the first call caches kernels
        samples = {name: [] for name in SCORES}
        for _ in range(repeats):
            for name, (function, arguments) in calls.items():
                samples[name].append(timed(function, arguments))
        for name in SCORES:
            wall_ms[name].append(round(1e3 * statistics.median(s[0] for s in samples[name]), 4))
            cpu_ms[name].append(round(1e3 * statistics.median(s[1] for s in samples[name]), 4))
    return wall_ms, cpu_ms


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    wall_ms, cpu_ms = measure(args.depths, args.batch, args.length, args.repeats)
    ratios = {kind: {name: [round(mine / dot, 2) for mine, dot in zip(values[name],
                                                                      values["dot"], strict=True)]
                     for name in SCORES}
              for kind, values in (("wall", wall_ms), ("cpu", cpu_ms))}

    print(f"B={args.batch}, Tq=Tk={args.length}, u=d; median of {args.repeats} interleaved "
          f"calls, milliseconds (ratio to dot)")
    print(f"{'score':>9} {'learned':>22}" + "".join(f"{f'd={d}':>17}" for d in args.depths))
    for name in SCORES:
        cells = "".join(f"{ms:9.3f} (×{ratio:4.1f})"
                        for ms, ratio in zip(wall_ms[name], ratios["wall"][name], strict=True))
        print(f"{name:>9} {LEARNED[name]:>22}{cells}")
    results = {
        "command": "python benchmarks/score_cost.py" + "".join(f" {a}" for a in argv),
        "config": {"batch": args.batch, "length": args.length, "depths": args.depths,
                   "units": "u = d", "repeats": args.repeats, "mode": "eager, float32"},
        "learned": LEARNED,
        "median_wall_ms": wall_ms,
        "median_cpu_ms": cpu_ms,
        "ratio_to_dot": ratios,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "seconds": {"wall": round(time.perf_counter() - wall_start, 1),
                    "cpu": round(time.process_time() - cpu_start, 1)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"load average {results['load_average'][0]} → {results['load_average'][1]} on "
          f"{os.cpu_count()} cores -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
