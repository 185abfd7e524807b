"""Hyperparameter search: spaces, grid/random/TPE samplers, vectorised sweeps.

The textbook (`seeds/000`, after Goodfellow et al. §11.4) names three ways to
choose hyperparameters $h$ by treating a performance measure $m(h)$ as a
black box: **grid search** (the product of a few values per hyperparameter),
**random search** (independent draws; better when only some hyperparameters
matter, because every trial then tries a new value of the important ones) and
**model-based search** such as the Tree-structured Parzen Estimator (TPE,
through Optuna). This module gives all three over one search space, and a
trainer that evaluates $m$ for $N$ configurations at once: `jax.vmap` over
hyperparameters injected with `inject_hyperparams`, so the $N$ training runs
are one compiled program.

A *space* is a dict `name -> dimension`, the dimensions being `uniform`,
`log_uniform`, `integer` and `choice`. A *configuration batch* ("configs") is
a dict `name -> array of shape (n,)`: floats for the continuous dimensions,
int32 for `integer`, and int32 *indices* into the values of a `choice`
(`decode` turns a batch into Python values, `encode` does the reverse).

    import jax, gradtransforms as gt
    space = {"lr": gt.tuning.log_uniform(1e-4, 1e-1),
             "b2": gt.tuning.uniform(0.9, 0.999)}
    configs = gt.tuning.random(space, 16, jax.random.key(0))
    result = gt.tuning.sweep(problem, space, configs, optimizer=gt.adam,
                             hyperparams={"learning_rate": "lr", "b2": "b2"},
                             num_epochs=10, batch_size=64, key=jax.random.key(1))
    result.final["valid_loss"]          # (16,)
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.base import GradientTransformation, apply_updates
from gradtransforms.combine import inject_hyperparams
from gradtransforms.training import _num_examples, epoch_indices
from gradtransforms.validation import check_positive_int

__all__ = [
    "Choice",
    "Integer",
    "LogUniform",
    "Problem",
    "SearchResult",
    "SweepResult",
    "Uniform",
    "best_so_far",
    "choice",
    "decode",
    "encode",
    "grid",
    "integer",
    "log_uniform",
    "make_train_fn",
    "random",
    "sweep",
    "sweeper",
    "tpe_search",
    "uniform",
]


# ----------------------------------------------------------------------------
# Search spaces


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
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a finite number; got {value!r}.")
    if not math.isfinite(float(value)):
        raise ValueError(f"{fn}: {name} must be a finite number; got {value!r}.")
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
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, numbers.Integral
        ):
            raise TypeError(f"integer: {name} must be an int; got {value!r}.")
    _check_bounds("integer", low, high)
    return Integer(int(low), int(high))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _same(a: Any, b: Any) -> bool:
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
    for v in values:
        if not (v is None or isinstance(v, bool | str) or _is_numeric(v)):
            raise TypeError(
                "choice: values must be None, bools, numbers or strings; "
                f"got {v!r} ({type(v).__name__})."
            )
        if _is_numeric(v) and not math.isfinite(float(v)):
            raise ValueError(f"choice: values must be finite; got {v!r}.")
    for i, v in enumerate(values):
        if any(_same(v, w) for w in values[:i]):
            raise ValueError(f"choice: values must be distinct; {v!r} repeats.")
    return Choice(tuple(values))


def _is_static_choice(dim: Dimension) -> bool:
    return isinstance(dim, Choice) and not all(_is_numeric(v) for v in dim.values)


def _check_space(space: Any) -> dict[str, Dimension]:
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


def _float_dtype() -> Any:
    return jnp.result_type(float)


def _num_configs(space: dict[str, Dimension], configs: Any) -> int:
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


# ----------------------------------------------------------------------------
# Samplers


def _grid_values(dim: Dimension, count: int | None) -> np.ndarray:
    if isinstance(dim, Choice):
        return np.arange(len(dim.values), dtype=np.int32)
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
    space = _check_space(space)
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
        dtype = jnp.int32 if isinstance(dim, Integer | Choice) else _float_dtype()
        out[name] = jnp.asarray(values, dtype)
    return out


def _check_key(name: str, key: Any) -> None:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key
    ):
        if key.shape != ():
            raise ValueError(
                f"{name} must be a single PRNG key; got shape {key.shape}."
            )
        return
    if (
        hasattr(key, "dtype")
        and np.dtype(key.dtype) == np.uint32
        and np.shape(key) == (2,)
    ):
        return
    raise TypeError(f"{name} must be a PRNG key (jax.random.key(seed)); got {key!r}.")


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
    space = _check_space(space)
    check_positive_int("random: n", n)
    _check_key("random: key", key)
    dtype = _float_dtype()
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
    space = _check_space(space)
    n = _num_configs(space, configs)
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
    space = _check_space(space)
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
                index = [j for j, v in enumerate(dim.values) if _same(v, value)]
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
            elif not _is_numeric(value):
                raise TypeError(
                    f"encode: trials[{i}][{name!r}] must be a number; got {value!r}."
                )
            columns[name].append(value)
    return {
        name: jnp.asarray(
            columns[name],
            jnp.int32 if isinstance(dim, Integer | Choice) else _float_dtype(),
        )
        for name, dim in space.items()
    }


# ----------------------------------------------------------------------------
# Training many configurations at once


class Problem(NamedTuple):
    """What `sweep` trains: initial parameters, a loss, and the data."""

    init_fn: Callable[[jax.Array], Any]
    """`init_fn(key) -> params`: the initial parameters (any pytree). Traced
    under `jit`/`vmap`, or called once outside them when runs share a key."""
    loss_fn: Callable[[Any, Any], jax.Array]
    """`loss_fn(params, batch) -> scalar`: the mean loss of a batch, a pytree
    like `train_data` with `batch_size` examples."""
    train_data: Any
    """A pytree of arrays sharing their leading (example) axis."""
    valid_data: Any = None
    """Optional: the same for the validation set, evaluated after each epoch."""
    metrics_fn: Callable[[Any, Any], Mapping[str, jax.Array]] | None = None
    """Optional: `metrics_fn(params, batch) -> {name: scalar}` on the
    validation set (default `{"loss": loss_fn(params, batch)}`)."""


def _check_problem(problem: Any) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(
            f"problem must be a gradtransforms.tuning.Problem; got {problem!r}."
        )
    for name in ("init_fn", "loss_fn"):
        if not callable(getattr(problem, name)):
            raise TypeError(f"problem.{name} must be callable.")
    if problem.metrics_fn is not None and not callable(problem.metrics_fn):
        raise TypeError("problem.metrics_fn must be callable or None.")
    if problem.metrics_fn is not None and problem.valid_data is None:
        raise ValueError("problem.metrics_fn needs problem.valid_data.")
    _num_examples(problem.train_data)
    if problem.valid_data is not None:
        _num_examples(problem.valid_data)


HyperparamSource = str | Callable[[Mapping[str, Any]], Any]


def _check_hyperparams(hyperparams: Any) -> dict[str, HyperparamSource]:
    if isinstance(hyperparams, Mapping):
        spec = dict(hyperparams)
    elif isinstance(hyperparams, Iterable) and not isinstance(hyperparams, str):
        spec = {name: name for name in hyperparams}
    else:
        raise TypeError(
            "hyperparams must be a dict {optimizer argument: configuration name "
            f"or function of the configuration}} or a list of names; got "
            f"{hyperparams!r}."
        )
    for arg, source in spec.items():
        if not isinstance(arg, str):
            raise TypeError(f"hyperparams: argument names must be str; got {arg!r}.")
        if not (isinstance(source, str) or callable(source)):
            raise TypeError(
                f"hyperparams[{arg!r}] must be a configuration name or a function "
                f"of the configuration; got {source!r}."
            )
    return spec


def _lookup(config: Mapping[str, Any], name: str, what: str) -> Any:
    try:
        return config[name]
    except KeyError:
        raise KeyError(
            f"{what} names {name!r}, which is not in the configuration "
            f"({sorted(config)})."
        ) from None


def _scale_weights(params: Any, scale: Any) -> Any:
    """Multiply every parameter array of rank >= 2 (weights, kernels) by `scale`."""

    def leaf(p):
        if jnp.ndim(p) >= 2:
            return p * jnp.asarray(scale).astype(jnp.result_type(p))
        return p

    return jax.tree.map(leaf, params)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _batch_orders(
    key: jax.Array, num_examples: int, batch_size: int, num_epochs: int, shuffle: bool
) -> jax.Array:
    """Every epoch's minibatch indices, `(num_epochs, steps, batch_size)`.

    Module-level and jitted, so that sweeps of the same sizes share one
    compilation.
    """
    keys = jax.random.split(jax.random.split(key)[1], num_epochs)
    return jax.vmap(
        lambda k: epoch_indices(k, num_examples, batch_size, shuffle=shuffle)[0]
    )(keys)


class _Trainer(NamedTuple):
    init: Callable[[jax.Array], Any]
    orders: Callable[[jax.Array], jax.Array]
    run: Callable[..., tuple[dict[str, jax.Array], Any]]


def _build_trainer(
    problem: Problem,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Any,
    optimizer_kwargs: Mapping[str, Any] | None,
    static_args: Iterable[str],
    init_scale: str | None,
    num_epochs: int,
    batch_size: int | None,
) -> _Trainer:
    """Validate once; return the pieces of a training run."""
    _check_problem(problem)
    if not callable(optimizer):
        raise TypeError(
            f"optimizer must be an optimizer factory such as gt.adam; got "
            f"{optimizer!r}."
        )
    spec = _check_hyperparams(hyperparams)
    fixed = dict(optimizer_kwargs or {})
    both = sorted(set(fixed) & set(spec))
    if both:
        raise ValueError(
            f"optimizer_kwargs and hyperparams both set {both}; give each "
            "optimizer argument once."
        )
    if init_scale is not None and not isinstance(init_scale, str):
        raise TypeError(
            f"init_scale must be a configuration name or None; got {init_scale!r}."
        )
    check_positive_int("num_epochs", num_epochs)
    num_examples = _num_examples(problem.train_data)
    if batch_size is None:
        batch_size, shuffle = num_examples, False
    else:
        check_positive_int("batch_size", batch_size)
        if batch_size > num_examples:
            raise ValueError(
                f"batch_size ({batch_size}) exceeds the {num_examples} training "
                "examples."
            )
        shuffle = True
    inject = inject_hyperparams(optimizer, static_args=static_args)
    loss_fn = problem.loss_fn
    has_valid = problem.valid_data is not None
    metrics_fn = problem.metrics_fn or (lambda p, b: {"loss": loss_fn(p, b)})
    grad_fn = jax.value_and_grad(loss_fn)

    def init(key):
        """The initial parameters of a run with this key."""
        return problem.init_fn(jax.random.split(key)[0])

    def orders(key):
        """The minibatch indices of a run with this key, `(epochs, steps, B)`."""
        return _batch_orders(key, num_examples, batch_size, num_epochs, shuffle)

    def run(config, params, orders, train_data, valid_data):
        """One run from its initial parameters and minibatch orders."""
        if init_scale is not None:
            params = _scale_weights(params, _lookup(config, init_scale, "init_scale"))
        kwargs = dict(fixed)
        for arg, source in spec.items():
            kwargs[arg] = (
                _lookup(config, source, f"hyperparams[{arg!r}]")
                if isinstance(source, str)
                else source(config)
            )
        tx = inject(**kwargs)

        def step(carry, idx):
            params, opt_state = carry
            batch = jax.tree.map(lambda x: x[idx], train_data)
            loss, grads = grad_fn(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (apply_updates(params, updates), opt_state), loss

        def epoch(carry, idx):
            carry, losses = jax.lax.scan(step, carry, idx)
            out = {"train_loss": jnp.mean(losses)}
            if has_valid:
                values = metrics_fn(carry[0], valid_data)
                if not isinstance(values, Mapping):
                    raise TypeError(
                        "problem.metrics_fn must return a dict {name: scalar}; got "
                        f"{type(values).__name__}."
                    )
                out.update({f"valid_{k}": v for k, v in values.items()})
            return carry, out

        carry = (params, tx.init(params))
        (params, _), metrics = jax.lax.scan(epoch, carry, orders)
        return metrics, params

    return _Trainer(init, orders, run)


def make_train_fn(
    problem: Problem,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int,
    batch_size: int | None = None,
) -> Callable[[Mapping[str, Any], jax.Array], tuple[dict[str, jax.Array], Any]]:
    """One training run as a pure function of a configuration: `vmap` it.

    Returns `train_fn(config, key) -> (metrics, params)`, where `config` maps
    names to scalars (arrays, or Python values for static arguments). It
    computes, all inside JAX so that it can be `jit`-ed and `vmap`-ed over
    `config`:

    1. $\\theta_0 =$ `problem.init_fn(k_0)`, with every array of rank
       $\\ge 2$ (the weights; not biases) multiplied by $s$ =
       `config[init_scale]` if `init_scale` is given;
    2. the optimizer `inject_hyperparams(optimizer, static_args)(**kwargs)`,
       whose keyword arguments are `optimizer_kwargs` plus, for each
       `arg: source` of `hyperparams`, `config[source]` (a name) or
       `source(config)` (a function: e.g. a schedule built from the
       configuration, `lambda h: gt.linear_decay_schedule(h["lr"],
       h["lr"] / 100, steps)`);
    3. `num_epochs` epochs of minibatch steps
       $\\theta \\leftarrow \\theta + u(\\nabla L_B(\\theta); h)$, each epoch one
       `lax.scan` over a fresh permutation (`gt.training.epoch_indices`,
       dropping the last incomplete batch; the full training set per step if
       `batch_size` is None);
    4. after each epoch, the mean minibatch loss and `problem.metrics_fn` on
       the validation set.

    `k_0` and the minibatch orders come from `key`.

    Args:
      problem: a `Problem`.
      optimizer: an optimizer factory, e.g. `gt.adam`.
      hyperparams: `{optimizer argument: configuration name or function of
        the configuration}`, or a list of names that are both.
      optimizer_kwargs: fixed keyword arguments of `optimizer`.
      static_args: arguments passed to `optimizer` unchanged rather than as
        hyperparameter arrays (see `inject_hyperparams`).
      init_scale: the configuration name of the initial weight scale $s$.
      num_epochs: passes over the training set, >= 1.
      batch_size: examples per step, or None for full-batch steps.

    Returns:
      `train_fn(config, key)` returning `(metrics, params)`: `metrics` a dict
      of per-epoch curves of shape `(num_epochs,)` (`"train_loss"`, then
      `"valid_<name>"` for each validation metric) and the final parameters.
    """
    trainer = _build_trainer(
        problem,
        optimizer=optimizer,
        hyperparams=hyperparams,
        optimizer_kwargs=optimizer_kwargs,
        static_args=static_args,
        init_scale=init_scale,
        num_epochs=num_epochs,
        batch_size=batch_size,
    )
    train_data = jax.tree.map(jnp.asarray, problem.train_data)
    valid_data = jax.tree.map(jnp.asarray, problem.valid_data)

    def train_fn(config, key):
        params, orders = trainer.init(key), trainer.orders(key)
        return trainer.run(config, params, orders, train_data, valid_data)

    return train_fn


class SweepResult(NamedTuple):
    """Per-configuration results of `sweep`, as NumPy arrays in `configs` order."""

    configs: dict[str, np.ndarray]
    """The configuration batch that was trained (choices as indices)."""
    metrics: dict[str, np.ndarray]
    """Curves of shape `(n, num_epochs)`: `"train_loss"` (mean minibatch loss
    of each epoch) and `"valid_<name>"` per validation metric."""
    params: Any
    """The final parameters stacked along a leading axis `n`, or None unless
    `keep_params=True`."""
    compile_seconds: float
    """Seconds spent compiling in this call (once per static group and chunk
    size, and for the shared initial parameters and minibatch orders)."""
    run_seconds: float
    """Seconds spent training, after compilation."""

    @property
    def final(self) -> dict[str, np.ndarray]:
        """Each metric after the last epoch, shape `(n,)`."""
        return {k: v[:, -1] for k, v in self.metrics.items()}

    def best(self, metric: str, direction: str = "minimize") -> int:
        """Index of the configuration with the best final `metric` (NaN is worst)."""
        if metric not in self.metrics:
            raise KeyError(f"metric {metric!r} not in {sorted(self.metrics)}.")
        return int(np.argmin(_as_costs(self.final[metric], direction)))


def _as_costs(values: Any, direction: str) -> np.ndarray:
    """Values as costs to minimise, NaN as +inf."""
    if direction not in ("minimize", "maximize"):
        raise ValueError(
            f"direction must be 'minimize' or 'maximize'; got {direction!r}."
        )
    costs = np.asarray(values, np.float64)
    costs = costs if direction == "minimize" else -costs
    return np.where(np.isnan(costs), np.inf, costs)


def best_so_far(values: Any, direction: str = "minimize") -> np.ndarray:
    """The running best of a sequence of trial results, NaN counting as worst.

    $b_t = \\min_{i \\le t} m(h_i)$ (or $\\max$): the usual way to compare
    search methods at equal budget, plotted against the number of trials $t$.

    Args:
      values: 1-D results $m(h_1), m(h_2), \\dots$ in trial order.
      direction: `"minimize"` or `"maximize"`.

    Returns:
      A float64 array like `values` (NaN until the first finite result).

    Examples:
      >>> import gradtransforms as gt
      >>> gt.tuning.best_so_far([3.0, float("nan"), 1.0, 2.0]).tolist()
      [3.0, 3.0, 1.0, 1.0]
    """
    costs = _as_costs(values, direction)
    if costs.ndim != 1:
        raise ValueError(f"values must be 1-D; got shape {costs.shape}.")
    best = np.minimum.accumulate(costs) if costs.size else costs
    best = np.where(np.isinf(best) & (best > 0), np.nan, best)
    return best if direction == "minimize" else -best


def _traced_values(space: dict[str, Dimension], configs: Mapping, rows: np.ndarray):
    """The vectorised dimensions' values at `rows`: a choice index -> its value."""
    out = {}
    for name, dim in space.items():
        column = np.asarray(configs[name])[rows]
        if isinstance(dim, Choice):
            values = np.asarray(dim.values)
            dtype = jnp.int32 if values.dtype.kind in "iu" else _float_dtype()
            out[name] = jnp.asarray(values[column], dtype)
        elif isinstance(dim, Integer):
            out[name] = jnp.asarray(column, jnp.int32)
        else:
            out[name] = jnp.asarray(column, _float_dtype())
    return out


