"""The zoom search's loop: bracketing (N&W Alg. 3.5), then zooming (Alg. 3.6).

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.7,
Algorithms 3.5 and 3.6; Moré & Thuente (1994) for the bisection safeguard;
Hager & Zhang (2005) for values equal to rounding. `scale_by_zoom_linesearch`
(zoom.py) is the transformation around it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.second_order.complex_params import conj, real_vdot
from gradtransforms.second_order.linesearch.diagnostics import zoom_errors
from gradtransforms.second_order.linesearch.steps import first_trial, next_in_bracket

__all__ = ["Line", "Settings", "Zoom", "search"]


class Zoom(NamedTuple):
    """Carry of the zoom loop: the bracket [lo, hi] and the next trial."""

    count: jax.Array
    done: jax.Array
    zooming: jax.Array  # False while bracketing (Alg. 3.5), True in zoom (3.6)
    trial: jax.Array  # the next trial step
    lo: jax.Array  # best step so far with sufficient decrease (0 at first)
    f_lo: jax.Array
    d_lo: jax.Array
    g_lo: Any
    errors_lo: tuple[jax.Array, jax.Array]  # (decrease, curvature) errors at lo
    hi: jax.Array
    f_hi: jax.Array
    d_hi: jax.Array
    wolfe: jax.Array
    tried: jax.Array  # the last trial step
    errors: tuple[jax.Array, jax.Array]  # its (decrease, curvature) errors
    widths: tuple[jax.Array, jax.Array]  # the bracket's after the last 2 trials


class Settings(NamedTuple):
    """The search's fixed settings (validated by `scale_by_zoom_linesearch`)."""

    max_steps: int
    max_step: Any
    tol: Any
    increase_factor: Any
    slope_rtol: Any
    curv_rtol: Any
    approx_dec_rtol: Any  # None: the Armijo condition only
    stepsize_precision: Any
    initial_guess_strategy: str

    def in_dtype(self, dtype: Any) -> Settings:
        """The numbers as scalars of `dtype` (they may be arrays of any dtype)."""
        numbers = self._asdict()
        del numbers["max_steps"], numbers["initial_guess_strategy"]
        return self._replace(**{
            k: None if v is None else jnp.asarray(v).astype(dtype)
            for k, v in numbers.items()
        })  # fmt: skip


class Line(NamedTuple):
    """What one update knows about the line before its first trial."""

    f0: jax.Array  # f at the start
    d0: jax.Array  # the slope <u, g> at the start (< 0 for a descent direction)
    noise: jax.Array  # 100 ε_mach |f0|: differences of f below this are rounding


