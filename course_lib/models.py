"""The sequence-to-sequence models the lessons train, their training and their evaluation.

``gru_encoder_decoder`` builds a GRU encoder–decoder (Cho et al. 2014; Sutskever et al. 2014),
with or without attention over the encoder's outputs (Bahdanau et al. 2015; Luong et al. 2015):

=================  ===========================================================================
``attention``      what the decoder sees of the source
=================  ===========================================================================
``None``           the encoder's final state only, as its initial state: one vector of ``units``
                   numbers for the whole source (the *bottleneck*, lesson 01)
``"bahdanau"``     the same initial state, and at every step a context vector, the attention-
                   weighted sum of *all* encoder outputs (additive score)
``"dot"``, …       the same with one of Luong's scores (``"dot"``, ``"general"``, ``"concat"``)
``"scaled-dot"``   ``"dot"`` divided by ``sqrt(units)``, as in the Transformer (lesson 05);
                   ``"scaled-general"`` likewise (lesson 04's ablation tests what it changes)
=================  ===========================================================================

Where the attention sits. Bahdanau et al. compute the context ``c_i`` from the previous decoder
state ``s_{i-1}`` and feed it *into* the RNN, so step ``i`` needs step ``i - 1`` done: a Python
loop over the target. Here, as in Luong et al. 2015 ("attention after the RNN"), the decoder GRU
runs first and its outputs ``s_i`` are the queries: ``c_i = attention(s_i, h_1..h_S)``,
``h̃_i = tanh(W_c [s_i; c_i])``, ``p(y_i) = softmax(W_o h̃_i)``. With teacher forcing every
``s_i`` is known at once, so one call of the attention layer with a 3-D query ``(B, T, units)``
scores all target steps against all source steps in one matrix product. The score may still be
Bahdanau's additive one; only its place in the decoder follows Luong. The model without
attention has the same ``W_c`` layer, fed ``s_i`` alone, so the two differ only in the context.

Shapes: source ids ``(B, S)``, decoder input ids ``(B, T)`` (``START_ID`` + target, teacher
forcing), logits ``(B, T, target_vocabulary_size)``; padding id ``0`` (``course_lib.data``).
"""

from typing import NamedTuple

import keras
import numpy as np
from keras import layers, ops

from course_lib.data import END_ID, PAD_ID, START_ID
from course_lib.layers import BahdanauAttention, LocalAttention, LuongAttention
from course_lib.training import Stopwatch, masked_loss, train_bucketed
from course_lib.validation import require_positive_int

ATTENTIONS = (None, "bahdanau", "dot", "general", "concat", "scaled-dot", "scaled-general")


