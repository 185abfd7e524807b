"""Argument checks, written once (`gradtransforms.validation`).

Every constructor of the library, and the models, validate their arguments
with these functions when they are built. Each error names the argument and
what is allowed: a `TypeError` for the wrong kind of value (a string, a
bool, `None`, a list), a `ValueError` for a value of the right kind outside
its range.

Only concrete numbers (Python or NumPy scalars, 0-d NumPy arrays) can be
range-checked: a JAX array may be a tracer (under `jit`, `vmap` or
`inject_hyperparams`), so numeric arrays pass through unchecked.

Examples:
  >>> from gradtransforms import validation
  >>> validation.check_unit_interval("momentum", 0.9)
  >>> validation.check_bool("nesterov", "False")
  Traceback (most recent call last):
  ...
  TypeError: nesterov must be a bool; got 'False'.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, TypeGuard

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_factor",
    "check_finite",
    "check_float_dtype",
    "check_fraction",
    "check_int",
    "check_key",
    "check_learning_rate",
    "check_max_step",
    "check_non_negative",
    "check_non_negative_int",
    "check_positive",
    "check_positive_int",
    "check_transformation",
    "check_unit_interval",
    "is_concrete_number",
]


def is_concrete_number(value: Any) -> TypeGuard[numbers.Real | np.ndarray]:
    """True for Python/NumPy real numbers and 0-d NumPy arrays (not bools)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number)
    return isinstance(value, numbers.Real)


def _is_numeric_array(value: Any) -> bool:
    """A JAX or NumPy array (or tracer) of a numeric, non-bool dtype."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or not hasattr(value, "shape"):
        return False
    try:
        return bool(jnp.issubdtype(dtype, jnp.number))
    except TypeError:  # not a dtype JAX knows
        return False


def _require_number(name: str, value: Any, allowed: str) -> None:
    """Reject bools, strings, None, lists...: anything not a number or array."""
    if isinstance(value, bool | np.bool_) or not (
        is_concrete_number(value) or _is_numeric_array(value)
    ):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")


def _check(
    name: str,
    value: Any,
    ok: Callable[[float], bool],
    allowed: str,
    concrete: bool = False,
) -> None:
    if concrete and not is_concrete_number(value):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")
    _require_number(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or not ok(x):
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


# --------------------------------------------------------------------------
# Numbers


def check_finite(name: str, value: Any, *, concrete: bool = False) -> None:
    """Require a finite number (any sign); a Python or NumPy one if `concrete`."""
    _check(name, value, math.isfinite, "a finite number", concrete)


def check_positive(name: str, value: Any) -> None:
    """Require a finite number > 0."""
    _check(name, value, lambda x: 0 < x < math.inf, "a finite number > 0")


def check_non_negative(name: str, value: Any) -> None:
    """Require a finite number >= 0."""
    _check(name, value, lambda x: 0 <= x < math.inf, "a finite number >= 0")


def check_unit_interval(name: str, value: Any) -> None:
    """Require a number in [0, 1) (decays, momenta, Adam's b1 and b2)."""
    _check(name, value, lambda x: 0 <= x < 1, "a number in [0, 1)")


def check_fraction(
    name: str,
    value: Any,
    low: float = 0.0,
    high: float = 1.0,
    *,
    closed: bool = False,
    concrete: bool = False,
) -> None:
    """Require a number in the open interval (low, high), or [low, high] if `closed`.

    With `concrete=True` the value must be a Python or NumPy number (it fixes
    a shape, so it cannot be traced).
    """
    if closed:
        allowed, ok = f"a number in [{low:g}, {high:g}]", lambda x: low <= x <= high
    else:
        allowed, ok = f"a number in ({low:g}, {high:g})", lambda x: low < x < high
    _check(name, value, ok, allowed, concrete)


def check_factor(name: str, value: Any, allow_inf: bool = False) -> None:
    """Require a number > 1 (a growth or shrink factor); `inf` if allowed."""
    allowed = "a number > 1" + (" (inf allowed)" if allow_inf else " (finite)")
    _check(name, value, lambda x: x > 1 and (allow_inf or x < math.inf), allowed)


def check_max_step(name: str, value: Any) -> None:
    """Require `None` (no bound) or a number > 0 (`inf` allowed)."""
    if value is not None:
        _check(name, value, lambda x: x > 0, "None or a number > 0")


def check_learning_rate(value: Any, name: str = "learning_rate") -> None:
    """Require a finite number > 0 or a schedule (a callable of the step)."""
    if callable(value):
        return
    _check(
        name,
        value,
        lambda x: 0 < x < math.inf,
        "a finite number > 0 or a schedule (a callable of the step count)",
    )


# --------------------------------------------------------------------------
# Ints, bools, choices, callables, dtypes


def _require_int(name: str, value: Any, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")


def check_int(name: str, value: Any) -> None:
    """Require a Python or NumPy int (any sign; not a bool)."""
    _require_int(name, value, "an int")


def check_positive_int(name: str, value: Any) -> None:
    """Require a Python int > 0 (step counts, patience, memory sizes)."""
    _require_int(name, value, "an int > 0")
    if value <= 0:
        raise ValueError(f"{name} must be an int > 0; got {value!r}.")


def check_non_negative_int(name: str, value: Any) -> None:
    """Require a Python int >= 0 (step offsets such as `transition_begin`)."""
    _require_int(name, value, "an int >= 0")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0; got {value!r}.")


def check_bool(name: str, value: Any) -> None:
    """Require a Python bool (flags that change the traced program)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool; got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Require one of `choices` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")


def check_callable(name: str, value: Any) -> None:
    """Require a callable (an initialiser, an activation, a schedule)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {value!r}.")


def check_float_dtype(name: str, value: Any) -> None:
    """Require a floating-point dtype (`jnp.float32`, `"bfloat16"`, ...)."""
    try:
        floating = value is not None and jnp.issubdtype(jnp.dtype(value), jnp.floating)
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"{name} must be a floating-point dtype; got {value!r}.")


# --------------------------------------------------------------------------
# PRNG keys and transformations


def _is_key(value: Any) -> bool:
    """A typed PRNG key array (`jax.random.key`) or a raw uint32 key (`PRNGKey`)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or not hasattr(value, "shape"):
        return False
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return np.dtype(dtype) == np.uint32 and tuple(value.shape) == (2,)


def check_key(name: str, value: Any, *, allow_seed: bool = False) -> None:
    """Require a single PRNG key, or also an int seed when `allow_seed`.

    A key is a typed key of shape `()` (`jax.random.key(seed)`) or a raw
    `uint32[2]` key (`jax.random.PRNGKey(seed)`).
    """
    if allow_seed and isinstance(value, numbers.Integral):
        if not isinstance(value, bool | np.bool_):
            return
    if _is_key(value):
        typed = jnp.issubdtype(value.dtype, jax.dtypes.prng_key)
        if typed and tuple(value.shape) != ():
            raise ValueError(
                f"{name} must be a single PRNG key; got shape {value.shape}."
            )
        return
    seed = "an int seed or " if allow_seed else ""
    raise TypeError(
        f"{name} must be {seed}a single PRNG key (jax.random.key(seed)); got {value!r}."
    )


def check_transformation(name: str, value: Any) -> None:
    """Require a gradient transformation: an object with `init` and `update`."""
    if not (
        callable(getattr(value, "init", None))
        and callable(getattr(value, "update", None))
    ):
        raise TypeError(
            f"{name} must be a GradientTransformation (an (init, update) pair); "
            f"got {type(value).__name__}: {value!r}."
        )
