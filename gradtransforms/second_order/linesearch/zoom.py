"""Line search for a step satisfying the strong Wolfe conditions (the "zoom" search).

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.7,
Algorithms 3.5 and 3.6, cubic interpolation eq. 3.59 and initial step
eq. 3.60.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import Evaluation, evaluation_property, objective
from gradtransforms.second_order.linesearch.steps import scaled_or_zero
from gradtransforms.validation import (
    check_bool,
    check_choice,
    check_factor,
    check_fraction,
    check_max_step,
    check_positive_int,
)

__all__ = ["ScaleByZoomLinesearchState", "scale_by_zoom_linesearch"]


class ScaleByZoomLinesearchState(NamedTuple):
    """State of `scale_by_zoom_linesearch`."""

    learning_rate: jax.Array  # scalar: the step ε* of the last update (0: failed)
    prev_value: jax.Array  # scalar: f at the params of the last update
    wolfe: jax.Array  # bool: the last step satisfies the strong Wolfe conditions
    evaluation: Evaluation  # f and ∇f at params + updates, and the trials made

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


class _Zoom(NamedTuple):
    """Carry of the zoom loop: the bracket [lo, hi] and the next trial."""

    count: jax.Array
    done: jax.Array
    zooming: jax.Array  # False while bracketing (Alg. 3.5), True in zoom (3.6)
    trial: jax.Array
    lo: jax.Array  # best step so far with sufficient decrease (0 at first)
    f_lo: jax.Array
    d_lo: jax.Array
    g_lo: Any
    hi: jax.Array
    f_hi: jax.Array
    d_hi: jax.Array
    wolfe: jax.Array


def _cubic_minimiser(a, fa, da, b, fb, db):
    """Minimiser of the cubic through (a, fa, da), (b, fb, db) (N&W eq. 3.59)."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    d2 = jnp.sign(b - a) * jnp.sqrt(d1 * d1 - da * db)
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)


def _next_in_bracket(lo, f_lo, d_lo, hi, f_hi, d_hi):
    """Cubic interpolation, safeguarded to the middle 80% of the bracket.

    Falls back to bisection when the cubic is undefined (a non-finite value
    at an end, no real minimiser) or its minimiser is too close to an end.
    """
    x = _cubic_minimiser(lo, f_lo, d_lo, hi, f_hi, d_hi)
    left, right = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    margin = 0.1 * (right - left)
    inside = jnp.isfinite(x) & (x >= left + margin) & (x <= right - margin)
    return jnp.where(inside, x, 0.5 * (lo + hi))


class _Settings(NamedTuple):
    """The search's fixed settings (validated by `scale_by_zoom_linesearch`)."""

    max_steps: int
    max_step: float
    increase_factor: float
    slope_rtol: float
    curv_rtol: float
    initial_guess_strategy: str


class _Line(NamedTuple):
    """What one update knows about the line before its first trial."""

    f0: jax.Array  # f at the start
    d0: jax.Array  # the slope <u, g> at the start (< 0 for a descent direction)
    noise: jax.Array  # 100 ε_mach |f0|: decreases below this are rounding


def _first_trial(
    settings: _Settings, state: Any, line: _Line, updates: Any
) -> jax.Array:
    """The first trial step: 1, the last accepted step, or N&W eq. 3.60."""
    one = jnp.ones((), line.f0.dtype)
    if settings.initial_guess_strategy == "one":
        guess = one
    elif settings.initial_guess_strategy == "keep":
        guess = jnp.where(state.learning_rate > 0, state.learning_rate, one)
    else:
        quad = 2.02 * (line.f0 - state.prev_value) / line.d0
        first = jnp.minimum(one, 1 / tu.global_norm(updates).astype(line.f0.dtype))
        guess = jnp.where(jnp.isfinite(quad) & (quad > 0), quad, one)
        guess = jnp.where(jnp.isfinite(state.prev_value), guess, first)
        guess = jnp.minimum(guess, one)
    return jnp.minimum(guess, settings.max_step).astype(line.f0.dtype)


