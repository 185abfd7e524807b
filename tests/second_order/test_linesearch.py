"""The line searches (§8.6.2): backtracking, zoom (strong Wolfe), exact quadratic.

References are independent of the code under test: closed forms (the exact
step $\\varepsilon^* = -g^\\top u / u^\\top A u$ on a quadratic) and SciPy's
Nelder-Mead minimum of a barrier function. The solvers' default line
searches are their default arguments: each is the line search its repr
builds, `has_aux` reaches it, and `linesearch=None` leaves the first update
of each solver in closed form.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from gradtransforms import problems
from gradtransforms import second_order as so
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.combine import chain
from gradtransforms.scaling import scale
from gradtransforms.second_order.linesearch.defaults import resolve_linesearch
from gradtransforms.second_order.linesearch.steps import (
    next_in_bracket,
    scaled_or_zero,
)
from tests.second_order.loop import run

# --------------------------------------------------------------------------
# Non-finite trial values: the step shrinks, parameters stay finite


def _barrier(x, bad=jnp.nan):
    """Σ (x − c)² − Σ log(1 − x²) on |x_i| < 1; `bad` (nan or inf) outside."""
    c = jnp.asarray([0.5, -0.3], x.dtype)
    inside = jnp.all(jnp.abs(x) < 1)
    safe = jnp.where(inside, x, jnp.zeros_like(x))
    value = jnp.sum((safe - c) ** 2) - jnp.sum(jnp.log1p(-(safe**2)))
    return jnp.where(inside, value, jnp.asarray(bad, x.dtype))


def _barrier_minimum():
    def f(x):
        return np.sum((x - np.array([0.5, -0.3])) ** 2) - np.sum(np.log1p(-(x**2)))

    result = scipy.optimize.minimize(
        f, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14}
    )
    return result.x


@pytest.mark.parametrize(
    ("linesearch", "bad"),
    [
        (so.scale_by_backtracking_linesearch(decrease_factor=0.5), jnp.inf),
        (so.scale_by_zoom_linesearch(initial_guess_strategy="one"), jnp.nan),
    ],
    ids=["backtracking-inf", "zoom-nan"],
)
def test_non_finite_trial_values_shrink_the_step(linesearch, bad, x64):
    # A long gradient step (×20) leaves the domain, where f is nan or inf.
    tx = chain(scale(-20.0), linesearch)

    def f(x):
        return _barrier(x, bad)

    params, _, trajectory = run(tx, f, jnp.zeros(2), 60)
    trajectory = np.asarray(trajectory)
    assert np.all(np.isfinite(trajectory))
    assert np.all(np.abs(trajectory) < 1)
    values = np.array([float(f(jnp.asarray(p))) for p in trajectory])
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) <= 1e-13)
    np.testing.assert_allclose(params, _barrier_minimum(), atol=1e-6)


def test_zoom_returns_a_zero_step_on_an_ascent_direction(x64):
    def f(x):
        return jnp.sum(x**2)

    tx = so.scale_by_zoom_linesearch()
    x = jnp.array([1.0, 2.0])
    g = jax.grad(f)(x)

    @jax.jit
    def update(g, x):
        return tx.update(g, tx.init(x), x, value=f(x), grad=g, value_fn=f)

    updates, state = update(g, x)
    np.testing.assert_array_equal(updates, jnp.zeros(2))
    assert int(state.num_fun_evals) == 0 and float(state.learning_rate) == 0.0


def test_zoom_cuts_a_first_trial_far_too_long(x64):
    """f = 0.5e10 x^2 from x = 1, first trial 1 (issue 20): the minimiser along
    the line is at step 1e-10. Halving the bracket from 1 reaches only
    2**-30 = 9.3e-10 in 30 trials (no decrease: step 0); clamping the exact
    cubic to the bracket's 10% point cuts the step 10x a trial."""

    def f(x):
        return 0.5e10 * jnp.sum(x**2)

    tx = so.scale_by_zoom_linesearch(initial_guess_strategy="one")
    x = jnp.array([1.0])
    g = jax.grad(f)(x)
    updates, state = jax.jit(
        lambda g, x: tx.update(-g, tx.init(x), x, value=f(x), grad=g, value_fn=f)
    )(g, x)
    assert bool(state.wolfe)
    np.testing.assert_allclose(float(state.learning_rate), 1e-10, rtol=1e-6)
    assert int(state.num_fun_evals) <= 12  # 1, 0.1, ..., 1e-10 and the last
    np.testing.assert_allclose(x + updates, [0.0], atol=1e-12)


