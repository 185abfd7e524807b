"""Newton's method damped Levenberg–Marquardt style, with a dense Hessian.

`newton` is textbook Algorithm 8.8 with the regularised step of eq. 8.28,
$-(H + \\alpha I)^{-1} g$, the damping $\\alpha$ adapted Levenberg–Marquardt
style. It forms the $k \\times k$ Hessian and diagonalises it: $O(k^2)$ memory
and $O(k^3)$ time per step, for models with at most a few thousand
parameters (`newton_cg` is the Hessian-free alternative).
"""

from __future__ import annotations

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
    """The quadratic model of one update, in the Hessian's eigenbasis."""

    x: jax.Array  # θ, raveled
    eigenvalues: jax.Array  # λ of H (symmetrised), ascending
    eigenvectors: jax.Array  # V: H = V diag(λ) Vᵀ
    g_eigen: jax.Array  # Vᵀ∇f(θ)
    f0: jax.Array  # f(θ)
    grad0: Any  # ∇f(θ) as a tree
    lowest: jax.Array  # the least α tried: 0 if H is positive definite, else
    # 2|λ_min| + rounding; inf when H is not finite (no trial at all)
    noise: jax.Array  # 8 ε |f(θ)|: decreases below this are rounding


def _model(f, params, updates, value, grad, dtype) -> tuple[_Model, Any]:
    """The model at θ (and `unravel`): one dense Hessian, one eigendecomposition."""
    x, unravel = tu.ravel(params)
    g = tu.ravel(tu.cast_like(updates, params))[0].astype(x.dtype)
    f0 = jnp.asarray(value).astype(dtype)
    hessian = jax.hessian(lambda z: f(unravel(z)))(x)
    eigenvalues, eigenvectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
    # Indefinite or singular H: shift the most negative eigenvalue to its
    # mirror image (α = 2|λ_min|, the scale of the curvature found), and at
    # least to the rounding of the largest |λ|. A positive λ_min, however
    # small, is trusted: the acceptance test judges the step.
    eps = jnp.finfo(x.dtype).eps
    resolution = x.size * eps * jnp.max(jnp.abs(eigenvalues), initial=0)
    smallest = jnp.min(eigenvalues, initial=0)
    lowest = jnp.maximum(-2 * smallest, 0) + resolution
    lowest = jnp.where(smallest > 0, jnp.zeros_like(lowest), lowest)
    # A Hessian with inf or nan entries (a kink of f) gives no model at all.
    finite = jnp.all(jnp.isfinite(eigenvalues)) & jnp.all(jnp.isfinite(eigenvectors))
    lowest = jnp.where(finite, lowest, jnp.inf)
    tiny = jnp.finfo(dtype).tiny
    noise = 8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f0), tiny)
    grad0 = tu.cast_like(grad, params)
    model = _Model(
        x, eigenvalues, eigenvectors, eigenvectors.T @ g, f0, grad0,
        lowest.astype(x.dtype), noise,
    )  # fmt: skip
    return model, unravel


def _coefficients(model: _Model, alpha: jax.Array) -> jax.Array:
    """$c = (\\Lambda + \\alpha I)^{-1} V^\\top g$: the step is $-Vc$."""
    return model.g_eigen / (model.eigenvalues + alpha.astype(model.x.dtype))


def _shorter(model: _Model, alpha: jax.Array, factor) -> jax.Array:
    """The α' > α whose step is `factor` times shorter than the step at α.

    $\\lVert d(\\alpha)\\rVert$ decreases monotonically in α; Newton's method
    on $1/\\lVert d\\rVert$, nearly linear in α (Moré & Sorensen, 1983),
    from the left converges monotonically.
    """
    target = jnp.linalg.norm(_coefficients(model, alpha)) / factor
    lam, gv = model.eigenvalues, model.g_eigen

    def newton_iteration(_, a):
        c = gv / (lam + a)
        norm = jnp.linalg.norm(c)
        slope = jnp.sum(c * c / (lam + a))  # -d‖d‖/dα · ‖d‖
        step = (norm / target - 1) * norm**2 / slope
        return jnp.where(jnp.isfinite(step) & (step > 0), a + step, a)

    raised = jax.lax.fori_loop(0, 30, newton_iteration, alpha.astype(lam.dtype))
    return jnp.maximum(raised, alpha)


