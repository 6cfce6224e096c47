"""Lesson 08's measured version of Vaswani et al.'s Table 1: time and memory against length n.

    .venv/bin/python scripts/complexity_benchmark.py   # -> notebooks/results/08_complexity.json
    .venv/bin/python scripts/complexity_benchmark.py --lengths 16 64 256 --out /tmp/c.json

Three layers of the same width d map a batch ``(B, n, d)`` to ``(B, n, d)``:

================  =======================================  =================  ==============
layer             multiply-adds per sequence               sequential steps   longest path
================  =======================================  =================  ==============
self-attention    ``4 n d²`` (Q, K, V, output projections)  O(1)               O(1)
                  ``+ 2 n² d`` (scores, weighted sum)
GRU               ``3 n (d² + d²)`` (three gates, input     O(n)               O(n)
                  and recurrent weights)
Conv1D, kernel k  ``k n d²``                                O(1)               O(n / k)
================  =======================================  =================  ==============

(``course_lib.layers.MultiHeadAttention`` with ``--heads`` heads of ``d / heads`` each;
``keras.layers.GRU(d, return_sequences=True)``; ``keras.layers.Conv1D(d, k, padding="same")``.)

For every n the forward pass of each layer is compiled (``tf.function`` / ``jax.jit``) and timed
``--repeats`` times, the three layers interleaved so that a change of the machine's load hits
them alike; the JSON keeps the median and the minimum wall time, and the median CPU time of
this process (all threads) per call. Memory: for each layer a fresh subprocess runs the lengths
in increasing order and records, for each call, how far its peak resident memory rose above the
resident memory before the call (Linux's ``VmHWM``, reset before each call): what the pass
needs for its temporary tensors, within the allocator's rounding; beside it the size of the ``B
× heads × n × n`` float32 score tensor, which self-attention must hold and the other two never
form. The crossover lengths (where the self-attention curve meets the GRU's and the Conv1D's,
interpolated on log–log axes) are computed from the medians and stored too.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from course_lib.layers import MultiHeadAttention  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "08_complexity.json"
LAYERS = ("self_attention", "gru", "conv1d")
DEFAULT_LENGTHS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def make_layer(name, d, heads, kernel_size):
    """``f(x)`` for ``x (B, n, d)``, built and with fixed random weights."""
    keras.utils.set_random_seed(0)
    if name == "self_attention":
        layer = MultiHeadAttention(heads, d // heads)
        return lambda x: layer(x, x)
    if name == "gru":
        return keras.layers.GRU(d, return_sequences=True)
    if name == "conv1d":
        return keras.layers.Conv1D(d, kernel_size, padding="same")
    raise ValueError(f"Unknown layer {name!r}; expected one of {LAYERS}.")


def compile_call(function):
    """The backend's graph compiler around ``function`` (TensorFlow or JAX), else as is."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def multiply_adds(name, n, d, kernel_size):
    """Multiply-adds of one sequence's forward pass (the module docstring's formulas)."""
    return {"self_attention": 4 * n * d * d + 2 * n * n * d, "gru": 6 * n * d * d,
            "conv1d": kernel_size * n * d * d}[name]


def crossing(lengths, first, second):
    """The length beyond which ``first(n)`` stays above ``second(n)``: the *last* place where
    ``first`` goes from below ``second`` to above it, interpolated between the two measured
    lengths on log–log axes. ``"below"`` or ``"above"`` when ``first`` stays on one side over
    the whole range (short lengths are noisy: a crossing among them does not count once the
    curves cross back)."""
    gap = np.log(np.asarray(first)) - np.log(np.asarray(second))
    if np.all(gap < 0):
        return "below"
    if gap[-1] < 0:
        return None  # below at the longest length after being above: no clean crossover
    below = np.flatnonzero(gap < 0)
    if len(below) == 0:
        return "above"
    i = int(below[-1])
    fraction = -gap[i] / (gap[i + 1] - gap[i])
    log_n = np.log(lengths[i]) + fraction * (np.log(lengths[i + 1]) - np.log(lengths[i]))
    return float(np.exp(log_n))


