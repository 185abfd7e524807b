"""Facts stated by the sources (docs/textbook.md), checked in closed form.

The textbook's terminal velocity of momentum (eq. 8.17, §8.3.2), the exact
bias correction of Adam's moments under a constant gradient (Algorithm 8.7),
and the linear-decay table of eq. 8.14, all in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests import textbook_reference as ref

pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.99])
def test_momentum_terminal_step(alpha, nesterov):
    """Eq. 8.17: under a constant g the step tends to eps |g| / (1 - alpha).

    With v_0 = 0, v_k = -eps g (1 - alpha^k) / (1 - alpha), so step k of the
    heavy ball is v_k; Nesterov's step, alpha v_k - eps g, is
    -eps g (1 - alpha^(k+1)) / (1 - alpha). Both tend to the terminal step
    (alpha = 0.9: ten times the plain step eps |g|).
    """
    eps = 0.01
    g = jnp.asarray([3.0, -4.0], jnp.float64)  # |g| = 5
    tx = gt.sgd(eps, momentum=alpha, nesterov=nesterov)
    num_steps = 4000 if alpha == 0.99 else 400

    @jax.jit
    def steps(state):
        def body(state, _):
            updates, state = tx.update(g, state)
            return state, updates

        return jax.lax.scan(body, state, None, length=num_steps)[1]

    updates = np.asarray(steps(tx.init(jnp.zeros(2, jnp.float64))))
    k = np.arange(1, num_steps + 1, dtype=np.float64)[:, None]
    power = k + 1 if nesterov else k
    expected = -eps * np.asarray(g) * (1 - alpha**power) / (1 - alpha)
    np.testing.assert_allclose(updates, expected, rtol=1e-12, atol=0)
    terminal = eps * 5.0 / (1 - alpha)
    np.testing.assert_allclose(np.linalg.norm(updates[-1]), terminal, rtol=1e-12)
    plain_step = eps * 5.0
    np.testing.assert_allclose(
        np.linalg.norm(updates[-1]) / plain_step, 1 / (1 - alpha), rtol=1e-12
    )


@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_adam_bias_correction_constant_gradient(eps):
    """Under a constant g, s_hat = g and r_hat = g ⊙ g for every t >= 1.

    s_t = (1 - rho_1^t) g and r_t = (1 - rho_2^t) g ⊙ g, so the bias-corrected
    moments are exactly g and g ⊙ g, and every update of `scale_by_adam` is
    g / (|g| + delta), from the first step on (no warm-up from zero).
    """
    b1, b2 = 0.9, 0.999
    g_np = np.array([0.3, -2.0, 1e-3, 5.0])
    g = jnp.asarray(g_np)
    tx = gt.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=0.0)
    num_steps = 200

    @jax.jit
    def steps(state):
        def body(state, _):
            updates, state = tx.update(g, state)
            return state, (updates, state)

        return jax.lax.scan(body, state, None, length=num_steps)[1]

    updates, states = steps(tx.init(jnp.zeros(4, jnp.float64)))
    t = np.arange(1, num_steps + 1, dtype=np.float64)[:, None]
    np.testing.assert_array_equal(np.asarray(states.count), np.arange(1, 201))
    s_hat = np.asarray(states.mu) / (1 - b1**t)
    r_hat = np.asarray(states.nu) / (1 - b2**t)
    expected_s_hat = np.broadcast_to(g_np, s_hat.shape)
    np.testing.assert_allclose(s_hat, expected_s_hat, rtol=1e-12, atol=0)
    np.testing.assert_allclose(r_hat, expected_s_hat**2, rtol=1e-12, atol=0)
    expected = np.broadcast_to(g_np / (np.abs(g_np) + eps), updates.shape)
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-12, atol=0)
    # The first update already has its full size: |u_1| = |g| / (|g| + delta).
    np.testing.assert_allclose(
        np.asarray(updates[0]), g_np / (np.abs(g_np) + eps), rtol=1e-14
    )


def test_linear_decay_table_tau_4():
    """Eq. 8.14 with tau = 4 (docs/textbook.md): schedule(k) == eps_k."""
    eps_0, eps_tau = 1.0, 0.01
    schedule = gt.linear_decay_schedule(eps_0, eps_tau, transition_steps=4)
    table = {
        0: eps_0,
        1: 3 / 4 * eps_0 + 1 / 4 * eps_tau,
        2: 1 / 2 * eps_0 + 1 / 2 * eps_tau,
        3: 1 / 4 * eps_0 + 3 / 4 * eps_tau,
        4: eps_tau,
    }
    table.update({k: eps_tau for k in range(5, 12)})
    for k, expected in table.items():
        value = schedule(k)
        assert value.dtype == jnp.float64
        np.testing.assert_allclose(float(value), expected, rtol=1e-15, atol=0)
        np.testing.assert_allclose(
            ref.linear_decay(k, eps_0, eps_tau, 4), expected, rtol=1e-15, atol=0
        )
    # Also traced, as inside an optimizer's jitted update.
    counts = jnp.arange(12, dtype=jnp.int32)
    values = np.asarray(jax.jit(jax.vmap(schedule))(counts))
    np.testing.assert_allclose(values, [table[k] for k in range(12)], rtol=1e-15)
