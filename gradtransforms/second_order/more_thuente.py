"""Moré & Thuente's line search for the strong Wolfe conditions, jit-compatible.

Moré & Thuente (1994), *Line search algorithms with guaranteed sufficient
decrease*, ACM TOMS 20(3), 286-307: along a descent direction $d$, with
$\\varphi(\\lambda) = f(x + \\lambda d)$, find $\\lambda \\in (0,
\\lambda_\\text{max}]$ with

$$\\varphi(\\lambda) \\le \\varphi(0) + c_1 \\lambda \\varphi'(0), \\qquad
|\\varphi'(\\lambda)| \\le c_2 |\\varphi'(0)|.$$

Each trial keeps an interval $[\\lambda_x, \\lambda_y]$ (not necessarily
ordered) that is known to contain such a step once it brackets one, with
$\\lambda_x$ the best step so far, and chooses the next trial by cubic,
quadratic or secant interpolation safeguarded to the interval (their
section 4), bisecting when the interval does not shrink fast enough. It is
the search of the reference L-BFGS-B code (MINPACK-2's `dcsrch`, which
SciPy's `method="L-BFGS-B"` runs with $c_1 = 10^{-3}$, $c_2 = 0.9$ and a
relative interval tolerance of 0.1); here every branch is a `jnp.where` and
the trials run in one `lax.while_loop`, so the search compiles under `jit`
and batches under `vmap`. Used by `lbfgs_b`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["more_thuente"]

_XTOL = 0.1  # the interval's relative width below which the search stops


class _Search(NamedTuple):
    """Moré-Thuente's carry: the steps are multiples of the direction $d$."""

    stp: jax.Array  # the next trial step (the accepted one when done)
    value: jax.Array  # φ(λ) = f(x + λd) at the last trial
    grad: jax.Array  # (n,): ∇f at the last trial point
    stx: jax.Array  # the best step so far, with φ and φ' there
    fx: jax.Array
    gx: jax.Array
    best: tuple  # (f, ∇f) at stx, exactly
    sty: jax.Array  # the interval's other end, with φ and φ' there
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array  # the next trial lies in [stmin, stmax]
    stmax: jax.Array
    width: jax.Array  # the interval's width, and the width before
    width1: jax.Array
    bracketed: jax.Array  # bool: a minimiser lies between stx and sty
    stage2: jax.Array  # bool: a step with sufficient decrease and φ' >= 0 seen
    done: jax.Array  # bool
    num_evals: jax.Array  # int32


def _cubic(a, fa, da, b, fb, db):
    """The minimiser of the cubic with values $f_a, f_b$, slopes $d_a, d_b$ at $a, b$.

    $$\\vartheta = 3\\frac{f_a - f_b}{b - a} + d_a + d_b, \\quad \\gamma =
    \\operatorname{sign}(b - a)\\sqrt{\\vartheta^2 - d_a d_b}, \\quad r =
    \\frac{\\gamma - d_a + \\vartheta}{2\\gamma - d_a + d_b},$$

    the point $a + r (b - a)$; $\\gamma$ is computed scaled (against
    overflow), and 0 when the radicand is negative. Returns the point, $r$
    and $\\gamma$.
    """
    vartheta = 3 * (fa - fb) / (b - a) + da + db
    scale = jnp.maximum(jnp.maximum(jnp.abs(vartheta), jnp.abs(da)), jnp.abs(db))
    scale = jnp.where(scale > 0, scale, 1)
    radicand = (vartheta / scale) ** 2 - (da / scale) * (db / scale)
    gamma = scale * jnp.sqrt(jnp.maximum(radicand, 0))
    gamma = jnp.where(b < a, -gamma, gamma)
    r = (gamma - da + vartheta) / (2 * gamma - da + db)
    return a + r * (b - a), r, gamma


