"""A small convolutional network: conv–BatchNorm–ReLU blocks, on sequences or images."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.fan_in import resolve
from gradtransforms.models.options import (
    check_features,
    check_layer_options,
    check_per_block,
)
from gradtransforms.validation import (
    check_bool,
    check_choice,
    check_int,
    check_non_negative_int,
    check_positive_int,
)

__all__ = ["CNN"]

_HE_NORMAL = jax.nn.initializers.he_normal()


class CNN(nnx.Module):
    """Blocks of (conv → BatchNorm → activation → 2x2 max-pool), then a classifier.

    Each block is a `kernel_size` convolution (stride `strides`, `SAME`
    padding by default), BatchNorm over the batch and spatial axes (per
    channel, as in Ioffe & Szegedy, 2015), the activation, and a max-pool of
    window 2 and stride 2 along every spatial axis while each is at least 2.
    Global average pooling and a Linear layer give the logits, so any image
    size works: 8x8 digits become 4x4 then 2x2, 28x28 MNIST 14x14 then 7x7.
    Without BatchNorm the convolutions have biases. Switch modes with
    `.train()` / `.eval()`.

    With `spatial_dims=1` it takes sequences `(batch, L, in_features)` (or
    `(batch, L)` when `in_features` is 1). An int `padding` $p$ adds $p$ zeros
    at both ends of every spatial axis, as PyTorch's `Conv1d`/`Conv2d`, so a
    block maps a length $L$ to $\\lfloor (L + 2p - k)/s \\rfloor + 1$ ($k$ the
    kernel size, $s$ the stride); `"SAME"` gives $\\lceil L/s \\rceil$ and
    `"VALID"` $\\lfloor (L - k)/s \\rfloor + 1$. `head="flatten"` replaces the
    average pooling by flattening the last block's output (channels-last
    order), which fixes the input size: the Linear layer has
    `channels[-1] * prod(final spatial shape)` inputs. Greydanus's MNIST-1D
    CNN (the `ConvBase` of the mnist1d repository; 40 → 19 → 10 → 5, then
    `Linear(125, 10)`) is:

        CNN(10, spatial_dims=1, channels=(25, 25, 25), kernel_size=(5, 3, 3),
            strides=2, padding=1, batch_norm=False, max_pool=False,
            head="flatten", input_size=40, rngs=nnx.Rngs(0))

    Args:
      num_classes: number of outputs.
      in_features: channels of the inputs `(batch, *spatial, in_features)`.
      channels: output channels of each block; at least one block.
      kernel_size: side of the convolution kernels: an int for every block,
        or one per block.
      batch_norm: insert `nnx.BatchNorm` after each convolution.
      kernel_init: initialiser of every kernel (conv kernels are
        `(*(k,) * spatial_dims, in, out)`); default He normal.
      bias_init: initialiser of the biases (the head's, and the convolutions'
        without BatchNorm); default zeros. Given `fan_in_bias_uniform()`
        of `gradtransforms.init`, each layer gets its own fan-in.
      activation: the nonlinearity.
      batch_norm_momentum: $\\rho \\in [0, 1)$ of the running averages.
      batch_norm_epsilon: $\\delta > 0$.
      spatial_dims: 1 for sequences `(batch, L, C)`, 2 for NHWC images.
      strides: stride of the convolutions along every spatial axis: an int
        for every block, or one per block.
      padding: `"SAME"`, `"VALID"`, or an int $p \\ge 0$ of zeros added at
        both ends of every spatial axis.
      max_pool: end each block with the 2x2 (1-D: 2) max-pool.
      head: `"mean"` (global average pooling) or `"flatten"`, before the
        Linear layer.
      input_size: the spatial size of the inputs, `L` (1-D) or `(H, W)` (an
        int for a square image); required by `head="flatten"`, and checked
        against the inputs when given.
      dtype: computation dtype.
      param_dtype: dtype of the parameters.
      rngs: random number generators for the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = CNN(10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28, 1))).shape
      (2, 10)
      >>> sequences = CNN(10, spatial_dims=1, strides=2, rngs=nnx.Rngs(0))
      >>> sequences.block_shapes((40,)), sequences(jnp.ones((2, 40))).shape
      ([(10,), (2,)], (2, 10))
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_features: int = 1,
        channels: Sequence[int] = (16, 32),
        kernel_size: int | Sequence[int] = 3,
        batch_norm: bool = True,
        kernel_init: Callable[..., jax.Array] = _HE_NORMAL,
        bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        batch_norm_momentum: float = 0.99,
        batch_norm_epsilon: float = 1e-5,
        spatial_dims: int = 2,
        strides: int | Sequence[int] = 1,
        padding: int | str = "SAME",
        max_pool: bool = True,
        head: str = "mean",
        input_size: int | Sequence[int] | None = None,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_features", in_features)
        channels = check_features("channels", channels, min_len=1)
        self.kernel_sizes = check_per_block("kernel_size", kernel_size, len(channels))
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
        self._set_geometry(len(channels), spatial_dims, strides, padding, max_pool)
        check_choice("head", head, ("mean", "flatten"))
        self.flatten = head == "flatten"
        self.input_size = _check_input_size(input_size, self.spatial_dims)
        if self.flatten and self.input_size is None:
            raise ValueError(
                "head='flatten' needs input_size, the inputs' spatial size, to "
                "size its Linear layer; got input_size=None."
            )
        self.in_features = int(in_features)
        self.batch_norm = bool(batch_norm)
        self.activation = activation
        layer: dict[str, Any] = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.convs = nnx.List(self._convs(channels, kernel_init, bias_init, layer))
        norm = dict(momentum=batch_norm_momentum, epsilon=batch_norm_epsilon)
        self.norms = nnx.List(
            [nnx.BatchNorm(c, **norm, **layer) for c in channels]
            if self.batch_norm
            else []
        )
        head_in = channels[-1]
        if self.input_size is not None:
            final = self.block_shapes(self.input_size)[-1]
            head_in *= math.prod(final) if self.flatten else 1
        self.head = nnx.Linear(
            head_in,
            num_classes,
            kernel_init=kernel_init,
            bias_init=resolve(bias_init, head_in),
            **layer,
        )

    def _convs(
        self, channels: tuple[int, ...], kernel_init: Any, bias_init: Any, layer: Any
    ) -> list[nnx.Conv]:
        d, pad = self.spatial_dims, self.padding
        pad = pad if isinstance(pad, str) else [(pad, pad)] * d
        ins = (self.in_features, *channels[:-1])
        blocks = zip(ins, channels, self.kernel_sizes, self.strides, strict=True)
        return [
            nnx.Conv(
                c_in,
                c_out,
                kernel_size=(k,) * d,
                strides=(s,) * d,
                padding=pad,
                use_bias=not self.batch_norm,
                kernel_init=kernel_init,
                bias_init=resolve(bias_init, c_in * k**d),  # fan-in: c_in k^d
                **layer,
            )
            for c_in, c_out, k, s in blocks
        ]

    def _set_geometry(
        self, num_blocks: int, spatial_dims: Any, strides: Any, padding: Any, pool: Any
    ) -> None:
        check_int("spatial_dims", spatial_dims, low=1, high=2)
        self.spatial_dims = int(spatial_dims)
        self.strides = check_per_block("strides", strides, num_blocks)
        self.padding = _check_padding(padding)
        check_bool("max_pool", pool)
        self.max_pool = bool(pool)

    def block_shapes(self, size: Sequence[int]) -> list[tuple[int, ...]]:
        """The spatial shape after each block, for inputs of spatial shape `size`.

        Raises a ValueError if a convolution's output would be empty.
        """
        shapes, shape = [], tuple(size)
        for i, (k, s) in enumerate(zip(self.kernel_sizes, self.strides, strict=True)):
            if self.padding == "SAME":
                shape = tuple(-(-n // s) for n in shape)
            else:
                p = self.padding if isinstance(self.padding, int) else 0  # VALID
                shape = tuple(max((n + 2 * p - k) // s + 1, 0) for n in shape)
            if min(shape) < 1:
                raise ValueError(
                    f"inputs of spatial shape {tuple(size)} are too small: block "
                    f"{i}'s convolution (kernel_size {k}, strides {s}, padding "
                    f"{self.padding!r}) leaves spatial shape {shape}."
                )
            if self.max_pool and min(shape) >= 2:
                shape = tuple(n // 2 for n in shape)
            shapes.append(shape)
        return shapes

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits for inputs `x` of shape `(batch, *spatial, in_features)`."""
        x = self._checked_input(x)
        self.block_shapes(x.shape[1:-1])  # no convolution left empty
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.batch_norm:
                x = self.norms[i](x)
            x = self.activation(x)
            d = self.spatial_dims
            if self.max_pool and min(x.shape[1:-1]) >= 2:
                x = nnx.max_pool(x, window_shape=(2,) * d, strides=(2,) * d)
        if self.flatten:
            return self.head(x.reshape(x.shape[0], -1))
        return self.head(jnp.mean(x, axis=tuple(range(1, x.ndim - 1))))

    def _checked_input(self, x: jax.Array) -> jax.Array:
        shape = x.shape
        if self.spatial_dims == 1 and x.ndim == 2 and self.in_features == 1:
            x = x[..., None]
        if x.ndim != self.spatial_dims + 2:
            expected = (
                "NHWC images (batch, H, W, C)"
                if self.spatial_dims == 2
                else "sequences (batch, L, C), or (batch, L) with in_features=1"
            )
            raise ValueError(f"CNN expects {expected}; got shape {shape}.")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"CNN expects {self.in_features} input channels (in_features, "
                f"the last axis); got shape {shape}."
            )
        if self.input_size is not None and x.shape[1:-1] != self.input_size:
            raise ValueError(
                f"CNN was built for inputs of spatial shape {self.input_size} "
                f"(input_size; head Linear({self.head.in_features}, "
                f"{self.head.out_features})); got inputs of shape {shape}."
            )
        return x


def _check_padding(padding: Any) -> int | str:
    if isinstance(padding, str):
        check_choice("padding", padding, ("SAME", "VALID"))
        return padding
    check_non_negative_int("padding", padding)
    return int(padding)


def _check_input_size(size: Any, spatial_dims: int) -> tuple[int, ...] | None:
    if size is None:
        return None
    if isinstance(size, str | bytes) or not isinstance(size, Sequence):
        check_positive_int("input_size", size)
        return (int(size),) * spatial_dims
    sizes = check_features("input_size", size, min_len=1)
    if len(sizes) != spatial_dims:
        raise ValueError(
            f"input_size must be an int or hold one int per spatial axis "
            f"(spatial_dims={spatial_dims}); got {size!r}."
        )
    return sizes
