"""The deep linear network of the initialisation experiment (textbook §8.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.validation import (
    check_bool,
    check_callable,
    check_float_dtype,
    check_positive_int,
)

__all__ = ["DeepLinear"]

_GLOROT_UNIFORM = jax.nn.initializers.glorot_uniform()


class DeepLinear(nnx.Module):
    """`depth` linear layers of `width` units, no nonlinearity: $h_l = h_{l-1} W_l$.

    The network of the seeds' worked example: with inputs of variance 1 and
    i.i.d. zero-mean weights of variance $v$, each layer multiplies the
    activation variance by $m v$ ($m$ = fan-in), so after ten layers of 100
    units $W \\sim N(0, 1)$ gives variance $100^{10} = 10^{20}$, while Glorot
    ($v = 2/(m + n) = 1/m$ here) keeps it of order 1. `activations` returns
    every layer's output so that the growth can be watched.

    Args:
      depth: number of layers $\\ge 1$.
      width: units per layer.
      in_features: size of the input; default `width`.
      kernel_init: initialiser of the kernels; default Glorot uniform.
      use_bias: add a bias (initialised to zero) to each layer.
      dtype: computation dtype.
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> net = DeepLinear(3, 4, rngs=nnx.Rngs(0))
      >>> [h.shape for h in net.activations(jnp.ones((2, 4)))]
      [(2, 4), (2, 4), (2, 4)]
    """

    def __init__(
        self,
        depth: int = 10,
        width: int = 100,
        *,
        in_features: int | None = None,
        kernel_init: Callable[..., jax.Array] = _GLOROT_UNIFORM,
        use_bias: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_positive_int("depth", depth)
        check_positive_int("width", width)
        if in_features is None:
            in_features = width
        check_positive_int("in_features", in_features)
        check_callable("kernel_init", kernel_init)
        check_bool("use_bias", use_bias)
        check_float_dtype("dtype", dtype, optional=True)
        check_float_dtype("param_dtype", param_dtype)
        self.layers = nnx.List(
            [
                nnx.Linear(
                    in_features if i == 0 else width,
                    width,
                    use_bias=use_bias,
                    kernel_init=kernel_init,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for i in range(depth)
            ]
        )

    def activations(self, x: jax.Array) -> list[jax.Array]:
        """Every layer's output $[h_1, \\dots, h_L]$ for inputs `x` `(..., in)`."""
        hs = []
        for layer in self.layers:
            x = layer(x)
            hs.append(x)
        return hs

    def __call__(self, x: jax.Array) -> jax.Array:
        """The last layer's output $h_L$."""
        for layer in self.layers:
            x = layer(x)
        return x
