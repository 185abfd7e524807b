"""tuning/trainer.py: each trained configuration is textbook SGD with momentum.

The reference is a NumPy transcription of Algorithm 8.2 (full batch, float64)
run with each configuration's own hyperparameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import KEY, PROBLEM, SGD_SETTINGS, SGD_SPACE


def _numpy_sgd_reference(trial, w0, b0, x, y, num_steps):
    """Textbook SGD with momentum (Algorithm 8.2), full batch, float64."""
    w = trial["scale"] * w0.astype(np.float64)
    b = np.float64(b0)
    vw, vb = np.zeros_like(w), 0.0
    for k in range(num_steps):
        alpha = min(k / num_steps, 1.0)
        lr = (1 - alpha) * trial["lr"] + alpha * trial["lr"] * trial["end"]
        z = x @ w[:, 0] + b
        r = (1 / (1 + np.exp(-z)) - y) / len(y)
        gw, gb = (x.T @ r)[:, None], r.sum()
        vw, vb = trial["momentum"] * vw - lr * gw, trial["momentum"] * vb - lr * gb
        w, b = w + vw, b + vb
    return w, b


def test_sweep_matches_a_numpy_reference():
    """Full-batch steps, shared key: each run is Algorithm 8.2 with its own h."""
    w0 = np.array([[0.3], [-0.2], [0.1]], np.float32)
    problem = PROBLEM._replace(
        init_fn=lambda key: {"w": jnp.asarray(w0), "b": jnp.asarray(0.1)}
    )
    configs = tu.random(SGD_SPACE, 4, jax.random.key(5))
    steps = 6
    settings = {**SGD_SETTINGS, "num_epochs": steps, "batch_size": None}
    settings["hyperparams"] = {
        **settings["hyperparams"],
        "learning_rate": lambda h: gt.linear_decay_schedule(
            h["lr"], h["lr"] * h["end"], steps
        ),
    }
    result = tu.sweep(
        problem, SGD_SPACE, configs, key=KEY, keep_params=True, **settings
    )
    x, y = (np.asarray(a, np.float64) for a in problem.train_data)
    for i, trial in enumerate(tu.decode(SGD_SPACE, configs)):
        w, b = _numpy_sgd_reference(trial, w0, 0.1, x, y, steps)
        np.testing.assert_allclose(result.params["w"][i], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(result.params["b"][i], b, rtol=1e-4, atol=1e-6)


def test_choice_indices_out_of_range_and_metrics_without_validation():
    space = {"c": tu.choice([0.1, 0.2])}
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        tu.decode(space, {"c": jnp.asarray([0, 2], jnp.int32)})
    with pytest.raises(ValueError, match=r"metrics_fn needs problem\.valid_data"):
        tu.make_train_fn(
            PROBLEM._replace(valid_data=None),
            optimizer=gt.sgd,
            hyperparams={"learning_rate": "lr"},
            num_epochs=1,
        )
    with pytest.raises(ValueError, match="both set"):
        tu.make_train_fn(
            PROBLEM,
            optimizer=gt.sgd,
            hyperparams=["learning_rate"],
            optimizer_kwargs={"learning_rate": 0.1},
            num_epochs=1,
        )