def _trial_step(best, other, trial, bracketed, lo, hi):
    """Moré & Thuente's safeguarded step (their section 4, four cases).

    `best`, `other` and `trial` are (step, φ, φ') at the interval's ends and
    at the trial. Case 1, φ rose: the cubic step, or halfway to the
    quadratic one. Case 2, the slope changed sign: the cubic or the secant
    step, whichever is farther from the trial. Case 3, the slope shrank:
    the cubic step when it lies beyond the trial, else an end of
    [lo, hi]; kept within 0.66 of the interval when bracketed. Case 4:
    cubic towards the other end if bracketed, else an end of [lo, hi].
    Returns the new ends, the next step, `bracketed`, and whether the
    trial became the best step.
    """
    stx, fx, dx = best
    sty, fy, dy = other
    stp, fp, dp = trial
    higher = fp > fx
    opposite = dp * jnp.sign(dx) < 0
    cubic1, _, _ = _cubic(stx, fx, dx, stp, fp, dp)
    quad = stx + dx / ((fx - fp) / (stp - stx) + dx) / 2 * (stp - stx)
    near1 = jnp.abs(cubic1 - stx) < jnp.abs(quad - stx)
    case1 = jnp.where(near1, cubic1, cubic1 + (quad - cubic1) / 2)
    cubic, r, gamma = _cubic(stp, fp, dp, stx, fx, dx)
    secant = stp + dp / (dp - dx) * (stx - stp)
    farther = jnp.abs(cubic - stp) > jnp.abs(secant - stp)
    case2 = jnp.where(farther, cubic, secant)
    cubic3 = jnp.where((r < 0) & (gamma != 0), cubic, jnp.where(stp > stx, hi, lo))
    dist3, dist_secant = jnp.abs(cubic3 - stp), jnp.abs(secant - stp)
    inner = jnp.where(dist3 < dist_secant, cubic3, secant)
    limit = stp + 0.66 * (sty - stp)
    inner = jnp.where(stp > stx, jnp.minimum(limit, inner), jnp.maximum(limit, inner))
    outer = jnp.clip(jnp.where(dist3 > dist_secant, cubic3, secant), lo, hi)
    case3 = jnp.where(bracketed, inner, outer)
    case4 = jnp.where(
        bracketed,
        _cubic(stp, fp, dp, sty, fy, dy)[0],
        jnp.where(stp > stx, hi, lo),
    )
    smaller = jnp.abs(dp) < jnp.abs(dx)
    nxt = jnp.where(
        higher,
        case1,
        jnp.where(opposite, case2, jnp.where(smaller, case3, case4)),
    )

    def pick(cond, a, b):
        return tuple(jnp.where(cond, u, v) for u, v in zip(a, b, strict=True))

    other = pick(higher, trial, pick(opposite, best, other))
    best = pick(higher, best, trial)
    return best, other, nxt, bracketed | higher | opposite, ~higher


