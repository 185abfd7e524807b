"""Argument checks, written once (`gradtransforms.validation`).

Every constructor of the library, and the models, check their arguments with
these functions when they are built. An error names the argument and what is
allowed: `TypeError` for the wrong kind of value (a string, a bool, `None`, a
list, a complex number, a dtype that is not floating), `ValueError` for a
value of the right kind out of range (NaN, or an int too large for a float).

Checked at construction: numbers (Python and NumPy scalars of any real dtype)
and concrete arrays (NumPy arrays of any shape, JAX arrays that are not
tracers), element-wise; ints (step counts, sizes, patience), at most
`INT32_MAX` = 2**31 - 1, the int32 step counter, unless documented otherwise;
dtypes, which must be floating (or `None` where that is the default).

Not checked: a tracer (under `jit`, `vmap`, `grad`) has no value yet, nor
have the arrays `inject_hyperparams` rebuilds its factory from at each
`init` and `update` (inside `arrays_as_traced`, so an eager step behaves as a
jitted one). Under `debug_checks()` each check adds a `checkify` check for
them instead, reported when the step runs under `checkify.checkify` (a traced
learning rate may be 0, where a warm-up starts).

Examples:
  >>> import jax, jax.numpy as jnp, gradtransforms as gt
  >>> from jax.experimental import checkify
  >>> from gradtransforms import validation
  >>> tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1)
  >>> params = {"w": jnp.ones(2)}
  >>> state = tx.init(params)
  >>> state.hyperparams["learning_rate"] = jnp.asarray(-0.1)
  >>> step = jax.jit(lambda s: tx.update(params, s, params))
  >>> with validation.debug_checks():
  ...     error, _ = checkify.checkify(step)(state)
  >>> print(error.get())  # doctest: +ELLIPSIS
  learning_rate must be a finite number >= 0 ...; got -0.1...
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator
from typing import Any, NamedTuple, TypeGuard

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "arrays_as_traced",
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
    "check_scheduled",
    "check_transformation",
    "check_unit_interval",
    "concrete_values",
    "debug_checks",
    "is_concrete_number",
]

INT32_MAX = 2**31 - 1  # the int32 step counter's largest value
INT64_MAX = 2**63 - 1
_BOUND_TEXT = {INT32_MAX: "2**31 - 1", INT64_MAX: "2**63 - 1"}
_BOUND_TEXT |= {-INT32_MAX - 1: "-2**31", -INT64_MAX - 1: "-2**63"}

_DEBUG = contextvars.ContextVar("gradtransforms_debug_checks", default=False)
_ARRAYS_TRACED = contextvars.ContextVar("gradtransforms_arrays_traced", default=False)


def debug_checks(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Check traced hyperparameters too, with `jax.experimental.checkify`.

    Inside, a check given a tracer (or an array of `inject_hyperparams`)
    adds a `checkify.debug_check` of its range, and `scale_by_learning_rate`
    checks its schedule's values (finite, >= 0). Checks are added when a step
    is traced: trace it inside (a jitted function keeps its compiled form)
    and run it under `checkify.checkify` to get the first error. Outside
    `checkify` they cost nothing; the numbers are the same either way.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> from jax.experimental import checkify
      >>> tx = gt.sgd(gt.linear_decay_schedule(1.0, -1.0, 4))  # < 0 from step 3
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> step = jax.jit(lambda g, s: tx.update(g, s, params))
      >>> with gt.validation.debug_checks():
      ...     for _ in range(4):
      ...         error, (_, state) = checkify.checkify(step)(params, state)
      >>> print(error.get())  # doctest: +ELLIPSIS
      learning_rate (scheduled) must be a finite number >= 0; got -0.5...
    """
    check_bool("enabled", enabled)
    return _setting(_DEBUG, bool(enabled))


def arrays_as_traced() -> contextlib.AbstractContextManager[None]:
    """Treat concrete JAX arrays as tracers: unchecked, but in `debug_checks()`.

    `inject_hyperparams` rebuilds its factory inside, at `init` and `update`.
    """
    return _setting(_ARRAYS_TRACED, True)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar[bool], value: bool) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def _is_traced(value: Any) -> bool:
    if isinstance(value, jax.core.Tracer):
        return True
    return _ARRAYS_TRACED.get() and isinstance(value, jax.Array)


