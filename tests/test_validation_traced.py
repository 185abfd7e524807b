"""Traced hyperparameters under `validation.debug_checks()` (issue 18).

A traced value cannot be checked when the optimizer is built; in the checked
mode each check adds a `checkify` check instead, reported under
`checkify.checkify`, with jit and vmap. Off, nothing changes; on, a valid run
gives the same numbers.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import pytest
from jax.experimental import checkify

import gradtransforms as gt
from gradtransforms import validation as va

PARAMS = {"w": jnp.array([1.0, -2.0, 3.0])}


def _injected_step(tx):
    return jax.jit(lambda state: tx.update(PARAMS, state, PARAMS))


def test_a_negative_injected_learning_rate_is_reported_by_name():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1, momentum=0.9)
    state = tx.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(-0.1)
    with va.debug_checks():
        error, _ = checkify.checkify(_injected_step(tx))(state)
    assert "learning_rate must be a finite number >= 0" in error.get()
    assert "-0.1" in error.get()


@pytest.mark.parametrize(
    ("name", "value"), [("momentum", 1.5), ("momentum", jnp.nan), ("b1", -0.1)]
)
def test_other_injected_hyperparameters_are_reported(name, value):
    factory = gt.adam if name == "b1" else gt.sgd
    kwargs = {} if name == "b1" else {"momentum": 0.9}
    tx = gt.inject_hyperparams(factory)(learning_rate=0.1, **kwargs)
    state = tx.init(PARAMS)
    state.hyperparams[name] = jnp.asarray(value)
    with va.debug_checks():
        error, _ = checkify.checkify(_injected_step(tx))(state)
    assert f"{name} must be a number in [0, 1)" in error.get()


def test_a_negative_learning_rate_is_reported_under_vmap():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1)

    def run(lr):
        state = tx.init(PARAMS)
        state.hyperparams["learning_rate"] = lr
        return tx.update(PARAMS, state, PARAMS)[0]

    with va.debug_checks():
        error, _ = checkify.checkify(jax.jit(jax.vmap(run)))(jnp.array([0.1, -0.2]))
    assert "learning_rate must be a finite number >= 0" in error.get()
    assert "got -0.2" in error.get()  # the second configuration's


def test_a_schedule_going_negative_is_reported_at_its_step():
    tx = gt.sgd(gt.linear_decay_schedule(1.0, -1.0, 4))  # 1, 0.5, 0, -0.5, ...
    state = tx.init(PARAMS)
    step = jax.jit(lambda s: tx.update(PARAMS, s, PARAMS)[1])
    errors = []
    with va.debug_checks():
        for _ in range(4):
            error, state = checkify.checkify(step)(state)
            errors.append(error.get())
    assert errors[:3] == [None, None, None]  # 0 at step 2 is allowed (a warm-up)
    assert "learning_rate (scheduled) must be a finite number >= 0" in errors[3]


def test_an_eager_step_is_checked_too():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1)
    state = tx.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(-1.0)
    step = lambda s: tx.update(PARAMS, s, PARAMS)
    tx.update(PARAMS, state, PARAMS)  # eagerly too, unchecked outside the mode
    with va.debug_checks():
        error, _ = checkify.checkify(step)(state)
    assert "learning_rate" in error.get()


def test_nothing_is_reported_with_the_mode_off():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1)
    state = tx.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(-0.1)
    error, _ = checkify.checkify(_injected_step(tx))(state)
    assert error.get() is None
    with va.debug_checks(), va.debug_checks(False):  # and turned off inside
        error, _ = checkify.checkify(_injected_step(tx))(state)
    assert error.get() is None


def test_a_valid_run_gives_the_same_numbers_with_the_mode_on():
    warm_up = gt.warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10)
    tx = gt.inject_hyperparams(gt.adam)(learning_rate=warm_up, b1=0.8)

    def run(state):
        out = []
        for _ in range(4):
            updates, state = tx.update(PARAMS, state, PARAMS)
            out.append(updates)
        return out

    plain = jax.jit(run)(tx.init(PARAMS))
    with va.debug_checks():
        error, checked = checkify.checkify(jax.jit(run))(tx.init(PARAMS))
    assert error.get() is None  # the warm-up starts at 0: allowed
    chex.assert_trees_all_equal(checked, plain)


def test_a_warm_up_from_zero_is_accepted_eagerly_as_under_jit():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=gt.linear_decay_schedule(0, 1, 4))
    state = tx.init(PARAMS)
    eager, _ = tx.update(PARAMS, state, PARAMS)
    jitted, _ = _injected_step(tx)(state)
    chex.assert_trees_all_equal(eager, jitted)


def test_debug_checks_takes_a_bool():
    with pytest.raises(TypeError, match="enabled must be a bool"):
        va.debug_checks("yes")
