"""NumPy references and small builders shared by the model tests.

BatchNorm's reference is a NumPy transcription of the textbook's
H' = (H - mu) / sqrt(delta + sigma^2) (biased minibatch variance).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import gradtransforms as gt
from gradtransforms.models import CNN
from tests.nnx_training import cross_entropy, train_losses

EPS = 1e-5  # Flax's default BatchNorm epsilon (delta)


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def numpy_batch_norm(h, gamma, beta, mean=None, var=None, axes=(0,)):
    """gamma * (H - mu) / sqrt(delta + sigma^2) + beta, per feature (last axis)."""
    if mean is None:
        mean = h.mean(axis=axes)
        var = ((h - mean) ** 2).mean(axis=axes)
    return gamma * (h - mean) / np.sqrt(EPS + var) + beta


def flat_he_normal(key, shape, dtype=jnp.float32):
    """He normal, N(0, 2/m), drawn as a flat vector and reshaped.

    For the CNN tests only: on CPU, jax's (partitionable) threefry takes
    seconds to compile a 4-D draw such as a conv kernel's, and these tests
    are not about the default initialiser (see tests/test_init.py for that).
    """
    fan_in = math.prod(shape[:-1])
    w = jax.random.normal(key, (math.prod(shape),), dtype) * math.sqrt(2.0 / fan_in)
    return w.reshape(shape)


def small_cnn(channels=(4, 8)):
    return CNN(10, channels=channels, kernel_init=flat_he_normal, rngs=nnx.Rngs(0))


def subset(digits, n, flatten):
    """The first `n` training digits, as (x, y) arrays (x flattened or images)."""
    x = digits.x_train[:n]
    return jnp.asarray(x.reshape(n, -1) if flatten else x), jnp.asarray(
        digits.y_train[:n]
    )


def assert_trains_under_nnx_optimizer(model, x, y):
    """25 steps of `gt.adam` through `nnx.Optimizer` cut the loss on (x, y)."""
    losses = train_losses(model, gt.adam(1e-2), x, y)
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    assert float(cross_entropy(model(x), y)) < losses[0]


def kernel_and_bias(layer) -> tuple[np.ndarray, np.ndarray]:
    """A layer's kernel and bias as float64 NumPy arrays (it must have a bias)."""
    assert layer.bias is not None
    return f64(layer.kernel[...]), f64(layer.bias[...])
