"""Train lesson 03's English → French translators and write the weights the lessons load.

    .venv/bin/python scripts/train_translator.py                # the shipped weights (defaults)
    .venv/bin/python scripts/train_translator.py --epochs 3     # a quick look, to another folder:
    .venv/bin/python scripts/train_translator.py --epochs 3 --out /tmp/translators

Two models with the same sizes, data, batches, seed and number of epochs: the GRU
encoder–decoder with Bahdanau (additive) attention, and the same model without attention (the
decoder sees the source only through the encoder's final state). Both are trained with teacher
forcing on the training side of ``course_lib.translation.load_corpus()`` (the split by distinct
English sentence and the vocabularies every translator lesson shares), on batches of similar
length (``course_lib.models.fit_seq2seq_bucketed``), then decode the held-out English sentences
greedily and are scored with BLEU and chrF against all their references.

Written to ``--out`` (default ``weights/``):

- ``translator_bahdanau.weights.h5``, ``translator_no_attention.weights.h5``: the weights
  (``model.load_weights`` reads them), stored as gzip-compressed float16 without the
  optimizer's state to keep the repository light; they load into the float32 model, and the
  scores below are measured on a fresh model loaded from these files, so they are the shipped
  weights' scores;
- ``translator_results.json``: the recipe (sizes, vocabularies and their fingerprints, split,
  epochs, batch, learning rate, seed), and per model its parameters, training seconds (wall
  clock and CPU), loss and held-out loss per epoch, BLEU, chrF and sacrebleu's signatures, with
  the machine's load average.

The sizes were chosen by measurement on a validation split carved out of the *training* side
(never on the test split): see docs/translator_weights.md. The run is deterministic with
``--seed`` on a given machine (CPU, single process). ``--minutes`` is a safety budget: each
model stops after the epoch in which it is exceeded, and the JSON records how many epochs ran.
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

from course_lib import gru_translator, models, training, translation  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402

NAMES = {"bahdanau": "bahdanau", None: "no_attention"}


def train_one(attention, corpus, args):
    """Train, store, reload and score one model; return its record for the JSON file."""
    name = NAMES[attention]
    model = gru_translator.build_translator(corpus, attention, seed=args.seed,
                                         **gru_translator.SIZES)
    print(f"\n{name}: {model.count_params():,} parameters", flush=True)
    load_before = os.getloadavg()[0]
    cpu_start = time.process_time()

    history, timing = models.fit_seq2seq_bucketed(
        model, corpus.train, args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, validation_pairs=corpus.test, seed=args.seed,
        max_seconds=None if args.minutes is None else 60 * args.minutes,
        on_epoch_end=training.epoch_reporter(args.epochs))
    seconds, cpu_seconds = timing.wall, time.process_time() - cpu_start  # CPU: with held-out loss
    path = args.out / f"translator_{name}.weights.h5"
    model.save_weights(path)
    store_float16(path)
    # Score what is shipped, as a lesson loads it: a fresh model, the float16-rounded weights.
    shipped = gru_translator.build_translator(corpus, attention, **gru_translator.SIZES)
    shipped.load_weights(path)
    scores, hypotheses = gru_translator.evaluate(shipped, corpus)
    print(f"  {seconds:.0f} s wall, {cpu_seconds:.0f} s CPU for {len(history['loss'])} epochs; "
          f"test {scores}  -> {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return {
        "attention": attention,
        "weights": path.name,
        "weights_bytes": path.stat().st_size,
        "parameters": model.count_params(),
        "epochs": len(history["loss"]),
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "loss": [round(x, 4) for x in history["loss"]],
        "test_loss": [round(x, 4) for x in history["val_loss"]],
        "final_loss": round(history["loss"][-1], 4),
        "bleu": round(scores.bleu, 2),
        "chrf": round(scores.chrf, 2),
        "bleu_signature": scores.bleu_signature,
        "chrf_signature": scores.chrf_signature,
        "examples": {" ".join(corpus.test_sources[i]): " ".join(hypotheses[i])
                     for i in range(0, len(hypotheses), len(hypotheses) // 8)},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=gru_translator.TRAINING["epochs"])
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop each model after the epoch that passes this many minutes")
    parser.add_argument("--batch-size", type=int,
                        default=gru_translator.TRAINING["batch_size"])
    parser.add_argument("--learning-rate", type=float,
                        default=gru_translator.TRAINING["learning_rate"])
    parser.add_argument("--seed", type=int, default=gru_translator.TRAINING["seed"])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    corpus = translation.load_corpus()
    summary = corpus.summary()
    print("corpus:", json.dumps(summary), flush=True)
    records = [train_one(attention, corpus, args) for attention in ("bahdanau", None)]
    cpu_minutes = (time.process_time() - cpu_start) / 60
    wall_minutes = (time.perf_counter() - wall_start) / 60
    results = {
        "command": "python scripts/train_translator.py" + "".join(f" {a}" for a in
                                                                  (argv or sys.argv[1:])),
        "corpus": summary,
        "split": {"test_fraction": translation.TEST_FRACTION, "seed": translation.SPLIT_SEED},
        "source_vocabulary_fingerprint": corpus.source_vocabulary.fingerprint(),
        "target_vocabulary_fingerprint": corpus.target_vocabulary.fingerprint(),
        "model": dict(gru_translator.SIZES),
        "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "schedule": "cosine decay to 0",
                     "clipnorm": 1.0, "seed": args.seed, "minutes": args.minutes},
        "models": {NAMES[r["attention"]]: r for r in records},
        "total_cpu_minutes": round(cpu_minutes, 1),
        "total_wall_minutes": round(wall_minutes, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    }
    path = args.out / "translator_results.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    gap = records[0]["bleu"] - records[1]["bleu"]
    print(f"\nBLEU with attention {records[0]['bleu']:.1f}, without {records[1]['bleu']:.1f} "
          f"(gap {gap:.1f}); chrF {records[0]['chrf']:.1f} vs {records[1]['chrf']:.1f}")
    print(f"signature: {records[0]['bleu_signature']}")
    print(f"total: {cpu_minutes:.1f} CPU minutes, {wall_minutes:.1f} wall-clock minutes "
          f"({os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
