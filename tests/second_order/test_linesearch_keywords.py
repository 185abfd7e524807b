"""The line searches' optax keywords, with optax's meaning, and their reports.

References are independent of the code under test: optax's own
`scale_by_backtracking_linesearch` on the same inputs (the same trial steps,
so the same iterates and records), the conditions and optax's error formulas
evaluated in NumPy at the step returned, and closed-form minimisers. The
`verbose` reports use optax's `FLAG_*` sentences; that they are optax's word
for word is checked by optax's own tests (`tests/conformance`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtransforms import problems
from gradtransforms import second_order as so
from gradtransforms.combine import chain
from gradtransforms.scaling import scale
from gradtransforms.second_order.linesearch import diagnostics
from tests.second_order.loop import run

# --------------------------------------------------------------------------
# Backtracking: optax's criterion, step for step


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"slope_rtol": 0.0},
        {"atol": 1e-2},
        {"rtol": 1e-3},
        {"increase_factor": 1.0},
        {"increase_factor": math.inf, "max_learning_rate": 2.0},
        {"max_learning_rate": 0.5, "store_grad": True},
    ],
    ids=["defaults", "slope_rtol=0", "atol", "rtol", "keep", "inf", "store_grad"],
)
def test_backtracking_takes_optax_steps(kwargs, x64):
    def f(p):
        return problems.rosenbrock(p["x"])

    params = {"x": jnp.array([-1.2, 1.0])}
    ours = chain(scale(-1.0), so.scale_by_backtracking_linesearch(50, **kwargs))
    theirs = optax.chain(
        optax.scale(-1.0), optax.scale_by_backtracking_linesearch(50, **kwargs)
    )
    _, (_, state), trajectory = run(ours, f, params, 12)
    with jax.numpy_dtype_promotion("standard"):  # optax's code needs it
        _, (_, expected), reference = run(theirs, f, params, 12)
    np.testing.assert_allclose(trajectory["x"], reference["x"], rtol=1e-12)
    np.testing.assert_allclose(state.learning_rate, expected.learning_rate)
    assert int(state.info.num_linesearch_steps) == int(
        expected.info.num_linesearch_steps
    )
    np.testing.assert_allclose(
        state.info.decrease_error, expected.info.decrease_error, atol=1e-12
    )
    if kwargs.get("store_grad"):
        np.testing.assert_allclose(state.grad["x"], expected.grad["x"], rtol=1e-12)


def test_backtracking_accepts_slope_rtol_zero_and_checks_tolerances():
    so.scale_by_backtracking_linesearch(slope_rtol=0.0)  # optax allows it
    for name in ("atol", "rtol"):
        with pytest.raises(ValueError, match=name):
            so.scale_by_backtracking_linesearch(**{name: -1.0})


# --------------------------------------------------------------------------
# Zoom: tol, approx_dec_rtol, stepsize_precision, curv_rtol=inf


def _one_update(tx, f, x, u, learning_rate=None):
    x, u = jnp.asarray(x), jnp.asarray(u)
    state = tx.init(x)
    if learning_rate is not None:  # the first trial of "keep"
        state = state._replace(learning_rate=jnp.asarray(learning_rate, x.dtype))
    value, g = jax.value_and_grad(f)(x)
    return tx.update(u, state, x, value=value, grad=g, value_fn=f)


def _errors(f, x, u, step, c1=1e-4, c2=0.9, tol=0.0):
    """optax's Armijo and curvature errors at `step`, in NumPy (float64)."""
    grad = jax.grad(f)
    x, u = np.asarray(x, np.float64), np.asarray(u, np.float64)
    f0, d0 = float(f(x)), float(np.vdot(u, grad(x)))
    xa = x + step * u
    fa, da = float(f(xa)), float(np.vdot(u, grad(xa)))
    decrease = max(fa - f0 - c1 * step * d0 - tol, 0.0)
    curvature = max(abs(da) - c2 * abs(d0) - tol, 0.0)
    return decrease, curvature


