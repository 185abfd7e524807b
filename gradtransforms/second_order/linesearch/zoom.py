"""Line search for a step satisfying the strong Wolfe conditions (the "zoom" search).

Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), eq. 3.7,
Algorithms 3.5 and 3.6, cubic interpolation eq. 3.59 and initial step
eq. 3.60; Hager & Zhang's approximate Wolfe conditions (2005) near a minimum.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import (
    Evaluation,
    check_call,
    evaluation_property,
    objective,
)
from gradtransforms.second_order.complex_params import conj, real_vdot
from gradtransforms.second_order.linesearch.bracket import (
    Line,
    Settings,
    Zoom,
    search,
)
from gradtransforms.second_order.linesearch.diagnostics import (
    ZoomLinesearchInfo,
    ZoomOutcome,
    report_zoom,
)
from gradtransforms.second_order.linesearch.steps import scaled_or_zero
from gradtransforms.validation import (
    check_bool,
    check_choice,
    check_factor,
    check_fraction,
    check_max_step,
    check_non_negative,
    check_positive_int,
    concrete_values,
)

__all__ = ["ScaleByZoomLinesearchState", "scale_by_zoom_linesearch"]


class ScaleByZoomLinesearchState(NamedTuple):
    """State of `scale_by_zoom_linesearch`."""

    learning_rate: jax.Array  # scalar: the step ε* of the last update (0: failed)
    prev_value: jax.Array  # scalar: f at the params of the last update
    wolfe: jax.Array  # bool: the last step satisfies the strong Wolfe conditions
    retry_step: jax.Array  # scalar: after a failed search, the next trial it had
    evaluation: Evaluation  # f and ∇f at params + updates, and the trials made
    info: ZoomLinesearchInfo  # optax's record of the last update

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


def _report(s: Settings, line: Line, end: Zoom) -> None:
    """`verbose`: print a diagnosis unless the step satisfies both conditions."""
    width = jnp.where(end.zooming, jnp.abs(end.hi - end.lo), jnp.inf)
    report_zoom(
        ZoomOutcome(
            wolfe=end.wolfe,
            value=line.f0,
            slope=line.d0,
            last_trial=end.tried,
            decrease_error=end.errors[0],
            curvature_error=end.errors[1],
            step=end.lo,
            interval_not_found=~end.zooming & ~end.wolfe & (end.lo >= s.max_step),
            interval_length=width.astype(line.f0.dtype),
            stepsize_precision=s.stepsize_precision,
        )
    )


def _check(max_learning_rate, tol, slope_rtol, curv_rtol, approx_dec_rtol) -> None:
    check_max_step("max_learning_rate", max_learning_rate)
    check_non_negative("tol", tol)
    check_fraction("slope_rtol", slope_rtol)
    c2, c1 = concrete_values(curv_rtol), concrete_values(slope_rtol)
    if c2 is None or not np.all(c2 == np.inf):  # inf: no curvature condition
        check_fraction("curv_rtol", curv_rtol)
    if c2 is not None and c1 is not None and not np.all(c2 > c1):
        raise ValueError(
            f"curv_rtol must be greater than slope_rtol (0 < c1 < c2 < 1, or "
            f"c2 = inf); got curv_rtol={curv_rtol!r}, slope_rtol={slope_rtol!r}."
        )
    if approx_dec_rtol is not None:
        check_non_negative("approx_dec_rtol", approx_dec_rtol)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
    *,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Line search for a step satisfying the strong Wolfe conditions.

    $$f(\\theta + \\varepsilon u) \\le f(\\theta) + c_1 \\varepsilon
    \\langle u, g\\rangle + \\epsilon, \\qquad |\\langle u, \\nabla
    f(\\theta + \\varepsilon u)\\rangle| \\le c_2 |\\langle u, g\\rangle| +
    \\epsilon$$

    (Nocedal & Wright eq. 3.7, with optax's tolerance $\\epsilon$ = `tol`),
    by their Algorithm 3.5: trial steps grow by `increase_factor` until they
    bracket an acceptable step, then Algorithm 3.6 ("zoom") shrinks the
    bracket by cubic interpolation (eq. 3.59), clamped to its middle 80%,
    bisecting when two trials fail to shrink it to 2/3. A non-finite value or
    slope is treated as a step too long: it becomes the far end of the
    bracket, so the next trial is shorter. The search ends at a step
    satisfying both conditions; at `max_learning_rate` if that step still
    has sufficient decrease but the curvature condition asks for more (as
    optax); when the bracket is narrower than `stepsize_precision` and a step
    with sufficient decrease is known, or narrowed to rounding; or after
    `max_linesearch_steps` trials. If it ends without a step satisfying both
    conditions, the best step with sufficient decrease found is used; if
    there is none (or $u$ is not a descent direction), the update is exactly
    zero, and the next update's search starts from the trial step this one
    would have tried next (whatever `initial_guess_strategy`): a first trial
    far too long is cut down over several updates instead of being retried.

    Near a minimum the decrease asked for, $c_1 \\varepsilon |\\langle u,
    g\\rangle|$, falls below the rounding of $f$, and the search would
    stall. With `approx_dec_rtol` $= c_3$ a trial also passes the decrease
    test by Hager & Zhang's approximate condition (2005, eq. 23, as optax):

    $$\\langle u, \\nabla f(\\theta + \\varepsilon u)\\rangle \\le (1 -
    2c_1) |\\langle u, g\\rangle| + \\epsilon \\ \\text{ and } \\ f(\\theta +
    \\varepsilon u) \\le f(\\theta) + c_3 |f(\\theta)| + \\epsilon.$$

    And while zooming, when the decrease asked for is below the rounding of
    $f$ ($100\\,\\epsilon_\\text{mach}|f(\\theta)|$), a trial whose value is
    within that much of the best so far counts as a decrease: the slopes
    decide, and the bracket is bisected (interpolating rounding is
    meaningless). Without this the search would stall near a minimum, even
    with `approx_dec_rtol=None`.

    BFGS and L-BFGS need the curvature condition to keep their
    inverse-Hessian approximation positive definite (it implies
    $s^\\top y > 0$). For complex parameters $\\langle u, g\\rangle$ is
    $\\operatorname{Re}\\sum \\bar u g$ (see
    `gradtransforms.second_order.complex_params`).

    Args:
      max_linesearch_steps: most trials (evaluations of $f$ and $\\nabla f$)
        per update, as optax (which requires it; 30 here).
      max_learning_rate: the largest step tried (`None`: no bound), as optax.
      tol: $\\epsilon \\ge 0$, the tolerance on both conditions, as optax.
      increase_factor: growth factor $> 1$ of the trial step while
        bracketing, as optax.
      slope_rtol: $c_1 \\in (0, 1)$ of the sufficient-decrease condition, as
        optax.
      curv_rtol: $c_2 \\in (c_1, 1)$ of the curvature condition (0.9 for
        quasi-Newton and Newton methods, 0.1 for conjugate gradients), or
        `inf` to drop the curvature condition (a backtracking search by
        interpolation), as optax.
      approx_dec_rtol: $c_3 \\ge 0$ of the approximate decrease condition
        above, or `None` for the Armijo condition only, as optax (our
        rounding rule above still applies).
      stepsize_precision: the bracket width below which the search ends with
        the best step of sufficient decrease found, if any, as optax.
      initial_guess_strategy: the first trial step: `"one"` (1, for
        (quasi-)Newton directions), `"keep"` (the last accepted step; 1 at
        the first update), as optax, or `"quadratic"`
        (N&W eq. 3.60: $\\min(1, 2.02 (f_k - f_{k-1}) / \\langle u,
        g\\rangle)$, for conjugate gradients; at the first update, where
        $f_{k-1}$ is not known, $\\min(1, 1/\\lVert u\\rVert)$, a step of
        length at most 1). After a failed search, whatever the strategy, the
        next one starts from the trial step the failed one would have tried
        next.
      verbose: print a diagnosis (with `jax.debug.callback`, with optax's
        `FLAG_*` sentences) when the step returned does not satisfy both
        conditions, as optax.
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(updates, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns
      $\\varepsilon^* u$ and a `ScaleByZoomLinesearchState`, whose `info` is
      optax's record (`num_linesearch_steps`, `decrease_error`,
      `curvature_error`).
    """
    check_positive_int("max_linesearch_steps", max_linesearch_steps)
    check_factor("increase_factor", increase_factor)
    _check(max_learning_rate, tol, slope_rtol, curv_rtol, approx_dec_rtol)
    check_non_negative("stepsize_precision", stepsize_precision)
    check_choice(
        "initial_guess_strategy", initial_guess_strategy, ("one", "keep", "quadratic")
    )
    check_bool("verbose", verbose)
    check_bool("has_aux", has_aux)
    settings = Settings(
        max_steps=max_linesearch_steps,
        max_step=jnp.inf if max_learning_rate is None else max_learning_rate,
        tol=tol,
        increase_factor=increase_factor,
        slope_rtol=slope_rtol,
        curv_rtol=curv_rtol,
        approx_dec_rtol=approx_dec_rtol,
        stepsize_precision=stepsize_precision,
        initial_guess_strategy=initial_guess_strategy,
    )

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        inf = jnp.asarray(jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones((), dtype),
            prev_value=inf,
            wolfe=jnp.zeros((), bool),
            retry_step=jnp.zeros((), dtype),
            evaluation=Evaluation.start(inf, tu.zeros_like(params)),
            info=ZoomLinesearchInfo(jnp.int32(0), inf, inf),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, **extra):
        value_fn, owner = extra.pop("value_fn", None), "scale_by_zoom_linesearch"
        needs = {"value": value, "grad": grad, "value_fn": value_fn}
        check_call(owner, updates, params, state.evaluation, **needs)
        f = objective(value_fn, extra, has_aux, owner)
        dtype = state.prev_value.dtype
        s = settings.in_dtype(dtype)
        f0 = jnp.asarray(value).astype(dtype)
        noise = 100 * jnp.finfo(dtype).eps * jnp.abs(f0)
        line = Line(f0, real_vdot(updates, grad, dtype), noise)
        g0 = conj(tu.cast_like(grad, params))
        end = search(s, f, state, params, updates, line, g0)
        if verbose:
            _report(s, line, end)
        stepped = end.lo > 0
        # A failed search resumes, at the next update, where it stopped.
        failed = ~stepped & (end.count > 0) & jnp.isfinite(end.trial)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=end.lo,
            prev_value=f0,
            wolfe=end.wolfe,
            retry_step=jnp.where(failed, end.trial, jnp.zeros_like(end.trial)),
            evaluation=Evaluation(end.f_lo, end.g_lo, end.count, end.count),
            info=ZoomLinesearchInfo(
                end.count,
                jnp.where(stepped, end.errors_lo[0], end.errors[0]),
                jnp.where(stepped, end.errors_lo[1], end.errors[1]),
            ),
        )
        return scaled_or_zero(end.lo, updates), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
