"""tuning/stats.py: Student-t quantiles and confidence intervals against SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import gradtransforms.tuning as tu
from gradtransforms.tuning.stats import student_t_quantile


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 30, 100, 1001])
def test_quantile_matches_scipy(df, confidence):
    expected = scipy.stats.t.ppf(0.5 + confidence / 2, df)
    np.testing.assert_allclose(student_t_quantile(confidence, df), expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("df", "t"),
    # Two-sided 95% points of published t tables (e.g. Fisher & Yates).
    [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (19, 2.093), (30, 2.042)],
)
def test_quantile_matches_a_printed_table(df, t):
    assert round(student_t_quantile(0.95, df), 3) == t


def test_mean_ci_matches_scipy_interval():
    rng = np.random.default_rng(0)
    values = rng.normal(0.9, 0.02, size=(4, 7))
    mean, half = tu.mean_ci(values, axis=1)
    low, high = scipy.stats.t.interval(
        0.95, 6, loc=values.mean(1), scale=scipy.stats.sem(values, axis=1)
    )
    np.testing.assert_allclose(mean, (low + high) / 2, rtol=1e-12)
    np.testing.assert_allclose(half, (high - low) / 2, rtol=1e-9)
    # Over axis 0 and at another coverage.
    mean0, half0 = tu.mean_ci(values, axis=0, confidence=0.9)
    low, high = scipy.stats.t.interval(
        0.9, 3, loc=values.mean(0), scale=scipy.stats.sem(values, axis=0)
    )
    np.testing.assert_allclose(half0, (high - low) / 2, rtol=1e-9)
    assert mean0.shape == (7,)


def test_mean_ci_of_a_nan_is_nan_and_of_equal_values_zero():
    mean, half = tu.mean_ci([[1.0, np.nan, 2.0], [3.0, 3.0, 3.0]])
    assert np.isnan(mean[0]) and np.isnan(half[0])
    assert mean[1] == 3.0 and half[1] == 0.0


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([1.0],), {}, ValueError, "at least 2 repeats"),
        ((2.0,), {}, ValueError, "axis"),
        (([1.0, 2.0],), {"axis": 1}, ValueError, "axis 1"),
        (([1.0, 2.0],), {"axis": 0.5}, TypeError, "axis"),
        (([1.0, 2.0],), {"confidence": 1.0}, ValueError, "confidence"),
        (([1.0, 2.0],), {"confidence": 0.0}, ValueError, "confidence"),
        (([1.0, 2.0],), {"confidence": "95%"}, TypeError, "confidence"),
    ],
)
def test_mean_ci_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tu.mean_ci(*args, **kwargs)


def test_quantile_bad_arguments():
    with pytest.raises(ValueError, match="df"):
        student_t_quantile(0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        student_t_quantile(float("nan"), 3)