def test_zoom_tol_loosens_both_conditions(x64):
    def f(x):
        return jnp.sum(x**2)

    x, u = np.array([-1.0]), np.array([1.95])  # at ε = 1: |φ'| = 3.705 > 3.51
    _, strict = _one_update(so.scale_by_zoom_linesearch(), f, x, u, 1.0)
    _, loose = _one_update(so.scale_by_zoom_linesearch(tol=0.2), f, x, u, 1.0)
    assert float(loose.learning_rate) == 1.0
    assert int(loose.info.num_linesearch_steps) == 1
    assert _errors(f, x, u, 1.0)[1] == pytest.approx(0.195)  # > 0, < tol
    assert _errors(f, x, u, 1.0, tol=0.2) == (0.0, 0.0)
    step = float(strict.learning_rate)
    assert step != 1.0 and _errors(f, x, u, step) == (0.0, 0.0)
    assert int(strict.info.num_linesearch_steps) > 1
    np.testing.assert_allclose(strict.info.decrease_error, 0.0)
    np.testing.assert_allclose(strict.info.curvature_error, 0.0)


def _lopsided(x):
    """1000 + t² left of the minimum at t = x - 1 = 0, 1000 + t²/4 right of it."""
    t = x - 1.0
    return 1000.0 + jnp.sum(jnp.where(t < 0, t**2, 0.25 * t**2))


def test_zoom_approx_dec_rtol_accepts_a_slight_increase(x64):
    # From x = 0 the unit step lands at t = 2.0005: f rises by 5e-4, less
    # than c3 |f| = 1.001e-3, and the slope is 1/2 of the first one (closed
    # forms): the approximate conditions hold, the Armijo condition does not.
    x, u = np.array([0.0]), np.array([3.0005])
    f0, d0 = 1001.0, -2.0 * 3.0005
    f1, d1 = 1000.0 + 0.25 * 2.0005**2, 3.0005 * 0.5 * 2.0005
    np.testing.assert_allclose(float(_lopsided(jnp.asarray(x + u))), f1)
    assert 0 < f1 - f0 <= 1e-6 * abs(f0)
    assert d1 <= (1 - 2e-4) * abs(d0) and abs(d1) <= 0.9 * abs(d0)
    _, state = _one_update(so.scale_by_zoom_linesearch(), _lopsided, x, u, 1.0)
    assert float(state.learning_rate) == 1.0 and bool(state.wolfe)
    assert int(state.info.num_linesearch_steps) == 1
    np.testing.assert_allclose(float(state.value), f1)
    armijo_only = so.scale_by_zoom_linesearch(approx_dec_rtol=None)
    _, state = _one_update(armijo_only, _lopsided, x, u, 1.0)
    step = float(state.learning_rate)
    assert 0 < step < 1 and bool(state.wolfe)
    assert _errors(_lopsided, x, u, step) == (0.0, 0.0)


@pytest.mark.parametrize("approx_dec_rtol", [1e-6, None])
def test_zoom_finishes_below_rounding(approx_dec_rtol, x64):
    # f is 1 + 1e-18 = 1.0 at x0: no decrease can be seen in float64; the
    # slopes decide, and the step reaches the minimiser along u, at ε = 1/2
    # (x = 1, in closed form).
    def f(x):
        return 1.0 + jnp.sum((x - 1.0) ** 2)

    x = np.array([1.0 + 1e-9])
    u = -np.asarray(jax.grad(f)(jnp.asarray(x)))
    tx = so.scale_by_zoom_linesearch(approx_dec_rtol=approx_dec_rtol)
    updates, state = _one_update(tx, f, x, u)
    np.testing.assert_allclose(x + np.asarray(updates), [1.0], atol=1e-16)
    assert bool(state.wolfe)


def _flat(x):
    return jnp.exp(-1 / x**2)


def test_zoom_stepsize_precision_ends_a_flat_search(capfd):
    # float32: along u the value does not change at the first trial steps.
    x = jnp.asarray(-0.2)
    u = -jax.grad(_flat)(x)
    tx = so.scale_by_zoom_linesearch(verbose=True)
    _, state = _one_update(tx, _flat, x, u, 1.0)
    jax.effects_barrier()
    assert diagnostics.FLAG_INTERVAL_TOO_SMALL in capfd.readouterr().out
    assert float(state.learning_rate) > 0  # a step of sufficient decrease
    assert float(state.info.decrease_error) == 0.0
    assert float(state.info.curvature_error) > 0.0
    precise = so.scale_by_zoom_linesearch(stepsize_precision=0.0)
    _, longer = _one_update(precise, _flat, x, u, 1.0)
    steps = int(state.info.num_linesearch_steps)
    assert int(longer.info.num_linesearch_steps) > steps


