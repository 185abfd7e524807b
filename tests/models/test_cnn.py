"""models/cnn.py: shapes, per-channel BatchNorm against NumPy, training."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tests.models.reference import (
    assert_trains_under_nnx_optimizer,
    f64,
    numpy_batch_norm,
    small_cnn,
    subset,
)


@pytest.mark.parametrize("side", [8, 28])
def test_cnn_shapes(side):
    cnn = small_cnn()
    logits = nnx.jit(lambda m, x: m(x))(cnn, jnp.ones((2, side, side, 1)))
    chex.assert_shape(logits, (2, 10))


def test_cnn_batch_norm_is_per_channel_over_batch_and_space():
    model = small_cnn(channels=(4,))
    model.train()
    x = jnp.asarray(np.random.default_rng(7).uniform(size=(16, 8, 8, 1)), jnp.float32)
    h = model.convs[0](x)
    out = f64(model.norms[0](h))
    expected = numpy_batch_norm(f64(h), 1.0, 0.0, axes=(0, 1, 2))
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("kind", ["cnn"])
def test_trains_under_nnx_optimizer(digits, kind):
    x, y = subset(digits, 128, flatten=False)
    assert_trains_under_nnx_optimizer(small_cnn(), x, y)
