"""The small image classifiers of lesson 12: a Vision Transformer and two baselines of its size.

All three read the 8 × 8 digits of :mod:`course_lib.digits` as ``(B, 8, 8, 1)`` and return
logits ``(B, 10)``.

- :func:`build_vit`, the ViT of Dosovitskiy et al. 2021 ("An Image is Worth 16x16 Words", §3.1),
  made small::

      z_0 = [x_class; PatchEmbedding(x)] + PE          (B, 1 + N, D), N = (8 / p)²
      z_l = TransformerEncoderBlock(z_{l-1})           pre-LN, GELU, l = 1 … L
      logits = Dense(LN(z_L[:, 0]))                    the class token's final state

- :func:`build_mlp`: two hidden ReLU layers on the 64 pixels; it knows nothing of images.
- :func:`build_cnn`: 3 × 3 convolutions and a max-pool, global average pooling, a dense head;
  it is built for images (locality, the same filter everywhere).

:func:`build_vit_with_attention` also returns a model, sharing the ViT's layers, that gives each
block's self-attention weights ``(B, H, 1 + N, 1 + N)``, the input of
:mod:`course_lib.attention_maps`; :func:`load_shipped_vit` loads the weights that
``scripts/digits_classifiers.py`` ships.
"""

import keras
import numpy as np

from course_lib.layers import (
    ClassToken,
    LearnedPositionEmbedding,
    PatchEmbedding,
    TransformerEncoderBlock,
)
from course_lib.shipped_weights import load_shipped_weights
from course_lib.validation import require_positive_int

IMAGE_SHAPE = (8, 8, 1)
CLASSES = 10

# The lesson's sizes: the three models have about 18,000 weights each.
VIT_SIZES = {"patch_size": 2, "hidden_dim": 32, "num_heads": 4, "intermediate_dim": 64,
             "num_layers": 2, "dropout": 0.1}
MLP_UNITS = 100
CNN_FILTERS = (32, 32, 32)
TRAINING = {"epochs": 60, "batch_size": 32, "learning_rate": 2e-3}
SHIPPED_WEIGHTS = "vit_digits.weights.h5"


def build_vit_with_attention(patch_size=2, hidden_dim=32, num_heads=4, intermediate_dim=64,
                             num_layers=2, dropout=0.1, image_shape=IMAGE_SHAPE,
                             classes=CLASSES):
    """A Vision Transformer: patches, a class token, learned positions, pre-LN encoder blocks,
    a LayerNorm and a linear head on the class token. Layers are named ``patch_embedding``,
    ``class_token``, ``position_embedding``, ``encoder_1`` … ``encoder_L``, ``final_norm``,
    ``head``.

    Returns:
        ``(model, attention_model)``: ``(B, H, W, C) → logits (B, classes)`` and, sharing its
        layers, ``(B, H, W, C) →`` the list of each block's self-attention weights
        ``(B, heads, T, T)``, ``T = 1 + N``, token 0 the class token.
    """
    num_layers = require_positive_int("num_layers", num_layers)
    patch_embedding = PatchEmbedding(patch_size, hidden_dim, name="patch_embedding")
    _, patches, _ = patch_embedding.compute_output_shape((None, *image_shape))
    images = keras.Input(image_shape, name="images")
    x = ClassToken(name="class_token")(patch_embedding(images))  # (B, 1 + N, D)
    x = x + LearnedPositionEmbedding(1 + patches, name="position_embedding")(x)
    maps = []
    for index in range(1, num_layers + 1):
        block = TransformerEncoderBlock(intermediate_dim, num_heads, dropout=dropout,
                                        normalize_first=True, activation="gelu",
                                        name=f"encoder_{index}")
        x, weights = block(x, return_attention_scores=True)  # (B, T, D), (B, heads, T, T)
        maps.append(weights)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    logits = keras.layers.Dense(classes, name="head")(x[:, 0])  # the class token
    return (keras.Model(images, logits, name="vit"),
            keras.Model(images, maps, name="vit_attention"))


def build_vit(**sizes):
    """The ViT of :func:`build_vit_with_attention` alone (the same arguments)."""
    return build_vit_with_attention(**sizes)[0]


def build_mlp(units=MLP_UNITS, image_shape=IMAGE_SHAPE, classes=CLASSES):
    """Flatten, two ``Dense(units, relu)`` layers, ``Dense(classes)``."""
    units = require_positive_int("units", units)
    images = keras.Input(image_shape, name="images")
    x = keras.layers.Flatten()(images)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(images, keras.layers.Dense(classes)(x), name="mlp")


def build_cnn(filters=CNN_FILTERS, image_shape=IMAGE_SHAPE, classes=CLASSES):
    """Two ``3 × 3`` convolutions (same padding, ReLU), a ``2 × 2`` max-pool, a third
    convolution, global average pooling, ``Dense(classes)``."""
    first, second, third = (require_positive_int("filters", count) for count in filters)
    images = keras.Input(image_shape, name="images")
    x = keras.layers.Conv2D(first, 3, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(second, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)  # (B, 4, 4, second)
    x = keras.layers.Conv2D(third, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(classes)(x), name="cnn")


BUILDERS = {"vit": build_vit, "mlp": build_mlp, "cnn": build_cnn}


def fit_classifier(model, data, epochs=TRAINING["epochs"], batch_size=TRAINING["batch_size"],
                   learning_rate=TRAINING["learning_rate"], seed=0):
    """Train ``model`` on ``data.train_*`` with Adam and a cosine decay of the learning rate to
    0, cross-entropy on the logits; record the validation accuracy after each epoch.

    Returns:
        The Keras ``History`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
    """
    keras.utils.set_random_seed(seed)
    steps = epochs * int(np.ceil(len(data.train_labels) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model.fit(data.train_images, data.train_labels, batch_size=batch_size, epochs=epochs,
                     validation_data=(data.validation_images, data.validation_labels),
                     shuffle=True, verbose=0)


def load_shipped_vit():
    """``(model, attention_model)`` with the ViT weights shipped in ``weights/`` (the first seed
    of ``scripts/digits_classifiers.py``)."""
    model, attention_model = build_vit_with_attention(**VIT_SIZES)
    load_shipped_weights(model, SHIPPED_WEIGHTS)
    return model, attention_model


def accuracy(model, images, labels):
    """The share of ``images`` whose largest logit is the right class."""
    logits = model.predict(images, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))
