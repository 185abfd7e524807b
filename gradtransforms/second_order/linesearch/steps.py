"""Steps: the one a line search returns, and the trial steps it interpolates.

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.59 for the
cubic interpolation and eq. 3.60 for the first trial step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu

__all__ = ["cubic_minimiser", "first_trial", "next_in_bracket", "scaled_or_zero"]


def scaled_or_zero(step: jax.Array, updates: Any) -> Any:
    """`step * updates` if `step > 0`, else exact zeros (never `0 * nan`)."""
    return tu.where(step > 0, tu.scale(step, updates), tu.zeros_like(updates))


def cubic_minimiser(a, fa, da, b, fb, db):
    """Minimiser of the cubic through (a, fa, da), (b, fb, db) (N&W eq. 3.59)."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    d2 = jnp.sign(b - a) * jnp.sqrt(d1 * d1 - da * db)
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)


def next_in_bracket(lo, f_lo, d_lo, hi, f_hi, d_hi):
    """Cubic interpolation, safeguarded to the middle 80% of the bracket.

    A minimiser of the cubic closer than 10% of the bracket to an end, or
    outside it, is clamped to the 10% point (a trial step far too long is
    then cut by 10x a trial, where halving would need 3.3 trials); the
    bracket is bisected only when the cubic is undefined (a non-finite value
    at an end, no real minimiser). The zoom search also bisects when two
    trials have not shrunk the bracket to 2/3 (Moré & Thuente, 1994).
    """
    x = cubic_minimiser(lo, f_lo, d_lo, hi, f_hi, d_hi)
    left, right = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    margin = 0.1 * (right - left)
    clamped = jnp.clip(x, left + margin, right - margin)
    return jnp.where(jnp.isfinite(x), clamped, 0.5 * (lo + hi))


def first_trial(
    strategy: str,
    max_step: jax.Array,
    state: Any,
    f0: jax.Array,
    d0: jax.Array,
    updates: Any,
) -> jax.Array:
    """The first trial step of the zoom search, capped at `max_step`.

    `"one"`: 1. `"keep"`: the last accepted step `state.learning_rate` (1
    when it is 0). `"quadratic"`: N&W eq. 3.60, $\\min(1, 2.02 (f_k -
    f_{k-1}) / \\langle u, g\\rangle)$ with $f_{k-1}$ = `state.prev_value`,
    or $\\min(1, 1/\\lVert u\\rVert)$ when that is not known. Whatever the
    strategy, after a failed search (`state.retry_step > 0`) the search
    resumes from the trial step it would have tried next.
    """
    one = jnp.ones((), f0.dtype)
    if strategy == "one":
        guess = one
    elif strategy == "keep":
        guess = jnp.where(state.learning_rate > 0, state.learning_rate, one)
    else:
        quad = 2.02 * (f0 - state.prev_value) / d0
        first = jnp.minimum(one, 1 / tu.global_norm(updates).astype(f0.dtype))
        guess = jnp.where(jnp.isfinite(quad) & (quad > 0), quad, one)
        guess = jnp.where(jnp.isfinite(state.prev_value), guess, first)
        guess = jnp.minimum(guess, one)
    guess = jnp.where(state.retry_step > 0, state.retry_step, guess)
    return jnp.minimum(guess, max_step).astype(f0.dtype)