@keras.saving.register_keras_serializable(package="course_lib")
class GRUEncoderDecoder(keras.Model):
    """GRU encoder, GRU decoder started from the encoder's final state, optional attention.

    Call it on ``(source_ids, decoder_input_ids)`` to get logits for every target step
    (teacher forcing). ``encode`` and ``decode`` are the two halves, used one step at a time
    by :func:`greedy_decode`. See the module docstring for the equations.

    Args:
        source_vocabulary_size, target_vocabulary_size: sizes of the id spaces (padding
            included).
        embedding_dim: size of the token embeddings.
        units: size of the GRU states, so of the context vector the bottleneck squeezes the
            source into.
        attention: one of ``ATTENTIONS``.
        attention_units: hidden size of the additive (``"bahdanau"``) or ``"concat"`` score;
            defaults to ``units``.
    """

    def __init__(self, source_vocabulary_size, target_vocabulary_size, embedding_dim=32,
                 units=64, attention=None, attention_units=None, bidirectional=False,
                 **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}, received {attention!r}.")
        self.source_vocabulary_size = require_positive_int("source_vocabulary_size",
                                                           source_vocabulary_size)
        self.target_vocabulary_size = require_positive_int("target_vocabulary_size",
                                                           target_vocabulary_size)
        self.embedding_dim = require_positive_int("embedding_dim", embedding_dim)
        self.units = require_positive_int("units", units)
        self.attention_name = attention
        self.attention_units = attention_units
        self.bidirectional = bool(bidirectional)
        self.source_embedding = layers.Embedding(self.source_vocabulary_size, self.embedding_dim,
                                                 name="source_embedding")
        encoder = layers.GRU(self.units, return_sequences=True, return_state=True,
                             name="encoder")
        if self.bidirectional:
            encoder = layers.Bidirectional(encoder, name="encoder")
            # s_0 = tanh(W_s [h_fwd_S; h_bwd_1]): both final states, squeezed to `units`.
            self.bridge = layers.Dense(self.units, activation="tanh", name="bridge")
        self.encoder = encoder
        self.target_embedding = layers.Embedding(self.target_vocabulary_size, self.embedding_dim,
                                                 name="target_embedding")
        self.decoder = layers.GRU(self.units, return_sequences=True, return_state=True,
                                  name="decoder")
        if attention == "bahdanau":
            self.attention = BahdanauAttention(attention_units or self.units, name="attention")
        elif attention is not None:
            score = attention.removeprefix("scaled-")
            self.attention = LuongAttention(score, units=attention_units,
                                            scaled=score != attention, name="attention")
        else:
            self.attention = None
        self.combine = layers.Dense(self.units, activation="tanh", name="combine")
        self.classifier = layers.Dense(self.target_vocabulary_size, name="classifier")

    def encode(self, source_ids, training=None):
        """``(encoder_outputs (B, S, units), final_state (B, units), source_mask (B, S))``.

        Padding is masked: the GRU skips it, so the final state is the state after the last
        real token.
        """
        source_mask = ops.not_equal(source_ids, PAD_ID)
        outputs, *states = self.encoder(self.source_embedding(source_ids), mask=source_mask,
                                        training=training)
        if self.bidirectional:
            return outputs, self.bridge(ops.concatenate(states, axis=-1)), source_mask
        return outputs, states[0], source_mask

    def decode(self, decoder_input_ids, state, encoder_outputs=None, source_mask=None,
               training=None):
        """Run the decoder from ``state`` over ``decoder_input_ids (B, T)``.

        Returns ``(logits (B, T, V), final_state (B, units), weights)``, ``weights`` being the
        attention weights ``(B, T, S)``, or None without attention. Without attention
        ``encoder_outputs`` and ``source_mask`` are not used: the decoder sees the source only
        through ``state``.
        """
        outputs, state = self.decoder(self.target_embedding(decoder_input_ids),
                                      initial_state=state, training=training)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(outputs, encoder_outputs, mask=source_mask)
            outputs = ops.concatenate([outputs, context], axis=-1)
        return self.classifier(self.combine(outputs)), state, weights

    def call(self, inputs, training=None):
        source_ids, decoder_input_ids = inputs
        encoder_outputs, state, source_mask = self.encode(source_ids, training=training)
        if self.attention is None:  # the bottleneck: only the final state goes across
            return self.decode(decoder_input_ids, state, training=training)[0]
        return self.decode(decoder_input_ids, state, encoder_outputs, source_mask,
                           training=training)[0]

    def get_config(self):
        return {**super().get_config(),
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
                "embedding_dim": self.embedding_dim, "units": self.units,
                "attention": self.attention_name, "attention_units": self.attention_units,
                "bidirectional": self.bidirectional}


def gru_encoder_decoder(vocabulary_size, embedding_dim=32, units=64, attention=None,
                        target_vocabulary_size=None, attention_units=None,
                        bidirectional=False, seed=None, name=None):
    """A built :class:`GRUEncoderDecoder` (weights created, ready for ``summary()``).

    ``vocabulary_size`` is the source's; the target's defaults to the same (a synthetic task)
    and may differ (a translator). The initial weights are drawn from Keras's global seed;
    with ``seed`` it is set first (``keras.utils.set_random_seed(seed)``), so the same
    arguments give the same model whatever ran before.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = GRUEncoderDecoder(vocabulary_size, target_vocabulary_size or vocabulary_size,
                              embedding_dim=embedding_dim, units=units, attention=attention,
                              attention_units=attention_units, bidirectional=bidirectional,
                              name=name)
    model((np.ones((1, 2), "int32"), np.ones((1, 2), "int32")))
    return model


def fit_seq2seq(model, pairs, epochs, batch_size=128, learning_rate=5e-3, clipnorm=1.0,
                cosine_decay=True, jit_compile=False, validation_pairs=None, seed=None):
    """Train with teacher forcing: compile (Adam, cross-entropy ignoring padding), then fit.

    The loss at step ``i`` is ``-log p(y_i | y_<i, x)`` with the *true* previous tokens
    ``y_<i`` fed in (``pairs.decoder_inputs``), averaged over the real target tokens
    (``ignore_class=PAD_ID``). Gradients are clipped to norm ``clipnorm``, as in Sutskever
    et al. 2014: one exploding step through a long RNN otherwise undoes an epoch's work. With
    ``cosine_decay`` the learning rate falls from ``learning_rate`` to zero along a half
    cosine over the run, which lets a short run settle. ``fit`` shuffles the pairs with Keras's
    global seed; with ``seed`` it is set first, so a run does not depend on what ran before.
    ``jit_compile`` (XLA) made these models slower to train on a 2-core CPU.

    Returns:
        ``(history, time)``: the Keras ``History`` and the ``course_lib.training.TrainingTime``
        of ``fit``.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if cosine_decay:
        steps = epochs * -(-len(pairs) // batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=PAD_ID),
                  jit_compile=jit_compile)
    validation = None
    if validation_pairs is not None:
        validation = ((validation_pairs.encoder_inputs, validation_pairs.decoder_inputs),
                      validation_pairs.targets)
    stopwatch = Stopwatch()
    history = model.fit((pairs.encoder_inputs, pairs.decoder_inputs), pairs.targets,
                        batch_size=batch_size, epochs=epochs, validation_data=validation,
                        verbose=0)
    return history, stopwatch.elapsed()


