"""Packed parameters: round trips, gradients, and optimizers unchanged by packing."""

from __future__ import annotations

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt


def _params():
    keys = jax.random.split(jax.random.key(0), 5)
    return {
        "dense": {"kernel": jax.random.normal(keys[0], (3, 4)), "bias": jnp.zeros(4)},
        "scale": jax.random.normal(keys[1], ()),  # a scalar leaf
        "half": jax.random.normal(keys[2], (5,), jnp.bfloat16),
        "empty": jnp.zeros((0, 2)),
        "frozen": None,
        "conv": [jax.random.normal(keys[3], (2, 2, 1, 3))],
    }


def _loss(params):
    dense = params["dense"]
    return (
        jnp.sum(jnp.sin(dense["kernel"]) * dense["kernel"])
        + jnp.sum(dense["bias"] ** 2)
        + params["scale"] ** 2
        + jnp.sum(jnp.square(params["half"].astype(jnp.float32)))
        + jnp.sum(jnp.cos(params["conv"][0]))
    )


def test_pack_unpack_round_trip_is_exact():
    params = _params()
    layout = gt.packed_layout(params)
    packed = layout.pack(params)
    assert set(packed) == {"float32", "bfloat16"}
    assert packed["float32"].shape == (12 + 4 + 1 + 0 + 12,)
    assert packed["bfloat16"].dtype == jnp.bfloat16
    back = layout.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(
            np.asarray(a, np.float32), np.asarray(b, np.float32)
        )


def test_packed_buffer_holds_leaves_in_flattening_order():
    params = {"b": jnp.array([3.0, 4.0]), "a": jnp.array([[1.0], [2.0]])}
    packed = gt.packed_layout(params).pack(params)
    np.testing.assert_array_equal(packed["float32"], [1.0, 2.0, 3.0, 4.0])


def test_gradient_through_unpack_is_the_packed_gradient():
    params = _params()
    layout = gt.packed_layout(params)
    grads = jax.grad(_loss)(params)
    packed_grads = jax.jit(jax.grad(lambda p: _loss(layout.unpack(p))))(
        layout.pack(params)
    )
    chex.assert_trees_all_close(layout.unpack(packed_grads), grads, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gt.sgd(0.1),
        lambda: gt.sgd(0.1, momentum=0.9, nesterov=True),
        lambda: gt.adagrad(0.1),
        lambda: gt.rmsprop(0.01, centered=True),
        lambda: gt.adam(0.01),
        lambda: gt.adamw(0.01, weight_decay=0.1),
        lambda: gt.chain(gt.clip_by_global_norm(0.5), gt.adam(0.01)),
        lambda: gt.apply_if_finite(gt.adam(0.01), 3),
    ],
    ids=["sgd", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "clip_adam", "safe"],
)
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
def test_optimizer_on_packed_params_matches_the_tree(make, jit):
    """The plain path is the reference: packing must not change any number."""
    params = _params()
    layout = gt.packed_layout(params)
    tx = make()

    def tree_step(p, s):
        u, s = tx.update(jax.grad(_loss)(p), s, p)
        return gt.apply_updates(p, u), s

    def packed_step(p, s):
        g = jax.grad(lambda q: _loss(layout.unpack(q)))(p)
        u, s = tx.update(g, s, p)
        return gt.apply_updates(p, u), s

    if jit:
        tree_step, packed_step = jax.jit(tree_step), jax.jit(packed_step)
    p, s = params, tx.init(params)
    q = layout.pack(params)
    r = tx.init(q)
    for _ in range(4):
        p, s = tree_step(p, s)
        q, r = packed_step(q, r)
    got = layout.unpack(q)
    for path, a in jax.tree_util.tree_leaves_with_path(got):
        b = _leaf(p, path)
        assert a.dtype == b.dtype, path
        tol = 1e-2 if a.dtype == jnp.bfloat16 else 1e-5
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol
        )


def _leaf(tree, path):
    for key in path:
        tree = tree[getattr(key, "key", getattr(key, "idx", None))]
    return tree


