"""Lesson 10's ablation: positions, key/value heads and windows on lesson 09's GPT, and length
extrapolation.

    nice -n 19 .venv/bin/python scripts/long_context_ablation.py > ablation.log 2>&1 &
    # -> notebooks/results/10_long_context_ablation.json (a table is printed too)
    .venv/bin/python scripts/long_context_ablation.py --steps 20 --variants learned rotary \\
        --eval-windows 8 --out /tmp/ablation.json               # a quick try: seconds per step

Every variant is lesson 09's character-level GPT (``course_lib.gpt.GPT``: 4 pre-LN blocks, 4
heads, d_model 128, d_ff 512, trained by ``gpt.fit_gpt`` on Tiny Shakespeare) with one thing
changed from the baseline (learned absolute positions, multi-head attention, full causal
attention), all trained for the same steps on the same batches (seed 1):

==================  ===========================================================================
variant             change
==================  ===========================================================================
learned             none (lesson 09's scheme); a second run with seed 2 measures seed noise
rotary, alibi       positions: rotary embedding of queries and keys, or ALiBi's distance bias
gqa2, mqa1          2 key/value heads for the 4 query heads, or 1 (multi-query)
window16            each position attends to itself and the 15 before it
rotary_window16     rotary positions and the window (for the extrapolation)
==================  ===========================================================================

To stay within about 40 CPU minutes on 2 cores, the models train on windows of **64**
characters (lesson 09's: 128) for ``--steps`` steps of 16 windows (lesson 09's shipped model:
6,600 steps of 8 windows of 128), so they stop near 1.8–1.9 nats per character, well short of
lesson 09's 1.52: differences between variants are measured early in training.

For each variant the JSON records: the parameters (of the model with a 64-row table), the
validation loss on the whole validation text in windows of 64 (nats per character), the loss
at each position of windows of 64, 128 and 256 (**extrapolation**: the models never saw a
position past 63), the key/value cache in bytes per token and at 256 tokens (read from the
tensor ``empty_cache`` allocates, float32), and the speed of cached greedy generation (255 new
tokens after a one-character prompt, compiled with XLA, median of ``--repeats`` runs
interleaved across the variants, batch 1). A learned table needs a row for every position it
reads, so the learned variants are built with 256 rows of which training reaches the first 64:
past position 63 they read rows that never received a gradient, which is what running such a
model past its training length means.
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
from keras import ops  # noqa: E402

from course_lib import generation, gpt  # noqa: E402
from course_lib.shakespeare import load_shakespeare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "notebooks" / "results" / "10_long_context_ablation.json"
TRAIN_LENGTH = 64
EVAL_LENGTHS = (64, 128, 256)
SIZES = {"num_layers": 4, "num_heads": 4, "d_model": 128, "intermediate_dim": 512,
         "dropout": 0.0}
VARIANTS = {
    "learned": {"options": {}, "seed": 1, "label": "learned positions, MHA, full"},
    "learned_seed2": {"options": {}, "seed": 2, "label": "learned (seed 2)"},
    "rotary": {"options": {"position_scheme": "rotary"}, "seed": 1, "label": "RoPE"},
    "alibi": {"options": {"position_scheme": "alibi"}, "seed": 1, "label": "ALiBi"},
    "gqa2": {"options": {"num_key_value_heads": 2}, "seed": 1, "label": "GQA, 2 KV heads"},
    "mqa1": {"options": {"num_key_value_heads": 1}, "seed": 1, "label": "MQA, 1 KV head"},
    "window16": {"options": {"sliding_window": 16}, "seed": 1, "label": "sliding window 16"},
    "rotary_window16": {"options": {"position_scheme": "rotary", "sliding_window": 16},
                        "seed": 1, "label": "RoPE + window 16"},
}
PROMPT = "\n"
GENERATED = max(EVAL_LENGTHS) - len(PROMPT)


def build(vocabulary_size, options, seed, positions):
    """The variant's GPT: ``positions`` rows in a learned table (training reads the first
    ``TRAIN_LENGTH``); ``context_length`` is the training length otherwise. Every variant's
    attention is ``GroupedQueryAttention`` (4 key/value heads unless the variant says
    otherwise: multi-head attention), so that generation speeds compare one implementation."""
    options = {"num_key_value_heads": SIZES["num_heads"], **options}
    learned = options.get("position_scheme", "learned") == "learned"
    return gpt.build_gpt(vocabulary_size, seed=seed, **SIZES, **options,
                         context_length=positions if learned else TRAIN_LENGTH)


def generation_speed(models, prompt, repeats):
    """Median tokens per second of cached greedy generation for each model, interleaved."""
    decoders = {name: generation.Decoder(model, compiled=True) for name, model in models.items()}
    for decoder in decoders.values():                                  # compile, not timed
        decoder.generate(prompt, GENERATED, greedy=True)
    seconds = {name: [] for name in decoders}
    for _ in range(repeats):
        for name, decoder in decoders.items():
            start = time.perf_counter()
            decoder.generate(prompt, GENERATED, greedy=True)
            seconds[name].append(time.perf_counter() - start)
    return {name: round(GENERATED / statistics.median(times), 1)
            for name, times in seconds.items()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-windows", type=int, default=128,
                        help="validation windows for the curve (the final losses use all)")
    parser.add_argument("--repeats", type=int, default=3, help="generation timings")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    load_before = os.getloadavg()[0]
    corpus = load_shakespeare()
    vocabulary_size = len(corpus.vocabulary)
    training = {**gpt.TRAINING, "steps": args.steps, "batch_size": args.batch_size,
                "train_length": TRAIN_LENGTH}
    print(f"sizes {SIZES}, trained on windows of {TRAIN_LENGTH}, {args.steps} steps of "
          f"{args.batch_size}", flush=True)

    models, records = {}, []
    for name in args.variants:
        variant = VARIANTS[name]
        model = build(vocabulary_size, variant["options"], variant["seed"], max(EVAL_LENGTHS))
        parameters = build(vocabulary_size, variant["options"], 0,
                           TRAIN_LENGTH).count_params()

        def report(record, name=name):
            print(f"  {name:16s} step {record['step']:5d}  train {record['train_loss']:.3f}  "
                  f"validation {record['validation_loss']:.3f}  ({record['cpu_seconds']:.0f} s "
                  f"CPU; load {os.getloadavg()[0]:.1f})", flush=True)

        history, times = gpt.fit_gpt(
            model, corpus.train_ids, args.steps, batch_size=args.batch_size,
            seed=variant["seed"], validation_ids=corpus.validation_ids,
            eval_every=args.eval_every, eval_windows=args.eval_windows, on_evaluation=report,
            length=TRAIN_LENGTH)
        by_position = {str(length): gpt.validation_loss_by_position(
            model, corpus.validation_ids, length) for length in EVAL_LENGTHS}
        cache = ops.convert_to_numpy(model.empty_cache(1, max(EVAL_LENGTHS)))
        record = {
            "name": name, "label": variant["label"], "options": variant["options"],
            "seed": variant["seed"], "parameters": parameters,
            "validation_loss": round(float(by_position[str(TRAIN_LENGTH)].mean()), 4),
            "loss_by_position": {length: [round(float(x), 4) for x in losses]
                                 for length, losses in by_position.items()},
            "mean_loss_at": {length: round(float(losses.mean()), 4)
                             for length, losses in by_position.items()},
            "kv_cache_bytes_per_token": int(cache.nbytes // cache.shape[3]),
            "kv_cache_bytes_at_256": int(cache.nbytes),
            "curve": {"step": history["step"],
                      "train_loss": [round(x, 4) for x in history["train_loss"]],
                      "validation_loss": [round(x, 4) for x in history["validation_loss"]]},
            "train_cpu_seconds": round(times.cpu, 1),
            "train_wall_seconds": round(times.wall, 1),
        }
        print(f"{name}: validation loss {record['validation_loss']:.4f} at {TRAIN_LENGTH}; "
              f"mean loss at 128: {record['mean_loss_at']['128']:.3f}, at 256: "
              f"{record['mean_loss_at']['256']:.3f}; {parameters:,} parameters; "
              f"cache {record['kv_cache_bytes_per_token']:,} B/token", flush=True)
        records.append(record)
        models[name] = model
        # what is done so far, in case the run stops before the end
        partial = args.out.with_name(args.out.name + ".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"variants": records}, indent=1) + "\n", encoding="utf-8")

    prompt = corpus.vocabulary.encode(PROMPT)
    speeds = generation_speed(models, prompt, args.repeats)
    for record in records:
        record["generation_tokens_per_second"] = speeds[record["name"]]

    print(f"\n{'variant':18s} {'params':>8s} {'val loss':>9s} {'@128':>7s} {'@256':>7s} "
          f"{'KV B/token':>11s} {'KV @256':>9s} {'tok/s':>7s}")
    for record in records:
        print(f"{record['name']:18s} {record['parameters']:>8,d} "
              f"{record['validation_loss']:>9.3f} {record['mean_loss_at']['128']:>7.3f} "
              f"{record['mean_loss_at']['256']:>7.3f} {record['kv_cache_bytes_per_token']:>11,d}"
              f" {record['kv_cache_bytes_at_256']:>9,d} "
              f"{record['generation_tokens_per_second']:>7.0f}", flush=True)

    result = {
        "command": "python scripts/long_context_ablation.py" + "".join(f" {a}" for a in argv),
        "sizes": SIZES, "training": training, "train_length": TRAIN_LENGTH,
        "eval_lengths": list(EVAL_LENGTHS),
        "validation": "the whole validation text (the last 10 %) in back-to-back windows",
        "generation": {"prompt": PROMPT, "new_tokens": GENERATED, "batch_size": 1,
                       "decoding": "greedy, cached, XLA-compiled step",
                       "repeats": args.repeats, "statistic": "median"},
        "variants": records,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_minutes": round((time.process_time() - cpu_start) / 60, 2),
        "wall_minutes": round((time.perf_counter() - wall_start) / 60, 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    partial.unlink()
    print(f"-> {args.out}\ntotal: {result['cpu_minutes']} CPU minutes, {result['wall_minutes']} "
          f"wall minutes (load average {result['load_average']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
