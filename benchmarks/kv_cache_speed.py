"""Generation speed with and without a key/value cache (lesson 09), and the cache's memory.

    .venv/bin/python benchmarks/kv_cache_speed.py
    # -> notebooks/results/09_kv_cache_benchmark.json (a table is printed too)
    .venv/bin/python benchmarks/kv_cache_speed.py --new-tokens 64 --repeats 1 --out /tmp/kv.json

For each number of generated tokens, greedy generation from the same prompt is timed with the
cache (``course_lib.generation.Decoder.generate(use_cache=True)``: the prompt read once, then
one token per step) and without it (the model re-run on the whole sequence at every step),
compiled as ``Decoder(compiled=True)`` compiles them (TensorFlow): the cached step, whose
shapes never change, with XLA (``jit_compile=True``); the uncached forward pass, whose length
grows at every step, as a TensorFlow graph (XLA would compile one program per length). So that
the cache's own effect can be read apart from XLA's, the cached step is also timed compiled
like the uncached pass (a graph, column "cached, graph"). Compilation happens in a warm-up run
that is not timed; the variants are interleaved so that a change of the machine's load hits
all alike; the JSON keeps the median and the best wall time and the median CPU time of
``--repeats`` runs, and the tokens per second at the median. All must generate the same tokens
(checked).

The model has the architecture of lesson 09's shipped GPT (``course_lib.gpt.SIZES``), but
with ``--positions`` learned positions instead of ``context_length``, since a cache cannot slide
past a learned position table and 512 new tokens do not fit in the shipped model's context. Its
weights are untrained (seeded): the time of a step does not depend on the values of the
weights. The shipped model, trained, is timed too for the lengths that fit its context, as a
check of that claim.

Memory: the bytes of the cache tensor ``(batch, layers, 2, length, heads, head_dim)`` float32,
read from the tensor ``empty_cache`` allocates, against the length, for this model and, by
``course_lib.generation.cache_bytes``, for GPT-2 small (12 layers, d_model 768) for scale.
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
os.environ.setdefault("PYTHONHASHSEED", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from course_lib import generation, gpt  # noqa: E402
from course_lib.shakespeare import load_shakespeare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "ROMEO:\n"


def timed_generation(decoder, prompt, new_tokens, use_cache):
    """``(wall seconds, CPU seconds, tokens)`` of one greedy generation."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    tokens = decoder.generate(prompt, new_tokens, use_cache=use_cache, greedy=True)
    return time.perf_counter() - start_wall, time.process_time() - start_cpu, tokens


def variants(model):
    """``{name: (decoder, use_cache)}``: the cached step with XLA, the cached step as a graph,
    and the uncached forward pass as a graph."""
    decoder = generation.Decoder(model, compiled=True)
    graph_step = generation.Decoder(model, compiled=True)
    graph_step.step = generation.compile_function(model.call_with_cache, fixed_shapes=False)
    return {"cached": (decoder, True), "cached_graph": (graph_step, True),
            "uncached": (decoder, False)}


