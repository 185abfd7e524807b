"""L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) against SciPy and closed forms.

The independent reference is `scipy.optimize.minimize(method="L-BFGS-B")`
(the Fortran/C code of the paper's authors, in float64) on the same
problems; where the solution has a closed form (a diagonal quadratic: the
unconstrained minimiser clipped into the box) that is the reference. The
solver is driven by a user's loop calling `tx.update` until the projected
gradient is small, and every iterate is checked to lie in the box.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from gradtransforms import second_order as so
from gradtransforms import tree as tu
from gradtransforms.second_order.box import projected_gradient
from gradtransforms.second_order.lbfgs_b import LbfgsBState, lbfgs_b
from gradtransforms.second_order.minimize import minimize
from tests.second_order.loop import run


def _feasible(params, box):
    """Every element of every leaf within its bounds, exactly."""
    inside = jax.tree.map(
        lambda p, lo, up: np.all((p >= lo) & (p <= up)), params, box.lower, box.upper
    )
    return all(jax.tree.leaves(inside))


# The bounds live in the state (`init` builds the `Box`), not in `update`: one
# instance's update serves every problem below, and one compilation per
# objective and shape serves several tests (data reach f as keyword arguments).
_TX = lbfgs_b()


@functools.partial(jax.jit, static_argnums=0)
def _step(f, params, state, data):
    """One update, and ‖projected gradient‖₂ at the new point from the state."""
    value, grad = jax.value_and_grad(f)(params, **data)
    updates, state = _TX.update(
        grad, state, params, value=value, grad=grad, value_fn=f, **data
    )
    params = optax.apply_updates(params, updates)
    residual = tu.global_norm(projected_gradient(params, state.grad, state.box))
    return params, state, updates, residual


def _solve(f, params, lower, upper, tol, data=None, max_steps=200):
    """The user's loop: update until ‖projected gradient‖₂ <= tol.

    Returns the last params and state, the evaluations of f (the first one
    included, as SciPy counts) and the iterates.
    """
    data = data or {}
    state = lbfgs_b(lower, upper).init(params)
    assert isinstance(state, LbfgsBState)
    assert _feasible(params, state.box)
    num_evals, iterates = 1, [params]
    for _ in range(max_steps):
        params, state, updates, residual = _step(f, params, state, data)
        assert tu.all_finite(updates)
        assert _feasible(params, state.box)
        num_evals += int(state.num_fun_evals)
        iterates.append(params)
        if residual <= tol:
            break
    return params, state, num_evals, iterates


def _scipy(f, x0, lower, upper):
    """SciPy's L-BFGS-B on the same problem, run to its tightest tolerances."""

    value_and_grad = jax.jit(jax.value_and_grad(f))

    def fun(x):
        value, grad = value_and_grad(jnp.asarray(x))
        return float(value), np.asarray(grad, np.float64)

    bounds = scipy.optimize.Bounds(np.asarray(lower), np.asarray(upper))
    options = {"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000}
    return scipy.optimize.minimize(
        fun, np.asarray(x0), jac=True, method="L-BFGS-B", bounds=bounds,
        options=options,
    )  # fmt: skip


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _rosenbrock_box():
    lower, upper = np.full(10, -2.0), np.full(10, 2.0)
    upper[::2] = 0.5  # x[0] = 0.5 at the solution
    return lower, upper


def _quadratic(x, a, b):
    return 0.5 * x @ (a @ x) - b @ x


# A diagonal quadratic: the solution is the unconstrained minimiser, clipped.
_A = np.array([1.0, 10.0, 0.5, 4.0, 2.0])
_C = np.array([3.0, -2.0, 0.25, 0.9, -0.6])  # the unconstrained minimiser
_LOWER, _UPPER = -1.0, 0.5
_CLIPPED = np.clip(_C, _LOWER, _UPPER)


def _diagonal(dtype=np.float64):
    return {"a": jnp.asarray(np.diag(_A), dtype), "b": jnp.asarray(_A * _C, dtype)}


# --------------------------------------------------------------------------
# Against SciPy


def test_bounded_rosenbrock_matches_scipy(x64):
    lower, upper = _rosenbrock_box()
    x0 = jnp.asarray(np.full(10, -1.2))
    params, _, num_evals, _ = _solve(_rosenbrock, x0, lower, upper, 1e-6)
    ref = _scipy(_rosenbrock, x0, lower, upper)
    assert ref.success
    np.testing.assert_allclose(params, ref.x, atol=1e-6)
    np.testing.assert_allclose(_rosenbrock(params), ref.fun, rtol=1e-10)
    assert ref.x[0] == 0.5 and params[0] == 0.5  # an active bound
    assert num_evals <= 1.5 * ref.nfev + 5


def test_fixed_variable_stays_fixed(x64):
    lower, upper = _rosenbrock_box()
    lower[3] = upper[3] = 0.7  # lower == upper: x[3] is fixed
    x0 = jnp.asarray(np.clip(np.full(10, -1.2), lower, upper))
    params, _, _, iterates = _solve(_rosenbrock, x0, lower, upper, 1e-6)
    assert all(float(x[3]) == 0.7 for x in iterates)
    ref = _scipy(_rosenbrock, x0, lower, upper)
    np.testing.assert_allclose(params, ref.x, atol=1e-6)


def test_infinite_bounds_match_scipy(x64):
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5))
    data = {
        "a": jnp.asarray(m @ m.T + np.eye(5)),
        "b": jnp.asarray([-6.0, 4, 5, -1, 3]),
    }
    lower = np.array([-np.inf, 0.0, -np.inf, 1.5, -np.inf])
    upper = np.array([np.inf, np.inf, 0.3, np.inf, np.inf])
    x0 = jnp.asarray([0.0, 1.0, 0.0, 2.0, 0.0])
    params, _, _, _ = _solve(_quadratic, x0, lower, upper, 1e-10, data)
    ref = _scipy(lambda x: _quadratic(x, **data), x0, lower, upper)
    np.testing.assert_allclose(params, ref.x, atol=1e-7)
    assert np.sum(np.isclose(ref.x, lower) | np.isclose(ref.x, upper)) >= 2


