"""models/residual.py: ResidualMLP (§8.7.5) against NumPy, scaling, training.

The reference is a NumPy transcription of the docstring's formula:
h_0 = x W_0 + b_0, h_k = h_{k-1} + alpha (f(N_k(h_{k-1})) W_k + b_k),
y = h_K W_{K+1} + b_{K+1}, with N_k = BatchNorm (batch statistics) or the
identity.
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
from gradtransforms.models import ResidualMLP, load_digits
from tests.models.reference import EPS, f64
from tests.nnx_training import cross_entropy, train_losses


def numpy_forward(model: ResidualMLP, x: np.ndarray) -> np.ndarray:
    """The docstring's formula, layer by layer, in float64."""
    h = x @ f64(model.input_layer.kernel[...]) + f64(model.input_layer.bias[...])
    for k, block in enumerate(model.blocks):
        z = h
        if model.batch_norm:
            norm = model.norms[k]
            mean, var = z.mean(axis=0), z.var(axis=0)
            z = f64(norm.scale[...]) * (z - mean) / np.sqrt(EPS + var)
            z = z + f64(norm.bias[...])
        branch = np.maximum(z, 0.0) @ f64(block.kernel[...])
        if block.bias is not None:
            branch = branch + f64(block.bias[...])
        h = h + model.residual_scale * branch
    return h @ f64(model.output_layer.kernel[...]) + f64(model.output_layer.bias[...])


def randomise_biases(model: ResidualMLP, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in [model.input_layer, *model.blocks, model.output_layer]:
        if layer.bias is not None:
            shape = layer.bias[...].shape
            layer.bias[...] = jnp.asarray(rng.normal(0, 0.1, shape), jnp.float32)


# --- shapes and wiring ----------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True])
def test_shapes_and_layers(batch_norm):
    model = ResidualMLP(16, 8, 4, 3, batch_norm=batch_norm, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    chex.assert_shape(model(x), (5, 4))
    chex.assert_shape(model(x[None]), (1, 5, 4))  # any leading axes
    assert len(model.blocks) == 3
    assert len(model.norms) == (3 if batch_norm else 0)
    chex.assert_shape(
        [model.input_layer.kernel[...], model.blocks[2].kernel[...]], [(16, 8), (8, 8)]
    )
    chex.assert_shape(model.output_layer.kernel[...], (8, 4))
    # Blocks keep their bias: BatchNorm comes before the Linear layer.
    assert model.blocks[0].bias is not None
    assert model.residual_scale == pytest.approx(1 / math.sqrt(3))


def test_zero_block_is_the_identity():
    model = ResidualMLP(16, 8, 4, 3, residual_scale=1.0, rngs=nnx.Rngs(0))
    randomise_biases(model)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(6, 16)), jnp.float32)
    skip_only = model.output_layer(model.input_layer(x))
    assert np.abs(f64(model(x)) - f64(skip_only)).max() > 1e-2  # blocks add
    for block in model.blocks:
        block.kernel[...] = jnp.zeros_like(block.kernel[...])
        block.bias[...] = jnp.zeros_like(block.bias[...])
    chex.assert_trees_all_equal(model(x), skip_only)
    # One non-zero block adds exactly its branch to the skip path.
    model.blocks[1].bias[...] = jnp.full((8,), 0.5, jnp.float32)
    h = model.input_layer(x)
    expected = model.output_layer(h + 0.5)
    chex.assert_trees_all_close(model(x), expected, atol=1e-5)


