"""Training-loop pieces: minibatches (§8.1.3) and early stopping (§8.1.2).

Both are pure and deterministic: minibatch orders come from a PRNG key, and
early stopping is a state machine (`init`, `update`) whose state is a
`NamedTuple` of arrays, so it runs inside `jit` and `lax.scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.validation import check_non_negative, check_positive_int

__all__ = [
    "EarlyStopping",
    "EarlyStoppingState",
    "early_stopping",
    "epoch_indices",
    "minibatches",
]


# ----------------------------------------------------------------------------
# Minibatches


def _num_examples(data: Any) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data has no arrays to batch.")
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            "every array in data must have the same leading (example) axis; got "
            f"leading sizes {sorted(sizes)}."
        )
    return sizes.pop()


def epoch_indices(
    key: jax.Array,
    num_examples: int,
    batch_size: int,
    *,
    drop_remainder: bool = True,
    shuffle: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Index batches for one epoch, as arrays, for a `lax.scan` over the epoch.

    A permutation of `range(num_examples)` (identity if `shuffle=False`) cut
    into consecutive batches. With `drop_remainder=False` the last batch is
    padded with repeated indices, and `mask` marks the padding `False` so the
    loss can ignore it; every example is then used exactly once per epoch.
    Use a different key per epoch (e.g. `jax.random.fold_in(key, epoch)`).

    Args:
      key: a PRNG key.
      num_examples: $N \\ge 1$.
      batch_size: $B \\ge 1$.
      drop_remainder: drop the last $N \\bmod B$ examples of the permutation.
      shuffle: permute the examples.

    Returns:
      `(indices, mask)`, both of shape `(num_batches, batch_size)`: int32
      example indices and bools that are `False` only on padding.

    Examples:
      >>> import jax, gradtransforms as gt
      >>> idx, mask = gt.training.epoch_indices(jax.random.key(0), 10, 4)
      >>> idx.shape
      (2, 4)
    """
    check_positive_int("num_examples", num_examples)
    check_positive_int("batch_size", batch_size)
    if drop_remainder and batch_size > num_examples:
        raise ValueError(
            f"batch_size ({batch_size}) exceeds num_examples ({num_examples}) with "
            "drop_remainder=True: the epoch would have no batch."
        )
    order = (
        jax.random.permutation(key, num_examples)
        if shuffle
        else jnp.arange(num_examples)
    ).astype(jnp.int32)
    if drop_remainder:
        num_batches = num_examples // batch_size
        used = order[: num_batches * batch_size]
        return used.reshape(num_batches, batch_size), jnp.ones(
            (num_batches, batch_size), bool
        )
    num_batches = -(-num_examples // batch_size)
    pad = num_batches * batch_size - num_examples
    padded = jnp.concatenate([order, order[:pad]])
    mask = jnp.arange(num_batches * batch_size) < num_examples
    return padded.reshape(num_batches, batch_size), mask.reshape(
        num_batches, batch_size
    )


def minibatches(
    data: Any,
    batch_size: int,
    *,
    key: jax.Array,
    num_epochs: int = 1,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> Iterator[Any]:
    """Iterate over shuffled minibatches of a pytree of arrays, epoch by epoch.

    Each epoch draws a fresh permutation from `jax.random.fold_in(key, epoch)`
    and yields consecutive slices of it, so every example is used once per
    epoch, orders differ between epochs, and the same key gives the same
    batches (§8.1.3). The last, smaller batch is yielded unless
    `drop_remainder`.

    Args:
      data: a pytree of arrays sharing their leading (example) axis.
      batch_size: $B \\ge 1$.
      key: a PRNG key.
      num_epochs: number of passes, >= 1.
      shuffle: permute the examples each epoch.
      drop_remainder: skip the last incomplete batch.

    Yields:
      Pytrees like `data` with leading axis `batch_size` (or smaller last).
    """
    num_examples = _num_examples(data)
    check_positive_int("batch_size", batch_size)
    check_positive_int("num_epochs", num_epochs)
    for epoch in range(num_epochs):
        epoch_key = jax.random.fold_in(key, epoch)
        order = (
            np.asarray(jax.random.permutation(epoch_key, num_examples))
            if shuffle
            else np.arange(num_examples)
        )
        stop = (
            num_examples - num_examples % batch_size if drop_remainder else num_examples
        )
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield jax.tree.map(lambda x, idx=idx: x[idx], data)


# ----------------------------------------------------------------------------
# Early stopping


class EarlyStoppingState(NamedTuple):
    """State of `early_stopping`."""

    step: jax.Array
    """int32: number of evaluations seen."""
    best_value: jax.Array
    """The best validation value so far (+inf or -inf before any)."""
    best_step: jax.Array
    """int32: the evaluation index (0-based) of `best_value`; -1 before any."""
    num_bad: jax.Array
    """int32: evaluations since the last improvement."""
    should_stop: jax.Array
    """bool: `num_bad >= patience`."""
    best_params: Any
    """A copy of the parameters at `best_step` (None unless kept)."""


class EarlyStopping(NamedTuple):
    """The pure `(init, update)` pair returned by `early_stopping`."""

    init: Callable[..., EarlyStoppingState]
    """`init(params=None) -> state`."""
    update: Callable[..., EarlyStoppingState]
    """`update(state, value, params=None) -> state`."""


def early_stopping(
    patience: int,
    *,
    min_delta: float = 0.0,
    mode: str = "min",
    keep_best_params: bool = False,
) -> EarlyStopping:
    """Early stopping (§8.1.2) as a pure state machine usable inside `jit`.

    After each validation evaluation $v_k$: it improves on the best value
    $v^*$ if $v_k < v^* - \\delta$ (`mode="min"`) or $v_k > v^* + \\delta$
    (`mode="max"`); then $v^*$, its step and (optionally) the parameters are
    recorded and the patience counter resets, otherwise the counter grows.
    `should_stop` turns on once `patience` evaluations in a row failed to
    improve. NaN values never improve. Restore `state.best_params` at the end
    (the book's "return the best parameters seen").

    Args:
      patience: evaluations without improvement before stopping, >= 1.
      min_delta: $\\delta \\ge 0$, the least change that counts as improvement.
      mode: `"min"` (a loss) or `"max"` (an accuracy).
      keep_best_params: keep a copy of the best parameters in the state
        (costs one copy of the parameters).

    Returns:
      An `EarlyStopping(init, update)` pair.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> es = gt.training.early_stopping(patience=2)
      >>> state = es.init()
      >>> for v in [3.0, 2.0, 2.5, 2.4]:
      ...     state = es.update(state, jnp.asarray(v))
      >>> int(state.best_step), bool(state.should_stop)
      (1, True)
    """
    check_positive_int("patience", patience)
    check_non_negative("min_delta", min_delta)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
    sign = 1.0 if mode == "min" else -1.0

    def init(params: Any = None) -> EarlyStoppingState:
        if keep_best_params and params is None:
            raise ValueError("keep_best_params=True needs init(params).")
        best_params = jax.tree.map(jnp.array, params) if keep_best_params else None
        return EarlyStoppingState(
            step=jnp.zeros([], jnp.int32),
            best_value=jnp.asarray(sign * jnp.inf),
            best_step=jnp.full([], -1, jnp.int32),
            num_bad=jnp.zeros([], jnp.int32),
            should_stop=jnp.asarray(False),
            best_params=best_params,
        )

    def update(
        state: EarlyStoppingState, value: Any, params: Any = None
    ) -> EarlyStoppingState:
        if keep_best_params and params is None:
            raise ValueError(
                "keep_best_params=True needs update(state, value, params)."
            )
        value = jnp.asarray(value).astype(state.best_value.dtype)
        margin = jnp.asarray(min_delta, value.dtype)
        if mode == "min":
            improved = value < state.best_value - margin
        else:
            improved = value > state.best_value + margin
        num_bad = jnp.where(improved, 0, state.num_bad + 1)
        best_params = state.best_params
        if keep_best_params:
            best_params = jax.tree.map(
                lambda new, old: jnp.where(improved, new, old), params, best_params
            )
        return EarlyStoppingState(
            step=state.step + 1,
            best_value=jnp.where(improved, value, state.best_value),
            best_step=jnp.where(improved, state.step, state.best_step),
            num_bad=num_bad,
            should_stop=num_bad >= patience,
            best_params=best_params,
        )

    return EarlyStopping(init, update)
