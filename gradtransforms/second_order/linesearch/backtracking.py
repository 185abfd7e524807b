"""Backtracking line search: shrink the step until the Armijo condition holds.

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.4 and
Algorithm 3.1, with optax's tolerances (`atol`, `rtol`). See
`gradtransforms.second_order.linesearch` for the calling convention shared
by the line searches.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import (
    Evaluation,
    check_call,
    evaluation_property,
    objective,
)
from gradtransforms.second_order.complex_params import conj, real_vdot
from gradtransforms.second_order.linesearch.diagnostics import (
    BacktrackingLinesearchInfo,
    BacktrackingOutcome,
    criterion_error,
    report_backtracking,
)
from gradtransforms.second_order.linesearch.steps import scaled_or_zero
from gradtransforms.validation import (
    check_bool,
    check_fraction,
    check_max_step,
    check_non_negative,
    check_positive_int,
    check_unit_interval,
    is_concrete_number,
)

__all__ = ["ScaleByBacktrackingLinesearchState", "scale_by_backtracking_linesearch"]


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of `scale_by_backtracking_linesearch`."""

    learning_rate: jax.Array  # scalar: the step ε* of the last update (0: failed)
    guess: jax.Array  # scalar: the first trial step of the next update
    evaluation: Evaluation  # f (and ∇f if store_grad) at params + updates
    info: BacktrackingLinesearchInfo  # optax's record of the last update

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


class _Settings(NamedTuple):
    """The search's fixed settings (validated by the constructor)."""

    max_steps: int
    slope_rtol: Any
    decrease_factor: Any
    atol: Any
    rtol: Any
    store_grad: bool


class _Trial(NamedTuple):
    """Carry of the backtracking loop: the last trial and its verdict."""

    count: jax.Array
    step: jax.Array
    accepted: jax.Array
    value: jax.Array
    grad: Any
    decrease_error: jax.Array


def _as(dtype: Any, *numbers: Any) -> tuple[jax.Array, ...]:
    """Hyperparameters (numbers or arrays of any dtype) as scalars of `dtype`."""
    return tuple(jnp.asarray(x).astype(dtype) for x in numbers)


def _search(s: _Settings, f, params, updates, f0, slope, grad0, guess) -> _Trial:
    """Trials `guess`, `guess·β`, `guess·β²`, ... until one passes (or the last)."""
    dtype = f0.dtype
    c1, beta, atol, rtol = _as(dtype, s.slope_rtol, s.decrease_factor, s.atol, s.rtol)
    noise = 100 * jnp.finfo(dtype).eps * jnp.abs(f0)

    def body_fn(c: _Trial) -> _Trial:
        step = jnp.where(c.count > 0, c.step * beta, c.step).astype(dtype)
        trial = tu.add_scale(params, step, updates)
        if s.store_grad:
            fx, gx = jax.value_and_grad(f)(trial)
            gx = tu.cast_like(gx, params)
        else:
            fx, gx = f(trial), None
        fx = jnp.asarray(fx).astype(dtype)
        threshold = (1 + rtol) * f0 + c1 * step * slope
        error = criterion_error(fx - threshold)
        # A positive decrease asked for but below rounding cannot be seen:
        # a value within rounding of f(θ) passes then.
        asked = f0 - threshold - atol
        in_noise = (asked > 0) & (asked <= noise) & (fx <= f0 + noise)
        ok = jnp.isfinite(fx) & ((error <= atol) | in_noise)
        if s.store_grad:
            ok &= tu.all_finite(gx)
        return _Trial(c.count + 1, step, ok, fx, gx, error)

    searchable = jnp.isfinite(f0) & jnp.isfinite(slope)
    start = _Trial(
        jnp.int32(0), guess, ~searchable, f0, grad0, jnp.asarray(jnp.inf, dtype)
    )
    end = jax.lax.while_loop(
        lambda c: ~c.accepted & (c.count < s.max_steps), body_fn, start
    )
    return end._replace(accepted=end.accepted & searchable)


