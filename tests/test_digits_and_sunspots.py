"""Lesson 12's data: the digits file and its split, the sunspot series and its windows."""

import gzip

import numpy as np
import pytest

from course_lib import digits, forecasting
from course_lib.checks import lesson12


def test_the_digits_load_as_the_source_describes():
    images, labels = digits.load_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # the first image is a zero: a ring of ink around an empty middle
    assert labels[0] == 0 and images[0, 3, 3] == 0 and images[0, 3, 1] > 0


def test_the_split_is_stratified_disjoint_and_fixed():
    _, labels = digits.load_digits()
    train, validation, test = digits.split_digits(labels)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(1797))
    assert (len(train), len(validation), len(test)) == (1078, 269, 450)
    for part, fraction in ((test, 0.25), (validation, 0.15)):
        shares = np.bincount(labels[part], minlength=10) / np.bincount(labels)
        assert np.all(np.abs(shares - fraction) < 0.01)
    again = digits.split_digits(labels)
    assert all(np.array_equal(a, b) for a, b in zip((train, validation, test), again,
                                                     strict=True))
    assert not np.array_equal(test, digits.split_digits(labels, seed=1)[2])
    data = digits.load_digits_split()
    assert data.train_images.shape == (1078, 8, 8, 1) and data.test_images.max() == 1.0


def write_digits(path, lines):
    path.write_bytes(gzip.compress("\n".join(lines).encode("ascii")))
    return path


GOOD_ROW = ",".join(["0"] * 64 + ["3"])


@pytest.mark.parametrize("row, message", [
    (",".join(["0"] * 63 + ["3"]), r"line 2: expected 65 .* found 64 fields"),
    (",".join(["0"] * 63 + ["17", "3"]), r"line 2: pixels must lie in 0…16, .* to 17"),
    (",".join(["0"] * 64 + ["10"]), r"line 2: the class .* found 10"),
    (",".join(["0"] * 63 + ["x", "3"]), r"line 2: expected integers"),
])
def test_a_bad_digits_row_is_named_by_file_and_line(tmp_path, row, message):
    path = write_digits(tmp_path / "bad.csv.gz", [GOOD_ROW, row])
    with pytest.raises(ValueError, match=message):
        digits.load_digits(path)


def test_a_digits_file_that_is_not_gzip_or_missing_is_refused(tmp_path):
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(GOOD_ROW)
    with pytest.raises(ValueError, match="plain.csv.gz is not a gzip-compressed"):
        digits.load_digits(plain)
    with pytest.raises(FileNotFoundError):
        digits.load_digits(tmp_path / "missing.csv.gz")
    with pytest.raises(ValueError, match="too few to split"):
        digits.split_digits(np.array([0, 0, 1]))


def test_the_sunspots_load_yearly_from_1700_to_2008():
    years, values = forecasting.load_sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and len(values) == 309
    assert np.all(np.diff(years) == 1) and values.min() >= 0


@pytest.mark.parametrize("text, message", [
    ('"YEAR","SPOTS"\n1700,5\n', r"expected the header"),
    ('"YEAR","SUNACTIVITY"\n1700,5\n1702,6\n', r"line 3: year 1702 follows 1700"),
    ('"YEAR","SUNACTIVITY"\n1700,-5\n', r"line 2: expected a year and a non-negative number"),
    ('"YEAR","SUNACTIVITY"\n1700,five\n', r"line 2: expected a year and a number"),
])
def test_a_bad_sunspot_file_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "spots.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        forecasting.load_sunspots(path)


def test_windows_never_look_ahead_and_split_by_the_target():
    series = np.arange(30.0)  # value = index, so every window names its own indices
    windows = forecasting.forecast_windows(series, window=5, first_test_index=20)
    for inputs, targets in ((windows.train_inputs, windows.train_targets),
                            (windows.test_inputs, windows.test_targets)):
        np.testing.assert_array_equal(inputs, targets[:, None] - np.arange(5, 0, -1))
    assert windows.train_targets.max() == 19 and windows.test_targets.min() == 20
    assert len(windows.train_targets) == 15 and len(windows.test_targets) == 10
    np.testing.assert_array_equal(windows.test_target_index, np.arange(20, 30))
    expected = lesson12.forecast_windows(series, 5, 1, 20)  # the exercise's, one step ahead
    for ours, theirs in zip((windows.train_inputs, windows.train_targets, windows.test_inputs,
                             windows.test_targets), expected, strict=True):
        np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


def test_windows_refuse_a_split_that_leaves_a_side_empty():
    with pytest.raises(ValueError, match=r"first_test_index.*received 5 .*window 5"):
        forecasting.forecast_windows(np.arange(30.0), 5, 5)
    with pytest.raises(ValueError, match=r"shape \(2, 15\)"):
        forecasting.forecast_windows(np.zeros((2, 15)), 5, 10)


def test_the_scale_uses_only_the_years_before_the_test():
    series = np.concatenate([np.zeros(10), np.full(10, 100.0)])
    assert forecasting.training_scale(series, 10) == (0.0, 0.0)
    assert forecasting.training_scale(series, 20)[0] == 50.0


def test_least_squares_autoregression_recovers_a_linear_recurrence():
    series = np.empty(60)
    series[:2] = 1.0, 2.0
    for t in range(2, 60):
        series[t] = 3.0 + 0.6 * series[t - 1] - 0.2 * series[t - 2]
    series += 0.01 * np.sin(np.arange(60))  # not exactly linear, so lstsq has work to do
    windows = forecasting.forecast_windows(series, 2, 50)
    intercept, coefficients = forecasting.fit_linear_autoregression(windows.train_inputs,
                                                                    windows.train_targets)
    assert intercept == pytest.approx(3.0, abs=0.1)
    np.testing.assert_allclose(coefficients, [-0.2, 0.6], atol=0.05)
    np.testing.assert_array_equal(forecasting.persistence_forecast(windows.test_inputs),
                                  windows.test_inputs[:, -1])
