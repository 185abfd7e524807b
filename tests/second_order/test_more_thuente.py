"""Moré & Thuente's line search on the test functions of their paper.

The reference is SciPy's own transcription of MINPACK-2's `dcsrch`
(`scipy.optimize._dcsrch.DCSRCH`, the search SciPy's L-BFGS-B runs), on the
six functions of Moré & Thuente (1994), section 5, from the four starting
steps they use: the same accepted step and the same number of trials.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms.second_order.more_thuente import more_thuente

dcsrch = pytest.importorskip("scipy.optimize._dcsrch")


def _smooth_kink(a, beta):
    """φ₀ of the third function: |1 - α| smoothed on [1 - β, 1 + β]."""
    inner = (a - 1) ** 2 / (2 * beta) + beta / 2
    return jnp.where(a <= 1 - beta, 1 - a, jnp.where(a >= 1 + beta, a - 1, inner))


def _yanai(a, b1, b2):
    def gamma(b):
        return jnp.sqrt(1 + b**2) - b

    return gamma(b1) * jnp.sqrt((1 - a) ** 2 + b2**2) + gamma(b2) * jnp.sqrt(
        a**2 + b1**2
    )


FUNCTIONS = [  # (φ, ftol, gtol), as in the paper's tables 1-6
    (lambda a: -a / (a**2 + 2.0), 1e-3, 0.1),
    (lambda a: (a + 0.004) ** 5 - 2 * (a + 0.004) ** 4, 0.1, 0.1),
    (
        lambda a: (
            _smooth_kink(a, 0.01)
            + 2 * (1 - 0.01) / (39 * jnp.pi) * jnp.sin(39 * jnp.pi * a / 2)
        ),
        0.1,
        0.1,
    ),
    (lambda a: _yanai(a, 0.001, 0.001), 1e-3, 1e-3),
    (lambda a: _yanai(a, 0.01, 0.001), 1e-3, 1e-3),
    (lambda a: _yanai(a, 0.001, 0.01), 1e-3, 1e-3),
]
STP_MAX = 1e10


@jax.jit
def _search(k, stp0, ftol, gtol):
    def phi(a):
        return jax.lax.switch(k, [f for f, _, _ in FUNCTIONS], a)

    def evaluate(stp):
        value, slope = jax.value_and_grad(phi)(stp)
        return value, slope, slope[None]

    f0, dg0 = jax.value_and_grad(phi)(jnp.zeros_like(stp0))
    return more_thuente(
        evaluate, f0, dg0[None], dg0, stp0, jnp.asarray(STP_MAX, stp0.dtype), True, 100,
        ftol, gtol,
    )  # fmt: skip


def _reference(k, stp0):
    f, ftol, gtol = FUNCTIONS[k]
    phi = jax.jit(f)
    derphi = jax.jit(jax.grad(f))
    trials = []

    def counted(a):
        trials.append(a)
        return float(phi(a))

    search = dcsrch.DCSRCH(
        counted, lambda a: float(derphi(a)), ftol, gtol, 0.1, 0.0, STP_MAX
    )
    _, value, _, task = search(stp0, float(phi(0.0)), float(derphi(0.0)), 100)
    return trials[-1], value, len(trials), task  # the last trial, also on a warning


@pytest.mark.parametrize("k", range(len(FUNCTIONS)))
def test_the_steps_of_minpack_dcsrch(k, x64):
    f, ftol, gtol = FUNCTIONS[k]
    for stp0 in (1e-3, 1e-1, 1e1, 1e3):
        stp_ref, value_ref, trials_ref, task = _reference(k, stp0)
        stp, value, grad, done, trials = _search(
            k, jnp.asarray(stp0), jnp.asarray(ftol), jnp.asarray(gtol)
        )
        assert bool(done)  # converged, or (a warning) no better step to be had
        np.testing.assert_allclose(stp, stp_ref, rtol=1e-10)
        np.testing.assert_allclose(value, value_ref, rtol=1e-8)
        assert int(trials) == trials_ref
        if task.startswith(b"CONV"):  # the strong Wolfe conditions hold
            slope0 = jax.grad(f)(0.0)
            assert value <= f(0.0) + ftol * stp * slope0
            assert abs(grad[0]) <= gtol * abs(slope0)


def test_a_non_finite_trial_is_cut_back(x64):
    def phi(a):  # NaN beyond a = 2; the minimum at a = 1
        return jnp.where(a < 2, (a - 1) ** 2, jnp.nan)

    def evaluate(stp):
        value, slope = jax.value_and_grad(phi)(stp)
        return value, slope, slope[None]

    one = jnp.ones(())
    stp, value, _, done, trials = jax.jit(more_thuente, static_argnums=(0, 7))(
        evaluate, one, -2 * one[None], -2 * one, 10 * one, 100 * one, True, 20
    )
    assert bool(done) and np.isfinite(value) and value <= 1.0 - 1e-3 * 2 * stp
    assert 0 < stp < 2 and int(trials) < 20


def test_nothing_is_evaluated_when_inactive(x64):
    def evaluate(stp):
        return jnp.full_like(stp, jnp.nan), stp, stp[None]

    one = jnp.ones(())
    stp, value, _, done, trials = more_thuente(
        evaluate, one, jnp.zeros(1), -one, one, one, False, 20
    )
    assert int(trials) == 0 and not bool(done)
    assert float(stp) == 0.0 and float(value) == 1.0