def _check(slope_rtol, increase_factor, max_learning_rate, atol, rtol) -> None:
    check_unit_interval("slope_rtol", slope_rtol)
    check_fraction("increase_factor", increase_factor, 1.0, math.inf, closed=True)
    if max_learning_rate is None:
        raise TypeError("max_learning_rate must be a number > 0; got None.")
    check_max_step("max_learning_rate", max_learning_rate)
    if all(
        is_concrete_number(x) and math.isinf(x)
        for x in (increase_factor, max_learning_rate)
    ):
        raise ValueError(
            "increase_factor=inf starts every search at max_learning_rate, which "
            "must then be finite; got max_learning_rate=inf (every trial would "
            "be an infinite step, and no step would be taken)."
        )
    check_non_negative("atol", atol)
    check_non_negative("rtol", rtol)


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int = 30,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
    *,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Backtracking line search: shrink the step until the Armijo condition holds.

    $$f(\\theta + \\varepsilon u) \\le (1 + \\delta) f(\\theta) + c_1\\,
    \\varepsilon\\, \\min(\\langle u, g\\rangle, 0) + \\epsilon, \\qquad
    \\varepsilon = \\varepsilon_0, \\beta\\varepsilon_0,
    \\beta^2\\varepsilon_0, \\dots$$

    (Nocedal & Wright eq. 3.4 with backtracking, their Algorithm 3.1; with
    $\\delta$ = `rtol` and $\\epsilon$ = `atol`, optax's criterion). The
    first trial $\\varepsilon_0$ is the last accepted step times
    `increase_factor`, capped at `max_learning_rate` (at the first update,
    `increase_factor` capped likewise: optax's start from a step of 1; after
    a failure the previous first trial is kept). A trial whose value is `inf`
    or `nan` fails the test, so the step shrinks. When the decrease the
    criterion asks for is positive but below the rounding of $f$
    ($100\\,\\epsilon_\\text{mach}|f(\\theta)|$), a trial whose value is
    within that much of $f(\\theta)$ passes (near a minimum the search would
    otherwise stall). The `min(., 0)` keeps a direction that is not a descent
    direction from increasing $f$. If no trial passes within
    `max_backtracking_steps`, the update is exactly zero (optax would take
    the last trial step unless its value is not finite). For complex
    parameters $\\langle u, g\\rangle$ is
    $\\operatorname{Re}\\sum \\bar u g$ (see
    `gradtransforms.second_order.complex_params`).

    Args:
      max_backtracking_steps: most trials (evaluations of $f$) per update,
        as optax (which requires it; 30 here).
      slope_rtol: $c_1 \\in [0, 1)$, the fraction of the linear decrease
        required, as optax.
      decrease_factor: $\\beta \\in (0, 1)$, the factor shrinking the step
        between trials, as optax.
      increase_factor: factor applied to the last accepted step to get the
        next first trial, as optax: 1 keeps it, $> 1$ grows it, `inf`
        always starts at `max_learning_rate` (which must then be finite).
      max_learning_rate: the largest step tried, as optax; `inf` for no
        bound (the first trial is then `increase_factor`).
      atol: $\\epsilon \\ge 0$, the absolute tolerance of the criterion, as
        optax.
      rtol: $\\delta \\ge 0$, the relative tolerance of the criterion (on
        $f(\\theta)$), as optax.
      store_grad: also evaluate $\\nabla f$ at each trial, so the state holds
        the gradient at the accepted point for the next iteration (each trial
        then counts one gradient evaluation), as optax.
      verbose: print a diagnosis (with `jax.debug.callback`) when no trial
        passes, as optax.
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(updates, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns
      $\\varepsilon^* u$ and a `ScaleByBacktrackingLinesearchState`, whose
      `info` is optax's record (`num_linesearch_steps`, `decrease_error`).
    """
    check_positive_int("max_backtracking_steps", max_backtracking_steps)
    check_fraction("decrease_factor", decrease_factor)
    _check(slope_rtol, increase_factor, max_learning_rate, atol, rtol)
    check_bool("store_grad", store_grad)
    check_bool("verbose", verbose)
    check_bool("has_aux", has_aux)
    settings = _Settings(
        max_backtracking_steps, slope_rtol, decrease_factor, atol, rtol, store_grad
    )

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        increase, largest = _as(dtype, increase_factor, max_learning_rate)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.zeros((), dtype),
            guess=jnp.minimum(increase, largest),
            evaluation=Evaluation.start(
                jnp.asarray(jnp.inf, dtype),
                tu.zeros_like(params) if store_grad else None,
            ),
            info=BacktrackingLinesearchInfo(jnp.int32(0), jnp.asarray(jnp.inf, dtype)),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, **extra):
        owner = "scale_by_backtracking_linesearch"
        value_fn = extra.pop("value_fn", None)
        needs = {"value": value, "grad": grad, "value_fn": value_fn}
        check_call(owner, updates, params, state.evaluation, **needs)
        f = objective(value_fn, extra, has_aux, owner)
        dtype = state.guess.dtype
        f0 = jnp.asarray(value).astype(dtype)
        slope = jnp.minimum(real_vdot(updates, grad, dtype), 0)
        grad0 = conj(tu.cast_like(grad, params)) if store_grad else None
        end = _search(settings, f, params, updates, f0, slope, grad0, state.guess)
        step = jnp.where(end.accepted, end.step, jnp.zeros((), dtype))
        if verbose:
            report_backtracking(
                BacktrackingOutcome(
                    ~end.accepted, f0, slope, end.step, end.decrease_error
                )
            )
        increase, largest = _as(dtype, increase_factor, max_learning_rate)
        new_guess = jnp.minimum(step * increase, largest)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=step,
            guess=jnp.where(end.accepted, new_guess, state.guess).astype(dtype),
            evaluation=Evaluation(
                value=jnp.where(end.accepted, end.value, f0),
                grad=tu.where(end.accepted, end.grad, grad0) if store_grad else None,
                num_fun_evals=end.count,
                num_grad_evals=end.count if store_grad else jnp.int32(0),
            ),
            info=BacktrackingLinesearchInfo(end.count, end.decrease_error),
        )
        return scaled_or_zero(step, updates), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
