"""A character-level GPT (lesson 09): the model, its training, and its shipped weights.

A decoder-only Transformer (Radford et al. 2018, 2019) predicts every next token of a text
at once, reading only the tokens before it:

===================  ==========================================================================
part                 computation
===================  ==========================================================================
embedding            ``x_t = E_tok[id_t] + E_pos[t]``: a learned vector per character and per
                     position ``t < context_length`` (absolute, learned, as GPT-2), dropout
blocks               ``N`` × lesson 08's ``course_lib.layers.TransformerDecoderBlock``
                     built without cross-attention, pre-LN (``normalize_first=True``): causal
                     self-attention and a GELU feed-forward net, each with a residual
final norm           ``LayerNorm`` after the last block (a pre-LN stack's output is not
                     normalised otherwise)
output head          ``logits_t = h_t W_out + b``: a separate ``Dense`` (not tied to
                     ``E_tok``; see :class:`GPT`)
===================  ==========================================================================

Training (:func:`fit_gpt`): next-character cross-entropy on random windows of the training
text, AdamW with a linear warm-up then a cosine decay, compiled (``jit_compile=True``).

Generating (``course_lib.generation``) calls :meth:`GPT.call_with_cache` one token at a time
with a key/value cache from :meth:`GPT.empty_cache`. With absolute positions the cache cannot
slide: a model generates at most ``context_length`` tokens with it (prompt included).

The shipped weights: ``scripts/train_gpt.py`` trains :data:`SIZES` with :data:`TRAINING` and
writes ``weights/gpt_shakespeare.weights.h5`` (float16) and
``notebooks/results/09_gpt_training.json`` (the recipe, the curve, samples, the cost);
:func:`load_gpt` reads them back.
"""

import json
import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from course_lib.layers.transformer import TransformerDecoderBlock
from course_lib.shakespeare import consecutive_windows, random_windows
from course_lib.shipped_weights import load_shipped_weights
from course_lib.training import TrainingTime
from course_lib.validation import require_positive_int, require_rank, static_shape

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_FILE = "gpt_shakespeare.weights.h5"
RESULTS_DIR = ROOT / "notebooks" / "results"
RESULTS_FILE = "09_gpt_training.json"

# Chosen by measurement (scripts/train_gpt.py); the lesson and the script use them.
SIZES = {"context_length": 128, "num_layers": 4, "num_heads": 4, "d_model": 128,
         "intermediate_dim": 512, "dropout": 0.0}
TRAINING = {"steps": 6600, "batch_size": 8, "learning_rate": 2e-3, "warmup_steps": 100,
            "weight_decay": 0.1, "clipnorm": 1.0, "seed": 1}


