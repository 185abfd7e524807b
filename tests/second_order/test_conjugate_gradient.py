"""Nonlinear conjugate gradients (textbook Algorithm 8.9) in a user's own loop.

The references are independent of the code under test: the closed-form
minimiser of a quadratic, a literal NumPy transcription of Algorithm 8.9
(`tests/second_order/reference.py`), Powell's restart test worked by hand,
and SciPy's CG on the Rosenbrock function.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import cg_numpy


@pytest.mark.parametrize(
    "variant", ["polak_ribiere", "fletcher_reeves", "hestenes_stiefel"]
)
def test_cg_with_exact_steps_solves_a_quadratic_in_n_iterations(variant, x64):
    a, b = problems.random_quadratic(6, seed=0, condition=100.0)
    n = b.size
    x_star = np.linalg.solve(a, b)  # closed form
    f = problems.quadratic(a, b)

    tx = so.conjugate_gradient(variant, linesearch=so.scale_by_quadratic_linesearch())
    x0 = np.zeros(n)
    x_n, _, trajectory = run(tx, f, jnp.asarray(x0), n)

    np.testing.assert_allclose(x_n, x_star, rtol=1e-9, atol=1e-9)
    # Not by accident: one step short, it is still far from the minimum.
    assert np.linalg.norm(trajectory[n - 2] - x_star) > 1e-3 * np.linalg.norm(x_star)
    # And it is the textbook's algorithm, iterate by iterate.
    reference = cg_numpy(a, b, x0, n, variant)
    np.testing.assert_allclose(trajectory, reference, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("previous", "beta_is_zero"),
    [([1.0, 0.0], True), ([0.3, -0.3], False), ([-0.2, 1.0], True)],
)
@pytest.mark.parametrize(
    "variant", ["polak_ribiere", "fletcher_reeves", "hestenes_stiefel"]
)
def test_powell_restart_when_gradients_lose_orthogonality(
    variant, previous, beta_is_zero, x64
):
    """Powell's test |g_t·g_{t−1}| >= 0.1 ‖g_t‖² (N&W eq. 5.52), by hand:
    g_t = (1, 1), ‖g_t‖² = 2; g_{t−1} = (1, 0) gives 1 >= 0.2 (restart),
    (0.3, −0.3) gives 0 (no restart: β = 2/0.18 in every variant),
    (−0.2, 1) gives 0.8 (restart)."""
    tx = so.scale_by_conjugate_gradient(variant, restart_every=100)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.asarray(previous), state)
    direction, state = tx.update(jnp.array([1.0, 1.0]), state)
    assert (float(state.beta) == 0.0) == beta_is_zero
    if beta_is_zero:
        np.testing.assert_allclose(direction, [1.0, 1.0])


def test_default_restart_period_is_the_number_of_parameters(x64):
    """Gradients kept orthogonal, so only the periodic restart can fire: with
    n = 3 parameters, β = 0 at updates 0, 3, 6, and β > 0 (FR) otherwise."""
    tx = so.scale_by_conjugate_gradient("fletcher_reeves")
    state = tx.init({"a": jnp.zeros(2), "b": jnp.zeros(())})
    basis = [
        {"a": jnp.array([1.0, 0.0]), "b": jnp.asarray(0.0)},
        {"a": jnp.array([0.0, 0.5]), "b": jnp.asarray(0.0)},
        {"a": jnp.array([0.0, 0.0]), "b": jnp.asarray(0.25)},
    ]
    betas = []
    for t in range(7):
        _, state = tx.update(basis[t % 3], state)
        betas.append(float(state.beta))
    assert [b == 0.0 for b in betas] == [t % 3 == 0 for t in range(7)]


def test_fletcher_reeves_solves_chained_rosenbrock(x64):
    """10-D chained Rosenbrock from zeros (issue 20): without restarts FR
    crawled for all of 5,000 steps and stopped at f = 1.46; SciPy's CG (PR)
    reaches the minimum."""
    reference = scipy.optimize.minimize(
        scipy.optimize.rosen, np.zeros(10), jac=scipy.optimize.rosen_der,
        method="CG", options={"gtol": 1e-6},
    )  # fmt: skip
    np.testing.assert_allclose(reference.x, np.ones(10), atol=1e-4)
    result = so.minimize(
        problems.rosenbrock, jnp.zeros(10), so.conjugate_gradient("fletcher_reeves"),
        max_steps=5_000, tol=1e-6,
    )  # fmt: skip
    assert bool(result.converged), result.message
    assert int(result.num_steps) < 1_000
    np.testing.assert_allclose(result.params, np.ones(10), atol=1e-5)
