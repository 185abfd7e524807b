"""tuning/problem.py: evaluation sets, and the checks of a problem and a budget.

Training uses the small logistic regression of `tests/tuning/common.py`; the
reference for the scores is the problem's own metrics function applied to the
returned parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import KEY, PROBLEM, logistic_problem

SPACE = {"lr": tu.log_uniform(0.01, 1.0)}
LRS = {"lr": jnp.asarray([0.05, 0.2, 0.8])}
SGD = dict(optimizer=gt.sgd, hyperparams={"learning_rate": "lr"}, batch_size=8)
# 32 training examples in batches of 8: 4 steps per epoch.


def test_named_evaluation_sets_are_each_scored():
    base = logistic_problem()
    test = jax.tree.map(lambda a: a[:8], base.train_data)
    problem = base._replace(eval_data={"test": test, "train": base.train_data})
    result = tu.sweep(
        problem, SPACE, LRS, key=KEY, num_epochs=2, keep_params=True, **SGD
    )
    names = {
        f"{s}_{m}" for s in ("valid", "test", "train") for m in ("loss", "accuracy")
    }
    assert set(result.metrics) == names | {"train_loss"}
    for i in range(3):
        params = jax.tree.map(lambda p, i=i: p[i], result.params)
        for name, data in (("test", test), ("train", base.train_data)):
            values = base.metrics_fn(params, data)
            for metric, value in values.items():
                np.testing.assert_allclose(
                    result.final[f"{name}_{metric}"][i], value, rtol=1e-6
                )
    # Evaluation sets without valid_data, and the default metric.
    only_test = PROBLEM._replace(
        valid_data=None, metrics_fn=None, eval_data={"t": test}
    )
    result = tu.sweep(only_test, SPACE, LRS, key=KEY, num_epochs=1, **SGD)
    assert set(result.metrics) == {"train_loss", "t_loss"}


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"num_epochs": None}, TypeError, "exactly one of num_epochs"),
        ({"num_steps": 4}, TypeError, "exactly one of num_epochs"),
        ({"num_epochs": None, "num_steps": 0}, ValueError, "num_steps"),
        ({"num_epochs": None, "num_steps": 2.5}, TypeError, "num_steps"),
        ({"eval_every": 0}, ValueError, "eval_every"),
        ({"seeds": 0}, ValueError, "seeds"),
        ({"seeds": True}, TypeError, "seeds"),
        ({"problem": PROBLEM._replace(eval_data=[1])}, TypeError, "eval_data"),
        ({"problem": PROBLEM._replace(eval_data={"a b": 1})}, ValueError, "a b"),
        (
            {"problem": PROBLEM._replace(eval_data={"valid": PROBLEM.valid_data})},
            ValueError,
            "valid_data already",
        ),
        (
            {
                "problem": PROBLEM._replace(
                    eval_data={"t": (np.ones((3, 3)), np.ones(2))}
                )
            },
            ValueError,
            "leading",
        ),
        ({"problem": PROBLEM._replace(has_state=1)}, TypeError, "has_state"),
    ],
)
def test_budget_seed_and_evaluation_set_bad_arguments(changes, error, match):
    arguments = dict(
        problem=PROBLEM,
        space=SPACE,
        configs=LRS,
        optimizer=gt.sgd,
        hyperparams={"learning_rate": "lr"},
        num_epochs=1,
        batch_size=8,
        key=KEY,
    )
    arguments.update(changes)
    with pytest.raises(error, match=match):
        tu.sweep(**arguments)
