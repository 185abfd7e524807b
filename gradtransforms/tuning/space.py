"""Search spaces: the dimensions of a hyperparameter search and configuration batches.

A *space* is a dict `name -> dimension`, the dimensions being `uniform`,
`log_uniform`, `integer` and `choice`. A *configuration batch* ("configs") is
a dict `name -> array of shape (n,)`: floats for the continuous dimensions,
int32 for `integer`, and int32 *indices* into the values of a `choice`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeGuard

import jax.numpy as jnp
import numpy as np

from gradtransforms.validation import check_finite, check_int

__all__ = [
    "Choice",
    "Dimension",
    "Integer",
    "LogUniform",
    "Space",
    "Uniform",
    "check_space",
    "choice",
    "float_dtype",
    "integer",
    "is_numeric",
    "is_static_choice",
    "log_uniform",
    "num_configs",
    "same_value",
    "uniform",
]


class Uniform(NamedTuple):
    """A real hyperparameter drawn uniformly from `[low, high]`."""

    low: float
    high: float


class LogUniform(NamedTuple):
    """A positive real hyperparameter whose logarithm is uniform."""

    low: float
    high: float


class Integer(NamedTuple):
    """An integer hyperparameter in `low..high`, both included."""

    low: int
    high: int


class Choice(NamedTuple):
    """A categorical hyperparameter: one of `values`."""

    values: tuple


Dimension = Uniform | LogUniform | Integer | Choice


Space = Mapping[str, Dimension]


def _check_real(fn: str, name: str, value: Any) -> float:
    check_finite(f"{fn}: {name}", value, concrete=True)
    return float(value)


def _check_bounds(fn: str, low: Any, high: Any) -> None:
    if not low < high:
        raise ValueError(f"{fn}: high must be > low; got low={low!r}, high={high!r}.")


def uniform(low: float, high: float) -> Uniform:
    """A real dimension with density $1/(\\text{high}-\\text{low})$ on its range.

    `random` draws $h \\sim \\mathcal U[\\text{low}, \\text{high})$; `grid`
    takes equally spaced values including both bounds (so both must be valid
    values of the hyperparameter).

    Args:
      low: the lower bound, a finite number.
      high: the upper bound, a finite number > `low`.

    Returns:
      A `Uniform(low, high)`.

    Examples:
      >>> import gradtransforms as gt
      >>> gt.tuning.uniform(0.9, 0.999)
      Uniform(low=0.9, high=0.999)
    """
    low, high = _check_real("uniform", "low", low), _check_real("uniform", "high", high)
    _check_bounds("uniform", low, high)
    return Uniform(low, high)


def log_uniform(low: float, high: float) -> LogUniform:
    """A positive real dimension, uniform in $\\log h$ (learning rates, decays).

    $\\log h \\sim \\mathcal U[\\log \\text{low}, \\log \\text{high})$, i.e. the
    density $p(h) = 1 / (h \\log(\\text{high}/\\text{low}))$: each factor of 10
    gets the same share of the trials. `grid` takes geometrically spaced
    values including both bounds.

    Args:
      low: the lower bound, a finite number > 0.
      high: the upper bound, a finite number > `low`.

    Returns:
      A `LogUniform(low, high)`.
    """
    low = _check_real("log_uniform", "low", low)
    high = _check_real("log_uniform", "high", high)
    if low <= 0:
        raise ValueError(f"log_uniform: low must be > 0; got {low!r}.")
    _check_bounds("log_uniform", low, high)
    return LogUniform(low, high)


def integer(low: int, high: int) -> Integer:
    """An integer dimension, uniform on `low, low + 1, ..., high`.

    Args:
      low: the smallest value, an int.
      high: the largest value, an int > `low`.

    Returns:
      An `Integer(low, high)`.
    """
    check_int("integer: low", low)
    check_int("integer: high", high)
    _check_bounds("integer", low, high)
    return Integer(int(low), int(high))


def is_numeric(value: Any) -> TypeGuard[numbers.Real]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps `True` apart from `1` and `1.0`."""
    return type(a) is type(b) and bool(a == b)


