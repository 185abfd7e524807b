"""A small convolutional network: conv–BatchNorm–ReLU blocks, NHWC images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.models.options import check_features, check_layer_options
from gradtransforms.validation import check_positive_int

__all__ = ["CNN"]

_HE_NORMAL = jax.nn.initializers.he_normal()


class CNN(nnx.Module):
    """Blocks of (3x3 conv → BatchNorm → activation → 2x2 max-pool), then a classifier.

    Each block is a `kernel_size` convolution with `SAME` padding, BatchNorm
    over the batch and spatial axes (per channel, as in Ioffe & Szegedy, 2015),
    the activation, and a 2x2 max-pool of stride 2 while the image is at least
    2x2. Global average pooling and a Linear layer give the logits, so any image
    size works: 8x8 digits become 4x4 then 2x2, 28x28 MNIST 14x14 then 7x7.
    Without BatchNorm the convolutions have biases. Switch modes with
    `.train()` / `.eval()`.

    Args:
      num_classes: number of outputs.
      in_features: channels of the input images `(batch, H, W, in_features)`.
      channels: output channels of each block; at least one block.
      kernel_size: side of the square convolution kernels.
      batch_norm: insert `nnx.BatchNorm` after each convolution.
      kernel_init: initialiser of every kernel (conv kernels are
        `(k, k, in, out)`); default He normal.
      activation: the nonlinearity.
      batch_norm_momentum: $\\rho \\in [0, 1)$ of the running averages.
      batch_norm_epsilon: $\\delta > 0$.
      dtype: computation dtype.
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = CNN(10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28, 1))).shape
      (2, 10)
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_features: int = 1,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        batch_norm: bool = True,
        kernel_init: Callable[..., jax.Array] = _HE_NORMAL,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        batch_norm_momentum: float = 0.99,
        batch_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_features", in_features)
        channels = check_features("channels", channels, min_len=1)
        check_positive_int("kernel_size", kernel_size)
        check_layer_options(
            kernel_init=kernel_init,
            activation=activation,
            batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon,
            batch_norm=batch_norm,
            dtype=dtype,
            param_dtype=param_dtype,
        )
        self.batch_norm = bool(batch_norm)
        self.activation = activation
        ins = (in_features, *channels[:-1])
        self.convs = nnx.List(
            [
                nnx.Conv(
                    c_in,
                    c_out,
                    kernel_size=(kernel_size, kernel_size),
                    padding="SAME",
                    use_bias=not self.batch_norm,
                    kernel_init=kernel_init,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for c_in, c_out in zip(ins, channels, strict=True)
            ]
        )
        self.norms = nnx.List(
            [
                nnx.BatchNorm(
                    c,
                    momentum=batch_norm_momentum,
                    epsilon=batch_norm_epsilon,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for c in channels
            ]
            if self.batch_norm
            else []
        )
        self.head = nnx.Linear(
            channels[-1],
            num_classes,
            kernel_init=kernel_init,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits for images `x` of shape `(batch, H, W, in_features)`."""
        if x.ndim != 4:
            raise ValueError(
                f"CNN expects NHWC images (batch, H, W, C); got shape {x.shape}."
            )
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.batch_norm:
                x = self.norms[i](x)
            x = self.activation(x)
            if x.shape[1] >= 2 and x.shape[2] >= 2:
                x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        return self.head(jnp.mean(x, axis=(1, 2)))