def greedy_decode(model, source_ids, max_length, batch_size=1024):
    """Free-running greedy decoding: each step's input is the model's own previous output.

    Unlike training (teacher forcing), a wrong token is fed back and can derail what follows,
    so this is the honest test of a seq2seq model.

    Args:
        model: a :class:`GRUEncoderDecoder`.
        source_ids: ``(N, S)`` source ids.
        max_length: number of steps ``T`` (the longest target + 1 for ``END_ID``).
        batch_size: rows decoded together.

    Returns:
        ``(predictions, weights)``: ``predictions (N, T)`` int32 ids, ``PAD_ID`` after the
        first ``END_ID``; ``weights (N, T, S)`` attention weights, or None without attention.
    """
    source_ids = np.asarray(source_ids)
    predictions, all_weights = [], []
    for begin in range(0, len(source_ids), batch_size):
        batch = source_ids[begin:begin + batch_size]
        encoder_outputs, state, source_mask = model.encode(batch)
        token = np.full((len(batch), 1), START_ID, dtype="int32")
        steps, step_weights = [], []
        for _ in range(max_length):
            logits, state, weights = model.decode(token, state, encoder_outputs, source_mask)
            token = ops.convert_to_numpy(ops.argmax(logits[:, -1], axis=-1)).astype("int32")
            token = token[:, None]
            steps.append(token)
            if weights is not None:
                step_weights.append(ops.convert_to_numpy(weights))
        predictions.append(np.concatenate(steps, axis=1))
        if step_weights:
            all_weights.append(np.concatenate(step_weights, axis=1))
    predictions = np.concatenate(predictions)
    after_end = np.cumsum(np.cumsum(predictions == END_ID, axis=1), axis=1) > 1
    predictions[after_end] = PAD_ID
    return predictions, (np.concatenate(all_weights) if all_weights else None)


class Accuracy(NamedTuple):
    """Token accuracy (fraction of target tokens right, position by position, ``END_ID``
    included) and sequence accuracy (fraction of targets reproduced exactly)."""

    token: float
    sequence: float


def decoding_accuracy(predictions, targets):
    """:class:`Accuracy` of decoded ``predictions (N, T')`` against ``targets (N, T)``.

    Only the real positions of each target (up to and including its ``END_ID``) count; a
    prediction shorter than the target is wrong where it is missing. A sequence is right when
    every one of its real positions is.
    """
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if predictions.ndim != 2 or targets.ndim != 2 or len(predictions) != len(targets):
        raise ValueError(f"Expected predictions (N, T') and targets (N, T) with the same N, "
                         f"received {predictions.shape} and {targets.shape}.")
    width = targets.shape[1]
    aligned = np.full(targets.shape, -1, dtype="int64")
    aligned[:, :min(width, predictions.shape[1])] = predictions[:, :width]
    real = targets != PAD_ID
    correct = (aligned == targets) & real
    token = correct.sum() / max(real.sum(), 1)
    sequence = np.mean(np.all(correct | ~real, axis=1))
    return Accuracy(float(token), float(sequence))


def accuracy_by_length(model, pairs, batch_size=1024):
    """``{source length: Accuracy}`` of greedy decoding on ``pairs`` (a ``SequencePairs``)."""
    predictions, _ = greedy_decode(model, pairs.encoder_inputs, pairs.targets.shape[1],
                                   batch_size=batch_size)
    return {int(length): decoding_accuracy(predictions[pairs.source_lengths == length],
                                           pairs.targets[pairs.source_lengths == length])
            for length in np.unique(pairs.source_lengths)}


# ---------------------------------------------------------------------------------------------
# Training on batches of similar length (added for lesson 03's translator, where sentences of
# 3 to 16 tokens padded to the longest would spend half of every step on padding).


