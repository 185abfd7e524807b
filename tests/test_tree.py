"""tree.py: widening to the accumulation dtype, the state finder, where, casts.

References are NumPy computations in float32 (the accumulation dtype of a
bfloat16 leaf) rounded once to bfloat16, and closed forms; never the code
under test.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from gradtransforms import tree
from gradtransforms.averaging import AverageState


def _bf16(x) -> np.ndarray:
    """Round a float32 NumPy array once to bfloat16 (returned as float32)."""
    rounded = jnp.asarray(np.asarray(x, np.float32)).astype(jnp.bfloat16)
    return np.asarray(rounded, np.float32)


def test_map_widened_computes_a_bfloat16_leaf_in_float32():
    x = jnp.ones(300, jnp.bfloat16)
    y = jnp.full(300, 0.5, jnp.bfloat16)
    seen = []

    def fn(a, b):
        seen.append((a.dtype, b.dtype))
        return jnp.cumsum(a) + b

    out = tree.map_widened(fn, {"x": x}, {"x": y})["x"]
    assert seen == [(jnp.float32, jnp.float32)]
    assert out.dtype == jnp.bfloat16
    xf, yf = np.asarray(x, np.float32), np.asarray(y, np.float32)
    np.testing.assert_array_equal(
        np.asarray(out, np.float32), _bf16(np.cumsum(xf) + yf)
    )
    # In bfloat16 arithmetic the running sum would stall at 256 (256 + 1
    # rounds back to 256); widened, it reaches 300 and is rounded once.
    assert float(out[-1]) == 300.0


def test_map_widened_rounds_to_out_like_and_passes_none_through():
    params = {"w": jnp.ones(2, jnp.bfloat16), "skip": None}
    updates = {"w": jnp.full(2, 0.1, jnp.float32), "skip": None}
    out = tree.map_widened(lambda u, p: u + p, updates, params, out_like=params)
    assert out["skip"] is None and out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(out["w"], np.float32), _bf16(np.float32(0.1) + np.float32(1.0))
    )


def test_accumulation_dtypes():
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
        assert tree.accumulation_dtype(dtype) == jnp.float32
    assert tree.accumulation_dtype(np.float64) == np.float64


def test_find_states_looks_through_chain_and_inject_hyperparams():
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    tx = gt.inject_hyperparams(
        lambda learning_rate: gt.chain(
            gt.clip_by_global_norm(1.0), gt.sgd(learning_rate), gt.polyak_average()
        )
    )(learning_rate=0.1)
    state = tx.init(params)
    (found,) = tree.find_states(state, AverageState)
    assert isinstance(found, AverageState)
    chex.assert_trees_all_equal_structs(found.average, params)
    assert found is state.inner_state[2]
    assert tree.find_states(gt.adam().init(params), AverageState) == []
    both = tree.find_states(state, (AverageState, gt.TraceState))
    assert [type(s) for s in both] == [AverageState]


def test_where_picks_a_whole_tree_by_a_scalar_condition():
    a = {"w": jnp.array([1.0, 2.0]), "b": None}
    b = {"w": jnp.array([-1.0, -2.0]), "b": None}
    chex.assert_trees_all_equal(tree.where(jnp.asarray(True), a, b), a)
    chex.assert_trees_all_equal(tree.where(jnp.asarray(False), a, b), b)
    picked = jax.jit(tree.where)(jnp.asarray(False), a, b)
    np.testing.assert_array_equal(picked["w"], [-1.0, -2.0])


def test_cast_like_takes_the_other_trees_dtypes(x64):
    values = {"h": jnp.array([1.5, 2.25]), "d": jnp.array([0.1]), "i": jnp.ones(2)}
    like = {
        "h": jnp.zeros(2, jnp.bfloat16),
        "d": jnp.zeros(1, jnp.float64),
        "i": jnp.zeros(2, jnp.int32),
    }
    out = tree.cast_like(values, like)
    assert {k: v.dtype for k, v in out.items()} == {
        "h": jnp.bfloat16,
        "d": jnp.float64,
        "i": jnp.int32,
    }
    np.testing.assert_array_equal(np.asarray(out["h"], np.float32), [1.5, 2.25])
    assert out["i"].tolist() == [1, 1]


def test_global_norm_and_vdot_of_bfloat16_leaves_accumulate_in_float32():
    x = np.random.default_rng(0).normal(size=(300,)).astype(np.float32)
    leaves = {"a": jnp.asarray(x[:200], jnp.bfloat16), "b": jnp.asarray(x[200:])}
    wide = np.concatenate(
        [np.asarray(leaves["a"], np.float64), np.asarray(leaves["b"], np.float64)]
    )
    norm = tree.global_norm(leaves)
    assert norm.dtype == jnp.float32
    np.testing.assert_allclose(float(norm), np.sqrt(wide @ wide), rtol=1e-6)
    np.testing.assert_allclose(float(tree.vdot(leaves, leaves)), wide @ wide, rtol=1e-6)
    assert float(tree.global_norm({})) == 0.0


def test_one_minus_power_is_accurate_near_one():
    # 1 - 0.999 ** 1 = 1e-3 exactly; float32's literal 1 - 0.999**t is not.
    for t, exact in [(1, 1e-3), (2, 1 - 0.999**2), (1000, 1 - 0.999**1000)]:
        value = tree.one_minus_power(0.999, jnp.asarray(t), jnp.float32)
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(float(value), exact, rtol=2e-7)


def test_first_difference_names_the_path():
    a = {"net": [jnp.ones(1), jnp.ones(1)], "b": jnp.ones(1)}
    assert tree.first_difference(a, a) is None
    assert tree.first_difference(a, {**a, "net": [jnp.ones(1), None]}) == ("['net'][1]")
    with pytest.raises(ValueError, match=r"first difference at \['b'\]"):
        tree.assert_same_structure(a, {"net": a["net"]}, "a", "b")
