"""scaling.py: scale, scale_by_schedule, scale_by_learning_rate, weight decay.

References are closed forms: u = s g, u_k = s(k) g from the first update's
k = 0, u = -lr g (or +lr g), and u = g + wd * params; for a bfloat16 leaf, the
product computed by NumPy in float32 and rounded once.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

PARAMS = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
GRADS = {"w": jnp.array([0.2, 0.4]), "b": jnp.array(-1.0)}


def test_scale_multiplies_in_float32_and_rounds_once():
    g = {"w": jnp.array([0.3, -7.0, 1e-3], jnp.bfloat16), "b": jnp.array([2.0])}
    tx = gt.scale(0.1)
    out, _ = tx.update(g, tx.init(g))
    widened = np.asarray(g["w"], np.float32) * np.float32(0.1)
    expected = np.asarray(jnp.asarray(widened).astype(jnp.bfloat16), np.float32)
    assert out["w"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), expected)
    np.testing.assert_allclose(out["b"], [0.2], rtol=1e-7)


def test_scale_by_schedule_starts_from_the_schedule_at_zero():
    tx = gt.scale_by_schedule(lambda count: 1.0 / (count.astype(jnp.float32) + 1.0))
    state = tx.init(PARAMS)
    for k in range(4):
        out, state = tx.update(GRADS, state)
        chex.assert_trees_all_close(out, {n: g / (k + 1) for n, g in GRADS.items()})
        assert int(state.count) == k + 1


@pytest.mark.parametrize(
    ("kwargs", "factors"),
    [
        ({"learning_rate": 0.5}, [-0.5, -0.5, -0.5]),
        ({"learning_rate": 0.5, "flip_sign": False}, [0.5, 0.5, 0.5]),
        (
            {"learning_rate": lambda count: 0.5 ** count.astype(jnp.float32)},
            [-1.0, -0.5, -0.25],
        ),
    ],
    ids=["number", "no-flip", "schedule"],
)
def test_scale_by_learning_rate(kwargs, factors):
    tx = gt.scale_by_learning_rate(**kwargs)
    state = tx.init(PARAMS)
    for factor in factors:
        out, state = tx.update(GRADS, state)
        chex.assert_trees_all_close(out, {n: factor * g for n, g in GRADS.items()})


def test_add_decayed_weights_with_mask_and_without_params():
    tx = gt.add_decayed_weights(0.5, mask={"w": True, "b": False})
    out, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(out["w"], GRADS["w"] + 0.5 * PARAMS["w"])
    chex.assert_trees_all_close(out["b"], GRADS["b"])
    plain = gt.add_decayed_weights(0.5)
    with pytest.raises(ValueError, match="params"):
        plain.update(GRADS, plain.init(PARAMS))