def _trial(f, unravel, model: _Model, alpha, settings: _Settings):
    """Step with $(H + \\alpha I)^{-1}$, evaluate, and test the step."""
    dtype = model.f0.dtype
    c = _coefficients(model, alpha)
    step = -(model.eigenvectors @ c)
    usable = jnp.all(jnp.isfinite(step)) & (alpha >= model.lowest)
    step = jnp.where(usable, step, jnp.zeros_like(step))
    c = jnp.where(usable, c, jnp.zeros_like(c))
    # −(gᵀs + ½ sᵀHs) in the eigenbasis, with s = −Vc.
    curvature = jnp.sum(model.eigenvalues * c * c)
    predicted = (model.g_eigen @ c - 0.5 * curvature).astype(dtype)

    def evaluate(_):
        fx, gx = jax.value_and_grad(f)(unravel(model.x + step))
        return jnp.asarray(fx).astype(dtype), tu.cast_like(gx, model.grad0)

    def skip(_):
        return jnp.asarray(jnp.inf, dtype), model.grad0

    fx, gx = jax.lax.cond(usable, evaluate, skip, None)
    actual = model.f0 - fx
    # A predicted decrease below rounding cannot be measured: accept the step
    # unless f rises by more than rounding (at a minimum).
    in_noise = predicted <= model.noise
    decreased = jnp.where(
        in_noise,
        fx <= model.f0 + model.noise,
        (fx <= model.f0) & (actual >= settings.accept_ratio * predicted),
    )
    ok = usable & jnp.isfinite(fx) & tu.all_finite(gx) & decreased
    ratio = jnp.where(in_noise, 1, actual / predicted).astype(dtype)
    return ok, step, fx, gx, ratio, usable


def _after_rejection(model: _Model, alpha, settings: _Settings):
    """The next α after a rejected trial: a step `damping_increase` times shorter.

    From an α that gives no usable step (H + αI not safely positive
    definite, or singular), first `model.lowest`.
    """
    alpha = alpha.astype(model.x.dtype)
    usable = (alpha >= model.lowest) & jnp.all(
        jnp.isfinite(_coefficients(model, alpha))
    )
    # lowest = 0 with no usable step: H is zero to rounding; α = ‖g‖ makes a
    # gradient step of length 1.
    g_norm = jnp.maximum(jnp.linalg.norm(model.g_eigen), jnp.finfo(alpha.dtype).tiny)
    floor = jnp.where(model.lowest > 0, model.lowest, g_norm)
    return jnp.where(
        usable,
        _shorter(model, alpha, settings.damping_increase),
        jnp.maximum(alpha, floor),
    ).astype(model.f0.dtype)


def _next_damping(old, alpha, ratio, accepted, settings: _Settings):
    """α for the next update; the old one if this update had no finite model."""
    new = jnp.where(accepted, _after_acceptance(alpha, ratio, settings), alpha)
    return jnp.where(jnp.isfinite(new), new, old).astype(old.dtype)


def _after_acceptance(alpha, ratio, settings: _Settings):
    """Nielsen's update (1999): $\\alpha \\max(1/\\text{decrease}, 1 - (2\\rho - 1)^3)$.

    Continuous in ρ: a third of α after a step the model predicted well
    (ρ = 1), unchanged at ρ = 1/2, up to twice α as ρ falls to 0.
    """
    factor = jnp.maximum(1 / settings.damping_decrease, 1 - (2 * ratio - 1) ** 3)
    return (alpha * factor).astype(alpha.dtype)


