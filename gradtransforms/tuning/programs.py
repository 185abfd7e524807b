"""A sweeper's compiled programs, their inputs, and the results they collect.

Every run of a sweep has a configuration (mapped over by the outer `vmap`)
and a seed (the inner `vmap`). A seed's key gives the run's initial values
and minibatch orders: shared by every configuration under `same_key`
(common random numbers), or folded with the configuration's row otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.tuning.trainer import Trainer

__all__ = ["Collected", "Programs", "seed_keys"]


def seed_keys(key: jax.Array, seeds: int | None) -> list[jax.Array]:
    """Each seed's key: `key` itself without a seeds axis, else `fold_in(key, s)`."""
    if seeds is None:
        return [key]
    return [jax.random.fold_in(key, s) for s in range(seeds)]


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _host_stack(*xs: Any) -> Any:
    """`np.stack`, or `jnp.stack` for PRNG keys, which NumPy cannot hold."""
    if jnp.issubdtype(jnp.result_type(xs[0]), jax.dtypes.prng_key):
        return jnp.stack(xs)
    return np.stack(xs)


class Programs:
    """The compiled programs and shared inputs of a sweeper, kept between calls."""

    def __init__(
        self, trainer: Trainer, key: jax.Array, seeds: int | None, same_key: bool
    ):
        self.trainer, self.same_key = trainer, same_key
        self.key, self.seeds = key, seeds
        self.compiled: dict[tuple, Any] = {}  # (static values, size) -> executable
        self.shared: tuple[Any, Any] | None = None  # same_key: inputs of the seeds

    def inputs(self, rows: np.ndarray) -> tuple[Any, Any]:
        """`((params, state), orders)` of the runs `rows`, with a seeds axis.

        Shapes `(seeds, ...)` under `same_key`, else `(rows, seeds, ...)`.
        """
        trainer = self.trainer
        if self.same_key:
            if self.shared is None:
                # Outside the training program: computed once, and an eager
                # init_fn needs no compilation.
                keys = seed_keys(self.key, self.seeds)
                per_seed = [(trainer.init(k), trainer.orders(k)) for k in keys]
                self.shared = shared = _stack(per_seed)
                return shared
            return self.shared
        if ("random", len(rows)) not in self.compiled:
            one = lambda k: (trainer.init(k), trainer.orders(k))
            self.compiled["random", len(rows)] = jax.jit(jax.vmap(jax.vmap(one)))
        seeds = jnp.stack(seed_keys(self.key, self.seeds))
        fold = lambda i: jax.vmap(jax.random.fold_in, (0, None))(seeds, i)
        keys = jax.vmap(fold)(jnp.asarray(rows))
        return self.compiled["random", len(rows)](keys)

    def program(self, key: tuple, args: tuple, keep_params: bool) -> tuple[Any, bool]:
        """The executable for `key = (static values, chunk size)`; True if new."""
        if key in self.compiled:
            return self.compiled[key], False
        fixed = dict(key[0])

        def one(values, init, orders, train_data, eval_sets):
            params, state = init
            metrics, params, state = self.trainer.run(
                {**values, **fixed}, params, state, orders, train_data, eval_sets
            )
            return metrics, ((params, state) if keep_params else None)

        axis = None if self.same_key else 0
        per_seed = jax.vmap(one, in_axes=(None, 0, 0, None, None))
        per_config = jax.vmap(per_seed, in_axes=(0, axis, axis, None, None))
        self.compiled[key] = jax.jit(per_config).lower(*args).compile()
        return self.compiled[key], True


class Collected:
    """Per-configuration metrics and final values, filled chunk by chunk."""

    def __init__(self, n: int, keep_params: bool):
        self.n, self.keep_params = n, keep_params
        self.metrics: dict[str, np.ndarray] = {}
        self.finals: list[Any] = [None] * n if keep_params else []

    def add(self, rows: np.ndarray, metrics: Mapping, finals: Any) -> None:
        """Store the first `len(rows)` runs of a chunk (the rest is padding)."""
        for name, curve in metrics.items():
            if name not in self.metrics:
                self.metrics[name] = np.empty((self.n, *curve.shape[1:]), curve.dtype)
            self.metrics[name][rows] = curve[: len(rows)]
        for j, i in enumerate(rows if self.keep_params else ()):
            self.finals[i] = jax.tree.map(lambda x, j=j: x[j], finals)

    def stacked(self) -> tuple[Any, Any]:
        """`(params, state)` stacked along the configurations, or `(None, None)`."""
        if not self.keep_params:
            return None, None
        return jax.tree.map(_host_stack, *self.finals)
