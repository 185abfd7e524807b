"""Calling the objective, and recording what a transformation evaluated.

`value_fn(params, **fn_kwargs)` returns the value, or `(value, aux)` when
built with `has_aux=True`; the keyword arguments that `update` receives beyond
`value`, `grad` and `value_fn` are split as optax splits them (those named in
`value_fn`'s signature go to it; any other one is an error).

A transformation that evaluates the objective inside `update` (a line
search, `newton`, `newton_cg`) keeps an `Evaluation` in its state: what it
spent, and, when it evaluated $f$ and $\\nabla f$ at the parameters *after*
its update, those values, so a solver loop (`minimize`) need not evaluate
them again. The loop finds these records anywhere in a chain's state by their
type, whatever the transformation that carries them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu

__all__ = ["Evaluation", "check_call", "evaluation_property", "objective"]


class Evaluation(NamedTuple):
    """What one update evaluated: $f$ and $\\nabla f$ at its result, and the cost.

    Carried by the states of the transformations that evaluate the objective
    (the `evaluation` field); their `value`, `grad`, `num_fun_evals` and
    `num_grad_evals` attributes read it.
    """

    value: Any
    """Scalar $f$ at `params + updates` of the last update, or None when the
    transformation does not evaluate there."""
    grad: Any
    """$\\nabla f$ there, like the parameters, or None when not evaluated."""
    num_fun_evals: jax.Array
    """int32: evaluations of $f$ made by the last update."""
    num_grad_evals: jax.Array
    """int32: evaluations of $\\nabla f$ made by the last update."""

    @classmethod
    def start(cls, value: Any = None, grad: Any = None) -> Evaluation:
        """The record before the first update: nothing spent yet."""
        zero = jnp.zeros((), jnp.int32)
        return cls(value, grad, zero, zero)


def evaluation_property(field: str) -> property:
    """A read-only state attribute `state.<field>` that reads `state.evaluation`."""

    def get(state: Any) -> Any:
        return getattr(state.evaluation, field)

    return property(get, doc=f"`evaluation.{field}` (see `Evaluation`).")


def check_call(
    owner: str,
    updates: Any,
    params: Any,
    evaluation: Evaluation | None = None,
    **arguments: Any,
) -> None:
    """Check a solver's `update` call before it computes anything.

    Raises `TypeError` when `params` or one of `arguments` (`value`, `grad`,
    `value_fn`: those the solver needs) is `None`, saying how to call it, and
    `ValueError` when `updates`, `grad` or the gradient kept in the state's
    `evaluation` do not match `params` leaf for leaf, naming the first
    differing path.
    """
    missing = [n for n, v in {"params": params, **arguments}.items() if v is None]
    if missing:
        raise TypeError(
            f"{owner}.update needs {', '.join(missing)}; call "
            "tx.update(updates, state, params, value=f(params), "
            "grad=jax.grad(f)(params), value_fn=f) (optax's calling convention "
            "for lbfgs), or let gt.minimize call it."
        )
    tu.assert_updates_match(updates, params)
    if arguments.get("grad") is not None:
        tu.assert_same_shapes(params, arguments["grad"], ("params", "grad"))
    if evaluation is not None and evaluation.grad is not None:
        tu.assert_state_matches(evaluation.grad, params, "params")


def _fn_kwargs(value_fn: Callable[..., Any], extra: dict[str, Any], owner: str):
    """The entries of `extra` that `value_fn` accepts; raise on any other."""
    if not extra:
        return {}
    try:
        parameters = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):  # no signature (a C function, ...): pass all
        return dict(extra)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(extra)
    unexpected = sorted(k for k in extra if k not in parameters)
    if unexpected:
        raise TypeError(
            f"Unexpected keyword arguments passed to {owner}.update "
            f"{unexpected}: value_fn does not accept them; extra keyword "
            "arguments of update are passed on to value_fn(params, **kwargs)."
        )
    return dict(extra)


def objective(
    value_fn: Callable[..., Any] | None,
    extra: dict[str, Any],
    has_aux: bool,
    owner: str,
) -> Callable[[Any], jax.Array]:
    """`params -> f(params)`: `value_fn` with the extra kwargs bound, aux dropped."""
    if value_fn is None or not callable(value_fn):
        raise TypeError(
            f"{owner}.update needs value_fn=<callable params -> value>; "
            f"got {value_fn!r}."
        )
    kwargs = _fn_kwargs(value_fn, extra, owner)

    def fun(params):
        out = value_fn(params, **kwargs)
        return out[0] if has_aux else out

    return fun
