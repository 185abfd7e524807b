"""models/mlp.py: shapes, the forward pass and BatchNorm against NumPy, training.

BatchNorm references are NumPy transcriptions of the textbook's
H' = (H - mu) / sqrt(delta + sigma^2) (biased minibatch variance) and of
Flax's running averages r <- rho r + (1 - rho) * batch statistic.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
from gradtransforms.models import MLP
from tests.models.reference import (
    EPS,
    assert_trains_under_nnx_optimizer,
    f64,
    numpy_batch_norm,
    subset,
)
from tests.nnx_training import cross_entropy


def test_mlp_shapes():
    x = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    chex.assert_shape(MLP((16, 32, 8), rngs=nnx.Rngs(0))(x), (8, 8))
    chex.assert_shape(MLP((16, 8), batch_norm=False, rngs=nnx.Rngs(0))(x), (8, 8))


def test_mlp_without_batch_norm_matches_numpy():
    model = MLP((16, 32, 8), batch_norm=False, rngs=nnx.Rngs(0))
    assert model.linears[0].bias is not None
    model.linears[0].bias[...] = jnp.linspace(-1.0, 1.0, 32)
    x = np.random.default_rng(1).normal(size=(8, 16))
    w1, b1 = f64(model.linears[0].kernel[...]), f64(model.linears[0].bias[...])
    w2, b2 = f64(model.linears[1].kernel[...]), f64(model.linears[1].bias[...])
    expected = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    np.testing.assert_allclose(model(jnp.asarray(x, jnp.float32)), expected, atol=1e-4)


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


# --- training --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp"])
def test_trains_under_nnx_optimizer(digits, kind):
    model = MLP((64, 32, 10), rngs=nnx.Rngs(0))
    x, y = subset(digits, 128, flatten=True)
    assert_trains_under_nnx_optimizer(model, x, y)


def test_trains_under_pure_functional_step(digits):
    model = MLP((64, 32, 10), rngs=nnx.Rngs(1))
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = gt.sgd(0.1, momentum=0.9)
    x, y = subset(digits, 128, flatten=True)

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
