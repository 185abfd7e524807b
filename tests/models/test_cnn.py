"""models/cnn.py: shapes, per-channel BatchNorm against NumPy, training; 1-D
sequences (the MNIST-1D CNN) against PyTorch's formula, NumPy and SciPy."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import signal

import gradtransforms.init as gi
from gradtransforms.models import CNN
from tests.models.reference import (
    assert_trains_under_nnx_optimizer,
    f64,
    flat_he_normal,
    kernel_and_bias,
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


# --- 1-D sequences: the MNIST-1D CNN ------------------------------------------------
#
# References: PyTorch's Conv1d output length floor((L + 2p - k) / s) + 1, and a
# NumPy transcription of its definition, y[t, o] = b[o] + sum_{j, c}
# x_pad[t s + j, c] w[j, c, o] (cross-correlation, zero padding p at both ends),
# itself checked against SciPy's correlate.

# Greydanus's ConvBase (mnist1d repository, notebooks/models.py): Conv1d(1, 25,
# 5, stride=2, padding=1), then two Conv1d(25, 25, 3, stride=2, padding=1),
# ReLU after each, flatten, Linear(125, 10) for sequences of length 40.
MNIST1D = dict(
    spatial_dims=1,
    channels=(25, 25, 25),
    kernel_size=(5, 3, 3),
    strides=2,
    padding=1,
    batch_norm=False,
    max_pool=False,
    head="flatten",
    input_size=40,
)


def mnist1d_cnn(**overrides):
    """The MNIST-1D CNN with PyTorch's default initialisation."""
    return CNN(
        10,
        **{**MNIST1D, **overrides},
        kernel_init=gi.fan_in_uniform(),
        bias_init=gi.fan_in_bias_uniform(),
        rngs=nnx.Rngs(0),
    )


def torch_conv_length(length, k, s, p):
    return math.floor((length + 2 * p - k) / s) + 1


def numpy_conv1d(x, w, b, stride, pad):
    """PyTorch's Conv1d on channels-last x (N, L, C_in), w (k, C_in, C_out)."""
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    out_len = (x.shape[1] + 2 * pad - k) // stride + 1
    y = np.empty((x.shape[0], out_len, w.shape[2]))
    for t in range(out_len):
        window = xp[:, t * stride : t * stride + k, :]  # (N, k, C_in)
        y[:, t, :] = np.einsum("njc,jco->no", window, w) + b
    return y


def numpy_mnist1d_forward(model, x):
    h = f64(x)[..., None]
    for conv in model.convs:
        w, b = kernel_and_bias(conv)
        h = np.maximum(numpy_conv1d(h, w, b, stride=2, pad=1), 0.0)
    h = h.reshape(h.shape[0], -1)  # channels-last flattening
    w, b = kernel_and_bias(model.head)
    return h @ w + b


@pytest.mark.parametrize(
    ("kernel_size", "lengths", "head_in"),
    [((5, 3, 3), [19, 10, 5], 125), (5, [19, 9, 4], 100)],
    ids=["ConvBase", "kernel5"],
)
def test_mnist1d_shapes_follow_pytorchs_formula(kernel_size, lengths, head_in):
    model = mnist1d_cnn(kernel_size=kernel_size)
    ks = (kernel_size,) * 3 if isinstance(kernel_size, int) else kernel_size
    length, expected = 40, []
    for k in ks:
        length = torch_conv_length(length, k, 2, 1)
        expected.append(length)
    assert expected == lengths
    assert model.block_shapes((40,)) == [(n,) for n in lengths]
    h = jnp.ones((3, 40, 1))
    for conv, n in zip(model.convs, lengths, strict=True):
        h = conv(h)
        chex.assert_shape(h, (3, n, 25))
    assert (model.head.in_features, model.head.out_features) == (head_in, 10)
    chex.assert_shape(model(jnp.ones((3, 40))), (3, 10))


