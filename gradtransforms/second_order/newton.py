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
from gradtransforms.validation import (
    check_bool,
    check_factor,
    check_fraction,
    check_non_negative,
    check_positive_int,
)

__all__ = ["NewtonState", "newton", "scale_by_damped_newton"]


class NewtonState(NamedTuple):
    """State of `scale_by_damped_newton` (the first link of `newton`)."""

    damping: jax.Array  # scalar: α for the next update
    ratio: jax.Array  # scalar: actual / predicted decrease of the last step
    num_hessian_evals: jax.Array  # int32: dense Hessians by the last update
    evaluation: Evaluation  # f and ∇f at params + updates, and the trials made

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


class _Settings(NamedTuple):
    damping_increase: float
    damping_decrease: float
    accept_ratio: float
    max_damping_steps: int


class _Model(NamedTuple):
    """The quadratic model of one update, on the raveled parameters."""

    x: jax.Array  # θ, raveled
    g: jax.Array  # ∇f(θ), raveled
    hessian: jax.Array  # H, symmetrised
    f0: jax.Array  # f(θ)
    grad0: Any  # ∇f(θ) as a tree
    floor: jax.Array  # the smallest nonzero damping, √ε max(1, max|H_ii|)
    noise: jax.Array  # 8 ε |f(θ)|: decreases below this are rounding


def _model(f, params, updates, value, grad, dtype) -> tuple[_Model, Any]:
    """The model at θ (and `unravel`): one dense Hessian."""
    x, unravel = tu.ravel(params)
    g = tu.ravel(tu.cast_like(updates, params))[0].astype(x.dtype)
    f0 = jnp.asarray(value).astype(dtype)
    hessian = jax.hessian(lambda z: f(unravel(z)))(x)
    hessian = 0.5 * (hessian + hessian.T)
    scale_h = jnp.maximum(1, jnp.max(jnp.abs(jnp.diag(hessian)), initial=0))
    floor = (math.sqrt(jnp.finfo(dtype).eps) * scale_h).astype(dtype)
    tiny = jnp.finfo(dtype).tiny
    noise = 8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f0), tiny)
    grad0 = tu.cast_like(grad, params)
    return _Model(x, g, hessian, f0, grad0, floor, noise), unravel


def _trial(f, unravel, model: _Model, alpha, settings: _Settings):
    """Factorise $H + \\alpha I$, step, evaluate, and test the step."""
    dtype = model.f0.dtype
    eye = jnp.eye(model.x.size, dtype=model.x.dtype)
    chol = jnp.linalg.cholesky(model.hessian + alpha.astype(model.x.dtype) * eye)
    factorised = jnp.all(jnp.isfinite(chol))
    step = -cho_solve((chol, True), model.g)
    step = jnp.where(factorised, step, jnp.zeros_like(step))
    predicted = -(model.g @ step + 0.5 * step @ (model.hessian @ step)).astype(dtype)

    def evaluate(_):
        fx, gx = jax.value_and_grad(f)(unravel(model.x + step))
        return jnp.asarray(fx).astype(dtype), tu.cast_like(gx, model.grad0)

    def skip(_):
        return jnp.asarray(jnp.inf, dtype), model.grad0

    fx, gx = jax.lax.cond(factorised, evaluate, skip, None)
    actual = model.f0 - fx
    # A predicted decrease below rounding cannot be measured: accept the step
    # unless f rises by more than rounding (at a minimum).
    in_noise = predicted <= model.noise
    decreased = jnp.where(
        in_noise,
        fx <= model.f0 + model.noise,
        (fx <= model.f0) & (actual >= settings.accept_ratio * predicted),
    )
    ok = factorised & jnp.isfinite(fx) & tu.all_finite(gx) & decreased
    ratio = jnp.where(in_noise, 1, actual / predicted).astype(dtype)
    return ok, step, fx, gx, ratio, factorised


def _next_damping(alpha, ratio, accepted, model: _Model, settings: _Settings):
    """Levenberg–Marquardt: lower α after a good step, raise it after a poor one."""
    lowered = alpha / settings.damping_decrease
    lowered = jnp.where(lowered < model.floor, jnp.zeros_like(lowered), lowered)
    raised = jnp.maximum(alpha * settings.damping_increase, model.floor)
    adapted = jnp.where(ratio > 0.75, lowered, jnp.where(ratio < 0.25, raised, alpha))
    return jnp.where(accepted, adapted, alpha).astype(model.f0.dtype)


