"""Line searches: choose the step $\\varepsilon^*$ along an update direction.

Each line search is a link in a `chain`, after the link that produces a
*descent direction* $u$ (updates to add: $\\langle u, g\\rangle < 0$). It
evaluates the objective along $\\theta + \\varepsilon u$ and returns
$\\varepsilon^* u$. The calling convention is optax's::

    updates, state = tx.update(updates, state, params,
                               value=f(params), grad=g(params), value_fn=f,
                               **fn_kwargs)

`value_fn(params, **fn_kwargs)` returns the objective (or `(value, aux)` for
a line search built with `has_aux=True`; the aux output is ignored). Extra
keyword arguments of `update` are passed on to `value_fn` (an argument it does
not accept raises `TypeError`). The states keep the value and gradient at the
accepted point (`value`, `grad`), so a solver loop need not evaluate them
again (`minimize` reuses them; so does `optax.value_and_grad_from_state`),
and the number of evaluations the last update made (`num_fun_evals`,
`num_grad_evals`), all read from the `Evaluation` record `state.evaluation`;
`state.info` is optax's record of the last update (`num_linesearch_steps`,
`decrease_error`, and for the zoom search `curvature_error`). The keywords
shared with `optax.scale_by_backtracking_linesearch` and
`optax.scale_by_zoom_linesearch` have optax's meaning and positions
(`verbose=True` prints optax's diagnostics when a search fails); `has_aux`
comes after them, keyword-only. Complex parameters are supported, with the
convention of `gradtransforms.second_order.complex_params`.

These are our own implementations rather than optax's, for three reasons: a
non-finite trial value (`inf` or `nan`, e.g. outside the objective's domain)
must count as a failed trial and shrink the step, never become the result;
`value_fn` may return auxiliary outputs; and the evaluations must be counted.
If no acceptable step is found the update is exactly zero, so the
parameters never become NaN.

References: Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006),
§3.1 (Armijo condition, eq. 3.4; strong Wolfe conditions, eq. 3.7), §3.5
(Algorithms 3.5 and 3.6, cubic interpolation eq. 3.59, initial step eq. 3.60).
"""

from gradtransforms.second_order.linesearch.backtracking import (
    ScaleByBacktrackingLinesearchState,
    scale_by_backtracking_linesearch,
)
from gradtransforms.second_order.linesearch.diagnostics import (
    BacktrackingLinesearchInfo,
    ZoomLinesearchInfo,
)
from gradtransforms.second_order.linesearch.quadratic import (
    ScaleByQuadraticLinesearchState,
    scale_by_quadratic_linesearch,
)
from gradtransforms.second_order.linesearch.zoom import (
    ScaleByZoomLinesearchState,
    scale_by_zoom_linesearch,
)

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByQuadraticLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_quadratic_linesearch",
    "scale_by_zoom_linesearch",
]
