"""Curvature and update diagnostics (textbook §8.2.1).

A gradient step of size $\\varepsilon$ changes a cost with gradient $g$ and
Hessian $H$ by, to second order,

$$\\Delta J \\approx \\tfrac12 \\varepsilon^2 g^\\top H g - \\varepsilon g^\\top g,$$

so ill-conditioning shows when $\\tfrac12\\varepsilon^2 g^\\top H g$ outgrows
$\\varepsilon g^\\top g$. `curvature` measures $g^\\top g$ and $g^\\top H g$ with
one Hessian-vector product (forward-over-reverse; no dense Hessian) and the
step $\\varepsilon^* = g^\\top g / g^\\top H g$ that minimises the local
quadratic along $-g$. `monitor` records gradient, update and parameter norms
in the optimizer state so they can be logged without splitting a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.validation import check_transformation

__all__ = [
    "Curvature",
    "MonitorState",
    "curvature",
    "hessian_vector_product",
    "lookup",
    "monitor",
    "optimal_step_size",
    "predicted_change",
]


def hessian_vector_product(
    fun: Callable[..., jax.Array], params: Any, vector: Any, *args: Any
) -> Any:
    """$H v$ for $H = \\nabla^2 f(\\theta)$, by forward-over-reverse differentiation.

    Costs about two gradient evaluations; the Hessian is never formed.

    Args:
      fun: a scalar function `fun(params, *args)`.
      params: $\\theta$, any pytree.
      vector: $v$, a pytree like `params`.
      *args: further arguments of `fun`, held fixed.

    Returns:
      $Hv$, a pytree like `params`.
    """
    grad = jax.grad(lambda p: fun(p, *args))
    return jax.jvp(grad, (params,), (vector,))[1]


def predicted_change(gtg: Any, gthg: Any, step_size: Any) -> jax.Array:
    """Second-order change of the cost for a step $-\\varepsilon g$ (§8.2.1).

    $$\\Delta J \\approx \\tfrac12 \\varepsilon^2 g^\\top H g - \\varepsilon g^\\top g$$

    Args:
      gtg: $g^\\top g$.
      gthg: $g^\\top H g$.
      step_size: $\\varepsilon$.

    Returns:
      The predicted change (negative: the cost goes down).
    """
    gtg, gthg = jnp.asarray(gtg), jnp.asarray(gthg)
    eps = jnp.asarray(step_size, gtg.dtype)
    return 0.5 * eps**2 * gthg - eps * gtg


def optimal_step_size(gtg: Any, gthg: Any) -> jax.Array:
    """The step that minimises the local quadratic along $-g$.

    $$\\varepsilon^* = g^\\top g / g^\\top H g$$

    Args:
      gtg: $g^\\top g$.
      gthg: $g^\\top H g$.

    Returns:
      $\\varepsilon^*$, or $+\\infty$ when $g^\\top H g \\le 0$ (no minimum
      along $-g$: the quadratic model decreases without bound).
    """
    gtg, gthg = jnp.asarray(gtg), jnp.asarray(gthg)
    safe = jnp.where(gthg > 0, gthg, jnp.ones_like(gthg))
    return jnp.where(gthg > 0, gtg / safe, jnp.inf)


class Curvature(NamedTuple):
    """The result of `curvature`."""

    value: jax.Array
    """$f(\\theta)$."""
    grad_sq_norm: jax.Array
    """$g^\\top g$."""
    grad_hessian_grad: jax.Array
    """$g^\\top H g$."""
    optimal_step: jax.Array
    """$\\varepsilon^* = g^\\top g / g^\\top H g$ ($+\\infty$ if not positive)."""


def curvature(fun: Callable[..., jax.Array], params: Any, *args: Any) -> Curvature:
    """Measure $g^\\top g$, $g^\\top H g$ and $\\varepsilon^*$ at `params` (§8.2.1).

    One gradient and one Hessian-vector product; works under `jit`.

    Args:
      fun: a scalar function `fun(params, *args)`.
      params: $\\theta$, any pytree.
      *args: further arguments of `fun` (e.g. a minibatch), held fixed.

    Returns:
      A `Curvature(value, grad_sq_norm, grad_hessian_grad, optimal_step)`.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> c = gt.diagnostics.curvature(lambda x: 2.0 * jnp.sum(x**2), jnp.ones(3))
      >>> float(c.optimal_step)  # 1 / (2 * 2): the exact minimiser along -g
      0.25
    """
    value, grad = jax.value_and_grad(lambda p: fun(p, *args))(params)
    hg = hessian_vector_product(fun, params, grad, *args)
    gtg = tu.vdot(grad, grad)
    gthg = tu.vdot(grad, hg)
    return Curvature(value, gtg, gthg, optimal_step_size(gtg, gthg))


class MonitorState(NamedTuple):
    """State of `monitor`: the norms seen at the last update."""

    grad_norm: jax.Array
    """L2 norm of the incoming updates (the gradients if `monitor` is first)."""
    update_norm: jax.Array
    """L2 norm of the outgoing updates."""
    param_norm: jax.Array
    """L2 norm of the parameters before the update (0 if none were given)."""
    update_ratio: jax.Array
    """`update_norm / param_norm` (0 when `param_norm` is 0)."""
    inner_state: Any
    """The wrapped transformation's state."""


