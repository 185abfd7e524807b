"""Damped Newton (textbook Algorithm 8.8, eq. 8.28) in a user's own loop.

References are independent of the code under test: the closed-form minimiser
of a quadratic, of the saddle function and of the pseudo-Huber function, a
literal NumPy transcription of Algorithm 8.8, the damping worked by hand, and
SciPy's trust-exact on Powell's badly scaled function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import saddle


def test_newton_solves_a_quadratic_in_one_step(x64):
    a, b = problems.random_quadratic(5, seed=1, condition=100.0)
    x_star = np.linalg.solve(a, b)
    quadratic = problems.quadratic(a, b)
    params = {"u": jnp.zeros(2), "v": jnp.zeros(3)}  # a pytree, raveled inside

    def f(p):
        return quadratic(jnp.concatenate([p["u"], p["v"]]))

    params, (state, _), _ = run(so.newton(damping=0.0), f, params, 1)

    np.testing.assert_allclose(params["u"], x_star[:2], rtol=1e-10)
    np.testing.assert_allclose(params["v"], x_star[2:], rtol=1e-10)
    assert int(state.num_hessian_evals) == 1 and int(state.num_fun_evals) == 1
    # The state holds f and ∇f at the new point, for the next iteration.
    np.testing.assert_allclose(state.value, f(params), rtol=1e-12)


# --------------------------------------------------------------------------
# Saddle point: damped Newton escapes where Algorithm 8.8 converges to it


def _newton_numpy(x, steps):
    """Textbook Algorithm 8.8, literally: θ ← θ − H⁻¹g."""
    for _ in range(steps):
        g = np.array([2 * x[0] + x[0] ** 3, -2 * x[1] + x[1] ** 3])
        h = np.diag([2 + 3 * x[0] ** 2, -2 + 3 * x[1] ** 2])
        x = x - np.linalg.solve(h, g)
    return x


def test_damped_newton_moves_away_from_a_saddle(x64):
    start = np.array([0.5, 1e-2])
    # The undamped method of Algorithm 8.8 is attracted by the saddle.
    np.testing.assert_allclose(_newton_numpy(start, 10), [0.0, 0.0], atol=1e-8)

    params, (state, _), trajectory = run(
        so.newton(damping=0.0), saddle, jnp.asarray(start), 15
    )
    values = [float(saddle(p)) for p in trajectory]
    ys = np.abs(np.asarray(trajectory)[:, 1])
    assert ys[0] > start[1]  # the first step already moves away in y
    assert np.all(np.diff(values) <= 0) and values[0] < saddle(start)
    # It ends at a minimum (closed form), not at the saddle.
    np.testing.assert_allclose(
        np.abs(np.asarray(params)), [0.0, np.sqrt(2.0)], atol=1e-8
    )
    np.testing.assert_allclose(values[-1], -1.0, atol=1e-12)
    assert np.isfinite(float(state.damping))


def test_newton_rejects_non_finite_trial_points(x64):
    # Pseudo-Huber: the undamped Newton step from x overshoots to ≈ −x³ (here
    # outside |x| < 3, where f is nan). The minimiser is 0.3 (closed form).
    def f(x):
        r = x - 0.3
        value = jnp.sum(jnp.sqrt(1 + r**2))
        return jnp.where(jnp.all(jnp.abs(x) < 3), value, jnp.nan)

    params, _, trajectory = run(so.newton(damping=0.0), f, jnp.full(2, 2.0), 25)
    assert np.all(np.isfinite(np.asarray(trajectory)))
    values = np.array([float(f(p)) for p in trajectory])
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) <= 1e-13)
    np.testing.assert_allclose(params, [0.3, 0.3], atol=1e-8)


# --------------------------------------------------------------------------
# The damping (issue 20): continuous, on the Hessian's scale, no floor


def test_default_newton_solves_a_positive_definite_quadratic_in_one_step(x64):
    """f = (x0 − x1)² + 1e-3 (x0² + x1²): eigenvalues 2e-3 and 4.002; the
    minimiser is 0. An absolute default damping of 1e-3 needed 6 steps."""

    def f(x):
        return (x[0] - x[1]) ** 2 + 1e-3 * (x[0] ** 2 + x[1] ** 2)

    result = so.minimize(
        f, jnp.array([1.0, -0.5]), so.newton(), max_steps=50, tol=1e-10
    )
    assert int(result.num_steps) == 1 and bool(result.converged)
    np.testing.assert_allclose(result.params, [0.0, 0.0], atol=1e-12)


def test_a_rejected_step_is_shortened_by_damping_increase(x64):
    """Pseudo-Huber √(1 + x²) from x = 2, by hand: g = 2/√5, h = 5^(−3/2);
    Newton's step −g/h = −10 lands at −8, where f rises: rejected. The next
    α makes the step 4x shorter, α = g/2.5 − h, and x = 2 − 2.5 = −0.5
    decreases f with ρ = actual/predicted; Nielsen's update follows."""

    def f(x):
        return jnp.sum(jnp.sqrt(1 + x**2))

    params, (state, _), _ = run(so.newton(), f, jnp.array([2.0]), 1)
    np.testing.assert_allclose(params, [-0.5], rtol=1e-12)
    assert int(state.num_fun_evals) == 2
    g, h = 2 / np.sqrt(5), 5**-1.5
    alpha = g / 2.5 - h
    actual = np.sqrt(5) - np.sqrt(1.25)
    predicted = g * 2.5 - 0.5 * h * 2.5**2
    rho = actual / predicted
    np.testing.assert_allclose(float(state.ratio), rho, rtol=1e-10)
    expected = alpha * max(1 / 3, 1 - (2 * rho - 1) ** 3)
    np.testing.assert_allclose(float(state.damping), expected, rtol=1e-8)


