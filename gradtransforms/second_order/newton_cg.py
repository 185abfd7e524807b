"""Hessian-free Newton (Newton-CG): truncated CG on Hessian-vector products.

`newton_cg` never forms $H$: it solves $H d = g$ approximately by truncated
conjugate gradients on Hessian-vector products, then takes a line search
along $-d$. Memory $O(k)$, for models too large for `newton`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.combine import chain
from gradtransforms.objective import (
    Evaluation,
    check_call,
    evaluation_property,
    objective,
)
from gradtransforms.scaling import scale
from gradtransforms.second_order.complex_params import reject_complex
from gradtransforms.second_order.linesearch import scale_by_backtracking_linesearch
from gradtransforms.second_order.linesearch.defaults import (
    default_linesearch,
    resolve_linesearch,
)
from gradtransforms.validation import check_bool, check_fraction, check_positive_int

__all__ = ["ScaleByNewtonCgState", "newton_cg", "scale_by_newton_cg"]


class ScaleByNewtonCgState(NamedTuple):
    """State of `scale_by_newton_cg`."""

    num_cg_steps: jax.Array  # int32: CG iterations of the last update
    negative_curvature: jax.Array  # bool: CG stopped on d'Hd <= 0
    num_hvp_evals: jax.Array  # int32: Hessian-vector products of the last update
    evaluation: Evaluation  # counts only: 1 and 1, the linearisation of ∇f

    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


def scale_by_newton_cg(
    cg_tol: float | None = None,
    max_cg_steps: int | None = None,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Approximate Newton direction $H^{-1} g$ by truncated conjugate gradients.

    Solves $H d = g$ by linear CG (the textbook's §8.6.2 method applied to
    the Newton system; Nocedal & Wright Algorithm 7.1) using only
    Hessian-vector products $Hv$ (forward-over-reverse: `jax.jvp` of
    `jax.grad`, linearised once per update), and stops when

    $$\\lVert H d - g \\rVert \\le \\eta \\lVert g\\rVert, \\qquad
    \\eta = \\min(0.5, \\sqrt{\\lVert g\\rVert})$$

    (or $\\eta$ = `cg_tol`), after `max_cg_steps` iterations, or on negative
    curvature $p^\\top H p \\le 0$: then the iterate so far is returned, or,
    if that happens at the first iteration, $g$ itself scaled by
    $g^\\top g / |g^\\top H g|$ (Nocedal & Wright return $g$; the scaling
    gives the line search a first step of the size the curvature suggests).
    Either way $-d$ is a descent direction. Outputs $d$, the *preconditioned
    gradient* (optax's
    sign convention for `scale_by_*`): chain with `scale(-1.0)` and a line
    search, as `newton_cg` does. Memory $O(k)$; cost per update: one
    linearisation of $\\nabla f$ at $\\theta$ (an evaluation of $f$ and
    $\\nabla f$, counted as such in the state) plus one product per CG
    iteration. Complex parameters raise `TypeError` at `init`.

    Args:
      cg_tol: relative residual tolerance $\\eta \\in (0, 1)$; `None` for the
        adaptive $\\min(0.5, \\sqrt{\\lVert g\\rVert})$ (superlinear
        convergence).
      max_cg_steps: most CG iterations per update; `None`: the number of
        parameters (CG's exact-arithmetic bound).
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` (needs `value_fn` in `update`) with
      a `ScaleByNewtonCgState`.
    """
    if cg_tol is not None:
        check_fraction("cg_tol", cg_tol)
    if max_cg_steps is not None:
        check_positive_int("max_cg_steps", max_cg_steps)
    check_bool("has_aux", has_aux)

    def init_fn(params):
        reject_complex(params, "newton_cg")
        zero = jnp.int32(0)
        return ScaleByNewtonCgState(zero, jnp.zeros((), bool), zero, Evaluation.start())

    def update_fn(updates, state, params=None, **extra):
        del state
        extra.pop("value", None)
        extra.pop("grad", None)
        value_fn = extra.pop("value_fn", None)
        check_call("scale_by_newton_cg", updates, params, value_fn=value_fn)
        f = objective(value_fn, extra, has_aux, "scale_by_newton_cg")
        g = tu.cast_like(updates, params)
        dtype = tu.scalar_dtype(params)
        steps = max_cg_steps or sum(jnp.size(x) for x in jax.tree.leaves(params))
        _, hvp = jax.linearize(jax.grad(f), params)
        g_norm = tu.global_norm(g).astype(dtype)
        eta = jnp.minimum(0.5, jnp.sqrt(g_norm)) if cg_tol is None else cg_tol
        threshold = (eta * g_norm) ** 2

        # Linear CG on H d = g from d = 0: residual r = g - H d, direction p.
        def cond_fn(c):
            j, _, _, _, rr, stop = c
            return ~stop & (j < steps) & (rr > threshold)

        def body_fn(c):
            j, d, r, p, rr, _ = c
            hp = tu.cast_like(hvp(p), params)
            php = tu.vdot(p, hp)
            negative = ~(php > 0)
            alpha = rr / jnp.where(negative, 1, php)
            d_new = tu.add_scale(d, alpha, p)
            r_new = tu.add_scale(r, -alpha, hp)
            rr_new = tu.vdot(r_new, r_new)
            p_new = tu.add_scale(r_new, rr_new / rr, p)
            # Negative curvature at the first iteration (p = g): g scaled by
            # g'g / |g'Hg|, the step length the curvature's magnitude suggests.
            curvature = jnp.abs(php)
            scaled_g = tu.scale(rr / jnp.where(curvature > 0, curvature, rr), p)
            fallback = tu.where(j == 0, scaled_g, d)

            def keep(new, old):
                return tu.where(negative, old, new)

            return (
                j + 1,
                keep(d_new, fallback),
                keep(r_new, r),
                keep(p_new, p),
                jnp.where(negative, rr, rr_new),
                negative,
            )

        rr0 = tu.vdot(g, g)
        start = (jnp.int32(0), tu.zeros_like(g), g, g, rr0, jnp.zeros((), bool))
        j, d, _, _, _, negative = jax.lax.while_loop(cond_fn, body_fn, start)
        one = jnp.int32(1)
        evaluation = Evaluation(
            value=None, grad=None, num_fun_evals=one, num_grad_evals=one
        )
        return d, ScaleByNewtonCgState(j, negative, j, evaluation)

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


