"""Newton's method damped Levenberg–Marquardt style, with a dense Hessian.

`newton` is textbook Algorithm 8.8 with the regularised step of eq. 8.28,
$-(H + \\alpha I)^{-1} g$, the damping $\\alpha$ adapted Levenberg–Marquardt
style. It forms the $k \\times k$ Hessian and factorises it: $O(k^2)$ memory
and $O(k^3)$ time per step, for models with at most a few thousand
parameters (`newton_cg` is the Hessian-free alternative).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from gradtransforms import tree as tm
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import objective
from gradtransforms.tree import finite_tree, int32
from gradtransforms.validation import (
    check_bool,
    check_factor,
    check_fraction,
    check_non_negative,
    check_positive_int,
)

__all__ = ["NewtonState", "newton"]


class NewtonState(NamedTuple):
    """State of `newton`."""

    damping: jax.Array  # scalar: α for the next update
    ratio: jax.Array  # scalar: actual / predicted decrease of the last step
    value: jax.Array  # scalar: f at params + updates of the last update
    grad: Any  # like params: ∇f at that point
    num_fun_evals: jax.Array  # int32: evaluations of f by the last update
    num_grad_evals: jax.Array  # int32: evaluations of ∇f by the last update
    num_hessian_evals: jax.Array  # int32: dense Hessians by the last update


def newton(
    damping: float = 1e-3,
    *,
    damping_increase: float = 4.0,
    damping_decrease: float = 3.0,
    accept_ratio: float = 1e-4,
    max_damping_steps: int = 50,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Newton's method with Levenberg–Marquardt damping (Alg. 8.8, eq. 8.28).

    $$\\Delta\\theta = -(H + \\alpha I)^{-1} g, \\qquad
    \\rho = \\frac{f(\\theta) - f(\\theta + \\Delta\\theta)}{-(g^\\top
    \\Delta\\theta + \\tfrac12 \\Delta\\theta^\\top H \\Delta\\theta)}$$

    on the raveled parameters, with the dense Hessian (`jax.hessian`) solved by
    Cholesky. One update: factorise $H + \\alpha I$; if that fails (not
    positive definite: a saddle or a maximum nearby) raise $\\alpha$ and
    retry; otherwise evaluate the trial point and accept it only if $f$
    decreases by at least `accept_ratio` of the decrease the quadratic model
    (eq. 8.26) predicts; if not, raise $\\alpha$ and retry. (A predicted
    decrease below rounding, $8\\epsilon_\\text{mach}|f|$, cannot be
    measured: such a step is accepted unless $f$ rises by more than that, so
    the iteration can finish at a minimum.) On acceptance the
    next update starts from $\\alpha / $ `damping_decrease` if $\\rho > 3/4$
    (the model is good: closer to Newton), $\\alpha \\cdot$ `damping_increase`
    if $\\rho < 1/4$. Because $H + \\alpha I$ must be positive definite,
    negative curvature never pulls the step towards a saddle or a maximum: as
    the textbook says, large $\\alpha$ turns the step into gradient descent
    with step $1/\\alpha$. A damping below
    $\\sqrt{\\epsilon_\\text{mach}}\\max(1, \\max_i |H_{ii}|)$ is rounded to
    0 (pure Newton, quadratic convergence near a minimum), and that value is
    also the smallest nonzero damping tried. If no trial is accepted within
    `max_damping_steps`, the update is zero and the raised $\\alpha$ is kept.
    Cost: one Hessian ($k$ Hessian-vector products), $O(k^3)$ per
    factorisation, $O(k^2)$ memory; the trial points cost one value and
    gradient each (the gradient is kept for the next step).

    Args:
      damping: initial $\\alpha \\ge 0$ (0: start as pure Newton, which solves
        a positive-definite quadratic in one step).
      damping_increase: factor $> 1$ raising $\\alpha$ after a rejected trial
        or a poor step ($\\rho < 1/4$).
      damping_decrease: factor $> 1$ lowering $\\alpha$ after a good step
        ($\\rho > 3/4$).
      accept_ratio: smallest $\\rho \\in (0, 1)$ accepted.
      max_damping_steps: most factorisations (and trial evaluations) per
        update.
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(grads, state, params,
      *, value, grad, value_fn, **fn_kwargs)` returns $\\Delta\\theta$ and a
      `NewtonState`. `value_fn` is required (the Hessian and the trial points
      need it).
    """
    check_non_negative("damping", damping)
    check_factor("damping_increase", damping_increase)
    check_factor("damping_decrease", damping_decrease)
    check_fraction("accept_ratio", accept_ratio)
    check_positive_int("max_damping_steps", max_damping_steps)
    check_bool("has_aux", has_aux)

    def init_fn(params):
        dtype = tm.tree_accumulation_dtype(params)
        return NewtonState(
            damping=jnp.asarray(damping, dtype),
            ratio=jnp.zeros((), dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=tm.zeros_like(params),
            num_fun_evals=int32(0),
            num_grad_evals=int32(0),
            num_hessian_evals=int32(0),
        )

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra):
        f = objective(value_fn, extra, has_aux, "newton")
        dtype = state.damping.dtype
        x, unravel = tm.ravel(params)
        g = tm.ravel(tm.tree_cast(updates, params))[0].astype(x.dtype)
        f0 = jnp.asarray(value).astype(dtype)
        hessian = jax.hessian(lambda z: f(unravel(z)))(x)
        hessian = 0.5 * (hessian + hessian.T)
        eye = jnp.eye(x.size, dtype=x.dtype)
        scale_h = jnp.maximum(1, jnp.max(jnp.abs(jnp.diag(hessian)), initial=0))
        floor = (math.sqrt(jnp.finfo(dtype).eps) * scale_h).astype(dtype)
        grad0 = tm.tree_cast(grad, params)
        inf = jnp.asarray(jnp.inf, dtype)
        noise = (
            8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f0), jnp.finfo(dtype).tiny)
        )

        def trial(alpha):
            chol = jnp.linalg.cholesky(hessian + alpha.astype(x.dtype) * eye)
            factorised = jnp.all(jnp.isfinite(chol))
            step = -cho_solve((chol, True), g)
            step = jnp.where(factorised, step, jnp.zeros_like(step))
            predicted = -(g @ step + 0.5 * step @ (hessian @ step)).astype(dtype)

            def evaluate(_):
                fx, gx = jax.value_and_grad(f)(unravel(x + step))
                return jnp.asarray(fx).astype(dtype), tm.tree_cast(gx, params)

            def skip(_):
                return inf, grad0

            fx, gx = jax.lax.cond(factorised, evaluate, skip, None)
            actual = f0 - fx
            # A predicted decrease below rounding cannot be measured: accept
            # the step unless f rises by more than rounding (at a minimum).
            in_noise = predicted <= noise
            decreased = jnp.where(
                in_noise,
                fx <= f0 + noise,
                (fx <= f0) & (actual >= accept_ratio * predicted),
            )
            ok = factorised & jnp.isfinite(fx) & finite_tree(gx) & decreased
            ratio = jnp.where(in_noise, 1, actual / predicted).astype(dtype)
            return ok, step, fx, gx, ratio, factorised

        def cond_fn(c):
            i, _, accepted, *_ = c
            return ~accepted & (i < max_damping_steps)

        def body_fn(c):
            i, alpha, _, _, _, _, _, n_eval = c
            ok, step, fx, gx, ratio, evaluated = trial(alpha)
            raised = jnp.maximum(alpha * damping_increase, floor).astype(dtype)
            alpha = jnp.where(ok, alpha, raised)
            return (i + 1, alpha, ok, step, fx, gx, ratio, n_eval + int32(evaluated))

        start = (
            int32(0),
            state.damping,
            jnp.zeros((), bool),
            jnp.zeros_like(x),
            f0,
            grad0,
            jnp.zeros((), dtype),
            int32(0),
        )
        _, alpha, accepted, step, fx, gx, ratio, n_eval = jax.lax.while_loop(
            cond_fn, body_fn, start
        )
        lowered = alpha / damping_decrease
        lowered = jnp.where(lowered < floor, jnp.zeros_like(lowered), lowered)
        raised = jnp.maximum(alpha * damping_increase, floor)
        adapted = jnp.where(
            ratio > 0.75, lowered, jnp.where(ratio < 0.25, raised, alpha)
        )
        new_state = NewtonState(
            damping=jnp.where(accepted, adapted, alpha).astype(dtype),
            ratio=ratio,
            value=jnp.where(accepted, fx, f0),
            grad=jax.tree.map(lambda a, b: jnp.where(accepted, a, b), gx, grad0),
            num_fun_evals=n_eval,
            num_grad_evals=n_eval,
            num_hessian_evals=int32(1),
        )
        step = jnp.where(accepted, step, jnp.zeros_like(step))
        return unravel(step), new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)
