"""A small Transformer translator (lesson 08): the model, its training and its greedy decoding.

Vaswani et al. 2017, "Attention Is All You Need", on lesson 03's English → French data (the same
split and vocabularies: ``course_lib.translation.load_corpus()``):

===================  ==========================================================================
part                 computation
===================  ==========================================================================
source embedding     ``x = E_src[ids] · √d + PE(positions)``, then dropout (§3.4, §3.5; ``PE``
                     is ``course_lib.layers.SinusoidalPositionEncoding``)
encoder              ``N`` × ``course_lib.layers.TransformerEncoderBlock`` (self-attention,
                     feed-forward, residuals, LayerNorm; padding of the source masked)
target embedding     ``y = E_tgt[START + target ids] · √d + PE``, then dropout
decoder              ``N`` × ``course_lib.layers.TransformerDecoderBlock`` (causal
                     self-attention, cross-attention to the encoder's outputs, feed-forward)
output               ``logits = h E_tgtᵀ + b`` with the target embedding *tied* to the output
                     projection (§3.4, Press & Wolf 2017), or a separate ``Dense``
===================  ==========================================================================

With ``normalize_first=True`` the blocks are pre-LN and a final LayerNorm closes each stack
(Xiong et al. 2020). The decoder needs no padding mask of its own: targets are right-padded
and the causal mask already stops every real position from seeing a later (padding) one;
the loss ignores the padded positions.

Training (:func:`fit_transformer`): teacher forcing, cross-entropy with label smoothing ε
(§5.4: the target distribution puts ``1 − ε`` on the right word and spreads ``ε`` uniformly
over the vocabulary), Adam (β₂ = 0.98, §5.3), a linear warm-up of the learning rate then a
cosine decay to zero (the paper's "Noam" schedule, ``d^-0.5 · min(s^-0.5, s · w^-1.5)``, has the
same warm-up but decays as ``1/√s``, too slowly for a run of a few thousand steps), batches of
similar length (``course_lib.training``, the loop lesson 03's GRU translator uses too).

Decoding (:func:`greedy_decode`): greedy and *cache-free*: at step ``t`` the decoder is run again
on the whole prefix ``y_0 … y_t`` and only the last position's logits are used. That costs
``O(t)`` decoder positions per step instead of one (a key/value cache would keep the earlier
positions' keys and values), which does not matter for sentences of at most 16 tokens.
:func:`greedy_decode`, :func:`translate` and :func:`evaluate` return the same kinds of things as
their namesakes in ``course_lib.gru_translator``: ``(ids, attention weights)``, ``(token lists,
attention weights)`` and ``(Scores, hypotheses)``; the attention weights are the last decoder
block's cross-attention, averaged over its heads (:func:`cross_attention_weights` gives every
head of any block).

The shipped weights: ``scripts/train_transformer.py`` trains the model with :data:`SIZES` and
:data:`TRAINING`, writes ``weights/transformer_translator.weights.h5`` (float16) and
``weights/transformer_results.json``; :func:`load_transformer` reads them back.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

from course_lib.data import END_ID, PAD_ID, START_ID
from course_lib.layers import (
    SinusoidalPositionEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from course_lib.shipped_weights import (
    load_shipped_weights,
    require_training_vocabularies,
    shipped_results,
)
from course_lib.training import MaskedCrossEntropy, masked_loss, train_bucketed
from course_lib.translation import corpus_scores
from course_lib.validation import require_positive_int

RESULTS_FILE = "transformer_results.json"
WEIGHTS_FILE = "transformer_translator.weights.h5"

# Chosen by measurement (docs/transformer_weights.md); scripts/train_transformer.py uses them.
SIZES = {"d_model": 128, "num_layers": 2, "num_heads": 4, "intermediate_dim": 512,
         "dropout": 0.1, "normalize_first": False, "tie_embeddings": True}
TRAINING = {"epochs": 25, "batch_size": 64, "learning_rate": 1e-3, "warmup_steps": 1000,
            "label_smoothing": 0.1, "clipnorm": 1.0, "seed": 1}


@keras.saving.register_keras_serializable(package="course_lib")
class TransformerTranslator(keras.Model):
    """Encoder–decoder Transformer: call it on ``(source_ids (B, S), decoder_input_ids (B, T))``
    to get logits ``(B, T, target_vocabulary_size)`` (teacher forcing). See the module docstring.

    Args:
        source_vocabulary_size, target_vocabulary_size: sizes of the id spaces (padding
            included).
        d_model: width of the embeddings and of every block.
        num_layers: blocks in the encoder and, as many, in the decoder.
        num_heads: attention heads (must divide ``d_model``).
        intermediate_dim: width of the feed-forward hidden layer (``d_ff``).
        dropout: on the embeddings, the attention weights and every residual branch.
        normalize_first: pre-LN blocks (and a final LayerNorm per stack) instead of post-LN.
        tie_embeddings: use the target embedding as the output projection.
    """

    def __init__(self, source_vocabulary_size, target_vocabulary_size, d_model=128,
                 num_layers=2, num_heads=4, intermediate_dim=512, dropout=0.1,
                 normalize_first=False, tie_embeddings=True, **kwargs):
        super().__init__(**kwargs)
        self.source_vocabulary_size = require_positive_int("source_vocabulary_size",
                                                           source_vocabulary_size)
        self.target_vocabulary_size = require_positive_int("target_vocabulary_size",
                                                           target_vocabulary_size)
        self.d_model = require_positive_int("d_model", d_model)
        self.num_layers = require_positive_int("num_layers", num_layers)
        self.num_heads = require_positive_int("num_heads", num_heads)
        self.intermediate_dim = require_positive_int("intermediate_dim", intermediate_dim)
        if self.d_model % self.num_heads:
            raise ValueError(f"`d_model` ({d_model}) must be divisible by `num_heads` "
                             f"({num_heads}).")
        self.dropout = float(dropout)
        self.normalize_first = bool(normalize_first)
        self.tie_embeddings = bool(tie_embeddings)
        # N(0, d^-1/2): after the √d scale an embedding has unit variance, like PE's entries.
        initializer = keras.initializers.RandomNormal(stddev=self.d_model ** -0.5)
        self.source_embedding = keras.layers.Embedding(
            self.source_vocabulary_size, self.d_model, embeddings_initializer=initializer,
            name="source_embedding")
        self.target_embedding = keras.layers.Embedding(
            self.target_vocabulary_size, self.d_model, embeddings_initializer=initializer,
            name="target_embedding")
        self.position_encoding = SinusoidalPositionEncoding(name="position_encoding")
        self.source_dropout = keras.layers.Dropout(self.dropout, name="source_dropout")
        self.target_dropout = keras.layers.Dropout(self.dropout, name="target_dropout")
        block = {"intermediate_dim": self.intermediate_dim, "num_heads": self.num_heads,
                 "dropout": self.dropout, "normalize_first": self.normalize_first}
        self.encoder_blocks = [TransformerEncoderBlock(**block, name=f"encoder_{i}")
                               for i in range(self.num_layers)]
        self.decoder_blocks = [TransformerDecoderBlock(**block, name=f"decoder_{i}")
                               for i in range(self.num_layers)]
        if self.normalize_first:
            self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-5,
                                                                name="encoder_norm")
            self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-5,
                                                                name="decoder_norm")
        if not self.tie_embeddings:
            self.classifier = keras.layers.Dense(self.target_vocabulary_size, name="classifier")

    def build(self, input_shape=None):
        source_shape = (None, None)
        x_shape = (None, None, self.d_model)
        self.source_embedding.build(source_shape)
        self.target_embedding.build(source_shape)
        for block in self.encoder_blocks:
            block.build(x_shape)
        for block in self.decoder_blocks:
            block.build(x_shape, x_shape)
        if self.normalize_first:
            self.encoder_norm.build(x_shape)
            self.decoder_norm.build(x_shape)
        if self.tie_embeddings:
            self.output_bias = self.add_weight(name="output_bias",
                                               shape=(self.target_vocabulary_size,),
                                               initializer="zeros")
        else:
            self.classifier.build(x_shape)
        self.built = True

    def _embed(self, ids, embedding, dropout, training):
        x = embedding(ids) * ops.cast(math.sqrt(self.d_model), embedding.compute_dtype)
        return dropout(x + self.position_encoding(x), training=training)

    def encode(self, source_ids, training=None):
        """``(encoder_outputs (B, S, d_model), source_mask (B, S))``: the source read once."""
        source_mask = ops.not_equal(source_ids, PAD_ID)
        x = self._embed(source_ids, self.source_embedding, self.source_dropout, training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=source_mask, training=training)
        if self.normalize_first:
            x = self.encoder_norm(x)
        return x, source_mask

    def decode(self, decoder_input_ids, encoder_outputs, source_mask, training=None,
               return_attention_scores=False):
        """Logits ``(B, T, V)`` for every target position, given the encoded source.

        With ``return_attention_scores=True``, ``(logits, cross_weights)``: a list with, per
        decoder block, its cross-attention weights ``(B, heads, T, S)``.
        """
        y = self._embed(decoder_input_ids, self.target_embedding, self.target_dropout, training)
        cross_weights = []
        for block in self.decoder_blocks:
            y, _, weights = block(y, encoder_outputs, encoder_padding_mask=source_mask,
                                  return_attention_scores=True, training=training)
            cross_weights.append(weights)
        if self.normalize_first:
            y = self.decoder_norm(y)
        logits = self.project(y)
        return (logits, cross_weights) if return_attention_scores else logits

    def project(self, states):
        """Logits ``(B, T, V)`` of decoder states: ``h E_tgtᵀ + b`` (tied) or a Dense layer."""
        if self.tie_embeddings:
            return ops.matmul(states, ops.transpose(self.target_embedding.embeddings)) \
                + self.output_bias
        return self.classifier(states)

    def call(self, inputs, training=None):
        source_ids, decoder_input_ids = inputs
        encoder_outputs, source_mask = self.encode(source_ids, training=training)
        return self.decode(decoder_input_ids, encoder_outputs, source_mask, training=training)

    def get_config(self):
        return {**super().get_config(),
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
                "d_model": self.d_model, "num_layers": self.num_layers,
                "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout, "normalize_first": self.normalize_first,
                "tie_embeddings": self.tie_embeddings}


def build_transformer(corpus, seed=None, **sizes):
    """A built :class:`TransformerTranslator` for ``corpus``'s vocabularies.

    ``sizes`` override :data:`SIZES`; with ``seed`` Keras's global seed is set first, so the
    same arguments give the same initial weights whatever ran before.
    """
    unknown = set(sizes) - set(SIZES)
    if unknown:
        raise ValueError(f"Unknown sizes {sorted(unknown)}; expected some of {sorted(SIZES)}.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = TransformerTranslator(len(corpus.source_vocabulary), len(corpus.target_vocabulary),
                                  **{**SIZES, **sizes})
    model((np.ones((1, 2), "int32"), np.ones((1, 2), "int32")))
    return model


# ---------------------------------------------------------------------------------------------
# Training


@keras.saving.register_keras_serializable(package="course_lib")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(s) = peak · s / w`` for the first ``w`` steps, then a half cosine from ``peak`` to 0
    at ``total_steps`` (and 0 after). ``s`` counts from 1."""

    def __init__(self, peak, warmup_steps, total_steps):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"Need 0 <= warmup_steps < total_steps, received "
                             f"{warmup_steps} and {total_steps}.")
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        rising = self.peak * step / warmup
        progress = ops.clip((step - warmup) / float(self.total_steps - self.warmup_steps),
                            0.0, 1.0)
        falling = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


