"""Hessian-free Newton (Newton-CG): the truncated-CG direction in closed form.

References are independent of the code under test: on a quadratic
$f = \\tfrac12 x^\\top A x - b^\\top x$ the converged direction is the Newton
direction $A^{-1} g$ (`numpy.linalg.solve`), one CG iteration gives the
Cauchy direction $(g^\\top g / g^\\top A g)\\, g$, and on the saddle function
the curvature along $g$ is computed by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import saddle


def _direction(tx, f, x):
    x = jnp.asarray(x)
    value, g = jax.value_and_grad(f)(x)
    return tx.update(g, tx.init(x), x, value=value, grad=g, value_fn=f)


def test_converged_direction_is_the_newton_direction(x64):
    a, b = problems.random_quadratic(6, seed=3, condition=50.0)
    x = np.linspace(-1.0, 1.0, 6)
    d, state = _direction(
        so.scale_by_newton_cg(cg_tol=1e-10), problems.quadratic(a, b), x
    )
    g = a @ x - b
    np.testing.assert_allclose(d, np.linalg.solve(a, g), rtol=1e-8)
    assert 1 <= int(state.num_cg_steps) <= 6  # CG's bound: n iterations
    assert int(state.num_hvp_evals) == int(state.num_cg_steps)
    assert not bool(state.negative_curvature)
    assert int(state.num_fun_evals) == 1 and int(state.num_grad_evals) == 1


def test_one_cg_iteration_gives_the_cauchy_direction(x64):
    a, b = problems.random_quadratic(5, seed=4, condition=20.0)
    x = np.full(5, 0.5)
    d, state = _direction(
        so.scale_by_newton_cg(cg_tol=1e-10, max_cg_steps=1),
        problems.quadratic(a, b),
        x,
    )
    g = a @ x - b
    np.testing.assert_allclose(d, (g @ g) / (g @ a @ g) * g, rtol=1e-12)
    assert int(state.num_cg_steps) == 1


def test_negative_curvature_at_once_returns_the_scaled_gradient(x64):
    x = np.array([0.1, 0.5])  # near the saddle, where gᵀHg < 0
    g = np.array([2 * x[0] + x[0] ** 3, -2 * x[1] + x[1] ** 3])
    h = np.diag([2 + 3 * x[0] ** 2, -2 + 3 * x[1] ** 2])
    assert g @ h @ g < 0
    d, state = _direction(so.scale_by_newton_cg(), saddle, x)
    np.testing.assert_allclose(d, (g @ g) / abs(g @ h @ g) * g, rtol=1e-12)
    assert bool(state.negative_curvature)


def test_newton_cg_solves_a_quadratic_in_one_step(x64):
    a, b = problems.random_quadratic(6, seed=5, condition=100.0)
    params, _, _ = run(
        so.newton_cg(cg_tol=1e-12), problems.quadratic(a, b), jnp.zeros(6), 1
    )
    np.testing.assert_allclose(params, np.linalg.solve(a, b), rtol=1e-8)
