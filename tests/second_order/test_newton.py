"""Damped Newton (textbook Algorithm 8.8, eq. 8.28) in a user's own loop.

References are independent of the code under test: the closed-form minimiser
of a quadratic, of the saddle function and of the pseudo-Huber function, and
a literal NumPy transcription of Algorithm 8.8.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

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
