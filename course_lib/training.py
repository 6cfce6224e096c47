"""Training a sequence-to-sequence model with teacher forcing: what every translator shares.

Lesson 03's GRU translator (``course_lib.gru_translator``), lesson 04's ablation and lesson 08's
Transformer (``course_lib.transformer_translator``) all train the same way, so the pieces live
here once:

=============================  ===============================================================
piece                          what it does
=============================  ===============================================================
:class:`TrainingTime`          wall-clock and CPU seconds of a run
:func:`length_bucketed_batches`  batches of pairs of similar length, in random order
:func:`trimmed_batch`          one batch cut to its own longest pair (no wasted padding)
:class:`MaskedCrossEntropy`    ``-log p(y_i)`` averaged over real target tokens, with optional
                               label smoothing (Szegedy et al. 2016; Vaswani et al. 2017 §5.4)
:func:`masked_loss`            that loss over a whole data set, without training
:func:`train_bucketed`         the epoch loop on length-bucketed batches of a compiled model
:func:`epoch_reporter`         one printed line per epoch, for scripts that run for minutes
=============================  ===============================================================

Shapes: source ids ``(B, S)``, decoder inputs ``(B, T)`` (``START_ID`` then the target, teacher
forcing), targets ``(B, T)`` (the target then ``END_ID``), logits ``(B, T, V)``; ``PAD_ID = 0``
pads every row (``course_lib.data``).
"""

import os
import time
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from course_lib.data import PAD_ID
from course_lib.validation import require_positive_int


class TrainingTime(NamedTuple):
    """How long a training run took, in seconds.

    ``wall`` is clock time; it grows when other programs share the CPU. ``cpu`` is the CPU
    time of this process (all its threads), which barely does: on an otherwise idle machine
    the clock time is at most about the CPU time, since the process always has work to do.
    """

    wall: float
    cpu: float


class Stopwatch:
    """Wall-clock and CPU seconds since it was made: ``Stopwatch().elapsed()`` → TrainingTime."""

    def __init__(self):
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()

    def elapsed(self):
        return TrainingTime(time.perf_counter() - self.wall_start,
                            time.process_time() - self.cpu_start)


