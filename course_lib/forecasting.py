"""Forecasting the yearly sunspot numbers one year ahead (lesson 12).

The series is ``datasets/timeseries/sunspots.csv``: the yearly sunspot number, 1700–2008
(NOAA NGDC, public domain, as packaged in statsmodels; see its ``SOURCE.md``).

=========================  ========================================================================
step                       function
=========================  ========================================================================
read                       :func:`load_sunspots` → ``(years, values)``
windows, no look-ahead     :func:`forecast_windows`: input = the ``L`` values before year ``t``,
                           target = the value of year ``t``; training targets before the split,
                           test targets from it on
scale                      :func:`training_scale`: mean and spread of the values known before the
                           first test year, nothing later
baselines                  :func:`persistence_forecast` (next year = this year),
                           :func:`fit_linear_autoregression` (least squares on the ``L`` lags)
neural models              :func:`build_attention_forecaster` (one query from the last year,
                           keys and values from the window, learned positions) and
                           :func:`build_gru_forecaster`; :func:`fit_forecaster` trains either;
                           :func:`load_shipped_attention_forecaster` loads the shipped one
=========================  ========================================================================

Shapes: a window batch is ``(B, L)``, oldest year first, so column ``L − k`` holds lag ``k``
(the value ``k`` years before the target).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import ops

from course_lib.layers import LearnedPositionEmbedding, MultiHeadAttention
from course_lib.shipped_weights import load_shipped_weights
from course_lib.validation import require_positive_int

SUNSPOTS_FILE = (Path(__file__).resolve().parent.parent / "datasets" / "timeseries"
                 / "sunspots.csv")
HEADER = ("YEAR", "SUNACTIVITY")

# The lesson's set-up: a window of 12 years (about one solar cycle), the last 50 years held out.
WINDOW = 12
FIRST_TEST_YEAR = 1959
ATTENTION_SIZES = {"d_model": 16, "num_heads": 2, "hidden_units": 32}
GRU_UNITS = 16
TRAINING = {"epochs": 100, "batch_size": 32, "learning_rate": 3e-3}
SHIPPED_WEIGHTS = "sunspot_attention.weights.h5"


def load_sunspots(path=None):
    """``(years, values)``: ``(T,)`` int years, consecutive, and ``(T,)`` float64 sunspot numbers.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a header other than ``"YEAR","SUNACTIVITY"``, a row that is not a year and
            a non-negative number, or years that do not follow each other one by one (the
            message names the file and the line).
    """
    path = SUNSPOTS_FILE if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No sunspot file at {path}.")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows or tuple(rows[0]) != HEADER:
        found = tuple(rows[0]) if rows else "nothing"
        raise ValueError(f"{path.name}: expected the header {HEADER}, found {found}.")
    years, values = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            year, value = int(row[0]), float(row[1])
        except (ValueError, IndexError):
            raise ValueError(f"{path.name}, line {number}: expected a year and a number, "
                             f"found {row!r}.") from None
        if len(row) != 2 or not np.isfinite(value) or value < 0:
            raise ValueError(f"{path.name}, line {number}: expected a year and a non-negative "
                             f"number, found {row!r}.")
        if years and year != years[-1] + 1:
            raise ValueError(f"{path.name}, line {number}: year {year} follows {years[-1]}; "
                             f"the series must have one value per year, in order.")
        years.append(year)
        values.append(value)
    if not years:
        raise ValueError(f"{path.name} holds no rows after its header.")
    return np.array(years), np.array(values)


@dataclass(frozen=True)
class Windows:
    """Inputs ``(B, L)`` (oldest first) and targets ``(B,)`` for each side, with the index in
    the series of each target (``train_target_index``, ``test_target_index``)."""

    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    train_target_index: np.ndarray
    test_target_index: np.ndarray


def forecast_windows(series, window, first_test_index):
    """Every ``(series[t − L : t], series[t])`` pair, split by the index ``t`` of the target.

    The input of target ``t`` is the ``L`` values strictly before it, so no input holds its own
    target or anything after it. Targets ``t < first_test_index`` are for training, targets
    ``t ≥ first_test_index`` for the test: no training pair reads or predicts a test value, while
    a test input may reach back into the training years (those values are known by then).
    The first target is ``t = L``, the first with a full window.

    Raises:
        ValueError: a series that is not 1-D, ``window`` not a positive integer, or a split that
            leaves either side without a target.
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(f"`series` must be 1-D, one value per step, received shape "
                         f"{series.shape}.")
    window = require_positive_int("window", window)
    if not window < first_test_index < len(series):
        raise ValueError(f"`first_test_index` must lie in ({window}, {len(series)}) so that both "
                         f"sides have a target, received {first_test_index} (series of length "
                         f"{len(series)}, window {window}).")
    targets = np.arange(window, len(series))  # t, each with a full window before it
    inputs = np.stack([series[t - window:t] for t in targets])  # (B, L), oldest first
    train = targets < first_test_index
    return Windows(inputs[train], series[targets[train]], inputs[~train],
                   series[targets[~train]], targets[train], targets[~train])


def training_scale(series, first_test_index):
    """``(mean, std)`` of the values before ``first_test_index``: the scaling that a forecaster
    could have known when the test period began."""
    known = np.asarray(series, dtype=np.float64)[:first_test_index]
    return float(known.mean()), float(known.std())


