"""A synthetic task that needs two relations at once, and the one-layer model that learns it.

Lesson 07 (multi-head attention) trains this model with 1, 2, 4, 8 and 16 heads at the same
parameter count, and draws what each head looks at.

The task, :func:`previous_and_largest_task`. A sequence of ``T`` numbers ``x_0 … x_{T-1}``
(tokens ``0 … V-1``); at every position ``i ≥ 1`` the answer is

    ``y_i = max_j x_j − x_{i−1}``

(how far the token *just before* lies below the *largest* token of the sequence). Each answer
needs two lookups of different kinds: ``x_{i−1}`` is found by **position** (one step back,
whatever the tokens), ``max_j x_j`` by **content** (wherever it is). Position 0 has no previous
token, so it has no answer: its sample weight is 0. With ``relation="previous"`` or
``"largest"`` the answer is ``x_{i−1}`` or ``max_j x_j`` alone (the controls: one relation).

The model, :func:`attention_classifier` (Vaswani et al. 2017, one encoder layer without its
layer norms):

    ``h = √d · Embedding(x) + PE``  →  ``h = h + MultiHeadAttention(h, h)``  →
    ``Dense(hidden, relu)``  →  ``Dense(V)``: logits ``(B, T, V)``

with sinusoidal positions ``PE`` and embeddings scaled by ``√d`` so that the positions do not
drown the tokens (lesson 06), and ``key_dim = d_model / num_heads``, so that the
attention has ``4 d² + 4 d`` weights whatever the number of heads (lesson 07). Shapes: ids
``(B, T)`` int32, logits ``(B, T, V)``, attention weights ``(B, heads, T, T)``.
"""

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from course_lib.layers import MultiHeadAttention, SinusoidalPositionEncoding
from course_lib.training import Stopwatch
from course_lib.validation import require_positive_int

RELATIONS = ("both", "previous", "largest")


