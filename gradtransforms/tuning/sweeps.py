"""Vectorised sweeps: a batch of configurations trained as one compiled program."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.base import GradientTransformation
from gradtransforms.tuning.results import SweepResult
from gradtransforms.tuning.samplers import decode
from gradtransforms.tuning.space import (
    Choice,
    Dimension,
    Integer,
    Space,
    check_space,
    float_dtype,
    is_static_choice,
    num_configs,
)
from gradtransforms.tuning.trainer import (
    HyperparamSource,
    Problem,
    Trainer,
    TrainSettings,
    build_trainer,
)
from gradtransforms.validation import check_bool, check_key, check_positive_int

__all__ = ["SweepSettings", "sweep", "sweeper"]

_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainSettings))


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """The keywords of `sweep` and `sweeper`, checked once against the space."""

    train: TrainSettings
    key: jax.Array
    same_key: bool = True
    chunk_size: int | None = None
    static_dims: Iterable[str] = ()
    keep_params: bool = False

    @classmethod
    def from_keywords(cls, space: dict[str, Dimension], **keywords: Any):
        """Split `sweep`'s keywords into the training and the sweep settings."""
        train = TrainSettings(**{k: keywords.pop(k) for k in _TRAIN_FIELDS})
        settings = cls(train, **keywords)
        settings.check(space)
        return settings

    def check(self, space: dict[str, Dimension]) -> None:
        """Check the settings against the space (names, static dimensions)."""
        check_key("key", self.key)
        check_bool("same_key", self.same_key)
        check_bool("keep_params", self.keep_params)
        if self.chunk_size is not None:
            check_positive_int("chunk_size", self.chunk_size)
        for arg, source in self.train.hyperparams.items():
            if isinstance(source, str) and source not in space:
                raise ValueError(
                    f"hyperparams[{arg!r}] names {source!r}, which is not a "
                    f"dimension of the space ({sorted(space)})."
                )
        init_scale = self.train.init_scale
        if init_scale is not None and init_scale not in space:
            raise ValueError(
                f"init_scale names {init_scale!r}, which is not a dimension of "
                f"the space ({sorted(space)})."
            )
        dims = self.static_dims
        for name in (dims,) if isinstance(dims, str) else dims:
            if name not in space:
                raise ValueError(f"static_dims names {name!r}, not in the space.")
            if not isinstance(space[name], Integer | Choice):
                raise ValueError(
                    f"static_dims: {name!r} must be an integer or choice dimension."
                )

    def static_names(self, space: dict[str, Dimension]) -> list[str]:
        """The static dimensions: `static_dims` and the non-numeric choices."""
        dims = self.static_dims
        named = {dims} if isinstance(dims, str) else set(dims)
        return sorted(named | {k for k, d in space.items() if is_static_choice(d)})


def _traced_values(space: dict[str, Dimension], configs: Mapping, rows: np.ndarray):
    """The vectorised dimensions' values at `rows`: a choice index -> its value."""
    out = {}
    for name, dim in space.items():
        column = np.asarray(configs[name])[rows]
        if isinstance(dim, Choice):
            values = np.asarray(dim.values)
            dtype = jnp.int32 if values.dtype.kind in "iu" else float_dtype()
            out[name] = jnp.asarray(values[column], dtype)
        elif isinstance(dim, Integer):
            out[name] = jnp.asarray(column, jnp.int32)
        else:
            out[name] = jnp.asarray(column, float_dtype())
    return out