def zoom_step(
    s: Settings, line: Line, c: Zoom, fa: jax.Array, da: jax.Array, ga: Any
) -> Zoom:
    """Update the bracket with the trial `c.trial` (value `fa`, slope `da`)."""
    a, dtype = c.trial, line.f0.dtype
    errors = zoom_errors(
        s.slope_rtol, s.curv_rtol, s.approx_dec_rtol, line.f0, line.d0, a, fa, da
    )
    finite = jnp.isfinite(fa) & jnp.isfinite(da)
    decrease = finite & (errors[0] <= s.tol)
    curvature = errors[1] <= s.tol
    # While zooming, when the decrease asked for is below the rounding of f,
    # a value within rounding of the best so far counts as a decrease: the
    # slopes decide (Hager & Zhang's bracket update; near a minimum the
    # values are all equal to rounding, and the search would stall).
    flat = (
        c.zooming & finite & (fa <= c.f_lo + line.noise)
        & (-s.slope_rtol * a * line.d0 <= line.noise)
    )  # fmt: skip
    wolfe = (decrease | flat) & curvature
    # A new `lo` must also be lower than the best point so far (Alg. 3.5 and
    # 3.6); a Wolfe point ends the search whatever its value.
    first = ~c.zooming & (c.count == 0)
    good = (decrease & ((fa < c.f_lo) | first)) | flat | wolfe
    # The far end moves back to the old `lo` when the slope at the new `lo`
    # points towards it (Alg. 3.5, phi' >= 0; Alg. 3.6, last test).
    towards = jnp.where(c.zooming, da * (c.hi - c.lo) >= 0, da >= 0)
    hi_is_old_lo = good & ~curvature & towards
    hi_is_a = ~good
    at_cap = ~c.zooming & good & ~curvature & ~towards & (a >= s.max_step)
    zooming = c.zooming | hi_is_a | hi_is_old_lo

    def pick(new, old_lo, old):
        return jnp.where(hi_is_a, new, jnp.where(hi_is_old_lo, old_lo, old))

    hi, f_hi, d_hi = (
        pick(a, c.lo, c.hi),
        pick(fa, c.f_lo, c.f_hi),
        pick(da, c.d_lo, c.d_hi),
    )
    lo, f_lo, d_lo, g_lo, errors_lo = tu.where(
        good, (a, fa, da, ga, errors), (c.lo, c.f_lo, c.d_lo, c.g_lo, c.errors_lo)
    )
    grown = jnp.minimum(a * s.increase_factor, s.max_step).astype(dtype)
    width = jnp.abs(hi - lo)
    # Bisect on values equal to rounding, or 2 trials short of 2/3 (Moré-Thuente).
    slow = width > 0.66 * c.widths[1]
    inside = jnp.where(
        flat | slow, 0.5 * (lo + hi), next_in_bracket(lo, f_lo, d_lo, hi, f_hi, d_hi)
    )
    trial = jnp.where(zooming, inside, grown)
    count = c.count + 1
    widths = (jnp.where(zooming, width, jnp.inf).astype(dtype), c.widths[0])
    # optax's `stepsize_precision`: a bracket that narrow, with a step of
    # sufficient decrease found, ends the search; and one narrowed to
    # rounding ends it whatever was found (nothing more can be learnt).
    too_small = zooming & (lo > 0) & (width <= s.stepsize_precision)
    collapsed = zooming & (width <= jnp.finfo(dtype).eps * jnp.maximum(lo, hi))
    done = wolfe | at_cap | (count >= s.max_steps) | too_small | collapsed
    return Zoom(
        count, done, zooming, trial.astype(dtype), lo, f_lo, d_lo, g_lo, errors_lo,
        hi, f_hi, d_hi, wolfe, a, errors, widths,
    )  # fmt: skip


def search(s: Settings, f, state, params, updates, line: Line, g0) -> Zoom:
    """Algorithms 3.5 and 3.6 from the first trial step; `g0`: ∇f at params."""
    dtype = line.f0.dtype
    descent = jnp.isfinite(line.f0) & jnp.isfinite(line.d0) & (line.d0 < 0)

    def body_fn(c: Zoom) -> Zoom:
        fa, ga = jax.value_and_grad(f)(tu.add_scale(params, c.trial, updates))
        ga = tu.cast_like(ga, params)
        da = real_vdot(updates, conj(ga), dtype)
        return zoom_step(s, line, c, jnp.asarray(fa).astype(dtype), da, ga)

    zero, false = jnp.zeros((), dtype), jnp.zeros((), bool)
    no_errors = (jnp.asarray(jnp.inf, dtype), jnp.asarray(jnp.inf, dtype))
    trial = first_trial(
        s.initial_guess_strategy, s.max_step, state, line.f0, line.d0, updates
    )
    # Nothing tried: lo = 0 with f, slope and ∇f at the start.
    start = Zoom(
        jnp.int32(0), ~descent, false, trial,
        zero, line.f0, line.d0, g0, no_errors, zero, line.f0, line.d0,
        false, zero, no_errors, no_errors,
    )  # fmt: skip
    return jax.lax.while_loop(lambda c: ~c.done, body_fn, start)