@pytest.mark.parametrize("strategy", ["one", "keep"])
def test_a_failed_zoom_search_resumes_where_it_stopped(strategy, x64):
    """The same case with 4 trials a search (issue 20): the first update
    fails (1, 0.1, 0.01, 0.001 are all too long: zero step); the second
    starts from the trial the first would have tried next, 1e-4, instead of
    the strategy's guess, and three updates reach the exact step 1e-10."""

    def f(x):
        return 0.5e10 * jnp.sum(x**2)

    tx = so.scale_by_zoom_linesearch(
        max_linesearch_steps=4, initial_guess_strategy=strategy
    )
    x = jnp.array([1.0])
    g = jax.grad(f)(x)
    step = jax.jit(
        lambda state: tx.update(-g, state, x, value=f(x), grad=g, value_fn=f)
    )
    updates, state = step(tx.init(x))
    np.testing.assert_array_equal(updates, [0.0])
    np.testing.assert_allclose(float(state.retry_step), 1e-4, rtol=1e-3)
    for _ in range(3):
        if float(state.learning_rate) > 0:
            break
        updates, state = step(state)
    assert bool(state.wolfe)
    np.testing.assert_allclose(float(state.learning_rate), 1e-10, rtol=1e-6)
    assert float(state.retry_step) == 0.0  # a success clears it


def test_next_in_bracket_clamps_and_bisects_only_without_a_cubic():
    # phi(a) = (a - 0.01)^2 on [0, 1]: the exact cubic puts the minimiser at
    # 0.01, inside the outer 10%; the trial is clamped to 0.1 (not 0.5).
    phi = lambda a: (a - 0.01) ** 2
    dphi = lambda a: 2 * (a - 0.01)
    lo, hi = 0.0, 1.0
    args = (lo, phi(lo), dphi(lo), hi, phi(hi), dphi(hi))
    assert float(next_in_bracket(*map(jnp.asarray, args))) == pytest.approx(0.1)
    # Bracket given high end first, minimiser at 0.995: clamped to 0.9.
    psi = lambda a: (a - 0.995) ** 2
    dpsi = lambda a: 2 * (a - 0.995)
    args = (hi, psi(hi), dpsi(hi), lo, psi(lo), dpsi(lo))
    assert float(next_in_bracket(*map(jnp.asarray, args))) == pytest.approx(0.9)
    # A minimiser well inside is kept; a non-finite end value bisects.
    chi = lambda a: (a - 0.3) ** 2
    dchi = lambda a: 2 * (a - 0.3)
    args = (lo, chi(lo), dchi(lo), hi, chi(hi), dchi(hi))
    assert float(next_in_bracket(*map(jnp.asarray, args))) == pytest.approx(0.3)
    args = (lo, 0.0, -1.0, hi, math.inf, 1.0)
    assert float(next_in_bracket(*map(jnp.asarray, args))) == 0.5


# --------------------------------------------------------------------------
# value_fn with auxiliary outputs and extra keyword arguments


def _rosenbrock_aux(p, offset):
    value = problems.rosenbrock(p["x"]) + offset
    return value, {"residual": p["x"] - 1.0, "offset": offset}


@pytest.mark.parametrize(
    "factory",
    [
        lambda aux: chain(
            scale(-1e-3), so.scale_by_backtracking_linesearch(has_aux=aux)
        ),
        lambda aux: chain(scale(-1e-3), so.scale_by_zoom_linesearch(has_aux=aux)),
    ],
    ids=["backtracking", "zoom"],
)
def test_value_fn_with_aux_gives_the_same_steps(factory, x64):
    params = {"x": jnp.array([-1.2, 1.0])}
    offset = jnp.asarray(0.25)  # an extra keyword argument, passed on to value_fn

    def plain(p, offset):
        return _rosenbrock_aux(p, offset)[0]

    outs = [
        run(factory(has_aux), plain, params, 3, value_fn=fun, offset=offset)[0]
        for has_aux, fun in [(False, plain), (True, _rosenbrock_aux)]
    ]
    np.testing.assert_allclose(outs[0]["x"], outs[1]["x"], rtol=1e-12)
    assert float(plain(outs[1], offset)) < float(plain(params, offset))


def test_unknown_keyword_argument_names_itself():
    tx = so.scale_by_zoom_linesearch()
    x = jnp.ones(2)
    with pytest.raises(TypeError, match="batch"):
        tx.update(
            -x, tx.init(x), x, value=2.0, grad=x, value_fn=lambda p: p @ p, batch=1
        )


# --------------------------------------------------------------------------
# The exact line search on a quadratic, and the step a line search returns


def _quadratic_step(a, b, x, u):
    """One `scale_by_quadratic_linesearch` update along `u` at `x`."""
    f = problems.quadratic(a, b)
    x, u = jnp.asarray(x), jnp.asarray(u)
    tx = so.scale_by_quadratic_linesearch()
    g = jax.grad(f)(x)
    return tx.update(u, tx.init(x), x, value=f(x), grad=g, value_fn=f)


def test_quadratic_linesearch_takes_the_closed_form_step(x64):
    a, b = problems.random_quadratic(4, seed=2, condition=10.0)
    x = np.array([0.5, -1.0, 2.0, 0.3])
    u = np.array([-1.0, 0.5, 0.25, 2.0])
    updates, state = _quadratic_step(a, b, x, u)
    g = a @ x - b  # the gradient, in closed form
    eps = -(g @ u) / (u @ a @ u)  # the minimiser of f(x + εu)
    np.testing.assert_allclose(updates, eps * u, rtol=1e-12)
    np.testing.assert_allclose(float(state.learning_rate), eps, rtol=1e-12)
    # At x + ε*u the slope along u vanishes.
    np.testing.assert_allclose(u @ (a @ (x + eps * u) - b), 0.0, atol=1e-12)
    assert int(state.num_hvp_evals) == 1


