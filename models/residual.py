"""A multilayer perceptron with skip connections (textbook §8.7.5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.fan_in import resolve
from gradtransforms.models.options import check_layer_options
from gradtransforms.validation import check_fraction, check_positive_int

__all__ = ["ResidualMLP"]

_HE_NORMAL = jax.nn.initializers.he_normal()


class ResidualMLP(nnx.Module):
    """Dense network with skip connections: $h \\leftarrow h + \\alpha (f(h) W + b)$.

    An input projection, `num_blocks` residual blocks of `width` units and a
    linear output layer (logits):

    $$h_0 = x W_0 + b_0, \\qquad
      h_k = h_{k-1} + \\alpha \\left( f(N_k(h_{k-1})) W_k + b_k \\right)
      \\quad (k = 1, \\dots, K), \\qquad y = h_K W_{K+1} + b_{K+1},$$

    with $K$ = `num_blocks`, $f$ = `activation`, $\\alpha$ = `residual_scale`
    and $N_k$ the identity, or with `batch_norm=True` a BatchNorm
    $N_k(H) = \\gamma_k (H - \\mu) / \\sqrt{\\delta + \\sigma^2} + \\beta_k$ (as in
    `models.MLP`; switch modes with `.train()` / `.eval()`). This is the
    "pre-activation" block (He et al., 2016): the branch ends with a Linear
    layer, so what it adds to $h$ has mean zero over the initial weights. The
    identity path $h_{k-1} \\to h_k$ is the skip connection of §8.7.5: however
    deep the network, the shortest path from a block's weights to the output
    crosses one weight layer (the output layer), and a block with
    $W_k = 0, b_k = 0$ is the identity.

    The branch scale: with He-normal kernels ($\\operatorname{Var} W = 2/m$)
    and ReLU, a block adds to $h$ a term of the same expected mean square as
    $h$, $\\mathbb{E} (f(h) W)_i^2 = 2\\, \\overline{f(h)^2} \\approx
    \\overline{h^2}$, so with $\\alpha = 1$ the mean square doubles per block
    ($2^K$ over the network). The default $\\alpha = 1/\\sqrt{K}$ makes the
    expected growth $(1 + 1/K)^K < e$ at any depth (De & Smith, 2020, and
    Hayou et al., 2021, study this scaling); a given network of small width
    fluctuates around it.

    There are $K + 2$ Linear layers: `input_layer` ($d_{in} \\to$ `width`),
    `blocks[k]` (`width` $\\to$ `width`) and `output_layer` (`width`
    $\\to d_{out}$), the same weight shapes as `models.MLP` with features
    `(in_features, width, ..., width, out_features)` ($K + 1$ widths).

    Args:
      in_features: size of the input's last axis.
      width: units of every hidden layer.
      out_features: size of the output (number of classes).
      num_blocks: number of residual blocks $K \\ge 1$.
      residual_scale: $\\alpha > 0$; default $1/\\sqrt{K}$.
      batch_norm: insert `nnx.BatchNorm` ($N_k$) inside each block, before $f$.
      kernel_init: initialiser of every kernel, `(key, shape, dtype)`; default
        He normal.
      bias_init: initialiser of the biases; default zeros.
        `gradtransforms.init.fan_in_bias_uniform()` gets each layer's fan-in.
      activation: the nonlinearity $f$ of the blocks.
      batch_norm_momentum: $\\rho \\in [0, 1)$ of the running averages.
      batch_norm_epsilon: $\\delta > 0$.
      dtype: computation dtype (default: inferred from inputs and parameters).
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = ResidualMLP(64, 32, 10, num_blocks=8, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((5, 64))).shape
      (5, 10)
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out_features: int,
        num_blocks: int,
        *,
        residual_scale: float | None = None,
        batch_norm: bool = False,
        kernel_init: Callable[..., jax.Array] = _HE_NORMAL,
        bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        batch_norm_momentum: float = 0.99,
        batch_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_positive_int("in_features", in_features)
        check_positive_int("width", width)
        check_positive_int("out_features", out_features)
        check_positive_int("num_blocks", num_blocks)
        if residual_scale is None:
            residual_scale = 1.0 / math.sqrt(num_blocks)
        check_fraction("residual_scale", residual_scale, 0.0, math.inf, concrete=True)
        check_layer_options(
            kernel_init=kernel_init,
            bias_init=bias_init,
            activation=activation,
            batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon,
            batch_norm=batch_norm,
            dtype=dtype,
            param_dtype=param_dtype,
        )
        self.residual_scale = float(residual_scale)
        self.batch_norm = bool(batch_norm)
        self.activation = activation

        def linear(d_in: int, d_out: int) -> nnx.Linear:
            return nnx.Linear(
                d_in,
                d_out,
                kernel_init=kernel_init,
                bias_init=resolve(bias_init, d_in),
                dtype=dtype,
                param_dtype=param_dtype,
                rngs=rngs,
            )

        self.input_layer = linear(in_features, width)
        self.blocks = nnx.List([linear(width, width) for _ in range(num_blocks)])
        self.norms = nnx.List(
            [
                nnx.BatchNorm(
                    width,
                    momentum=batch_norm_momentum,
                    epsilon=batch_norm_epsilon,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for _ in range(num_blocks)
            ]
            if self.batch_norm
            else []
        )
        self.output_layer = linear(width, out_features)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits for inputs `x` of shape `(..., in_features)`."""
        h = self.input_layer(x)
        for k, block in enumerate(self.blocks):
            z = self.norms[k](h) if self.batch_norm else h
            h = h + self.residual_scale * block(self.activation(z))
        return self.output_layer(h)