def fit_transformer(model, pairs, epochs, batch_size=TRAINING["batch_size"],
                    learning_rate=TRAINING["learning_rate"],
                    warmup_steps=TRAINING["warmup_steps"],
                    label_smoothing=TRAINING["label_smoothing"], clipnorm=TRAINING["clipnorm"],
                    validation_pairs=None, seed=None, max_seconds=None, on_epoch_end=None):
    """Train with teacher forcing on batches of similar length (see the module docstring).

    Args:
        model: a built :class:`TransformerTranslator`.
        pairs: ``SequencePairs`` (e.g. ``corpus.train``).
        epochs: passes over ``pairs``; the learning rate reaches 0 at the end of the last one.
        batch_size, learning_rate (the peak), warmup_steps, label_smoothing, clipnorm: the
            recipe (defaults :data:`TRAINING`).
        validation_pairs: optional ``SequencePairs``; their plain masked cross-entropy
            (``ε = 0``) is recorded after every epoch as ``val_loss``.
        seed: sets Keras's global seed (dropout) and seeds the batch order of every epoch.
        max_seconds: stop after the epoch during which this many seconds of training passed
            (the schedule still assumes ``epochs``: a run cut short ends at a higher rate).
        on_epoch_end: optional ``f(epoch, logs)``.

    Returns:
        ``(history, times)``: ``history`` ``{"loss": [...], "val_loss": [...],
        "batch_loss": [...]}`` (per-epoch means, and the loss of every batch; ``loss`` is the
        smoothed training loss), ``times`` a
        ``course_lib.training.TrainingTime`` (wall and CPU seconds of training, validation
        excluded).
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    steps = epochs * -(-len(pairs) // batch_size)
    schedule = WarmupCosineDecay(learning_rate, min(warmup_steps, steps - 1), steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_2=0.98, epsilon=1e-9,
                                                  clipnorm=clipnorm),
                  loss=MaskedCrossEntropy(label_smoothing))
    validation_loss = None if validation_pairs is None else (
        lambda: masked_loss(model, validation_pairs))
    return train_bucketed(model, pairs, epochs, batch_size, seed=seed,
                          validation_loss=validation_loss, max_seconds=max_seconds,
                          on_epoch_end=on_epoch_end)


# ---------------------------------------------------------------------------------------------
# Decoding and scoring


def greedy_decode(model, source_ids, max_length, batch_size=512):
    """Greedy, cache-free decoding: ``(ids (N, max_length) int32, weights (N, T, S))``.

    Each batch is encoded once; then at every step the decoder runs on the whole prefix
    ``START y_1 … y_t`` (causal mask, so position ``t`` sees only the prefix) and the last
    position's most likely word is appended. Everything after a row's ``END_ID`` is
    ``PAD_ID``; the loop stops early once every row has ended. ``weights[n, t]`` is where step
    ``t`` looked in the source: the last decoder block's cross-attention, averaged over heads
    (zero after the row ended).
    """
    source_ids = np.asarray(source_ids)
    if source_ids.ndim != 2:
        raise ValueError(f"`source_ids` must be (N, S), received shape {source_ids.shape}.")
    predictions = np.full((len(source_ids), max_length), PAD_ID, dtype="int32")
    weights = np.zeros((len(source_ids), max_length, source_ids.shape[1]), dtype="float32")
    with warnings.catch_warnings():
        # At step 0 the prefix is one token, whose self-attention has one key: Keras warns
        # that a softmax over one value is always 1. That is right, and harmless.
        warnings.filterwarnings("ignore", message="You are using a softmax over axis -1")
        for begin in range(0, len(source_ids), batch_size):
            rows = slice(begin, begin + batch_size)
            _greedy_batch(model, source_ids[rows], predictions[rows], weights[rows])
    return predictions, weights


def _greedy_batch(model, source_ids, predictions, weights):
    """Decode one batch into ``predictions (B, T)`` and ``weights (B, T, S)``, in place."""
    encoder_outputs, source_mask = model.encode(source_ids, training=False)
    prefix = np.full((len(source_ids), 1), START_ID, dtype="int32")
    ended = np.zeros(len(source_ids), dtype=bool)
    for step in range(predictions.shape[1]):
        logits, cross_weights = model.decode(prefix, encoder_outputs, source_mask,
                                             training=False, return_attention_scores=True)
        token = ops.convert_to_numpy(ops.argmax(logits[:, -1], axis=-1)).astype("int32")
        token = np.where(ended, PAD_ID, token)
        predictions[:, step] = token
        last_block = ops.convert_to_numpy(cross_weights[-1][:, :, -1])  # (B, heads, S)
        weights[:, step] = np.where(ended[:, None], 0.0, last_block.mean(axis=1))
        ended |= token == END_ID
        if ended.all():
            break
        prefix = np.concatenate([prefix, token[:, None]], axis=1)


def translate(model, source_ids, target_vocabulary, max_length, batch_size=512):
    """Greedy translations of ``source_ids (N, S)``: ``(token lists, attention weights (N, T,
    S))``, as :func:`greedy_decode` gives them."""
    predictions, weights = greedy_decode(model, source_ids, max_length, batch_size=batch_size)
    return [target_vocabulary.decode(row) for row in predictions], weights


def evaluate(model, corpus, limit=None, batch_size=512):
    """Translate the distinct test sentences of ``corpus`` (the first ``limit`` of them, or
    all) and score them against all their references: ``(Scores, hypotheses)``."""
    count = len(corpus.test_sources) if limit is None else int(limit)
    hypotheses, _ = translate(model, corpus.test_source_ids[:count], corpus.target_vocabulary,
                              corpus.max_target_length, batch_size=batch_size)
    return corpus_scores(hypotheses, corpus.test_references[:count]), hypotheses


def cross_attention_weights(model, source_ids, decoder_input_ids, layer=-1):
    """Cross-attention weights ``(B, heads, T, S)`` of one decoder block (the last by default),
    with dropout off and the decoder fed ``decoder_input_ids`` (teacher forcing): where each
    target position looked in the source."""
    encoder_outputs, source_mask = model.encode(np.asarray(source_ids), training=False)
    _, cross_weights = model.decode(np.asarray(decoder_input_ids), encoder_outputs, source_mask,
                                    training=False, return_attention_scores=True)
    return ops.convert_to_numpy(cross_weights[layer])


# ---------------------------------------------------------------------------------------------
# The shipped weights


def transformer_results(weights_dir=None):
    """The JSON record ``scripts/train_transformer.py`` wrote beside the weights (a dict)."""
    return shipped_results(RESULTS_FILE, "scripts/train_transformer.py", weights_dir)


def load_transformer(corpus, weights_dir=None):
    """The trained Transformer translator with the shipped weights.

    Checks first that ``corpus`` has the vocabularies the weights were trained with (their
    fingerprints are in the results file): other vocabularies would load without error and
    translate nonsense.
    """
    results = transformer_results(weights_dir)
    require_training_vocabularies(corpus, results)
    model = build_transformer(corpus, **results["model"])
    return load_shipped_weights(model, results["weights"], weights_dir)
