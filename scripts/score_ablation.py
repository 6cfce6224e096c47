"""Lesson 04's ablation: the lesson-03 translator with each attention score, trained alike.

    .venv/bin/python scripts/score_ablation.py        # what the lesson shows: 8 variants x 5 seeds
    .venv/bin/python scripts/score_ablation.py --epochs 1 --seeds 1 --out /tmp/a.json  # quick look
    nohup .venv/bin/python scripts/score_ablation.py > /tmp/ablation.log 2>&1 &       # background

The GRU encoder–decoder of lesson 03 (``course_lib.gru_translator.build_translator``: the same
split, vocabularies, sizes, batches, learning rate and schedule), trained once per attention
variant and seed with the same budget of epochs:

==============  ==========================================================================
variant         attention (all "after the RNN", as in Luong et al. 2015; see course_lib.models)
==============  ==========================================================================
``dot``         global, ``e = s . h``
``general``     global, ``e = s W h``
``concat``      global, ``e = v . tanh(W [s; h])``
``bahdanau``    global, ``e = v . tanh(W1 s + W2 h)`` (lesson 03's score)
``scaled-dot``  ``dot`` divided by ``sqrt(units)``, the Transformer's scale (added to test
                whether the unscaled scores lose because their softmax saturates)
``scaled-       ``general`` divided by ``sqrt(units)``
general``
``local-p``     local-p with the general score (Luong et al.'s best): a predicted position, a
                window of ``2D + 1`` source positions and a Gaussian
                (``course_lib.models.LocalGRUEncoderDecoder``)
``local-p-      the same window with the concat score (to tell the window's effect from the
concat``        score's)
==============  ==========================================================================

Each model decodes the held-out English sentences greedily and is scored with BLEU and chrF
against all their references (``course_lib.gru_translator.evaluate``). The budget is
``--epochs`` for every variant alike, by default lesson 03's
(``course_lib.gru_translator.TRAINING``); the cosine schedule decays over that many
epochs, so every run ends at learning rate 0. ``--seeds`` trains every variant once per seed
(default: lesson 03's seed and the next four; the seed draws the initial weights and the order of
the batches).

Written to ``--out`` (default ``notebooks/results/04_score_ablation.json``) after every model,
so an interrupted run resumes where it stopped (runs with the same recipe are kept): the recipe,
and per run its parameters (all and the attention layer's), training seconds (wall clock and
CPU time of this process), loss and held-out loss per epoch, BLEU, chrF and sacrebleu's
signatures, how sharp its attention is over the test set (``attention_statistics``), a few
translations, the attention weights of three test sentences (and local-p's
predicted positions), and the machine's load average. Nothing else is written: no weights.
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
from keras import ops  # noqa: E402

from course_lib import gru_translator, models, training, translation  # noqa: E402
from course_lib.data import PAD_ID, START_ID  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("dot", "general", "concat", "bahdanau", "local-p", "local-p-concat", "scaled-dot",
            "scaled-general")
LOCAL_SCORES = {"local-p": "general", "local-p-concat": "concat"}  # the score in the window
DEFAULT_OUT = ROOT / "notebooks" / "results" / "04_score_ablation.json"
EXAMPLE_COUNT = 3  # test sentences whose attention weights are stored


def build(variant, corpus, seed, half_width):
    """The translator with ``variant``'s attention, initial weights from ``seed``."""
    sizes = gru_translator.SIZES
    if variant in LOCAL_SCORES:
        return models.local_gru_encoder_decoder(
            len(corpus.source_vocabulary), sizes["embedding_dim"], sizes["units"],
            half_width=half_width, score=LOCAL_SCORES[variant],
            target_vocabulary_size=len(corpus.target_vocabulary), seed=seed)
    return gru_translator.build_translator(corpus, variant, seed=seed, **sizes)


def example_rows(corpus):
    """Indices of the first ``EXAMPLE_COUNT`` test sentences of 5 to 8 tokens."""
    lengths = np.array([len(s) for s in corpus.test_sources])
    return [int(i) for i in np.flatnonzero((lengths >= 5) & (lengths <= 8))[:EXAMPLE_COUNT]]


def rounded(tensor):
    """A tensor as nested lists of floats with 4 decimals (for the JSON file)."""
    return np.round(ops.convert_to_numpy(tensor).astype("float64"), 4).tolist()


def alignments(model, corpus, rows, hypotheses):
    """For each test sentence in ``rows``: its tokens, the model's translation, and the
    attention weights of every target step over the real source tokens (greedy decoding, the
    ``<end>`` step included); for local-p also the predicted positions ``p_t``."""
    records = []
    for row in rows:
        source = corpus.test_source_ids[row:row + 1]
        length = len(corpus.test_sources[row])
        target = corpus.target_vocabulary.encode(hypotheses[row])
        decoder_inputs = np.array([[START_ID] + target], dtype="int32")
        # Teacher forcing on the model's own translation gives greedy decoding's states.
        encoder_outputs, state, source_mask = model.encode(source)
        outputs, _ = model.decoder(model.target_embedding(decoder_inputs), initial_state=state)
        _, weights = model.attention(outputs, encoder_outputs, mask=source_mask)
        record = {"source": corpus.test_sources[row], "translation": hypotheses[row],
                  "weights": rounded(weights[0, :, :length])}
        if isinstance(model, models.LocalGRUEncoderDecoder):
            positions = model.attention.aligned_positions(outputs, encoder_outputs,
                                                          mask=source_mask)
            record["positions"] = rounded(positions[0])
        records.append(record)
    return records


