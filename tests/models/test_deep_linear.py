"""models/deep_linear.py: shapes, and the activations against NumPy matmuls."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gradtransforms.models import DeepLinear
from tests.models.reference import f64


def test_deep_linear_shapes():
    net = DeepLinear(3, 16, rngs=nnx.Rngs(0))
    hs = net.activations(jnp.ones((8, 16)))
    assert len(hs) == 3
    chex.assert_shape(hs, (8, 16))


def test_deep_linear_activations_match_numpy():
    net = DeepLinear(3, 16, rngs=nnx.Rngs(0))
    x = np.random.default_rng(2).normal(size=(8, 16))
    hs, h = net.activations(jnp.asarray(x, jnp.float32)), x
    for layer, got in zip(net.layers, hs, strict=True):
        h = h @ f64(layer.kernel[...])
        np.testing.assert_allclose(got, h, atol=1e-4)
    chex.assert_trees_all_close(net(jnp.asarray(x, jnp.float32)), hs[-1])
