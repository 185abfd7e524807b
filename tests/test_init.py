"""Tests for gradtransforms.init: initialiser statistics, gains, output biases.

(LSUV, `init.lsuv`, lives in gradtransforms/nnx.py: tests/test_nnx.py; the
fan-in initialisers in gradtransforms/fan_in.py: tests/test_fan_in.py, which
also checks that `gradtransforms.init` re-exports them.)

Reference values are closed forms typed in from their definitions, NumPy
computations, or SciPy quadrature; never the code under test.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import integrate, special

import gradtransforms.init as gi
from gradtransforms.models import DeepLinear

KEY = jax.random.key(0)
M, N = 400, 300  # fan-in, fan-out of the test kernels: 120,000 samples


def sample(init, shape=(M, N), dtype=jnp.float32, key=KEY) -> np.ndarray:
    w = init(key, shape, dtype)
    chex.assert_shape(w, shape)
    assert w.dtype == dtype
    return np.asarray(w, np.float64)


# --- variance-scaling family (re-exported from jax.nn.initializers) ------------


def test_glorot_uniform_bound_and_variance():
    w = sample(gi.glorot_uniform())
    # Not the misprint 6/sqrt(m+n) of Trivedi & Kondor's slides.
    bound = math.sqrt(6.0 / (M + N))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    np.testing.assert_allclose(w.var(), 2.0 / (M + N), rtol=0.02)
    np.testing.assert_allclose(w.mean(), 0.0, atol=3 * math.sqrt(2 / (M + N) / w.size))


def test_glorot_normal_variance():
    np.testing.assert_allclose(sample(gi.glorot_normal()).var(), 2 / (M + N), rtol=0.02)


@pytest.mark.parametrize("init", [gi.he_normal(), gi.kaiming_normal()])
def test_he_normal_std(init):
    np.testing.assert_allclose(sample(init).std(), math.sqrt(2.0 / M), rtol=0.01)


def test_he_uniform_bound_and_variance():
    w = sample(gi.he_uniform())
    assert np.abs(w).max() <= math.sqrt(6.0 / M)
    np.testing.assert_allclose(w.var(), 2.0 / M, rtol=0.02)


@pytest.mark.parametrize("init", [gi.lecun_normal(), gi.lecun_uniform()])
def test_lecun_variance(init):
    np.testing.assert_allclose(sample(init).var(), 1.0 / M, rtol=0.02)


def test_untruncated_he_via_variance_scaling():
    w = sample(gi.variance_scaling(2.0, "fan_in", "normal"))
    np.testing.assert_allclose(w.std(), math.sqrt(2.0 / M), rtol=0.01)
    # A Gaussian has about 4.6% of its mass beyond 2 sigma; the truncated one none.
    frac = np.mean(np.abs(w) > 2 * math.sqrt(2.0 / M))
    assert 0.035 < frac < 0.057


# --- sparse -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "k"), [((100, 50), 15), ((3, 3, 8, 16), 5), ((7, 3), 7)]
)
def test_sparse_exactly_k_nonzeros_per_output_unit(shape, k):
    w = sample(gi.sparse(k), shape)
    columns = w.reshape(-1, shape[-1])  # (fan_in, out): one column per unit
    np.testing.assert_array_equal((columns != 0).sum(axis=0), np.full(shape[-1], k))


def test_sparse_positions_differ_between_units_and_values_are_gaussian():
    k, stddev = 15, 0.5
    w = sample(gi.sparse(k, stddev), (200, 2000))
    patterns = {tuple(np.flatnonzero(col)) for col in w.T}
    assert len(patterns) == 2000  # distinct supports (collisions ~ 0)
    # Every input position is used about equally often: k * 2000 / 200 = 150.
    counts = (w != 0).sum(axis=1)
    assert 100 < counts.min() and counts.max() < 200
    values = w[w != 0]
    np.testing.assert_allclose(values.std(), stddev, rtol=0.02)
    np.testing.assert_allclose(values.mean(), 0.0, atol=0.02)
    # Per unit the pre-activation variance is k * stddev^2 times the input's.
    np.testing.assert_allclose((w**2).sum(axis=0).mean(), k * stddev**2, rtol=0.02)


def test_sparse_errors():
    with pytest.raises(ValueError, match="num_nonzero"):
        gi.sparse(0)
    with pytest.raises(TypeError, match="num_nonzero"):
        gi.sparse(2.5)
    with pytest.raises(ValueError, match="stddev"):
        gi.sparse(3, stddev=0.0)
    with pytest.raises(ValueError, match="num_nonzero must not exceed the fan-in 8"):
        gi.sparse(9)(KEY, (8, 4))
    with pytest.raises(ValueError, match="shape"):
        gi.sparse(1)(KEY, (8,))


# --- orthogonal and gains -----------------------------------------------------


@pytest.mark.parametrize(
    ("gain", "shape"),
    [(1.0, (24, 24)), (2.5, (64, 32)), ("relu", (32, 64)), ("tanh", (3, 3, 4, 16))],
)
def test_orthogonal_gram_is_gain_squared_identity(gain, shape):
    g = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3.0}.get(gain, gain)
    w = sample(gi.orthogonal(gain), shape).reshape(-1, shape[-1])  # (m, n)
    m, n = w.shape
    gram = w.T @ w if m >= n else w @ w.T
    np.testing.assert_allclose(gram, g**2 * np.eye(min(m, n)), atol=1e-5 * g**2)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="gain"):
        gi.orthogonal(-1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        gi.orthogonal("softplus")


def _second_moment(f) -> float:
    """E[f(z)^2] for z ~ N(0, 1), by SciPy quadrature."""
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return integrate.quad(lambda z: f(z) ** 2 * pdf(z), -np.inf, np.inf)[0]


def test_calculate_gain_table_values():
    # PyTorch's documented table (torch.nn.init.calculate_gain), as literals.
    assert gi.calculate_gain("linear") == 1.0
    assert gi.calculate_gain("identity") == 1.0
    assert gi.calculate_gain("sigmoid") == 1.0
    assert gi.calculate_gain("tanh") == pytest.approx(1.6666666666666667)  # 5/3
    assert gi.calculate_gain("relu") == pytest.approx(1.4142135623730951)  # sqrt 2
    assert gi.calculate_gain("selu") == 0.75
    # leaky_relu: sqrt(2 / (1 + a^2)); default a = 0.01.
    assert gi.calculate_gain("leaky_relu") == pytest.approx(1.4141428569978354)
    assert gi.calculate_gain("leaky_relu", 0.2) == pytest.approx(1.3867504905630728)
    assert gi.calculate_gain("leaky_relu", 1) == pytest.approx(1.0)


def test_gains_match_second_moment_definition():
    # g = 1 / sqrt(E[f(z)^2]): relu and leaky relu, from quadrature.
    relu = lambda z: max(z, 0.0)
    assert gi.calculate_gain("relu") == pytest.approx(
        1 / math.sqrt(_second_moment(relu)), rel=1e-7
    )
    leaky = lambda z: z if z > 0 else 0.3 * z
    assert gi.calculate_gain("leaky_relu", 0.3) == pytest.approx(
        1 / math.sqrt(_second_moment(leaky)), rel=1e-7
    )
    # gelu (exact erf form, z * Phi(z)): quadrature and the closed form
    # 1 / sqrt(1/3 + 1 / (2 pi sqrt 3)).
    gelu = lambda z: z * 0.5 * (1.0 + special.erf(z / math.sqrt(2.0)))
    by_quadrature = 1 / math.sqrt(_second_moment(gelu))
    assert gi.calculate_gain("gelu") == pytest.approx(by_quadrature, rel=1e-7)
    assert gi.calculate_gain("gelu") == pytest.approx(1.5335304411955328, rel=1e-12)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        gi.calculate_gain("swish")
    with pytest.raises(TypeError, match="nonlinearity"):
        gi.calculate_gain(jax.nn.relu)
    with pytest.raises(ValueError, match="param"):
        gi.calculate_gain("relu", 0.1)
    with pytest.raises(TypeError, match="param"):
        gi.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(TypeError, match="param"):
        gi.calculate_gain("leaky_relu", float("nan"))


# --- output bias from class marginals -------------------------------------------


@pytest.mark.parametrize(
    "freqs", [[0.2, 0.5, 0.3], [30, 60, 10], np.array([1e-6, 1.0]), [7]]
)
def test_output_bias_softmax_equals_marginals(freqs):
    c = np.asarray(freqs, np.float64)
    b = gi.output_bias_from_marginals(freqs)
    chex.assert_shape(b, c.shape)
    assert b.dtype == jnp.float32
    b64 = np.asarray(b, np.float64)
    softmax = np.exp(b64) / np.exp(b64).sum()
    np.testing.assert_allclose(softmax, c / c.sum(), rtol=1e-5)
    np.testing.assert_allclose(b64.mean(), 0.0, atol=1e-6)


@pytest.mark.parametrize(
    ("freqs", "error"),
    [
        ([0.5, 0.0, 0.5], ValueError),
        ([0.5, -0.1], ValueError),
        ([0.5, np.nan], ValueError),
        ([0.5, np.inf], ValueError),
        ([], ValueError),
        ([[0.5, 0.5]], ValueError),
        (["a", "b"], TypeError),
        ([True, False], TypeError),
    ],
)
def test_output_bias_errors(freqs, error):
    with pytest.raises(error, match="class_frequencies"):
        gi.output_bias_from_marginals(freqs)


# --- the seeds' ten-layer experiment --------------------------------------------


def _log10_output_variance(kernel_init, seed=0) -> float:
    net = DeepLinear(10, 100, kernel_init=kernel_init, rngs=nnx.Rngs(seed))
    x = jax.random.normal(jax.random.key(1), (500, 100))
    # The reference forward pass is NumPy's, in float64.
    h = np.asarray(x, np.float64)
    for layer in net.layers:
        h = h @ np.asarray(layer.kernel[...], np.float64)
    # float32 vs float64: compare on the scale of the output.
    np.testing.assert_allclose(np.asarray(net(x)), h, atol=1e-4 * np.abs(h).max())
    return math.log10(h.var())


def test_seeds_experiment_standard_normal_weights_explode():
    # Each layer multiplies the variance by 100 * 1: 100^10 = 1e20.
    assert abs(_log10_output_variance(gi.normal(1.0)) - 20.0) < 0.5


@pytest.mark.parametrize("init", [gi.glorot_uniform(), gi.orthogonal()])
def test_seeds_experiment_glorot_keeps_order_one(init):
    assert abs(_log10_output_variance(init)) < 0.5