def _advance(s: _Search, f, dg, grad, f0, dg0, stp_max, tols) -> _Search:
    """Test the trial just evaluated ($\\varphi(\\lambda) = f$, $\\varphi' = $ `dg`).

    Done at the strong Wolfe conditions $\\varphi(\\lambda) \\le \\varphi(0)
    + c_1 \\lambda \\varphi'(0)$, $|\\varphi'(\\lambda)| \\le c_2
    |\\varphi'(0)|$, or when no better step can be found (the interval has
    shrunk below `_XTOL` of its size or to rounding, or the step is
    $\\lambda_\\text{max}$ with sufficient decrease and a still negative
    slope). Otherwise the next trial: until a step with sufficient decrease
    and $\\varphi' \\ge 0$ has been seen, steps are chosen on the auxiliary
    function $\\psi(\\lambda) = \\varphi(\\lambda) - \\varphi(0) - c_1
    \\lambda \\varphi'(0)$; the interval is bisected when it has not shrunk
    to $2/3$ of its width two trials before. A non-finite trial counts as
    too long: the next trial is halfway back to the best step.
    """
    ftol, gtol = tols
    gtest = ftol * dg0
    ftest = f0 + s.stp * gtest
    finite = jnp.isfinite(f) & jnp.isfinite(dg)
    stage2 = s.stage2 | ((f <= ftest) & (dg >= 0))
    tight = s.stmax - s.stmin <= _XTOL * s.stmax
    stuck = s.bracketed & ((s.stp <= s.stmin) | (s.stp >= s.stmax) | tight)
    at_max = (s.stp == stp_max) & (f <= ftest) & (dg <= gtest)
    wolfe = (f <= ftest) & (jnp.abs(dg) <= gtol * -dg0)
    done = finite & (stuck | at_max | wolfe)
    # On ψ while stage 1 and the trial lowered φ without sufficient decrease.
    shift = jnp.where(~stage2 & (f <= s.fx) & (f > ftest), gtest, 0)
    best, other, nxt, bracketed, moved = _trial_step(
        (s.stx, s.fx - s.stx * shift, s.gx - shift),
        (s.sty, s.fy - s.sty * shift, s.gy - shift),
        (s.stp, f - s.stp * shift, dg - shift),
        s.bracketed, s.stmin, s.stmax,
    )  # fmt: skip
    stx, fx, gx = best[0], best[1] + best[0] * shift, best[2] + shift
    sty, fy, gy = other[0], other[1] + other[0] * shift, other[2] + shift
    # A non-finite trial: it ends the interval; halve back towards stx.
    sty, fy, gy = (
        jnp.where(finite, a, b) for a, b in ((sty, s.stp), (fy, f), (gy, dg))
    )
    stx, fx, gx = (
        jnp.where(finite, a, b) for a, b in ((stx, s.stx), (fx, s.fx), (gx, s.gx))
    )
    moved = moved & finite
    bracketed = bracketed | ~finite
    nxt = jnp.where(finite, nxt, s.stx + 0.5 * (s.stp - s.stx))
    nxt = jnp.where(jnp.isfinite(nxt), nxt, stx + 0.5 * (sty - stx))
    span = jnp.abs(sty - stx)
    nxt = jnp.where(bracketed & (span >= 0.66 * s.width1), stx + 0.5 * (sty - stx), nxt)
    width1 = jnp.where(bracketed, s.width, s.width1)
    width = jnp.where(bracketed, span, s.width)
    stmin = jnp.where(bracketed, jnp.minimum(stx, sty), nxt + 1.1 * (nxt - stx))
    stmax = jnp.where(bracketed, jnp.maximum(stx, sty), nxt + 4.0 * (nxt - stx))
    nxt = jnp.clip(nxt, 0, stp_max)
    tight = stmax - stmin <= _XTOL * stmax
    nxt = jnp.where(bracketed & ((nxt <= stmin) | (nxt >= stmax) | tight), stx, nxt)
    best_fg = tuple(
        jnp.where(moved, a, b) for a, b in zip((f, grad), s.best, strict=True)
    )
    return _Search(
        jnp.where(done, s.stp, nxt), f, grad, stx, fx, gx, best_fg, sty, fy, gy,
        stmin, stmax, width, width1, bracketed, stage2, done, s.num_evals,
    )  # fmt: skip


def more_thuente(
    evaluate, f0, g0, dg0, stp0, stp_max, active, max_steps, ftol=1e-3, gtol=0.9
):
    """Moré-Thuente along $d$ from `stp0` in $(0, \\lambda_\\text{max}]$.

    `evaluate(λ)` gives $f$, $\\varphi'(\\lambda)$ and $\\nabla f$ at the
    trial point. Returns the accepted step with $f$ and $\\nabla f$ there
    and True, or, after `max_steps` trials without acceptance, the best
    step found (possibly 0) and False; and the number of trials. Nothing is
    evaluated unless `active`.
    """
    zero = jnp.zeros_like(f0)
    start = _Search(
        stp0, f0, g0, zero, f0, dg0, (f0, g0), zero, f0, dg0,
        zero, stp0 + 4.0 * stp0, stp_max, 2 * stp_max,
        jnp.zeros((), bool), jnp.zeros((), bool), jnp.zeros((), bool), jnp.int32(0),
    )  # fmt: skip

    def cond_fn(s: _Search):
        return active & ~s.done & (s.num_evals < max_steps)

    def body_fn(s: _Search):
        f, dg, grad = evaluate(s.stp)
        s = s._replace(num_evals=s.num_evals + 1)
        return _advance(s, f, dg, grad, f0, dg0, stp_max, (ftol, gtol))

    s = jax.lax.while_loop(cond_fn, body_fn, start)
    stp = jnp.where(s.done, s.stp, s.stx)
    value = jnp.where(s.done, s.value, s.best[0])
    grad = jnp.where(s.done, s.grad, s.best[1])
    return stp, value, grad, s.done, s.num_evals
