"""Backtracking line search: shrink the step until the Armijo condition holds.

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.4 and
Algorithm 3.1. See `gradtransforms.second_order.linesearch` for the calling
convention shared by the line searches.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import Evaluation, evaluation_property, objective
from gradtransforms.second_order.linesearch.steps import scaled_or_zero
from gradtransforms.validation import (
    check_bool,
    check_factor,
    check_fraction,
    check_max_step,
    check_positive_int,
)

__all__ = ["ScaleByBacktrackingLinesearchState", "scale_by_backtracking_linesearch"]


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of `scale_by_backtracking_linesearch`."""

    learning_rate: jax.Array  # scalar: the step ε* of the last update (0: failed)
    guess: jax.Array  # scalar: the first trial step of the next update
    evaluation: Evaluation  # f (and ∇f if store_grad) at params + updates

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int = 30,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    store_grad: bool = False,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Backtracking line search: shrink the step until the Armijo condition holds.

    $$f(\\theta + \\varepsilon u) \\le f(\\theta) + c_1\\, \\varepsilon\\,
    \\min(\\langle u, g\\rangle, 0), \\qquad \\varepsilon = \\varepsilon_0,
    \\beta\\varepsilon_0, \\beta^2\\varepsilon_0, \\dots$$

    (Nocedal & Wright eq. 3.4 with backtracking, their Algorithm 3.1). The
    first trial $\\varepsilon_0$ is the last accepted step times
    `increase_factor`, capped at `max_learning_rate` (after a failure the
    previous first trial is kept). A trial whose value is `inf` or `nan`
    fails the test, so the step shrinks. When the decrease asked for is
    below the rounding of $f$ ($100\\,\\epsilon_\\text{mach}|f(\\theta)|$),
    a trial whose value is within that much of $f(\\theta)$ passes (near a
    minimum the search would otherwise stall). The `min(., 0)` keeps a direction
    that is not a descent direction from increasing $f$. If no trial passes
    within `max_backtracking_steps`, the update is exactly zero.

    Args:
      max_backtracking_steps: most trials (evaluations of $f$) per update.
      slope_rtol: $c_1 \\in (0, 1)$, the fraction of the linear decrease
        required.
      decrease_factor: the shrink factor $1/\\beta > 1$ between trials is
        `1 / decrease_factor`; `decrease_factor` $\\in (0, 1)$ (optax's name).
      increase_factor: factor $\\ge 1$ applied to the last accepted step to
        get the next first trial (`inf`: always start at
        `max_learning_rate`).
      max_learning_rate: the largest step tried.
      store_grad: also evaluate $\\nabla f$ at each trial, so the state holds
        the gradient at the accepted point for the next iteration (each trial
        then counts one gradient evaluation).
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(updates, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns
      $\\varepsilon^* u$ and a `ScaleByBacktrackingLinesearchState`.
    """
    check_positive_int("max_backtracking_steps", max_backtracking_steps)
    check_fraction("slope_rtol", slope_rtol)
    check_fraction("decrease_factor", decrease_factor)
    if increase_factor != 1:
        check_factor("increase_factor", increase_factor, allow_inf=True)
    check_max_step("max_learning_rate", max_learning_rate)
    if max_learning_rate is None:
        raise TypeError("max_learning_rate must be a number > 0; got None.")
    check_bool("store_grad", store_grad)
    check_bool("has_aux", has_aux)

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.zeros((), dtype),
            guess=jnp.asarray(max_learning_rate, dtype),
            evaluation=Evaluation.start(
                jnp.asarray(jnp.inf, dtype),
                tu.zeros_like(params) if store_grad else None,
            ),
        )

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra):
        f = objective(value_fn, extra, has_aux, "scale_by_backtracking_linesearch")
        dtype = state.guess.dtype
        f0 = jnp.asarray(value).astype(dtype)
        slope = jnp.minimum(tu.vdot(updates, grad).astype(dtype), 0)
        searchable = jnp.isfinite(f0) & jnp.isfinite(slope)
        noise = 100 * jnp.finfo(dtype).eps * jnp.abs(f0)
        grad0 = tu.cast_like(grad, params) if store_grad else None

        def evaluate(step):
            trial = tu.add_scale(params, step, updates)
            if store_grad:
                fx, gx = jax.value_and_grad(f)(trial)
                return jnp.asarray(fx).astype(dtype), tu.cast_like(gx, params)
            return jnp.asarray(f(trial)).astype(dtype), None

        def cond_fn(carry):
            i, _, accepted, _, _ = carry
            return ~accepted & (i < max_backtracking_steps)

        def body_fn(carry):
            i, step, _, _, _ = carry
            step = jnp.where(i > 0, step * decrease_factor, step).astype(dtype)
            fx, gx = evaluate(step)
            wanted = slope_rtol * step * slope
            # A decrease asked for below rounding cannot be seen: accept a
            # value within rounding of f(θ) then (as the zoom search does).
            in_noise = (-wanted <= noise) & (fx <= f0 + noise)
            ok = jnp.isfinite(fx) & ((fx <= f0 + wanted) | in_noise)
            if store_grad:
                ok &= tu.all_finite(gx)
            return i + 1, step, ok, fx, gx

        carry = (jnp.int32(0), state.guess, ~searchable, f0, grad0)
        n, step, accepted, fx, gx = jax.lax.while_loop(cond_fn, body_fn, carry)
        accepted &= searchable
        step = jnp.where(accepted, step, jnp.zeros((), dtype))
        if store_grad:
            gx = tu.where(accepted, gx, grad0)
        new_guess = jnp.minimum(step * increase_factor, max_learning_rate)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=step,
            guess=jnp.where(accepted, new_guess, state.guess).astype(dtype),
            evaluation=Evaluation(
                value=jnp.where(accepted, fx, f0),
                grad=gx,
                num_fun_evals=n,
                num_grad_evals=n if store_grad else jnp.int32(0),
            ),
        )
        return scaled_or_zero(step, updates), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
