"""Lesson 06's self-attention sentence classifier, as a library model, so that lesson 13 can take
its attention apart.

    x_t = √d · E[w_t] + PE(t)                               word vector and sinusoidal position
    h = LN(x + MultiHead(x, x, x; padding masked))          one self-attention layer, 1 head
    a = softmax_t(q · h_t) over the real words               attention pooling (``pooling=
    s = Σ_t a_t h_t,  P(positive) = σ(v · s + c)              "attention"``) or a = 1/n
                                                             (``"uniform"``)

with dropout on ``x`` and on the attention's output in training. Trained as in lesson 06
(:func:`fit_sentence_classifier`: Adam at 3·10⁻³, batches of 64, at most 12 epochs, stopped when
the validation accuracy has not improved for 2 epochs, the best epoch's weights kept).

Besides ``model(ids) → P(positive)``, the model opens its insides for attribution: the word
vectors (:meth:`SentenceClassifier.word_vectors`) and the logit as a function of them
(:meth:`~SentenceClassifier.logit_from_word_vectors`, for gradients), the states and the pooling
weights (:meth:`~SentenceClassifier.explain`), and the logit for any pooling weights one cares to
put in their place (:meth:`~SentenceClassifier.logit_from_pooling`, the counterfactual test).
"""

import keras
import numpy as np
from keras import ops

from course_lib.data import PAD_ID
from course_lib.layers import AttentionPooling, MultiHeadAttention, SinusoidalPositionEncoding
from course_lib.shipped_weights import load_shipped_weights
from course_lib.validation import require_positive_int

POOLINGS = ("attention", "uniform")
SIZES = {"d_model": 32, "dropout": 0.2}
TRAINING = {"epochs": 12, "batch_size": 64, "learning_rate": 3e-3, "patience": 2}
SHIPPED_WEIGHTS = "sentiment_classifier.weights.h5"
# The vocabulary the shipped weights were trained with: lesson 06's, ``load_sentiment()``.
SHIPPED_VOCABULARY_FINGERPRINT = "2517091d4eebe30c"


@keras.saving.register_keras_serializable(package="course_lib")
class SentenceClassifier(keras.Model):
    """Lesson 06's classifier: ``ids (B, T) → P(positive) (B, 1)``; ``PAD_ID`` (0) is padding.

    Args:
        vocabulary_size: the number of word ids.
        d_model: ``d``, the width of word vectors and states.
        dropout: the dropout rate in training.
        pooling: ``"attention"`` (a learned query) or ``"uniform"`` (the mean of the real
            words' states: attention frozen to ``1/n``, the baseline of Wiegreffe & Pinter 2019).
    """

    def __init__(self, vocabulary_size, d_model=32, dropout=0.2, pooling="attention", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received {pooling!r}.")
        self.vocabulary_size = require_positive_int("vocabulary_size", vocabulary_size)
        self.d_model = require_positive_int("d_model", d_model)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.words = keras.layers.Embedding(self.vocabulary_size, self.d_model, name="words")
        self.positions = SinusoidalPositionEncoding(name="positions")
        self.input_dropout = keras.layers.Dropout(self.dropout)
        self.self_attention = MultiHeadAttention(num_heads=1, key_dim=self.d_model,
                                                 name="self_attention")
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.attention_pooling = (AttentionPooling(name="attention_pooling")
                                  if pooling == "attention" else None)
        self.output_layer = keras.layers.Dense(1, name="output")

    def word_vectors(self, ids):
        """``√d · E[ids]``: ``(B, T) → (B, T, d)``, before positions are added."""
        return self.words(ids) * np.sqrt(self.d_model)

    def states(self, word_vectors, mask, training=False):
        """``h = LN(x + MultiHead(x, x))`` with ``x`` the word vectors plus positions:
        ``(B, T, d), (B, T) → ((B, T, d), self-attention weights (B, 1, T, T))``."""
        x = self.input_dropout(word_vectors + self.positions(word_vectors), training=training)
        mixed, weights = self.self_attention(x, x, attention_mask=mask[:, None, :],
                                             return_attention_scores=True, training=training)
        return self.norm(x + self.attention_dropout(mixed, training=training)), weights

    def pooling_weights(self, states, mask):
        """``a``: ``(B, T)``, a distribution over the real words."""
        if self.pooling == "attention":
            return self.attention_pooling(states, mask)[1]
        real = ops.cast(mask, states.dtype)
        return real / ops.maximum(ops.sum(real, axis=-1, keepdims=True), 1.0)

    def logit_from_pooling(self, states, weights):
        """``v · Σ_t a_t h_t + c`` for any weights ``a`` ``(B, T)``: ``(B,)``."""
        pooled = ops.einsum("bt,btd->bd", weights, states)  # (B, d)
        return self.output_layer(pooled)[:, 0]

    def logit_from_word_vectors(self, word_vectors, mask, training=False):
        """The logit as a function of the word vectors ``(B, T, d)``: ``(B,)``."""
        states, _ = self.states(word_vectors, mask, training=training)
        return self.logit_from_pooling(states, self.pooling_weights(states, mask))

    def call(self, ids, training=False):
        mask = ops.not_equal(ids, PAD_ID)
        logit = self.logit_from_word_vectors(self.word_vectors(ids), mask, training=training)
        return ops.sigmoid(logit)[:, None]  # (B, 1), as lesson 06's Dense(1, "sigmoid")

    def explain(self, ids):
        """NumPy arrays for the sentences ``ids``: ``probability (B,)``, ``logit (B,)``,
        ``pooling (B, T)``, ``self_attention (B, T, T)``, ``states (B, T, d)``, ``mask (B, T)``."""
        ids = np.asarray(ids)
        mask = ops.not_equal(ids, PAD_ID)
        states, self_weights = self.states(self.word_vectors(ids), mask)
        pooling = self.pooling_weights(states, mask)
        logit = self.logit_from_pooling(states, pooling)
        arrays = {"logit": logit, "pooling": pooling, "self_attention": self_weights[:, 0],
                  "states": states, "mask": mask}
        arrays = {name: ops.convert_to_numpy(value) for name, value in arrays.items()}
        arrays["probability"] = 1.0 / (1.0 + np.exp(-arrays["logit"].astype(np.float64)))
        return arrays

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "d_model": self.d_model, "dropout": self.dropout, "pooling": self.pooling}


