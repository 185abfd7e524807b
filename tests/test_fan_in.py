"""gradtransforms/fan_in.py: fan-in uniform kernels and biases, PyTorch's default.

References are typed in from their definitions: U(-a, a) has variance
a^2 / 3; PyTorch's nn.Linear / nn.Conv*d draw the kernel with
kaiming_uniform_(a=sqrt(5)), bound gain * sqrt(3 / m) with
gain = sqrt(2 / (1 + a^2)), and the bias from U(-1/sqrt(m), 1/sqrt(m)), m the
fan-in (in_features times the kernel's size); SciPy's Kolmogorov-Smirnov test
checks the distribution. The models' layers are checked with fan-ins written
out by hand from their architectures.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

import gradtransforms.init as gi
from gradtransforms import fan_in as fan_in_module
from gradtransforms.fan_in import FanInBiasUniform, resolve
from gradtransforms.models import CNN, MLP, LinearClassifier, ResidualMLP
from tests.models.reference import kernel_and_bias
from tests.test_init import KEY, M, N, sample


def torch_default_bound(fan_in: int) -> float:
    """PyTorch's kaiming_uniform_(a=sqrt(5)) bound, gain * sqrt(3 / fan_in)."""
    a = math.sqrt(5.0)
    return math.sqrt(2.0 / (1.0 + a * a)) * math.sqrt(3.0 / fan_in)


# --- fan-in uniform kernels -----------------------------------------------------


@pytest.mark.parametrize(("shape", "fan_in"), [((M, N), M), ((3, 3, 16, 64), 144)])
def test_fan_in_uniform_bound_and_variance(shape, fan_in):
    w = sample(gi.fan_in_uniform(), shape)
    bound = 1.0 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.98 * bound
    # U(-a, a) has variance (2a)^2 / 12 = a^2 / 3.
    np.testing.assert_allclose(w.var(), bound**2 / 3, rtol=0.05)


def test_fan_in_uniform_dtype_and_jit():
    init = jax.jit(gi.fan_in_uniform(), static_argnums=(1, 2))
    w = init(KEY, (16, 4), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="dtype"):
        gi.fan_in_uniform(jnp.int32)


@pytest.mark.parametrize("fan_in", [1, 5, 75, 400])
def test_fan_in_uniform_is_pytorchs_kaiming_uniform_sqrt5(fan_in):
    assert torch_default_bound(fan_in) == pytest.approx(1.0 / math.sqrt(fan_in))
    w = sample(gi.fan_in_uniform(), (fan_in, 2000))
    assert np.abs(w).max() <= torch_default_bound(fan_in) * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * torch_default_bound(fan_in)


# --- fan-in uniform biases --------------------------------------------------------


def test_fan_in_bias_uniform_bound_variance_and_distribution():
    b = sample(gi.fan_in_bias_uniform(M), (M * N,))
    bound = 1.0 / math.sqrt(M)
    assert np.abs(b).max() <= np.float32(bound)  # exactly, in float32
    assert np.abs(b).max() > 0.999 * bound
    np.testing.assert_allclose(b.var(), bound**2 / 3, rtol=0.02)
    np.testing.assert_allclose(b.mean(), 0.0, atol=3 * bound / math.sqrt(3 * b.size))
    ks = stats.kstest(b, stats.uniform(loc=-bound, scale=2 * bound).cdf)
    assert ks.pvalue > 1e-3


def test_fan_in_bias_uniform_any_shape_dtype_and_jit():
    init = gi.fan_in_bias_uniform(9, dtype=jnp.bfloat16)
    assert init(KEY, (7,)).dtype == jnp.bfloat16  # the factory's default dtype
    jitted = jax.jit(init, static_argnums=(1, 2))
    b = jitted(KEY, (4, 5), jnp.float32)
    chex.assert_shape(b, (4, 5))
    chex.assert_trees_all_equal(b, init(KEY, (4, 5), jnp.float32))
    low = np.asarray(jitted(KEY, (5000,), jnp.bfloat16), np.float64)
    assert np.abs(low).max() <= float(jnp.asarray(1 / 3, jnp.bfloat16))  # 1/sqrt(9)
    assert init(KEY, (3,), None).dtype == jnp.float32  # None: float32


def test_fan_in_bias_uniform_with_fan_in_uniform_is_pytorchs_linear():
    # nn.Linear(m, n): weight and bias both U(-1/sqrt(m), 1/sqrt(m)).
    m, n = 50, 4000
    layer = nnx.Linear(
        m,
        n,
        kernel_init=gi.fan_in_uniform(),
        bias_init=gi.fan_in_bias_uniform(m),
        rngs=nnx.Rngs(0),
    )
    bound = torch_default_bound(m)
    for p in kernel_and_bias(layer):
        assert np.abs(p).max() <= bound * (1 + 1e-6)
        np.testing.assert_allclose(p.var(), bound**2 / 3, rtol=0.05)


