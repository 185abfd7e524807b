"""A linear classifier: softmax (multinomial logistic) regression, one Linear layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.fan_in import resolve
from gradtransforms.validation import (
    check_callable,
    check_float_dtype,
    check_positive_int,
)

__all__ = ["LinearClassifier"]

_LECUN_NORMAL = jax.nn.initializers.lecun_normal()


class LinearClassifier(nnx.Module):
    """Logits $z = x W + b$ of a flattened input: softmax regression.

    With the softmax cross-entropy (`models.cross_entropy`) this is
    multinomial logistic regression, a convex problem: the baseline below
    every network of `gradtransforms.models`. The fewest trailing axes of the
    input whose sizes multiply to `in_features` are flattened and the axes
    before them kept, so `(batch, 64)`, `(batch, 8, 8, 1)` and `(64,)` all
    fit `in_features=64` (and a batch of one keeps its axis).

    Args:
      in_features: $m$, the number of inputs (the product of the flattened
        axes' sizes).
      num_classes: the number of outputs.
      kernel_init: initialiser of the `(in_features, num_classes)` kernel;
        default LeCun normal, `nnx.Linear`'s (variance $1/m$).
      bias_init: initialiser of the bias; default zeros.
        `gradtransforms.init.fan_in_bias_uniform()` gets the fan-in $m$.
      dtype: computation dtype (default: inferred from inputs and parameters).
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = LinearClassifier(64, 10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((5, 8, 8, 1))).shape
      (5, 10)
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int = 10,
        *,
        kernel_init: Callable[..., jax.Array] = _LECUN_NORMAL,
        bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes)
        check_callable("kernel_init", kernel_init)
        check_callable("bias_init", bias_init)
        check_float_dtype("dtype", dtype, optional=True)
        check_float_dtype("param_dtype", param_dtype)
        self.linear = nnx.Linear(
            in_features,
            num_classes,
            kernel_init=kernel_init,
            bias_init=resolve(bias_init, in_features),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits, shape `(*leading, num_classes)`, for `x` `(*leading, *features)`."""
        m = self.linear.in_features
        for k in range(x.ndim - 1, -1, -1):  # the shortest trailing run first
            if math.prod(x.shape[k:]) == m:
                return self.linear(x.reshape(*x.shape[:k], m))
        raise ValueError(
            "LinearClassifier expects inputs whose trailing axes' sizes multiply "
            f"to in_features={m}; got shape {x.shape}."
        )