def build_sentence_classifier(vocabulary_size, pooling="attention", seed=0, **sizes):
    """A built :class:`SentenceClassifier`, its weights drawn from ``seed``, with :data:`SIZES`
    unless ``sizes`` says otherwise."""
    keras.utils.set_random_seed(seed)
    model = SentenceClassifier(vocabulary_size, pooling=pooling, **{**SIZES, **sizes})
    model(np.ones((1, 2), dtype="int32"))
    return model


def fit_sentence_classifier(model, data, seed=0, epochs=TRAINING["epochs"],
                            batch_size=TRAINING["batch_size"],
                            learning_rate=TRAINING["learning_rate"],
                            patience=TRAINING["patience"]):
    """Lesson 06's recipe on ``data`` (a ``course_lib.sentiment.SentimentData``): Adam, binary
    cross-entropy, early stopping on the validation accuracy with the best weights restored.

    Returns:
        The Keras ``History``.
    """
    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    stop = keras.callbacks.EarlyStopping("val_accuracy", patience=patience,
                                         restore_best_weights=True)
    return model.fit(data.train.ids, data.train.labels.astype("float32"),
                     epochs=require_positive_int("epochs", epochs),
                     batch_size=require_positive_int("batch_size", batch_size),
                     validation_data=(data.validation.ids,
                                      data.validation.labels.astype("float32")),
                     callbacks=[stop], verbose=0)


def accuracy(model, side):
    """The share of a side's sentences whose predicted label (P ≥ 0.5) is right."""
    probability = model.predict(side.ids, batch_size=512, verbose=0)[:, 0]
    return float(np.mean((probability >= 0.5) == (side.labels == 1)))


def load_shipped_sentence_classifier(vocabulary):
    """The attention classifier that ``scripts/attention_explanations.py`` ships in
    ``weights/`` (its first seed, float16); a ValueError unless ``vocabulary`` is the one it
    was trained with (``course_lib.sentiment.load_sentiment()``'s)."""
    if vocabulary.fingerprint() != SHIPPED_VOCABULARY_FINGERPRINT:
        raise ValueError(f"This vocabulary ({vocabulary.fingerprint()}) is not the one the "
                         f"shipped classifier was trained with "
                         f"({SHIPPED_VOCABULARY_FINGERPRINT}): use load_sentiment() with its "
                         f"defaults.")
    return load_shipped_weights(build_sentence_classifier(len(vocabulary)), SHIPPED_WEIGHTS)
