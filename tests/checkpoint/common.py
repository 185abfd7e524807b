"""The checkpoint tests' shared pieces: a problem, a stepper, bitwise equality."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import gradtransforms as gt
from gradtransforms.models import MLP


def loss(params):
    w, b, h = params["w"], params["b"], params["h"].astype(jnp.float32)
    return (
        jnp.sum((w - jnp.arange(3.0)) ** 2 * jnp.array([1.0, 3.0, 10.0]))
        + (1 - b) ** 2
        + 100 * (b - jnp.sum(w) ** 2 / 9) ** 2
        + jnp.sum(h**2)
    )


def make_params(h_dtype=jnp.bfloat16):
    return {
        "w": jnp.array([0.3, -1.2, 2.0]),
        "b": jnp.array(0.5),
        "h": jnp.linspace(-1.0, 1.0, 4).astype(h_dtype),
    }


def stepper(tx, second_order_call=False):
    # First-order steps run eagerly: bit-identical all the same, and the
    # primitives compiled once serve every optimizer (no compile per case).
    maybe_jit = jax.jit if second_order_call else (lambda f: f)

    @maybe_jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        extra = (
            {"value": value, "grad": grads, "value_fn": loss}
            if second_order_call
            else {}
        )
        updates, state = tx.update(grads, state, params, **extra)
        return gt.apply_updates(params, updates), state

    return step


def as_bits(x):
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return x


def bitwise_equal(a, b):
    """Same tree (container types included) and every leaf equal bit for bit."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for (path, x), y in zip(
        jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True
    ):
        if not hasattr(x, "dtype"):  # a Python value
            assert type(x) is type(y) and x == y, jax.tree_util.keystr(path)
            continue
        assert str(x.dtype) == str(y.dtype), jax.tree_util.keystr(path)
        x, y = np.asarray(as_bits(x)), np.asarray(as_bits(y))
        assert (x.dtype, x.shape) == (y.dtype, y.shape), jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), jax.tree_util.keystr(path)


def nnx_values(obj):
    """An NNX object's variables as a flat `{path: array}` dict, to compare."""
    state = obj if isinstance(obj, nnx.State) else nnx.state(obj)
    return {
        "/".join(map(str, path)): as_bits(v.get_value())
        for path, v in nnx.to_flat_state(state)
    }


def bn_mlp(seed=0, tx=None):
    """A BatchNorm MLP and its `nnx.Optimizer` (Adam unless `tx`)."""
    model = MLP((3, 8, 2), batch_norm=True, rngs=nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, tx or gt.adam(1e-2), wrt=nnx.Param)
    return model, optimizer


@nnx.jit
def nnx_train_step(model, optimizer, x):
    def mse(m):
        return jnp.mean((m(x) - 1.0) ** 2)

    grads = nnx.grad(mse)(model)
    optimizer.update(model, grads)