def test_without_fan_in_it_is_resolved_per_layer():
    per_layer = gi.fan_in_bias_uniform()
    assert isinstance(per_layer, FanInBiasUniform)
    assert repr(per_layer) == "fan_in_bias_uniform(dtype=float32)"
    resolved = resolve(per_layer, 25)
    b = np.asarray(resolved(KEY, (10_000,)), np.float64)
    assert 0.99 * 0.2 < np.abs(b).max() <= np.float32(0.2)  # 1/sqrt(25)
    low = resolve(gi.fan_in_bias_uniform(dtype=jnp.bfloat16), 4)(KEY, (3,))
    assert low.dtype == jnp.bfloat16
    zeros = jax.nn.initializers.zeros
    assert resolve(zeros, 25) is zeros  # any other initialiser: unchanged


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fan_in": 0}, ValueError),
        ({"fan_in": -3}, ValueError),
        ({"fan_in": 2**31}, ValueError),
        ({"fan_in": 2.5}, TypeError),
        ({"fan_in": True}, TypeError),
        ({"fan_in": "4"}, TypeError),
        ({"fan_in": np.array([4])}, TypeError),
        ({"fan_in": 4, "dtype": jnp.int32}, TypeError),
        ({"dtype": "complex64"}, TypeError),
    ],
)
def test_fan_in_bias_uniform_errors_name_the_argument(kwargs, error):
    name = next(iter(kwargs)) if "dtype" not in kwargs else "dtype"
    with pytest.raises(error, match=name):
        gi.fan_in_bias_uniform(**kwargs)


def test_a_per_layer_initialiser_refuses_to_guess_the_fan_in():
    with pytest.raises(ValueError, match=r"fan-in.*\(4,\)"):
        gi.fan_in_bias_uniform()(KEY, (4,))
    with pytest.raises(ValueError, match="fan_in_bias_uniform"):
        nnx.Linear(3, 4, bias_init=gi.fan_in_bias_uniform(), rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="dtype"):
        gi.fan_in_bias_uniform(4)(KEY, (3,), jnp.int32)


# --- each model layer gets its own fan-in ------------------------------------------


def _check_biases(layers, fan_ins):
    """Each layer's bias in [-1/sqrt(m), 1/sqrt(m)] with its fan-in m, the bound
    reached (within 20%: at least 40 biases a layer)."""
    assert len(layers) == len(fan_ins)
    for layer, m in zip(layers, fan_ins, strict=True):
        assert math.prod(layer.kernel.shape[:-1]) == m  # in features x receptive field
        b = kernel_and_bias(layer)[1]
        assert b.size >= 40
        bound = np.float32(1.0 / math.sqrt(m))
        assert np.abs(b).max() <= bound, (m, np.abs(b).max())
        assert np.abs(b).max() > 0.8 * bound, (m, np.abs(b).max())


def test_mlp_and_residual_mlp_layers_get_their_fan_in():
    bias = gi.fan_in_bias_uniform()
    mlp = MLP((30, 200, 60, 40), batch_norm=False, bias_init=bias, rngs=nnx.Rngs(0))
    _check_biases(mlp.linears, [30, 200, 60])
    res = ResidualMLP(7, 300, 50, num_blocks=2, bias_init=bias, rngs=nnx.Rngs(0))
    layers = [res.input_layer, *res.blocks, res.output_layer]
    _check_biases(layers, [7, 300, 300, 300])


def test_cnn_layers_get_their_fan_in():
    bias, kernel = gi.fan_in_bias_uniform(), gi.fan_in_uniform()
    # 1-D: conv fan-in = in_channels * k; the flatten head's = 60 * final length.
    cnn1 = CNN(
        50,
        in_features=3,
        channels=(100, 60),
        kernel_size=(5, 3),
        spatial_dims=1,
        strides=2,
        padding=1,
        batch_norm=False,
        max_pool=False,
        head="flatten",
        input_size=20,  # 20 -> 9 -> 5
        kernel_init=kernel,
        bias_init=bias,
        rngs=nnx.Rngs(0),
    )
    _check_biases([*cnn1.convs, cnn1.head], [15, 300, 300])
    # 2-D: conv fan-in = in_channels * k * k; the mean head's = channels[-1].
    cnn2 = CNN(
        40,
        in_features=2,
        channels=(64, 48),
        batch_norm=False,
        kernel_init=kernel,
        bias_init=bias,
        rngs=nnx.Rngs(0),
    )
    _check_biases([*cnn2.convs, cnn2.head], [18, 576, 48])


def test_per_layer_biases_have_the_uniform_variance():
    # 30,000 biases of a Linear layer (m = 16) and 20,000 of a Conv1d (m = 2 * 3).
    linear = LinearClassifier(
        16, 30_000, bias_init=gi.fan_in_bias_uniform(), rngs=nnx.Rngs(0)
    )
    conv = CNN(
        10,
        in_features=2,
        channels=(20_000,),
        spatial_dims=1,
        batch_norm=False,
        kernel_init=gi.fan_in_uniform(),
        bias_init=gi.fan_in_bias_uniform(),
        rngs=nnx.Rngs(1),
    ).convs[0]
    for layer, m in ((linear.linear, 16), (conv, 6)):
        b = kernel_and_bias(layer)[1]
        np.testing.assert_allclose(b.var(), 1.0 / (3 * m), rtol=0.03)
        bound = 1.0 / math.sqrt(m)
        ks = stats.kstest(b, stats.uniform(loc=-bound, scale=2 * bound).cdf)
        assert ks.pvalue > 1e-3


def test_gradtransforms_init_re_exports_them():
    assert gi.fan_in_uniform is fan_in_module.fan_in_uniform
    assert gi.fan_in_bias_uniform is fan_in_module.fan_in_bias_uniform
    assert {"fan_in_uniform", "fan_in_bias_uniform"} <= set(gi.__all__)
