"""Plumbing shared by the second-order transformations.

Calling the objective: `value_fn(params, **fn_kwargs)` returns the value, or
`(value, aux)` when built with `has_aux=True`; the keyword arguments that
`update` receives beyond `value`, `grad` and `value_fn` are split as optax
splits them (those named in `value_fn`'s signature go to it; any other one is
an error). Plus the argument checks that `gradtransforms.validation` does not
cover (open intervals, factors > 1, choices).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtransforms.validation import is_concrete_number

__all__ = [
    "check_bool",
    "check_choice",
    "check_factor",
    "check_fraction",
    "check_max_step",
    "finite_tree",
    "int32",
    "objective",
]


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


def finite_tree(tree: Any) -> jax.Array:
    """True (a bool scalar) if every element of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.asarray(leaves)) if leaves else jnp.ones((), bool)


def int32(x: Any) -> jax.Array:
    """`x` as an int32 scalar array (int64 never leaks in under x64)."""
    return jnp.asarray(x, jnp.int32)


def _reject_non_numeric(name: str, value: Any, allowed: str) -> None:
    if (
        isinstance(value, bool | str)
        or value is None
        or not isinstance(value, numbers.Real | jax.Array)
    ):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0):
    """Require a number in the open interval (low, high)."""
    allowed = f"a number in ({low:g}, {high:g})"
    _reject_non_numeric(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or not low < x < high:
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_factor(name: str, value: Any, allow_inf: bool = False) -> None:
    """Require a number > 1 (a growth or shrink factor); `inf` if allowed."""
    allowed = "a number > 1" + (" (inf allowed)" if allow_inf else " (finite)")
    _reject_non_numeric(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or x <= 1 or (math.isinf(x) and not allow_inf):
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_max_step(name: str, value: Any) -> None:
    """Require `None` (no bound) or a number > 0 (`inf` allowed)."""
    if value is None:
        return
    allowed = "None or a number > 0"
    _reject_non_numeric(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or x <= 0:
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Require one of `choices` (strings)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")


def check_bool(name: str, value: Any) -> None:
    """Require a Python bool (flags that change the traced program)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {value!r}.")