def sweeper(
    problem: Problem,
    space: Space,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int,
    batch_size: int | None = None,
    key: jax.Array,
    same_key: bool = True,
    chunk_size: int | None = None,
    static_dims: Iterable[str] = (),
    keep_params: bool = False,
) -> Callable[[Mapping[str, Any]], SweepResult]:
    """`sweep` with its settings fixed: call it on batch after batch, compiling once.

    `sweeper(problem, space, **settings)(configs)` is
    `sweep(problem, space, configs, **settings)`, but the compiled programs
    are kept between calls (one per static group and chunk size), so an
    ask-train-tell loop (`tpe_search`) compiles only in its first round.
    Arguments are `sweep`'s and are validated here, once.

    Returns:
      `run(configs) -> SweepResult`.
    """
    space = _check_space(space)
    _check_key("key", key)
    spec = _check_hyperparams(hyperparams)
    for arg, source in spec.items():
        if isinstance(source, str) and source not in space:
            raise ValueError(
                f"hyperparams[{arg!r}] names {source!r}, which is not a "
                f"dimension of the space ({sorted(space)})."
            )
    if init_scale is not None and init_scale not in space:
        raise ValueError(
            f"init_scale names {init_scale!r}, which is not a dimension of the "
            f"space ({sorted(space)})."
        )
    static = {k for k, d in space.items() if _is_static_choice(d)}
    if isinstance(static_dims, str):
        static_dims = (static_dims,)
    for name in static_dims:
        if name not in space:
            raise ValueError(f"static_dims names {name!r}, not in the space.")
        if not isinstance(space[name], Integer | Choice):
            raise ValueError(
                f"static_dims: {name!r} must be an integer or choice dimension."
            )
        static.add(name)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    trainer = _build_trainer(
        problem,
        optimizer=optimizer,
        hyperparams=spec,
        optimizer_kwargs=optimizer_kwargs,
        static_args=static_args,
        init_scale=init_scale,
        num_epochs=num_epochs,
        batch_size=batch_size,
    )
    train_data = jax.tree.map(jnp.asarray, problem.train_data)
    valid_data = jax.tree.map(jnp.asarray, problem.valid_data)
    vectorised = {k: d for k, d in space.items() if k not in static}
    static_space = {k: space[k] for k in sorted(static)}
    axis = None if same_key else 0
    programs: dict[tuple, Any] = {}  # (static values, chunk size) -> executable
    shared: list[Any] = []  # same_key: the initial parameters and batch orders

    def random_inputs(rows: np.ndarray) -> tuple[Any, jax.Array]:
        if same_key:
            if not shared:
                # Outside the training program: computed once, and an eager
                # init_fn needs no compilation.
                shared.extend([trainer.init(key), trainer.orders(key)])
            return shared[0], shared[1]
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.asarray(rows))
        if ("random", len(rows)) not in programs:
            programs["random", len(rows)] = jax.jit(
                jax.vmap(lambda k: (trainer.init(k), trainer.orders(k)))
            )
        return programs["random", len(rows)](keys)

    def program(signature: tuple, args: tuple) -> Any:
        fixed = dict(signature)

        def one(values, params, orders, td, vd):
            m, p = trainer.run({**values, **fixed}, params, orders, td, vd)
            return (m, p) if keep_params else (m, None)

        vmapped = jax.vmap(one, in_axes=(0, axis, axis, None, None))
        return jax.jit(vmapped).lower(*args).compile()

    def run(configs: Mapping[str, Any]) -> SweepResult:
        n = _num_configs(space, configs)
        groups: dict[tuple, list[int]] = {}  # static values -> rows, in order
        if static:
            python_values = decode(static_space, {k: configs[k] for k in static})
            for i, values in enumerate(python_values):
                groups.setdefault(tuple(values.items()), []).append(i)
        else:
            groups[()] = list(range(n))
        metrics: dict[str, np.ndarray] = {}
        params_out: list[Any] = [None] * n if keep_params else []
        compile_seconds = run_seconds = 0.0
        for signature, members in groups.items():
            size = min(chunk_size or len(members), len(members))
            for start in range(0, len(members), size):
                rows = np.asarray(members[start : start + size])
                padded = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows))])
                tic = time.perf_counter()
                params, orders = random_inputs(padded)
                args = (
                    _traced_values(vectorised, configs, padded),
                    params,
                    orders,
                    train_data,
                    valid_data,
                )
                if (signature, size) not in programs:
                    programs[signature, size] = program(signature, args)
                    compile_seconds += time.perf_counter() - tic
                    tic = time.perf_counter()
                chunk_metrics, chunk_params = jax.device_get(
                    programs[signature, size](*args)
                )
                run_seconds += time.perf_counter() - tic
                for name, curve in chunk_metrics.items():
                    if name not in metrics:
                        metrics[name] = np.empty((n, *curve.shape[1:]), curve.dtype)
                    metrics[name][rows] = curve[: len(rows)]
                for j, i in enumerate(rows if keep_params else ()):
                    params_out[i] = jax.tree.map(lambda x, j=j: x[j], chunk_params)
        params = (
            jax.tree.map(lambda *xs: np.stack(xs), *params_out) if keep_params else None
        )
        return SweepResult(
            configs={k: np.asarray(v) for k, v in configs.items()},
            metrics=metrics,
            params=params,
            compile_seconds=compile_seconds,
            run_seconds=run_seconds,
        )

    return run