def attention_statistics(weights, source_ids, hypotheses, max_length):
    """How sharp the greedy decoder's attention is over the whole test set.

    Over the rows of real target steps (each translation's tokens and its ``<end>``), each row
    normalised to sum to one (local-p's do not): the mean largest weight, the share of rows
    with a largest weight above 0.99 (a saturated softmax), the mean entropy against that of a
    uniform row over the sentence, and the share of rows whose largest weight falls on the
    source's last token (the final ``.`` in most sentences: the encoder's summary, what a
    model without attention sees).
    """
    weights = np.asarray(weights, dtype="float64")
    lengths = np.sum(np.asarray(source_ids) != PAD_ID, axis=1)  # (N,)
    steps = np.minimum([len(h) + 1 for h in hypotheses], max_length)  # (N,)
    rows = np.arange(weights.shape[1])[None, :] < steps[:, None]  # (N, T)
    totals = weights.sum(axis=-1, keepdims=True)
    normalised = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    largest = normalised.max(axis=-1)[rows]
    logs = np.log(np.where(normalised > 0, normalised, 1.0))
    entropy = -np.sum(normalised * logs, axis=-1)[rows]
    uniform = np.broadcast_to(np.log(lengths)[:, None], rows.shape)[rows]
    on_last = (normalised.argmax(axis=-1) == (lengths - 1)[:, None])[rows]
    return {"rows": int(rows.sum()), "mean_largest_weight": round(float(largest.mean()), 4),
            "saturated_rows": round(float(np.mean(largest > 0.99)), 4),
            "mean_entropy": round(float(entropy.mean()), 4),
            "uniform_entropy": round(float(uniform.mean()), 4),
            "largest_on_last_token": round(float(on_last.mean()), 4)}


def position_statistics(model, corpus, hypotheses, weights, batch_size=512):
    """local-p only: where its predicted positions ``p_t`` fall, over the whole test set.

    The decoder is re-run with teacher forcing on the model's own translations (the same
    states as greedy decoding) to get ``p_t`` of every real target step. Returns the share of
    steps whose ``p_t`` lies within half a position of either end of the sentence (0 or ``L``:
    the sigmoid saturated), the mean ``p_t / L``, and the mean sum of a row's weights (below 1:
    the Gaussian is not renormalised).
    """
    length = corpus.max_target_length
    decoder_inputs = np.zeros((len(hypotheses), length), dtype="int32")
    decoder_inputs[:, 0] = START_ID
    for row, hypothesis in enumerate(hypotheses):
        ids = corpus.target_vocabulary.encode(hypothesis)[:length - 1]
        decoder_inputs[row, 1:1 + len(ids)] = ids
    positions = []
    for begin in range(0, len(hypotheses), batch_size):
        source = corpus.test_source_ids[begin:begin + batch_size]
        encoder_outputs, state, source_mask = model.encode(source)
        outputs, _ = model.decoder(model.target_embedding(decoder_inputs[begin:begin + batch_size]),
                                   initial_state=state)
        positions.append(ops.convert_to_numpy(model.attention.aligned_positions(
            outputs, encoder_outputs, mask=source_mask)))
    positions = np.concatenate(positions).astype("float64")  # (N, T)
    lengths = np.sum(corpus.test_source_ids != PAD_ID, axis=1)[:, None].astype("float64")
    steps = np.minimum([len(h) + 1 for h in hypotheses], length)
    rows = np.arange(length)[None, :] < steps[:, None]
    at_an_end = (positions < 0.5) | (positions > lengths - 0.5)
    row_sums = np.asarray(weights, dtype="float64").sum(axis=-1)
    return {"positions_at_an_end": round(float(at_an_end[rows].mean()), 4),
            "mean_relative_position": round(float((positions / lengths)[rows].mean()), 4),
            "mean_row_sum": round(float(row_sums[rows].mean()), 4)}