def test_a_good_step_divides_the_damping_by_damping_decrease(x64):
    """On a quadratic the model is exact, ρ = 1: α goes from 1 to 1/3."""
    a, b = problems.random_quadratic(3, seed=2, condition=10.0)
    _, (state, _), _ = run(
        so.newton(damping=1.0), problems.quadratic(a, b), jnp.zeros(3), 1
    )
    np.testing.assert_allclose(float(state.ratio), 1.0, rtol=1e-10)
    np.testing.assert_allclose(float(state.damping), 1 / 3, rtol=1e-12)


def test_powell_badly_scaled_converges(x64):
    """MGH problem 3: Hessian eigenvalues about 1e-4 and 4e9 on the way. The
    old floor √ε·max|H_ii| cycled (9,990 evaluations, f = 1.1e-4); SciPy's
    trust-exact gives the reference minimiser."""

    def residuals(x, exp):
        return 1e4 * x[0] * x[1] - 1, exp(-x[0]) + exp(-x[1]) - 1.0001

    def f(x):
        r1, r2 = residuals(x, jnp.exp)
        return r1**2 + r2**2

    def f_numpy(x):
        r1, r2 = residuals(x, np.exp)
        return r1**2 + r2**2

    reference = scipy.optimize.minimize(
        f_numpy, np.array([0.0, 1.0]), method="trust-exact",
        jac=lambda x: np.asarray(jax.grad(f)(jnp.asarray(x))),
        hess=lambda x: np.asarray(jax.hessian(f)(jnp.asarray(x))),
        options={"gtol": 1e-8},
    )  # fmt: skip
    result = so.minimize(
        f, jnp.array([0.0, 1.0]), so.newton(), max_steps=5_000, tol=1e-8
    )
    assert bool(result.converged), result.message
    assert int(result.num_fun_evals) < 3_000  # measured 1,943
    np.testing.assert_allclose(result.params, reference.x, rtol=1e-4)
    assert float(result.value) < 1e-10


def test_a_hessian_with_inf_entries_leaves_the_damping_finite(x64):
    """|x|^1.5 has an infinite second derivative at 0: no model there, a zero
    update, and the damping kept, so the next update (away from 0) works."""

    def f(x):
        return jnp.sum(jnp.abs(x) ** 1.5)

    tx = so.scale_by_damped_newton()
    x = jnp.array([0.0, 1.0])
    g = jax.grad(f)(x)
    updates, state = tx.update(g, tx.init(x), x, value=f(x), grad=g, value_fn=f)
    np.testing.assert_array_equal(updates, [0.0, 0.0])
    assert float(state.damping) == 0.0 and int(state.num_fun_evals) == 0
    x = jnp.array([0.5, 1.0])
    g = jax.grad(f)(x)
    updates, state = tx.update(g, state, x, value=f(x), grad=g, value_fn=f)
    assert float(f(x - updates)) < float(f(x))  # the step it tested was −d