def choice(values: Sequence[Any]) -> Choice:
    """A categorical dimension: one of `values`, each equally likely.

    Values are `None`, bools, ints, floats or strings (Optuna's categorical
    types), all different. Configurations hold the *index* of the value
    (int32). In `sweep`, a choice between numbers is vectorised like any
    other dimension (the index selects the value inside the compiled run);
    a choice with any other value (`True`/`False`, names) is *static*: each
    value gets its own compiled run, and its Python value reaches the
    optimizer factory.

    Args:
      values: a non-empty sequence of distinct values.

    Returns:
      A `Choice(values)` with `values` as a tuple.

    Examples:
      >>> import gradtransforms as gt
      >>> gt.tuning.choice([False, True])
      Choice(values=(False, True))
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"choice: values must be a sequence; got {values!r}.")
    if not values:
        raise ValueError("choice: values must not be empty.")
    for i, v in enumerate(values):
        if not (v is None or isinstance(v, bool | str) or is_numeric(v)):
            raise TypeError(
                "choice: values must be None, bools, numbers or strings; "
                f"got {v!r} ({type(v).__name__})."
            )
        if is_numeric(v):
            check_finite(f"choice: values[{i}] (values must be finite)", v)
    for i, v in enumerate(values):
        if any(same_value(v, w) for w in values[:i]):
            raise ValueError(f"choice: values must be distinct; {v!r} repeats.")
    return Choice(tuple(values))


def is_static_choice(dim: Dimension) -> bool:
    return isinstance(dim, Choice) and not all(is_numeric(v) for v in dim.values)


def check_space(space: Any) -> dict[str, Dimension]:
    if not isinstance(space, Mapping) or not space:
        raise TypeError(
            "space must be a non-empty dict name -> dimension (uniform, "
            f"log_uniform, integer, choice); got {space!r}."
        )
    for name, dim in space.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"space: names must be non-empty strings; got {name!r}.")
        if not isinstance(dim, Uniform | LogUniform | Integer | Choice):
            raise TypeError(
                f"space[{name!r}] must be a dimension built by uniform, "
                f"log_uniform, integer or choice; got {dim!r}."
            )
    return dict(space)


def float_dtype() -> Any:
    return jnp.result_type(float)


def num_configs(space: dict[str, Dimension], configs: Any) -> int:
    """Check a configuration batch against its space; return its size."""
    if not isinstance(configs, Mapping):
        raise TypeError(f"configs must be a dict name -> array; got {configs!r}.")
    missing = [k for k in space if k not in configs]
    unknown = [k for k in configs if k not in space]
    if missing or unknown:
        raise ValueError(
            f"configs must have exactly the space's names; missing {missing}, "
            f"unknown {unknown}."
        )
    sizes = set()
    for name, dim in space.items():
        shape = np.shape(configs[name])
        if len(shape) != 1:
            raise ValueError(
                f"configs[{name!r}] must be 1-D, shape (n,); got shape {shape}."
            )
        sizes.add(shape[0])
        if isinstance(dim, Integer | Choice):
            values = np.asarray(configs[name])
            if not np.issubdtype(values.dtype, np.integer):
                raise TypeError(
                    f"configs[{name!r}] must hold integers (choice indices for a "
                    f"choice); got dtype {values.dtype}."
                )
            if isinstance(dim, Choice) and values.size:
                if values.min() < 0 or values.max() >= len(dim.values):
                    raise ValueError(
                        f"configs[{name!r}] holds indices outside "
                        f"0..{len(dim.values) - 1} of the choice's values."
                    )
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"configs arrays must share one length n >= 1; got {sorted(sizes)}."
        )
    return sizes.pop()