def monitor(
    inner: GradientTransformation | None = None,
) -> GradientTransformationExtraArgs:
    """Record gradient, update and parameter norms in the state.

    Wraps `inner` (default: the identity) and keeps $\\|g\\|$ (what comes in),
    $\\|u\\|$ (what `inner` sends out), $\\|\\theta\\|$ and
    $\\|u\\|/\\|\\theta\\|$ from the last update. The updates themselves are
    unchanged. Read them with `lookup(opt_state)`.

    Finite trees give finite norms: where the sum of squares would overflow
    (float32 elements above about $10^{19}$), the norm is recomputed from the
    tree scaled by a power of two. A NaN or $\\pm\\infty$ in a tree is recorded
    as it comes (NaN or $\\infty$), and so is a norm beyond the dtype's range
    ($\\infty$; the ratio of two such norms is NaN). `monitor` reports and
    never repairs; the norms feed no arithmetic. To log bad steps while they
    are skipped, wrap the guard: `monitor(apply_if_finite(tx))`.

    Args:
      inner: the transformation to watch, e.g. a whole optimizer.

    Returns:
      A `GradientTransformationExtraArgs` with `MonitorState`.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.diagnostics.monitor(gt.adam(1e-3))
    """
    if inner is not None:
        check_transformation("inner", inner)
    inner = optax.with_extra_args_support(inner or optax.identity())

    def init_fn(params):
        zero = jnp.zeros((), tu.scalar_dtype(params))
        return MonitorState(zero, zero, zero, zero, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        out, inner_state = inner.update(
            updates, state.inner_state, params, **extra_args
        )
        dtype = state.grad_norm.dtype
        grad_norm = tu.overflow_safe_global_norm(updates).astype(dtype)
        update_norm = tu.overflow_safe_global_norm(out).astype(dtype)
        param_norm = (
            tu.overflow_safe_global_norm(params).astype(dtype)
            if params is not None
            else jnp.zeros([], dtype)
        )
        safe = jnp.where(param_norm > 0, param_norm, jnp.ones_like(param_norm))
        ratio = jnp.where(param_norm > 0, update_norm / safe, jnp.zeros_like(safe))
        return out, MonitorState(grad_norm, update_norm, param_norm, ratio, inner_state)

    return GradientTransformationExtraArgs(init_fn, update_fn)


def lookup(opt_state: Any) -> dict[str, jax.Array]:
    """The norms recorded by the outermost `monitor` found in `opt_state`.

    Args:
      opt_state: an optimizer state containing a `MonitorState` anywhere.

    Returns:
      `{"grad_norm", "update_norm", "param_norm", "update_ratio"}`.

    Raises:
      ValueError: if no `monitor` state is found.
    """
    found = tu.find_states(opt_state, MonitorState)
    if not found:
        raise ValueError(
            "opt_state holds no monitor state; wrap with diagnostics.monitor."
        )
    x = found[0]
    return {
        "grad_norm": x.grad_norm,
        "update_norm": x.update_norm,
        "param_norm": x.param_norm,
        "update_ratio": x.update_ratio,
    }
