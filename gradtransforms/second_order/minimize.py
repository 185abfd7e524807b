"""`minimize`: a deterministic solver loop compiled as one `lax.while_loop`."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    apply_updates,
)
from gradtransforms.second_order.box import find_box, project, projected_gradient
from gradtransforms.second_order.complex_params import conj
from gradtransforms.second_order.evaluations import evaluations, value_after
from gradtransforms.second_order.stopping import (
    RUNNING,
    Criteria,
    MinimizeStatus,
    Progress,
    next_progress,
    start_progress,
    status_message,
)
from gradtransforms.validation import (
    check_bool,
    check_callable,
    check_non_negative,
    check_positive_int,
    check_transformation,
)

__all__ = ["MinimizeResult", "MinimizeStatus", "minimize"]


class MinimizeResult(NamedTuple):
    """The result of `minimize`."""

    params: Any  # like init_params: the last iterate
    value: jax.Array  # scalar: f(params)
    grad_norm: jax.Array  # scalar: ‖∇f(params)‖₂ over all leaves
    num_steps: jax.Array  # int32: updates made
    num_fun_evals: jax.Array  # int32: evaluations of f, line-search trials included
    num_grad_evals: jax.Array  # int32: evaluations of ∇f
    converged: jax.Array  # bool: status is GRADIENT or SMALL_CHANGE
    aux: Any  # fun's auxiliary output at params (has_aux=True), else None
    state: Any  # the optimizer's final state
    status: jax.Array  # int32: a `MinimizeStatus`, why the loop stopped

    @property
    def message(self) -> Any:
        """`status` in words (an array of them for a batch of solves)."""
        return status_message(self.status)


class _Carry(NamedTuple):
    params: Any
    state: Any
    value: jax.Array
    grad: Any
    grad_norm: jax.Array
    num_steps: jax.Array
    num_fun_evals: jax.Array
    num_grad_evals: jax.Array
    progress: Progress


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

        def solve(init_params, criteria):
            fun_, init, update = (ref() for ref in refs)
            # Alive: their finalizers drop this entry as soon as one dies.
            assert init is not None and update is not None
            opt = _Optimizer(init, update, extra_args)
            return _solve(fun_, opt, has_aux, init_params, criteria)

        solver = _solvers[key] = jax.jit(solve)
        for part in parts:
            weakref.finalize(part, _solvers.pop, key, None)
    return solver


class _Problem(NamedTuple):
    """What one update of the loop needs, besides the carry."""

    optimizer: _Optimizer
    evaluate: Callable[[Any], tuple[jax.Array, Any]]  # params -> (f, ∇f)
    residual_norm: Callable[[Any, Any], jax.Array]  # (params, ∇f) -> norm
    value_fn: Callable[..., Any]
    criteria: Criteria
    descent_method: bool


def _step(problem: _Problem, c: _Carry) -> _Carry:
    """One update, its evaluations, and the status after it."""
    g = conj(c.grad)  # the update-like gradient (complex_params)
    if problem.optimizer.extra_args:
        updates, state = problem.optimizer.update(
            g, c.state, c.params, value=c.value, grad=g, value_fn=problem.value_fn
        )
    else:
        updates, state = problem.optimizer.update(g, c.state, c.params)
    params = apply_updates(c.params, updates)
    value, grad, fun_evals, grad_evals = value_after(problem.evaluate, state, params)
    value = value.astype(c.value.dtype)
    norm_dtype = c.grad_norm.dtype
    grad_norm = problem.residual_norm(params, grad).astype(norm_dtype)
    num_steps = c.num_steps + 1
    progress = next_progress(
        c.progress,
        problem.criteria,
        descent_method=problem.descent_method,
        old_value=c.value,
        value=value,
        grad_norm=grad_norm,
        step_norm=tu.global_norm(updates).astype(norm_dtype),
        param_norm=tu.global_norm(params).astype(norm_dtype),
        num_steps=num_steps,
    )
    return _Carry(
        params=params,
        state=state,
        value=value,
        grad=grad,
        grad_norm=grad_norm,
        num_steps=num_steps,
        num_fun_evals=c.num_fun_evals + fun_evals,
        num_grad_evals=c.num_grad_evals + grad_evals,
        progress=progress,
    )


def _solve(fun, optimizer, has_aux, init_params, criteria: Criteria):
    value_and_grad = jax.value_and_grad(fun, has_aux=has_aux)
    state = optimizer.init(init_params)
    box = find_box(state)
    if box is not None:  # a bounded solver: start inside, measure the KKT residual
        init_params = project(init_params, box)

    def evaluate(params):
        value, grad = value_and_grad(params)
        value = value[0] if has_aux else value
        return jnp.asarray(value), tu.cast_like(grad, params)

    def residual_norm(params, grad):
        if box is not None:
            grad = projected_gradient(params, grad, box)
        return tu.global_norm(grad)

    value, grad = evaluate(init_params)
    grad_norm = residual_norm(init_params, grad)
    problem = _Problem(
        optimizer=optimizer,
        evaluate=evaluate,
        residual_norm=residual_norm,
        value_fn=(lambda p: fun(p)[0]) if has_aux else fun,
        criteria=criteria.in_dtype(grad_norm.dtype),
        # A method that evaluates f inside its update should make progress
        # at every update, so it can stall (see `stopping`).
        descent_method=bool(evaluations(state)),
    )
    start = _Carry(
        params=init_params,
        state=state,
        value=value,
        grad=grad,
        grad_norm=grad_norm,
        num_steps=jnp.int32(0),
        num_fun_evals=jnp.int32(1),
        num_grad_evals=jnp.int32(1),
        progress=start_progress(value, grad_norm, problem.criteria.tol),
    )
    body_fn = functools.partial(_step, problem)
    end = jax.lax.while_loop(lambda c: c.progress.status == RUNNING, body_fn, start)
    aux, num_fun_evals = None, end.num_fun_evals
    if has_aux:
        _, aux = fun(end.params)
        num_fun_evals = num_fun_evals + 1
    status = end.progress.status
    return MinimizeResult(
        params=end.params,
        value=end.value,
        grad_norm=end.grad_norm,
        num_steps=end.num_steps,
        num_fun_evals=num_fun_evals,
        num_grad_evals=end.num_grad_evals,
        # A non-finite value is never a solution, whatever its gradient.
        converged=(status == MinimizeStatus.GRADIENT)
        | (status == MinimizeStatus.SMALL_CHANGE),
        aux=aux,
        state=end.state,
        status=status,
    )


def minimize(
    fun: Callable[..., Any],
    init_params: Any,
    optimizer: GradientTransformation,
    *,
    max_steps: int,
    tol: float,
    has_aux: bool = False,
    ftol: float = 0.0,
    xtol: float = 0.0,
) -> MinimizeResult:
    """Minimise a deterministic objective with any optimizer, in one compiled loop.

    $$\\theta_{t+1} = \\theta_t + u_t \\quad \\text{until } \\lVert \\nabla
    f(\\theta_t)\\rVert_2 \\le \\texttt{tol}, \\text{ a stall, or }
    t = \\texttt{max\\_steps}$$

    The whole solver is one `jax.jit`-compiled `lax.while_loop`: no Python per
    step. It is compiled once per (`fun`, `optimizer`, `has_aux`) and parameter
    shapes, and kept while `fun` and `optimizer` live (the compiled solver
    refers to them weakly, so it never keeps them alive): `max_steps`, `tol`,
    `ftol` and `xtol` are traced, so changing them does not recompile.
    `optimizer` is any gradtransforms or optax transformation. A
    `GradientTransformationExtraArgs` (every optimizer of
    `gradtransforms.second_order`, every `chain`) is called as
    `update(grad, state, params, value=f, grad=grad, value_fn=fun)`; a plain
    `GradientTransformation` (first-order) as `update(grad, state, params)`.
    After each update, $f$ and $\\nabla f$ at the new point are taken from the
    optimizer's state when a line search (ours or optax's) or `newton` has
    already evaluated them there (the `Evaluation` record those states carry),
    and evaluated otherwise; for that to be right the line search must be the
    last link of the chain that moves the parameters, as in every alias here.

    **Stopping.** `MinimizeResult.status` (a `MinimizeStatus`) says why the
    loop ended, and `.message` says it in words: the gradient norm is at
    most `tol` (`GRADIENT`); an update that moved $\\theta$ decreased $f$ by
    at most `ftol`$\\cdot\\max(|f_t|, |f_{t+1}|, 1)$ or had
    $\\lVert\\Delta\\theta\\rVert_2 \\le$ `xtol`$(1 +
    \\lVert\\theta\\rVert_2)$ (`SMALL_CHANGE`, off by default); a
    *descent method* (one that evaluates $f$ inside its update: a line
    search, `newton`, `newton_cg`, `lbfgs_b`) made two updates in a row
    without progress, that is neither a lower $f$ nor, where $f$ is flat to
    rounding, a new lowest gradient norm (`PRECISION_LOSS` when the gradient is below
    $\\sqrt{\\epsilon_\\text{mach}}$ of its start and a step like the last one
    could not change $f$ measurably, $\\lVert g\\rVert\\,
    \\lVert\\Delta\\theta\\rVert \\le 100\\,\\epsilon_\\text{mach}|f|$: `tol` is
    below what rounding allows; `LINESEARCH_FAILED` otherwise); `max_steps`
    updates (`MAX_STEPS`); $f$ or $\\nabla f$ not finite (`NON_FINITE`).
    `converged` is `GRADIENT` or `SMALL_CHANGE`: never at a non-finite value,
    even where the gradient vanishes (an $f$ of $+\\infty$). A stall wastes
    at most two updates' evaluations (the first failure gets the method's own
    recovery: the zoom search resumes where it stopped, Newton raises its
    damping).

    **Bounds.** With a bounded solver (`lbfgs_b`, whose state carries a
    `Box`), the loop starts from the projection of `init_params` onto the
    box, and `grad_norm` is the norm of the projected gradient
    $P(\\theta - g) - \\theta$ (zero exactly at a KKT point).

    **Batches.** `jax.vmap(lambda x0: minimize(f, x0, opt, ...))` solves many
    problems in one compiled loop (multi-start; or close `fun` over batched
    data); each member stops on its own criteria, its result frozen while
    the others go on, so each reports its own `status`, `num_steps` and
    evaluations. The loop runs until the slowest member stops.

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
      tol: stop when the L2 norm of the gradient (over all leaves; projected
        under bounds) is `<= tol` (a number >= 0).
      has_aux: `fun` returns `(value, aux)`.
      ftol: stop when an update decreases $f$ by at most this, relatively
        (a number >= 0; 0: never).
      xtol: stop when an update's step is at most this, relatively (a
        number >= 0; 0: never).

    Returns:
      A `MinimizeResult(params, value, grad_norm, num_steps, num_fun_evals,
      num_grad_evals, converged, aux, state, status)`, with the property
      `message`.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtransforms.second_order import lbfgs, minimize
      >>> f = lambda x: jnp.sum((x - 3.0) ** 2)
      >>> result = minimize(f, jnp.zeros(2), lbfgs(), max_steps=50, tol=1e-6)
      >>> bool(result.converged), result.message
      (True, 'converged: gradient norm <= tol')
    """
    check_callable("fun", fun)
    check_transformation("optimizer", optimizer)
    check_positive_int("max_steps", max_steps)
    for name, value in (("tol", tol), ("ftol", ftol), ("xtol", xtol)):
        check_non_negative(name, value)
        if jnp.ndim(value):
            raise TypeError(
                f"{name} must be a number (a scalar); got shape {jnp.shape(value)}."
            )
    check_bool("has_aux", has_aux)
    max_steps_array = jnp.asarray(min(max_steps, jnp.iinfo(jnp.int32).max), jnp.int32)
    solve = _compiled_solver(fun, optimizer, has_aux)
    return solve(init_params, Criteria(max_steps_array, tol, ftol, xtol))
