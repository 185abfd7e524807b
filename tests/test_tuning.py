"""Hyperparameter search (Tripp's slides): spaces, samplers, vectorised sweeps, TPE.

Training tests use a small logistic regression so that each compiled program
is cheap; programs are shared through module-scoped fixtures.
"""

from __future__ import annotations

import itertools
import math
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import gradtransforms as gt
import gradtransforms.tuning as tu

# ----------------------------------------------------------------------------
# Samplers


SPACE = {
    "lr": tu.log_uniform(1e-4, 1e-1),
    "b2": tu.uniform(0.9, 0.999),
    "width": tu.integer(2, 5),
    "act": tu.choice(["relu", "tanh"]),
}


def test_dimensions_are_validated_and_stored():
    assert tu.uniform(0, 1) == tu.Uniform(0.0, 1.0)
    assert tu.log_uniform(1e-3, 1) == tu.LogUniform(1e-3, 1.0)
    assert tu.integer(1, 3) == tu.Integer(1, 3)
    assert tu.choice([None, True, 1, 0.5, "a"]).values == (None, True, 1, 0.5, "a")


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


def test_best_so_far_treats_nan_as_worst():
    np.testing.assert_array_equal(
        tu.best_so_far([np.nan, 3.0, np.nan, 1.0, 2.0]), [np.nan, 3.0, 3.0, 1.0, 1.0]
    )
    np.testing.assert_array_equal(
        tu.best_so_far([0.2, 0.5, np.nan], direction="maximize"), [0.2, 0.5, 0.5]
    )


# ----------------------------------------------------------------------------
# A small problem: logistic regression, 48 examples, 3 features


def _logistic_problem(valid: bool = True) -> tu.Problem:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 * rng.normal(size=48) > 0).astype(
        np.float32
    )

    def init_fn(key):
        return {"w": jax.random.normal(key, (3, 1)), "b": jnp.zeros(())}

    def loss_fn(params, batch):
        xb, yb = batch
        z = (xb @ params["w"])[:, 0] + params["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - yb * z)

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


PROBLEM = _logistic_problem()
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
    problem = _logistic_problem(valid=False)
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


# ----------------------------------------------------------------------------
# TPE through Optuna


def test_tpe_search_on_a_black_box():
    pytest.importorskip("optuna")
    space = {"x": tu.uniform(-1.0, 1.0), "c": tu.choice(["a", "b"])}
    calls = []

    def evaluate(configs):
        calls.append(len(configs["x"]))
        x = np.asarray(configs["x"], np.float64)
        values = x**2 + 0.5 * np.asarray(configs["c"])
        values[np.abs(x) > 0.95] = np.nan  # a "diverged" trial
        return values

    a = tu.tpe_search(space, evaluate, num_trials=10, trials_per_round=4, seed=3)
    assert calls == [4, 4, 2]  # ask 4, evaluate 4 at once, tell 4
    assert a.values.shape == (10,) and a.configs["x"].shape == (10,)
    assert np.all(np.abs(a.configs["x"]) <= 1.0)
    told = np.array([t.value for t in a.study.trials])
    expected = np.where(np.isnan(a.values), np.inf, a.values)
    np.testing.assert_array_equal(told, expected)
    b = tu.tpe_search(space, evaluate, num_trials=10, trials_per_round=4, seed=3)
    chex.assert_trees_all_equal(a.configs, b.configs)  # seeded


def test_tpe_search_trains_each_round_in_one_vmapped_sweep():
    pytest.importorskip("optuna")
    space = {"lr": tu.log_uniform(1e-3, 1.0), "momentum": tu.uniform(0.0, 0.9)}
    run = tu.sweeper(
        PROBLEM,
        space,
        optimizer=gt.sgd,
        hyperparams={"learning_rate": "lr", "momentum": "momentum"},
        num_epochs=2,
        batch_size=16,
        key=KEY,
    )
    compile_seconds = []

    def evaluate(configs):
        result = run(configs)
        compile_seconds.append(result.compile_seconds)
        return result.final["valid_loss"]

    found = tu.tpe_search(space, evaluate, num_trials=6, trials_per_round=3)
    assert len(found.study.trials) == 6
    assert compile_seconds[0] > 0 and compile_seconds[1] == 0  # compiled once
    again = run(found.configs).final["valid_loss"]
    np.testing.assert_allclose(found.values, again, rtol=1e-5)


def test_tpe_search_marks_trials_failed_when_evaluate_raises():
    optuna = pytest.importorskip("optuna")
    space = {"x": tu.uniform(0.0, 1.0)}

    def evaluate(configs):
        raise RuntimeError("boom")

    study = optuna.create_study()
    with pytest.raises(RuntimeError, match="boom"):
        tu.tpe_search(space, evaluate, num_trials=2, trials_per_round=2, study=study)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        tu.tpe_search(space, lambda c: np.zeros(3), num_trials=2, trials_per_round=2)


def test_tpe_search_without_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"gradtransforms\[tuning\]"):
        tu.tpe_search(
            {"x": tu.uniform(0, 1)}, np.zeros_like, num_trials=1, trials_per_round=1
        )


