"""Every kind of tree `save` accepts comes back from `restore`, bit for bit.

Plain pytrees (JAX and NumPy arrays, NumPy scalars, Python values, PRNG keys
typed and raw) and Flax NNX objects (a BatchNorm MLP with its statistics, a
module holding `nnx.Rngs`, an `nnx.Optimizer`, whole and filtered
`nnx.State`s), in either position; and trees that do not match are refused
with the first differing path.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from gradtransforms.models import MLP
from tests.checkpoint.common import (
    bitwise_equal,
    bn_mlp,
    make_params,
    nnx_train_step,
    nnx_values,
)


class Dropper(nnx.Module):
    """A module whose state holds PRNG keys and counts (`nnx.Rngs`)."""

    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(2, 3, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)


def _trained_mlp(seed):
    model, optimizer = bn_mlp(seed)
    x = jax.random.normal(jax.random.key(seed), (6, 3))
    for _ in range(2):
        nnx_train_step(model, optimizer, x)  # moves the BatchNorm statistics
    return model, optimizer


# kind -> seed -> an object; seed 0 is saved, seed 1 (other values) restored into.
KINDS = {
    "jax_arrays": lambda s: (
        make_params() if s == 0 else jax.tree.map(jnp.zeros_like, make_params())
    ),
    "adam_state": lambda s: (
        gt.adam(0.1).init(make_params())
        if s
        else jax.tree.map(lambda x: x + 1, gt.adam(0.1).init(make_params()))
    ),
    "numpy": lambda s: {
        "a": np.arange(3) * s,
        "b": np.float64(s + 0.5),
        "c": np.ones(2, np.float16) * s,
    },
    "python_values": lambda s: {
        "f": 0.1 + s,
        "i": 7 + s,
        "b": bool(s),
        "s": f"v{s}",
        "n": None,
        "l": [1.5 * s, ()],
    },
    "typed_keys": lambda s: {
        "k": jax.random.key(s),
        "rbg": jax.random.key(s, impl="rbg"),
        "ks": jax.random.split(jax.random.key(s + 5), 3),
    },
    "raw_keys": lambda s: {
        "k": jax.random.PRNGKey(s),
        "ks": jax.random.split(jax.random.PRNGKey(s + 5), 3),
    },
    "int_dict_keys": lambda s: {0: jnp.full(2, s), 1: {2: jnp.full(1, s)}},
    "nnx_module_batchnorm": lambda s: _trained_mlp(s)[0],
    "nnx_module_rngs": lambda s: Dropper(nnx.Rngs(s, dropout=s + 1)),
    "nnx_optimizer": lambda s: _trained_mlp(s)[1],
    "nnx_state": lambda s: nnx.state(_trained_mlp(s)[0]),
    "nnx_state_batch_stats": lambda s: nnx.state(_trained_mlp(s)[0], nnx.BatchStat),
    "nnx_module_in_a_dict": lambda s: {"model": _trained_mlp(s)[0]},
}


def _values(x):
    return nnx_values(x) if isinstance(x, nnx.Pytree | nnx.State) else x


@pytest.mark.parametrize("position", ["params", "opt_state"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_saved_is_restored(tmp_path, kind, position):
    saved, target = KINDS[kind](0), KINDS[kind](1)
    expected = _values(saved)
    trees = {"params": {}, "opt_state": {}, position: saved}
    ckpt.save(tmp_path / "c", trees["params"], trees["opt_state"], step=5)
    targets = {"params": {}, "opt_state": {}, position: target}
    out = ckpt.restore(tmp_path / "c", targets["params"], targets["opt_state"])
    restored = out[0] if position == "params" else out[1]
    assert out[2] == 5
    if isinstance(target, nnx.Pytree):  # updated in place
        assert restored is target
    bitwise_equal(_values(restored), expected)


def test_a_restored_nnx_model_and_optimizer_train_on_bit_identically(tmp_path):
    model, optimizer = _trained_mlp(0)
    ckpt.save(tmp_path / "c", model, optimizer, step=optimizer.step[...])
    model2, optimizer2 = bn_mlp(seed=1)
    _, _, step = ckpt.restore(tmp_path / "c", model2, optimizer2)
    assert step == 2 and int(optimizer2.step[...]) == 2
    x = jnp.linspace(-1.0, 1.0, 18).reshape(6, 3)
    for _ in range(2):
        nnx_train_step(model, optimizer, x)
        nnx_train_step(model2, optimizer2, x)
    bitwise_equal(nnx_values(model2), nnx_values(model))
    bitwise_equal(nnx_values(optimizer2), nnx_values(optimizer))


def test_abstract_nnx_targets(tmp_path):
    model, optimizer = _trained_mlp(0)
    ckpt.save(tmp_path / "c", model, optimizer, step=2)
    abstract = nnx.eval_shape(lambda: bn_mlp(seed=1))
    restored, restored_opt, _ = ckpt.restore(tmp_path / "c", *abstract)
    bitwise_equal(nnx_values(restored), nnx_values(model))
    bitwise_equal(nnx_values(restored_opt), nnx_values(optimizer))


def test_a_leaf_that_cannot_be_restored_is_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match=re.escape("params['f']: a function")):
        ckpt.save(tmp_path / "c", {"f": lambda: 0}, {}, step=0)
    assert not (tmp_path / "c").exists()


def test_describe_names_key_types():
    assert ckpt.describe({"k": jax.random.key(0)}) == [
        "<root>: dict",
        "['k']: key<fry>[]",
    ]
    model, _ = bn_mlp()
    lines = ckpt.describe(model)
    assert lines[0] == "<root>: nnx"
    assert "/norms/0/mean: BatchStat float32[8]" in lines


def _saved_adam(tmp_path):
    params = make_params()
    path = ckpt.save(tmp_path / "adam", params, gt.adam(0.1).init(params), step=1)
    return path, params


@pytest.mark.parametrize(
    ("other", "where", "saved_says"),
    [
        (lambda: gt.sgd(0.1, momentum=0.9), "opt_state[0]", "ScaleByAdamState"),
        (lambda: gt.rmsprop(0.1, centered=True), "opt_state[0]", "ScaleByAdamState"),
        (lambda: gt.adamw(0.1), "opt_state[1]", "EmptyState"),
        (
            lambda: gt.adam(0.1, mu_dtype=jnp.bfloat16),
            "opt_state[0].mu['b']",
            "float32[]",
        ),
        (lambda: gt.apply_if_finite(gt.adam(0.1)), "opt_state", "tuple"),
    ],
    ids=["adam_into_momentum", "same_fields_other_type", "extra_link", "dtype", "wrap"],
)
def test_restoring_into_another_state_names_the_first_difference(
    tmp_path, other, where, saved_says
):
    path, params = _saved_adam(tmp_path)
    with pytest.raises(ckpt.CheckpointMismatchError) as info:
        ckpt.restore(path, params, other().init(params))
    message = str(info.value)
    assert f"first difference at {where}:" in message, message
    assert saved_says in message and path in message, message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: {**p, "w": jnp.zeros(4)}, "params['w']"),
        (lambda p: {**p, "w": p["w"].astype(jnp.bfloat16)}, "params['w']"),
        (lambda p: {**p, "extra": jnp.zeros(1)}, "params['extra']"),
        (lambda p: {k: v for k, v in p.items() if k != "b"}, "params['b']"),
        (lambda p: {**p, "w": jax.random.key(0)}, "params['w']"),
    ],
    ids=["shape", "dtype", "extra_leaf", "missing_leaf", "key_for_array"],
)
def test_restoring_other_parameters_names_the_first_difference(tmp_path, change, where):
    path, params = _saved_adam(tmp_path)
    other = change(params)
    with pytest.raises(ckpt.CheckpointMismatchError, match=rf"at {re.escape(where)}"):
        ckpt.restore(path, other, gt.adam(0.1).init(make_params()))


def test_restoring_another_nnx_model_names_the_variable(tmp_path):
    model, optimizer = bn_mlp()
    ckpt.save(tmp_path / "c", model, optimizer, step=0)
    other = MLP((3, 9, 2), batch_norm=True, rngs=nnx.Rngs(0))
    with pytest.raises(
        ckpt.CheckpointMismatchError, match="at params/linears/0/kernel"
    ):
        ckpt.restore(tmp_path / "c", other, optimizer)
    with pytest.raises(ckpt.CheckpointMismatchError, match="at params: "):
        ckpt.restore(tmp_path / "c", nnx.to_pure_dict(nnx.state(model)), optimizer)
