"""BFGS and L-BFGS (§8.6.3) on a quadratic with exact line searches.

On $f = \\tfrac12 x^\\top A x - b^\\top x$ with exact line searches, BFGS
started from a multiple of the identity, and L-BFGS with any memory, take the
iterates of conjugate gradients (Nocedal & Wright, §6.4 and §7.2; Nocedal,
1980): the references are the literal NumPy transcription of Algorithm 8.9
(`tests/second_order/reference.py`) and the closed-form minimiser
$A^{-1} b$. BFGS's estimate $M$ also satisfies the secant equation
$M A s_j = s_j$ for every step $s_j$ it has taken (the hereditary property).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import cg_numpy

N = 6


def _quadratic():
    return problems.random_quadratic(N, seed=0, condition=100.0)


def test_bfgs_takes_the_conjugate_gradient_iterates(x64):
    a, b = _quadratic()
    tx = so.bfgs(linesearch=so.scale_by_quadratic_linesearch())
    params, (state, _, _), trajectory = run(
        tx, problems.quadratic(a, b), jnp.zeros(N), N
    )
    reference = cg_numpy(a, b, np.zeros(N), N, "fletcher_reeves")
    np.testing.assert_allclose(trajectory, reference, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(params, np.linalg.solve(a, b), rtol=1e-9)
    # Hereditary property: M A s_j = s_j for the N - 1 pairs it accepted.
    assert int(state.num_pairs) == N - 1
    steps = np.diff(np.vstack([np.zeros(N), np.asarray(trajectory)]), axis=0)
    m = np.asarray(state.inv_hessian)
    for s in steps[: N - 1]:
        np.testing.assert_allclose(m @ a @ s, s, atol=1e-12)


@pytest.mark.parametrize("memory_size", [2, 10])
def test_lbfgs_takes_the_conjugate_gradient_iterates(memory_size, x64):
    a, b = _quadratic()
    tx = so.lbfgs(
        memory_size=memory_size,
        scale_init_precond=False,
        linesearch=so.scale_by_quadratic_linesearch(),
    )
    params, (state, _, _), trajectory = run(
        tx, problems.quadratic(a, b), jnp.zeros(N), N
    )
    reference = cg_numpy(a, b, np.zeros(N), N, "fletcher_reeves")
    np.testing.assert_allclose(trajectory, reference, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(params, np.linalg.solve(a, b), rtol=1e-9)
    # The memory holds the last pairs, oldest first: ρ = 1 / sᵀy > 0 there.
    stored = min(memory_size, N - 1)
    rho = np.asarray(state.rho_memory)
    assert np.all(rho[-stored:] > 0) and np.all(rho[:-stored] == 0)


def test_first_step_has_length_at_most_one():
    x = jnp.array([3.0, -4.0])  # |g| = 5 for g = x
    for tx in (so.scale_by_bfgs(), so.scale_by_lbfgs()):
        direction, _ = tx.update(x, tx.init(x), x)
        np.testing.assert_allclose(direction, [0.6, -0.8], rtol=1e-6)
