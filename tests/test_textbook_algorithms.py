"""The library against literal transcriptions of textbook Algorithms 8.1–8.7.

The references (`tests/textbook_reference.py`) are plain NumPy loops written
from the listings of Goodfellow, Bengio & Courville, chapter 8. Here the
library's optimizers run the same number of steps from the same start, in
float64, on an ill-conditioned non-quadratic function, and the trajectories
must agree to 1e-10. (`tests/test_textbook_facts.py` checks the facts the
sources state, in closed form.)
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests import textbook_reference as ref

pytestmark = pytest.mark.usefixtures("x64")

NUM_STEPS = 100
ATOL = 1e-10

# --------------------------------------------------------------------------
# The test function
#
#   f(theta) = sum_i d_i (y_i^2 / 2 + y_i^4 / 4) + log sum_j exp(B theta)_j,
#   y = Q (theta - c),
#
# with Q orthogonal (a Householder reflection, so the valley is not aligned
# with the axes), d from 1 to 100 (curvature ratio 100 at the bottom, larger
# away from it because of the quartic term) and a log-sum-exp that couples the
# coordinates and makes the minimiser something other than c.

_D = np.logspace(0.0, 2.0, 5)
_U = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
_Q = np.eye(5) - 2.0 * np.outer(_U, _U) / (_U @ _U)
_C = np.array([0.5, -0.3, 0.2, 0.1, -0.4])
_B = 0.5 * np.array(
    [
        [1.0, -1.0, 0.5, 0.0, 0.2],
        [-0.3, 0.8, 0.0, 1.0, -0.6],
        [0.0, 0.4, -1.0, 0.7, 0.9],
    ]
)
THETA0 = np.array([1.1, -0.9, 0.9, -0.6, 0.3])


def f_numpy(theta: np.ndarray) -> float:
    y = _Q @ (theta - _C)
    z = _B @ theta
    zmax = np.max(z)
    lse = zmax + np.log(np.sum(np.exp(z - zmax)))
    return float(np.sum(_D * (y**2 / 2 + y**4 / 4)) + lse)


def grad_numpy(theta: np.ndarray) -> np.ndarray:
    """The gradient of `f_numpy`, by hand (the references use only NumPy)."""
    y = _Q @ (theta - _C)
    z = _B @ theta
    softmax = np.exp(z - np.max(z))
    softmax = softmax / np.sum(softmax)
    return _Q.T @ (_D * (y + y**3)) + _B.T @ softmax


def f_jax(theta: jax.Array) -> jax.Array:
    d, q, c, b = (jnp.asarray(a, theta.dtype) for a in (_D, _Q, _C, _B))
    y = q @ (theta - c)
    return jnp.sum(d * (y**2 / 2 + y**4 / 4)) + jax.nn.logsumexp(b @ theta)


def run_library(tx, params0, num_steps=NUM_STEPS, state0=None):
    """Run `tx` on `f_jax` for `num_steps`; return (params, states) per step.

    Row i of each output is the value after step i + 1, as in the references.
    """
    params = jnp.asarray(params0, jnp.float64)
    state = tx.init(params) if state0 is None else state0

    @jax.jit
    def run(params, state):
        def step(carry, _):
            params, state = carry
            g = jax.grad(f_jax)(params)
            updates, state = tx.update(g, state, params)
            params = gt.apply_updates(params, updates)
            return (params, state), (params, state)

        _, trajectory = jax.lax.scan(step, (params, state), None, length=num_steps)
        return trajectory

    params_traj, state_traj = run(params, state)
    assert params_traj.dtype == jnp.float64
    return np.asarray(params_traj), state_traj


def assert_close(actual, expected):
    chex.assert_trees_all_close(
        np.asarray(actual), np.asarray(expected), rtol=0.0, atol=ATOL
    )


def assert_moves(trajectory):
    """Guard against a vacuous comparison: the parameters must travel, finitely."""
    assert np.all(np.isfinite(trajectory))
    assert np.max(np.abs(trajectory[-1] - THETA0)) > 0.1


def hessian_numpy(theta: np.ndarray) -> np.ndarray:
    """The Hessian of `f_numpy`, by hand."""
    y = _Q @ (theta - _C)
    z = _B @ theta
    softmax = np.exp(z - np.max(z))
    softmax = softmax / np.sum(softmax)
    quartic = _Q.T @ np.diag(_D * (1 + 3 * y**2)) @ _Q
    log_sum_exp = _B.T @ (np.diag(softmax) - np.outer(softmax, softmax)) @ _B
    return quartic + log_sum_exp


def test_test_function_gradient_matches_jax():
    """The hand-written NumPy gradient is the gradient of the JAX function."""
    value_and_grad = jax.jit(jax.value_and_grad(f_jax))
    for theta in (THETA0, _C, np.array([-0.7, 0.2, 1.3, 0.4, -1.1])):
        value, g_jax = value_and_grad(jnp.asarray(theta, jnp.float64))
        np.testing.assert_allclose(f_numpy(theta), float(value), rtol=1e-14)
        np.testing.assert_allclose(
            grad_numpy(theta), np.asarray(g_jax), rtol=1e-13, atol=1e-13
        )
        # And the hand-written Hessian is the Jacobian of the gradient.
        h = 1e-6
        columns = [
            (grad_numpy(theta + h * e) - grad_numpy(theta - h * e)) / (2 * h)
            for e in np.eye(5)
        ]
        np.testing.assert_allclose(
            hessian_numpy(theta), np.stack(columns, axis=1), rtol=1e-6, atol=1e-6
        )


def test_test_function_is_ill_conditioned():
    """Curvature ratio of ~100 at the minimiser, non-quadratic around it."""
    # Newton's method (the function is strictly convex) finds the minimiser.
    theta = THETA0.copy()
    for _ in range(50):
        theta = theta - np.linalg.solve(hessian_numpy(theta), grad_numpy(theta))
    assert np.max(np.abs(grad_numpy(theta))) < 1e-12
    eigenvalues = np.linalg.eigvalsh(hessian_numpy(theta))
    assert eigenvalues[0] > 0
    assert 50 < eigenvalues[-1] / eigenvalues[0] < 200
    # Along the start's trajectory the curvature changes several-fold.
    start = np.linalg.eigvalsh(hessian_numpy(THETA0))
    assert start[-1] > 2 * eigenvalues[-1]


# --------------------------------------------------------------------------
# Algorithm 8.1 (SGD) and eq. 8.14 (linear decay)


def test_alg_8_1_sgd_constant_rate():
    expected = ref.sgd(grad_numpy, THETA0, 2e-3, NUM_STEPS)
    actual, _ = run_library(gt.sgd(2e-3), THETA0)
    assert_moves(expected)
    assert_close(actual, expected)


@pytest.mark.parametrize("align", ["shift_library", "shift_reference"])
def test_alg_8_1_sgd_linear_decay(align):
    """Algorithm 8.1 under eq. 8.14, tau inside the run so both regimes occur.

    Indexing: the textbook's loop starts at k = 1, so its first update uses
    eps_1. A library schedule receives the update count, 0 for the first
    update, and `linear_decay_schedule(count)` is eps_count. So either the
    library is given `count -> schedule(count + 1)` (then both use eps_1, eps_2,
    ... as in the book), or the reference is given `k -> eps_{k-1}` (then both
    use eps_0, eps_1, ..., the library's own convention).
    """
    eps_0, eps_tau, tau = 3e-3, 3e-5, 40
    schedule = gt.linear_decay_schedule(eps_0, eps_tau, tau)
    if align == "shift_library":
        expected = ref.sgd(
            grad_numpy,
            THETA0,
            lambda k: ref.linear_decay(k, eps_0, eps_tau, tau),
            NUM_STEPS,
        )
        tx = gt.sgd(lambda count: schedule(count + 1))
    else:
        expected = ref.sgd(
            grad_numpy,
            THETA0,
            lambda k: ref.linear_decay(k - 1, eps_0, eps_tau, tau),
            NUM_STEPS,
        )
        tx = gt.sgd(schedule)
    actual, _ = run_library(tx, THETA0)
    assert_moves(expected)
    assert_close(actual, expected)


# --------------------------------------------------------------------------
# Algorithm 8.2 (momentum)


def test_alg_8_2_momentum():
    eps, alpha = 1e-3, 0.9
    thetas, vs = ref.momentum(grad_numpy, THETA0, eps, alpha, NUM_STEPS)
    actual, states = run_library(gt.sgd(eps, momentum=alpha), THETA0)
    assert_moves(thetas)
    assert_close(actual, thetas)
    # The library's trace is the textbook velocity v itself (lr applied first).
    assert_close(states[1].trace, vs)


def test_alg_8_2_momentum_initial_velocity():
    """The listing's "initial velocity v", set through the trace state."""
    eps, alpha = 1e-3, 0.5
    v0 = np.array([0.05, -0.02, 0.0, 0.03, -0.01])
    thetas, vs = ref.momentum(grad_numpy, THETA0, eps, alpha, NUM_STEPS, v=v0)
    tx = gt.sgd(eps, momentum=alpha)
    state = tx.init(jnp.asarray(THETA0))
    state = (state[0], gt.TraceState(trace=jnp.asarray(v0)))
    actual, states = run_library(tx, THETA0, state0=state)
    assert_close(actual, thetas)
    assert_close(states[1].trace, vs)


@pytest.mark.parametrize("align", ["shift_library", "shift_reference"])
def test_alg_8_2_momentum_linear_decay(align):
    """v <- alpha v - eps_k g: the rate scales the new gradient only.

    Same indexing as in `test_alg_8_1_sgd_linear_decay`.
    """
    eps_0, eps_tau, tau, alpha = 2e-3, 2e-5, 40, 0.9
    schedule = gt.linear_decay_schedule(eps_0, eps_tau, tau)
    if align == "shift_library":
        rate = lambda k: ref.linear_decay(k, eps_0, eps_tau, tau)
        tx = gt.sgd(lambda count: schedule(count + 1), momentum=alpha)
    else:
        rate = lambda k: ref.linear_decay(k - 1, eps_0, eps_tau, tau)
        tx = gt.sgd(schedule, momentum=alpha)
    thetas, vs = ref.momentum(grad_numpy, THETA0, rate, alpha, NUM_STEPS)
    actual, states = run_library(tx, THETA0)
    assert_moves(thetas)
    assert_close(actual, thetas)
    assert_close(states[1].trace, vs)


# --------------------------------------------------------------------------
# Algorithm 8.3 (Nesterov momentum), compared through phi = theta + alpha v


def test_alg_8_3_nesterov():
    """The library's params are phi = theta + alpha v (docs/textbook.md, Alg. 8.3).

    The reference evaluates the gradient at theta + alpha v; the library, given
    phi_0 = theta_0 (v_0 = 0), takes it at its own params. Step by step,
    params == theta + alpha v and the trace == v.
    """
    eps, alpha = 1e-3, 0.9
    thetas, vs = ref.nesterov(grad_numpy, THETA0, eps, alpha, NUM_STEPS)
    actual, states = run_library(gt.sgd(eps, momentum=alpha, nesterov=True), THETA0)
    assert_moves(thetas)
    assert_close(actual, thetas + alpha * vs)
    assert_close(states[1].trace, vs)
    # The textbook theta is recovered as phi - alpha v.
    assert_close(actual - alpha * np.asarray(states[1].trace), thetas)


def test_alg_8_3_nesterov_initial_velocity():
    """With v_0 != 0 the library starts from phi_0 = theta_0 + alpha v_0."""
    eps, alpha = 1e-3, 0.5
    v0 = np.array([0.05, -0.02, 0.0, 0.03, -0.01])
    thetas, vs = ref.nesterov(grad_numpy, THETA0, eps, alpha, NUM_STEPS, v=v0)
    tx = gt.sgd(eps, momentum=alpha, nesterov=True)
    phi0 = THETA0 + alpha * v0
    state = tx.init(jnp.asarray(phi0))
    state = (state[0], gt.TraceState(trace=jnp.asarray(v0)))
    actual, states = run_library(tx, phi0, state0=state)
    assert_close(actual, thetas + alpha * vs)
    assert_close(states[1].trace, vs)


# --------------------------------------------------------------------------
# Algorithms 8.4–8.7 (adaptive learning rates)


def test_alg_8_4_adagrad():
    """`adagrad(eps)` defaults: r_0 = 0, delta = 1e-7 outside the root."""
    eps = 0.1
    expected = ref.adagrad(grad_numpy, THETA0, eps, NUM_STEPS, delta=1e-7)
    actual, _ = run_library(gt.adagrad(eps), THETA0)
    assert_moves(expected)
    assert_close(actual, expected)


def test_alg_8_5_rmsprop():
    """`rmsprop(eps, decay=rho)` defaults: delta = 1e-6 under the root."""
    eps, rho = 1e-2, 0.95
    expected = ref.rmsprop(grad_numpy, THETA0, eps, rho, NUM_STEPS, delta=1e-6)
    actual, _ = run_library(gt.rmsprop(eps, decay=rho), THETA0)
    assert_moves(expected)
    assert_close(actual, expected)


@pytest.mark.parametrize(("alpha", "delta"), [(0.9, 1e-6), (0.5, 1e-12)])
def test_alg_8_6_rmsprop_nesterov(alpha, delta):
    """Compared through phi = theta + alpha v, with the same delta under the root.

    The listing has no stabiliser; the reference puts `delta` where the
    library's `eps_root` sits, and `eps=0.0` leaves nothing outside the root.
    """
    eps, rho = 1e-3, 0.9
    thetas, vs = ref.rmsprop_nesterov(
        grad_numpy, THETA0, eps, rho, alpha, NUM_STEPS, delta=delta
    )
    tx = gt.rmsprop(
        eps, decay=rho, momentum=alpha, nesterov=True, eps=0.0, eps_root=delta
    )
    actual, states = run_library(tx, THETA0)
    assert_moves(thetas)
    assert_close(actual, thetas + alpha * vs)
    # chain(scale_by_rms, scale_by_learning_rate, trace): the trace is v.
    assert_close(states[2].trace, vs)


def test_alg_8_7_adam():
    """`adam(eps)` defaults: rho_1 = 0.9, rho_2 = 0.999, delta = 1e-8 outside."""
    learning_rate = 1e-2
    expected = ref.adam(grad_numpy, THETA0, NUM_STEPS, learning_rate=learning_rate)
    actual, _ = run_library(gt.adam(learning_rate), THETA0)
    assert np.all(np.isfinite(expected))
    assert np.max(np.abs(expected[-1] - THETA0)) > 20 * learning_rate
    assert_close(actual, expected)
