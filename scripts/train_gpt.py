"""Train lesson 09's character-level GPT on Tiny Shakespeare and write the weights it loads.

    .venv/bin/python scripts/train_gpt.py                     # the shipped weights (defaults)
    nice .venv/bin/python scripts/train_gpt.py > train_gpt.log 2>&1 &      # unattended
    .venv/bin/python scripts/train_gpt.py --steps 150 --eval-every 50 --out /tmp/gpt
                                                # a short run: CPU seconds per step, early loss

The model is ``course_lib.gpt.GPT`` with ``gpt.SIZES``, trained by ``gpt.fit_gpt`` with
``gpt.TRAINING`` (next-character cross-entropy on random windows of the first 90 % of the text,
AdamW, warm-up then cosine decay, compiled with XLA). Every option overrides one entry of
``SIZES`` or ``TRAINING``.

Written to ``--out`` (default: the repository):

- ``weights/gpt_shakespeare.weights.h5``: the weights as gzip-compressed float16 without the
  optimizer's state; they load into the float32 model, and the final validation loss is
  measured *after* that round trip, on a fresh model loaded from the file;
- ``notebooks/results/09_gpt_training.json``: the command, the recipe, the parameters, the
  validation loss (nats per character) against the step (estimated on ``--eval-windows``
  windows of the validation text), the final loss on the whole validation text, samples of
  text at a few steps of training, and the CPU and wall-clock seconds with the load average.

The validation text (the last 10 %) is nanoGPT's split and its "val loss"; there is no third
split. The recipe was chosen by three short runs of 4.5 CPU minutes (``--cpu-minutes 4.5``)
with batches of 32, 16 and 8 windows, compared at equal CPU time (docs/gpt_weights.md), not by
a search over the validation loss. ``--seed`` fixes the initial weights, the batches
and the samples; TensorFlow's op determinism stays off, because Keras then refuses XLA
(``jit_compile=True``), which the recipe uses. ``--cpu-minutes`` is a safety budget:
training stops after the step that exceeds it (the schedule still assumes ``--steps``).
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

from course_lib import gpt  # noqa: E402
from course_lib.generation import Decoder  # noqa: E402
from course_lib.shakespeare import load_shakespeare  # noqa: E402
from course_lib.shipped_weights import store_float16  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PROMPT = "ROMEO:\n"
SAMPLE_LENGTH = 120
SAMPLE_TEMPERATURE = 0.8
SAMPLE_SEED = 9


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sizes, training = gpt.SIZES, gpt.TRAINING
    parser.add_argument("--context", type=int, default=sizes["context_length"])
    parser.add_argument("--layers", type=int, default=sizes["num_layers"])
    parser.add_argument("--heads", type=int, default=sizes["num_heads"])
    parser.add_argument("--d-model", type=int, default=sizes["d_model"])
    parser.add_argument("--ff", type=int, default=sizes["intermediate_dim"])
    parser.add_argument("--dropout", type=float, default=sizes["dropout"])
    parser.add_argument("--steps", type=int, default=training["steps"])
    parser.add_argument("--batch-size", type=int, default=training["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=training["learning_rate"])
    parser.add_argument("--warmup-steps", type=int, default=training["warmup_steps"])
    parser.add_argument("--weight-decay", type=float, default=training["weight_decay"])
    parser.add_argument("--clipnorm", type=float, default=training["clipnorm"])
    parser.add_argument("--seed", type=int, default=training["seed"])
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--eval-windows", type=int, default=128,
                        help="validation windows for the curve (the final loss uses all)")
    parser.add_argument("--sample-at", type=int, nargs="*", default=[300, 1200, 3000],
                        help="steps after which a sample is written (also before training "
                             "and after the last step)")
    parser.add_argument("--cpu-minutes", type=float, default=27.0,
                        help="CPU minutes of training steps after which training stops")
    parser.add_argument("--out", type=Path, default=ROOT,
                        help="root of weights/ and notebooks/results/ (default: the repository)")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    corpus = load_shakespeare()
    vocabulary = corpus.vocabulary
    print("corpus:", json.dumps(corpus.summary()), flush=True)
    sizes = {"context_length": args.context, "num_layers": args.layers,
             "num_heads": args.heads, "d_model": args.d_model, "intermediate_dim": args.ff,
             "dropout": args.dropout}
    training = {"steps": args.steps, "batch_size": args.batch_size,
                "learning_rate": args.learning_rate, "warmup_steps": args.warmup_steps,
                "weight_decay": args.weight_decay, "clipnorm": args.clipnorm,
                "seed": args.seed}
    model = gpt.build_gpt(len(vocabulary), seed=args.seed, **sizes)
    print(f"sizes {sizes}\ntraining {training}\n{model.count_params():,} parameters",
          flush=True)

    decoder = Decoder(model, compiled=True)   # tf.function reads the variables as they are now
    prompt = vocabulary.encode(SAMPLE_PROMPT)

    def sample():
        ids = decoder.generate(prompt, SAMPLE_LENGTH, temperature=SAMPLE_TEMPERATURE,
                               seed=SAMPLE_SEED)
        return vocabulary.decode(ids[0])

    samples = {"0": sample()}
    load_before = os.getloadavg()[0]

    def report(record):
        line = (f"  step {record['step']:5d}/{args.steps}  train loss "
                f"{record['train_loss']:.3f}  validation loss {record['validation_loss']:.3f}"
                f"  ({record['cpu_seconds']:.0f} s CPU, {record['wall_seconds']:.0f} s wall of "
                f"training; load {os.getloadavg()[0]:.1f})")
        print(line, flush=True)
        if record["step"] in args.sample_at:
            samples[str(record["step"])] = sample()
            print("    " + samples[str(record["step"])].replace("\n", "\n    "), flush=True)

    history, times = gpt.fit_gpt(
        model, corpus.train_ids, args.steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay, clipnorm=args.clipnorm, seed=args.seed,
        validation_ids=corpus.validation_ids, eval_every=args.eval_every,
        eval_windows=args.eval_windows, on_evaluation=report,
        max_seconds=None if args.cpu_minutes is None else 60 * args.cpu_minutes)
    load_after = os.getloadavg()[0]
    steps_run = history["step"][-1]
    samples[str(steps_run)] = sample()

    weights_path = args.out / "weights" / gpt.WEIGHTS_FILE
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights_path)
    store_float16(weights_path)
    shipped = gpt.build_gpt(len(vocabulary), **sizes)   # what is shipped, loaded as the lesson
    shipped.load_weights(weights_path)                  # loads it: float16-rounded
    final_loss = gpt.validation_loss(shipped, corpus.validation_ids)
    print(f"\nvalidation loss of the shipped weights, whole validation text: "
          f"{final_loss:.4f} nats per character", flush=True)
    record = {
        "command": "python scripts/train_gpt.py" + "".join(f" {a}" for a in argv),
        "corpus": corpus.summary(),
        "model": sizes,
        "training": {**training, "cpu_minutes_budget": args.cpu_minutes,
                     "optimizer": "AdamW(beta_2=0.99), no weight decay on biases and "
                                  "LayerNorm parameters, gradients clipped to norm clipnorm",
                     "schedule": "linear warm-up to learning_rate, then cosine decay to a "
                                 "tenth of it",
                     "batches": "random windows of context_length characters of the "
                                "training text, targets shifted by one",
                     "compiled": "jit_compile=True"},
        "parameters": model.count_params(),
        "steps_run": steps_run,
        "curve": {"step": history["step"],
                  "train_loss": [round(x, 4) for x in history["train_loss"]],
                  "validation_loss": [round(x, 4) for x in history["validation_loss"]],
                  "validation_windows": args.eval_windows},
        "validation_loss": round(final_loss, 4),
        "validation_loss_measured_on": "the whole validation text in back-to-back windows of "
                                       "context_length, the shipped float16 weights",
        "samples": {"prompt": SAMPLE_PROMPT, "temperature": SAMPLE_TEMPERATURE,
                    "seed": SAMPLE_SEED, "new_characters": SAMPLE_LENGTH, "by_step": samples},
        "train_seconds": round(times.wall, 1),
        "train_cpu_seconds": round(times.cpu, 1),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "weights": weights_path.name,
        "weights_bytes": weights_path.stat().st_size,
        "total_cpu_minutes": round((time.process_time() - cpu_start) / 60, 2),
        "total_wall_minutes": round((time.perf_counter() - wall_start) / 60, 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    results_path = args.out / "notebooks" / "results" / gpt.RESULTS_FILE
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    print(f"-> {weights_path}\n-> {results_path}")
    print(f"total: {record['total_cpu_minutes']} CPU minutes, {record['total_wall_minutes']} "
          f"wall-clock minutes ({os.cpu_count()} CPUs, load average now "
          f"{os.getloadavg()[0]:.1f}); training {times.cpu:.0f} s CPU", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
