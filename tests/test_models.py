"""Tests for models/: shapes, BatchNorm against NumPy, training with gradtransforms.

BatchNorm references are NumPy transcriptions of the textbook's
H' = (H - mu) / sqrt(delta + sigma^2) (biased minibatch variance) and of
Flax's running averages r <- rho r + (1 - rho) * batch statistic.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
from gradtransforms.models import CNN, MLP, DeepLinear, load_digits
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


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def flat_he_normal(key, shape, dtype=jnp.float32):
    """He normal, N(0, 2/m), drawn as a flat vector and reshaped.

    For the CNN tests only: on CPU, jax's (partitionable) threefry takes
    seconds to compile a 4-D draw such as a conv kernel's, and the tests here
    are not about the default initialiser (see test_init.py for that).
    """
    fan_in = math.prod(shape[:-1])
    w = jax.random.normal(key, (math.prod(shape),), dtype) * math.sqrt(2.0 / fan_in)
    return w.reshape(shape)


def small_cnn(channels=(4, 8)):
    return CNN(10, channels=channels, kernel_init=flat_he_normal, rngs=nnx.Rngs(0))


# --- shapes and wiring ----------------------------------------------------------


def test_mlp_shapes():
    x = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    chex.assert_shape(MLP((16, 32, 8), rngs=nnx.Rngs(0))(x), (8, 8))
    chex.assert_shape(MLP((16, 8), batch_norm=False, rngs=nnx.Rngs(0))(x), (8, 8))


@pytest.mark.parametrize("side", [8, 28])
def test_cnn_shapes(side):
    cnn = small_cnn()
    logits = nnx.jit(lambda m, x: m(x))(cnn, jnp.ones((2, side, side, 1)))
    chex.assert_shape(logits, (2, 10))


def test_deep_linear_shapes():
    net = DeepLinear(3, 16, rngs=nnx.Rngs(0))
    hs = net.activations(jnp.ones((8, 16)))
    assert len(hs) == 3
    chex.assert_shape(hs, (8, 16))


def test_mlp_without_batch_norm_matches_numpy():
    model = MLP((16, 32, 8), batch_norm=False, rngs=nnx.Rngs(0))
    assert model.linears[0].bias is not None
    model.linears[0].bias[...] = jnp.linspace(-1.0, 1.0, 32)
    x = np.random.default_rng(1).normal(size=(8, 16))
    w1, b1 = f64(model.linears[0].kernel[...]), f64(model.linears[0].bias[...])
    w2, b2 = f64(model.linears[1].kernel[...]), f64(model.linears[1].bias[...])
    expected = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    np.testing.assert_allclose(model(jnp.asarray(x, jnp.float32)), expected, atol=1e-4)


def test_deep_linear_activations_match_numpy():
    net = DeepLinear(3, 16, rngs=nnx.Rngs(0))
    x = np.random.default_rng(2).normal(size=(8, 16))
    hs, h = net.activations(jnp.asarray(x, jnp.float32)), x
    for layer, got in zip(net.layers, hs, strict=True):
        h = h @ f64(layer.kernel[...])
        np.testing.assert_allclose(got, h, atol=1e-4)
    chex.assert_trees_all_close(net(jnp.asarray(x, jnp.float32)), hs[-1])


def test_dtype_and_param_dtype():
    # bfloat16 storage, float32 compute. (Flax's BatchNorm cannot compute in
    # bfloat16 under strict dtype promotion: its statistics promote to float32.)
    model = MLP(
        (16, 32, 8), dtype=jnp.float32, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
    )
    assert model.linears[0].kernel[...].dtype == jnp.bfloat16
    assert model.norms[0].scale[...].dtype == jnp.bfloat16
    assert model(jnp.ones((4, 16), jnp.float32)).dtype == jnp.float32


# --- BatchNorm -------------------------------------------------------------------


def _mlp_with_random_affine(momentum=0.9):
    model = MLP((16, 32, 8), batch_norm_momentum=momentum, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(3)
    gamma, beta = rng.uniform(0.5, 2.0, 32), rng.normal(size=32)
    model.norms[0].scale[...] = jnp.asarray(gamma, jnp.float32)
    model.norms[0].bias[...] = jnp.asarray(beta, jnp.float32)
    return model, gamma, beta


def test_batch_norm_train_mode_normalises_each_feature():
    model = MLP((16, 32, 8), rngs=nnx.Rngs(0))  # gamma = 1, beta = 0
    model.train()
    x = np.random.default_rng(4).normal(2.0, 3.0, size=(64, 16))
    h = model.linears[0](jnp.asarray(x, jnp.float32))
    out = f64(model.norms[0](h))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    # Variance sigma^2 / (sigma^2 + delta): 1 up to delta.
    sigma2 = f64(h).var(axis=0)
    np.testing.assert_allclose(out.var(axis=0), sigma2 / (sigma2 + EPS), rtol=1e-4)
    np.testing.assert_allclose(out.var(axis=0), 1.0, atol=1e-3)


def test_batch_norm_train_mode_matches_numpy_forward():
    model, gamma, beta = _mlp_with_random_affine()
    model.train()
    x = np.random.default_rng(5).normal(1.0, 2.0, size=(64, 16))
    w1 = f64(model.linears[0].kernel[...])
    w2, b2 = f64(model.linears[1].kernel[...]), f64(model.linears[1].bias[...])
    h = x @ w1  # hidden Linear layers have no bias under BatchNorm
    expected = np.maximum(numpy_batch_norm(h, gamma, beta), 0.0) @ w2 + b2
    np.testing.assert_allclose(model(jnp.asarray(x, jnp.float32)), expected, atol=2e-4)


def test_batch_norm_eval_mode_uses_running_statistics():
    rho = 0.9
    model, gamma, beta = _mlp_with_random_affine(momentum=rho)
    w1 = f64(model.linears[0].kernel[...])
    w2, b2 = f64(model.linears[1].kernel[...]), f64(model.linears[1].bias[...])
    rng = np.random.default_rng(6)
    mean, var = np.zeros(32), np.ones(32)  # Flax's initial running statistics
    model.train()
    for t in range(5):
        x = rng.normal(t, 1.0 + t, size=(32, 16))
        model(jnp.asarray(x, jnp.float32))
        h = x @ w1
        mean = rho * mean + (1 - rho) * h.mean(axis=0)
        var = rho * var + (1 - rho) * h.var(axis=0)  # biased variance
    chex.assert_trees_all_close(
        (f64(model.norms[0].mean[...]), f64(model.norms[0].var[...])),
        (mean, var),
        rtol=1e-4,
        atol=1e-4,
    )
    model.eval()
    assert model.norms[0].use_running_average
    x = rng.normal(size=(8, 16))
    expected = np.maximum(numpy_batch_norm(x @ w1, gamma, beta, mean, var), 0.0)
    expected = expected @ w2 + b2
    np.testing.assert_allclose(
        model(jnp.asarray(x, jnp.float32)), expected, rtol=1e-3, atol=1e-3
    )
    # Evaluation leaves the running statistics alone.
    chex.assert_trees_all_close(f64(model.norms[0].mean[...]), mean, atol=1e-4)


def test_cnn_batch_norm_is_per_channel_over_batch_and_space():
    model = small_cnn(channels=(4,))
    model.train()
    x = jnp.asarray(np.random.default_rng(7).uniform(size=(16, 8, 8, 1)), jnp.float32)
    h = model.convs[0](x)
    out = f64(model.norms[0](h))
    expected = numpy_batch_norm(f64(h), 1.0, 0.0, axes=(0, 1, 2))
    np.testing.assert_allclose(out, expected, atol=1e-4)


# --- training --------------------------------------------------------------------


def _subset(digits, n, flatten):
    x = digits.x_train[:n]
    return jnp.asarray(x.reshape(n, -1) if flatten else x), jnp.asarray(
        digits.y_train[:n]
    )


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trains_under_nnx_optimizer(digits, kind):
    if kind == "mlp":
        model = MLP((64, 32, 10), rngs=nnx.Rngs(0))
    else:
        model = small_cnn()
    x, y = _subset(digits, 128, flatten=kind == "mlp")
    losses = train_losses(model, gt.adam(1e-2), x, y)
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    assert float(cross_entropy(model(x), y)) < losses[0]


def test_trains_under_pure_functional_step(digits):
    model = MLP((64, 32, 10), rngs=nnx.Rngs(1))
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = gt.sgd(0.1, momentum=0.9)
    x, y = _subset(digits, 128, flatten=True)

    def loss_fn(params, rest):
        model = nnx.merge(graphdef, params, rest, copy=True)
        loss = cross_entropy(model(x), y)
        return loss, nnx.split(model, nnx.Param, ...)[2]

    @jax.jit
    def step(params, rest, opt_state):
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        return gt.apply_updates(params, updates), rest, opt_state, loss

    opt_state, losses, rest0 = tx.init(params), [], rest
    for _ in range(25):
        params, rest, opt_state, loss = step(params, rest, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    chex.assert_tree_all_finite(params)
    # The BatchNorm running mean moved from its initial zeros.
    assert np.abs(f64(rest["norms"][0]["mean"][...])).max() > 0
    assert np.abs(f64(rest0["norms"][0]["mean"][...])).max() == 0
    nnx.update(model, params, rest)
    model.eval()
    assert float(cross_entropy(model(x), y)) < losses[0]


# --- validation ------------------------------------------------------------------


def test_argument_errors():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match="features"):
        MLP((16,), rngs=rngs)
    with pytest.raises(ValueError, match="features"):
        MLP((16, 0, 4), rngs=rngs)
    with pytest.raises(TypeError, match="features"):
        MLP(16, rngs=rngs)
    with pytest.raises(TypeError, match="activation"):
        MLP((16, 4), activation="relu", rngs=rngs)
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        MLP((16, 4), batch_norm_momentum=1.0, rngs=rngs)
    with pytest.raises(ValueError, match="batch_norm_epsilon"):
        MLP((16, 4), batch_norm_epsilon=0.0, rngs=rngs)
    with pytest.raises(ValueError, match="channels"):
        CNN(10, channels=(), rngs=rngs)
    with pytest.raises(ValueError, match="depth"):
        DeepLinear(0, 4, rngs=rngs)
    with pytest.raises(TypeError, match="kernel_init"):
        DeepLinear(2, 4, kernel_init=None, rngs=rngs)
    with pytest.raises(ValueError, match="NHWC"):
        small_cnn(channels=(4,))(jnp.ones((2, 8, 8)))
