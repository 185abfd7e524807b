"""Every optimizer of the registry on every kind of leaf optax accepts.

* abstract parameters (`jax.ShapeDtypeStruct`), directly and under
  `jax.eval_shape`: `init` gives the shapes and dtypes of the concrete state;
* Python numbers as leaves: the same updates as 0-d float32 arrays;
* `None` leaves: passed through as `None`;
* complex leaves: the imaginary part of the update is the one of a real run
  on the imaginary parts (for the optimizers whose maths is linear in `g`), and
  always moves;
* integer and bool leaves: a `TypeError` naming the leaf's path.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests.registry import IDS, REGISTRY

registry = pytest.mark.parametrize("entry", REGISTRY, ids=IDS)

PARAMS = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
GRADS = {"w": jnp.array([0.3, -0.1, 0.2]), "b": jnp.array(-1.0)}


def _shapes(tree):
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)


@registry
def test_init_on_abstract_parameters(entry):
    tx = entry.build()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), PARAMS)
    expected = _shapes(tx.init(PARAMS))
    chex.assert_trees_all_equal(_shapes(tx.init(abstract)), expected)
    chex.assert_trees_all_equal(_shapes(jax.eval_shape(tx.init, abstract)), expected)


@registry
def test_python_number_leaves_update_like_arrays(entry):
    tx = entry.build()
    numbers = {"w": 1.5, "b": -0.5}
    grads = {"w": 0.25, "b": 2.0}
    arrays = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), numbers)
    arrays_g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
    got, _ = tx.update(grads, tx.init(numbers), numbers)
    expected, _ = tx.update(arrays_g, tx.init(arrays), arrays)
    chex.assert_trees_all_close(got, expected, rtol=1e-6)


@registry
def test_none_leaves_pass_through(entry):
    tx = entry.build()
    params = {**PARAMS, "frozen": None}
    grads = {**GRADS, "frozen": None}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["frozen"] is None
    chex.assert_tree_all_finite(updates["w"])


@registry
def test_integer_leaves_are_refused_by_path(entry):
    tx = entry.build()
    params = {**PARAMS, "step": jnp.zeros((), jnp.int32)}
    grads = {**GRADS, "step": jnp.zeros((), jnp.int32)}
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        tx.update(grads, tx.init(params), params)


@registry
def test_complex_leaves_move_in_both_parts(entry):
    tx = entry.build()
    params = jax.tree.map(lambda x: x.astype(jnp.complex64) * (1 + 0.5j), PARAMS)
    grads = jax.tree.map(lambda g: g.astype(jnp.complex64) * (1 - 2j), GRADS)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = gt.apply_updates(params, updates)
    for leaf in jax.tree.leaves(updates):
        assert leaf.dtype == jnp.complex64
        chex.assert_tree_all_finite(leaf)
        assert np.all(np.abs(np.asarray(leaf).imag) > 0)


LINEAR = ["sgd", "momentum", "nesterov", "sgd_linear_decay"]


@pytest.mark.parametrize("name", LINEAR)
def test_linear_optimizers_act_on_each_part_alone(name):
    """For SGD and momentum the update is linear in g: real and imaginary
    parts evolve as two independent real runs (a closed-form reference)."""
    entry = next(e for e in REGISTRY if e.name == name)
    params = jnp.array([1.0 + 2.0j, -0.5 + 0.25j], jnp.complex64)
    grads = jnp.array([0.3 - 0.7j, 0.2 + 0.1j], jnp.complex64)

    def run(p, g, steps=4):
        tx = entry.build()
        state, out = tx.init(p), []
        for _ in range(steps):
            u, state = tx.update(g, state, p)
            p = gt.apply_updates(p, u)
            out.append(u)
        return jnp.stack(out)

    got = run(params, grads)
    chex.assert_trees_all_close(got.real, run(params.real, grads.real), rtol=1e-6)
    chex.assert_trees_all_close(got.imag, run(params.imag, grads.imag), rtol=1e-6)
