"""Interop: ours inside optax.chain, optax inside ours, flax.nnx.Optimizer."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax
from flax import nnx

import gradtransforms as gt

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5])}
GRADS = {"w": jnp.array([0.3, -0.6, 0.9])}


def _step(tx):
    updates, _ = jax.jit(tx.update)(GRADS, tx.init(PARAMS), PARAMS)
    return updates


def test_our_transforms_are_optax_transformations():
    for tx in (gt.adam(1e-3), gt.trace(0.9), gt.clip_by_global_norm(1.0)):
        assert isinstance(tx, optax.GradientTransformation)


def test_ours_inside_optax_chain():
    mixed = optax.chain(
        gt.clip_by_global_norm(0.5), optax.scale_by_adam(), gt.scale(-0.1)
    )
    pure = optax.chain(
        optax.clip_by_global_norm(0.5), optax.scale_by_adam(), optax.scale(-0.1)
    )
    with jax.numpy_dtype_promotion("standard"):  # optax's own code is not strict
        chex.assert_trees_all_close(_step(mixed), _step(pure), rtol=1e-5)


def test_optax_inside_our_chain():
    mixed = gt.chain(optax.clip(0.5), gt.scale_by_adam(), optax.scale(-0.1))
    expected = jax.tree.map(lambda g: -0.1 * jnp.sign(jnp.clip(g, -0.5, 0.5)), GRADS)
    chex.assert_trees_all_close(_step(mixed), expected, rtol=1e-6)


class _TinyModel(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x):
        return self.linear(x)


def test_flax_nnx_optimizer_trains_with_our_adam():
    x = jax.random.normal(jax.random.key(0), (64, 3))
    y = x @ jnp.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = _TinyModel(rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, gt.adam(5e-2), wrt=nnx.Param)

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    first = float(loss_fn(model))
    for _ in range(300):
        train_step(model, optimizer)
    assert float(loss_fn(model)) < 1e-3 * first
