"""The search space, problem and SGD sweep settings shared by the tuning tests.

The problem is a small logistic regression (48 examples, 3 features,
`gradtransforms.problems.logistic_regression` on weights of shape (3, 1)), so
that each compiled training program is cheap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
import gradtransforms.tuning as tu
from gradtransforms import problems

SPACE = {
    "lr": tu.log_uniform(1e-4, 1e-1),
    "b2": tu.uniform(0.9, 0.999),
    "width": tu.integer(2, 5),
    "act": tu.choice(["relu", "tanh"]),
}


def logistic_problem(valid: bool = True) -> tu.Problem:
    """32 training and 16 validation examples (no validation if not `valid`)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 * rng.normal(size=48) > 0).astype(
        np.float32
    )

    def init_fn(key):
        return {"w": jax.random.normal(key, (3, 1)), "b": jnp.zeros(())}

    def loss_fn(params, batch):
        loss = problems.logistic_regression(*batch)
        return loss({"w": params["w"][:, 0], "b": params["b"]})

    def metrics_fn(params, batch):
        xb, yb = batch
        z = (xb @ params["w"])[:, 0] + params["b"]
        return {
            "loss": loss_fn(params, batch),
            "accuracy": jnp.mean((z > 0) == (yb > 0.5)),
        }

    data = (x[:32], y[:32])
    return tu.Problem(
        init_fn,
        loss_fn,
        data,
        (x[32:], y[32:]) if valid else None,
        metrics_fn if valid else None,
    )


PROBLEM = logistic_problem()
# Learning rate with a schedule, momentum, and the initial weight scale as a
# choice between numbers (vectorised, not static).
SGD_SPACE = {
    "lr": tu.log_uniform(0.05, 1.0),
    "end": tu.uniform(0.01, 1.0),
    "momentum": tu.uniform(0.0, 0.9),
    "scale": tu.choice([0.5, 1.0, 2.0]),
}
NUM_EPOCHS, BATCH = 3, 8
TOTAL_STEPS = NUM_EPOCHS * 32 // BATCH
SGD_SETTINGS = dict(
    optimizer=gt.sgd,
    hyperparams={
        "learning_rate": lambda h: gt.linear_decay_schedule(
            h["lr"], h["lr"] * h["end"], TOTAL_STEPS
        ),
        "momentum": "momentum",
    },
    init_scale="scale",
    num_epochs=NUM_EPOCHS,
    batch_size=BATCH,
)
KEY = jax.random.key(7)
