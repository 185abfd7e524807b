"""tree/structure.py: the state finder, where, and the first difference of two trees."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from gradtransforms import tree
from gradtransforms.averaging import AverageState


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


def test_first_difference_names_the_path():
    a = {"net": [jnp.ones(1), jnp.ones(1)], "b": jnp.ones(1)}
    assert tree.first_difference(a, a) is None
    assert tree.first_difference(a, {**a, "net": [jnp.ones(1), None]}) == ("['net'][1]")
    with pytest.raises(ValueError, match=r"first difference at \['b'\]"):
        tree.assert_same_structure(a, {"net": a["net"]}, "a", "b")


def test_assert_same_shapes_names_the_path_and_both_leaves():
    a = {"w": jnp.ones((2, 3)), "b": jnp.ones(3, jnp.bfloat16), "n": None}
    tree.assert_same_shapes(a, {**a, "b": jnp.ones(3)})  # dtypes may differ
    tree.assert_same_shapes(a, {**a, "n": jnp.ones(7)})  # None in `tree`: any
    tree.assert_same_shapes(a, {**a, "w": None})  # None in `other`: allowed
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), a)
    tree.assert_same_shapes(abstract, a)
    message = r"^p and g differ at \['w'\]: \(2, 3\) float32 in p, \(3, 2\) "
    with pytest.raises(ValueError, match=message):
        tree.assert_same_shapes(a, {**a, "w": jnp.ones((3, 2))}, ("p", "g"))
    with pytest.raises(ValueError, match=r"first difference at \['b'\]"):
        tree.assert_same_shapes(a, {"w": a["w"], "n": None})


def test_assert_state_matches_asks_about_init():
    with pytest.raises(ValueError, match=r"optimizer state and params .*tx\.init"):
        tree.assert_state_matches({"w": jnp.ones(2)}, {"w": jnp.ones(3)}, "params")


def test_assert_updates_match_refuses_broadcasts_complex_and_missing():
    params = {"w": jnp.ones(3), "frozen": None}
    tree.assert_updates_match({"w": jnp.ones(3), "frozen": None}, params)
    tree.assert_updates_match({"w": jnp.ones(3), "frozen": jnp.ones(9)}, params)
    bad = {
        r"\(\) float32 in updates": jnp.float32(1.0),
        r"\(1,\) float32 in updates": jnp.ones(1),
        "imaginary part": jnp.ones(3, jnp.complex64),
        "None in updates": None,
    }
    for message, update in bad.items():
        with pytest.raises(ValueError, match=message):
            tree.assert_updates_match({"w": update, "frozen": None}, params)
