"""tuning: budgets in steps, evaluation sets, the seeds axis, reproducibility.

Training uses the small logistic regression of `tests/tuning/common.py`. The
references are the library's single-run `make_train_fn` (whose own maths
`test_trainer.py` checks against NumPy), NumPy on the returned parameters,
and sweeps with explicitly folded keys.
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
