"""Associative recall: fetch the value stored under a key among ``P`` key → value pairs.

Lesson 11 uses it to measure what linear attention gives up. Exact (softmax) attention keeps
every pair and picks the one whose key matches the query; linear attention
(``course_lib.efficient_attention.linear_attention``) first sums the pairs into a state of fixed
size, ``S = Σ_j φ(k_j) v_jᵀ`` (``key_dim × d_model``), and reads the answer out of that sum.
As the number of pairs grows, more and more of them share the same few dimensions of ``S``
and interfere: the bottleneck of lesson 01, a fixed-size summary of a growing input.

The task, :func:`associative_recall_task`: ``P`` pairs ``(k_t, v_t)`` with distinct keys drawn
from ``num_keys`` keys and values drawn (with repeats) from ``num_values`` values, then a query
key chosen among the ``P``; the answer is the value stored under it. Position ``t < P`` holds
pair ``t``; position ``P`` holds the query key and the blank value ``num_values``.

The model, :class:`RecallModel` (one attention layer, the query reading the pairs)::

    x_t = E_key[k_t] + E_value[v_t]                                (B, P + 1, d_model)
    q = x_P W_q,   K = x_{<P} W_k,   V = x_{<P} W_v                 (B, 1, key_dim), (B, P, ·)
    c = softmax(q Kᵀ / √key_dim) V     or     φ(q) (φ(K)ᵀ V) / φ(q) Σ_j φ(k_j)
    logits = W_2 relu(W_1 c + b_1) + b_2                           (B, num_values)

Shapes: inputs ``(B, P + 1, 2)`` int32 (``[..., 0]`` keys, ``[..., 1]`` values), targets
``(B,)`` int32.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from course_lib.attention import scaled_dot_product_attention
from course_lib.efficient_attention import linear_attention
from course_lib.training import Stopwatch
from course_lib.validation import require_positive_int, require_rank

ATTENTIONS = ("softmax", "linear")


@dataclass(frozen=True)
class RecallTask:
    """Sequences of pairs and a query, with the answers.

    Attributes:
        inputs: ``(N, P + 1, 2)`` int32; ``inputs[:, t] = (key, value)`` for ``t < P``,
            ``inputs[:, P] = (query key, num_values)``.
        targets: ``(N,)`` int32, the value stored under the query key.
        num_keys, num_values: the sizes of the two vocabularies.
    """

    inputs: np.ndarray
    targets: np.ndarray
    num_keys: int
    num_values: int

    def __len__(self):
        return len(self.inputs)

    @property
    def num_pairs(self):
        return self.inputs.shape[1] - 1


def associative_recall_task(num_examples, num_pairs, num_keys, num_values, seed):
    """``num_examples`` sequences of ``num_pairs`` key → value pairs and one query.

    Keys are distinct within a sequence (so the answer is unique), values may repeat; the query
    is one of the sequence's keys, chosen uniformly, and so is its position among the pairs.

    Raises:
        ValueError: when ``num_pairs`` exceeds ``num_keys`` (keys must be distinct), or a count
            is not a positive integer.
    """
    num_examples = require_positive_int("num_examples", num_examples)
    num_pairs = require_positive_int("num_pairs", num_pairs)
    num_keys = require_positive_int("num_keys", num_keys)
    num_values = require_positive_int("num_values", num_values, 2)
    seed = require_positive_int("seed", seed, 0)
    if num_pairs > num_keys:
        raise ValueError(f"`num_pairs` ({num_pairs}) cannot exceed `num_keys` ({num_keys}): "
                         f"the keys of a sequence are distinct.")
    rng = np.random.default_rng(seed)
    keys = np.argsort(rng.random((num_examples, num_keys)), axis=1)[:, :num_pairs]
    values = rng.integers(0, num_values, size=(num_examples, num_pairs))
    asked = rng.integers(0, num_pairs, size=num_examples)
    rows = np.arange(num_examples)
    inputs = np.empty((num_examples, num_pairs + 1, 2), dtype="int32")
    inputs[:, :num_pairs, 0], inputs[:, :num_pairs, 1] = keys, values
    inputs[:, num_pairs, 0], inputs[:, num_pairs, 1] = keys[rows, asked], num_values
    return RecallTask(inputs, values[rows, asked].astype("int32"), num_keys, num_values)


@keras.saving.register_keras_serializable(package="course_lib")
class RecallModel(keras.Model):
    """One attention layer from the query position to the pairs, then a small classifier.

    Args:
        num_keys, num_values: vocabulary sizes (the value vocabulary gets one more id, the
            blank at the query position).
        attention: ``"softmax"`` (exact) or ``"linear"`` (φ(x) = elu(x) + 1).
        d_model: width of the embeddings and the values.
        key_dim: width of queries and keys; linear attention's state is
            ``key_dim × d_model``.
        hidden_units: width of the classifier's hidden layer.
    """

    def __init__(self, num_keys, num_values, attention="softmax", d_model=64, key_dim=16,
                 hidden_units=64, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}, received {attention!r}.")
        self.num_keys = require_positive_int("num_keys", num_keys)
        self.num_values = require_positive_int("num_values", num_values, 2)
        self.attention = attention
        self.d_model = require_positive_int("d_model", d_model)
        self.key_dim = require_positive_int("key_dim", key_dim)
        self.hidden_units = require_positive_int("hidden_units", hidden_units)
        self.key_embedding = layers.Embedding(num_keys, d_model, name="key_embedding")
        self.value_embedding = layers.Embedding(num_values + 1, d_model, name="value_embedding")
        self.query_projection = layers.Dense(key_dim, use_bias=False, name="query")
        self.key_projection = layers.Dense(key_dim, use_bias=False, name="key")
        self.value_projection = layers.Dense(d_model, use_bias=False, name="value")
        self.hidden = layers.Dense(hidden_units, activation="relu", name="hidden")
        self.logits = layers.Dense(num_values, name="logits")

    def call(self, inputs):
        require_rank("inputs", inputs, 3)
        tokens = (self.key_embedding(inputs[..., 0])
                  + self.value_embedding(inputs[..., 1]))  # (B, P + 1, d_model)
        pairs, asked = tokens[:, :-1], tokens[:, -1:]  # (B, P, d_model), (B, 1, d_model)
        query = self.query_projection(asked)  # (B, 1, key_dim)
        keys, values = self.key_projection(pairs), self.value_projection(pairs)
        if self.attention == "softmax":
            context, _ = scaled_dot_product_attention(query, keys, values)
        else:
            context = linear_attention(query, keys, values)
        return self.logits(self.hidden(ops.squeeze(context, 1)))  # (B, num_values)

    def get_config(self):
        return {**super().get_config(), "num_keys": self.num_keys,
                "num_values": self.num_values, "attention": self.attention,
                "d_model": self.d_model, "key_dim": self.key_dim,
                "hidden_units": self.hidden_units}


def train_recall(model, task, epochs, batch_size=128, learning_rate=3e-3, seed=None):
    """Adam on the cross-entropy of the answer; returns ``(history, TrainingTime)``.

    ``fit`` shuffles with Keras's global seed; with ``seed`` it is set first.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    stopwatch = Stopwatch()
    history = model.fit(task.inputs, task.targets, batch_size=batch_size, epochs=epochs,
                        verbose=0)
    return history, stopwatch.elapsed()


def recall_accuracy(model, task, batch_size=1024):
    """The fraction of ``task``'s queries whose value the model names (argmax of the logits)."""
    logits = np.asarray(model.predict(task.inputs, verbose=0, batch_size=batch_size))
    return float(np.mean(logits.argmax(axis=-1) == task.targets))