@keras.saving.register_keras_serializable(package="course_lib")
class GPT(keras.Model):
    """Decoder-only Transformer: ``token_ids (B, T)`` → next-token logits ``(B, T, V)``,
    ``T <= context_length``. See the module docstring for the parts.

    The output head is a separate ``Dense`` layer, not the token embedding transposed (Press
    & Wolf 2017's tying): tying saves ``V × d_model`` weights, which matters for a vocabulary
    of 50,000 sub-words and not for 65 characters (8,320 weights, 1 % of lesson 09's model),
    and it would make the embedding of a character serve as its output vector too.

    Args:
        vocabulary_size: number of token ids ``V``.
        context_length: number of learned positions: the longest sequence the model reads.
        num_layers, num_heads, d_model, intermediate_dim: the blocks' sizes.
        dropout: on the embeddings, the attention weights and every residual branch.
        activation: of the feed-forward hidden layers.
        layer_norm_epsilon: of every LayerNorm.
    """

    def __init__(self, vocabulary_size, context_length, num_layers=4, num_heads=4, d_model=128,
                 intermediate_dim=512, dropout=0.0, activation="gelu", layer_norm_epsilon=1e-5,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = require_positive_int("vocabulary_size", vocabulary_size)
        self.context_length = require_positive_int("context_length", context_length)
        self.num_layers = require_positive_int("num_layers", num_layers)
        self.num_heads = require_positive_int("num_heads", num_heads)
        self.d_model = require_positive_int("d_model", d_model)
        self.intermediate_dim = require_positive_int("intermediate_dim", intermediate_dim)
        if self.d_model % self.num_heads:
            raise ValueError(f"`d_model` ({d_model}) must be divisible by `num_heads` "
                             f"({num_heads}).")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout!r}.")
        self.dropout = float(dropout)
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        initializer = keras.initializers.RandomNormal(stddev=0.02)   # GPT-2's
        # Every sublayer takes the model's dtype policy (float32 weights, half-precision
        # compute under a mixed policy), as Keras's own models do.
        policy = self.dtype_policy
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size, self.d_model, embeddings_initializer=initializer,
            dtype=policy, name="token_embedding")
        self.position_embedding = keras.layers.Embedding(
            self.context_length, self.d_model, embeddings_initializer=initializer,
            dtype=policy, name="position_embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=policy,
                                                      name="embedding_dropout")
        self.blocks = [self.make_block(index) for index in range(self.num_layers)]
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="final_layer_norm")
        self.output_head = keras.layers.Dense(self.vocabulary_size, dtype=policy,
                                              name="output_head")

    @property
    def head_dim(self):
        return self.d_model // self.num_heads

    def make_block(self, index):
        """Block ``index`` of the stack; a variant of the model (other attention, other
        positions) overrides this, and :meth:`embed`, rather than the whole model."""
        return TransformerDecoderBlock(self.intermediate_dim, self.num_heads,
                                       dropout=self.dropout, normalize_first=True,
                                       activation=self.activation,
                                       layer_norm_epsilon=self.layer_norm_epsilon,
                                       dtype=self.dtype_policy, name=f"block_{index}")

    def build(self, input_shape=None):
        x_shape = (None, None, self.d_model)
        self.token_embedding.build((None, None))
        self.position_embedding.build((None,))
        for block in self.blocks:
            block.build(x_shape)
        self.final_layer_norm.build(x_shape)
        self.output_head.build(x_shape)
        self.built = True

    def embed(self, token_ids, start_position=0, training=None):
        """``E_tok[ids] + E_pos[start_position + t]``, ``(B, T, d_model)``, then dropout."""
        positions = ops.arange(ops.shape(token_ids)[1]) + start_position   # (T,)
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        return self.embedding_dropout(x, training=training)

    def logits(self, states):
        """``(B, T, d_model)`` block outputs → ``(B, T, V)`` logits (final norm, head)."""
        return self.output_head(self.final_layer_norm(states))

    def call(self, token_ids, training=None):
        self._check_ids(token_ids, self.context_length)
        x = self.embed(token_ids, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self.logits(x)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Logits of new tokens given a cache of every block's keys and values.

        Args:
            token_ids: ``(B, T)``, the tokens at positions ``cache_update_index …
                cache_update_index + T - 1`` (the whole prompt at index 0, then one token
                per step).
            cache: ``(B, num_layers, 2, S, num_heads, head_dim)`` from :meth:`empty_cache`
                or an earlier call.
            cache_update_index: an int or an int tensor.

        Returns:
            ``(logits (B, T, V), cache)``, the cache with the new tokens' keys and values.
        """
        ids_shape = self._check_ids(token_ids, None)
        self._check_cache(cache, ids_shape[0])
        x = self.embed(token_ids, start_position=cache_update_index)
        layer_caches = []
        for index, block in enumerate(self.blocks):
            x, layer_cache = block(x, self_attention_cache=cache[:, index],
                                   self_attention_cache_update_index=cache_update_index)
            layer_caches.append(layer_cache)
        return self.logits(x), ops.stack(layer_caches, axis=1)

    def empty_cache(self, batch_size, length=None):
        """Zeros ``(B, num_layers, 2, length, num_heads, head_dim)`` (in the model's compute
        dtype: float32, or the half type of a mixed policy) for
        :meth:`call_with_cache`; ``length`` defaults to ``context_length`` and may not exceed
        it (a learned position table has no row beyond it)."""
        batch_size = require_positive_int("batch_size", batch_size)
        length = self.context_length if length is None else require_positive_int("length",
                                                                                 length)
        if length > self.context_length:
            raise ValueError(f"A cache of {length} positions is longer than the model's "
                             f"context_length={self.context_length}.")
        return ops.zeros((batch_size, self.num_layers, 2, length, self.num_heads,
                          self.head_dim), dtype=self.compute_dtype)

    def attention_weights(self, token_ids):
        """Every block's attention weights on ``token_ids (B, T)``: a list of ``num_layers``
        arrays ``(B, num_heads, T, T)``, no dropout."""
        self._check_ids(token_ids, self.context_length)
        x = self.embed(token_ids)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention_scores=True)
            maps.append(ops.convert_to_numpy(weights))
        return maps

    def _check_ids(self, token_ids, longest):
        shape = require_rank("token_ids", token_ids, 2)
        if longest is not None and shape[1] is not None and shape[1] > longest:
            raise ValueError(f"`token_ids` of shape {shape} is longer than the model's "
                             f"context_length={longest}: crop it to the last {longest} tokens.")
        return shape

    def _check_cache(self, cache, batch_size):
        shape = static_shape(cache)
        expected = (batch_size, self.num_layers, 2, None, self.num_heads, self.head_dim)
        if len(shape) != 6 or any(a is not None and b is not None and a != b
                                  for a, b in zip(shape, expected, strict=True)):
            raise ValueError(f"`cache` must have shape (batch, num_layers, 2, length, "
                             f"num_heads, head_dim) = {expected}, received {shape}.")
        if shape[3] is not None and shape[3] > self.context_length:
            raise ValueError(f"`cache` of shape {shape} has more positions than the model's "
                             f"context_length={self.context_length}.")

    def get_config(self):
        return {**super().get_config(),
                "vocabulary_size": self.vocabulary_size, "context_length": self.context_length,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "d_model": self.d_model, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout, "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon}


def build_gpt(vocabulary_size, seed=None, **sizes):
    """A built :class:`GPT`; ``sizes`` override :data:`SIZES`. With ``seed``, Keras's global
    seed is set first, so the same arguments give the same initial weights."""
    unknown = set(sizes) - set(SIZES) - {"activation", "layer_norm_epsilon"}
    if unknown:
        raise ValueError(f"Unknown sizes {sorted(unknown)}; expected some of {sorted(SIZES)}.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = GPT(vocabulary_size, **{**SIZES, **sizes})
    model.build()
    return model


# ---------------------------------------------------------------------------------------------
# Training


@keras.saving.register_keras_serializable(package="course_lib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(s) = peak · s / w`` for the first ``w`` steps, then a half cosine from ``peak`` down
    to ``peak · final_fraction`` at ``total_steps``. ``s`` counts from 1."""

    def __init__(self, peak, warmup_steps, total_steps, final_fraction=0.1):
        warmup_steps = require_positive_int("warmup_steps", warmup_steps, minimum=0)
        total_steps = require_positive_int("total_steps", total_steps)
        if warmup_steps >= total_steps:
            raise ValueError(f"Need warmup_steps < total_steps, received {warmup_steps} and "
                             f"{total_steps}.")
        self.peak = float(peak)
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(max(self.warmup_steps, 1))
        rising = self.peak * step / warmup
        progress = ops.clip((step - warmup) / float(self.total_steps - self.warmup_steps),
                            0.0, 1.0)
        floor = self.peak * self.final_fraction
        falling = floor + 0.5 * (self.peak - floor) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "final_fraction": self.final_fraction}


