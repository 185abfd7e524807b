"""BFGS and L-BFGS (§8.6.3) on a quadratic with exact line searches.

On $f = \\tfrac12 x^\\top A x - b^\\top x$ with exact line searches, BFGS
started from a multiple of the identity, and L-BFGS with any memory, take the
iterates of conjugate gradients (Nocedal & Wright, §6.4 and §7.2; Nocedal,
1980): the references are the literal NumPy transcription of Algorithm 8.9
(`tests/second_order/reference.py`) and the closed-form minimiser
$A^{-1} b$. BFGS's estimate $M$ also satisfies the secant equation
$M A s_j = s_j$ for every step $s_j$ it has taken (the hereditary property).

With optax's meaning of its keywords: without a line search L-BFGS is the
plain recursion of Nocedal & Wright's Algorithms 7.4–7.5 (a NumPy
transcription, `lbfgs_numpy`, with the closed-form gradient); on complex
parameters it takes `optax.lbfgs`'s steps, and solves a complex least-squares
problem (`numpy.linalg.lstsq`).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import cg_numpy, himmelblau_numpy, lbfgs_numpy

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


# --------------------------------------------------------------------------
# optax's meaning: linesearch=None, scale_init_precond, every pair stored


def _himmelblau(p):
    x, y = p[0], p[1]
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


@pytest.mark.parametrize("scale_init_precond", [True, False])
def test_lbfgs_without_line_search_is_the_plain_recursion(scale_init_precond, x64):
    # From (1, 1) Himmelblau's curvature is negative (H_xx = -24): pairs
    # with sᵀy < 0 occur and are kept, as in Algorithm 7.5.
    lr, steps, m = 1e-3, 15, 5
    tx = so.lbfgs(lr, m, scale_init_precond, linesearch=None)
    _, (state, _, _), trajectory = run(tx, _himmelblau, jnp.ones(2), steps)
    reference = lbfgs_numpy(
        lambda p: himmelblau_numpy(p)[1], np.ones(2), lr, steps, m, scale_init_precond
    )
    np.testing.assert_allclose(trajectory, reference, rtol=1e-10)
    assert np.any(np.asarray(state.rho_memory) < 0)


def test_lbfgs_default_line_search_is_optax_default():
    default = inspect.signature(so.lbfgs).parameters["linesearch"].default
    assert repr(default) == (
        "scale_by_zoom_linesearch(max_linesearch_steps=20, "
        "initial_guess_strategy='one')"
    )
    optax_default = inspect.signature(optax.lbfgs).parameters["linesearch"].default
    assert isinstance(optax_default, optax.GradientTransformationExtraArgs)


# --------------------------------------------------------------------------
# Complex parameters


def _complex_least_squares():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3)) + 1j * rng.normal(size=(6, 3))
    b = rng.normal(size=6) + 1j * rng.normal(size=6)
    return a, b


def _complex_run(tx, z0, steps):
    """`steps` updates, the gradient conjugated (optax's complex convention)."""
    a, b = _complex_least_squares()

    def f(z):
        return jnp.sum(jnp.abs(a @ z - b) ** 2)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(f)(params)
        grad = jnp.conj(grad)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=f
        )
        return params + updates, state

    params, state = z0, tx.init(z0)
    for _ in range(steps):
        params, state = step(params, state)
    return params


def test_complex_lbfgs_takes_optax_steps(x64):
    z0 = jnp.array([1.0 - 1.0j, 0.5j, -0.25 + 0.0j])
    ours = _complex_run(so.lbfgs(0.05, 3, linesearch=None), z0, 8)
    with jax.numpy_dtype_promotion("standard"):  # optax's code needs it
        theirs = _complex_run(optax.lbfgs(0.05, 3, linesearch=None), z0, 8)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_complex_lbfgs_with_line_search_solves_least_squares(x64):
    a, b = _complex_least_squares()
    z = _complex_run(so.lbfgs(), jnp.zeros(3, jnp.complex128), 30)
    np.testing.assert_allclose(z, np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-8)


def test_bfgs_rejects_complex_parameters():
    with pytest.raises(TypeError, match="bfgs"):
        so.bfgs().init(jnp.zeros(2, jnp.complex64))
