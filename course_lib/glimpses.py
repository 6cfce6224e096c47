"""Lesson 13's glimpse task: find a digit on a cluttered canvas and classify it from one glimpse.

A digit of :mod:`course_lib.digits` (8 × 8) is put in one of the ``K = 9`` cells of a 3 × 3 grid
on a 24 × 24 canvas; every other cell gets a few 4 × 4 fragments cut from other digits of the
same side of the split (the "cluttered" digits of Mnih et al. 2014, made small). A model
sees the whole canvas only coarsely (2 × 2 averages), scores the ``K`` cells from that view, and
reads the chosen cell at full resolution:

    s_k = w₂ · relu(W₁ vec(coarse cell k) + b₁) + b₂         the location scores, (B, K)
    h_k = relu(W₄ relu(W₃ vec(glimpse k) + b₃) + b₄)          the glimpse features, (B, K, D)
    logits = W₅ f + b₅                                         the class, (B, 10)

and the three models differ only in ``f``:

=============  ===========================================  ===================================
choice         ``f``                                        how the scores learn
=============  ===========================================  ===================================
``soft``       ``Σ_k softmax(s)_k h_k``: all K glimpses     backpropagation (exact gradient)
``reinforce``  ``h_k``, ``k ~ softmax(s)``: one glimpse     REINFORCE, reward
                                                            ``log p(y | glimpse)``, with a
                                                            learned baseline ``b(coarse view)``
``gumbel``     ``Σ_k z_k h_k``, ``z`` the straight-through  the relaxed sample's gradient
               one-hot of a Gumbel-max sample               (every ``h_k`` is needed in
                                                            training)
=============  ===========================================  ===================================

At test time the hard models read the glimpse with the highest score. The reward of REINFORCE is
the log-likelihood, as in the hard attention of Xu et al. 2015, so that all three estimators
estimate the gradient of one objective, ``E_k[L_k]`` (``L_k`` the cross-entropy when reading
glimpse ``k``): :func:`location_gradient_statistics` measures their bias and variance exactly
where it can (REINFORCE: every choice enumerated) and by sampling where it must (Gumbel noise).
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from course_lib import digits
from course_lib.estimators import gumbel_softmax, reinforce_losses, sample_choices
from course_lib.layers import GlimpseSensor
from course_lib.numpy_softmax import softmax
from course_lib.shipped_weights import load_shipped_weights
from course_lib.validation import require_positive_int

CHOICES = ("soft", "reinforce", "gumbel")
GRID = 3
FRAGMENTS = 2
FRAGMENT_SIZE = 4
COPIES = {"train": 3, "validation": 1, "test": 2}  # canvases per digit on each side
TASK_SEED = 0
CANVAS_SHAPE = (GRID * digits.SIDE, GRID * digits.SIDE, 1)
SIZES = {"units": 64, "scorer_units": 16, "coarse_factor": 2, "temperature": 1.0}
TRAINING = {"epochs": 20, "batch_size": 64, "learning_rate": 3e-3}
SHIPPED_WEIGHTS = {"soft": "glimpse_soft.weights.h5", "reinforce": "glimpse_reinforce.weights.h5",
                   "gumbel": "glimpse_gumbel.weights.h5"}


@dataclass(frozen=True)
class Canvases:
    """One side of the task: ``canvases (N, 24, 24, 1)`` float32 in 0…1, ``labels (N,)`` the
    digits' classes, ``locations (N,)`` the cell that holds each digit (row by row)."""

    canvases: np.ndarray
    labels: np.ndarray
    locations: np.ndarray

    def __len__(self):
        return len(self.labels)


@dataclass(frozen=True)
class GlimpseTask:
    """The three sides, made from the digits' fixed split (no digit crosses sides, and each
    side's clutter comes from its own digits)."""

    train: Canvases
    validation: Canvases
    test: Canvases


