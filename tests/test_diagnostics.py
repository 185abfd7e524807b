"""Curvature diagnostics (§8.2.1) against a dense Hessian; the monitor transform."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

diag = gt.diagnostics


def _f(params, scale):
    w, b = params["w"], params["b"]
    return jnp.sum(jnp.exp(0.3 * w)) + scale * jnp.sum(w**2) * b**2 + jnp.sin(b)


def test_curvature_matches_a_dense_hessian(x64):
    params = {"w": jnp.array([0.3, -1.2, 0.8]), "b": jnp.array(0.7)}
    c = diag.curvature(_f, params, 2.0)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    f_flat = lambda v: _f(unravel(v), 2.0)
    g = np.asarray(jax.grad(f_flat)(flat))
    h = np.asarray(jax.hessian(f_flat)(flat))  # the dense reference
    np.testing.assert_allclose(c.grad_sq_norm, g @ g, rtol=1e-12)
    np.testing.assert_allclose(c.grad_hessian_grad, g @ h @ g, rtol=1e-12)
    np.testing.assert_allclose(c.optimal_step, (g @ g) / (g @ h @ g), rtol=1e-12)
    eps = 0.01
    np.testing.assert_allclose(
        diag.predicted_change(c.grad_sq_norm, c.grad_hessian_grad, eps),
        0.5 * eps**2 * g @ h @ g - eps * g @ g,
        rtol=1e-12,
    )


def test_optimal_step_is_the_exact_line_minimiser_on_a_quadratic(x64):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    a = m @ m.T + np.eye(4)
    b = rng.normal(size=4)
    f = lambda x: 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x
    x0 = jnp.asarray(rng.normal(size=4))
    c = diag.curvature(f, x0)
    g = a @ np.asarray(x0) - b
    # Along x0 - t g the quadratic is minimised at t* = gᵀg / gᵀAg (closed form).
    np.testing.assert_allclose(c.optimal_step, (g @ g) / (g @ a @ g), rtol=1e-12)
    # And the predicted change there is the true change: f is quadratic.
    step = float(c.optimal_step)
    actual = float(f(x0 - step * jnp.asarray(g)) - f(x0))
    np.testing.assert_allclose(
        diag.predicted_change(c.grad_sq_norm, c.grad_hessian_grad, step),
        actual,
        rtol=1e-10,
    )


def test_negative_curvature_gives_an_infinite_optimal_step():
    c = diag.curvature(lambda x: -jnp.sum(x**2), jnp.ones(2))
    assert np.isinf(float(c.optimal_step))


def test_curvature_works_under_jit():
    c = jax.jit(lambda p: diag.curvature(lambda x: 2.0 * jnp.sum(x**2), p))(jnp.ones(3))
    np.testing.assert_allclose(c.optimal_step, 0.25, rtol=1e-6)


def test_monitor_records_norms_without_changing_updates():
    params = {"w": jnp.array([3.0, 4.0])}  # ‖θ‖ = 5
    grads = {"w": jnp.array([0.6, 0.8])}  # ‖g‖ = 1
    tx = gt.chain(gt.clip_by_global_norm(10.0), diag.monitor(gt.sgd(0.1)))
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * grads["w"], rtol=1e-6)
    logged = diag.lookup(state)
    np.testing.assert_allclose(logged["grad_norm"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(logged["update_norm"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(logged["param_norm"], 5.0, rtol=1e-6)
    np.testing.assert_allclose(logged["update_ratio"], 0.02, rtol=1e-6)
    with pytest.raises(ValueError, match="monitor"):
        diag.lookup(gt.sgd(0.1).init(params))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_monitor_norms_of_finite_trees_stay_finite(jit):
    """Squares of float32 elements above ~1.8e19 overflow; the norms do not."""
    params = {"w": jnp.array([3e20, 4e20]), "h": jnp.ones(2, jnp.bfloat16)}
    grads = {"w": jnp.array([6e19, 8e19]), "h": jnp.zeros(2, jnp.bfloat16)}
    tx = diag.monitor(gt.sgd(1.0))
    update = jax.jit(tx.update) if jit else tx.update
    _, state = update(grads, tx.init(params), params)
    logged = diag.lookup(state)
    np.testing.assert_allclose(logged["param_norm"], 5e20, rtol=1e-6)
    np.testing.assert_allclose(logged["grad_norm"], 1e20, rtol=1e-6)
    np.testing.assert_allclose(logged["update_norm"], 1e20, rtol=1e-6)
    np.testing.assert_allclose(logged["update_ratio"], 0.2, rtol=1e-6)
    # A non-finite gradient is reported as it came, never repaired.
    _, state = update(
        {**grads, "h": jnp.array([np.inf, 0], jnp.bfloat16)}, state, params
    )
    assert np.isinf(float(diag.lookup(state)["grad_norm"]))