@pytest.mark.parametrize(
    ("length", "k", "s", "p"),
    [
        (40, 5, 2, 1),
        (41, 5, 2, 1),
        (7, 3, 1, 0),
        (10, 4, 3, 2),
        (5, 5, 1, 0),
        (6, 2, 4, 3),
    ],
)
@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_int_padding_lengths_follow_pytorchs_formula(length, k, s, p, spatial_dims):
    n = torch_conv_length(length, k, s, p)
    model = CNN(
        3,
        channels=(4,),
        kernel_size=k,
        strides=s,
        padding=p,
        spatial_dims=spatial_dims,
        batch_norm=False,
        max_pool=False,
        kernel_init=flat_he_normal,
        rngs=nnx.Rngs(0),
    )
    spatial = (length,) * spatial_dims
    assert model.block_shapes(spatial) == [(n,) * spatial_dims]
    out = model.convs[0](jnp.ones((2, *spatial, 1)))
    chex.assert_shape(out, (2, *(n,) * spatial_dims, 4))
    chex.assert_shape(model(jnp.ones((2, *spatial, 1))), (2, 3))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize(("length", "k", "s"), [(40, 5, 2), (9, 3, 3), (10, 4, 1)])
def test_same_and_valid_lengths(padding, length, k, s):
    # SAME: ceil(L / s); VALID: floor((L - k) / s) + 1 (no padding).
    n = math.ceil(length / s) if padding == "SAME" else (length - k) // s + 1
    model = CNN(
        3,
        channels=(4,),
        kernel_size=k,
        strides=s,
        padding=padding,
        spatial_dims=1,
        max_pool=False,
        rngs=nnx.Rngs(0),
    )
    assert model.block_shapes((length,)) == [(n,)]
    chex.assert_shape(model.convs[0](jnp.ones((2, length, 1))), (2, n, 4))


def test_1d_max_pool_halves_while_at_least_2():
    model = CNN(  # SAME padding, stride 1
        3, channels=(4, 8), spatial_dims=1, kernel_init=flat_he_normal, rngs=nnx.Rngs(0)
    )
    assert model.block_shapes((40,)) == [(20,), (10,)]
    assert model.block_shapes((3,)) == [(1,), (1,)]
    for length in (40, 3):
        chex.assert_shape(model(jnp.ones((2, length))), (2, 3))


@pytest.mark.parametrize(("stride", "pad", "k"), [(2, 1, 5), (1, 0, 3), (3, 2, 4)])
def test_one_conv1d_layer_matches_numpy_and_scipy(stride, pad, k):
    conv = CNN(
        3,
        in_features=3,
        channels=(6,),
        kernel_size=k,
        strides=stride,
        padding=pad,
        spatial_dims=1,
        batch_norm=False,
        bias_init=gi.fan_in_bias_uniform(),
        rngs=nnx.Rngs(0),
    ).convs[0]
    x = np.random.default_rng(8).normal(size=(2, 23, 3))
    w, b = kernel_and_bias(conv)
    expected = numpy_conv1d(x, w, b, stride, pad)
    np.testing.assert_allclose(conv(jnp.asarray(x, jnp.float32)), expected, atol=1e-5)
    # The NumPy reference against SciPy, channel by channel.
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    for n in range(2):
        for o in range(6):
            by_scipy = b[o] + sum(
                signal.correlate(xp[n, :, c], w[:, c, o], mode="valid")[::stride]
                for c in range(3)
            )
            np.testing.assert_allclose(expected[n, :, o], by_scipy, atol=1e-12)


