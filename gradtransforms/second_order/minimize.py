"""`minimize`: a deterministic solver loop compiled as one `lax.while_loop`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tm
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    apply_updates,
)
from gradtransforms.second_order.linesearch import (
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
)
from gradtransforms.second_order.newton import NewtonState
from gradtransforms.tree import int32
from gradtransforms.validation import check_bool, check_non_negative, check_positive_int

__all__ = ["MinimizeResult", "minimize"]


class MinimizeResult(NamedTuple):
    """The result of `minimize`."""

    params: Any  # like init_params: the last iterate
    value: jax.Array  # scalar: f(params)
    grad_norm: jax.Array  # scalar: ‖∇f(params)‖₂ over all leaves
    num_steps: jax.Array  # int32: updates made
    num_fun_evals: jax.Array  # int32: evaluations of f, line-search trials included
    num_grad_evals: jax.Array  # int32: evaluations of ∇f
    converged: jax.Array  # bool: grad_norm <= tol
    aux: Any  # fun's auxiliary output at params (has_aux=True), else None
    state: Any  # the optimizer's final state


# States whose `value` and `grad` are f and ∇f at the parameters *after* the
# update they produced (a line search's accepted point; Newton's accepted
# trial), so the loop need not evaluate them again.
_EVALUATING_STATES = (
    ScaleByZoomLinesearchState,
    ScaleByBacktrackingLinesearchState,
    NewtonState,
    optax.ScaleByZoomLinesearchState,
    optax.ScaleByBacktrackingLinesearchState,
)


def _is_counting(node: Any) -> bool:
    fields = getattr(node, "_fields", ())
    return ("num_fun_evals" in fields and "num_grad_evals" in fields) or isinstance(
        node,
        optax.ScaleByZoomLinesearchState | optax.ScaleByBacktrackingLinesearchState,
    )


def _evaluation_counts(state: Any) -> tuple[jax.Array, jax.Array]:
    """Evaluations of f and ∇f made inside the optimizer by the last update.

    Our transformations report them as `num_fun_evals` / `num_grad_evals`
    state fields; optax's line searches as `info.num_linesearch_steps`.
    """
    fun_evals, grad_evals = int32(0), int32(0)
    for node in jax.tree.leaves(state, is_leaf=_is_counting):
        if isinstance(node, optax.ScaleByZoomLinesearchState):
            n = int32(node.info.num_linesearch_steps)
            fun_evals, grad_evals = fun_evals + n, grad_evals + n
        elif isinstance(node, optax.ScaleByBacktrackingLinesearchState):
            fun_evals += int32(node.info.num_linesearch_steps)
            grad_evals += int32(0 if node.grad is None else 1)
        elif _is_counting(node):
            fun_evals += int32(node.num_fun_evals)
            grad_evals += int32(node.num_grad_evals)
    return fun_evals, grad_evals


def _stored_evaluation(state: Any, params: Any) -> tuple[Any, Any] | None:
    """(value, grad) at the new params from the optimizer's state, if it has them."""
    nodes = [
        node
        for node in jax.tree.leaves(
            state, is_leaf=lambda x: isinstance(x, _EVALUATING_STATES)
        )
        if isinstance(node, _EVALUATING_STATES)
    ]
    if len(nodes) != 1 or nodes[0].grad is None:
        return None
    value, grad = nodes[0].value, nodes[0].grad
    if tm.first_difference(grad, params) is not None:
        return None
    return value, grad


class _Carry(NamedTuple):
    params: Any
    state: Any
    value: jax.Array
    grad: Any
    grad_norm: jax.Array
    num_steps: jax.Array
    num_fun_evals: jax.Array
    num_grad_evals: jax.Array


def _solve(fun, optimizer, has_aux, init_params, max_steps, tol):
    value_and_grad = jax.value_and_grad(fun, has_aux=has_aux)

    def evaluate(params):
        value, grad = value_and_grad(params)
        value = value[0] if has_aux else value
        return jnp.asarray(value), tm.tree_cast(grad, params)

    value_fn = (lambda p: fun(p)[0]) if has_aux else fun
    extra_args = isinstance(optimizer, GradientTransformationExtraArgs)

    def cond_fn(c: _Carry) -> jax.Array:
        return (c.num_steps < max_steps) & (c.grad_norm > tol) & jnp.isfinite(c.value)

    def body_fn(c: _Carry) -> _Carry:
        if extra_args:
            updates, state = optimizer.update(
                c.grad, c.state, c.params, value=c.value, grad=c.grad, value_fn=value_fn
            )
        else:
            updates, state = optimizer.update(c.grad, c.state, c.params)
        params = apply_updates(c.params, updates)
        fun_evals, grad_evals = _evaluation_counts(state)
        stored = _stored_evaluation(state, params)
        if stored is None:
            value, grad = evaluate(params)
            fun_evals, grad_evals = fun_evals + 1, grad_evals + 1
        else:
            stored_value = jnp.asarray(stored[0]).astype(c.value.dtype)
            stored_grad = tm.tree_cast(stored[1], params)
            usable = jnp.isfinite(stored_value)

            def fresh(_):
                value, grad = evaluate(params)
                return value.astype(c.value.dtype), grad, int32(1)

            value, grad, extra = jax.lax.cond(
                usable, lambda _: (stored_value, stored_grad, int32(0)), fresh, None
            )
            fun_evals, grad_evals = fun_evals + extra, grad_evals + extra
        return _Carry(
            params=params,
            state=state,
            value=value.astype(c.value.dtype),
            grad=grad,
            grad_norm=tm.global_norm(grad).astype(c.grad_norm.dtype),
            num_steps=c.num_steps + 1,
            num_fun_evals=c.num_fun_evals + fun_evals,
            num_grad_evals=c.num_grad_evals + grad_evals,
        )

    value, grad = evaluate(init_params)
    grad_norm = tm.global_norm(grad)
    start = _Carry(
        params=init_params,
        state=optimizer.init(init_params),
        value=value,
        grad=grad,
        grad_norm=grad_norm,
        num_steps=int32(0),
        num_fun_evals=int32(1),
        num_grad_evals=int32(1),
    )
    tol = jnp.asarray(tol).astype(grad_norm.dtype)
    end = jax.lax.while_loop(cond_fn, body_fn, start)
    aux, num_fun_evals = None, end.num_fun_evals
    if has_aux:
        _, aux = fun(end.params)
        num_fun_evals = num_fun_evals + 1
    return MinimizeResult(
        params=end.params,
        value=end.value,
        grad_norm=end.grad_norm,
        num_steps=end.num_steps,
        num_fun_evals=num_fun_evals,
        num_grad_evals=end.num_grad_evals,
        converged=end.grad_norm <= tol,
        aux=aux,
        state=end.state,
    )


