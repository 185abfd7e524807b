"""A multilayer perceptron with optional batch normalisation (textbook §8.7.1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.fan_in import resolve
from gradtransforms.models.options import check_features, check_layer_options

__all__ = ["MLP"]

_HE_NORMAL = jax.nn.initializers.he_normal()


class MLP(nnx.Module):
    """Dense network: (Linear → BatchNorm → activation) per hidden layer, then Linear.

    With `features = (d_0, d_1, ..., d_L)` there are $L$ Linear layers
    $d_{l-1} \\to d_l$. Each hidden layer computes
    $h_l = f(\\mathrm{BN}(h_{l-1} W_l))$ where, in training mode,
    $\\mathrm{BN}(H) = \\gamma (H - \\mu) / \\sqrt{\\delta + \\sigma^2} + \\beta$
    with the per-unit minibatch mean $\\mu$ and (biased) variance $\\sigma^2$,
    and in evaluation mode $\\mu, \\sigma^2$ are the running averages
    $\\hat\\mu \\leftarrow \\rho \\hat\\mu + (1 - \\rho) \\mu$ (Flax's convention,
    $\\rho$ = `batch_norm_momentum`). The hidden Linear layers then have no bias
    ($\\beta$ replaces it); without BatchNorm they do, $h_l = f(h_{l-1} W_l + b_l)$.
    The last layer is linear (logits). Switch modes with `.train()` / `.eval()`.

    Args:
      features: layer widths `(d_0, ..., d_L)`, at least two; `d_0` is the size
        of the input's last axis.
      batch_norm: insert `nnx.BatchNorm` after each hidden Linear layer.
      kernel_init: initialiser of every kernel, `(key, shape, dtype)`; default
        He normal (suits ReLU; see `gradtransforms.init`).
      bias_init: initialiser of the biases; default zeros.
        `gradtransforms.init.fan_in_bias_uniform()` gets each layer's fan-in.
      activation: the hidden nonlinearity $f$.
      batch_norm_momentum: $\\rho \\in [0, 1)$ of the running averages.
      batch_norm_epsilon: $\\delta > 0$.
      dtype: computation dtype (default: inferred from inputs and parameters).
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = MLP((64, 32, 10), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((5, 64))).shape
      (5, 10)
    """

    def __init__(
        self,
        features: Sequence[int],
        *,
        batch_norm: bool = True,
        kernel_init: Callable[..., jax.Array] = _HE_NORMAL,
        bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        batch_norm_momentum: float = 0.99,
        batch_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        features = check_features("features", features, min_len=2)
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
        self.features = features
        self.batch_norm = bool(batch_norm)
        self.activation = activation
        n = len(features) - 1
        self.linears = nnx.List(
            [
                nnx.Linear(
                    features[i],
                    features[i + 1],
                    use_bias=not (self.batch_norm and i < n - 1),
                    kernel_init=kernel_init,
                    bias_init=resolve(bias_init, features[i]),
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for i in range(n)
            ]
        )
        self.norms = nnx.List(
            [
                nnx.BatchNorm(
                    features[i + 1],
                    momentum=batch_norm_momentum,
                    epsilon=batch_norm_epsilon,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for i in range(n - 1)
            ]
            if self.batch_norm
            else []
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits for inputs `x` of shape `(..., d_0)`."""
        for i, linear in enumerate(self.linears[:-1]):
            x = linear(x)
            if self.batch_norm:
                x = self.norms[i](x)
            x = self.activation(x)
        return self.linears[-1](x)
