"""tuning/programs.py: the seeds axis, common random numbers, reproducibility.

Training uses the small logistic regression of `tests/tuning/common.py`. The
references are sweeps with explicitly folded keys, hand calculations and a
printed t table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import KEY, PROBLEM

SPACE = {"lr": tu.log_uniform(0.01, 1.0)}
LRS = {"lr": jnp.asarray([0.05, 0.2, 0.8])}
SGD = dict(optimizer=gt.sgd, hyperparams={"learning_rate": "lr"}, batch_size=8)
# 32 training examples in batches of 8: 4 steps per epoch.


def test_seeds_axis_equals_sweeps_with_folded_keys():
    """Seed s is the sweep with key fold_in(key, s); configurations share it."""
    settings = dict(num_epochs=2, keep_params=True, chunk_size=3, **SGD)
    result = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, seeds=3, **settings)
    assert result.seeds == 3
    assert result.metrics["valid_loss"].shape == (3, 3, 2)
    assert result.final["valid_loss"].shape == (3, 3)
    assert result.params["w"].shape == (3, 3, 3, 1)
    for s in range(3):
        alone = tu.sweep(
            PROBLEM, SPACE, LRS, key=jax.random.fold_in(KEY, s), **settings
        )
        for name, curve in alone.metrics.items():
            np.testing.assert_allclose(result.metrics[name][:, s], curve, rtol=1e-5)
    # The seeds differ from one another.
    assert len(np.unique(np.round(result.final["valid_loss"][0], 6))) == 3


def test_common_random_numbers_across_configurations():
    """With same_key, configurations share each seed's initial weights."""
    zero = {"lr": jnp.asarray([1e-30, 1e-30])}  # the parameters stay put
    space = {"lr": tu.log_uniform(1e-30, 1.0)}
    kept = dict(key=KEY, num_epochs=1, keep_params=True, seeds=2, **SGD)
    shared = tu.sweep(PROBLEM, space, zero, **kept).params["w"]
    np.testing.assert_array_equal(shared[0], shared[1])  # same per seed
    assert not np.allclose(shared[0, 0], shared[0, 1])  # seeds differ
    own = tu.sweep(PROBLEM, space, zero, same_key=False, **kept).params["w"]
    assert not np.allclose(own[0], own[1])  # each configuration its own


def test_a_result_does_not_depend_on_the_other_configurations():
    """Same chunk width: bitwise the same whatever else is swept with it."""
    settings = dict(key=KEY, num_epochs=3, chunk_size=4, **SGD)
    target = 0.3
    runs = [
        [target, 0.05, 0.9, 0.01],
        [0.6, 0.02, target, 0.04, 0.5, 0.07, 0.08],  # two chunks, target in one
        [target],  # alone, padded to the chunk width
    ]
    finals = []
    for lrs in runs:
        result = tu.sweep(PROBLEM, SPACE, {"lr": jnp.asarray(lrs)}, **settings)
        finals.append(result.metrics["valid_loss"][lrs.index(target)])
    np.testing.assert_array_equal(finals[0], finals[1])
    np.testing.assert_array_equal(finals[0], finals[2])


def test_mean_ci_of_a_sweep_is_the_t_interval_over_seeds():
    result = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_epochs=2, seeds=4, **SGD)
    mean, half = result.mean_ci("valid_loss")
    values = result.final["valid_loss"].astype(np.float64)
    # By hand: t_{0.975, 3} = 3.182 (published tables), s with divisor k - 1.
    s = np.sqrt(((values - values.mean(1, keepdims=True)) ** 2).sum(1) / 3)
    np.testing.assert_allclose(mean, values.sum(1) / 4, rtol=1e-12)
    np.testing.assert_allclose(half, 3.182 * s / 2, rtol=2e-4)
    best = int(np.argmin(values.mean(1)))
    assert result.best("valid_loss") == best


def test_mean_ci_needs_seeds():
    result = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_epochs=1, **SGD)
    with pytest.raises(ValueError, match="seeds"):
        result.mean_ci("valid_loss")
    with pytest.raises(KeyError, match="nope"):
        result.best("nope")