def fit_seq2seq_bucketed(model, pairs, epochs, batch_size=128, learning_rate=5e-3, clipnorm=1.0,
                         cosine_decay=True, validation_pairs=None, seed=None, max_seconds=None,
                         on_epoch_end=None):
    """Like :func:`fit_seq2seq` (teacher forcing, Adam, clipped gradients, cosine decay), but
    on batches of similar length, each padded only to its own longest pair.

    The loss is the same masked cross-entropy, so the model learns the same thing; each step
    just runs the GRUs over fewer padding steps (on lesson 03's translator, about half the CPU
    seconds per epoch: 7 s instead of 15 on a 2-core CPU). The loop is
    ``course_lib.training.train_bucketed``, the one the Transformer translator uses too.
    The training loss is Keras's ``SparseCategoricalCrossentropy(ignore_class=PAD_ID)``, the
    function ``course_lib.training.MaskedCrossEntropy()`` computes: the two differ in the last
    float digits, enough to change a 15-epoch run, and the shipped weights and lesson 04's
    ablation were trained with Keras's.

    Args:
        validation_pairs: optional ``SequencePairs``; their masked loss is recorded after
            every epoch as ``val_loss``.
        seed: sets Keras's global seed first (weights already built are unaffected) and seeds
            the batch order.
        max_seconds: stop after the epoch during which this many seconds of training passed
            (a safety budget; a run cut short is no longer determined by the seed alone).
        on_epoch_end: optional ``f(epoch, logs)`` called after every epoch (e.g. to print).

    Returns:
        ``(history, time)``: ``history`` a dict ``{"loss": [...], "val_loss": [...],
        "batch_loss": [...]}`` of per-epoch means (``course_lib.viz.training_curves`` takes
        it) and of every batch's loss, and the ``course_lib.training.TrainingTime`` of
        training (validation excluded).
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if cosine_decay:
        steps = epochs * -(-len(pairs) // batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=PAD_ID))
    validation_loss = None if validation_pairs is None else (
        lambda: masked_loss(model, validation_pairs))
    return train_bucketed(model, pairs, epochs, batch_size, seed=seed,
                          validation_loss=validation_loss, max_seconds=max_seconds,
                          on_epoch_end=on_epoch_end)


# ---------------------------------------------------------------------------------------------
# Local attention in the translator (added for lesson 04's ablation of the score functions).


@keras.saving.register_keras_serializable(package="course_lib")
class LocalGRUEncoderDecoder(GRUEncoderDecoder):
    """:class:`GRUEncoderDecoder` whose attention is Luong's *local-p* (Luong et al. 2015, §3.2).

    Everything but the attention layer is the same model: decoder state ``s_i`` → context
    ``c_i`` → ``tanh(W_c [s_i; c_i])`` → logits. The attention is
    ``course_lib.layers.LocalAttention(half_width, mode="predictive", score=score)``: each decoder
    state predicts an aligned position ``p_i = L sigmoid(v_p . tanh(W_p s_i))`` in its own
    sentence (``L`` real tokens) and attends only to the source positions within
    ``half_width`` of it, Gaussian-weighted. local-m (``p_i = i``) is not offered: it needs the
    step ``i``, which :func:`greedy_decode`'s one-step calls do not pass.

    Args:
        half_width: ``D``, the window's half-width (``2D + 1`` positions).
        score: Luong's content score inside the window, ``"dot"``, ``"general"`` (the paper's
            best with local-p) or ``"concat"``.
        The others as for :class:`GRUEncoderDecoder` (``attention`` is always local-p).
    """

    def __init__(self, source_vocabulary_size, target_vocabulary_size, embedding_dim=32,
                 units=64, half_width=2, score="general", attention_units=None,
                 bidirectional=False, **kwargs):
        kwargs.pop("attention", None)  # from get_config: always local-p
        super().__init__(source_vocabulary_size, target_vocabulary_size,
                         embedding_dim=embedding_dim, units=units, attention=None,
                         attention_units=attention_units, bidirectional=bidirectional, **kwargs)
        self.attention = LocalAttention(half_width, mode="predictive", score=score,
                                        units=attention_units, name="attention")
        self.attention_name = "local-p"
        self.half_width = int(half_width)
        self.score_name = score

    def get_config(self):
        return {**super().get_config(), "half_width": self.half_width, "score": self.score_name}


def local_gru_encoder_decoder(vocabulary_size, embedding_dim=32, units=64, half_width=2,
                              score="general", target_vocabulary_size=None,
                              attention_units=None, seed=None, name=None):
    """A built :class:`LocalGRUEncoderDecoder`, seeded like :func:`gru_encoder_decoder`."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = LocalGRUEncoderDecoder(vocabulary_size, target_vocabulary_size or vocabulary_size,
                                   embedding_dim=embedding_dim, units=units,
                                   half_width=half_width, score=score,
                                   attention_units=attention_units, name=name)
    model((np.ones((1, 2), "int32"), np.ones((1, 2), "int32")))
    return model