def test_elementwise_update_agrees_to_the_last_bits_when_packed():
    """Same arithmetic per element; XLA may vectorise the loops differently
    (a different length), which moves results by at most an ulp or two."""
    params = {f"w{i}": jnp.linspace(-1.0, 1.0, 7 + i) for i in range(5)}
    grads = jax.tree.map(jnp.cos, params)
    layout = gt.packed_layout(params)
    tx = gt.adam(0.01)
    u, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    v, _ = jax.jit(tx.update)(layout.pack(grads), tx.init(layout.pack(params)))
    for a, b in zip(jax.tree.leaves(layout.unpack(v)), jax.tree.leaves(u), strict=True):
        np.testing.assert_array_max_ulp(a, b, maxulp=2)


def test_labels_make_groups_that_masks_and_partitions_can_address():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "bn_scale": jnp.ones(3)}
    labels = {"w": "decay", "b": "no_decay", "bn_scale": "no_decay"}
    layout = gt.packed_layout(params, labels=labels)
    packed = layout.pack(params)
    assert jax.tree.map(jnp.shape, packed) == {
        "decay": {"float32": (6,)},
        "no_decay": {"float32": (6,)},
    }
    # Weight decay only on the "decay" group, as on the tree with a leaf mask.
    tx_packed = gt.add_decayed_weights(
        0.5, mask={"decay": {"float32": True}, "no_decay": {"float32": False}}
    )
    tx_tree = gt.add_decayed_weights(
        0.5, mask={k: v == "decay" for k, v in labels.items()}
    )
    zeros = jax.tree.map(jnp.zeros_like, packed)
    u_packed, _ = tx_packed.update(zeros, tx_packed.init(packed), packed)
    u_tree, _ = tx_tree.update(
        jax.tree.map(jnp.zeros_like, params), tx_tree.init(params), params
    )
    chex.assert_trees_all_equal(layout.unpack(u_packed), u_tree)
    # A callable gives the same labels.
    same = gt.packed_layout(params, labels=lambda p: labels)
    chex.assert_trees_all_equal(same.pack(params), packed)


def test_partition_by_packed_group():
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    layout = gt.packed_layout(params, labels={"w": "train", "b": "freeze"})
    packed = layout.pack(params)
    tx = gt.partition(
        {"train": gt.sgd(1.0), "freeze": gt.set_to_zero()},
        {"train": {"float32": "train"}, "freeze": {"float32": "freeze"}},
    )
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, packed), tx.init(packed), packed)
    got = layout.unpack(gt.apply_updates(packed, updates))
    np.testing.assert_array_equal(got["w"], np.zeros(3))
    np.testing.assert_array_equal(got["b"], np.ones(2))


def test_empty_tree_and_all_none():
    for tree in ({}, {"a": None}, []):
        layout = gt.packed_layout(tree)
        assert layout.pack(tree) == {}
        assert jax.tree.structure(layout.unpack({})) == jax.tree.structure(tree)


def test_single_leaf_is_a_reshape():
    params = {"w": jnp.arange(6.0).reshape(2, 3)}
    layout = gt.packed_layout(params)
    packed = layout.pack(params)
    np.testing.assert_array_equal(packed["float32"], np.arange(6.0))
    np.testing.assert_array_equal(layout.unpack(packed)["w"], params["w"])


def test_unpack_keeps_the_buffer_dtype():
    """Moments kept in float32 for bfloat16 parameters unpack as float32."""
    params = {"w": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(2, jnp.bfloat16)}
    layout = gt.packed_layout(params)
    tx = gt.adam(0.1, mu_dtype=jnp.float32)
    packed = layout.pack(params)
    state = tx.init(packed)
    _, state = tx.update(jax.tree.map(jnp.ones_like, packed), state, packed)
    mu = layout.unpack(state[0].mu)
    assert mu["w"].dtype == jnp.float32 and mu["w"].shape == (2, 2)
    np.testing.assert_allclose(mu["b"], 0.1)