def make_canvases(images, labels, grid=GRID, fragments=FRAGMENTS, fragment_size=FRAGMENT_SIZE,
                  copies=1, seed=0):
    """Put each digit in a random cell of a ``grid × grid`` canvas and clutter the other cells.

    Args:
        images: ``(N, g, g, 1)`` digits in 0…1; labels: ``(N,)``.
        grid: cells per side; the canvas is ``(grid · g) × (grid · g)``.
        fragments: fragments per empty cell, each a random ``fragment_size`` square crop of
            another digit of ``images``, placed at a random offset inside the cell (overlaps
            keep the brighter pixel).
        copies: canvases per digit (each with its own cell and clutter).
        seed: the generator's seed; the same arguments give the same canvases.

    Returns:
        :class:`Canvases`, ``copies · N`` of them, digit by digit.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 1:
        raise ValueError(f"`images` must be (N, g, g, 1), received shape {images.shape}.")
    grid = require_positive_int("grid", grid, minimum=2)
    fragments = require_positive_int("fragments", fragments, minimum=0)
    copies = require_positive_int("copies", copies)
    fragment_size = require_positive_int("fragment_size", fragment_size)
    count, side = len(images), images.shape[1]
    if fragment_size > side:
        raise ValueError(f"`fragment_size` {fragment_size} is larger than a digit ({side}).")
    if count < 2:
        raise ValueError("`images` must hold at least two digits (clutter comes from others).")
    rng = np.random.default_rng(seed)
    total = copies * count
    canvases = np.zeros((total, grid * side, grid * side, 1), dtype=np.float32)
    digit_index = np.tile(np.arange(count), copies)
    locations = rng.integers(grid * grid, size=total)
    span = side - fragment_size + 1
    for n, (digit, location) in enumerate(zip(digit_index, locations, strict=True)):
        for cell in range(grid * grid):
            top, left = side * (cell // grid), side * (cell % grid)
            if cell == location:
                canvases[n, top:top + side, left:left + side] = images[digit]
                continue
            for _ in range(fragments):
                source = (digit + 1 + rng.integers(count - 1)) % count  # any other digit
                row, column, down, right = rng.integers(span, size=4)
                crop = images[source, row:row + fragment_size, column:column + fragment_size]
                window = canvases[n, top + down:top + down + fragment_size,
                                  left + right:left + right + fragment_size]
                np.maximum(window, crop, out=window)
    return Canvases(canvases, np.asarray(labels)[digit_index].astype("int32"),
                    locations.astype("int32"))


def load_glimpse_task(seed=TASK_SEED, copies=None, **canvas_options):
    """The lesson's task: :func:`course_lib.digits.load_digits_split`, then
    :func:`make_canvases` on each side (3 canvases per training digit, 1 per validation digit,
    2 per test digit: 3,234, 269 and 900 canvases)."""
    copies = {**COPIES, **(copies or {})}
    split = digits.load_digits_split()
    sides = {}
    for offset, name in enumerate(("train", "validation", "test")):
        sides[name] = make_canvases(getattr(split, f"{name}_images"),
                                    getattr(split, f"{name}_labels"), copies=copies[name],
                                    seed=[seed, offset], **canvas_options)
    return GlimpseTask(**sides)


@keras.saving.register_keras_serializable(package="course_lib")
class GlimpseClassifier(keras.Model):
    """Score ``K`` places from a coarse view, read one (or a mix), classify: see the module.

    Args:
        choice: ``"soft"``, ``"reinforce"`` or ``"gumbel"``.
        glimpse_size: ``g``, the side of a cell (8 for the digits).
        units: ``D``, the width of the glimpse encoder.
        scorer_units: the hidden width of the location scorer.
        coarse_factor: the coarse view averages ``coarse_factor × coarse_factor`` pixels.
        temperature: ``τ`` of the Gumbel-softmax relaxation (``"gumbel"`` only).
        use_baseline: REINFORCE with a learned baseline (True) or with ``b = 0``.
        classes: the number of classes.
        seed: seeds the sampling of locations in training.

    Call:
        ``canvases (B, H, W, 1)`` → a dict: ``logits (B, classes)``, ``scores (B, K)``,
        ``locations (B,)`` (the glimpse read: sampled in training, the best-scored at test;
        for ``soft``, the largest weight), ``log_probability (B,)`` of that location and
        ``baseline (B,)`` (zeros unless REINFORCE with a baseline).
    """

    def __init__(self, choice="soft", glimpse_size=8, units=64, scorer_units=16,
                 coarse_factor=2, temperature=1.0, use_baseline=True, classes=10, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if choice not in CHOICES:
            raise ValueError(f"`choice` must be one of {CHOICES}, received {choice!r}.")
        self.choice = choice
        self.glimpse_size = require_positive_int("glimpse_size", glimpse_size)
        self.units = require_positive_int("units", units)
        self.scorer_units = require_positive_int("scorer_units", scorer_units)
        self.coarse_factor = require_positive_int("coarse_factor", coarse_factor)
        self.classes = require_positive_int("classes", classes)
        if self.glimpse_size % self.coarse_factor:
            raise ValueError(f"`coarse_factor` {coarse_factor} must divide `glimpse_size` "
                             f"{glimpse_size}.")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive, received {temperature!r}.")
        self.temperature = float(temperature)
        self.use_baseline = bool(use_baseline)
        self.seed = seed
        self.sensor = GlimpseSensor(self.glimpse_size, name="sensor")
        self.coarse_pool = keras.layers.AveragePooling2D(self.coarse_factor, name="coarse_pool")
        self.coarse_sensor = GlimpseSensor(self.glimpse_size // self.coarse_factor,
                                           name="coarse_sensor")
        self.scorer_hidden = keras.layers.Dense(self.scorer_units, activation="relu",
                                                name="scorer_hidden")
        self.scorer_output = keras.layers.Dense(1, name="scorer_output")
        self.encoder_1 = keras.layers.Dense(self.units, activation="relu", name="encoder_1")
        self.encoder_2 = keras.layers.Dense(self.units, activation="relu", name="encoder_2")
        self.head = keras.layers.Dense(self.classes, name="head")
        self.baseline = (keras.layers.Dense(1, name="baseline")
                         if choice == "reinforce" and self.use_baseline else None)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def location_scores(self, canvases):
        """``(scores (B, K), cell features (B, K, scorer_units))`` from the coarse view."""
        cells = self.coarse_sensor(self.coarse_pool(canvases))  # (B, K, g/c, g/c, 1)
        count = ops.shape(cells)[1]
        cells = ops.reshape(cells, (-1, count, int(np.prod(cells.shape[2:]))))  # (B, K, cell)
        hidden = self.scorer_hidden(cells)  # (B, K, scorer_units)
        return self.scorer_output(hidden)[..., 0], hidden

    def encode(self, glimpses):
        """``(…, g, g, 1) → (…, D)``: the features of each glimpse."""
        pixels = self.glimpse_size * self.glimpse_size * glimpses.shape[-1]
        flat = ops.reshape(glimpses, (*ops.shape(glimpses)[:-3], pixels))  # (…, g·g·C)
        return self.encoder_2(self.encoder_1(flat))

    def call(self, canvases, training=False):
        scores, cell_features = self.location_scores(canvases)  # (B, K), (B, K, S)
        log_probabilities = ops.log_softmax(scores, axis=-1)  # (B, K)
        baseline = ops.zeros_like(scores[:, 0])
        if self.choice == "soft":
            weights = ops.softmax(scores, axis=-1)  # (B, K)
            features = ops.einsum("bk,bkd->bd", weights, self.encode(self.sensor(canvases)))
            locations = ops.argmax(scores, axis=-1)
        elif self.choice == "gumbel" and training:
            sample = gumbel_softmax(scores, self.temperature, hard=True,
                                    seed=self.seed_generator)  # (B, K), one-hot forward
            features = ops.einsum("bk,bkd->bd", sample, self.encode(self.sensor(canvases)))
            locations = ops.argmax(sample, axis=-1)
        else:  # a hard choice: only the chosen glimpse is read
            if training:
                locations, _ = sample_choices(scores, seed=self.seed_generator)
            else:
                locations = ops.argmax(scores, axis=-1)
            features = self.encode(self.sensor(canvases, locations))  # (B, D)
            if self.baseline is not None:
                summary = ops.reshape(ops.stop_gradient(cell_features),
                                      (-1, int(np.prod(cell_features.shape[1:]))))  # (B, K·S)
                baseline = self.baseline(summary)[:, 0]
        locations = ops.cast(locations, "int32")
        log_probability = ops.take_along_axis(log_probabilities, locations[:, None], axis=-1)
        return {"logits": self.head(features), "scores": scores, "locations": locations,
                "log_probability": log_probability[:, 0], "baseline": baseline}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Cross-entropy of the class; for REINFORCE, plus its policy and baseline losses with
        the reward ``R = log p(y | glimpse) = −cross-entropy``."""
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            y, y_pred["logits"], from_logits=True)  # (B,)
        loss = ops.mean(cross_entropy)
        if self.choice == "reinforce" and training:
            baseline = y_pred["baseline"] if self.use_baseline else None
            policy, baseline_loss = reinforce_losses(y_pred["log_probability"], -cross_entropy,
                                                     baseline)
            loss = loss + ops.mean(policy) + ops.mean(baseline_loss)
        return loss

    def get_config(self):
        return {**super().get_config(), "choice": self.choice,
                "glimpse_size": self.glimpse_size, "units": self.units,
                "scorer_units": self.scorer_units, "coarse_factor": self.coarse_factor,
                "temperature": self.temperature, "use_baseline": self.use_baseline,
                "classes": self.classes, "seed": self.seed}


