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
from gradtransforms.tuning.problem import check_problem
from gradtransforms.tuning.programs import Collected, Programs
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
    seeds: int | None = None

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
        if self.seeds is not None:
            check_positive_int("seeds", self.seeds)
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


def sweeper(
    problem: Problem,
    space: Space,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int | None = None,
    batch_size: int | None = None,
    num_steps: int | None = None,
    eval_every: int | None = None,
    key: jax.Array,
    same_key: bool = True,
    chunk_size: int | None = None,
    static_dims: Iterable[str] = (),
    keep_params: bool = False,
    seeds: int | None = None,
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
        jax.tree.map(jnp.asarray, check_problem(problem)),
    )
    static = settings.static_names(space)
    vectorised = {k: d for k, d in space.items() if k not in static}
    programs = Programs(trainer, settings.key, settings.seeds, settings.same_key)

    def run(configs: Mapping[str, Any]) -> SweepResult:
        n = num_configs(space, configs)
        collected = Collected(n, settings.keep_params)
        compile_seconds = run_seconds = 0.0
        for signature, members in _groups(space, static, configs, n).items():
            # Every chunk of a group has the same width, padded if need be, so
            # that a run's arithmetic never depends on its neighbours.
            size = settings.chunk_size or len(members)
            for start in range(0, len(members), size):
                rows = np.asarray(members[start : start + size])
                padded = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows))])
                tic = time.perf_counter()
                init, orders = programs.inputs(padded)
                values = _traced_values(vectorised, configs, padded)
                args = (values, init, orders, *data)
                executable, compiled = programs.program(
                    (signature, size), args, settings.keep_params
                )
                if compiled:
                    compile_seconds += time.perf_counter() - tic
                    tic = time.perf_counter()
                chunk_metrics, chunk_finals = jax.device_get(executable(*args))
                run_seconds += time.perf_counter() - tic
                collected.add(rows, chunk_metrics, chunk_finals)
        result = _result(configs, collected, settings.seeds, problem.has_state)
        return result._replace(
            eval_steps=trainer.budget.eval_steps,
            compile_seconds=compile_seconds,
            run_seconds=run_seconds,
        )

    return run


def _result(
    configs: Mapping[str, Any], collected: Collected, seeds: int | None, stateful: bool
) -> SweepResult:
    """The collected runs as a `SweepResult`; no seeds axis unless `seeds` was given."""
    metrics = collected.metrics
    params, state = collected.stacked()
    if seeds is None:  # drop the seeds axis of length 1
        metrics = {k: v[:, 0] for k, v in metrics.items()}
        params, state = jax.tree.map(lambda x: x[:, 0], (params, state))
    return SweepResult(
        configs={k: np.asarray(v) for k, v in configs.items()},
        metrics=metrics,
        params=params,
        compile_seconds=0.0,
        run_seconds=0.0,
        model_state=state if stateful else None,
        seeds=seeds,
    )


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
    num_epochs: int | None = None,
    batch_size: int | None = None,
    num_steps: int | None = None,
    eval_every: int | None = None,
    key: jax.Array,
    same_key: bool = True,
    chunk_size: int | None = None,
    static_dims: Iterable[str] = (),
    keep_params: bool = False,
    seeds: int | None = None,
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

    `seeds=k` trains every configuration under $k$ seeds in the same
    program (a second `vmap`): seed $s$ uses the key
    `jax.random.fold_in(key, s)` in place of `key` above, so under
    `same_key` the configurations share each seed's initial values and
    minibatch orders. The metrics then have a seeds axis, and
    `SweepResult.mean_ci` gives each configuration's mean over the seeds
    with a 95% confidence interval.

    `chunk_size` bounds memory: configurations are trained `chunk_size` at a
    time by one program compiled once, every chunk padded to `chunk_size`,
    and results are moved to the host after each chunk. A configuration's
    result depends only on its own values and the width of the program
    that trains it, never on the other configurations in its chunk; with
    `chunk_size` fixed it is the same bits whatever else is swept (see the
    tuning guide, "Reproducibility"). Dimensions in `static_dims`, and
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
      num_epochs: passes over the training set, >= 1; or give `num_steps`.
      batch_size: examples per step, or None for full-batch steps.
      num_steps: minibatch steps per run, >= 1, instead of `num_epochs`.
      eval_every: steps between evaluations (default: one epoch's; at most
        the budget); the last step is always evaluated.
      key: a PRNG key for the initial parameters and minibatch orders.
      same_key: share `key` between configurations (see above).
      chunk_size: train this many configurations at once (None: all).
      static_dims: integer or choice dimensions to treat as static.
      keep_params: also return the final parameters (and model state) of
        every run.
      seeds: train every configuration under this many seeds (None: one,
        with no seeds axis).

    Returns:
      A `SweepResult` in the order of `configs`: `metrics[name]` of shape
      `(n, T)` for $T$ evaluations (`(n, seeds, T)` with `seeds`), at the
      steps `eval_steps`; `final[name]` of shape `(n,)` (or `(n, seeds)`).

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