def test_quadratic_linesearch_gives_a_zero_step_along_negative_curvature(x64):
    a, b = np.diag([1.0, -1.0]), np.array([0.5, 0.0])  # indefinite
    updates, state = _quadratic_step(a, b, [1.0, 0.5], [0.0, 1.0])
    np.testing.assert_array_equal(updates, [0.0, 0.0])
    assert float(state.learning_rate) == 0.0


def test_scaled_or_zero_gives_exact_zeros_whatever_the_direction():
    u = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.array([jnp.inf], jnp.bfloat16)}
    zero = scaled_or_zero(jnp.float32(0.0), u)  # not 0 · nan = nan
    np.testing.assert_array_equal(zero["a"], [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(zero["b"], np.float32), [0.0])
    assert zero["b"].dtype == jnp.bfloat16
    scaled = scaled_or_zero(jnp.float32(2.0), {"a": jnp.array([1.0, -3.0])})
    np.testing.assert_array_equal(scaled["a"], [2.0, -6.0])


# --------------------------------------------------------------------------
# Default line searches: the default argument value; None means none


SOLVERS = {
    "lbfgs": (so.lbfgs, "max_linesearch_steps=20, initial_guess_strategy='one'"),
    "bfgs": (so.bfgs, "initial_guess_strategy='one'"),
    "conjugate_gradient": (
        so.conjugate_gradient,
        "curv_rtol=0.1, initial_guess_strategy='quadratic'",
    ),
    "newton_cg": (
        so.newton_cg,
        "decrease_factor=0.5, increase_factor=inf, max_learning_rate=1.0, "
        "store_grad=True",
    ),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_the_default_line_search_is_the_default_argument(name, x64):
    make, arguments = SOLVERS[name]
    default = inspect.signature(make).parameters["linesearch"].default
    assert isinstance(default, GradientTransformationExtraArgs)
    search = "backtracking" if name == "newton_cg" else "zoom"
    assert repr(default) == f"scale_by_{search}_linesearch({arguments})"
    # It is the line search its repr builds: the same step.
    built = eval(repr(default), vars(so) | {"inf": math.inf})
    x, u = jnp.array([1.0, -2.0]), jnp.array([-0.5, 3.0])

    def f(p):
        return problems.rosenbrock(p)

    outs = [
        tx.update(u, tx.init(x), x, value=f(x), grad=jax.grad(f)(x), value_fn=f)
        for tx in (default, built)
    ]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])


@pytest.mark.parametrize("name", list(SOLVERS))
def test_has_aux_reaches_the_default_line_search(name, x64):
    make = SOLVERS[name][0]
    params = {"x": jnp.array([-1.2, 1.0])}

    def plain(p, offset):
        return _rosenbrock_aux(p, offset)[0]

    offset = jnp.asarray(0.25)
    outs = [
        run(make(has_aux=has_aux), plain, params, 4, value_fn=fun, offset=offset)[2]
        for has_aux, fun in [(False, plain), (True, _rosenbrock_aux)]
    ]
    np.testing.assert_allclose(outs[0]["x"], outs[1]["x"], rtol=1e-12)


def test_linesearch_none_means_no_line_search(x64):
    # The first update of each solver without a line search, in closed form.
    a, b = problems.random_quadratic(3, seed=1, condition=10.0)
    f = problems.quadratic(a, b)
    x = jnp.array([1.0, -1.0, 0.5])
    g = np.asarray(a @ np.asarray(x) - b)
    expected = {
        "lbfgs": -min(1.0, 1.0 / np.linalg.norm(g)) * g,  # the capped gradient
        "bfgs": -min(1.0, 1.0 / np.linalg.norm(g)) * g,
        "conjugate_gradient": -g,  # β = 0 at the first update
        "newton_cg": -np.linalg.solve(a, g),  # the Newton step
    }
    for name, (make, _) in SOLVERS.items():
        kwargs = {"cg_tol": 1e-12} if name == "newton_cg" else {}
        tx = make(linesearch=None, **kwargs)
        state = tx.init(x)
        updates, state = tx.update(
            jnp.asarray(g), state, x, value=f(x), grad=jnp.asarray(g), value_fn=f
        )
        np.testing.assert_allclose(updates, expected[name], rtol=1e-10)
        assert isinstance(state[-1], optax.EmptyState)


def test_an_explicit_line_search_is_used_as_given():
    searches = [so.scale_by_backtracking_linesearch(), so.scale_by_zoom_linesearch()]
    for tx in searches:
        assert resolve_linesearch(tx, has_aux=True) is tx
    with pytest.raises(TypeError, match="linesearch"):
        so.lbfgs(linesearch="zoom")