@dataclass(frozen=True)
class TokenTask:
    """Sequences, one answer per position, and which positions count.

    Attributes:
        inputs: ``(N, T)`` int32 token ids ``0 … V-1``.
        targets: ``(N, T)`` int32 answers ``0 … V-1`` (0 where there is none).
        weights: ``(N, T)`` float32, 1 where a position has an answer, 0 where not.
        vocabulary: the token strings, ``("0", "1", …)``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    vocabulary: tuple

    def __len__(self):
        return len(self.inputs)



def previous_and_largest_task(num_examples, length, vocabulary_size, seed, relation="both"):
    """Sequences of numbers and, at each position ``i ≥ 1``, ``max(x) − x_{i−1}``.

    Each sequence draws its largest value ``m`` uniformly from ``V // 4 … V - 1``, puts it at a
    uniformly drawn position, and fills the other positions uniformly from ``0 … m`` (so ``m``
    may occur more than once, and ``m`` is not almost always ``V - 1``, as it would be if every
    token were drawn from ``0 … V - 1``: the largest token must really be found).

    Args:
        num_examples: number of sequences ``N`` (≥ 1).
        length: tokens per sequence ``T`` (≥ 2).
        vocabulary_size: ``V``, the number of distinct tokens (≥ 4).
        seed: integer seed (≥ 0) of ``numpy.random.default_rng``.
        relation: ``"both"`` (``max(x) − x_{i−1}``), ``"previous"`` (``x_{i−1}``) or
            ``"largest"`` (``max(x)``).

    Returns:
        :class:`TokenTask`; ``weights[:, 0]`` is 0, every other weight 1.
    """
    num_examples = require_positive_int("num_examples", num_examples)
    length = require_positive_int("length", length, 2)
    vocabulary_size = require_positive_int("vocabulary_size", vocabulary_size, 4)
    seed = require_positive_int("seed", seed, 0)
    if relation not in RELATIONS:
        raise ValueError(f"`relation` must be one of {RELATIONS}, received {relation!r}.")
    rng = np.random.default_rng(seed)
    largest = rng.integers(vocabulary_size // 4, vocabulary_size, size=num_examples)
    inputs = np.floor(rng.random((num_examples, length)) * (largest[:, None] + 1)).astype("int32")
    inputs[np.arange(num_examples), rng.integers(0, length, size=num_examples)] = largest
    previous = inputs[:, :-1]
    answer = {"both": largest[:, None] - previous, "previous": previous,
              "largest": np.broadcast_to(largest[:, None], previous.shape)}[relation]
    targets = np.zeros((num_examples, length), dtype="int32")
    targets[:, 1:] = answer
    weights = np.ones((num_examples, length), dtype="float32")
    weights[:, 0] = 0.0
    vocabulary = tuple(str(token) for token in range(vocabulary_size))
    return TokenTask(inputs, targets, weights, vocabulary)


def attention_classifier(vocabulary_size, num_heads, d_model=32, hidden_units=64, seed=None,
                         name=None):
    """One self-attention layer between an embedding and a per-position classifier.

    ``√d_model · Embedding + sinusoidal positions → h + MultiHeadAttention(h, h) →
    Dense(hidden_units, relu) → Dense(vocabulary_size)`` (logits). The attention layer is
    :class:`course_lib.layers.MultiHeadAttention` named ``"attention"``, with
    ``key_dim = d_model // num_heads``; :func:`attention_weights` reads its weights. With
    ``seed``, ``keras.utils.set_random_seed(seed)`` is called first, so the same arguments give
    the same initial weights whatever ran before.

    Raises:
        ValueError: when ``d_model`` is not divisible by ``num_heads``.
    """
    vocabulary_size = require_positive_int("vocabulary_size", vocabulary_size)
    num_heads = require_positive_int("num_heads", num_heads)
    d_model = require_positive_int("d_model", d_model)
    hidden_units = require_positive_int("hidden_units", hidden_units)
    if d_model % num_heads:
        raise ValueError(f"`d_model` ({d_model}) must be divisible by `num_heads` "
                         f"({num_heads}): each head gets d_model / num_heads features.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    ids = keras.Input(shape=(None,), dtype="int32", name="tokens")
    embedded = layers.Embedding(vocabulary_size, d_model, name="embedding")(ids) * math.sqrt(
        d_model)
    hidden = embedded + SinusoidalPositionEncoding(name="positions")(embedded)
    attended, _ = MultiHeadAttention(num_heads, d_model // num_heads, name="attention")(
        hidden, hidden, return_attention_scores=True)
    hidden = layers.Add(name="residual")([hidden, attended])
    hidden = layers.Dense(hidden_units, activation="relu", name="hidden")(hidden)
    logits = layers.Dense(vocabulary_size, name="logits")(hidden)
    return keras.Model(ids, logits, name=name or f"heads_{num_heads}")


def attention_weights(model, inputs):
    """The weights of the model's attention layer on ``inputs``: ``(N, heads, T, T)``."""
    layer = model.get_layer("attention")
    probe = keras.Model(model.inputs, layer.output[1])
    return np.asarray(probe.predict(np.asarray(inputs), verbose=0, batch_size=1024))


def fit_classifier(model, task, epochs, batch_size=64, learning_rate=3e-3, validation=None,
                   seed=None):
    """Compile (Adam, cross-entropy on the logits, weighted by ``task.weights``) and fit.

    Positions whose weight is 0 count neither in the loss nor in the accuracy. ``fit``
    shuffles with Keras's global seed; with ``seed`` it is set first.

    Args:
        model: from :func:`attention_classifier`.
        task, validation: :class:`TokenTask` (``validation`` is scored after every epoch).

    Returns:
        ``(history, time)``: the Keras ``History`` (``loss``, ``accuracy``, and ``val_…``)
        and the :class:`course_lib.training.TrainingTime` of ``fit``.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"])
    validation_data = None
    if validation is not None:
        validation_data = (validation.inputs, validation.targets, validation.weights)
    stopwatch = Stopwatch()
    history = model.fit(task.inputs, task.targets, sample_weight=task.weights,
                        batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                        verbose=0)
    return history, stopwatch.elapsed()


def evaluate_classifier(model, task, batch_size=1024):
    """``(accuracy, loss)`` over the positions with an answer: the fraction answered right
    (argmax of the logits) and the mean cross-entropy in nats."""
    logits = np.asarray(model.predict(task.inputs, verbose=0, batch_size=batch_size),
                        dtype="float64")
    counted = task.weights > 0
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, task.targets[..., None], axis=-1)[..., 0]
    accuracy = float((logits.argmax(-1) == task.targets)[counted].mean())
    return accuracy, float(-picked[counted].mean())