def scale_by_damped_newton(
    damping: float = 0.0,
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

    on the raveled parameters, with the dense Hessian (`jax.hessian`) in its
    eigenbasis, $H = V\\Lambda V^\\top$, so that every trial $\\alpha$ costs
    $O(k^2)$. One update: from the current $\\alpha$, evaluate the trial
    point and accept it only if $f$ decreases by at least `accept_ratio` of
    the decrease the quadratic model (eq. 8.26) predicts. If not, raise
    $\\alpha$ until the step is `damping_increase` times shorter (Moré and
    Sorensen's Newton iteration on $1/\\lVert d(\\alpha)\\rVert$: the trust
    region shrinks, and $\\alpha$ moves on the scale of the spectrum, not by a
    fixed factor from a fixed floor), and retry. When $H$ is not positive
    definite (a saddle or a maximum nearby), $\\alpha$ is first raised to
    $2|\\lambda_\\min|$, so negative curvature never pulls the step towards
    a saddle or a maximum; as the textbook says, large $\\alpha$ turns the
    step into gradient descent with step $1/\\alpha$. (A predicted decrease
    below rounding, $8\\epsilon_\\text{mach}|f|$, cannot be measured: such a
    step is accepted unless $f$ rises by more than that, so the iteration can
    finish at a minimum.) On acceptance the next update starts from
    Nielsen's (1999) continuous update $\\alpha \\max(1/$`damping_decrease`$,
    1 - (2\\rho - 1)^3)$: a third of $\\alpha$ after a step the model
    predicted well, twice $\\alpha$ as $\\rho$ falls to 0. There is no floor:
    after a run of good steps $\\alpha$ falls far below the smallest
    eigenvalue, and the steps become Newton's (quadratic convergence). If no
    trial is accepted within `max_damping_steps`, the update is zero and the
    raised $\\alpha$ is kept.
    Cost: one Hessian ($k$ Hessian-vector products) and one $O(k^3)$
    eigendecomposition per update, $O(k^2)$ per trial, $O(k^2)$ memory;
    the trial points cost one value and gradient each (the gradient is kept
    for the next step). Complex parameters raise `TypeError` at `init`.

    The output is $d$, the *preconditioned gradient* (optax's sign
    convention for `scale_by_*`), and the step it tested is $-d$: follow it
    with `scale(-1.0)`, as `newton` does. Unlike a direction such as
    `scale_by_newton_cg`, this link already chooses the step length (the
    damping plays the role of a line search), so nothing else goes after it.
    Its state keeps $f$ and $\\nabla f$ at the accepted point
    (`NewtonState.evaluation`), which `minimize` reuses.

    Args:
      damping: initial $\\alpha \\ge 0$ (0, the default: start as pure
        Newton, which solves a positive-definite quadratic in one step).
      damping_increase: factor $> 1$: after a rejected trial, $\\alpha$ is
        raised until the step is this many times shorter.
      damping_decrease: factor $> 1$: after a step the model predicted well
        ($\\rho = 1$), $\\alpha$ is divided by this (Nielsen's update).
      accept_ratio: smallest $\\rho \\in (0, 1)$ accepted.
      max_damping_steps: most trial evaluations per update.
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
            alpha = jnp.where(ok, alpha, _after_rejection(model, alpha, settings))
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
            damping=_next_damping(state.damping, alpha, ratio, accepted, settings),
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
    damping: float = 0.0,
    *,
    damping_increase: float = 4.0,
    damping_decrease: float = 3.0,
    accept_ratio: float = 1e-4,
    max_damping_steps: int = 50,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Newton's method with Levenberg–Marquardt damping (Alg. 8.8, eq. 8.28).

    $$\\Delta\\theta = -(H + \\alpha I)^{-1} g$$

    with the damping $\\alpha$ adapted continuously from the ratio of the
    actual to the predicted decrease (Nielsen's update) and on the Hessian's
    spectrum after a rejected trial, so that negative curvature never pulls the step
    towards a saddle or a maximum and a large $\\alpha$ turns the step into
    gradient descent with step $1/\\alpha$, as the textbook says.
    `chain(scale_by_damped_newton(...), scale(-1.0))`, a chain like every
    solver here; `scale_by_damped_newton` describes the damping rule, the
    acceptance test and the cost ($O(k^2)$ memory, $O(k^3)$ time per step:
    for at most a few thousand parameters; `newton_cg` is Hessian-free).

    Args:
      damping: initial $\\alpha \\ge 0$ (0, the default: start as pure
        Newton, which solves a positive-definite quadratic in one step).
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
