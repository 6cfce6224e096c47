"""Train lesson 08's Transformer translator (English → French) and write the weights it loads.

    .venv/bin/python scripts/train_transformer.py                 # the shipped weights (defaults)
    nohup .venv/bin/python scripts/train_transformer.py > train_transformer.log 2>&1 &
    .venv/bin/python scripts/train_transformer.py --validation --epochs 10 --eval-every 5
                                                # a recipe tried on a validation split (no test)

The model is ``course_lib.transformer_translator.TransformerTranslator`` with ``SIZES``, trained
by ``fit_transformer`` with ``TRAINING`` (teacher forcing, label smoothing, Adam with a linear
warm-up then cosine decay, batches of similar length) on the training side of
``course_lib.translation.load_corpus()``: the split by distinct English sentence and the
vocabularies lesson 03's RNN translator uses, so the two are scored on the same held-out
sentences. Every option below overrides one entry of ``SIZES`` or ``TRAINING``.

Written to ``--out`` (default ``weights/``):

- ``transformer_translator.weights.h5``: the weights as float16 (they load into the float32
  model; the scores are measured *after* that round trip, so they are the shipped weights');
- ``transformer_results.json``: the recipe, the vocabularies' fingerprints, the parameters,
  training seconds (wall clock and CPU) with the load average, training and held-out loss per
  epoch, BLEU, chrF and sacrebleu's signatures on the whole held-out split, and a few
  translations.

With ``--validation`` the recipe is tried on a validation split carved out of the *training*
side (``translation.validation_corpus``) and scored there; nothing is written to
``weights/`` (the record goes to ``--out`` only if given). That is how ``SIZES`` and
``TRAINING`` were chosen (docs/transformer_weights.md): the test split is read only by the
final run. The run is deterministic with ``--seed`` on a given machine (CPU, TensorFlow's op
determinism on). ``--minutes`` is a safety budget: training stops after the epoch in which it
is exceeded, and the JSON records how many epochs ran.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

import keras  # noqa: E402

from course_lib import transformer_translator as tt  # noqa: E402
from course_lib import translation  # noqa: E402
from course_lib.shipped_weights import WEIGHTS_DIR, store_float16  # noqa: E402

# A one-token prefix attends over one key: Keras warns that such a softmax is always 1. True.
warnings.filterwarnings("ignore", message="You are using a softmax over axis -1")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sizes, training = tt.SIZES, tt.TRAINING
    parser.add_argument("--d-model", type=int, default=sizes["d_model"])
    parser.add_argument("--layers", type=int, default=sizes["num_layers"])
    parser.add_argument("--heads", type=int, default=sizes["num_heads"])
    parser.add_argument("--ff", type=int, default=sizes["intermediate_dim"])
    parser.add_argument("--dropout", type=float, default=sizes["dropout"])
    parser.add_argument("--pre-ln", action=argparse.BooleanOptionalAction,
                        default=sizes["normalize_first"])
    parser.add_argument("--tie", action=argparse.BooleanOptionalAction,
                        default=sizes["tie_embeddings"])
    parser.add_argument("--epochs", type=int, default=training["epochs"])
    parser.add_argument("--batch-size", type=int, default=training["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=training["learning_rate"],
                        help="the peak, reached at the end of the warm-up")
    parser.add_argument("--warmup-steps", type=int, default=training["warmup_steps"])
    parser.add_argument("--label-smoothing", type=float, default=training["label_smoothing"])
    parser.add_argument("--clipnorm", type=float, default=training["clipnorm"])
    parser.add_argument("--seed", type=int, default=training["seed"])
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop after the epoch that passes this many minutes of training")
    parser.add_argument("--validation", action="store_true",
                        help="train on part of the training side, score on the rest")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="with --validation: BLEU/chrF on the validation side every N "
                             "epochs")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the weights and the JSON (default weights/; with "
                             "--validation only the JSON, and only if given)")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    corpus = translation.load_corpus()
    data = translation.validation_corpus(corpus) if args.validation else corpus
    print("corpus:", json.dumps(corpus.summary()), flush=True)
    print(f"{'validation' if args.validation else 'held-out test'} side: "
          f"{len(data.train_pairs)} training pairs, {len(data.test_sources)} sentences to "
          f"translate", flush=True)
    sizes = {"d_model": args.d_model, "num_layers": args.layers, "num_heads": args.heads,
             "intermediate_dim": args.ff, "dropout": args.dropout,
             "normalize_first": args.pre_ln, "tie_embeddings": args.tie}
    training = {"epochs": args.epochs, "batch_size": args.batch_size,
                "learning_rate": args.learning_rate, "warmup_steps": args.warmup_steps,
                "label_smoothing": args.label_smoothing, "clipnorm": args.clipnorm,
                "seed": args.seed}
    model = tt.build_transformer(data, seed=args.seed, **sizes)
    print(f"sizes {sizes}\ntraining {training}\n{model.count_params():,} parameters",
          flush=True)
    load_before = os.getloadavg()[0]
    train_cpu_start = time.process_time()
    scores_by_epoch = {}

    def report(epoch, logs):
        line = (f"  epoch {epoch + 1:2d}/{args.epochs}  loss {logs['loss']:.3f}  held-out loss "
                f"{logs['val_loss']:.3f}  ({time.process_time() - train_cpu_start:.0f} s CPU, "
                f"{time.perf_counter() - wall_start:.0f} s wall, load "
                f"{os.getloadavg()[0]:.1f})")
        if args.validation and args.eval_every and (epoch + 1) % args.eval_every == 0:
            scores, _ = tt.evaluate(model, data)
            scores_by_epoch[epoch + 1] = [round(scores.bleu, 2), round(scores.chrf, 2)]
            line += f"  validation {scores}"
        print(line, flush=True)

    history, times = tt.fit_transformer(
        model, data.train, args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps,
        label_smoothing=args.label_smoothing, clipnorm=args.clipnorm,
        validation_pairs=data.test, seed=args.seed,
        max_seconds=None if args.minutes is None else 60 * args.minutes, on_epoch_end=report)
    load_after = os.getloadavg()[0]
    record = {
        "command": "python scripts/train_transformer.py" + "".join(f" {a}" for a in argv),
        "corpus": corpus.summary(),
        "split": {"test_fraction": translation.TEST_FRACTION, "seed": translation.SPLIT_SEED,
                  "scored_on": "validation split of the training side" if args.validation
                  else "held-out test split"},
        "source_vocabulary_fingerprint": corpus.source_vocabulary.fingerprint(),
        "target_vocabulary_fingerprint": corpus.target_vocabulary.fingerprint(),
        "model": sizes,
        "training": {**training, "minutes": args.minutes,
                     "optimizer": "Adam(beta_2=0.98, epsilon=1e-9)",
                     "schedule": "linear warm-up to learning_rate, then cosine decay to 0",
                     "batches": "bucketed by length (course_lib.training.length_bucketed_batches)"},
        "parameters": model.count_params(),
        "epochs_run": len(history["loss"]),
        "train_seconds": round(times.wall, 1),
        "train_cpu_seconds": round(times.cpu, 1),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "loss": [round(x, 4) for x in history["loss"]],
        "held_out_loss": [round(x, 4) for x in history["val_loss"]],
    }
    if args.validation:
        record["validation_scores_by_epoch"] = scores_by_epoch
    else:
        args.out = args.out or WEIGHTS_DIR
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / tt.WEIGHTS_FILE
        model.save_weights(path)
        store_float16(path)
        model = tt.build_transformer(corpus, **sizes)  # score what is shipped, loaded as the
        model.load_weights(path)                       # lesson loads it: float16-rounded
        record["weights"] = path.name
        record["weights_bytes"] = path.stat().st_size
    decode_start = time.perf_counter()
    scores, hypotheses = tt.evaluate(model, data)
    record.update({
        "decode_seconds": round(time.perf_counter() - decode_start, 1),
        "bleu": round(scores.bleu, 2), "chrf": round(scores.chrf, 2),
        "bleu_signature": scores.bleu_signature, "chrf_signature": scores.chrf_signature,
        "examples": {" ".join(data.test_sources[i]): " ".join(hypotheses[i])
                     for i in range(0, len(hypotheses), len(hypotheses) // 8)},
        "total_cpu_minutes": round((time.process_time() - cpu_start) / 60, 1),
        "total_wall_minutes": round((time.perf_counter() - wall_start) / 60, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "keras": keras.__version__,
                    "backend": keras.backend.backend()},
    })
    print(f"\n{'validation' if args.validation else 'test'} {scores} after "
          f"{record['epochs_run']} epochs, {times.wall:.0f} s wall, {times.cpu:.0f} s CPU of "
          f"training\nsignatures: {scores.bleu_signature} | {scores.chrf_signature}", flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        name = tt.RESULTS_FILE if not args.validation else "transformer_validation.json"
        path = args.out / name
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        print(f"-> {path}")
    print(f"total: {record['total_cpu_minutes']} CPU minutes, {record['total_wall_minutes']} "
          f"wall-clock minutes ({os.cpu_count()} CPUs, load average now "
          f"{os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
