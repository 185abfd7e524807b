"""Vectorised sweeps: a batch of configurations trained as one compiled program."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.base import GradientTransformation
from gradtransforms.tuning.results import SweepResult
from gradtransforms.tuning.samplers import check_key, decode
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
    build_trainer,
    check_hyperparams,
)
from gradtransforms.validation import check_positive_int

__all__ = ["sweep", "sweeper"]


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
    space = check_space(space)
    check_key("key", key)
    spec = check_hyperparams(hyperparams)
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
    static = {k for k, d in space.items() if is_static_choice(d)}
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
    trainer = build_trainer(
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
        n = num_configs(space, configs)
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