def time_layers(args):
    """``{layer: {"median_ms": [...], "min_ms": [...], "cpu_ms": [...]}}`` over the lengths."""
    rng = np.random.default_rng(0)
    functions = {name: compile_call(make_layer(name, args.d, args.heads, args.kernel_size))
                 for name in LAYERS}
    results = {name: {"median_ms": [], "min_ms": [], "cpu_ms": []} for name in LAYERS}
    for n in args.lengths:
        x = ops.convert_to_tensor(rng.standard_normal((args.batch, n, args.d), dtype=np.float32))
        for function in functions.values():  # trace and warm up
            for _ in range(2):
                ops.convert_to_numpy(function(x))
        walls = {name: [] for name in LAYERS}
        cpus = {name: [] for name in LAYERS}
        for _ in range(args.repeats):
            for name, function in functions.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                ops.convert_to_numpy(function(x))
                walls[name].append(time.perf_counter() - start)
                cpus[name].append(time.process_time() - cpu_start)
        for name in LAYERS:
            results[name]["median_ms"].append(round(1e3 * statistics.median(walls[name]), 4))
            results[name]["min_ms"].append(round(1e3 * min(walls[name]), 4))
            results[name]["cpu_ms"].append(round(1e3 * statistics.median(cpus[name]), 4))
        print(f"n {n:5d}  " + "  ".join(
            f"{name} {results[name]['median_ms'][-1]:9.2f} ms" for name in LAYERS)
            + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    return results


def _status_kib(field):
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status``, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def peak_memory_child(args):
    """In a subprocess: one layer, lengths in increasing order; print JSON of each call's peak
    resident memory above the resident memory just before it (MB).

    Linux keeps a peak (``VmHWM``) per process, and writing 5 to ``/proc/self/clear_refs``
    resets it to the current size, so each call's own peak can be read. (``ru_maxrss`` would
    not do: a child starts with its parent's peak, inherited through fork and exec.)
    """
    function = compile_call(make_layer(args.memory_child, args.d, args.heads, args.kernel_size))
    rng = np.random.default_rng(0)
    growth = []
    for n in [args.lengths[0], *args.lengths]:  # the first call traces: not counted
        x = ops.convert_to_tensor(rng.standard_normal((args.batch, n, args.d),
                                                      dtype=np.float32))
        resident = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        ops.convert_to_numpy(function(x))
        growth.append(round(max(0, _status_kib("VmHWM") - resident) / 1024, 1))
    print(json.dumps(growth[1:]))


def peak_memory(args):
    """``{layer: [MB, ...]}`` from one subprocess per layer (see :func:`peak_memory_child`)."""
    memory = {}
    for name in LAYERS:
        command = [sys.executable, __file__, "--memory-child", name, "--d", str(args.d),
                   "--batch", str(args.batch), "--heads", str(args.heads), "--kernel-size",
                   str(args.kernel_size), "--lengths", *map(str, args.lengths)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        memory[name] = json.loads(output.strip().splitlines()[-1])
        print(f"peak memory of one call, {name}: {memory[name]} MB", flush=True)
    return memory


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=128, help="width of every layer")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--memory-child", choices=LAYERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.d % args.heads:
        parser.error(f"--d {args.d} is not divisible by --heads {args.heads}")
    args.lengths = sorted(args.lengths)
    if args.memory_child:
        peak_memory_child(args)
        return 0

    load_before = os.getloadavg()[0]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    print(f"B {args.batch}, d {args.d}, {args.heads} heads, kernel {args.kernel_size}, "
          f"lengths {args.lengths}, {args.repeats} repeats, backend "
          f"{keras.backend.backend()}", flush=True)
    memory = None if args.no_memory else peak_memory(args)  # first, while this process is small
    times = time_layers(args)
    load_after_timing = os.getloadavg()[0]
    medians = {name: times[name]["median_ms"] for name in LAYERS}
    results = {
        "command": "python scripts/complexity_benchmark.py" + "".join(f" {a}" for a in argv),
        "config": {"batch": args.batch, "d": args.d, "heads": args.heads,
                   "kernel_size": args.kernel_size, "repeats": args.repeats,
                   "mode": "compiled (tf.function / jax.jit), forward pass, float32",
                   "layers": {"self_attention": f"course_lib.layers.MultiHeadAttention("
                                                f"{args.heads}, {args.d // args.heads})(x, x)",
                              "gru": f"keras.layers.GRU({args.d}, return_sequences=True)",
                              "conv1d": f"keras.layers.Conv1D({args.d}, {args.kernel_size}, "
                                        f"padding='same')"}},
        "lengths": args.lengths,
        "time": times,
        "peak_memory_mb": memory,
        "score_tensor_mb": [round(args.batch * args.heads * n * n * 4 / 2**20, 3)
                            for n in args.lengths],
        "multiply_adds_per_sequence": {name: [multiply_adds(name, n, args.d, args.kernel_size)
                                              for n in args.lengths] for name in LAYERS},
        "crossover": {
            "self_attention_vs_gru_measured": crossing(args.lengths, medians["self_attention"],
                                                       medians["gru"]),
            "self_attention_vs_conv1d_measured": crossing(
                args.lengths, medians["self_attention"], medians["conv1d"]),
            "self_attention_vs_gru_multiply_adds": float(args.d),
            "self_attention_vs_conv1d_multiply_adds": "above (4nd² alone exceeds knd² for "
                                                      "k < 4)" if args.kernel_size < 4 else
                                                      float(args.d * (args.kernel_size - 4) / 2),
        },
        "load_average": [round(load_before, 2), round(load_after_timing, 2),
                         round(os.getloadavg()[0], 2)],
        "seconds": {"wall": round(time.perf_counter() - wall_start, 1),
                    "cpu": round(time.process_time() - cpu_start, 1)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"crossover: {results['crossover']}\n-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
