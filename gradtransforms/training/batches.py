"""Shuffled minibatches (textbook §8.1.3), as index arrays or as an iterator.

Minibatch orders come from a PRNG key, so the same key gives the same
batches, and `epoch_indices` runs inside `jit` and `lax.scan`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.validation import check_bool, check_key, check_positive_int

__all__ = ["count_examples", "epoch_indices", "minibatches"]


def count_examples(data: Any) -> int:
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
    check_key("key", key)
    check_positive_int("num_examples", num_examples)
    check_positive_int("batch_size", batch_size)
    check_bool("drop_remainder", drop_remainder)
    check_bool("shuffle", shuffle)
    num_examples, batch_size = int(num_examples), int(batch_size)  # not uint8
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

    Returns:
      An iterator of pytrees like `data` with leading axis `batch_size` (or
      smaller last). The arguments are checked when it is created.
    """
    num_examples = count_examples(data)
    check_positive_int("batch_size", batch_size)
    check_key("key", key)
    check_positive_int("num_epochs", num_epochs)
    check_bool("shuffle", shuffle)
    check_bool("drop_remainder", drop_remainder)
    return _batches(
        data, num_examples, batch_size, key, num_epochs, shuffle, drop_remainder
    )


def _batches(data, num_examples, batch_size, key, num_epochs, shuffle, drop_remainder):
    """The generator of `minibatches`, its arguments checked."""
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
