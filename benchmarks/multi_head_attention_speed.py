"""Speed of our MultiHeadAttention against keras.layers.MultiHeadAttention, on the CPU.

    python benchmarks/multi_head_attention_speed.py            # batch 4, d_model 512, 8 heads
    python benchmarks/multi_head_attention_speed.py --lengths 128 512 --repeats 5

For each sequence length n it times a self-attention forward pass of both layers (same weights,
copied with ``copy_weights_from``), interleaving the two so that a change in machine load hits
both alike, and reports the median. It also times a float32 matmul in the same run, so the
attention's achieved GFLOP/s can be read as a share of what this machine's matmul reaches.

FLOPs of one forward pass (multiply-add = 2): four projections ``4 * 2 B n d^2`` plus the scores
and the weighted sum ``2 * 2 B n^2 d``. Softmax and bias additions are not counted.

Each call is timed twice: wall-clock time, and the CPU time of this process (all threads).
On a machine shared with other jobs the wall clock includes time spent waiting for a core; the
CPU time does not, so the CPU ratio is the one to trust there, the wall ratio on an idle machine.

Modes: ``eager`` calls the layer directly, as a lesson does; ``compiled`` wraps the call in the
backend's graph compiler (``tf.function`` / ``jax.jit``), as ``model.fit`` does.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from course_lib.layers import MultiHeadAttention  # noqa: E402


def compile_call(function):
    """The backend's graph compiler around ``function``; TensorFlow and JAX only."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if backend == "jax":
        import jax

        return jax.jit(function)
    raise SystemExit(f"--mode compiled supports the tensorflow and jax backends, not {backend}")


def seconds_per_call(function, argument, repeats):
    """Median ``(wall, cpu)`` seconds of ``function(argument)`` over ``repeats`` calls, after one
    warm-up call."""
    ops.convert_to_numpy(function(argument))
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        ops.convert_to_numpy(function(argument))  # forces the result, also on async backends
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def matmul_gflops(size, repeats):
    """GFLOP/s of a float32 ``(size, size) @ (size, size)`` product on this machine."""
    rng = np.random.default_rng(0)
    a = ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    b = ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    wall_seconds, _ = seconds_per_call(lambda x: ops.matmul(x, b), a, repeats)
    return 2 * size**3 / wall_seconds / 1e9


def attention_flops(batch, length, d_model):
    return 8 * batch * length * d_model**2 + 4 * batch * length**2 * d_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mode", choices=["eager", "compiled"], default="eager")
    args = parser.parse_args(argv)
    if args.d_model % args.heads:
        parser.error(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")

    keras.utils.set_random_seed(0)
    key_dim = args.d_model // args.heads
    theirs = keras.layers.MultiHeadAttention(args.heads, key_dim)
    ours = MultiHeadAttention(args.heads, key_dim)
    warmup = np.zeros((1, 4, args.d_model), np.float32)
    theirs(warmup, warmup)
    ours.copy_weights_from(theirs)

    def call_theirs(x):
        return theirs(x, x)

    def call_ours(x):
        return ours(x, x)

    if args.mode == "compiled":
        call_theirs, call_ours = compile_call(call_theirs), compile_call(call_ours)

    peak = matmul_gflops(2048, args.repeats)
    print(f"backend {keras.backend.backend()}, mode {args.mode}, batch {args.batch}, "
          f"d_model {args.d_model}, heads {args.heads}, median of {args.repeats} runs; "
          f"float32 matmul 2048^3: {peak:.1f} GFLOP/s\n")
    header = (f"{'n':>6} {'keras ms':>10} {'ours ms':>10} {'ours/keras':>11} "
              f"{'CPU ours/keras':>15} {'ours GFLOP/s':>13} {'% of matmul':>12}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(1)
    ratios = {}
    for length in args.lengths:
        x = ops.convert_to_tensor(
            rng.standard_normal((args.batch, length, args.d_model), dtype=np.float32))
        repeats = max(3, args.repeats if length <= 1024 else args.repeats // 2)
        keras_times, our_times = [], []
        for _ in range(repeats):  # interleaved rounds: load changes hit both layers alike
            keras_times.append(seconds_per_call(call_theirs, x, 1))
            our_times.append(seconds_per_call(call_ours, x, 1))
        keras_wall, keras_cpu = (statistics.median(t) for t in zip(*keras_times, strict=True))
        our_wall, our_cpu = (statistics.median(t) for t in zip(*our_times, strict=True))
        gflops = attention_flops(args.batch, length, args.d_model) / our_wall / 1e9
        ratios[length] = (our_wall / keras_wall, our_cpu / keras_cpu)
        print(f"{length:>6} {1e3 * keras_wall:>10.1f} {1e3 * our_wall:>10.1f} "
              f"{ratios[length][0]:>11.2f} {ratios[length][1]:>15.2f} {gflops:>13.1f} "
              f"{100 * gflops / peak:>11.0f}%")
    if 512 in ratios:
        wall_ratio, cpu_ratio = ratios[512]
        verdict = "ok" if min(wall_ratio, cpu_ratio) <= 1.1 else "SLOWER than the 1.1x goal"
        print(f"\nat n = 512: ours takes {wall_ratio:.2f}x Keras's wall time and {cpu_ratio:.2f}x "
              f"its CPU time ({verdict}; on a shared machine trust the CPU ratio)")
        return 0 if min(wall_ratio, cpu_ratio) <= 1.1 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