def _show(value: Any) -> str:
    """`repr(value)`, shortened (an int of 401 digits, a long array)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:30]}...{text[-9:]} ({len(text)} chars)"


def _message(name: str, allowed: str, value: Any) -> str:
    return f"{name} must be {allowed}; got {_show(value)}."


class _Range(NamedTuple):
    """`low < x < high`, `<=` at the ends in `closed`; `allowed` says it in words."""

    low: float
    high: float
    closed: tuple[bool, bool]
    allowed: str

    def holds(self, x: Any) -> Any:
        """Element-wise, for NumPy and JAX arrays alike (NaN is outside)."""
        above = x >= self.low if self.closed[0] else x > self.low
        below = x <= self.high if self.closed[1] else x < self.high
        return above & below


_INF = math.inf
_FINITE = _Range(-_INF, _INF, (False, False), "a finite number")
_POSITIVE = _Range(0.0, _INF, (False, False), "a finite number > 0")
_NON_NEGATIVE = _Range(0.0, _INF, (True, False), "a finite number >= 0")
_UNIT = _Range(0.0, 1.0, (True, False), "a number in [0, 1)")
_MAX_STEP = _Range(0.0, _INF, (False, True), "None or a number > 0")
_LEARNING_RATE = _POSITIVE._replace(allowed=f"{_POSITIVE.allowed} or a schedule")
_TRACED_LR = _NON_NEGATIVE._replace(allowed="a finite number >= 0 (0 in a warm-up)")


def is_concrete_number(value: Any) -> TypeGuard[numbers.Real | np.ndarray]:
    """True for Python/NumPy real numbers and 0-d NumPy arrays (not bools)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number)
    return isinstance(value, numbers.Real)


def _values(name: str, value: Any, allowed: str, concrete: bool) -> np.ndarray | None:
    """`value` as float64 NumPy values (`None` if traced), or the error."""
    if isinstance(value, bool | np.bool_) or concrete > is_concrete_number(value):
        raise TypeError(_message(name, allowed, value))
    if isinstance(value, numbers.Real):
        try:
            return np.asarray(float(value))
        except OverflowError:  # an int beyond float range
            raise ValueError(_message(name, allowed, value)) from None
    if not isinstance(value, np.ndarray | jax.Array) or not (
        jnp.issubdtype(value.dtype, jnp.integer)
        or jnp.issubdtype(value.dtype, jnp.floating)
    ):
        raise TypeError(_message(name, allowed, value))
    if _is_traced(value):
        return None
    return np.asarray(value).astype(np.float64)


def concrete_values(value: Any) -> np.ndarray | None:
    """A number's or concrete array's values as float64; None if traced or not."""
    try:
        return _values("value", value, "a number", False)
    except (TypeError, ValueError):
        return None


def _debug_check(name: str, value: Any, bounds: _Range) -> None:
    """Under `debug_checks()`, a checkify check that `value` is in `bounds`."""
    if _DEBUG.get():
        text = f"{name} must be {bounds.allowed}; got ".replace("{", "{{")
        checkify.debug_check(
            jnp.all(bounds.holds(value)), text.replace("}", "}}") + "{}.", value
        )


def _check(name: str, value: Any, bounds: _Range, concrete=False, traced=None) -> None:
    """Range-check a number or concrete array; a traced one in debug mode."""
    values = _values(name, value, bounds.allowed, concrete)
    if values is None:
        _debug_check(name, value, bounds if traced is None else traced)
    elif not np.all(bounds.holds(values)):
        raise ValueError(_message(name, bounds.allowed, value))


def check_finite(name: str, value: Any, *, concrete: bool = False) -> None:
    """Require a finite number (any sign); a Python or NumPy one if `concrete`."""
    _check(name, value, _FINITE, concrete)


def check_positive(name: str, value: Any) -> None:
    """Require a finite number > 0."""
    _check(name, value, _POSITIVE)


def check_non_negative(name: str, value: Any) -> None:
    """Require a finite number >= 0."""
    _check(name, value, _NON_NEGATIVE)


def check_unit_interval(name: str, value: Any) -> None:
    """Require a number in [0, 1) (decays, momenta, Adam's b1 and b2)."""
    _check(name, value, _UNIT)


def check_fraction(
    name: str,
    value: Any,
    low: float = 0.0,
    high: float = 1.0,
    *,
    closed: bool = False,
    concrete: bool = False,
) -> None:
    """Require a number in (low, high), or [low, high] if `closed`.

    With `concrete`, a Python or NumPy number (it fixes a shape: not traced).
    """
    ends = "[]" if closed else "()"
    allowed = f"a number in {ends[0]}{low:g}, {high:g}{ends[1]}"
    _check(name, value, _Range(low, high, (closed, closed), allowed), concrete)