def train_one(variant, seed, corpus, args):
    """Train and score one model; return its record for the JSON file."""
    model = build(variant, corpus, seed, args.half_width)
    attention_parameters = model.attention.count_params()
    print(f"\n{variant} (seed {seed}): {model.count_params():,} parameters, "
          f"{attention_parameters:,} in the attention", flush=True)
    load_before = os.getloadavg()
    cpu_start = time.process_time()

    history, timing = models.fit_seq2seq_bucketed(
        model, corpus.train, args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, validation_pairs=corpus.test, seed=seed,
        on_epoch_end=training.epoch_reporter(args.epochs))
    seconds, cpu_seconds = timing.wall, time.process_time() - cpu_start  # CPU: with held-out loss
    load_after = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    hypotheses, weights = gru_translator.translate(model, corpus.test_source_ids,
                                                   corpus.target_vocabulary,
                                                   corpus.max_target_length)
    scores = translation.corpus_scores(hypotheses, corpus.test_references)  # = evaluate()
    decode_seconds = time.perf_counter() - start
    decode_cpu_seconds = time.process_time() - cpu_start
    statistics = attention_statistics(weights, corpus.test_source_ids, hypotheses,
                                      corpus.max_target_length)
    if variant in LOCAL_SCORES:
        statistics.update(position_statistics(model, corpus, hypotheses, weights))
    print(f"  {seconds:.0f} s wall, {cpu_seconds:.0f} s CPU for {len(history['loss'])} epochs; "
          f"test {scores}; attention {statistics}", flush=True)
    return {
        "variant": variant,
        "score": LOCAL_SCORES.get(variant, variant),
        "seed": seed,
        "parameters": model.count_params(),
        "attention_parameters": attention_parameters,
        "epochs": len(history["loss"]),
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "decode_seconds": round(decode_seconds, 1),
        "decode_cpu_seconds": round(decode_cpu_seconds, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "loss": [round(x, 4) for x in history["loss"]],
        "test_loss": [round(x, 4) for x in history["val_loss"]],
        "bleu": round(scores.bleu, 2),
        "chrf": round(scores.chrf, 2),
        "bleu_signature": scores.bleu_signature,
        "chrf_signature": scores.chrf_signature,
        "attention": statistics,
        "examples": {" ".join(corpus.test_sources[i]): " ".join(hypotheses[i])
                     for i in range(0, len(hypotheses), len(hypotheses) // 6)},
        "alignments": alignments(model, corpus, example_rows(corpus), hypotheses),
    }


def recipe(corpus, args):
    """What must agree for two runs to be comparable (and for a stored run to be resumed)."""
    return {
        "split": {"test_fraction": translation.TEST_FRACTION, "seed": translation.SPLIT_SEED},
        "source_vocabulary_fingerprint": corpus.source_vocabulary.fingerprint(),
        "target_vocabulary_fingerprint": corpus.target_vocabulary.fingerprint(),
        "model": dict(gru_translator.SIZES),
        "local_p": {"half_width": args.half_width, "sigma": args.half_width / 2,
                    "score": "general"},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "schedule": "cosine decay to 0",
                     "clipnorm": 1.0, "batches": "length-bucketed (fit_seq2seq_bucketed)"},
        "lesson03_training": dict(gru_translator.TRAINING),
        "decoding": "greedy",
    }


def write(path, results):
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    temporary.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int,
                        default=gru_translator.TRAINING["epochs"])
    first_seed = gru_translator.TRAINING["seed"]  # lesson 03's, then four more
    parser.add_argument("--seeds", type=int, nargs="+",
                        default=[first_seed + i for i in range(5)])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--half-width", type=int, default=2, help="local-p's D")
    parser.add_argument("--batch-size", type=int,
                        default=gru_translator.TRAINING["batch_size"])
    parser.add_argument("--learning-rate", type=float,
                        default=gru_translator.TRAINING["learning_rate"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    corpus = translation.load_corpus()
    summary = corpus.summary()
    print("corpus:", json.dumps(summary), flush=True)
    this_recipe = recipe(corpus, args)
    command = "python scripts/score_ablation.py" + "".join(f" {a}" for a in
                                                             (argv or sys.argv[1:]))
    runs, commands = [], []
    if args.out.is_file():
        stored = json.loads(args.out.read_text(encoding="utf-8"))
        if stored.get("recipe") == this_recipe:
            runs = stored["runs"]
            commands = stored.get("commands", [stored["command"]] if "command" in stored else [])
            print(f"resuming: {len(runs)} runs with this recipe in {args.out}", flush=True)
    commands = commands + ([command] if command not in commands else [])
    done = {(run["variant"], run["seed"]) for run in runs}
    for seed in args.seeds:
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            runs.append(train_one(variant, seed, corpus, args))
            write(args.out, {
                "commands": commands,  # the runs of every invocation with this recipe
                "corpus": summary,
                "recipe": this_recipe,
                "runs": runs,
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "keras": keras.__version__,
                            "backend": keras.backend.backend()},
            })
    print(f"\n{'variant':>14} {'seed':>4} {'params':>10} {'attention':>9} {'BLEU':>6} "
          f"{'chrF':>6} {'train s':>8} {'CPU s':>7}")
    for run in runs:
        print(f"{run['variant']:>14} {run['seed']:4d} {run['parameters']:10,} "
              f"{run['attention_parameters']:9,} {run['bleu']:6.2f} {run['chrf']:6.2f} "
              f"{run['train_seconds']:8.0f} {run['train_cpu_seconds']:7.0f}")
    print(f"-> {args.out} (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
