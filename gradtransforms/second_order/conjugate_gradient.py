"""Nonlinear conjugate gradients (textbook §8.6.2, Algorithm 8.9)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.combine import chain
from gradtransforms.scaling import scale
from gradtransforms.second_order.complex_params import real_vdot
from gradtransforms.second_order.linesearch import scale_by_zoom_linesearch
from gradtransforms.second_order.linesearch.defaults import (
    default_linesearch,
    resolve_linesearch,
)
from gradtransforms.validation import check_bool, check_choice, check_positive_int

__all__ = [
    "ScaleByConjugateGradientState",
    "conjugate_gradient",
    "scale_by_conjugate_gradient",
]

_VARIANTS = ("polak_ribiere", "fletcher_reeves", "hestenes_stiefel")


class ScaleByConjugateGradientState(NamedTuple):
    """State of `scale_by_conjugate_gradient`."""

    count: jax.Array  # int32: updates so far
    prev_grad: Any  # like params: g_{t-1}
    prev_direction: Any  # like params: the last output, -ρ_{t-1}
    beta: jax.Array  # scalar: β_t of the last update (0 after a restart)


def scale_by_conjugate_gradient(
    variant: str = "polak_ribiere",
    restart_every: int | None = None,
) -> GradientTransformationExtraArgs:
    """Conjugate search directions $\\rho_t = -g_t + \\beta_t \\rho_{t-1}$ (Alg. 8.9).

    $$\\beta^{FR}_t = \\frac{g_t^\\top g_t}{g_{t-1}^\\top g_{t-1}}, \\quad
    \\beta^{PR}_t = \\max\\Big(0, \\frac{(g_t - g_{t-1})^\\top
    g_t}{g_{t-1}^\\top g_{t-1}}\\Big), \\quad \\beta^{HS}_t = \\max\\Big(0,
    \\frac{(g_t - g_{t-1})^\\top g_t}{(g_t - g_{t-1})^\\top \\rho_{t-1}}\\Big)$$

    (Fletcher–Reeves eq. 8.30; Polak–Ribière eq. 8.31, clipped at 0 — "PR+";
    Hestenes–Stiefel, clipped likewise). Every variant restarts ($\\beta_t =
    0$, a steepest-descent step) at the first update; every `restart_every`
    updates (the textbook's "reset $\\beta_t$ to zero if $t$ is a multiple of
    some constant $k$"; by default $k = n$, the number of parameters); when
    successive gradients are far from orthogonal, $|g_t^\\top g_{t-1}| \\ge
    0.1\\,\\lVert g_t\\rVert^2$ (Powell's restart, Nocedal & Wright eq.
    5.52: without it Fletcher–Reeves can crawl with tiny steps for
    thousands of updates); when $\\beta_t$ is not finite; and whenever
    $\\rho_t$ is not a descent direction ($g_t^\\top\\rho_t \\ge 0$). On a
    quadratic with exact line searches successive gradients are orthogonal,
    so within its first $n$ updates the method is Algorithm 8.9 unchanged.
    Outputs $-\\rho_t$ (optax's sign convention for `scale_by_*`); chain
    with `scale(-1.0)` and a line search, as `conjugate_gradient` does. The
    updates it receives are taken as the gradient $g_t$. For complex
    parameters the inner products are $\\operatorname{Re}\\sum \\bar x y$,
    those of $\\mathbb{R}^{2n}$ (see
    `gradtransforms.second_order.complex_params`).

    Args:
      variant: `"polak_ribiere"`, `"fletcher_reeves"` or
        `"hestenes_stiefel"`.
      restart_every: restart every this many updates (`None`: every $n$,
        the number of parameters, real ones counted twice for complex).

    Returns:
      A `GradientTransformationExtraArgs` (extra arguments ignored) with a
      `ScaleByConjugateGradientState`.
    """
    check_choice("variant", variant, _VARIANTS)
    if restart_every is not None:
        check_positive_int("restart_every", restart_every)

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        zeros = tu.zeros_like(params)
        return ScaleByConjugateGradientState(
            jnp.int32(0), zeros, zeros, jnp.zeros((), dtype)
        )

    def update_fn(updates, state, params=None, **extra):
        del params, extra
        tu.assert_state_matches(state.prev_grad, updates)
        period = restart_every or max(_real_size(updates), 1)
        g, g_prev, e_prev = updates, state.prev_grad, state.prev_direction
        dtype = state.beta.dtype
        y = tu.add_scale(g, -1, g_prev)
        if variant == "fletcher_reeves":
            beta = real_vdot(g, g, dtype) / real_vdot(g_prev, g_prev, dtype)
        elif variant == "polak_ribiere":
            beta = real_vdot(g, y, dtype) / real_vdot(g_prev, g_prev, dtype)
            beta = jnp.maximum(beta, 0)
        else:  # ρ_{t-1} = -e_{t-1}
            beta = real_vdot(g, y, dtype) / -real_vdot(e_prev, y, dtype)
            beta = jnp.maximum(beta, 0)
        gg = real_vdot(g, g, dtype)
        powell = jnp.abs(real_vdot(g, g_prev, dtype)) >= 0.1 * gg
        restart = (state.count == 0) | ~jnp.isfinite(beta) | powell
        restart |= state.count % period == 0
        beta = jnp.where(restart, jnp.zeros_like(beta), beta)
        direction = tu.add_scale(g, beta, e_prev)
        # -direction must be a descent direction: <g, direction> > 0.
        descent = real_vdot(g, direction, dtype) > 0
        beta = jnp.where(descent, beta, jnp.zeros_like(beta))
        direction = tu.where(descent, direction, g)
        new_state = ScaleByConjugateGradientState(
            count=tu.safe_increment(state.count),
            prev_grad=tu.cast_like(g, state.prev_grad),
            prev_direction=tu.cast_like(direction, state.prev_direction),
            beta=beta,
        )
        return direction, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


def _real_size(tree: Any) -> int:
    """The number of real parameters (a complex one counts twice)."""
    return sum(
        x.size * (2 if jnp.iscomplexobj(x) else 1) for x in jax.tree.leaves(tree)
    )


_CG_LINESEARCH = default_linesearch(
    scale_by_zoom_linesearch, curv_rtol=0.1, initial_guess_strategy="quadratic"
)


def conjugate_gradient(
    variant: str = "polak_ribiere",
    restart_every: int | None = None,
    linesearch: Any = _CG_LINESEARCH,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Nonlinear conjugate gradients with a line search (textbook Algorithm 8.9).

    $$\\rho_t = -g_t + \\beta_t \\rho_{t-1}, \\qquad
    \\varepsilon^* \\approx \\arg\\min_\\varepsilon f(\\theta_t +
    \\varepsilon\\rho_t), \\qquad \\theta_{t+1} = \\theta_t + \\varepsilon^*
    \\rho_t$$

    `chain(scale_by_conjugate_gradient(variant, restart_every), scale(-1.0),
    linesearch)`. The default line search is
    `scale_by_zoom_linesearch(curv_rtol=0.1,
    initial_guess_strategy="quadratic")`: strong Wolfe with $c_2 = 0.1$, as
    Nocedal & Wright recommend for CG (it keeps Fletcher–Reeves directions
    descent directions), first trial by their eq. 3.60. On a
    positive-definite quadratic in $n$ variables with the exact step
    (`linesearch=scale_by_quadratic_linesearch()`), CG reaches the minimum in
    at most $n$ updates. Complex parameters are supported.

    Args:
      variant: `"polak_ribiere"` (PR+), `"fletcher_reeves"` or
        `"hestenes_stiefel"`; see `scale_by_conjugate_gradient`.
      restart_every: restart period $k$ (`None`: $n$, the number of
        parameters); Powell's restart is always on (see
        `scale_by_conjugate_gradient`).
      linesearch: the line-search link; `None`: no line search, the step is
        $\\rho_t$ itself (as `lbfgs`, and optax's `lbfgs`).
      has_aux: `value_fn` returns `(value, aux)`; passed to the default line
        search (a line search given explicitly is used as given).

    Returns:
      A `GradientTransformationExtraArgs`; its state is the tuple of the
      three links' states.
    """
    check_bool("has_aux", has_aux)
    return chain(
        scale_by_conjugate_gradient(variant, restart_every),
        scale(-1.0),
        resolve_linesearch(linesearch, has_aux),
    )