def compile_for_training(model, steps, learning_rate=TRAINING["learning_rate"],
                         warmup_steps=TRAINING["warmup_steps"],
                         weight_decay=TRAINING["weight_decay"], clipnorm=TRAINING["clipnorm"]):
    """AdamW (β₂ 0.99; no decay on biases, LayerNorm scales and shifts) with a warm-up and a
    cosine decay over ``steps``, cross-entropy on logits, compiled with XLA where it can."""
    schedule = WarmupCosine(learning_rate, min(warmup_steps, steps - 1), steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, beta_2=0.99,
                                       clipnorm=clipnorm)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)


def validation_loss(model, ids, length=None, batch_size=64, max_windows=None):
    """Mean next-character cross-entropy (nats per character) of ``model`` on ``ids`` cut
    into back-to-back windows of ``length`` (default: the model's context), no dropout;
    ``max_windows`` evenly spaced windows only, if given (a quicker estimate).

    The model runs compiled (``predict_on_batch``); the last batch is padded to the others'
    size so that one program serves all batches (the padded rows are not counted).
    """
    length = model.context_length if length is None else length
    inputs, targets = consecutive_windows(ids, length)
    if max_windows is not None and require_positive_int("max_windows", max_windows) < len(inputs):
        chosen = np.linspace(0, len(inputs) - 1, max_windows).round().astype(int)
        inputs, targets = inputs[chosen], targets[chosen]
    batch_size = min(require_positive_int("batch_size", batch_size), len(inputs))
    total = 0.0
    for begin in range(0, len(inputs), batch_size):
        batch = inputs[begin:begin + batch_size]                          # (b, T)
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - real, length), batch.dtype)])
        logits = np.asarray(model.predict_on_batch(batch), dtype=np.float64)[:real]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        picked = np.take_along_axis(log_p, targets[begin:begin + real, :, None], axis=-1)
        total -= float(picked.sum())
    return total / targets.size


