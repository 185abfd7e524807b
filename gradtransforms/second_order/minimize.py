"""`minimize`: a deterministic solver loop compiled as one `lax.while_loop`."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    apply_updates,
)
from gradtransforms.objective import Evaluation
from gradtransforms.second_order.complex_params import conj
from gradtransforms.validation import (
    check_bool,
    check_callable,
    check_non_negative,
    check_positive_int,
    check_transformation,
)

__all__ = ["MinimizeResult", "minimize"]


class MinimizeResult(NamedTuple):
    """The result of `minimize`."""

    params: Any  # like init_params: the last iterate
    value: jax.Array  # scalar: f(params)
    grad_norm: jax.Array  # scalar: ‖∇f(params)‖₂ over all leaves
    num_steps: jax.Array  # int32: updates made
    num_fun_evals: jax.Array  # int32: evaluations of f, line-search trials included
    num_grad_evals: jax.Array  # int32: evaluations of ∇f
    converged: jax.Array  # bool: grad_norm <= tol at a finite value
    aux: Any  # fun's auxiliary output at params (has_aux=True), else None
    state: Any  # the optimizer's final state


def _from_optax(node: Any) -> Evaluation:
    """optax's line-search states carry no `Evaluation`: read theirs from `info`."""
    n = jnp.asarray(node.info.num_linesearch_steps, jnp.int32)
    if isinstance(node, optax.ScaleByZoomLinesearchState):
        return Evaluation(node.value, node.grad, n, n)
    grad_evals = jnp.int32(0 if node.grad is None else 1)
    return Evaluation(node.value, node.grad, n, grad_evals)


_OPTAX_LINESEARCHES = (
    optax.ScaleByZoomLinesearchState,
    optax.ScaleByBacktrackingLinesearchState,
)


def _evaluations(state: Any) -> list[Evaluation]:
    """The `Evaluation` records of the last update, anywhere in the state."""
    ours = tu.find_states(state, Evaluation)
    return ours + [_from_optax(n) for n in tu.find_states(state, _OPTAX_LINESEARCHES)]


def _evaluation_counts(records: list[Evaluation]) -> tuple[jax.Array, jax.Array]:
    """Evaluations of f and ∇f made inside the optimizer by the last update."""
    fun_evals, grad_evals = jnp.int32(0), jnp.int32(0)
    for r in records:
        fun_evals += jnp.asarray(r.num_fun_evals, jnp.int32)
        grad_evals += jnp.asarray(r.num_grad_evals, jnp.int32)
    return fun_evals, grad_evals


def _stored_evaluation(records: list[Evaluation], params: Any) -> Any:
    """(value, grad) at the new params from the records, if exactly one has them."""
    evaluated = [r for r in records if r.value is not None]
    if len(evaluated) != 1 or evaluated[0].grad is None:
        return None
    value, grad = evaluated[0].value, evaluated[0].grad
    if tu.first_difference(grad, params) is not None:
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


class _Optimizer(NamedTuple):
    """What the loop needs of the optimizer (rebuilt from weak references)."""

    init: Callable[..., Any]
    update: Callable[..., Any]
    extra_args: bool  # update takes value=, grad=, value_fn=


_solvers: dict[tuple, Callable[..., MinimizeResult]] = {}
"""Compiled solvers, by weak references to `fun`, `optimizer.init` and
`optimizer.update` (and two flags). The compiled solver reaches them through
the same weak references, so an entry holds none of the user's objects alive,
and it is dropped when any of them is garbage-collected."""


def _compiled_solver(fun, optimizer, has_aux) -> Callable[..., MinimizeResult]:
    """`jit(_solve)` for these objects: built once, reused while they live."""
    extra_args = isinstance(optimizer, GradientTransformationExtraArgs)
    parts = (fun, optimizer.init, optimizer.update)
    try:
        refs = tuple(weakref.ref(x) for x in parts)
    except TypeError:  # not weakly referenceable: compile for this call only
        opt = _Optimizer(optimizer.init, optimizer.update, extra_args)
        return jax.jit(functools.partial(_solve, fun, opt, has_aux))
    key = (*refs, extra_args, has_aux)
    solver = _solvers.get(key)
    if solver is None:

        def solve(init_params, max_steps, tol):
            fun_, init, update = (ref() for ref in refs)
            # Alive: their finalizers drop this entry as soon as one dies.
            assert init is not None and update is not None
            opt = _Optimizer(init, update, extra_args)
            return _solve(fun_, opt, has_aux, init_params, max_steps, tol)

        solver = _solvers[key] = jax.jit(solve)
        for part in parts:
            weakref.finalize(part, _solvers.pop, key, None)
    return solver