def sweep(
    problem: Problem,
    space: Space,
    configs: Mapping[str, Any],
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int,
    batch_size: int | None = None,
    key: jax.Array,
    same_key: bool = True,
    chunk_size: int | None = None,
    static_dims: Iterable[str] = (),
    keep_params: bool = False,
) -> SweepResult:
    """Train every configuration of a batch, vectorised with `jax.vmap`.

    The $n$ runs of `make_train_fn` (see it for what one run computes) become
    one program, `jit(vmap(train_fn))`, whose inputs are the configurations'
    values: the hyperparameters live in each run's optimizer state
    (`inject_hyperparams`) along the mapped axis, so every minibatch step of
    all $n$ runs is one batched computation — on small models far faster
    than $n$ runs one after another (`benchmarks/tuning.py`). A run that
    diverges gives NaN metrics without disturbing the others.

    With `same_key=True` (default) all runs start from the same
    $\\theta_0$ (before `init_scale`) and see the same minibatches (common
    random numbers), so they differ only in their hyperparameters; with
    `False`, the configuration in row $i$ uses `jax.random.fold_in(key, i)`.

    `chunk_size` bounds memory: configurations are trained `chunk_size` at a
    time (the last chunk padded) by one program compiled once, and results
    are moved to the host after each chunk. Dimensions in `static_dims`, and
    choices whose values are not all numbers, are *static*: configurations
    are grouped by their Python values, one compiled program per group, and
    the values reach the optimizer factory unchanged (list an integer one in
    `static_args` too if the factory needs a Python int). To train batch
    after batch with the same settings, compiling once, use `sweeper`.

    Args:
      problem: a `Problem`.
      space: dict `name -> dimension`.
      configs: a configuration batch of `space` (from `grid`, `random` or
        `encode`).
      optimizer: an optimizer factory, e.g. `gt.adam`.
      hyperparams: `{optimizer argument: configuration name or function of
        the configuration}`, or a list of names that are both. A function
        receives the configuration's values (a choice's value, not its index).
      optimizer_kwargs: fixed keyword arguments of `optimizer`.
      static_args: optimizer arguments passed unchanged rather than as
        hyperparameter arrays (see `inject_hyperparams`).
      init_scale: the name of the dimension that scales the initial weights.
      num_epochs: passes over the training set, >= 1.
      batch_size: examples per step, or None for full-batch steps.
      key: a PRNG key for the initial parameters and minibatch orders.
      same_key: share `key` between configurations (see above).
      chunk_size: train at most this many configurations at once (None: all).
      static_dims: integer or choice dimensions to treat as static.
      keep_params: also return the final parameters of every configuration.

    Returns:
      A `SweepResult`: `metrics[name]` of shape `(n, num_epochs)`,
      `final[name]` of shape `(n,)`, in the order of `configs`.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> x = jnp.linspace(-1, 1, 32)[:, None]
      >>> problem = gt.tuning.Problem(
      ...     init_fn=lambda key: {"w": jnp.zeros((1, 1))},
      ...     loss_fn=lambda p, b: jnp.mean((b @ p["w"] - 2 * b) ** 2),
      ...     train_data=x)
      >>> space = {"lr": gt.tuning.log_uniform(1e-3, 1.0)}
      >>> result = gt.tuning.sweep(
      ...     problem, space, gt.tuning.grid(space, 4), optimizer=gt.sgd,
      ...     hyperparams={"learning_rate": "lr"}, num_epochs=20,
      ...     key=jax.random.key(0))
      >>> result.metrics["train_loss"].shape
      (4, 20)
    """
    run = sweeper(
        problem,
        space,
        optimizer=optimizer,
        hyperparams=hyperparams,
        optimizer_kwargs=optimizer_kwargs,
        static_args=static_args,
        init_scale=init_scale,
        num_epochs=num_epochs,
        batch_size=batch_size,
        key=key,
        same_key=same_key,
        chunk_size=chunk_size,
        static_dims=static_dims,
        keep_params=keep_params,
    )
    return run(configs)