def fit_gpt(model, train_ids, steps, batch_size=TRAINING["batch_size"],
            learning_rate=TRAINING["learning_rate"], warmup_steps=TRAINING["warmup_steps"],
            weight_decay=TRAINING["weight_decay"], clipnorm=TRAINING["clipnorm"], seed=None,
            validation_ids=None, eval_every=None, eval_windows=None, on_evaluation=None,
            max_seconds=None):
    """Train ``model`` for ``steps`` steps of ``batch_size`` random windows of
    ``model.context_length`` characters of ``train_ids`` (see :func:`compile_for_training`).

    Every ``eval_every`` steps (and after the last) the validation loss on ``validation_ids``
    is measured (``eval_windows`` windows, or all) and ``on_evaluation(record)`` called.
    ``max_seconds`` stops after the step during which that much CPU time was spent.

    Returns:
        ``(history, times)``: ``history`` ``{"step": [...], "train_loss": [...],
        "validation_loss": [...], "batch_loss": [...]}`` (``train_loss``: the mean batch loss
        since the previous evaluation), ``times`` a ``TrainingTime`` of the training steps
        alone (wall and CPU seconds, evaluations excluded).
    """
    steps = require_positive_int("steps", steps)
    if eval_every is not None:
        require_positive_int("eval_every", eval_every)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    compile_for_training(model, steps, learning_rate, warmup_steps, weight_decay, clipnorm)
    history = {"step": [], "train_loss": [], "validation_loss": [], "batch_loss": []}
    wall = cpu = 0.0
    since_evaluation = []
    for step in range(1, steps + 1):
        inputs, targets = random_windows(train_ids, batch_size, model.context_length, rng)
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        loss = float(model.train_on_batch(inputs, targets))
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
        history["batch_loss"].append(loss)
        since_evaluation.append(loss)
        out_of_time = max_seconds is not None and cpu >= max_seconds
        if (eval_every and step % eval_every == 0) or step == steps or out_of_time:
            record = {"step": step, "train_loss": float(np.mean(since_evaluation)),
                      "validation_loss": None, "cpu_seconds": cpu, "wall_seconds": wall}
            if validation_ids is not None:
                record["validation_loss"] = validation_loss(model, validation_ids,
                                                            max_windows=eval_windows)
            for key in ("step", "train_loss", "validation_loss"):
                history[key].append(record[key])
            since_evaluation = []
            if on_evaluation is not None:
                on_evaluation(record)
        if out_of_time:
            break
    return history, TrainingTime(wall=wall, cpu=cpu)


# ---------------------------------------------------------------------------------------------
# The shipped weights


def gpt_results(results_dir=None):
    """The JSON record ``scripts/train_gpt.py`` wrote with the weights (a dict)."""
    path = Path(results_dir or RESULTS_DIR) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No {RESULTS_FILE} in {path.parent}: run "
                                f"scripts/train_gpt.py first.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_gpt(corpus, weights_dir=None, results_dir=None):
    """The trained character-level GPT with the shipped weights, for ``corpus``'s vocabulary
    (a ValueError if it is not the one the weights were trained with)."""
    results = gpt_results(results_dir)
    trained_with = results["corpus"]["vocabulary_fingerprint"]
    if corpus.vocabulary.fingerprint() != trained_with:
        raise ValueError(f"The shipped weights were trained with the character vocabulary "
                         f"{trained_with}, not this corpus's "
                         f"{corpus.vocabulary.fingerprint()}.")
    return load_shipped_weights(build_gpt(len(corpus.vocabulary), **results["model"]),
                                results["weights"], weights_dir)