def test_abstract_and_repr():
    layout = gt.packed_layout({"a": jnp.ones(3), "b": jnp.ones((), jnp.bfloat16)})
    assert layout.abstract() == {
        "bfloat16": jax.ShapeDtypeStruct((1,), jnp.bfloat16),
        "float32": jax.ShapeDtypeStruct((3,), jnp.float32),
    }
    assert "2 leaves" in repr(layout)
    # Abstract parameters are enough to build a layout.
    abstract = jax.eval_shape(lambda: {"a": jnp.ones(3)})
    assert gt.packed_layout(abstract).abstract()["float32"].shape == (3,)


def test_the_packed_step_compiles_independently_of_the_leaf_count():
    """The optimizer's program is the same size for 10 and for 1000 leaves."""

    def num_ops(num_leaves):
        params = {f"w{i:04d}": jnp.ones(4) for i in range(num_leaves)}
        layout = gt.packed_layout(params)
        packed = layout.pack(params)
        tx = gt.adam(1e-3)
        return len(jax.make_jaxpr(tx.update)(packed, tx.init(packed), packed).eqns)

    assert num_ops(10) == num_ops(1000)


def test_integer_leaf_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"\['step'\].*int32"):
        gt.packed_layout({"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)})


def test_replicated_leaf_is_accepted():
    mesh = jax.make_mesh((1,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    leaf = jax.device_put(jnp.ones(4), jax.sharding.NamedSharding(mesh, jax.P("x")))
    # One device: the sharding is fully replicated, so packing is allowed.
    assert gt.packed_layout({"w": leaf}).abstract()["float32"].shape == (4,)


_SHARDED = """
import jax, jax.numpy as jnp, gradtransforms as gt
mesh = jax.make_mesh((2,), ("x",))
sharding = jax.sharding.NamedSharding(mesh, jax.P("x"))
params = {"w": jax.device_put(jnp.ones(4), sharding), "b": jnp.ones(2)}
try:
    gt.packed_layout(params)
except ValueError as e:
    print("REJECTED", e)
"""


def test_leaf_split_across_devices_is_rejected_by_name():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "REJECTED ['w'] is split across devices" in proc.stdout


def test_labels_must_match_and_be_strings():
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match="labels"):
        gt.packed_layout(params, labels={"a": "x"})
    with pytest.raises(TypeError, match=r"\['b'\]"):
        gt.packed_layout(params, labels={"a": "x", "b": 3})


def test_pack_rejects_a_different_tree_by_path():
    layout = gt.packed_layout({"a": jnp.ones(2), "b": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        layout.pack({"a": jnp.ones(2), "b": jnp.ones(4)})
    with pytest.raises(ValueError, match=r"\['b'\].*float32"):
        layout.pack({"a": jnp.ones(2), "b": jnp.ones(3, jnp.bfloat16)})
    with pytest.raises(ValueError, match="structure"):
        layout.pack({"a": jnp.ones(2)})


def test_unpack_rejects_wrong_buffers():
    layout = gt.packed_layout({"a": jnp.ones(2), "b": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"'float32' must have shape \(5,\)"):
        layout.unpack({"float32": jnp.ones(4)})
    with pytest.raises(ValueError, match="structure"):
        layout.unpack({"float64": jnp.ones(5)})


def test_optax_runs_on_packed_params_too():
    """Packed buffers are an ordinary pytree: any optax transformation applies."""
    params = _params()
    layout = gt.packed_layout(params)
    packed = layout.pack(params)
    tx = optax.sgd(0.1)
    g = jax.grad(lambda p: _loss(layout.unpack(p)))(packed)
    with jax.numpy_dtype_promotion("standard"):
        u, _ = tx.update(g, tx.init(packed), packed)
    chex.assert_trees_all_close(
        layout.unpack(u),
        jax.tree.map(lambda x: -0.1 * x, jax.grad(_loss)(params)),
        rtol=1e-2,
    )
