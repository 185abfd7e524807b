"""base.py: apply_updates (dtypes kept, tree errors by path), identity, set_to_zero."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

PARAMS = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
GRADS = {"w": jnp.array([0.2, 0.4]), "b": jnp.array(-1.0)}


def test_identity_passes_through():
    out, _ = gt.identity().update(GRADS, gt.identity().init(PARAMS))
    chex.assert_trees_all_equal(out, GRADS)


def test_apply_updates_names_the_first_differing_path():
    with pytest.raises(ValueError, match=r"\['b'\]"):
        gt.apply_updates({"a": jnp.ones(2), "b": jnp.ones(1)}, {"a": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"\['net'\]\[1\]"):
        gt.apply_updates(
            {"net": [jnp.ones(1), jnp.ones(1)]}, {"net": [jnp.ones(1), None]}
        )


def test_apply_updates_keeps_parameter_dtypes():
    params = {"h": jnp.ones(3, jnp.bfloat16), "f": jnp.ones(3)}
    updates = {"h": jnp.full(3, 0.5), "f": jnp.full(3, 0.25)}
    new = gt.apply_updates(params, updates)
    assert new["h"].dtype == jnp.bfloat16 and new["f"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new["h"], np.float32), 1.5)


def test_set_to_zero_gives_zeros_in_the_updates_dtypes():
    grads = {"w": jnp.array([0.2, jnp.nan]), "h": jnp.ones(2, jnp.bfloat16)}
    tx = gt.set_to_zero()
    out, state = tx.update(grads, tx.init(grads))
    np.testing.assert_array_equal(out["w"], [0.0, 0.0])
    assert out["h"].dtype == jnp.bfloat16
    assert state == optax.EmptyState()
