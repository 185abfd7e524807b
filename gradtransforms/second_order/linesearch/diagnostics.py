"""What the line searches report: optax's `info` records and `verbose` messages.

Each line-search state carries an `info` record with optax's field names
(`state.info.num_linesearch_steps`, `decrease_error`, `curvature_error`), so
code written for optax's states reads ours. With `verbose=True` a line search
that fails prints a diagnosis through `jax.debug.callback`, with optax's
`FLAG_*` sentences (word for word, so that a search for them in the output
finds them).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FLAG_CURVATURE_COND_NOT_SATISFIED",
    "FLAG_INTERVAL_NOT_FOUND",
    "FLAG_INTERVAL_TOO_SMALL",
    "FLAG_NOT_A_DESCENT_DIRECTION",
    "FLAG_NO_STEPSIZE_FOUND",
    "BacktrackingLinesearchInfo",
    "BacktrackingOutcome",
    "ZoomLinesearchInfo",
    "ZoomOutcome",
    "criterion_error",
    "report_backtracking",
    "report_zoom",
    "zoom_errors",
]

FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch."
)
FLAG_INTERVAL_TOO_SMALL = (
    "Length of searched interval has been reduced below threshold."
)
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
FLAG_NO_STEPSIZE_FOUND = (
    "Linesearch failed, no stepsize satisfying sufficient decrease found."
)
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


class BacktrackingLinesearchInfo(NamedTuple):
    """The last update of `scale_by_backtracking_linesearch` (optax's fields)."""

    num_linesearch_steps: jax.Array
    """int32: trial steps (evaluations of $f$) made."""
    decrease_error: jax.Array
    """How far the returned step is from the sufficient-decrease criterion
    (0: it holds); when no step passed, that of the last trial (`inf` when
    that value was not finite)."""


class ZoomLinesearchInfo(NamedTuple):
    """The last update of `scale_by_zoom_linesearch` (optax's fields)."""

    num_linesearch_steps: jax.Array
    """int32: trial steps (evaluations of $f$ and $\\nabla f$) made."""
    decrease_error: jax.Array
    """How far the returned step is from the sufficient-decrease criterion
    (0: it holds; a step accepted within the rounding of $f$ can show an
    error below that rounding); when no step was found, that of the last
    trial (`inf` when no trial was made)."""
    curvature_error: jax.Array
    """How far it is from the curvature criterion (0: it holds), likewise."""


def criterion_error(violation: jax.Array) -> jax.Array:
    """optax's error of a criterion: `max(violation, 0)`, `inf` for `nan`."""
    error = jnp.maximum(violation, 0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def zoom_errors(
    slope_rtol, curv_rtol, approx_dec_rtol, f0, d0, step, value, slope
) -> tuple[jax.Array, jax.Array]:
    """optax's decrease and curvature errors of a trial `step` (0: satisfied).

    The decrease error is that of the Armijo condition, $f(\\theta +
    \\varepsilon u) - f(\\theta) - c_1 \\varepsilon \\langle u, g\\rangle$,
    or, when `approx_dec_rtol` $= c_3$ is set and it is nearer, that of Hager
    & Zhang's approximate decrease (their eq. 23): the larger of
    $\\varphi'(\\varepsilon) - (2c_1 - 1)\\varphi'(0)$ and $f(\\theta +
    \\varepsilon u) - f(\\theta) - c_3 |f(\\theta)|$. The curvature error is
    $|\\varphi'(\\varepsilon)| - c_2 |\\varphi'(0)|$. Here $\\varphi'(0)$ =
    `d0` and $\\varphi'(\\varepsilon)$ = `slope`.
    """
    decrease = value - f0 - slope_rtol * step * d0
    if approx_dec_rtol is not None:
        approx = jnp.maximum(
            slope - (2 * slope_rtol - 1) * d0,
            value - f0 - approx_dec_rtol * jnp.abs(f0),
        )
        decrease = jnp.minimum(decrease, approx)
    curvature = jnp.abs(slope) - curv_rtol * jnp.abs(d0)
    return criterion_error(decrease), criterion_error(curvature)


class BacktrackingOutcome(NamedTuple):
    """What `verbose` reports of one backtracking update."""

    failed: jax.Array
    value: jax.Array
    slope: jax.Array
    last_trial: jax.Array
    decrease_error: jax.Array


class ZoomOutcome(NamedTuple):
    """What `verbose` reports of one zoom update."""

    wolfe: jax.Array  # both conditions hold at the returned step
    value: jax.Array  # f at the start
    slope: jax.Array  # <u, g> at the start
    last_trial: jax.Array
    decrease_error: jax.Array  # at the last trial
    curvature_error: jax.Array
    step: jax.Array  # the returned step (0: none)
    interval_not_found: jax.Array  # stopped at max_learning_rate, not bracketed
    interval_length: jax.Array  # |hi - lo| when zooming, else inf
    stepsize_precision: jax.Array


def _print_backtracking(outcome: BacktrackingOutcome) -> None:
    if not bool(outcome.failed):
        return
    print(
        "INFO: gradtransforms.scale_by_backtracking_linesearch:\n"
        "Backtracking linesearch failed to find a stepsize ensuring sufficient "
        f"decrease.\nValue at current params: {outcome.value},\n"
        f"Slope along update direction: {outcome.slope}\n"
        f"Stepsize: {outcome.last_trial}\n"
        f"Decrease Error: {outcome.decrease_error}\n"
        "Using a stepsize of 0: the update is zero."
    )


def report_backtracking(outcome: BacktrackingOutcome) -> None:
    """Print a diagnosis when the backtracking search failed (`verbose=True`)."""
    jax.debug.callback(_print_backtracking, outcome, ordered=True)


def _zoom_failure(o: ZoomOutcome) -> list[str]:
    """The lines explaining why no step with sufficient decrease was found."""
    lines = [FLAG_NO_STEPSIZE_FOUND]
    if not o.slope < 0:
        lines.append(
            FLAG_NOT_A_DESCENT_DIRECTION
            + f"The slope (={o.slope}) at stepsize=0 should be negative."
        )
        return lines
    lines.append("Consider increasing max_linesearch_steps.")
    eps = np.finfo(np.float32).eps
    if o.last_trial < eps:
        lines.append(
            f"Computed stepsize (={o.last_trial}) is below machine precision "
            f"(={eps}), consider passing to higher precision like x64, using "
            "jax.config.update('jax_enable_x64', True)."
        )
    if np.isinf(o.decrease_error):
        lines.append("Every trial step gave an inf or nan value or slope.")
    return lines


def _print_zoom(o: ZoomOutcome) -> None:
    if bool(o.wolfe):
        return
    lines = [
        "INFO: gradtransforms.scale_by_zoom_linesearch:",
        f"Value at current params: {o.value}",
        f"Slope along update direction: {o.slope}",
        f"Stepsize reached: {o.last_trial}",
        f"Decrease Error: {o.decrease_error}",
        f"Curvature Error: {o.curvature_error}",
    ]
    if bool(o.interval_not_found):
        lines.append(FLAG_INTERVAL_NOT_FOUND)
    if o.interval_length <= o.stepsize_precision:
        lines.append(
            FLAG_INTERVAL_TOO_SMALL + f" Interval length: {o.interval_length}."
        )
    if o.step > 0:
        lines.append(
            FLAG_CURVATURE_COND_NOT_SATISFIED
            + f" Stepsize ensuring sufficient decrease: {o.step}."
        )
    else:
        lines += [*_zoom_failure(o), "No step is made: the update is zero."]
    print("\n".join(lines))


def report_zoom(outcome: ZoomOutcome) -> None:
    """Print a diagnosis when the zoom search did not find a Wolfe step."""
    jax.debug.callback(_print_zoom, outcome, ordered=True)
