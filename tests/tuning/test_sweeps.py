"""tuning/sweeps.py: vectorised sweeps equal each configuration trained alone.

Training uses the small logistic regression of `tests/tuning/common.py`, so
each compiled program is cheap; programs are shared through module-scoped
fixtures.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import (
    KEY,
    NUM_EPOCHS,
    PROBLEM,
    SGD_SETTINGS,
    SGD_SPACE,
    logistic_problem,
)


@pytest.fixture(scope="module")
def sgd_configs():
    return tu.random(SGD_SPACE, 5, jax.random.key(11))


@pytest.fixture(scope="module")
def sgd_sweep(sgd_configs):
    return tu.sweep(
        PROBLEM,
        SGD_SPACE,
        sgd_configs,
        key=KEY,
        same_key=False,
        keep_params=True,
        **SGD_SETTINGS,
    )


def test_sweep_returns_per_configuration_metrics(sgd_sweep):
    assert set(sgd_sweep.metrics) == {"train_loss", "valid_loss", "valid_accuracy"}
    for curve in sgd_sweep.metrics.values():
        assert curve.shape == (5, NUM_EPOCHS)
    assert sgd_sweep.params["w"].shape == (5, 3, 1)
    assert sgd_sweep.final["valid_loss"].shape == (5,)
    assert np.all(np.isfinite(sgd_sweep.metrics["train_loss"]))
    # The configurations really differ.
    assert len(np.unique(np.round(sgd_sweep.final["train_loss"], 6))) == 5
    best = sgd_sweep.best("valid_loss")
    assert sgd_sweep.final["valid_loss"][best] == sgd_sweep.final["valid_loss"].min()


def test_vectorised_sweep_equals_each_configuration_alone(sgd_configs, sgd_sweep):
    train_fn = jax.jit(tu.make_train_fn(PROBLEM, **SGD_SETTINGS))
    for i, trial in enumerate(tu.decode(SGD_SPACE, sgd_configs)):
        config = {k: jnp.asarray(v, jnp.float32) for k, v in trial.items()}
        metrics, params = train_fn(config, jax.random.fold_in(KEY, i))
        for name, curve in metrics.items():
            np.testing.assert_allclose(
                sgd_sweep.metrics[name][i], curve, rtol=1e-5, atol=1e-6
            )
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], sgd_sweep.params),
            params,
            rtol=1e-5,
            atol=1e-6,
        )


def test_chunking_gives_the_same_result(sgd_configs, sgd_sweep):
    chunked = tu.sweep(
        PROBLEM,
        SGD_SPACE,
        sgd_configs,
        key=KEY,
        same_key=False,
        chunk_size=2,  # chunks of 2, 2 and 1 (padded)
        **SGD_SETTINGS,
    )
    assert chunked.params is None
    for name, curve in sgd_sweep.metrics.items():
        np.testing.assert_allclose(chunked.metrics[name], curve, rtol=1e-5, atol=1e-6)


def test_static_choice_is_grouped_and_reaches_the_factory():
    space = {"lr": tu.log_uniform(0.01, 0.5), "nesterov": tu.choice([False, True])}
    configs = tu.grid(space, {"lr": 2})  # nesterov alternates: F, T, F, T
    settings = dict(
        optimizer=gt.sgd, num_epochs=3, key=KEY, optimizer_kwargs={"momentum": 0.9}
    )
    hyperparams = {"learning_rate": "lr", "nesterov": "nesterov"}
    result = tu.sweep(PROBLEM, space, configs, hyperparams=hyperparams, **settings)
    # The True group is Nesterov momentum: the same as passing nesterov=True.
    rows = np.flatnonzero(np.asarray(configs["nesterov"]) == 1)
    alone = tu.sweep(
        PROBLEM,
        {"lr": space["lr"]},
        {"lr": configs["lr"][rows]},
        hyperparams={"learning_rate": "lr"},
        **{**settings, "optimizer_kwargs": {"momentum": 0.9, "nesterov": True}},
    )
    np.testing.assert_allclose(
        result.metrics["train_loss"][rows], alone.metrics["train_loss"], rtol=1e-5
    )
    # ... and differs from the False group at the same learning rate.
    assert not np.allclose(result.final["train_loss"][0], result.final["train_loss"][1])


def test_sweep_of_adam_b1_b2_and_weight_decay_without_validation_data():
    problem = logistic_problem(valid=False)
    space = {
        "learning_rate": tu.log_uniform(1e-3, 1e-1),
        "b1": tu.uniform(0.8, 0.95),
        "b2": tu.uniform(0.9, 0.999),
        "weight_decay": tu.log_uniform(1e-5, 1e-2),
    }
    result = tu.sweep(
        problem,
        space,
        tu.random(space, 3, jax.random.key(0)),
        optimizer=gt.adamw,
        hyperparams=list(space),
        num_epochs=2,
        batch_size=32,
        key=KEY,
    )
    assert set(result.metrics) == {"train_loss"}
    assert np.all(np.isfinite(result.final["train_loss"]))


def test_a_diverging_configuration_gives_nan_without_disturbing_others():
    x = jnp.linspace(-1.0, 1.0, 8)[:, None]
    problem = tu.Problem(
        init_fn=lambda key: {"w": jnp.ones((1, 1))},
        loss_fn=lambda p, b: jnp.mean((b @ p["w"] - 2 * b) ** 2),
        train_data=x,
    )
    result = tu.sweep(
        problem,
        {"lr": tu.log_uniform(1e-2, 1e20)},
        {"lr": jnp.asarray([0.5, 1e20], jnp.float32)},
        optimizer=gt.sgd,
        hyperparams={"learning_rate": "lr"},
        num_epochs=4,
        key=KEY,
    )
    loss = result.final["train_loss"]
    assert loss[0] < 0.5 and not np.isfinite(loss[1])
    assert result.best("train_loss") == 0


_SMALL = {"lr": tu.log_uniform(1e-3, 1.0)}
_LR = {"lr": jnp.asarray([0.1, 0.2], jnp.float32)}


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"hyperparams": {"learning_rate": "eta"}}, ValueError, "'eta'"),
        ({"hyperparams": 3}, TypeError, "hyperparams"),
        ({"init_scale": "scale"}, ValueError, "init_scale"),
        ({"optimizer_kwargs": {"learning_rate": 0.1}}, ValueError, "learning_rate"),
        ({"optimizer": "sgd"}, TypeError, "optimizer"),
        ({"num_epochs": 0}, ValueError, "num_epochs"),
        ({"batch_size": 100}, ValueError, "batch_size"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"static_dims": ("lr",)}, ValueError, "static_dims"),
        ({"key": 0}, TypeError, "key"),
        ({"problem": (1, 2)}, TypeError, "Problem"),
        ({"configs": {"lr": jnp.ones((2, 2))}}, ValueError, "1-D"),
        ({"configs": {"lr": jnp.ones(2), "x": jnp.ones(2)}}, ValueError, "unknown"),
    ],
)
def test_sweep_bad_arguments(changes, error, match):
    arguments = dict(
        problem=PROBLEM,
        space=_SMALL,
        configs=_LR,
        optimizer=gt.sgd,
        hyperparams={"learning_rate": "lr"},
        num_epochs=1,
        key=KEY,
    )
    arguments.update(changes)
    with pytest.raises(error, match=match):
        tu.sweep(**arguments)
