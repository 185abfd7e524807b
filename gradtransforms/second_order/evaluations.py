"""What an update evaluated: the records `minimize` reads from optimizer states.

Our line searches, `newton`, `newton_cg` and `lbfgs_b` keep an `Evaluation`
in their state; optax's line searches keep their own states, whose `info`
says how many trials they made. `minimize` counts every evaluation from these
records and reuses $f$ and $\\nabla f$ at the new parameters when exactly
one record has them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.objective import Evaluation

__all__ = ["evaluations", "value_after"]


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


def evaluations(state: Any) -> list[Evaluation]:
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


def value_after(evaluate, state, params):
    """f and ∇f at the new params (from the optimizer's records when it has
    them) and the evaluations of f and ∇f the update made."""
    records = evaluations(state)
    fun_evals, grad_evals = _evaluation_counts(records)
    stored = _stored_evaluation(records, params)
    if stored is None:
        value, grad = evaluate(params)
        return value, grad, fun_evals + 1, grad_evals + 1
    stored_value = jnp.asarray(stored[0])
    stored_grad = tu.cast_like(stored[1], params)

    def fresh(_):
        value, grad = evaluate(params)
        return value.astype(stored_value.dtype), grad, jnp.int32(1)

    def kept(_):
        return stored_value, stored_grad, jnp.int32(0)

    usable = jnp.isfinite(stored_value)
    value, grad, extra = jax.lax.cond(usable, kept, fresh, None)
    return value, grad, fun_evals + extra, grad_evals + extra
