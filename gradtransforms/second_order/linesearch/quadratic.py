"""Exact line search on a quadratic, in closed form (textbook §8.6.2)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import check_call, objective
from gradtransforms.second_order.complex_params import conj, real_vdot
from gradtransforms.second_order.linesearch.steps import scaled_or_zero
from gradtransforms.validation import check_bool

__all__ = ["ScaleByQuadraticLinesearchState", "scale_by_quadratic_linesearch"]


class ScaleByQuadraticLinesearchState(NamedTuple):
    """State of `scale_by_quadratic_linesearch`."""

    learning_rate: jax.Array  # scalar: the step ε* of the last update
    num_hvp_evals: jax.Array  # int32: Hessian-vector products by the last update


def scale_by_quadratic_linesearch(
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """Exact line search on a quadratic, in closed form (textbook §8.6.2).

    $$\\varepsilon^* = -\\frac{g^\\top u}{u^\\top H u}$$

    minimises $f(\\theta + \\varepsilon u)$ exactly when $f$ is quadratic
    (Algorithm 8.9: "on a truly quadratic cost function, analytically solve
    for $\\varepsilon^*$"); $Hu$ is one Hessian-vector product
    (forward-over-reverse), no Hessian is formed. The objective is not
    evaluated, so this is only for quadratic objectives: on anything else use
    `scale_by_zoom_linesearch`. If $u^\\top H u \\le 0$ or the step is not
    finite, the update is zero.

    Args:
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(updates, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns
      $\\varepsilon^* u$ and a `ScaleByQuadraticLinesearchState`.
    """
    check_bool("has_aux", has_aux)

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        return ScaleByQuadraticLinesearchState(jnp.zeros((), dtype), jnp.int32(0))

    def update_fn(updates, state, params=None, *, grad=None, **extra):
        extra.pop("value", None)
        value_fn = extra.pop("value_fn", None)
        owner = "scale_by_quadratic_linesearch"
        check_call(owner, updates, params, grad=grad, value_fn=value_fn)
        f = objective(value_fn, extra, has_aux, owner)
        dtype = state.learning_rate.dtype
        u = tu.cast_like(updates, params)
        _, hu = jax.jvp(jax.grad(f), (params,), (u,))
        # jax.grad's output is the conjugate of the update-like gradient.
        curvature = real_vdot(u, conj(hu), dtype)
        slope = real_vdot(updates, grad, dtype)
        step = -slope / jnp.where(curvature > 0, curvature, 1)
        step = jnp.where((curvature > 0) & jnp.isfinite(step), step, 0).astype(dtype)
        new_state = ScaleByQuadraticLinesearchState(step, jnp.int32(1))
        return scaled_or_zero(step, updates), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