@pytest.mark.parametrize(
    "batch_norm, residual_scale", [(False, None), (False, 0.5), (True, None)]
)
def test_forward_matches_numpy(batch_norm, residual_scale):
    model = ResidualMLP(
        12,
        10,
        3,
        4,
        batch_norm=batch_norm,
        residual_scale=residual_scale,
        rngs=nnx.Rngs(2),
    )
    randomise_biases(model, seed=3)
    if batch_norm:
        rng = np.random.default_rng(4)
        for norm in model.norms:
            norm.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, 10), jnp.float32)
            norm.bias[...] = jnp.asarray(rng.normal(0, 0.3, 10), jnp.float32)
        model.train()
    x = np.random.default_rng(5).normal(size=(32, 12))
    got = model(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(got, numpy_forward(model, x), rtol=1e-4, atol=1e-4)


def test_default_scale_keeps_deep_activations_bounded():
    """Mean square of h_K over h_0: (1 + 1/K)^K < e on average with alpha = 1/sqrt(K);
    it doubles per block with alpha = 1."""
    x = jnp.asarray(np.random.default_rng(6).normal(size=(256, 32)), jnp.float32)

    def growth(model):
        h0 = model.input_layer(x)
        h = h0
        for block in model.blocks:
            h = h + model.residual_scale * block(jax.nn.relu(h))
        return float(jnp.mean(h**2) / jnp.mean(h0**2))

    # Width 32: each network fluctuates around the expected (1 + 1/32)^32 = 2.68.
    ratios = [growth(ResidualMLP(32, 32, 10, 32, rngs=nnx.Rngs(s))) for s in range(6)]
    assert 1.5 < np.mean(ratios) < 4.0
    exploding = ResidualMLP(32, 32, 10, 32, residual_scale=1.0, rngs=nnx.Rngs(0))
    assert growth(exploding) > 1e6


def test_dtype_and_param_dtype():
    model = ResidualMLP(
        8, 8, 2, 2, dtype=jnp.float32, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
    )
    assert model.blocks[0].kernel[...].dtype == jnp.bfloat16
    assert model(jnp.ones((3, 8), jnp.float32)).dtype == jnp.float32
    model = ResidualMLP(8, 8, 2, 2, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert model(jnp.ones((3, 8), jnp.bfloat16)).dtype == jnp.bfloat16


# --- training --------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_subset():
    data = load_digits(flatten=True)
    return jnp.asarray(data.x_train[:128]), jnp.asarray(data.y_train[:128])


@pytest.mark.parametrize(
    "batch_norm, tx",
    [(False, gt.sgd(0.05, momentum=0.9)), (True, gt.adam(1e-2))],
    ids=["sgd", "adam-batchnorm"],
)
def test_trains_under_gradtransforms(digits_subset, batch_norm, tx):
    x, y = digits_subset
    model = ResidualMLP(64, 16, 10, 4, batch_norm=batch_norm, rngs=nnx.Rngs(0))
    losses = train_losses(model, tx, x, y)
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    assert float(cross_entropy(model(x), y)) < losses[0]
    chex.assert_tree_all_finite(nnx.state(model, nnx.Param))


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"in_features": 0}, ValueError, "in_features"),
        ({"width": 2.5}, TypeError, "width"),
        ({"out_features": -1}, ValueError, "out_features"),
        ({"num_blocks": 0}, ValueError, "num_blocks"),
        ({"num_blocks": True}, TypeError, "num_blocks"),
        ({"residual_scale": 0.0}, ValueError, "residual_scale"),
        ({"residual_scale": "1"}, TypeError, "residual_scale"),
        ({"kernel_init": None}, TypeError, "kernel_init"),
        ({"bias_init": 0.0}, TypeError, "bias_init"),
        ({"activation": "relu"}, TypeError, "activation"),
        ({"batch_norm_momentum": 1.0}, ValueError, "batch_norm_momentum"),
        ({"batch_norm_epsilon": 0.0}, ValueError, "batch_norm_epsilon"),
    ],
)
def test_argument_errors_name_the_argument(kwargs, error, name):
    args = {"in_features": 4, "width": 4, "out_features": 2, "num_blocks": 1}
    args.update(kwargs)
    with pytest.raises(error, match=name):
        ResidualMLP(**args, rngs=nnx.Rngs(0))