def test_minimize_solves_a_pytree_problem_with_per_leaf_bounds(x64):
    target = jnp.array([[3.0, -3.0, 0.5], [-0.2, -2.0, -5.0]])
    weights = jnp.arange(1.0, 7.0).reshape(2, 3)

    def f(p):
        w, b = p["w"], p["b"]
        coupling = b * jnp.sum(w) + 0.1 * b**4
        return jnp.sum(weights * (w - target) ** 2) + (b - 3.0) ** 2 + coupling

    lower = {"w": jnp.array([-1.0, 0.0, -jnp.inf]), "b": 0.5}  # (3,) -> (2, 3)
    upper = {"w": 1.0, "b": jnp.asarray(jnp.inf)}  # a number; a 0-d array
    params = {"w": jnp.full((2, 3), 2.0), "b": jnp.zeros(())}  # infeasible
    tx = lbfgs_b(lower, upper)
    result = minimize(f, params, tx, max_steps=100, tol=1e-8)
    assert bool(result.converged)
    assert _feasible(result.params, result.state.box)

    def flat(x):  # the raveled problem, in SciPy's order: b, then w
        return f({"b": x[0], "w": x[1:].reshape(2, 3)})

    lo = np.concatenate([[0.5], np.tile([-1.0, 0.0, -np.inf], 2)])
    up = np.concatenate([[np.inf], np.full(6, 1.0)])
    ref = _scipy(
        flat, np.clip(np.concatenate([[0.0], np.full(6, 2.0)]), lo, up), lo, up
    )
    np.testing.assert_allclose(result.params["b"], ref.x[0], atol=1e-7)
    np.testing.assert_allclose(result.params["w"], ref.x[1:].reshape(2, 3), atol=1e-7)
    assert np.sum(np.isclose(ref.x, lo) | np.isclose(ref.x, up)) >= 2
    assert int(result.num_fun_evals) <= 1.5 * ref.nfev + 5


# --------------------------------------------------------------------------
# Closed forms, our own L-BFGS, jit and vmap


def test_diagonal_quadratic_reaches_the_clipped_minimiser(x64):
    data = _diagonal()
    params, state, _, _ = _solve(_quadratic, jnp.zeros(5), _LOWER, _UPPER, 1e-12, data)
    np.testing.assert_allclose(params, _CLIPPED, atol=1e-12)
    # At the exact solution the update is exactly zero, f and ∇f recorded.
    params = jnp.asarray(_CLIPPED)
    value, grad = jax.value_and_grad(_quadratic)(params, **data)
    params_next, state, updates, _ = _step(_quadratic, params, state, data)
    np.testing.assert_array_equal(updates, np.zeros(5))
    np.testing.assert_array_equal(params_next, _CLIPPED)
    np.testing.assert_array_equal(state.value, value)
    np.testing.assert_array_equal(state.grad, grad)


def test_the_state_records_f_and_grad_at_the_new_point(x64):
    data = _diagonal()
    params = jnp.zeros(5)
    state = lbfgs_b(_LOWER, _UPPER).init(params)
    params, state, _, _ = _step(_quadratic, params, state, data)
    value, grad = jax.value_and_grad(_quadratic)(params, **data)
    np.testing.assert_allclose(state.value, value, rtol=1e-14)
    np.testing.assert_allclose(state.grad, grad, rtol=1e-14, atol=1e-15)
    assert int(state.num_fun_evals) == int(state.num_grad_evals) >= 1
    assert state.value < _quadratic(jnp.zeros(5), **data)