_solve_jit = jax.jit(_solve, static_argnums=(0, 1, 2))


def minimize(
    fun: Callable[..., Any],
    init_params: Any,
    optimizer: GradientTransformation,
    *,
    max_steps: int,
    tol: float,
    has_aux: bool = False,
) -> MinimizeResult:
    """Minimise a deterministic objective with any optimizer, in one compiled loop.

    $$\\theta_{t+1} = \\theta_t + u_t \\quad \\text{until } \\lVert \\nabla
    f(\\theta_t)\\rVert_2 \\le \\texttt{tol} \\text{ or } t = \\texttt{max\\_steps}$$

    The whole solver is one `jax.jit`-compiled `lax.while_loop`: no Python
    per step. It is compiled once per (`fun`, `optimizer`, `has_aux`) and
    parameter shapes: `max_steps` and `tol` are traced, so changing them
    does not recompile. `optimizer` is any gradtransforms or optax
    transformation. A `GradientTransformationExtraArgs` (every optimizer of
    `gradtransforms.second_order`, every `chain`) is called as
    `update(grad, state, params, value=f, grad=grad, value_fn=fun)`; a plain
    `GradientTransformation` (first-order) as `update(grad, state, params)`.
    After each update, $f$ and $\\nabla f$ at the new point are taken from the
    optimizer's state when a line search (ours or optax's) or `newton` has
    already evaluated them there, and evaluated otherwise; for that to be
    right the line search must be the last link of the chain, as in every
    alias here. The loop also stops if $f$ becomes non-finite.

    Evaluations are counted honestly: the initial one, every line-search
    trial and Newton trial (from the `num_fun_evals` / `num_grad_evals`
    fields of the optimizer's states, or optax's line-search info), every
    evaluation by the loop itself, and, with `has_aux`, the final evaluation
    that produces `aux`. Hessians and Hessian-vector products (`newton`,
    `newton_cg`) are not gradient evaluations: the optimizer's state reports
    them (`num_hessian_evals`, `num_hvp_evals`).

    Args:
      fun: the objective, `params -> value` (a real scalar), or
        `params -> (value, aux)` with `has_aux=True`. The optimizer's
        `value_fn` is always the value alone (so build its line search with
        `has_aux=False`).
      init_params: the starting point, any pytree of float arrays.
      optimizer: the transformation producing the updates to add.
      max_steps: most updates (an int > 0).
      tol: stop when the L2 norm of the gradient (over all leaves) is
        `<= tol` (a number >= 0).
      has_aux: `fun` returns `(value, aux)`.

    Returns:
      A `MinimizeResult(params, value, grad_norm, num_steps, num_fun_evals,
      num_grad_evals, converged, aux, state)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtransforms.second_order import lbfgs, minimize
      >>> f = lambda x: jnp.sum((x - 3.0) ** 2)
      >>> result = minimize(f, jnp.zeros(2), lbfgs(), max_steps=50, tol=1e-6)
      >>> bool(result.converged)
      True
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable; got {fun!r}.")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "optimizer must be a GradientTransformation (an (init, update) "
            f"pair); got {type(optimizer).__name__}."
        )
    check_positive_int("max_steps", max_steps)
    check_non_negative("tol", tol)
    check_bool("has_aux", has_aux)
    max_steps_array = int32(min(max_steps, jnp.iinfo(jnp.int32).max))
    try:
        hash((fun, optimizer))
    except TypeError:  # unhashable: compile this call on its own
        solve = jax.jit(lambda p, n, t: _solve(fun, optimizer, has_aux, p, n, t))
        return solve(init_params, max_steps_array, tol)
    return _solve_jit(fun, optimizer, has_aux, init_params, max_steps_array, tol)