_NEWTON_CG_LINESEARCH = default_linesearch(
    scale_by_backtracking_linesearch,
    decrease_factor=0.5,
    increase_factor=math.inf,
    max_learning_rate=1.0,
    store_grad=True,
)


def newton_cg(
    cg_tol: float | None = None,
    max_cg_steps: int | None = None,
    linesearch: Any = _NEWTON_CG_LINESEARCH,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Hessian-free Newton: truncated-CG Newton direction and a line search.

    $$H d \\approx g \\ \\text{(truncated CG)}, \\qquad
    \\theta \\leftarrow \\theta - \\varepsilon^* d$$

    `chain(scale_by_newton_cg(...), scale(-1.0), linesearch)`. The Newton
    step of Algorithm 8.8 without the Hessian: $O(k)$ memory, for models too
    large for `newton`. The default line search is Armijo backtracking from
    the unit Newton step, halving it (`scale_by_backtracking_linesearch(
    decrease_factor=0.5, increase_factor=inf, max_learning_rate=1.0,
    store_grad=True)`), as in Nocedal & Wright's Algorithm 7.1 ("using
    $\\alpha_k = 1$ if possible"). Complex parameters raise `TypeError` at
    `init`.

    Args:
      cg_tol: see `scale_by_newton_cg`.
      max_cg_steps: see `scale_by_newton_cg`.
      linesearch: the line-search link; `None`: no line search, the full
        Newton step $-d$ (as `lbfgs`, and optax's `lbfgs`).
      has_aux: `value_fn` returns `(value, aux)`; passed to the direction and
        the default line search (a line search given explicitly is used as
        given).

    Returns:
      A `GradientTransformationExtraArgs`; its state is the tuple of the three
      links' states.
    """
    check_bool("has_aux", has_aux)
    return chain(
        scale_by_newton_cg(cg_tol=cg_tol, max_cg_steps=max_cg_steps, has_aux=has_aux),
        scale(-1.0),
        resolve_linesearch(linesearch, has_aux),
    )
