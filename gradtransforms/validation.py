"""Validation of hyperparameters, once, when a transformation is built.

Only concrete numbers (Python or NumPy scalars) are checked: a JAX array may be
a tracer (under `jit`, `vmap` or `inject_hyperparams`) and cannot be. Each
error names the argument and the allowed range.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_factor",
    "check_finite",
    "check_fraction",
    "check_learning_rate",
    "check_max_step",
    "check_non_negative",
    "check_non_negative_int",
    "check_positive",
    "check_positive_int",
    "check_unit_interval",
    "is_concrete_number",
]


def is_concrete_number(value: Any) -> bool:
    """True for Python/NumPy real numbers and 0-d NumPy arrays (not bools)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number)
    return isinstance(value, numbers.Real)


def _reject_non_numeric(name: str, value: Any, allowed: str) -> None:
    """Reject bools, strings, None, lists...: anything not a number or array."""
    is_array = hasattr(value, "dtype") and hasattr(value, "shape")
    if isinstance(value, bool | np.bool_) or not (
        is_concrete_number(value) or is_array
    ):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")


def _check(name: str, value: Any, ok: Callable[[float], bool], allowed: str) -> None:
    _reject_non_numeric(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or not ok(x):
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_finite(name: str, value: Any) -> None:
    """Require a finite number (any sign)."""
    _check(name, value, math.isfinite, "a finite number")


def check_non_negative_int(name: str, value: Any) -> None:
    """Require a Python int >= 0 (step offsets such as `transition_begin`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0; got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0; got {value!r}.")


def check_positive(name: str, value: Any) -> None:
    """Require a finite number > 0."""
    _check(name, value, lambda x: 0 < x < math.inf, "a finite number > 0")


def check_non_negative(name: str, value: Any) -> None:
    """Require a finite number >= 0."""
    _check(name, value, lambda x: 0 <= x < math.inf, "a finite number >= 0")


def check_unit_interval(name: str, value: Any) -> None:
    """Require a number in [0, 1) (decays, momenta, Adam's b1 and b2)."""
    _check(name, value, lambda x: 0 <= x < 1, "a number in [0, 1)")


def check_positive_int(name: str, value: Any) -> None:
    """Require a Python int > 0 (step counts, patience, memory sizes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int > 0; got {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} must be an int > 0; got {value!r}.")


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


def _reject_non_real(name: str, value: Any, allowed: str) -> None:
    if (
        isinstance(value, bool | str)
        or value is None
        or not isinstance(value, numbers.Real | jax.Array)
    ):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0):
    """Require a number in the open interval (low, high)."""
    allowed = f"a number in ({low:g}, {high:g})"
    _reject_non_real(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or not low < x < high:
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_factor(name: str, value: Any, allow_inf: bool = False) -> None:
    """Require a number > 1 (a growth or shrink factor); `inf` if allowed."""
    allowed = "a number > 1" + (" (inf allowed)" if allow_inf else " (finite)")
    _reject_non_real(name, value, allowed)
    if is_concrete_number(value):
        x = float(value)
        if math.isnan(x) or x <= 1 or (math.isinf(x) and not allow_inf):
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def check_max_step(name: str, value: Any) -> None:
    """Require `None` (no bound) or a number > 0 (`inf` allowed)."""
    if value is None:
        return
    allowed = "None or a number > 0"
    _reject_non_real(name, value, allowed)
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