def test_zoom_curv_rtol_inf_drops_the_curvature_condition(x64):
    def f(x):
        return jnp.sum(x**2)

    x = np.array([3.0, 4.0])
    u = -0.01 * 2 * x  # φ'(0) = -1; at ε = 1, f decreases and φ'(1) = -0.98
    assert _errors(f, x, u, 1.0) == (0.0, pytest.approx(0.08))  # 0.98 - 0.9
    _, state = _one_update(so.scale_by_zoom_linesearch(curv_rtol=math.inf), f, x, u)
    assert float(state.learning_rate) == 1.0
    assert int(state.info.num_linesearch_steps) == 1
    _, wolfe = _one_update(so.scale_by_zoom_linesearch(), f, x, u)
    assert float(wolfe.learning_rate) > 1.0


# --------------------------------------------------------------------------
# verbose: optax's sentences


def _square(x):
    return jnp.sum(x**2)


@pytest.mark.parametrize(
    ("kwargs", "x", "u", "printed", "absent"),
    [
        (
            {"max_linesearch_steps": 18, "curv_rtol": 0.5},
            [60.0, 0.0],
            [1.0, 0.0],  # an ascent direction
            ["FLAG_NOT_A_DESCENT_DIRECTION", "FLAG_NO_STEPSIZE_FOUND"],
            [],
        ),
        (
            {"max_linesearch_steps": 10, "curv_rtol": 0.5, "max_learning_rate": 10.0},
            [-60.0, 0.0],
            [1.0, 0.0],  # Wolfe steps are in [30, 90]
            ["FLAG_INTERVAL_NOT_FOUND", "FLAG_CURVATURE_COND_NOT_SATISFIED"],
            ["FLAG_NO_STEPSIZE_FOUND"],
        ),
        (
            {"max_linesearch_steps": 5, "curv_rtol": 0.5},
            [-60.0, 0.0],
            [1.0, 0.0],  # 1, 2, 4, 8, 16: never 30
            ["FLAG_CURVATURE_COND_NOT_SATISFIED"],
            ["FLAG_NOT_A_DESCENT_DIRECTION", "FLAG_NO_STEPSIZE_FOUND"],
        ),
    ],
    ids=["ascent", "max_learning_rate", "max_steps"],
)
def test_zoom_verbose_explains_a_failure(kwargs, x, u, printed, absent, capfd):
    tx = so.scale_by_zoom_linesearch(verbose=True, **kwargs)
    _, state = _one_update(tx, _square, x, u, 1.0)
    jax.effects_barrier()
    out = capfd.readouterr().out
    assert all(getattr(diagnostics, flag) in out for flag in printed)
    assert not any(getattr(diagnostics, flag) in out for flag in absent)
    assert not bool(state.wolfe)


def test_verbose_is_silent_on_success(capfd):
    x, u = np.array([-60.0, 0.0]), np.array([60.0, 0.0])
    for tx in (
        so.scale_by_zoom_linesearch(verbose=True),
        so.scale_by_backtracking_linesearch(verbose=True),
    ):
        _one_update(tx, _square, x, u)
    jax.effects_barrier()
    assert capfd.readouterr().out == ""


def test_backtracking_verbose_reports_a_failure(capfd):
    tx = so.scale_by_backtracking_linesearch(5, verbose=True)
    updates, state = _one_update(tx, _square, [1.0, 2.0], [1.0, 2.0])  # ascent
    jax.effects_barrier()
    assert "failed to find a stepsize" in capfd.readouterr().out
    np.testing.assert_array_equal(updates, [0.0, 0.0])
    assert int(state.info.num_linesearch_steps) == 5
    assert float(state.info.decrease_error) > 0
