"""Grid and random search over a space; configuration batches and Python values."""

from __future__ import annotations

import itertools
import math
import numbers
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.tuning.space import (
    Choice,
    Dimension,
    Integer,
    LogUniform,
    Space,
    Uniform,
    check_space,
    float_dtype,
    is_numeric,
    num_configs,
    same_value,
)
from gradtransforms.validation import check_key, check_positive_int

__all__ = ["decode", "encode", "grid", "random"]


def _grid_values(dim: Dimension, count: int | None) -> np.ndarray:
    if isinstance(dim, Choice):
        return np.arange(len(dim.values), dtype=np.int32)
    assert count is not None  # only a choice has no count (`grid` checks the rest)
    if isinstance(dim, Integer):
        points = np.round(np.linspace(dim.low, dim.high, count))
        return np.unique(points.astype(np.int64)).astype(np.int32)
    if count == 1:
        mid = (
            math.sqrt(dim.low * dim.high)
            if isinstance(dim, LogUniform)
            else (dim.low + dim.high) / 2
        )
        return np.array([mid])
    if isinstance(dim, LogUniform):
        return np.geomspace(dim.low, dim.high, count)
    return np.linspace(dim.low, dim.high, count)


def grid(space: Space, num: int | Mapping[str, int]) -> dict[str, jax.Array]:
    """Grid search: every combination of a few values per dimension.

    With $k_d$ values for dimension $d$ the grid has $\\prod_d k_d$
    configurations (the budget grows exponentially with the number of
    dimensions). Values per dimension: `uniform`, equally spaced from `low`
    to `high`; `log_uniform`, geometrically spaced (equal ratios); `integer`,
    equally spaced and rounded (duplicates removed, so at most
    `high - low + 1`); a single value is the (geometric) midpoint. A
    `choice` always takes all its values. The first dimension varies
    slowest, the last fastest (`itertools.product` order).

    Args:
      space: dict `name -> dimension`.
      num: the number of values per non-choice dimension, an int >= 1, or a
        dict giving it for each non-choice dimension.

    Returns:
      A configuration batch: dict `name -> array (n,)` with
      $n = \\prod_d k_d$.

    Examples:
      >>> import gradtransforms as gt
      >>> space = {"lr": gt.tuning.log_uniform(1e-3, 1e-1),
      ...          "nesterov": gt.tuning.choice([False, True])}
      >>> configs = gt.tuning.grid(space, 3)
      >>> [round(float(x), 3) for x in configs["lr"]]
      [0.001, 0.001, 0.01, 0.01, 0.1, 0.1]
      >>> configs["nesterov"].tolist()
      [0, 1, 0, 1, 0, 1]
    """
    space = check_space(space)
    if isinstance(num, Mapping):
        unknown = [k for k in num if k not in space]
        if unknown:
            raise ValueError(f"grid: num names dimensions not in space: {unknown}.")
        for name, dim in space.items():
            if isinstance(dim, Choice):
                if name in num:
                    raise ValueError(
                        f"grid: num[{name!r}] is given, but a choice dimension "
                        "always takes all its values; remove it."
                    )
            elif name not in num:
                raise ValueError(f"grid: num has no count for dimension {name!r}.")
            else:
                check_positive_int(f"grid: num[{name!r}]", num[name])
        counts = {k: num.get(k) for k in space}
    else:
        check_positive_int("grid: num", num)
        counts = dict.fromkeys(space, num)
    axes = [_grid_values(d, counts[k]) for k, d in space.items()]
    rows = np.array(list(itertools.product(*(range(len(a)) for a in axes))))
    out = {}
    for j, (name, dim) in enumerate(space.items()):
        values = axes[j][rows[:, j]]
        dtype = jnp.int32 if isinstance(dim, Integer | Choice) else float_dtype()
        out[name] = jnp.asarray(values, dtype)
    return out


