"""tuning/samplers.py: grid and random samples against NumPy and SciPy; decoding.

References: `itertools.product` of NumPy's `geomspace`/`linspace` for the
grid, and a Kolmogorov-Smirnov test (SciPy) for the log-uniform draws.
"""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

import gradtransforms.tuning as tu
from tests.tuning.common import SPACE


def test_grid_covers_the_product():
    counts = {"lr": 4, "b2": 3, "width": 2}
    configs = tu.grid(SPACE, counts)
    assert {k: v.shape for k, v in configs.items()} == dict.fromkeys(SPACE, (48,))
    assert configs["lr"].dtype == jnp.float32 and configs["width"].dtype == jnp.int32
    per_dim = {
        "lr": np.geomspace(1e-4, 1e-1, 4),
        "b2": np.linspace(0.9, 0.999, 3),
        "width": np.array([2, 5]),
        "act": np.array([0, 1]),
    }
    rows = np.stack([np.asarray(configs[k], np.float64) for k in SPACE], axis=1)
    expected = np.array(list(itertools.product(*per_dim.values())))
    np.testing.assert_allclose(rows, expected, rtol=1e-6)  # product order
    # Every combination exactly once.
    assert len({tuple(np.round(r, 9)) for r in rows}) == 48


def test_grid_with_one_count_for_all_and_a_midpoint():
    configs = tu.grid({"lr": tu.log_uniform(1e-4, 1e-2), "m": tu.uniform(0, 1)}, 1)
    np.testing.assert_allclose(configs["lr"], [1e-3], rtol=1e-6)
    np.testing.assert_allclose(configs["m"], [0.5])
    # Integer grids are rounded and deduplicated.
    assert tu.grid({"k": tu.integer(1, 3)}, 5)["k"].tolist() == [1, 2, 3]


def test_random_stays_in_bounds():
    configs = tu.random(SPACE, 2000, jax.random.key(0))
    lr, b2 = np.asarray(configs["lr"]), np.asarray(configs["b2"])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    assert b2.min() >= 0.9 and b2.max() <= 0.999
    # Integer bounds are inclusive; choices are indices of their values.
    assert sorted(set(configs["width"].tolist())) == [2, 3, 4, 5]
    assert sorted(set(configs["act"].tolist())) == [0, 1]
    assert configs["width"].dtype == jnp.int32 and configs["act"].dtype == jnp.int32


def test_log_uniform_is_log_uniform():
    low, high = 1e-5, 1e-1
    x = np.asarray(
        tu.random({"x": tu.log_uniform(low, high)}, 4000, jax.random.key(1))["x"]
    )
    u = (np.log(x) - math.log(low)) / math.log(high / low)
    assert scipy.stats.kstest(u, "uniform").pvalue > 0.01
    # The test has power: uniform samples are far from log-uniform.
    y = np.asarray(
        tu.random({"y": tu.uniform(low, high)}, 4000, jax.random.key(1))["y"]
    )
    v = (np.log(y) - math.log(low)) / math.log(high / low)
    assert scipy.stats.kstest(v, "uniform").pvalue < 1e-6
    assert scipy.stats.kstest((y - low) / (high - low), "uniform").pvalue > 0.01


def test_same_key_same_samples():
    a = tu.random(SPACE, 50, jax.random.key(3))
    b = tu.random(SPACE, 50, jax.random.key(3))
    c = tu.random(SPACE, 50, jax.random.key(4))
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a["lr"], c["lr"])
    # A dimension's samples depend on its name, not on the other dimensions.
    d = tu.random({"lr": SPACE["lr"]}, 50, jax.random.key(3))
    np.testing.assert_array_equal(a["lr"], d["lr"])


def test_decode_and_encode_round_trip():
    configs = tu.random(SPACE, 6, jax.random.key(2))
    trials = tu.decode(SPACE, configs)
    assert all(
        t["act"] in ("relu", "tanh") and isinstance(t["width"], int) for t in trials
    )
    back = tu.encode(SPACE, trials)
    chex.assert_trees_all_equal(back, configs)
    # Bools are not confused with the integers 1 and 0.
    space = {"c": tu.choice([1, True])}
    assert tu.encode(space, [{"c": True}, {"c": 1}])["c"].tolist() == [1, 0]
