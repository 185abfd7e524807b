"""models/linear.py: the linear classifier is x @ W + b (NumPy), on flattened inputs."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
import gradtransforms.init as gi
from gradtransforms.models import LinearClassifier, fit
from tests.models.reference import f64, kernel_and_bias, subset


def _model_with_random_bias(in_features=64, num_classes=10, **kwargs):
    model = LinearClassifier(in_features, num_classes, rngs=nnx.Rngs(0), **kwargs)
    bias = model.linear.bias
    assert bias is not None
    bias[...] = jnp.asarray(
        np.random.default_rng(0).normal(size=num_classes), bias.dtype
    )
    return model


class ForwardTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)  # pyright: ignore[reportCallIssue]
    def test_is_x_times_w_plus_b(self):
        model = _model_with_random_bias()
        graphdef, state = nnx.split(model)
        forward = self.variant(lambda state, x: nnx.merge(graphdef, state)(x))
        x = np.random.default_rng(1).normal(size=(5, 64))
        w, b = kernel_and_bias(model.linear)
        expected = x @ w + b
        logits = forward(state, jnp.asarray(x, jnp.float32))
        chex.assert_shape(logits, (5, 10))
        np.testing.assert_allclose(logits, expected, atol=1e-4)
        # Images (5, 8, 8, 1) are flattened in row-major order first.
        images = jnp.asarray(x.reshape(5, 8, 8, 1), jnp.float32)
        np.testing.assert_allclose(forward(state, images), expected, atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "out"),
    [
        ((5, 64), (5, 10)),
        ((5, 8, 8, 1), (5, 10)),
        ((64,), (10,)),
        ((1, 64), (1, 10)),  # a batch of one keeps its axis
        ((1, 8, 8), (1, 10)),
        ((2, 3, 64), (2, 3, 10)),
        ((0, 64), (0, 10)),
    ],
)
def test_the_fewest_trailing_axes_are_flattened(shape, out):
    model = LinearClassifier(64, 10, rngs=nnx.Rngs(0))
    chex.assert_shape(model(jnp.ones(shape)), out)


def test_defaults_and_fan_in_bias():
    model = LinearClassifier(100, 3, rngs=nnx.Rngs(0))
    chex.assert_shape(model.linear.kernel[...], (100, 3))
    np.testing.assert_array_equal(kernel_and_bias(model.linear)[1], np.zeros(3))
    # LeCun normal: variance 1 / m.
    wide = LinearClassifier(400, 300, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(f64(wide.linear.kernel[...]).var(), 1 / 400, rtol=0.02)
    torch_like = LinearClassifier(
        100,
        3,
        kernel_init=gi.fan_in_uniform(),
        bias_init=gi.fan_in_bias_uniform(),
        rngs=nnx.Rngs(0),
    )
    for p in kernel_and_bias(torch_like.linear):
        assert np.abs(p).max() <= np.float32(0.1)  # 1 / sqrt(100)


def test_low_precision_parameters():
    model = _model_with_random_bias(param_dtype=jnp.bfloat16)
    assert model.linear.kernel[...].dtype == jnp.bfloat16
    assert model.linear.bias is not None and model.linear.bias.dtype == jnp.bfloat16
    x = np.random.default_rng(2).normal(size=(4, 64))
    out = model(jnp.asarray(x, jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    w, b = kernel_and_bias(model.linear)
    np.testing.assert_allclose(f64(out), x @ w + b, atol=0.05)
    mixed = _model_with_random_bias(param_dtype=jnp.bfloat16, dtype=jnp.float32)
    assert mixed(jnp.asarray(x, jnp.float32)).dtype == jnp.float32


def test_softmax_regression_trains_with_fit(digits):
    x, y = subset(digits, 256, flatten=False)  # images, flattened by the model
    model = LinearClassifier(64, 10, rngs=nnx.Rngs(0))
    trained, losses = fit(
        model, x, y, optimizer=gt.sgd(0.5), steps=60, batch_size=64, key=0
    )
    assert float(losses[-10:].mean()) < 0.5 * float(losses[:5].mean())
    chex.assert_shape(trained(x), (256, 10))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, "in_features"),
        ({"in_features": 2.0}, TypeError, "in_features"),
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"num_classes": True}, TypeError, "num_classes"),
        ({"kernel_init": None}, TypeError, "kernel_init"),
        ({"bias_init": 0.0}, TypeError, "bias_init"),
        ({"dtype": jnp.int32}, TypeError, "dtype"),
        ({"param_dtype": None}, TypeError, "param_dtype"),
    ],
)
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        LinearClassifier(**{"in_features": 64, **kwargs}, rngs=nnx.Rngs(0))


def test_input_error_names_the_shape():
    model = LinearClassifier(64, 10, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"in_features=64; got shape \(5, 63\)"):
        model(jnp.ones((5, 63)))
