"""tuning/tpe.py: TPE search through Optuna, one vectorised sweep per round."""

from __future__ import annotations

import sys

import chex
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.tuning as tu
from tests.tuning.common import KEY, PROBLEM


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
