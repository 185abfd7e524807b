"""Fan-in uniform initialisers: the textbook's heuristic and PyTorch's default (§8.4).

Two initialisers draw from $U(-1/\\sqrt{m}, 1/\\sqrt{m})$ with $m$ the fan-in
of a layer (its input features times its receptive field): `fan_in_uniform`
for kernels, which reads $m$ from the kernel's shape, and `fan_in_bias_uniform`
for biases, whose shape `(out,)` does not hold $m$. Together they are
PyTorch's default initialisation of `nn.Linear` and `nn.Conv*d`. Both are
re-exported by `gradtransforms.init`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn.initializers import Initializer

from gradtransforms.validation import check_float_dtype, check_positive_int

__all__ = ["FanInBiasUniform", "fan_in_bias_uniform", "fan_in_uniform", "resolve"]


def fan_in_uniform(dtype: Any = jnp.float32) -> Initializer:
    """Fan-in uniform initialiser: $W_{ij} \\sim U(-1/\\sqrt{m}, 1/\\sqrt{m})$.

    The textbook's first heuristic (§8.4), with $m$ the fan-in; the variance is
    $1/(3m)$. It is `variance_scaling(1/3, "fan_in", "uniform")` of
    `jax.nn.initializers` (whose bound is $\\sqrt{3 s / m}$), re-used here.

    It is also PyTorch's default kernel initialisation of `nn.Linear` and
    `nn.Conv*d`: `kaiming_uniform_(w, a=sqrt(5))` has the bound
    $\\sqrt{6 / ((1 + a^2) m)} = 1/\\sqrt{m}$. With `fan_in_bias_uniform` for
    the biases, a layer starts exactly as PyTorch's does.

    Args:
      dtype: default dtype of the weights.

    Returns:
      An initialiser `init(key, shape, dtype=dtype)`; `shape` is `(..., in, out)`.

    Examples:
      >>> import jax
      >>> w = fan_in_uniform()(jax.random.key(0), (100, 10))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    check_float_dtype("dtype", dtype)
    return jax.nn.initializers.variance_scaling(
        1.0 / 3.0, "fan_in", "uniform", dtype=dtype
    )


class FanInBiasUniform:
    """`fan_in_bias_uniform()` without a fan-in: resolved per layer by the models.

    A model of `gradtransforms.models` given it as `bias_init` replaces it, in
    each layer, by `fan_in_bias_uniform(m, dtype)` with that layer's fan-in
    $m$ (see `resolve`). Called directly, as a Flax layer would, it raises:
    the bias's shape does not hold the fan-in.
    """

    def __init__(self, dtype: Any = jnp.float32):
        check_float_dtype("dtype", dtype)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"fan_in_bias_uniform(dtype={jnp.dtype(self.dtype).name})"

    def __call__(
        self,
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: Any = None,
    ) -> jax.Array:
        raise ValueError(
            "fan_in_bias_uniform() needs the layer's fan-in, which a bias's shape "
            f"{tuple(shape)!r} does not hold: pass it, fan_in_bias_uniform(fan_in), "
            "or give fan_in_bias_uniform() to a model of gradtransforms.models, "
            "which passes each layer's."
        )


def fan_in_bias_uniform(
    fan_in: int | None = None, dtype: Any = jnp.float32
) -> Initializer:
    """Fan-in bias initialiser: $b_j \\sim U(-1/\\sqrt{m}, 1/\\sqrt{m})$.

    PyTorch's default bias of `nn.Linear` and `nn.Conv*d`, with $m$ the layer's
    fan-in: `in_features` for a dense layer, input channels times the kernel's
    size for a convolution (`prod(kernel.shape[:-1])` in Flax's layout). The
    variance is $1/(3m)$. With `fan_in_uniform` kernels (the bound of
    PyTorch's `kaiming_uniform_(a=sqrt(5))` is also $1/\\sqrt{m}$) it gives
    exactly PyTorch's default initialisation of a layer.

    A bias's shape `(out,)` does not hold $m$, so it is an argument. Without
    it the result is a per-layer initialiser (`FanInBiasUniform`) that the
    models of `gradtransforms.models` (`MLP`, `CNN`, `ResidualMLP`,
    `LinearClassifier`) resolve with each layer's own fan-in; a Flax layer
    called with it directly raises a `ValueError`.

    Args:
      fan_in: $m \\ge 1$, the fan-in of the layer; None for a per-layer
        initialiser.
      dtype: default dtype of the biases (floating).

    Returns:
      An initialiser `init(key, shape, dtype=dtype)`; `shape` is any shape,
      usually `(out,)`.

    Examples:
      >>> import jax
      >>> from flax import nnx
      >>> layer = nnx.Linear(
      ...     100, 10, kernel_init=fan_in_uniform(),
      ...     bias_init=fan_in_bias_uniform(100), rngs=nnx.Rngs(0),
      ... )  # PyTorch's nn.Linear(100, 10)
      >>> bool(abs(layer.bias[...]).max() <= 0.1)
      True
    """
    if fan_in is not None:
        check_positive_int("fan_in", fan_in)
    check_float_dtype("dtype", dtype)
    if fan_in is None:
        return FanInBiasUniform(dtype)
    bound = 1.0 / math.sqrt(int(fan_in))
    default_dtype = dtype

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = default_dtype,
        out_sharding: Any = None,
    ) -> jax.Array:
        dtype = jnp.float32 if dtype is None else dtype
        check_float_dtype("dtype", dtype)
        return jax.random.uniform(
            key, shape, dtype, -bound, bound, out_sharding=out_sharding
        )

    return init


def resolve(init: Any, fan_in: int) -> Any:
    """`init` for a layer of fan-in `fan_in`: a `FanInBiasUniform` gets it."""
    if isinstance(init, FanInBiasUniform):
        return fan_in_bias_uniform(fan_in, init.dtype)
    return init