def test_without_active_bounds_it_reaches_the_lbfgs_minimum(x64):
    x0 = jnp.asarray(np.tile([-1.2, 1.0], 5))
    params, _, _, _ = _solve(_rosenbrock, x0, -5.0, 5.0, 1e-8)
    reference, _, _ = run(so.lbfgs(), _rosenbrock, x0, 80)
    np.testing.assert_allclose(reference, np.ones(10), atol=1e-8)
    np.testing.assert_allclose(params, reference, atol=1e-8)


def test_float32():
    x0 = jnp.zeros(5, jnp.float32)
    data = _diagonal(np.float32)
    params, state, _, _ = _solve(_quadratic, x0, _LOWER, _UPPER, 1e-5, data)
    assert params.dtype == jnp.float32 and state.s_memory.dtype == jnp.float32
    np.testing.assert_allclose(params, _CLIPPED, atol=1e-5)


def _barrier(x):
    """NaN for x[0] > 3.5 (the bounds allow up to 10); with an aux output."""
    return jnp.sum((x - 5.0) ** 2) - jnp.log(3.5 - x[0]), {"x": x}


def test_jit_and_vmap_over_starting_points_past_a_nan_barrier(x64):
    tx = lbfgs_b(0.0, 10.0, has_aux=True)

    def step(carry, _):
        params, state = carry
        (value, _), grad = jax.value_and_grad(_barrier, has_aux=True)(params)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=_barrier
        )
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state.value)

    @jax.jit
    @jax.vmap
    def solve(x0):
        return jax.lax.scan(step, (x0, tx.init(x0)), length=25)

    starts = jnp.array([[0.0, 0.0, 0.0], [3.4, 9.0, 10.0], [1.0, 5.0, 0.0]])
    (params, state), (iterates, values) = solve(starts)
    assert state.s_memory.shape == (3, 10, 3)
    assert bool(jnp.all((iterates >= 0.0) & (iterates <= 10.0)))
    assert bool(jnp.all(jnp.isfinite(values)) & jnp.all(jnp.diff(values) <= 0))
    # 2 (x - 5) + 1 / (3.5 - x) = 0: 2x² - 17x + 34 = 0, the root below 3.5
    x_star = (17 - np.sqrt(17.0**2 - 8 * 34)) / 4
    np.testing.assert_allclose(params, np.tile([x_star, 5.0, 5.0], (3, 1)), atol=1e-8)


# --------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lower": 1.0, "upper": 0.0}, ValueError, "lower must be <= upper"),
        ({"lower": float("nan")}, ValueError, "lower must not contain NaN"),
        ({"upper": float("nan")}, ValueError, "upper must not contain NaN"),
        ({"lower": "a"}, TypeError, "lower must be a real number"),
        ({"upper": 1j}, TypeError, "upper must be a real number"),
        ({"memory_size": 0}, ValueError, "memory_size"),
        ({"memory_size": 2.0}, TypeError, "memory_size"),
        ({"max_linesearch_steps": 0}, ValueError, "max_linesearch_steps"),
        ({"has_aux": 1}, TypeError, "has_aux"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        lbfgs_b(**kwargs)


@pytest.mark.parametrize(
    ("lower", "upper", "error", "match"),
    [
        ({"w": 0.0}, None, ValueError, "lower must be None, a number, or a tree"),
        (None, {"w": jnp.zeros(3)}, ValueError, "upper must be None"),
        ({"w": jnp.zeros(2), "b": 0.0}, None, ValueError, "lower: a leaf of shape"),
        (
            {"w": jnp.ones(3), "b": 0.0},
            {"w": 0.0, "b": 1.0},
            ValueError,
            "lower must be <=",
        ),
        ({"w": jnp.array([0.0, jnp.nan, 0.0]), "b": 0.0}, None, ValueError, "NaN"),
        ({"w": jnp.zeros(3, bool), "b": 0.0}, None, TypeError, "lower must be real"),
    ],
)
def test_bad_bound_trees_raise_at_init(lower, upper, error, match):
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    tx = lbfgs_b(lower, upper)
    with pytest.raises(error, match=match):
        tx.init(params)
    with pytest.raises(error, match=match):  # also when init is traced
        jax.jit(tx.init)(params)


def test_complex_params_are_rejected():
    with pytest.raises(TypeError, match="lbfgs_b does not support complex"):
        lbfgs_b().init({"z": jnp.ones(2, jnp.complex64)})


def test_update_needs_value_fn_and_matching_params():
    tx = lbfgs_b(0.0, 1.0)
    params = jnp.zeros(3)
    state = tx.init(params)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(params, state, params, value=jnp.zeros(()), grad=params)
    with pytest.raises(ValueError):
        tx.update(
            jnp.zeros(4), state, jnp.zeros(4), value=jnp.zeros(()),
            grad=jnp.zeros(4), value_fn=jnp.sum,
        )  # fmt: skip