def length_bucketed_batches(pairs, batch_size, seed):
    """Index batches of pairs of similar length, in random order: a list of int arrays.

    The pairs (a ``course_lib.data.SequencePairs``) are sorted by target length, then source
    length, then a random key drawn with ``numpy.random.default_rng(seed)``, cut into runs of
    ``batch_size``, and the runs are shuffled. Each batch can then be padded to its own longest
    pair instead of the data set's (:func:`trimmed_batch`). The same seed gives the same batches.
    """
    batch_size = require_positive_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    target_lengths = np.sum(np.asarray(pairs.targets) != PAD_ID, axis=1)
    order = np.lexsort((rng.random(len(pairs)), pairs.source_lengths, target_lengths))
    batches = [order[begin:begin + batch_size] for begin in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def trimmed_batch(pairs, index):
    """``((source, decoder input), target)`` of the pairs at ``index``, cut to their longest."""
    source_length = int(pairs.source_lengths[index].max())
    target_length = int(np.max(np.sum(pairs.targets[index] != PAD_ID, axis=1)))
    return ((pairs.encoder_inputs[index, :source_length],
             pairs.decoder_inputs[index, :target_length]),
            pairs.targets[index, :target_length])


@keras.saving.register_keras_serializable(package="course_lib")
class MaskedCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy per real target token, with label smoothing ``ε``:

    ``loss_i = (1 − ε) · (−log p(y_i)) + ε · mean_k(−log p(k))``, averaged over the positions
    whose target is not ``PAD_ID``. With ``ε = 0`` it is the plain masked cross-entropy, the
    function ``keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)``
    computes (to float rounding). ``y_pred`` are logits ``(B, T, V)``, ``y_true`` ids ``(B, T)``.
    """

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), received "
                             f"{label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_p = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_p, ops.expand_dims(y_true, -1), axis=-1), -1)
        loss = (1.0 - self.label_smoothing) * nll \
            - self.label_smoothing * ops.mean(log_p, axis=-1)
        real = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(loss * real) / ops.maximum(ops.sum(real), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def masked_loss(model, pairs, label_smoothing=0.0, batch_size=512):
    """Mean teacher-forced cross-entropy per real target token of ``pairs``, dropout off."""
    loss = MaskedCrossEntropy(label_smoothing)
    total, count = 0.0, 0
    for begin in range(0, len(pairs), batch_size):
        index = np.arange(begin, min(begin + batch_size, len(pairs)))
        inputs, targets = trimmed_batch(pairs, index)
        tokens = int(np.sum(targets != PAD_ID))
        total += float(loss(targets, model(inputs, training=False))) * tokens
        count += tokens
    return total / max(count, 1)


def train_bucketed(model, pairs, epochs, batch_size, seed=None, validation_loss=None,
                   max_seconds=None, on_epoch_end=None):
    """The epoch loop of a compiled sequence-to-sequence ``model`` on length-bucketed batches.

    Every epoch draws new batches (:func:`length_bucketed_batches`, seeded from ``seed``, 0 when
    None, and the epoch), cuts each to its longest pair (:func:`trimmed_batch`) and feeds it to
    ``train_on_batch``; Keras traces one training step for a few shapes and then generalises.

    Args:
        validation_loss: optional function of no arguments, called after every epoch
            (``val_loss``), e.g. ``lambda: masked_loss(model, held_out_pairs)``.
        max_seconds: stop after the epoch during which this many seconds of training passed
            (a safety budget; a run cut short is no longer determined by the seed alone).
        on_epoch_end: optional ``f(epoch, logs)`` called after every epoch (e.g. to print).

    Returns:
        ``(history, time)``: ``history`` a dict ``{"loss": [...], "val_loss": [...],
        "batch_loss": [...]}`` of per-epoch means (weighted by real target tokens) and of every
        batch's loss (``course_lib.viz.training_curves`` takes it), and the
        :class:`TrainingTime` of training alone (validation excluded).
    """
    history = {"loss": [], "batch_loss": []}
    if validation_loss is not None:
        history["val_loss"] = []
    seconds = cpu_seconds = 0.0
    for epoch in range(epochs):
        stopwatch = Stopwatch()
        losses, weights = [], []
        for index in length_bucketed_batches(pairs, batch_size, (seed or 0) * 1000 + epoch):
            inputs, targets = trimmed_batch(pairs, index)
            losses.append(float(model.train_on_batch(inputs, targets)))
            weights.append(np.sum(targets != PAD_ID))
        epoch_time = stopwatch.elapsed()
        seconds += epoch_time.wall
        cpu_seconds += epoch_time.cpu
        history["batch_loss"].extend(losses)
        history["loss"].append(float(np.average(losses, weights=weights)))
        if validation_loss is not None:
            history["val_loss"].append(validation_loss())
        if on_epoch_end is not None:
            on_epoch_end(epoch, {name: values[-1] for name, values in history.items()
                                 if name != "batch_loss"})
        if max_seconds is not None and seconds >= max_seconds:
            break
    return history, TrainingTime(seconds, cpu_seconds)


def epoch_reporter(epochs):
    """An ``on_epoch_end`` for :func:`train_bucketed` that prints each epoch's losses, the CPU
    seconds since it was made and the load average: for scripts whose runs take minutes."""
    cpu_start = time.process_time()

    def report(epoch, logs):
        print(f"  epoch {epoch + 1:2d}/{epochs}  loss {logs['loss']:.3f}  held-out loss "
              f"{logs['val_loss']:.3f}  ({time.process_time() - cpu_start:.0f} s CPU, load "
              f"{os.getloadavg()[0]:.1f})", flush=True)

    return report
