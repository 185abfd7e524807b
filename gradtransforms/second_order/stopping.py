"""Why `minimize` stopped: its status codes, their messages, and the tests.

After every update the loop asks, in this order: is $f$ non-finite; is the
gradient norm at most `tol`; did $f$ or $\\theta$ change by at most `ftol` or
`xtol`; has a descent method stalled; is the budget spent. The first "yes"
is the status. A *descent method* is an optimizer that evaluates $f$ inside
its update (a line search, `newton`, `newton_cg`, `lbfgs_b`: its state
carries evaluation records), so every update it makes should make progress:
decrease $f$ or, where $f$ is flat to rounding ($100\\,\\epsilon_\\text{mach}|f|$:
near a minimum, where line searches decide by slopes), reach the smallest
gradient norm yet. Two updates in a
row that do not are a stall: the method's own recovery
(a search resuming where it stopped, a raised damping, a reset memory) has had
its chance, and more steps would only spend evaluations. First-order
optimizers are not descent methods ($f$ may rise under momentum or a large
learning rate) and never stall.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Criteria",
    "MinimizeStatus",
    "Progress",
    "next_progress",
    "start_progress",
    "status_message",
]

RUNNING = -1
STALL_UPDATES = 2
"""Updates in a row without progress that end a descent method."""


class MinimizeStatus(enum.IntEnum):
    """`MinimizeResult.status`: why `minimize` stopped."""

    GRADIENT = 0
    """Converged: the gradient norm (projected, under bounds) is at most `tol`."""
    SMALL_CHANGE = 1
    """Converged: an update changed $f$ by at most `ftol` or $\\theta$ by at
    most `xtol`, relatively."""
    PRECISION_LOSS = 2
    """Stalled where no decrease is measurable: the gradient norm is below
    $\\sqrt{\\epsilon_\\text{mach}}$ of its start, and a step like the last
    one changes $f$ by less than its rounding. $f$ is at a minimum to
    rounding, and `tol` asks for a gradient smaller than rounding allows."""
    LINESEARCH_FAILED = 3
    """Stalled: two updates in a row made no progress (the line search, or
    Newton's damping, found no acceptable step), away from rounding or
    before any step was made."""
    MAX_STEPS = 4
    """`max_steps` updates made without meeting a criterion."""
    NON_FINITE = 5
    """$f$ (or its gradient) is not finite at the last iterate."""


_MESSAGES = {
    MinimizeStatus.GRADIENT: "converged: gradient norm <= tol",
    MinimizeStatus.SMALL_CHANGE: "converged: change in f <= ftol or step <= xtol",
    MinimizeStatus.PRECISION_LOSS: (
        "stopped: f no longer decreases at rounding level (precision loss); "
        "tol may be below what rounding allows"
    ),
    MinimizeStatus.LINESEARCH_FAILED: (
        "stopped: two updates in a row made no progress (line search or damping failed)"
    ),
    MinimizeStatus.MAX_STEPS: "stopped: max_steps reached",
    MinimizeStatus.NON_FINITE: "stopped: f or its gradient is not finite",
}


def status_message(status: Any) -> Any:
    """The sentence for a status code, or an array of them for a batch."""
    codes = np.asarray(status)
    if codes.ndim == 0:
        return _MESSAGES[MinimizeStatus(int(codes))]
    return np.vectorize(lambda c: _MESSAGES[MinimizeStatus(int(c))], otypes=[str])(
        codes
    )


class Progress(NamedTuple):
    """What the loop tracks to decide when to stop."""

    status: jax.Array  # int32: RUNNING or a MinimizeStatus
    stalled_updates: jax.Array  # int32: updates in a row without progress
    step_norm: jax.Array  # scalar: ‖Δθ‖₂ of the last update that moved θ
    best_grad_norm: jax.Array  # scalar: the smallest gradient norm so far
    start_grad_norm: jax.Array  # scalar: the gradient norm at the start


class Criteria(NamedTuple):
    """The loop's tolerances, as traced scalars."""

    max_steps: Any
    tol: Any
    ftol: Any
    xtol: Any

    def in_dtype(self, dtype: Any) -> Criteria:
        """The tolerances as scalars of `dtype`, `max_steps` as int32."""
        tol, ftol, xtol = (jnp.asarray(x).astype(dtype) for x in self[1:])
        return Criteria(jnp.asarray(self.max_steps, jnp.int32), tol, ftol, xtol)


def start_progress(value: jax.Array, grad_norm: jax.Array, tol: jax.Array):
    """The progress at the starting point, before any update."""
    finite = jnp.isfinite(value) & jnp.isfinite(grad_norm)
    status = jnp.where(
        ~finite,
        MinimizeStatus.NON_FINITE,
        jnp.where(grad_norm <= tol, MinimizeStatus.GRADIENT, RUNNING),
    ).astype(jnp.int32)
    zero = jnp.zeros((), grad_norm.dtype)
    return Progress(status, jnp.int32(0), zero, grad_norm, grad_norm)


def next_progress(
    p: Progress,
    criteria: Criteria,
    *,
    descent_method: bool,
    old_value: jax.Array,
    value: jax.Array,
    grad_norm: jax.Array,
    step_norm: jax.Array,
    param_norm: jax.Array,
    num_steps: jax.Array,
) -> Progress:
    """The status after an update from `old_value` to `value`."""
    dtype = value.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    moved = step_norm > 0
    rounding = 100 * eps * jnp.maximum(jnp.abs(value), tiny)
    # Progress: f decreased; or, where f is flat to rounding (near a
    # minimum), a step to the smallest gradient norm yet.
    flat = value <= old_value + rounding
    lowest = grad_norm < p.best_grad_norm
    progress = (value < old_value) | (moved & flat & lowest)
    stalled = jnp.where(progress, 0, p.stalled_updates + 1).astype(jnp.int32)
    best_grad_norm = jnp.where(lowest, grad_norm, p.best_grad_norm)
    last_step = jnp.where(moved, step_norm, p.step_norm).astype(p.step_norm.dtype)
    scale_f = jnp.maximum(jnp.maximum(jnp.abs(old_value), jnp.abs(value)), 1)
    small_f = moved & (criteria.ftol > 0) & (old_value - value >= 0)
    small_f &= old_value - value <= criteria.ftol * scale_f
    small_x = moved & (step_norm <= criteria.xtol * (1 + param_norm))
    # Precision loss: the gradient is far below its start, and a step like
    # the last one that moved θ changes f by about ‖g‖·‖Δθ‖, below the
    # rounding of f: no decrease can be measured.
    unmeasurable = (last_step > 0) & (grad_norm * last_step <= rounding)
    unmeasurable &= grad_norm <= jnp.sqrt(eps) * p.start_grad_norm
    stall_status = jnp.where(
        unmeasurable, MinimizeStatus.PRECISION_LOSS, MinimizeStatus.LINESEARCH_FAILED
    )
    finite = jnp.isfinite(value) & jnp.isfinite(grad_norm)
    status = jnp.where(num_steps >= criteria.max_steps, MinimizeStatus.MAX_STEPS, -1)
    if descent_method:
        status = jnp.where(stalled >= STALL_UPDATES, stall_status, status)
    status = jnp.where(small_f | small_x, MinimizeStatus.SMALL_CHANGE, status)
    status = jnp.where(grad_norm <= criteria.tol, MinimizeStatus.GRADIENT, status)
    status = jnp.where(finite, status, MinimizeStatus.NON_FINITE)
    best_grad_norm = best_grad_norm.astype(p.best_grad_norm.dtype)
    return p._replace(
        status=status.astype(jnp.int32),
        stalled_updates=stalled,
        step_norm=last_step,
        best_grad_norm=best_grad_norm,
    )