def _solve(fun, optimizer, has_aux, init_params, max_steps, tol):
    value_and_grad = jax.value_and_grad(fun, has_aux=has_aux)

    def evaluate(params):
        value, grad = value_and_grad(params)
        value = value[0] if has_aux else value
        return jnp.asarray(value), tu.cast_like(grad, params)

    value_fn = (lambda p: fun(p)[0]) if has_aux else fun
    extra_args = optimizer.extra_args

    def cond_fn(c: _Carry) -> jax.Array:
        return (c.num_steps < max_steps) & (c.grad_norm > tol) & jnp.isfinite(c.value)

    def body_fn(c: _Carry) -> _Carry:
        g = conj(c.grad)  # the update-like gradient (complex_params)
        if extra_args:
            updates, state = optimizer.update(
                g, c.state, c.params, value=c.value, grad=g, value_fn=value_fn
            )
        else:
            updates, state = optimizer.update(g, c.state, c.params)
        params = apply_updates(c.params, updates)
        records = _evaluations(state)
        fun_evals, grad_evals = _evaluation_counts(records)
        stored = _stored_evaluation(records, params)
        if stored is None:
            value, grad = evaluate(params)
            fun_evals, grad_evals = fun_evals + 1, grad_evals + 1
        else:
            stored_value = jnp.asarray(stored[0]).astype(c.value.dtype)
            stored_grad = tu.cast_like(stored[1], params)
            usable = jnp.isfinite(stored_value)

            def fresh(_):
                value, grad = evaluate(params)
                return value.astype(c.value.dtype), grad, jnp.int32(1)

            value, grad, extra = jax.lax.cond(
                usable, lambda _: (stored_value, stored_grad, jnp.int32(0)), fresh, None
            )
            fun_evals, grad_evals = fun_evals + extra, grad_evals + extra
        return _Carry(
            params=params,
            state=state,
            value=value.astype(c.value.dtype),
            grad=grad,
            grad_norm=tu.global_norm(grad).astype(c.grad_norm.dtype),
            num_steps=c.num_steps + 1,
            num_fun_evals=c.num_fun_evals + fun_evals,
            num_grad_evals=c.num_grad_evals + grad_evals,
        )

    value, grad = evaluate(init_params)
    grad_norm = tu.global_norm(grad)
    start = _Carry(
        params=init_params,
        state=optimizer.init(init_params),
        value=value,
        grad=grad,
        grad_norm=grad_norm,
        num_steps=jnp.int32(0),
        num_fun_evals=jnp.int32(1),
        num_grad_evals=jnp.int32(1),
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
        # A non-finite value is never a solution, whatever its gradient.
        converged=(end.grad_norm <= tol) & jnp.isfinite(end.value),
        aux=aux,
        state=end.state,
    )


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

    The whole solver is one `jax.jit`-compiled `lax.while_loop`: no Python per
    step. It is compiled once per (`fun`, `optimizer`, `has_aux`) and parameter
    shapes, and kept while `fun` and `optimizer` live (the compiled solver
    refers to them weakly, so it never keeps them alive): `max_steps` and `tol`
    are traced, so changing them does not recompile. `optimizer` is any
    gradtransforms or optax transformation. A `GradientTransformationExtraArgs`
    (every optimizer of `gradtransforms.second_order`, every `chain`) is called
    as `update(grad, state, params, value=f, grad=grad, value_fn=fun)`; a plain
    `GradientTransformation` (first-order) as `update(grad, state, params)`.
    After each update, $f$ and $\\nabla f$ at the new point are taken from the
    optimizer's state when a line search (ours or optax's) or `newton` has
    already evaluated them there (the `Evaluation` record those states carry),
    and evaluated otherwise; for that to be right the line search must be the
    last link of the chain that moves the parameters, as in every alias here.
    The loop also stops if $f$ becomes non-finite, and `converged` is then
    False, even where the gradient vanishes (an $f$ of $+\\infty$).

    Evaluations are counted honestly: the initial one, every line-search
    trial and Newton trial (from the `Evaluation` records in the optimizer's
    state, or optax's line-search info), every
    evaluation by the loop itself, and, with `has_aux`, the final evaluation
    that produces `aux`. Hessians and Hessian-vector products (`newton`,
    `newton_cg`) are not gradient evaluations: the optimizer's state reports
    them (`num_hessian_evals`, `num_hvp_evals`).

    Args:
      fun: the objective, `params -> value` (a real scalar), or
        `params -> (value, aux)` with `has_aux=True`. The optimizer's
        `value_fn` is always the value alone (so build its line search with
        `has_aux=False`).
      init_params: the starting point, any pytree of float arrays (or
        complex ones, for the optimizers that take them: the optimizer then
        receives the conjugate of `jax.grad`'s output, as optax expects;
        see `gradtransforms.second_order.complex_params`).
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
    check_callable("fun", fun)
    check_transformation("optimizer", optimizer)
    check_positive_int("max_steps", max_steps)
    check_non_negative("tol", tol)
    if jnp.ndim(tol):
        raise TypeError(f"tol must be a number (a scalar); got shape {jnp.shape(tol)}.")
    check_bool("has_aux", has_aux)
    max_steps_array = jnp.asarray(min(max_steps, jnp.iinfo(jnp.int32).max), jnp.int32)
    solve = _compiled_solver(fun, optimizer, has_aux)
    return solve(init_params, max_steps_array, tol)