def build_glimpse_classifier(choice, seed=0, **sizes):
    """A built :class:`GlimpseClassifier` (called once on zeros), its weights drawn from
    ``seed`` (which also seeds its sampling), with :data:`SIZES` unless ``sizes`` says
    otherwise."""
    keras.utils.set_random_seed(seed)
    model = GlimpseClassifier(choice, seed=seed, **{**SIZES, **sizes})
    model(np.zeros((1, *CANVAS_SHAPE), dtype="float32"))
    return model


def load_shipped_glimpse_classifier(choice):
    """The ``choice`` model (soft, reinforce with a baseline, gumbel) that
    ``scripts/glimpse_attention.py`` ships in ``weights/`` (its first seed, float16)."""
    if choice not in SHIPPED_WEIGHTS:
        raise ValueError(f"`choice` must be one of {tuple(SHIPPED_WEIGHTS)}, received "
                         f"{choice!r}.")
    return load_shipped_weights(build_glimpse_classifier(choice), SHIPPED_WEIGHTS[choice])


def predict(model, canvases, batch_size=512):
    """The model's outputs at test time (best-scored glimpse), as NumPy arrays."""
    return model.predict(canvases, batch_size=batch_size, verbose=0)


def evaluate(model, data):
    """A dict: ``accuracy`` (the class is right), ``location_accuracy`` (the best-scored cell
    is the digit's) and ``cross_entropy`` (mean, in nats), at test time."""
    outputs = predict(model, data.canvases)
    log_probabilities = _log_softmax(outputs["logits"].astype(np.float64))
    return {"accuracy": float(np.mean(np.argmax(outputs["logits"], axis=-1) == data.labels)),
            "location_accuracy": float(np.mean(outputs["locations"] == data.locations)),
            "cross_entropy": float(-np.mean(log_probabilities[np.arange(len(data)),
                                                               data.labels]))}