def measure(model_variants, prompt, new_tokens, repeats):
    """Median wall and CPU seconds of each variant, interleaved; the tokens must agree."""
    for decoder, use_cache in model_variants.values():              # compile, not timed
        decoder.generate(prompt, new_tokens, use_cache=use_cache, greedy=True)
    times = {name: ([], []) for name in model_variants}
    generated = {}
    for _ in range(repeats):
        for name, (decoder, use_cache) in model_variants.items():
            wall, cpu, tokens = timed_generation(decoder, prompt, new_tokens, use_cache)
            times[name][0].append(wall)
            times[name][1].append(cpu)
            generated[name] = tokens
    for name, tokens in generated.items():
        if not np.array_equal(tokens, generated["uncached"]):
            raise AssertionError(f"{name} and uncached generation differ at {new_tokens} tokens")
    row = {"new_tokens": new_tokens}
    for name in model_variants:
        wall = statistics.median(times[name][0])
        row[name] = {"wall_seconds": round(wall, 4), "best_wall_seconds": round(min(
                         times[name][0]), 4),
                     "cpu_seconds": round(statistics.median(times[name][1]), 4),
                     "tokens_per_second": round(new_tokens / wall, 1)}
    uncached = row["uncached"]
    row["speedup_wall"] = round(uncached["wall_seconds"] / row["cached"]["wall_seconds"], 2)
    row["speedup_cpu"] = round(uncached["cpu_seconds"] / row["cached"]["cpu_seconds"], 2)
    row["speedup_wall_graph"] = round(uncached["wall_seconds"]
                                      / row["cached_graph"]["wall_seconds"], 2)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--positions", type=int, default=1024,
                        help="learned positions of the timed (untrained) model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-lengths", type=int, nargs="+",
                        default=[64, 128, 256, 512, 1024])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "notebooks" / "results" / "09_kv_cache_benchmark.json")
    args = parser.parse_args(argv)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    load_before = os.getloadavg()[0]
    corpus = load_shakespeare()
    prompt = corpus.vocabulary.encode(PROMPT)
    sizes = {**gpt.SIZES, "context_length": args.positions}
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("This benchmark times TensorFlow's compilers (graph and XLA); run it "
                         "with KERAS_BACKEND=tensorflow.")
    model = gpt.build_gpt(len(corpus.vocabulary), seed=0, **sizes)
    print(f"model {sizes} ({model.count_params():,} parameters), untrained weights: the speed "
          f"of a step does not depend on them; prompt {len(prompt)} characters, batch 1, "
          f"greedy, median of {args.repeats} runs", flush=True)
    print(f"{'new':>5} {'cached (XLA)':>13} {'cached (graph)':>15} {'uncached (graph)':>17} "
          f"{'speed-up':>9} {'CPU-time':>9} {'same compiler':>14}", flush=True)
    print(f"{'tokens':>5} {'tok/s':>13} {'tok/s':>15} {'tok/s':>17} {'':>9} {'speed-up':>9} "
          f"{'speed-up':>14}", flush=True)
    rows = []
    model_variants = variants(model)
    for new_tokens in args.new_tokens:
        row = measure(model_variants, prompt, new_tokens, args.repeats)
        rows.append(row)
        print(f"{new_tokens:>6} {row['cached']['tokens_per_second']:>13.0f} "
              f"{row['cached_graph']['tokens_per_second']:>15.0f} "
              f"{row['uncached']['tokens_per_second']:>17.0f} {row['speedup_wall']:>8.1f}x "
              f"{row['speedup_cpu']:>8.1f}x {row['speedup_wall_graph']:>13.1f}x", flush=True)

    shipped_rows = []
    try:
        shipped = gpt.load_gpt(corpus)
    except FileNotFoundError:
        shipped = None
        print("(no shipped weights: the trained model is not timed)")
    if shipped is not None:
        shipped_variants = variants(shipped)
        fitting = [n for n in args.new_tokens if len(prompt) + n <= shipped.context_length]
        for new_tokens in fitting:
            row = measure(shipped_variants, prompt, new_tokens, args.repeats)
            shipped_rows.append(row)
            print(f"shipped (trained) model, {new_tokens} tokens: cached "
                  f"{row['cached']['tokens_per_second']:.0f} tok/s, uncached "
                  f"{row['uncached']['tokens_per_second']:.0f} tok/s, "
                  f"{row['speedup_wall']:.1f}x", flush=True)

    memory = {"lengths": args.memory_lengths,
              "this_model_bytes": [int(ops.convert_to_numpy(model.empty_cache(1, n)).nbytes)
                                   for n in args.memory_lengths],
              "gpt2_small_bytes": [generation.cache_bytes(12, 12, 64, n)
                                   for n in args.memory_lengths],
              "dtype": "float32", "batch_size": 1}
    per_token = memory["this_model_bytes"][0] // args.memory_lengths[0]
    sizes_mb = ", ".join(f"{n}: {size / 1e6:.2f} MB" for n, size in
                         zip(args.memory_lengths, memory["this_model_bytes"], strict=True))
    print(f"cache memory: {per_token:,} bytes per token for this model ({sizes_mb}); GPT-2 "
          f"small {memory['gpt2_small_bytes'][-1] / 1e6:.0f} MB at {args.memory_lengths[-1]} "
          f"tokens", flush=True)

    record = {
        "command": "python benchmarks/kv_cache_speed.py" + "".join(
            f" {a}" for a in (sys.argv[1:] if argv is None else argv)),
        "model": {**sizes, "parameters": model.count_params(), "weights": "untrained (seed 0)"},
        "prompt": PROMPT, "batch_size": 1, "decoding": "greedy",
        "compiled": {"cached": "tf.function(jit_compile=True), XLA",
                     "cached_graph": "tf.function, graph",
                     "uncached": "tf.function(reduce_retracing=True), graph"},
        "repeats": args.repeats,
        "rows": rows,
        "shipped_model_rows": shipped_rows,
        "memory": memory,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "wall_seconds": round(time.perf_counter() - wall_start, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"-> {args.out} ({record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} s "
          f"CPU, load average {record['load_average']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
