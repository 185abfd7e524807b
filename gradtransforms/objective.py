"""Calling the objective: the value/gradient plumbing of solvers and continuation.

`value_fn(params, **fn_kwargs)` returns the value, or `(value, aux)` when
built with `has_aux=True`; the keyword arguments that `update` receives beyond
`value`, `grad` and `value_fn` are split as optax splits them (those named in
`value_fn`'s signature go to it; any other one is an error).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["objective"]


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
            f"{owner}.update received keyword arguments {unexpected} that "
            "value_fn does not accept; extra keyword arguments of update are "
            "passed on to value_fn(params, **kwargs)."
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