class _EpochRecorder(keras.callbacks.Callback):
    def __init__(self, data, measure_at=(), statistics_data=None):
        super().__init__()
        self.data, self.measure_at, self.statistics_data = data, set(measure_at), statistics_data
        self.record = {"loss": [], "validation_accuracy": [], "validation_location_accuracy": [],
                       "validation_cross_entropy": [], "gradient_statistics": {}}

    def _measure(self, epoch):
        if epoch in self.measure_at:
            self.record["gradient_statistics"][epoch] = location_gradient_statistics(
                self.model, self.statistics_data)

    def on_train_begin(self, logs=None):
        self._measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self.record["loss"].append(float(logs["loss"]))
        scores = evaluate(self.model, self.data)
        for name in ("accuracy", "location_accuracy", "cross_entropy"):
            self.record[f"validation_{name}"].append(scores[name])
        self._measure(epoch + 1)


def fit_glimpse_classifier(model, task, epochs=TRAINING["epochs"],
                           batch_size=TRAINING["batch_size"],
                           learning_rate=TRAINING["learning_rate"], seed=0, measure_at=(),
                           statistics_data=None):
    """Train with Adam and a cosine decay of the learning rate to 0, on ``task.train``.

    Args:
        measure_at: epochs (0 = before training) after which
            :func:`location_gradient_statistics` is measured on ``statistics_data``.

    Returns:
        A dict: ``loss`` (what was minimised, REINFORCE's surrogate included) and the validation
        accuracy, location accuracy and cross-entropy after each epoch, and
        ``gradient_statistics`` by epoch.
    """
    epochs = require_positive_int("epochs", epochs)
    batch_size = require_positive_int("batch_size", batch_size)
    keras.utils.set_random_seed(seed)
    steps = epochs * int(np.ceil(len(task.train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    recorder = _EpochRecorder(task.validation, measure_at, statistics_data)
    model.fit(task.train.canvases, task.train.labels, batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=0, callbacks=[recorder])
    return recorder.record


def multiply_adds(model, training=False):
    """Multiply-adds per canvas of the weight layers (the scorer on all K coarse cells, the
    encoder on each glimpse read, the head; the baseline in REINFORCE's training), read from the
    layers' kernels. Soft attention encodes all ``K`` glimpses; REINFORCE one; the
    straight-through Gumbel estimator one at test time but all ``K`` in training, where its
    gradient needs every glimpse's features."""

    def kernel_size(layer):
        return int(np.prod(layer.kernel.shape))

    cells = model.sensor.compute_output_shape((None, *CANVAS_SHAPE))[1]
    scorer = cells * (kernel_size(model.scorer_hidden) + kernel_size(model.scorer_output))
    encoder = kernel_size(model.encoder_1) + kernel_size(model.encoder_2)
    read = cells if model.choice == "soft" or (model.choice == "gumbel" and training) else 1
    total = scorer + read * encoder + kernel_size(model.head)
    if read > 1:
        total += cells * model.units  # the weighted sum of the glimpse features
    if model.baseline is not None and training:
        total += kernel_size(model.baseline)
    return total



def glimpse_parts(model, canvases):
    """What the gradient statistics need, in NumPy: the scores ``(B, K)``, every glimpse's
    features ``(B, K, D)``, the head's kernel ``(D, classes)`` and bias, the learned baseline
    ``(B,)`` (in reward units; zeros without one)."""
    scores, cell_features = model.location_scores(canvases)
    features = model.encode(model.sensor(canvases))
    baseline = np.zeros(len(canvases))
    if model.baseline is not None:
        summary = ops.reshape(cell_features, (len(canvases), -1))
        baseline = ops.convert_to_numpy(model.baseline(summary))[:, 0]
    kernel, bias = (ops.convert_to_numpy(w) for w in (model.head.kernel, model.head.bias))
    return (ops.convert_to_numpy(scores).astype(np.float64),
            ops.convert_to_numpy(features).astype(np.float64), kernel.astype(np.float64),
            bias.astype(np.float64), baseline.astype(np.float64))


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reinforce_gradient_moments(probabilities, losses, baseline):
    """Exact mean and variance of the REINFORCE estimate of ``∇_s E_k[L_k]``, by enumerating
    the ``K`` choices (no sampling).

    The estimate for choice ``k`` is ``g_k = (L_k − c)(e_k − π)``, ``c`` the baseline in loss
    units; it has probability ``π_k``. Its mean is ``π ⊙ (L − Σ_k π_k L_k)`` whatever ``c``.

    Args:
        probabilities: ``(B, K)``, ``π = softmax(s)``; losses: ``(B, K)``, ``L_k``;
        baseline: ``(B,)`` or a number, ``c``.

    Returns:
        ``(mean (B, K), variance (B,))``: the variance is the trace of the covariance,
        ``Σ_k π_k ‖g_k − mean‖²``.
    """
    probabilities, losses = np.asarray(probabilities), np.asarray(losses)
    baseline = np.broadcast_to(np.asarray(baseline, dtype=np.float64), losses.shape[:1])
    count = losses.shape[-1]
    estimates = ((losses - baseline[:, None])[:, :, None]
                 * (np.eye(count)[None] - probabilities[:, None, :]))  # (B, k chosen, K)
    mean = np.einsum("bk,bkj->bj", probabilities, estimates)
    spread = ((estimates - mean[:, None, :]) ** 2).sum(axis=-1)  # (B, k chosen)
    return mean, (probabilities * spread).sum(axis=-1)


def straight_through_gradients(scores, features, kernel, bias, labels, noise, temperature):
    """The straight-through Gumbel-softmax estimate of ``∇_s L`` for each draw of ``noise``.

    Forward: ``k = argmax(s + g)``, ``f = h_k``; backward: ``∂L/∂z_j = h_j · ∂L/∂f`` through
    ``f = Σ_j z_j h_j``, then ``∂y/∂s = (diag(y) − y yᵀ) / τ`` of ``y = softmax((s + g)/τ)``.

    Args:
        scores ``(B, K)``; features ``(B, K, D)``; kernel ``(D, C)``, bias ``(C,)``: the head;
        labels ``(B,)``; noise ``(R, B, K)``, Gumbel draws; temperature ``τ``.

    Returns:
        ``(R, B, K)``, one gradient per draw.
    """
    perturbed = scores[None] + noise  # (R, B, K)
    chosen = perturbed.argmax(axis=-1)  # (R, B)
    relaxed = softmax(perturbed / temperature)  # (R, B, K)
    read = np.take_along_axis(features[None], chosen[..., None, None], axis=2)[:, :, 0]
    probabilities = softmax(read @ kernel + bias)  # (R, B, C)
    probabilities[..., np.arange(len(labels)), labels] -= 1.0  # ∂L/∂logits
    feature_gradient = probabilities @ kernel.T  # (R, B, D)
    sample_gradient = np.einsum("rbd,bkd->rbk", feature_gradient, features)  # ∂L/∂z
    centred = sample_gradient - (relaxed * sample_gradient).sum(axis=-1, keepdims=True)
    return relaxed * centred / temperature


def location_gradient_statistics(model, data, draws=256, seed=0, size=300):
    """Bias and variance of three estimates of ``∇_s E_{k~softmax(s)}[L_k]`` at the model's
    present weights, on the first ``size`` canvases of ``data``, per canvas and averaged:

    - ``exact``: the mean squared norm of the true gradient ``π ⊙ (L − Σ π L)``;
    - ``reinforce_no_baseline``, ``reinforce_baseline``: REINFORCE with ``c = 0`` and with the
      model's learned baseline (REINFORCE models; else its variance is left out), the
      variance computed exactly (:func:`reinforce_gradient_moments`), bias 0;
      ``reinforce_expected_loss``: with ``c = Σ_k π_k L_k``, the expected loss of each canvas,
      a baseline that knows what no learned one can (near the best that any baseline does);
    - ``gumbel``: the straight-through estimate over ``draws`` Gumbel draws; its bias is
      ``‖mean − exact‖²`` less the sampling error of the mean (``variance / draws``).

    Returns:
        A dict of floats (mean over the canvases): ``exact_norm``, and for each estimator
        ``*_variance`` (trace of the covariance) and ``gumbel_bias``.
    """
    draws = require_positive_int("draws", draws, minimum=2)
    size = require_positive_int("size", size)
    canvases, labels = data.canvases[:size], data.labels[:size]
    scores, features, kernel, bias, baseline = glimpse_parts(model, canvases)
    all_logits = features @ kernel + bias  # (B, K, C)
    losses = -np.take_along_axis(_log_softmax(all_logits), labels[:, None, None],
                                 axis=-1)[..., 0]  # (B, K)
    probabilities = softmax(scores)
    exact, without = reinforce_gradient_moments(probabilities, losses, 0.0)
    statistics = {"exact_norm": float((exact ** 2).sum(axis=-1).mean()),
                  "reinforce_no_baseline_variance": float(without.mean())}
    _, informed = reinforce_gradient_moments(probabilities, losses,
                                             (probabilities * losses).sum(axis=-1))
    statistics["reinforce_expected_loss_variance"] = float(informed.mean())
    if model.baseline is not None:
        _, with_baseline = reinforce_gradient_moments(probabilities, losses, -baseline)
        statistics["reinforce_baseline_variance"] = float(with_baseline.mean())
    rng = np.random.default_rng(seed)
    noise = -np.log(-np.log(rng.uniform(1e-10, 1.0 - 1e-10, size=(draws, *scores.shape))))
    estimates = straight_through_gradients(scores, features, kernel, bias, labels, noise,
                                           model.temperature)
    mean = estimates.mean(axis=0)
    variance = ((estimates - mean) ** 2).sum(axis=-1).mean(axis=0) * draws / (draws - 1)
    statistics["gumbel_variance"] = float(variance.mean())
    statistics["gumbel_bias"] = float((((mean - exact) ** 2).sum(axis=-1)
                                       - variance / draws).mean())
    return statistics