# ----------------------------------------------------------------------------
# Model-based search: TPE through Optuna


class SearchResult(NamedTuple):
    """All trials of `tpe_search`, in the order they were asked."""

    configs: dict[str, np.ndarray]
    """The configuration batch of every trial (choices as indices)."""
    values: np.ndarray
    """float64 `(num_trials,)`: the objective of each trial (NaN kept)."""
    study: Any
    """The `optuna.Study`, for Optuna's own analysis and plots."""


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gradtransforms.tuning.tpe_search needs Optuna, an optional "
            "dependency: pip install 'gradtransforms[tuning]' (or pip install "
            "optuna)."
        ) from e
    return optuna


def _suggest(trial: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    out = {}
    for name, dim in space.items():
        if isinstance(dim, Uniform):
            out[name] = trial.suggest_float(name, dim.low, dim.high)
        elif isinstance(dim, LogUniform):
            out[name] = trial.suggest_float(name, dim.low, dim.high, log=True)
        elif isinstance(dim, Integer):
            out[name] = trial.suggest_int(name, dim.low, dim.high)
        else:
            out[name] = trial.suggest_categorical(name, dim.values)
    return out


def tpe_search(
    space: Space,
    evaluate: Callable[[dict[str, jax.Array]], Any],
    *,
    num_trials: int,
    trials_per_round: int,
    seed: int = 0,
    direction: str = "minimize",
    num_startup_trials: int | None = None,
    study: Any = None,
) -> SearchResult:
    """Model-based search with Optuna's Tree-structured Parzen Estimator, in rounds.

    TPE models $m(h)$ from the trials so far: it splits them into the best
    fraction $\\gamma$ and the rest, fits a Parzen (kernel density)
    estimator to each, $\\ell(h)$ and $g(h)$, and proposes the candidate
    maximising $\\ell(h)/g(h)$ — the $h$ most likely to belong to the good
    group. Here each round *asks* `trials_per_round` trials (Optuna's
    constant-liar strategy keeps a round's proposals apart), *evaluates*
    them together with one call `evaluate(configs)` — typically a vmapped
    `sweep` — and *tells* Optuna the results. The first
    `num_startup_trials` trials are random (default: one round). A NaN
    result (a diverged run) is told as the worst possible value, $\\pm\\infty$.

    Optuna is an optional dependency: `pip install 'gradtransforms[tuning]'`.

    Args:
      space: dict `name -> dimension` (Optuna's `suggest_float`, `log=True`,
        `suggest_int` and `suggest_categorical`).
      evaluate: `evaluate(configs) -> values`: a configuration batch of the
        space in, an array of shape `(n,)` out.
      num_trials: total trials, >= 1.
      trials_per_round: trials asked, evaluated and told together, >= 1 (the
        last round may be smaller).
      seed: the seed of the TPE sampler.
      direction: `"minimize"` or `"maximize"` the values.
      num_startup_trials: random trials before TPE starts modelling.
      study: an existing `optuna.Study` to continue (its sampler and
        direction are used; `seed`, `num_startup_trials` are then unused).

    Returns:
      A `SearchResult(configs, values, study)` over the trials of this call.
    """
    optuna = _import_optuna()
    space = _check_space(space)
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable; got {evaluate!r}.")
    check_positive_int("num_trials", num_trials)
    check_positive_int("trials_per_round", trials_per_round)
    _as_costs([], direction)
    if num_startup_trials is None:
        num_startup_trials = trials_per_round
    else:
        check_positive_int("num_startup_trials", num_startup_trials)
    if study is None:
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=num_startup_trials
        )
        study = optuna.create_study(direction=direction, sampler=sampler)
    elif study.direction.name.lower() != direction:
        raise ValueError(
            f"direction={direction!r} differs from the study's "
            f"{study.direction.name.lower()!r}."
        )
    worst = math.inf if direction == "minimize" else -math.inf
    trials_done: list[dict[str, Any]] = []
    values_done: list[np.ndarray] = []
    while len(trials_done) < num_trials:
        count = min(trials_per_round, num_trials - len(trials_done))
        trials = [study.ask() for _ in range(count)]
        try:
            suggested = [_suggest(trial, space) for trial in trials]
            values = np.asarray(evaluate(encode(space, suggested)), np.float64)
            if values.shape != (count,):
                raise ValueError(
                    f"evaluate must return an array of shape ({count},), one "
                    f"value per configuration; got shape {values.shape}."
                )
        except BaseException:
            for trial in trials:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for trial, value in zip(trials, values, strict=True):
            study.tell(trial, float(value) if np.isfinite(value) else worst)
        trials_done.extend(suggested)
        values_done.append(values)
    configs = encode(space, trials_done)
    return SearchResult(
        configs={k: np.asarray(v) for k, v in configs.items()},
        values=np.concatenate(values_done),
        study=study,
    )
