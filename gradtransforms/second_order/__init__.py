"""Second-order and line-search methods (textbook §8.6).

Every optimizer here is an optax `GradientTransformationExtraArgs`, called as
`tx.update(grads, state, params, value=f(params), grad=grads, value_fn=f)`
(the calling convention of `optax.lbfgs`), usable step by step in a user's
own loop or through `minimize`, which compiles the whole solver into one
`lax.while_loop`.
"""

from gradtransforms.second_order.conjugate_gradient import (
    ScaleByConjugateGradientState,
    conjugate_gradient,
    scale_by_conjugate_gradient,
)
from gradtransforms.second_order.lbfgs_b import LbfgsBState, lbfgs_b
from gradtransforms.second_order.linesearch import (
    BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState,
    ScaleByQuadraticLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_quadratic_linesearch,
    scale_by_zoom_linesearch,
)
from gradtransforms.second_order.minimize import (
    MinimizeResult,
    MinimizeStatus,
    minimize,
)
from gradtransforms.second_order.newton import (
    NewtonState,
    newton,
    scale_by_damped_newton,
)
from gradtransforms.second_order.newton_cg import (
    ScaleByNewtonCgState,
    newton_cg,
    scale_by_newton_cg,
)
from gradtransforms.second_order.quasi_newton import (
    ScaleByBfgsState,
    ScaleByLbfgsState,
    bfgs,
    lbfgs,
    scale_by_bfgs,
    scale_by_lbfgs,
)

__all__ = [
    "BacktrackingLinesearchInfo",
    "LbfgsBState",
    "MinimizeResult",
    "MinimizeStatus",
    "NewtonState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBfgsState",
    "ScaleByConjugateGradientState",
    "ScaleByLbfgsState",
    "ScaleByNewtonCgState",
    "ScaleByQuadraticLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "bfgs",
    "conjugate_gradient",
    "lbfgs",
    "lbfgs_b",
    "minimize",
    "newton",
    "newton_cg",
    "scale_by_backtracking_linesearch",
    "scale_by_bfgs",
    "scale_by_conjugate_gradient",
    "scale_by_damped_newton",
    "scale_by_lbfgs",
    "scale_by_newton_cg",
    "scale_by_quadratic_linesearch",
    "scale_by_zoom_linesearch",
]
