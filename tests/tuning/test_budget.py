"""tuning/trainer.py: budgets in steps, and evaluation every N steps.

Training uses the small logistic regression of `tests/tuning/common.py`. The
references are the same budget given in epochs, NumPy on the returned
parameters, and the same run scored after every step.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import KEY, PROBLEM

SPACE = {"lr": tu.log_uniform(0.01, 1.0)}
LRS = {"lr": jnp.asarray([0.05, 0.2, 0.8])}
SGD = dict(optimizer=gt.sgd, hyperparams={"learning_rate": "lr"}, batch_size=8)
# 32 training examples in batches of 8: 4 steps per epoch.


def test_a_budget_in_steps_equals_the_same_budget_in_epochs():
    by_epochs = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_epochs=3, **SGD)
    by_steps = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_steps=12, **SGD)
    np.testing.assert_array_equal(by_epochs.eval_steps, [4, 8, 12])
    np.testing.assert_array_equal(by_steps.eval_steps, [4, 8, 12])
    for name, curve in by_epochs.metrics.items():
        np.testing.assert_array_equal(by_steps.metrics[name], curve)


def test_a_budget_that_ends_inside_an_epoch_and_is_scored_every_n_steps():
    settings = dict(key=KEY, keep_params=True, **SGD)
    result = tu.sweep(PROBLEM, SPACE, LRS, num_steps=7, eval_every=3, **settings)
    np.testing.assert_array_equal(result.eval_steps, [3, 6, 7])
    assert result.metrics["valid_loss"].shape == (3, 3)
    # Each evaluation scores the parameters of that step: the last one is
    # the final parameters, checked here with NumPy.
    x, y = (np.asarray(a, np.float64) for a in PROBLEM.valid_data)
    for i in range(3):
        w, b = result.params["w"][i][:, 0], result.params["b"][i]
        z = x @ w + b
        loss = np.mean(np.logaddexp(0, z) - y * z)
        np.testing.assert_allclose(result.metrics["valid_loss"][i, -1], loss, rtol=1e-5)
    # 7 steps run in full: more than 6 and fewer than 8 (the next epoch).
    seven = result.params["w"]
    six = tu.sweep(PROBLEM, SPACE, LRS, num_steps=6, **settings).params["w"]
    eight = tu.sweep(PROBLEM, SPACE, LRS, num_steps=8, **settings).params["w"]
    assert not np.allclose(seven, six) and not np.allclose(seven, eight)
    # The train loss of the last, shorter period is the mean of its one step.
    one_by_one = tu.sweep(PROBLEM, SPACE, LRS, num_steps=7, eval_every=1, **settings)
    np.testing.assert_allclose(
        result.metrics["train_loss"][:, 1],
        one_by_one.metrics["train_loss"][:, 3:6].mean(axis=1),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        result.metrics["train_loss"][:, 2], one_by_one.metrics["train_loss"][:, 6]
    )


def test_an_evaluation_period_longer_than_the_budget_scores_the_end_only():
    long = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_steps=6, eval_every=50, **SGD)
    once = tu.sweep(PROBLEM, SPACE, LRS, key=KEY, num_steps=6, eval_every=6, **SGD)
    np.testing.assert_array_equal(long.eval_steps, [6])
    for name, curve in once.metrics.items():
        np.testing.assert_array_equal(long.metrics[name], curve)