def _zoom_step(
    settings: _Settings, line: _Line, c: _Zoom, fa: jax.Array, da: jax.Array, ga: Any
) -> _Zoom:
    """Update the bracket with the trial `c.trial` (value `fa`, slope `da`)."""
    a, dtype = c.trial, line.f0.dtype
    finite = jnp.isfinite(fa) & jnp.isfinite(da)
    # Sufficient decrease, and lower than the best point so far. When the
    # decrease asked for is below rounding, a value within rounding of the
    # best so far counts as one (Hager & Zhang's approximate Wolfe
    # conditions): the slopes then decide.
    c1_decrease = settings.slope_rtol * a * line.d0
    flat = (fa <= c.f_lo + line.noise) & (-c1_decrease <= line.noise)
    sufficient = (fa <= line.f0 + c1_decrease) & (fa < c.f_lo)
    good = finite & (sufficient | flat)
    curvature = jnp.abs(da) <= settings.curv_rtol * jnp.abs(line.d0)
    wolfe = good & curvature
    # The far end moves back to the old `lo` when the slope at the new `lo`
    # points towards it (Alg. 3.5, phi' >= 0; Alg. 3.6, last test).
    towards = jnp.where(c.zooming, da * (c.hi - c.lo) >= 0, da >= 0)
    hi_is_old_lo = good & ~curvature & towards
    hi_is_a = ~good
    at_cap = ~c.zooming & good & ~curvature & ~towards & (a >= settings.max_step)
    zooming = c.zooming | hi_is_a | hi_is_old_lo

    def pick(new, old_lo, old):
        return jnp.where(hi_is_a, new, jnp.where(hi_is_old_lo, old_lo, old))

    hi, f_hi, d_hi = (
        pick(a, c.lo, c.hi),
        pick(fa, c.f_lo, c.f_hi),
        pick(da, c.d_lo, c.d_hi),
    )
    lo = jnp.where(good, a, c.lo)
    f_lo = jnp.where(good, fa, c.f_lo)
    d_lo = jnp.where(good, da, c.d_lo)
    g_lo = tu.where(good, ga, c.g_lo)
    grown = jnp.minimum(a * settings.increase_factor, settings.max_step).astype(dtype)
    trial = jnp.where(zooming, _next_in_bracket(lo, f_lo, d_lo, hi, f_hi, d_hi), grown)
    count = c.count + 1
    tiny = jnp.abs(hi - lo) <= jnp.finfo(dtype).eps * jnp.maximum(lo, hi)
    done = wolfe | at_cap | (count >= settings.max_steps) | (zooming & tiny)
    return _Zoom(
        count, done, zooming, trial.astype(dtype), lo, f_lo, d_lo, g_lo,
        hi, f_hi, d_hi, wolfe,
    )  # fmt: skip