class _Programs:
    """A sweeper's compiled programs and shared inputs, kept between calls."""

    def __init__(self, trainer: Trainer, settings: SweepSettings, data: tuple):
        self.trainer, self.settings, self.data = trainer, settings, data
        self.compiled: dict[tuple, Any] = {}  # (static values, size) -> executable
        self.shared: tuple[Any, Any] | None = None  # same_key: params, orders

    def inputs(self, rows: np.ndarray) -> tuple[Any, jax.Array]:
        """The initial parameters and minibatch orders of the runs `rows`."""
        trainer, key = self.trainer, self.settings.key
        if self.settings.same_key:
            if self.shared is None:
                # Outside the training program: computed once, and an eager
                # init_fn needs no compilation.
                self.shared = (trainer.init(key), trainer.orders(key))
            return self.shared
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.asarray(rows))
        if ("random", len(rows)) not in self.compiled:
            self.compiled["random", len(rows)] = jax.jit(
                jax.vmap(lambda k: (trainer.init(k), trainer.orders(k)))
            )
        return self.compiled["random", len(rows)](keys)

    def program(self, key: tuple, args: tuple) -> tuple[Any, bool]:
        """The executable for `key = (static values, chunk size)`; True if new."""
        if key in self.compiled:
            return self.compiled[key], False
        fixed, keep = dict(key[0]), self.settings.keep_params
        axis = None if self.settings.same_key else 0

        def one(values, params, orders, td, vd):
            m, p = self.trainer.run({**values, **fixed}, params, orders, td, vd)
            return (m, p) if keep else (m, None)

        vmapped = jax.vmap(one, in_axes=(0, axis, axis, None, None))
        self.compiled[key] = jax.jit(vmapped).lower(*args).compile()
        return self.compiled[key], True


def _groups(space: dict[str, Dimension], static: list[str], configs, n: int):
    """Row indices by the Python values of the static dimensions, in order."""
    if not static:
        return {(): list(range(n))}
    groups: dict[tuple, list[int]] = {}
    static_space = {k: space[k] for k in static}
    python_values = decode(static_space, {k: configs[k] for k in static})
    for i, values in enumerate(python_values):
        groups.setdefault(tuple(values.items()), []).append(i)
    return groups


class _Collected:
    """Per-configuration metrics and parameters, filled chunk by chunk."""

    def __init__(self, n: int, keep_params: bool):
        self.n, self.keep_params = n, keep_params
        self.metrics: dict[str, np.ndarray] = {}
        self.params: list[Any] = [None] * n if keep_params else []

    def add(self, rows: np.ndarray, metrics: dict, params: Any) -> None:
        for name, curve in metrics.items():
            if name not in self.metrics:
                self.metrics[name] = np.empty((self.n, *curve.shape[1:]), curve.dtype)
            self.metrics[name][rows] = curve[: len(rows)]
        for j, i in enumerate(rows if self.keep_params else ()):
            self.params[i] = jax.tree.map(lambda x, j=j: x[j], params)

    def stacked_params(self) -> Any:
        if not self.keep_params:
            return None
        return jax.tree.map(lambda *xs: np.stack(xs), *self.params)


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
    keywords = {k: v for k, v in locals().items() if k not in ("problem", "space")}
    space = check_space(space)
    settings = SweepSettings.from_keywords(space, **keywords)
    trainer = build_trainer(problem, settings.train)
    data = (
        jax.tree.map(jnp.asarray, problem.train_data),
        jax.tree.map(jnp.asarray, problem.valid_data),
    )
    static = settings.static_names(space)
    vectorised = {k: d for k, d in space.items() if k not in static}
    programs = _Programs(trainer, settings, data)

    def run(configs: Mapping[str, Any]) -> SweepResult:
        n = num_configs(space, configs)
        collected = _Collected(n, settings.keep_params)
        compile_seconds = run_seconds = 0.0
        for signature, members in _groups(space, static, configs, n).items():
            size = min(settings.chunk_size or len(members), len(members))
            for start in range(0, len(members), size):
                rows = np.asarray(members[start : start + size])
                padded = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows))])
                tic = time.perf_counter()
                params, orders = programs.inputs(padded)
                values = _traced_values(vectorised, configs, padded)
                args = (values, params, orders, *data)
                executable, compiled = programs.program((signature, size), args)
                if compiled:
                    compile_seconds += time.perf_counter() - tic
                    tic = time.perf_counter()
                chunk_metrics, chunk_params = jax.device_get(executable(*args))
                run_seconds += time.perf_counter() - tic
                collected.add(rows, chunk_metrics, chunk_params)
        return SweepResult(
            configs={k: np.asarray(v) for k, v in configs.items()},
            metrics=collected.metrics,
            params=collected.stacked_params(),
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
    keywords = {k: v for k, v in locals().items() if k != "configs"}
    return sweeper(**keywords)(configs)
