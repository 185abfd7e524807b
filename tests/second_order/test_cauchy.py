"""The compact form, the generalised Cauchy point and the subspace step.

Independent NumPy references, straight from the definitions of Byrd, Lu,
Nocedal & Zhu (1995): the dense BFGS matrix built by the textbook update
$B \\leftarrow B - \\frac{B s s^\\top B}{s^\\top B s} + \\frac{y
y^\\top}{y^\\top s}$ from $\\theta I$ (the compact form must equal it), the
first local minimiser of the dense quadratic model along the projected path
$P(x - t g)$, segment by segment, and the model minimised over the free
variables by a dense solve, then truncated into the box.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms.second_order.cauchy import (
    cauchy_point,
    compact_form,
    max_feasible_step,
    subspace_step,
)

N, M = 8, 4


def _bfgs_dense(theta, pairs):
    b = theta * np.eye(N)
    for s, y in pairs:
        bs = b @ s
        b = b - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    return b


def _first_minimiser_on_path(x, g, lower, upper, b):
    """The first local minimiser of the model along $z = P(x - t g)$.

    The model is $g^\\top (z - x) + \\tfrac12 (z - x)^\\top B (z - x)$; the
    path is followed segment by segment between the breakpoints.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(g < 0, (x - upper) / g, np.where(g > 0, (x - lower) / g, np.inf))
    t = np.nan_to_num(t, nan=np.inf)
    knots = np.unique(np.concatenate([[0.0], t[np.isfinite(t)], [np.inf]]))
    for start, end in itertools.pairwise(knots):
        z = np.clip(x - start * g, lower, upper)
        d = np.where(t > start, -g, 0.0)
        slope, curvature = g @ d + d @ b @ (z - x), d @ b @ d
        if slope >= 0:
            return z
        if curvature > 0 and -slope / curvature < end - start:
            return z - slope / curvature * d
    return np.clip(x - knots[-2] * g, lower, upper)


def _instance(seed, num_pairs):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(N, N))
    a = a @ a.T + 0.5 * np.eye(N)  # y = A s: sᵀy > 0
    s = rng.normal(size=(num_pairs, N))
    y = s @ a
    theta = float(y[-1] @ y[-1] / (s[-1] @ y[-1])) if num_pairs else 1.0
    lower = rng.uniform(-1.5, -0.1, N)
    upper = rng.uniform(0.1, 1.5, N)
    lower[0], upper[1] = -np.inf, np.inf
    x = rng.uniform(lower.clip(-1), upper.clip(None, 1))
    x[2], x[3] = lower[2], upper[3]  # on a bound
    g = rng.normal(size=N) * 3
    return s, y, theta, lower, upper, x, g


def _memory(s, y):
    """The pairs in an m-slot memory, oldest first, empty slots first."""
    pad = np.zeros((M - len(s), N))
    return jnp.asarray(np.vstack([pad, s])), jnp.asarray(np.vstack([pad, y]))


@jax.jit
def _solve(s_mem, y_mem, num_pairs, theta, x, g, lower, upper):
    form = compact_form(s_mem, y_mem, num_pairs, theta)
    cauchy = cauchy_point(x, g, lower, upper, form)
    xbar = subspace_step(x, g, lower, upper, cauchy, form)
    dense = theta * jnp.eye(x.size, dtype=x.dtype) - form.w @ form.mid @ form.w.T
    return dense, cauchy, xbar


@pytest.mark.parametrize(("seed", "num_pairs"), [(0, 0), (1, 2), (2, 4), (3, 3)])
def test_against_the_dense_definitions(seed, num_pairs, x64):
    s, y, theta, lower, upper, x, g = _instance(seed, num_pairs)
    b = _bfgs_dense(theta, zip(s, y, strict=True))
    dense, cauchy, xbar = _solve(
        *_memory(s, y), jnp.int32(num_pairs), jnp.asarray(theta),
        *map(jnp.asarray, (x, g, lower, upper)),
    )  # fmt: skip
    np.testing.assert_allclose(dense, b, rtol=1e-9, atol=1e-9)

    xc = _first_minimiser_on_path(x, g, lower, upper, b)
    np.testing.assert_allclose(cauchy.x, xc, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        cauchy.c, np.asarray(_w(s, y, theta)).T @ (xc - x), atol=1e-9
    )
    free = (xc > lower + 1e-12) & (xc < upper - 1e-12)  # rounding: at a bound
    np.testing.assert_array_equal(cauchy.free, free)

    r = g + b @ (xc - x)
    step = np.zeros(N)
    step[free] = -np.linalg.solve(b[np.ix_(free, free)], r[free])
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(step > 0, (upper - xc) / step, (lower - xc) / step)
    alpha = min(1.0, np.min(room[step != 0], initial=np.inf))
    np.testing.assert_allclose(xbar, xc + alpha * step, rtol=1e-8, atol=1e-10)
    assert np.all((xbar >= lower) & (xbar <= upper))


def _w(s, y, theta):
    s_mem, y_mem = _memory(s, y)
    return jnp.concatenate([y_mem.T, theta * s_mem.T], axis=1)


def test_a_zero_gradient_leaves_the_point(x64):
    s, y, theta, lower, upper, x, _ = _instance(4, 2)
    _, cauchy, xbar = _solve(
        *_memory(s, y), jnp.int32(2), jnp.asarray(theta),
        *map(jnp.asarray, (x, np.zeros(N), lower, upper)),
    )  # fmt: skip
    np.testing.assert_array_equal(cauchy.x, x)
    np.testing.assert_array_equal(xbar, x)


def test_max_feasible_step(x64):
    x = jnp.array([0.0, 0.5, -1.0, 0.2, 0.0])
    d = jnp.array([1.0, -2.0, 0.0, 4.0, -1.0])
    lower = jnp.array([-1.0, -0.5, -2.0, -np.inf, -np.inf])
    upper = jnp.array([0.25, 1.0, 2.0, 1.0, np.inf])
    # limits: 0.25 / 1, 1 / 2, none, 0.8 / 4, none
    assert float(max_feasible_step(x, d, lower, upper)) == 0.2
    assert float(max_feasible_step(x, jnp.zeros(5), lower, upper)) == np.inf
