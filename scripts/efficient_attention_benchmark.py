"""Lesson 11's benchmark: time and peak memory of exact and efficient attention against length n.

    .venv/bin/python scripts/efficient_attention_benchmark.py   # -> notebooks/results/11_...json
    .venv/bin/python scripts/efficient_attention_benchmark.py --lengths 256 1024 --out /tmp/b.json

One sequence of ``n`` queries, keys and values of one head of width ``d`` (``(1, 1, n, d)``,
self-attention, no projections: the attention alone), computed seven ways:

=====================  =================================================================  ======
method                 call                                                               memory
=====================  =================================================================  ======
exact, materialised    ``course_lib.attention.scaled_dot_product_attention``              n²
keras.ops              ``keras.ops.dot_product_attention`` (Keras's own, flash off: CPU)  n²
tiled exact            ``course_lib.efficient_attention.tiled_attention``                 n · b
tiled, graph mode      the same, by ``tf.function`` without XLA (TensorFlow only)         ?
block-sparse           ``block_sparse_attention`` (sliding window, global tokens)         n · w
linear                 ``linear_attention`` (Katharopoulos et al. 2020)                   n
causal linear          ``causal_linear_attention`` (the chunked recurrence)               n
=====================  =================================================================  ======

Time: every method compiled by XLA (``tf.function(jit_compile=True)`` / ``jax.jit``), except
the graph-mode tiled one (TensorFlow's graph executor alone runs independent blocks at the same
time, which costs memory: the table shows how much). The methods are interleaved in rounds so
that a change of the machine's load hits them alike; per method and length the JSON keeps the
median and minimum wall time and the median CPU time of this process (all threads) per call.
On a machine shared with other jobs trust the CPU times' ratios.

Memory: each (method, n) in a fresh subprocess, which calls the compiled function once (tracing
and warm-up), then again with its peak resident memory (Linux's ``VmHWM``) reset; what is
recorded is how far the peak rose above the resident memory before that second call: the
temporary tensors of one call. The child runs with ``MALLOC_MMAP_THRESHOLD_`` set so that every
large buffer is returned to the system when freed, so the warm-up call's buffers do not hide the
measured call's. A point whose n × n float32 scores alone would pass ``--max-scores-mb`` is not
run (its entry is null).

Also recorded, measured in a subprocess per backend: what ``keras.ops.dot_product_attention``
does when asked for ``flash_attention=True`` on this machine's TensorFlow and JAX.
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

from course_lib.attention import scaled_dot_product_attention  # noqa: E402
from course_lib.efficient_attention import (  # noqa: E402
    block_sparse_attention,
    causal_linear_attention,
    linear_attention,
    tiled_attention,
)

OUTPUT = (Path(__file__).resolve().parent.parent / "notebooks" / "results"
          / "11_efficient_attention_benchmark.json")
METHODS = ("exact", "keras_ops", "tiled", "tiled_graph", "block_sparse", "linear",
           "causal_linear")
LABELS = {"exact": "exact, materialised", "keras_ops": "keras.ops.dot_product_attention",
          "tiled": "tiled exact", "tiled_graph": "tiled exact, graph mode without XLA",
          "block_sparse": "block-sparse", "linear": "linear", "causal_linear": "causal linear"}
MATERIALISED = ("exact", "keras_ops")
DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384)


def make_method(name, args):
    """``f(q, k, v)`` for inputs ``(1, 1, n, d)``, returning the output ``(1, 1, n, d)``."""
    if name == "exact":
        return lambda q, k, v: scaled_dot_product_attention(q, k, v)[0]
    if name == "keras_ops":  # its layout is (batch, length, heads, depth)
        return lambda q, k, v: ops.swapaxes(ops.dot_product_attention(
            ops.swapaxes(q, 1, 2), ops.swapaxes(k, 1, 2), ops.swapaxes(v, 1, 2),
            flash_attention=False), 1, 2)
    if name in ("tiled", "tiled_graph"):
        return lambda q, k, v: tiled_attention(q, k, v, block_size=args.block)
    if name == "block_sparse":
        return lambda q, k, v: block_sparse_attention(q, k, v, window=args.window,
                                                      global_tokens=args.global_tokens)
    if name == "linear":
        return linear_attention
    if name == "causal_linear":
        return lambda q, k, v: causal_linear_attention(q, k, v, chunk_size=args.chunk)
    raise ValueError(f"Unknown method {name!r}; expected one of {METHODS}.")


def compile_call(function, xla=True):
    """``function`` compiled by XLA (``tf.function(jit_compile=True)``, ``jax.jit``), or with
    ``xla=False`` by TensorFlow's graph mode alone (``tf.function``)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=xla)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def inputs(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(ops.convert_to_tensor(rng.standard_normal((1, 1, n, d), dtype=np.float32))
                 for _ in range(3))