class MNIST1DForwardTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)  # pyright: ignore[reportCallIssue]
    def test_forward_matches_numpy(self):
        model = mnist1d_cnn()
        graphdef, state = nnx.split(model)
        forward = self.variant(lambda state, x: nnx.merge(graphdef, state)(x))
        x = np.random.default_rng(9).normal(size=(4, 40))
        expected = numpy_mnist1d_forward(model, x)
        logits = forward(state, jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(logits, expected, atol=1e-4)
        # (batch, L) and (batch, L, 1) are the same sequences.
        chex.assert_trees_all_close(
            logits, forward(state, jnp.asarray(x[..., None], jnp.float32)), atol=1e-6
        )


def test_mnist1d_low_precision_parameters():
    model = mnist1d_cnn(param_dtype=jnp.bfloat16)
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert params and all(p.dtype == jnp.bfloat16 for p in params)
    x = np.random.default_rng(10).normal(size=(4, 40))
    out = model(jnp.asarray(x, jnp.bfloat16))  # computes in bfloat16
    assert out.dtype == jnp.bfloat16
    scale = np.abs(numpy_mnist1d_forward(model, x)).max()
    np.testing.assert_allclose(
        f64(out), numpy_mnist1d_forward(model, x), atol=0.05 * scale
    )
    mixed = mnist1d_cnn(param_dtype=jnp.bfloat16, dtype=jnp.float32)
    assert mixed(jnp.asarray(x, jnp.float32)).dtype == jnp.float32


def test_1d_cnn_trains_on_digits_as_sequences(digits):
    x, y = subset(digits, 128, flatten=True)  # 64-long sequences
    model = mnist1d_cnn(channels=(8, 8), kernel_size=(5, 3), input_size=64)
    assert_trains_under_nnx_optimizer(model, x, y)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"spatial_dims": 0}, ValueError, "spatial_dims"),
        ({"spatial_dims": 3}, ValueError, "spatial_dims"),
        ({"spatial_dims": 1.0}, TypeError, "spatial_dims"),
        ({"spatial_dims": True}, TypeError, "spatial_dims"),
        ({"strides": 0}, ValueError, "strides"),
        ({"strides": 1.5}, TypeError, "strides"),
        ({"strides": "2"}, TypeError, "strides"),
        ({"strides": (1, 2)}, ValueError, "strides .*one int per block"),
        ({"strides": (0,)}, ValueError, "strides"),
        ({"kernel_size": (3, 3)}, ValueError, "kernel_size .*one int per block"),
        ({"kernel_size": ()}, ValueError, "kernel_size"),
        ({"padding": -1}, ValueError, "padding"),
        ({"padding": "same"}, ValueError, "padding"),
        ({"padding": "CAUSAL"}, ValueError, "padding"),
        ({"padding": 1.5}, TypeError, "padding"),
        ({"padding": None}, TypeError, "padding"),
        ({"max_pool": 1}, TypeError, "max_pool"),
        ({"head": "max"}, ValueError, "head"),
        ({"head": None}, ValueError, "head"),
        ({"input_size": 0}, ValueError, "input_size"),
        ({"input_size": 2.5}, TypeError, "input_size"),
        ({"input_size": "40"}, TypeError, "input_size"),
        ({"input_size": (8, 8, 8)}, ValueError, "input_size .*spatial_dims=2"),
        ({"bias_init": 0.5}, TypeError, "bias_init"),
        ({"head": "flatten"}, ValueError, "head='flatten' needs input_size"),
        (
            {"padding": "VALID", "kernel_size": 5, "input_size": 4},
            ValueError,
            r"spatial shape \(4, 4\) are too small",
        ),
    ],
)
def test_new_argument_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        CNN(10, channels=(4,), kernel_init=flat_he_normal, rngs=nnx.Rngs(0), **kwargs)


def test_input_errors_name_the_shapes():
    model = mnist1d_cnn()
    with pytest.raises(ValueError, match=r"spatial shape \(40,\).*Linear\(125, 10\)"):
        model(jnp.ones((2, 41)))
    with pytest.raises(ValueError, match=r"1 input channels.*\(2, 40, 3\)"):
        model(jnp.ones((2, 40, 3)))
    with pytest.raises(ValueError, match=r"sequences .*\(2, 40, 1, 1\)"):
        model(jnp.ones((2, 40, 1, 1)))
    two_channels = mnist1d_cnn(in_features=2)
    with pytest.raises(ValueError, match=r"in_features=1; got shape \(2, 40\)"):
        two_channels(jnp.ones((2, 40)))
    short = CNN(
        3,
        channels=(4,),
        kernel_size=5,
        padding="VALID",
        spatial_dims=1,
        rngs=nnx.Rngs(0),
    )
    with pytest.raises(ValueError, match=r"\(3,\) are too small.*block 0"):
        short(jnp.ones((2, 3)))
