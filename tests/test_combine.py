"""chain, masked, partition, and update's tree errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

PARAMS = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
GRADS = {"w": jnp.array([0.2, 0.4]), "b": jnp.array(-1.0)}


def test_chain_applies_left_to_right():
    tx = gt.chain(gt.scale(2.0), gt.clip(1.0), gt.scale(-0.5))
    out, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    expected = jax.tree.map(lambda g: -0.5 * np.clip(2.0 * np.asarray(g), -1, 1), GRADS)
    chex.assert_trees_all_close(out, expected)


def test_chain_rejects_non_transformations_by_position():
    with pytest.raises(TypeError, match="chain argument 1"):
        gt.chain(gt.scale(1.0), lambda g: g)


def test_chain_passes_extra_args_to_transformations_that_take_them():
    seen = {}

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None, *, value=None, **extra):
        seen["value"] = value
        return updates, state

    tx = gt.chain(gt.scale(1.0), optax.GradientTransformationExtraArgs(init, update))
    tx.update(GRADS, tx.init(PARAMS), PARAMS, value=3.0)
    assert seen["value"] == 3.0


def test_masked_applies_inner_only_where_true():
    tx = gt.masked(gt.scale(10.0), {"w": True, "b": False})
    out, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(out["w"], 10.0 * GRADS["w"])
    chex.assert_trees_all_close(out["b"], GRADS["b"])


def test_masked_with_a_callable_mask_and_a_stateful_inner():
    tx = gt.masked(gt.adam(0.1), lambda p: jax.tree.map(lambda x: x.ndim > 0, p))
    out, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(out["b"], GRADS["b"])
    chex.assert_trees_all_close(out["w"], -0.1 * jnp.sign(GRADS["w"]), rtol=1e-6)


def test_masked_rejects_a_mask_that_is_not_bools():
    with pytest.raises(TypeError, match=r"\['w'\]"):
        gt.masked(gt.scale(1.0), {"w": 0.5, "b": True})


def test_partition_routes_groups_and_freezes_with_set_to_zero():
    tx = gt.partition(
        {"train": gt.sgd(0.1), "frozen": gt.set_to_zero()},
        {"w": "train", "b": "frozen"},
    )
    out, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(out["w"], -0.1 * GRADS["w"])
    assert float(out["b"]) == 0.0


def test_partition_names_unknown_labels():
    tx = gt.partition({"train": gt.sgd(0.1)}, {"w": "train", "b": "typo"})
    with pytest.raises(ValueError, match="typo"):
        tx.init(PARAMS)


# ----------------------------------------------------------------------------
# Tree-structure errors of update name the first differing path.


def test_update_names_the_path_where_updates_and_params_differ():
    tx = gt.adam(0.1)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"\['c'\]"):
        tx.update({**GRADS, "c": jnp.ones(1)}, state, {**PARAMS, "d": jnp.ones(1)})


def test_update_with_state_of_another_model_names_the_path():
    tx = gt.adam(0.1)
    state = tx.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="b"):
        tx.update(GRADS, state, PARAMS)