def _dimension_key(key: jax.Array, name: str) -> jax.Array:
    """A key per dimension name: adding a dimension does not change the others."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()))


def random(space: Space, n: int, key: jax.Array) -> dict[str, jax.Array]:
    """Random search: `n` independent draws from the space.

    Each dimension is sampled independently: `uniform`
    $h \\sim \\mathcal U[\\text{low}, \\text{high})$; `log_uniform`
    $h = \\exp u$, $u \\sim \\mathcal U[\\log \\text{low}, \\log \\text{high})$;
    `integer` and `choice` uniformly over their values. Every trial tries a
    new value of *every* dimension, so when only a few hyperparameters
    matter, $n$ random trials explore them with $n$ distinct values where a
    grid of the same size would use $n^{1/D}$ (the textbook's argument for
    random search). A dimension's samples depend only on the key and its
    name: the same key gives the same samples, and adding a dimension to
    the space does not change those of the others.

    Args:
      space: dict `name -> dimension`.
      n: the number of configurations, an int >= 1.
      key: a PRNG key.

    Returns:
      A configuration batch: dict `name -> array (n,)`.

    Examples:
      >>> import jax, gradtransforms as gt
      >>> space = {"lr": gt.tuning.log_uniform(1e-4, 1e-1)}
      >>> gt.tuning.random(space, 5, jax.random.key(0))["lr"].shape
      (5,)
    """
    space = check_space(space)
    check_positive_int("random: n", n)
    check_key("random: key", key)
    dtype = float_dtype()
    out = {}
    for name, dim in space.items():
        k = _dimension_key(key, name)
        if isinstance(dim, Uniform):
            x = jax.random.uniform(k, (n,), dtype, dim.low, dim.high)
            out[name] = jnp.clip(x, dim.low, dim.high)
        elif isinstance(dim, LogUniform):
            u = jax.random.uniform(
                k, (n,), dtype, math.log(dim.low), math.log(dim.high)
            )
            out[name] = jnp.clip(jnp.exp(u), dim.low, dim.high)
        elif isinstance(dim, Integer):
            out[name] = jax.random.randint(k, (n,), dim.low, dim.high + 1, jnp.int32)
        else:
            out[name] = jax.random.randint(k, (n,), 0, len(dim.values), jnp.int32)
    return out


def decode(space: Space, configs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A configuration batch as a list of dicts of Python values, one per trial.

    Floats become `float`, integers `int`, and a choice's index its value.

    Args:
      space: dict `name -> dimension`.
      configs: a configuration batch of the space.

    Returns:
      `[{name: value, ...}, ...]` of length `n`.

    Examples:
      >>> import gradtransforms as gt
      >>> space = {"opt": gt.tuning.choice(["sgd", "adam"])}
      >>> gt.tuning.decode(space, gt.tuning.grid(space, 1))
      [{'opt': 'sgd'}, {'opt': 'adam'}]
    """
    space = check_space(space)
    n = num_configs(space, configs)
    columns = {}
    for name, dim in space.items():
        values = np.asarray(configs[name])
        if isinstance(dim, Choice):
            columns[name] = [dim.values[int(i)] for i in values]
        elif isinstance(dim, Integer):
            columns[name] = [int(i) for i in values]
        else:
            columns[name] = [float(x) for x in values]
    return [{name: columns[name][i] for name in space} for i in range(n)]


def encode(space: Space, trials: Sequence[Mapping[str, Any]]) -> dict[str, jax.Array]:
    """Python values, one dict per trial, as a configuration batch (`decode`'s inverse).

    Args:
      space: dict `name -> dimension`.
      trials: a non-empty sequence of dicts with exactly the space's names;
        a choice's entry is one of its values.

    Returns:
      A configuration batch: dict `name -> array (n,)`.
    """
    space = check_space(space)
    if isinstance(trials, Mapping) or not isinstance(trials, Sequence) or not trials:
        raise TypeError(
            f"encode: trials must be a non-empty sequence of dicts; got {trials!r}."
        )
    columns: dict[str, list] = {name: [] for name in space}
    for i, trial in enumerate(trials):
        if not isinstance(trial, Mapping) or set(trial) != set(space):
            raise ValueError(
                f"encode: trials[{i}] must be a dict with the names "
                f"{sorted(space)}; got {trial!r}."
            )
        for name, dim in space.items():
            value = trial[name]
            if isinstance(dim, Choice):
                index = [j for j, v in enumerate(dim.values) if same_value(v, value)]
                if not index:
                    raise ValueError(
                        f"encode: trials[{i}][{name!r}]={value!r} is not one of "
                        f"{dim.values}."
                    )
                value = index[0]
            elif isinstance(dim, Integer):
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise TypeError(
                        f"encode: trials[{i}][{name!r}] must be an int; got {value!r}."
                    )
            elif not is_numeric(value):
                raise TypeError(
                    f"encode: trials[{i}][{name!r}] must be a number; got {value!r}."
                )
            columns[name].append(value)
    return {
        name: jnp.asarray(
            columns[name],
            jnp.int32 if isinstance(dim, Integer | Choice) else float_dtype(),
        )
        for name, dim in space.items()
    }