def check_factor(name: str, value: Any, allow_inf: bool = False) -> None:
    """Require a number > 1 (a growth or shrink factor); `inf` if allowed."""
    allowed = "a number > 1" + (" (inf allowed)" if allow_inf else " (finite)")
    _check(name, value, _Range(1.0, _INF, (False, allow_inf), allowed))


def check_max_step(name: str, value: Any) -> None:
    """Require `None` (no bound) or a number > 0 (`inf` allowed)."""
    if value is not None:
        _check(name, value, _MAX_STEP)


def check_learning_rate(value: Any, name: str = "learning_rate") -> None:
    """Require a finite number > 0 or a schedule (a callable of the step count).

    A JAX array may be 0 (a warm-up's start: `optax.inject_hyperparams` calls
    the factory with the schedule's value at step 0 as one); a traced one is
    checked, in `debug_checks()`, for >= 0.
    """
    if not callable(value) or isinstance(value, type):  # a dtype is no schedule
        bounds = _TRACED_LR if isinstance(value, jax.Array) else _LEARNING_RATE
        _check(name, value, bounds, traced=_TRACED_LR)


def check_scheduled(name: str, value: Any) -> None:
    """In `debug_checks()`, check a schedule's value (finite, >= 0); else nothing."""
    if _DEBUG.get():
        _debug_check(name, value, _NON_NEGATIVE)


def _check_int(name: str, value: Any, low: int, high: int, allowed: str) -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(_message(name, allowed, value))
    if not low <= int(value) <= high:
        raise ValueError(_message(name, allowed, value))


def check_int(name: str, value: Any, *, low=-INT32_MAX - 1, high=INT32_MAX) -> None:
    """Require a Python or NumPy int (not a bool) in [low, high] (int32's range)."""
    allowed = f"an int in [{_BOUND_TEXT.get(low, low)}, {_BOUND_TEXT.get(high, high)}]"
    _check_int(name, value, low, high, allowed)


def check_positive_int(name: str, value: Any, *, max_value=INT32_MAX) -> None:
    """Require an int > 0, at most `max_value` (step counts, patience, sizes)."""
    allowed = f"an int > 0 (at most {_BOUND_TEXT.get(max_value, max_value)})"
    _check_int(name, value, 1, max_value, allowed)


def check_non_negative_int(name: str, value: Any, *, max_value=INT32_MAX) -> None:
    """Require an int >= 0, at most `max_value` (offsets such as `transition_begin`)."""
    allowed = f"an int >= 0 (at most {_BOUND_TEXT.get(max_value, max_value)})"
    _check_int(name, value, 0, max_value, allowed)


def check_bool(name: str, value: Any) -> None:
    """Require a Python bool (flags that change the traced program)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool; got {_show(value)}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Require one of `choices` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {_show(value)}.")


def check_callable(name: str, value: Any) -> None:
    """Require a callable (an initialiser, an activation, a schedule)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {_show(value)}.")


def check_float_dtype(name: str, value: Any, *, optional=False, inexact=False) -> None:
    """Require a floating-point dtype (`jnp.float32`, `"bfloat16"`, ...).

    Also `None` if `optional`, complex dtypes if `inexact`; never an array.
    """
    if optional and value is None:
        return
    kind = jnp.inexact if inexact else jnp.floating
    try:
        array = isinstance(value, np.ndarray | np.generic | jax.Array | numbers.Number)
        ok = value is not None and not array and jnp.issubdtype(jnp.dtype(value), kind)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        allowed = "an inexact dtype" if inexact else "a floating-point dtype"
        raise TypeError(_message(name, allowed + " or None" * optional, value))


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
    `uint32[2]` key (`PRNGKey(seed)`); a seed, an int in [-2**63, 2**63 - 1].
    """
    if allow_seed and isinstance(value, numbers.Integral):
        if not isinstance(value, bool | np.bool_):
            check_int(name, value, low=-INT64_MAX - 1, high=INT64_MAX)
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
        f"{name} must be {seed}a single PRNG key (jax.random.key(seed)); "
        f"got {_show(value)}."
    )


def check_transformation(name: str, value: Any) -> None:
    """Require a gradient transformation: an object with `init` and `update`."""
    if not all(callable(getattr(value, f, None)) for f in ("init", "update")):
        raise TypeError(
            f"{name} must be a GradientTransformation (an (init, update) pair); "
            f"got {type(value).__name__}: {_show(value)}."
        )
