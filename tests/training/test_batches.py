"""Minibatches (§8.1.3): every example once per epoch, from a key, in one scan."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

DATA = {"x": jnp.arange(23.0)[:, None] * jnp.ones((1, 2)), "y": jnp.arange(23)}


def _epochs(key, **kwargs):
    batches = list(gt.training.minibatches(DATA, 5, key=key, num_epochs=3, **kwargs))
    return batches


def test_minibatches_use_every_example_once_per_epoch():
    batches = _epochs(jax.random.key(0))
    per_epoch = len(batches) // 3
    assert per_epoch == 5  # 4 full batches of 5 and the remainder of 3
    epochs = [
        np.concatenate(
            [np.asarray(b["y"]) for b in batches[e * per_epoch : (e + 1) * per_epoch]]
        )
        for e in range(3)
    ]
    for ids in epochs:
        np.testing.assert_array_equal(np.sort(ids), np.arange(23))
    assert not np.array_equal(epochs[0], epochs[1])
    for b in batches:  # x and y stay paired
        np.testing.assert_array_equal(b["x"][:, 0], b["y"].astype(jnp.float32))


def test_minibatches_are_deterministic_from_the_key():
    a, b = _epochs(jax.random.key(7)), _epochs(jax.random.key(7))
    chex.assert_trees_all_equal(a, b)
    c = _epochs(jax.random.key(8))
    assert not all(np.array_equal(x["y"], y["y"]) for x, y in zip(a, c, strict=True))


def test_minibatches_drop_remainder_and_no_shuffle():
    batches = list(
        gt.training.minibatches(
            DATA, 5, key=jax.random.key(0), drop_remainder=True, shuffle=False
        )
    )
    assert [b["y"].shape[0] for b in batches] == [5, 5, 5, 5]
    np.testing.assert_array_equal(batches[1]["y"], np.arange(5, 10))


def test_epoch_indices_run_an_epoch_in_one_scan():
    idx, mask = gt.training.epoch_indices(
        jax.random.key(1), 23, 5, drop_remainder=False
    )
    assert idx.shape == mask.shape == (5, 5)
    used = np.asarray(idx)[np.asarray(mask)]
    np.testing.assert_array_equal(np.sort(used), np.arange(23))
    assert int(mask.sum()) == 23

    @jax.jit
    def epoch_sum(key):
        idx, mask = gt.training.epoch_indices(key, 23, 5, drop_remainder=False)

        def body(total, batch):
            i, m = batch
            return total + jnp.sum(jnp.where(m, DATA["y"][i], 0)), None

        return jax.lax.scan(body, jnp.zeros([], jnp.int32), (idx, mask))[0]

    assert int(epoch_sum(jax.random.key(2))) == sum(range(23))
    full, _ = gt.training.epoch_indices(jax.random.key(1), 23, 5)
    assert full.shape == (4, 5) and len(set(np.asarray(full).ravel())) == 20


def test_minibatch_errors():
    with pytest.raises(ValueError, match="leading"):
        next(
            gt.training.minibatches(
                {"a": jnp.ones(3), "b": jnp.ones(4)}, 2, key=jax.random.key(0)
            )
        )
    with pytest.raises(ValueError, match="batch_size"):
        next(gt.training.minibatches(DATA, 0, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="batch_size"):
        gt.training.epoch_indices(jax.random.key(0), 3, 5)
