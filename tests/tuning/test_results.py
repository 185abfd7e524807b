"""tuning/results.py: the running best of trials, and the best configuration."""

from __future__ import annotations

import numpy as np
import pytest

import gradtransforms.tuning as tu


def test_best_so_far_treats_nan_as_worst():
    np.testing.assert_array_equal(
        tu.best_so_far([np.nan, 3.0, np.nan, 1.0, 2.0]), [np.nan, 3.0, 3.0, 1.0, 1.0]
    )
    np.testing.assert_array_equal(
        tu.best_so_far([0.2, 0.5, np.nan], direction="maximize"), [0.2, 0.5, 0.5]
    )


def test_sweep_result_best_treats_nan_as_worst_in_either_direction():
    loss = np.array([[0.9, 0.5], [0.8, np.nan], [0.7, 0.2]])
    result = tu.SweepResult({}, {"loss": loss}, None, 0.0, 0.0)
    np.testing.assert_array_equal(result.final["loss"], [0.5, np.nan, 0.2])
    assert result.best("loss") == 2
    assert result.best("loss", direction="maximize") == 0
    with pytest.raises(KeyError, match="accuracy"):
        result.best("accuracy")
