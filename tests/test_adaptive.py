"""adaptive.py: AdaGrad, RMSProp and Adam scaling against NumPy transcriptions.

References are float64 NumPy loops of the docstrings' formulas (textbook
Algorithms 8.4, 8.5 and 8.7; NAdam's first moment after Dozat, 2016) and the
closed form of Adam's update under a constant gradient.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests.update_sequence import run_updates

GRADS = np.random.default_rng(1).normal(size=(6, 4))
GRADS[0, 0] = 0.0  # a zero gradient while the accumulators are still 0


def test_scale_by_rss_is_algorithm_8_4():
    delta = 1e-7
    r, expected = np.zeros(4), []
    for g in GRADS:
        r = r + g * g
        expected.append(g / (delta + np.sqrt(r)))
    updates, state = run_updates(gt.scale_by_rss(eps=delta), GRADS)
    assert updates[0, 0] == 0.0  # 0 / (δ + 0), not 0 / 0
    np.testing.assert_allclose(updates, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.sum_of_squares, r, rtol=1e-5)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_scale_by_rms_matches_numpy(centered, bias_correction):
    rho, eps, eps_root = 0.9, 1e-3, 1e-6
    r, s, expected = np.zeros(4), np.zeros(4), []
    for t, g in enumerate(GRADS, start=1):
        r = rho * r + (1 - rho) * g * g
        s = rho * s + (1 - rho) * g
        correction = 1 - rho**t if bias_correction else 1.0
        var = r / correction - (s / correction) ** 2 if centered else r / correction
        expected.append(g / (np.sqrt(np.maximum(var, 0) + eps_root) + eps))
    tx = gt.scale_by_rms(
        rho,
        eps,
        eps_in_sqrt=False,
        bias_correction=bias_correction,
        centered=centered,
        eps_root=eps_root,
    )
    updates, _ = run_updates(tx, GRADS)
    np.testing.assert_allclose(updates, expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_scale_by_adam_matches_numpy(nesterov):
    b1, b2, eps = 0.9, 0.999, 1e-8
    s, r, expected = np.zeros(4), np.zeros(4), []
    for t, g in enumerate(GRADS, start=1):
        s = b1 * s + (1 - b1) * g
        r = b2 * r + (1 - b2) * g * g
        if nesterov:  # NAdam: ŝ = ρ₁ s / (1 - ρ₁^(t+1)) + (1 - ρ₁) g / (1 - ρ₁^t)
            s_hat = b1 * s / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            s_hat = s / (1 - b1**t)
        expected.append(s_hat / (np.sqrt(r / (1 - b2**t)) + eps))
    tx = gt.scale_by_adam(b1, b2, eps, nesterov=nesterov)
    updates, state = run_updates(tx, GRADS)
    np.testing.assert_allclose(updates, expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(state.mu, s, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state.nu, r, rtol=1e-5, atol=1e-9)
    assert int(state.count) == len(GRADS)


def test_scale_by_adam_keeps_the_moments_dtypes():
    tx = gt.scale_by_adam(mu_dtype=jnp.bfloat16)
    params = {"w": jnp.zeros(3), "h": jnp.zeros(2, jnp.bfloat16)}
    state = tx.init(params)
    assert state.mu["w"].dtype == jnp.bfloat16 and state.nu["w"].dtype == jnp.float32
    assert state.nu["h"].dtype == jnp.float32  # the default: float32 for bfloat16
    grads = {"w": jnp.ones(3), "h": jnp.ones(2, jnp.bfloat16)}
    updates, state = tx.update(grads, state)
    assert updates["w"].dtype == jnp.float32 and updates["h"].dtype == jnp.bfloat16
    assert state.mu["w"].dtype == jnp.bfloat16


def test_adam_bias_correction_is_accurate_in_float32():
    """Under a constant gradient ŝ = g and r̂ = g² (SPEC §8), so every Adam
    update is g / (|g| + δ): a closed form, evaluated here in float64."""
    g = np.array([0.2, 0.4, -1.0, 3e-3])
    tx = gt.scale_by_adam()
    state = tx.init(jnp.zeros(4))
    expected = (g / (np.abs(g) + 1e-8)).astype(np.float32)
    for _ in range(5):
        out, state = tx.update(jnp.asarray(g, jnp.float32), state)
        np.testing.assert_allclose(out, expected, rtol=3e-7)