# ----------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: tu.uniform(1.0, 1.0), ValueError, "high must be > low"),
        (lambda: tu.uniform("0", 1.0), TypeError, "low"),
        (lambda: tu.uniform(0.0, math.inf), ValueError, "high"),
        (lambda: tu.log_uniform(0.0, 1.0), ValueError, "low must be > 0"),
        (lambda: tu.log_uniform(1.0, 0.1), ValueError, "high must be > low"),
        (lambda: tu.integer(1.5, 3), TypeError, "low must be an int"),
        (lambda: tu.integer(3, 3), ValueError, "high must be > low"),
        (lambda: tu.choice([]), ValueError, "empty"),
        (lambda: tu.choice("ab"), TypeError, "sequence"),
        (lambda: tu.choice([1, 1]), ValueError, "distinct"),
        (lambda: tu.choice([[1]]), TypeError, "values"),
        (lambda: tu.grid({}, 2), TypeError, "space"),
        (lambda: tu.grid({"a": (0, 1)}, 2), TypeError, r"space\['a'\]"),
        (lambda: tu.grid(SPACE, 0), ValueError, "num"),
        (lambda: tu.grid(SPACE, {"lr": 2, "b2": 2}), ValueError, "'width'"),
        (
            lambda: tu.grid(SPACE, {"lr": 2, "b2": 2, "width": 2, "act": 2}),
            ValueError,
            "'act'",
        ),
        (lambda: tu.random(SPACE, 0, jax.random.key(0)), ValueError, "n"),
        (lambda: tu.random(SPACE, 3, 0), TypeError, "key"),
        (lambda: tu.decode(SPACE, {"lr": jnp.ones(2)}), ValueError, "missing"),
        (lambda: tu.encode(SPACE, [{"lr": 0.1}]), ValueError, r"trials\[0\]"),
        (
            lambda: tu.encode({"a": tu.choice([1, 2])}, [{"a": 3}]),
            ValueError,
            "not one of",
        ),
        (lambda: tu.best_so_far([1.0], direction="down"), ValueError, "direction"),
    ],
)
def test_bad_arguments_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


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


# ----------------------------------------------------------------------------
# The example


def test_example_rejects_bad_arguments_in_one_line(capsys):
    from examples import hparam_search

    assert hparam_search.main(["--trials", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "square" in err


@pytest.mark.slow
def test_example_runs_small(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("optuna")
    from examples import hparam_search

    argv = ["--out", str(tmp_path), "--trials", "4", "--repeats", "2"]
    argv += ["--tpe-repeats", "1", "--epochs", "1"]
    assert hparam_search.main(argv) == 0
    printed = capsys.readouterr().out
    for method in ("| grid |", "| random |", "| TPE |"):
        assert method in printed
    assert (tmp_path / "hparam_search.png").stat().st_size > 0
    assert (tmp_path / "hparam_search.json").stat().st_size > 0