def scale_by_damped_newton(
    damping: float = 1e-3,
    *,
    damping_increase: float = 4.0,
    damping_decrease: float = 3.0,
    accept_ratio: float = 1e-4,
    max_damping_steps: int = 50,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Damped Newton direction $(H + \\alpha I)^{-1} g$ with a tested step (Alg. 8.8).

    $$d = (H + \\alpha I)^{-1} g, \\quad \\Delta\\theta = -d, \\qquad
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
    next update starts from $\\alpha$ / `damping_decrease` if $\\rho > 3/4$
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
    gradient each (the gradient is kept for the next step). Complex
    parameters raise `TypeError` at `init`.

    The output is $d$, the *preconditioned gradient* (optax's sign
    convention for `scale_by_*`), and the step it tested is $-d$: follow it
    with `scale(-1.0)`, as `newton` does. Unlike a direction such as
    `scale_by_newton_cg`, this link already chooses the step length (the
    damping plays the role of a line search), so nothing else goes after it.
    Its state keeps $f$ and $\\nabla f$ at the accepted point
    (`NewtonState.evaluation`), which `minimize` reuses.

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
      *, value, grad, value_fn, **fn_kwargs)` returns $d$ (zero when no
      trial is accepted) and a `NewtonState`. `value_fn` is required (the
      Hessian and the trial points need it).
    """
    check_non_negative("damping", damping)
    check_factor("damping_increase", damping_increase)
    check_factor("damping_decrease", damping_decrease)
    check_fraction("accept_ratio", accept_ratio)
    check_positive_int("max_damping_steps", max_damping_steps)
    check_bool("has_aux", has_aux)
    settings = _Settings(
        damping_increase, damping_decrease, accept_ratio, max_damping_steps
    )

    def init_fn(params):
        reject_complex(params, "newton")
        dtype = tu.scalar_dtype(params)
        return NewtonState(
            damping=jnp.asarray(damping, dtype),
            ratio=jnp.zeros((), dtype),
            num_hessian_evals=jnp.int32(0),
            evaluation=Evaluation.start(
                jnp.asarray(jnp.inf, dtype), tu.zeros_like(params)
            ),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, **extra):
        value_fn = extra.pop("value_fn", None)
        needs = {"value": value, "grad": grad, "value_fn": value_fn}
        check_call("newton", updates, params, state.evaluation, **needs)
        f = objective(value_fn, extra, has_aux, "newton")
        dtype = state.damping.dtype
        model, unravel = _model(f, params, updates, value, grad, dtype)

        def body_fn(c):
            i, alpha, _, _, _, _, _, n_eval = c
            ok, step, fx, gx, ratio, evaluated = _trial(
                f, unravel, model, alpha, settings
            )
            raised = jnp.maximum(alpha * damping_increase, model.floor).astype(dtype)
            alpha = jnp.where(ok, alpha, raised)
            n_eval = n_eval + jnp.int32(evaluated)
            return (i + 1, alpha, ok, step, fx, gx, ratio, n_eval)

        zero = jnp.int32(0)
        start = (
            zero, state.damping, jnp.zeros((), bool), jnp.zeros_like(model.x),
            model.f0, model.grad0, jnp.zeros((), dtype), zero,
        )  # fmt: skip
        _, alpha, accepted, step, fx, gx, ratio, n_eval = jax.lax.while_loop(
            lambda c: ~c[2] & (c[0] < max_damping_steps), body_fn, start
        )
        new_state = NewtonState(
            damping=_next_damping(alpha, ratio, accepted, model, settings),
            ratio=ratio,
            num_hessian_evals=jnp.int32(1),
            evaluation=Evaluation(
                value=jnp.where(accepted, fx, model.f0),
                grad=tu.where(accepted, gx, model.grad0),
                num_fun_evals=n_eval,
                num_grad_evals=n_eval,
            ),
        )
        step = jnp.where(accepted, step, jnp.zeros_like(step))
        return unravel(-step), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


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

    $$\\Delta\\theta = -(H + \\alpha I)^{-1} g$$

    with the damping $\\alpha$ adapted from the ratio of the actual to the
    predicted decrease, so that negative curvature never pulls the step
    towards a saddle or a maximum and a large $\\alpha$ turns the step into
    gradient descent with step $1/\\alpha$, as the textbook says.
    `chain(scale_by_damped_newton(...), scale(-1.0))`, a chain like every
    solver here; `scale_by_damped_newton` describes the damping rule, the
    acceptance test and the cost ($O(k^2)$ memory, $O(k^3)$ time per step:
    for at most a few thousand parameters; `newton_cg` is Hessian-free).

    Args:
      damping: initial $\\alpha \\ge 0$ (0: start as pure Newton, which solves
        a positive-definite quadratic in one step).
      damping_increase: see `scale_by_damped_newton`.
      damping_decrease: see `scale_by_damped_newton`.
      accept_ratio: see `scale_by_damped_newton`.
      max_damping_steps: see `scale_by_damped_newton`.
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(grads, state, params,
      *, value, grad, value_fn, **fn_kwargs)` returns $\\Delta\\theta$; its
      state is the tuple of the two links' states, the first a
      `NewtonState`. `value_fn` is required (the Hessian and the trial points
      need it).
    """
    return chain(
        scale_by_damped_newton(
            damping,
            damping_increase=damping_increase,
            damping_decrease=damping_decrease,
            accept_ratio=accept_ratio,
            max_damping_steps=max_damping_steps,
            has_aux=has_aux,
        ),
        scale(-1.0),
    )
