"""models/options.py: the argument checks every model makes, errors by name."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gradtransforms.models import CNN, MLP, DeepLinear
from gradtransforms.models.options import (
    check_features,
    check_layer_options,
    check_per_block,
)
from tests.models.reference import small_cnn


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


@pytest.mark.parametrize(
    ("features", "error", "match"),
    [
        ("16", TypeError, "sequence of ints"),
        (16, TypeError, "sequence of ints"),
        ((16, 2.0), ValueError, "ints > 0"),
        ((16, True), ValueError, "ints > 0"),
        ((16, -1), ValueError, "ints > 0"),
        ((16,), ValueError, "at least 2 entries"),
    ],
)
def test_check_features_names_the_argument_and_the_rule(features, error, match):
    with pytest.raises(error, match=rf"widths .*{match}"):
        check_features("widths", features, min_len=2)


def test_check_features_returns_a_tuple_of_python_ints():
    widths = check_features("widths", [np.int64(16), 8], min_len=2)
    assert widths == (16, 8) and all(type(w) is int for w in widths)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kernel_init": 0.5}, "kernel_init"),
        ({"activation": "relu"}, "activation"),
        ({"batch_norm_momentum": 1.0}, "batch_norm_momentum"),
        ({"batch_norm_epsilon": 0.0}, "batch_norm_epsilon"),
    ],
)
def test_check_layer_options_names_the_bad_option(options, match):
    valid = {
        "kernel_init": nnx.initializers.lecun_normal(),
        "activation": jnp.tanh,
        "batch_norm_momentum": 0.99,
        "batch_norm_epsilon": 1e-5,
    }
    check_layer_options(**valid)  # the valid options pass
    with pytest.raises((TypeError, ValueError), match=match):
        check_layer_options(**{**valid, **options})


@pytest.mark.parametrize(
    ("value", "expected"), [(3, (3, 3)), (np.int64(2), (2, 2)), ([5, 3], (5, 3))]
)
def test_check_per_block_gives_one_int_per_block(value, expected):
    sizes = check_per_block("kernel_size", value, 2)
    assert sizes == expected and all(type(s) is int for s in sizes)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, "int > 0"),
        (2.0, TypeError, "int > 0"),
        ("3", TypeError, "int > 0"),
        ([3], ValueError, "one int per block \\(2"),
        ([3, 3, 3], ValueError, "one int per block \\(2"),
        ([3, 0], ValueError, "ints > 0"),
    ],
)
def test_check_per_block_names_the_argument(value, error, match):
    with pytest.raises(error, match=rf"strides .*{match}"):
        check_per_block("strides", value, 2)
