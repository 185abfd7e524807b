"""momentum.py: trace (heavy ball, Nesterov) and ema, against NumPy recurrences.

References are float64 NumPy loops of the docstrings' recurrences:
m <- alpha m + g with u = m (heavy ball) or u = alpha m + g (Nesterov), and
m <- beta m + (1 - beta) g with u = m / (1 - beta^t) when debiased.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests.update_sequence import run_updates

GRADS = np.random.default_rng(0).normal(size=(6, 4))  # six steps of a 4-vector


@pytest.mark.parametrize("nesterov", [False, True])
def test_trace_is_the_momentum_recurrence(nesterov):
    alpha = 0.8
    m, expected = np.zeros(4), []
    for g in GRADS:
        m = alpha * m + g
        expected.append(alpha * m + g if nesterov else m)
    updates, state = run_updates(gt.trace(alpha, nesterov=nesterov), GRADS)
    np.testing.assert_allclose(updates, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.trace, m, rtol=1e-5, atol=1e-6)


def test_trace_keeps_the_velocity_in_its_accumulator_dtype():
    # m_t = 1 + m_{t-1} / 2 = 2 - 2^(1-t): after 12 steps 2 - 2^-11, which
    # float32 holds exactly and bfloat16 (8 bits) would round to 2.
    tx = gt.trace(0.5, accumulator_dtype=jnp.float32)
    updates, state = run_updates(tx, np.ones((12, 1)), jnp.bfloat16)
    assert state.trace.dtype == jnp.float32
    np.testing.assert_array_equal(state.trace, [2 - 2.0**-11])
    np.testing.assert_array_equal(updates[-1], [2.0])  # rounded to bfloat16
    u, _ = tx.update(jnp.ones(1, jnp.bfloat16), state)
    assert u.dtype == jnp.bfloat16


@pytest.mark.parametrize("debias", [True, False])
def test_ema_is_the_moving_average_with_its_bias_correction(debias):
    beta = 0.9
    m, expected = np.zeros(4), []
    for t, g in enumerate(GRADS, start=1):
        m = beta * m + (1 - beta) * g
        expected.append(m / (1 - beta**t) if debias else m)
    updates, state = run_updates(gt.ema(beta, debias=debias), GRADS)
    np.testing.assert_allclose(updates, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.ema, m, rtol=1e-5, atol=1e-6)
    assert int(state.count) == len(GRADS)
    # Debiased, the first update is the first gradient itself.
    if debias:
        np.testing.assert_allclose(updates[0], GRADS[0], rtol=1e-6)