def persistence_forecast(inputs):
    """Next year = this year: the last value of each window, ``(B,)``."""
    return np.asarray(inputs)[:, -1]


def fit_linear_autoregression(inputs, targets):
    """``ŷ = c + Σ_k a_k y_{t−k}``, fitted by least squares: returns ``(c, a)`` with ``a`` in the
    windows' column order (oldest lag first)."""
    inputs = np.asarray(inputs, dtype=np.float64)
    design = np.concatenate([np.ones((len(inputs), 1)), inputs], axis=1)  # (B, 1 + L)
    solution, *_ = np.linalg.lstsq(design, np.asarray(targets, dtype=np.float64), rcond=None)
    return float(solution[0]), solution[1:]


def linear_autoregression_forecast(inputs, intercept, coefficients):
    """The forecast of :func:`fit_linear_autoregression`'s model, ``(B,)``."""
    return intercept + np.asarray(inputs, dtype=np.float64) @ coefficients


def build_attention_forecaster(window=WINDOW, d_model=16, num_heads=2, hidden_units=32):
    """One attention step over the window, the query asked by the last year.

    ``h_j = w · y_j + b + PE[j]`` for each year ``j`` of the window (a learned position per
    slot). The query is ``h_L``, the last year's; the keys and values are all ``h_j``; as in a
    Transformer block, the attention's output is added to the query's own state (a residual
    connection): ``c = h_L + MultiHeadAttention(h_L, h_1 … h_L)``. The forecast is
    ``Dense(1)(relu(Dense(c)))``. The attention weights ``(B, H, 1, L)`` say which years of the
    window the forecast read *besides* the last one, which reaches it through the residual.

    Returns:
        ``(model, weights_model)``: ``(B, L) → (B,)`` and, sharing its layers, ``(B, L) →
        (B, H, 1, L)``.

    Raises:
        ValueError: a count that is not a positive integer, or ``d_model`` not a multiple of
            ``num_heads`` (each head gets ``d_model / num_heads`` dimensions).
    """
    window = require_positive_int("window", window)
    d_model = require_positive_int("d_model", d_model)
    num_heads = require_positive_int("num_heads", num_heads)
    hidden_units = require_positive_int("hidden_units", hidden_units)
    if d_model % num_heads:
        raise ValueError(f"`d_model` ({d_model}) must be a multiple of `num_heads` "
                         f"({num_heads}): each head gets d_model / num_heads dimensions.")
    inputs = keras.Input((window,), name="window")
    x = keras.layers.Reshape((window, 1))(inputs)  # (B, L, 1)
    x = keras.layers.Dense(d_model, name="value_embedding")(x)  # (B, L, d)
    x = x + LearnedPositionEmbedding(window, name="position_embedding")(x)
    last = x[:, -1:, :]  # (B, 1, d): the query
    attention = MultiHeadAttention(num_heads, d_model // num_heads, name="attention")
    context, weights = attention(last, x, return_attention_scores=True)  # (B, 1, d), (B, H, 1, L)
    context = last + context  # the residual connection
    hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(context[:, 0])
    forecast = keras.layers.Dense(1, name="forecast")(hidden)[:, 0]  # (B,)
    return (keras.Model(inputs, forecast, name="attention_forecaster"),
            keras.Model(inputs, weights, name="attention_weights"))


def load_shipped_attention_forecaster():
    """``(model, weights_model)`` of :func:`build_attention_forecaster` with the weights
    shipped in ``weights/`` (the first seed of ``scripts/sunspot_forecasts.py``)."""
    model, weights_model = build_attention_forecaster(WINDOW, **ATTENTION_SIZES)
    load_shipped_weights(model, SHIPPED_WEIGHTS)
    return model, weights_model


def build_gru_forecaster(window=WINDOW, units=GRU_UNITS):
    """``GRU(units)`` over the window, oldest year first, then ``Dense(1)``: ``(B, L) → (B,)``."""
    window = require_positive_int("window", window)
    inputs = keras.Input((window,), name="window")
    x = keras.layers.Reshape((window, 1))(inputs)
    x = keras.layers.GRU(require_positive_int("units", units))(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x)[:, 0], name="gru_forecaster")


def fit_forecaster(model, inputs, targets, epochs=TRAINING["epochs"],
                   batch_size=TRAINING["batch_size"], learning_rate=TRAINING["learning_rate"],
                   seed=0):
    """Train on scaled windows with Adam, mean squared error, a cosine decay of the learning
    rate; returns the Keras ``History``."""
    keras.utils.set_random_seed(seed)
    steps = epochs * int(np.ceil(len(targets) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    return model.fit(inputs, targets, batch_size=batch_size, epochs=epochs, shuffle=True,
                     verbose=0)


def lag_weights(weights_model, inputs):
    """The attention weight on each lag, averaged over heads and windows: ``(L,)``, index
    ``k − 1`` for lag ``k`` (the last year of the window is lag 1)."""
    weights = ops.convert_to_numpy(weights_model.predict(inputs, verbose=0))  # (B, H, 1, L)
    return weights[:, :, 0, :].mean(axis=(0, 1))[::-1]


def rmse(predictions, targets):
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(predictions) - np.asarray(targets)) ** 2)))