def scale_by_zoom_linesearch(
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    initial_guess_strategy: str = "keep",
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Line search for a step satisfying the strong Wolfe conditions.

    $$f(\\theta + \\varepsilon u) \\le f(\\theta) + c_1 \\varepsilon
    \\langle u, g\\rangle, \\qquad |\\langle u, \\nabla f(\\theta +
    \\varepsilon u)\\rangle| \\le c_2 |\\langle u, g\\rangle|$$

    (Nocedal & Wright eq. 3.7), by their Algorithm 3.5: trial steps grow by
    `increase_factor` until they bracket an acceptable step, then Algorithm
    3.6 ("zoom") shrinks the bracket by safeguarded cubic interpolation
    (eq. 3.59). Every trial costs one value-and-gradient evaluation. A trial
    with a non-finite value or slope is treated as a step too long: it
    becomes the far end of the bracket, so the next trial is shorter. If no
    step satisfying both conditions is found within `max_linesearch_steps`,
    the best step with sufficient decrease found is used; if there is none
    (or $u$ is not a descent direction), the update is exactly zero. Near a
    minimum the decrease asked for, $c_1 \\varepsilon |\\langle u,
    g\\rangle|$, can fall below the rounding of $f$; when it is below
    $100\\,\\epsilon_\\text{mach}|f(\\theta)|$, a trial whose value is
    within that much of the best value so far counts as a decrease and the
    slopes decide (the approximate Wolfe conditions of Hager & Zhang, 2005);
    without this the search would stall there. BFGS
    and L-BFGS need the curvature condition to keep their inverse-Hessian
    approximation positive definite (it implies $s^\\top y > 0$).

    Args:
      max_linesearch_steps: most trials (evaluations of $f$ and $\\nabla f$)
        per update.
      max_learning_rate: the largest step tried (`None`: no bound).
      increase_factor: growth factor $> 1$ of the trial step while
        bracketing.
      slope_rtol: $c_1 \\in (0, 1)$ of the sufficient-decrease condition.
      curv_rtol: $c_2 \\in (c_1, 1)$ of the curvature condition (0.9 for
        quasi-Newton and Newton methods, 0.1 for conjugate gradients).
      initial_guess_strategy: the first trial step: `"one"` (1, for
        (quasi-)Newton directions), `"keep"` (the last accepted step, optax's
        default) or `"quadratic"` (N&W eq. 3.60:
        $\\min(1, 2.02 (f_k - f_{k-1}) / \\langle u, g\\rangle)$, for
        conjugate gradients; at the first update, where $f_{k-1}$ is not
        known, $\\min(1, 1/\\lVert u\\rVert)$, a step of length at most 1).
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(updates, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns
      $\\varepsilon^* u$ and a `ScaleByZoomLinesearchState`.
    """
    check_positive_int("max_linesearch_steps", max_linesearch_steps)
    check_max_step("max_learning_rate", max_learning_rate)
    check_factor("increase_factor", increase_factor)
    check_fraction("slope_rtol", slope_rtol)
    check_fraction("curv_rtol", curv_rtol)
    if float(curv_rtol) <= float(slope_rtol):
        raise ValueError(
            f"curv_rtol must be greater than slope_rtol (0 < c1 < c2 < 1); got "
            f"curv_rtol={curv_rtol!r}, slope_rtol={slope_rtol!r}."
        )
    check_choice(
        "initial_guess_strategy", initial_guess_strategy, ("one", "keep", "quadratic")
    )
    check_bool("has_aux", has_aux)
    settings = _Settings(
        max_steps=max_linesearch_steps,
        max_step=jnp.inf if max_learning_rate is None else max_learning_rate,
        increase_factor=increase_factor,
        slope_rtol=slope_rtol,
        curv_rtol=curv_rtol,
        initial_guess_strategy=initial_guess_strategy,
    )

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones((), dtype),
            prev_value=jnp.asarray(jnp.inf, dtype),
            wolfe=jnp.zeros((), bool),
            evaluation=Evaluation.start(
                jnp.asarray(jnp.inf, dtype), tu.zeros_like(params)
            ),
        )

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra):
        f = objective(value_fn, extra, has_aux, "scale_by_zoom_linesearch")
        dtype = state.prev_value.dtype
        f0 = jnp.asarray(value).astype(dtype)
        d0 = tu.vdot(updates, grad).astype(dtype)
        line = _Line(f0, d0, 100 * jnp.finfo(dtype).eps * jnp.abs(f0))
        descent = jnp.isfinite(f0) & jnp.isfinite(d0) & (d0 < 0)

        def body_fn(c: _Zoom) -> _Zoom:
            fa, ga = jax.value_and_grad(f)(tu.add_scale(params, c.trial, updates))
            ga = tu.cast_like(ga, params)
            da = tu.vdot(updates, ga).astype(dtype)
            return _zoom_step(settings, line, c, jnp.asarray(fa).astype(dtype), da, ga)

        zero, false = jnp.zeros((), dtype), jnp.zeros((), bool)
        start = _Zoom(
            count=jnp.int32(0),
            done=~descent,
            zooming=false,
            trial=_first_trial(settings, state, line, updates),
            lo=zero,
            f_lo=f0,
            d_lo=d0,
            g_lo=tu.cast_like(grad, params),
            hi=zero,
            f_hi=f0,
            d_hi=d0,
            wolfe=false,
        )
        end = jax.lax.while_loop(lambda c: ~c.done, body_fn, start)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=end.lo,
            prev_value=f0,
            wolfe=end.wolfe,
            evaluation=Evaluation(end.f_lo, end.g_lo, end.count, end.count),
        )
        return scaled_or_zero(end.lo, updates), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