def scores_mb(n):
    return n * n * 4 / 2**20


def runs(name, n, args):
    """Whether this point is run: the materialised methods only while n × n fits the limit;
    graph mode without XLA only on TensorFlow."""
    if name == "tiled_graph" and keras.backend.backend() != "tensorflow":
        return False
    return name not in MATERIALISED or scores_mb(n) <= args.max_scores_mb


def compiled(name, args):
    return compile_call(make_method(name, args), xla=name != "tiled_graph")


def crossing(lengths, first, second):
    """The first length from which ``first(n) < second(n)`` at every longer measured length,
    or None when never; ``lengths[0]`` when already at the shortest one."""
    for index in range(len(lengths)):
        tail = [(a, b) for a, b in zip(first[index:], second[index:], strict=True)
                if a is not None and b is not None]
        if tail and all(a < b for a, b in tail):
            return lengths[index]
    return None


def time_methods(args):
    """``{method: {"median_ms": [...], "min_ms": [...], "cpu_ms": [...]}}``, None where not run."""
    functions = {name: compiled(name, args) for name in METHODS}
    results = {name: {"median_ms": [], "min_ms": [], "cpu_ms": []} for name in METHODS}
    for n in args.lengths:
        arguments = inputs(n, args.d)
        active = [name for name in METHODS if runs(name, n, args)]
        for name in active:  # trace and warm up
            ops.convert_to_numpy(functions[name](*arguments))
        repeats = args.repeats if n <= 2048 else max(3, args.repeats // 3)
        walls = {name: [] for name in active}
        cpus = {name: [] for name in active}
        for _ in range(repeats):
            for name in active:
                start, cpu_start = time.perf_counter(), time.process_time()
                ops.convert_to_numpy(functions[name](*arguments))
                walls[name].append(time.perf_counter() - start)
                cpus[name].append(time.process_time() - cpu_start)
        for name in METHODS:
            measured = name in active
            results[name]["median_ms"].append(
                round(1e3 * statistics.median(walls[name]), 3) if measured else None)
            results[name]["min_ms"].append(round(1e3 * min(walls[name]), 3) if measured else None)
            results[name]["cpu_ms"].append(
                round(1e3 * statistics.median(cpus[name]), 3) if measured else None)
        print(f"time n {n:6d}  " + "  ".join(
            f"{name} {results[name]['median_ms'][-1] or float('nan'):9.1f} ms"
            for name in METHODS) + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    return results


def _status_kib(field):
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status``, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def peak_memory_child(args):
    """In a fresh subprocess: one method at one length; print the MB that one call's peak
    resident memory rose above the resident memory before it (after a warm-up call)."""
    function = compiled(args.memory_child, args)
    arguments = inputs(args.lengths[0], args.d)
    ops.convert_to_numpy(function(*arguments))  # traces; its buffers are freed
    resident = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current size
    ops.convert_to_numpy(function(*arguments))
    print(json.dumps(round(max(0, _status_kib("VmHWM") - resident) / 1024, 1)))


def peak_memory(args):
    """``{method: [MB or None, ...]}``, one subprocess per method and length."""
    memory = {name: [] for name in METHODS}
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    for n in args.lengths:
        for name in METHODS:
            if not runs(name, n, args):
                memory[name].append(None)
                continue
            command = [sys.executable, __file__, "--memory-child", name, "--lengths", str(n),
                       *_shared_options(args)]
            output = subprocess.run(command, capture_output=True, text=True, check=True,
                                    env=environment).stdout
            memory[name].append(json.loads(output.strip().splitlines()[-1]))
        print(f"peak memory n {n:6d}  " + "  ".join(
            f"{name} {memory[name][-1] if memory[name][-1] is not None else '-':>7} MB"
            for name in METHODS), flush=True)
    return memory


def _shared_options(args):
    return ["--d", str(args.d), "--block", str(args.block), "--window", str(args.window),
            "--global-tokens", str(args.global_tokens), "--chunk", str(args.chunk)]


FLASH_PROBE = """
import os, numpy as np, keras
from keras import ops
q = np.random.default_rng(0).standard_normal((1, 16, 1, 8)).astype("float32")
print("flash attention enabled by default:", keras.config.is_flash_attention_enabled())
for flag in (True, None, False):
    try:
        out = ops.dot_product_attention(q, q, q, flash_attention=flag)
        print(f"flash_attention={flag}: ran, output shape {tuple(out.shape)}")
    except Exception as error:
        print(f"flash_attention={flag}: {type(error).__name__}: {error}")
"""


def flash_attention_probe():
    """``{backend: [lines]}``: what ``keras.ops.dot_product_attention`` does with
    ``flash_attention=True``, ``None`` (the default) and ``False``, each backend in a fresh
    process on this machine."""
    found = {}
    for backend in ("tensorflow", "jax"):
        environment = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
        result = subprocess.run([sys.executable, "-c", FLASH_PROBE], capture_output=True,
                                text=True, env=environment, check=True)
        found[backend] = result.stdout.strip().splitlines()
        print(f"{backend}: " + "; ".join(found[backend]), flush=True)
    return found


SHORT = {"exact": "exact", "keras_ops": "keras.ops", "tiled": "tiled", "tiled_graph": "tiled/graph",
         "block_sparse": "sparse", "linear": "linear", "causal_linear": "causal lin"}


def table(results):
    """Three tables, one row per length: median wall ms, median CPU ms, peak MB of one call."""
    lengths, time, memory = results["lengths"], results["time"], results["peak_memory_mb"]
    sections = [("median wall-clock ms of one call", time, "median_ms"),
                ("median CPU ms of one call (all threads)", time, "cpu_ms")]
    if memory:
        sections.append(("peak MB above the resident memory, one call in a fresh process",
                         memory, None))
    lines = []
    for title, source, key in sections:
        lines += ["", title, f"{'n':>6} " + " ".join(f"{SHORT[name]:>11}" for name in METHODS)]
        for index, n in enumerate(lengths):
            values = [(source[name][key] if key else source[name])[index] for name in METHODS]
            lines.append(f"{n:>6} " + " ".join(f"{'-':>11}" if value is None
                                               else f"{value:>11,.1f}" for value in values))
    return "\n".join(lines)


def targets(results):
    """The lesson's two targets, read from the measured table."""
    lengths, memory = results["lengths"], results["peak_memory_mb"]
    lines = []
    if memory and 8192 in lengths:
        index = lengths.index(8192)
        tiled, exact = memory["tiled"][index], memory["exact"][index]
        if tiled is not None and exact:
            lines.append(f"tiled exact at n = 8192: {tiled:,.0f} MB = {100 * tiled / exact:.1f} % "
                         f"of the materialised {exact:,.0f} MB (target < 10 %)")
    for name, clocks in results["crossover"].items():
        lines.append(f"{LABELS[name]} faster than exact, materialised, at every n from: "
                     f"{clocks['wall']} (wall time), {clocks['cpu']} (CPU time)"
                     + (" (target: from n <= 1024)" if name == "linear" else ""))
    return "\n".join(lines)


def crossovers(lengths, times):
    """Per efficient method, the first n from which it is faster than the materialised exact
    attention at every longer measured n (None: never), by wall and by CPU time."""
    return {name: {clock: crossing(lengths, times[name][key], times["exact"][key])
                   for clock, key in (("wall", "median_ms"), ("cpu", "cpu_ms"))}
            for name in ("tiled", "block_sparse", "linear", "causal_linear")}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=64, help="width of the head")
    parser.add_argument("--block", type=int, default=256, help="tiled attention's key block")
    parser.add_argument("--window", type=int, default=128, help="block-sparse window")
    parser.add_argument("--global-tokens", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=64, help="causal linear's chunk")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--max-scores-mb", type=float, default=1024.0,
                        help="skip the materialised methods where n × n float32 exceeds this")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.lengths = sorted(args.lengths)
    if args.memory_child:
        peak_memory_child(args)
        return 0

    load_before = os.getloadavg()[0]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    print(f"one head, d {args.d}, lengths {args.lengths}, tiled block {args.block}, window "
          f"{args.window}, {args.global_tokens} global tokens, chunk {args.chunk}, backend "
          f"{keras.backend.backend()}", flush=True)
    flash = flash_attention_probe()
    memory = None if args.no_memory else peak_memory(args)  # first, while this process is small
    times = time_methods(args)
    results = {
        "command": "python scripts/efficient_attention_benchmark.py" + "".join(
            f" {a}" for a in argv),
        "config": {"shape": [1, 1, "n", args.d], "d": args.d, "tiled_block": args.block,
                   "window": args.window, "global_tokens": args.global_tokens,
                   "causal_linear_chunk": args.chunk, "repeats": args.repeats,
                   "max_scores_mb": args.max_scores_mb,
                   "mode": "compiled by XLA (tf.function(jit_compile=True) / jax.jit), "
                           "forward pass, float32; tiled_graph: tf.function without XLA",
                   "methods": LABELS},
        "lengths": args.lengths,
        "time": times,
        "peak_memory_mb": memory,
        "score_tensor_mb": [round(scores_mb(n), 3) for n in args.lengths],
        "crossover": crossovers(args.lengths, times),
        "flash_attention": flash,
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
    print(table(results))
    print(targets(results))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
