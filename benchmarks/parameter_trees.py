"""The parameter trees that `benchmarks/optimizer_step.py` steps through.

(a) one leaf of `size` floats; (b) `leaves` square leaves totalling about
`size`; (c) `leaves` leaves of 16 floats; (d) the BatchNorm MLP of the main
job (64-128-128-10); (e) a ResNet-56-like tree (3 stages x 9 basic blocks,
16/32/64 channels: 3x3 kernels and many small BatchNorm scales and biases).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def resnet_like_shapes(width: int = 16, blocks: int = 9) -> dict:
    """The leaf shapes of a ResNet-like network: `blocks` basic blocks a stage."""
    tree: dict[str, Any] = {
        "stem": {"kernel": (3, 3, 3, width), "bn": {"scale": width, "bias": width}}
    }
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for b in range(blocks):
            block = {
                "conv1": (3, 3, cin, cout),
                "bn1": {"scale": cout, "bias": cout},
                "conv2": (3, 3, cout, cout),
                "bn2": {"scale": cout, "bias": cout},
            }
            if cin != cout:
                block["proj"] = (1, 1, cin, cout)
                block["bn_proj"] = {"scale": cout, "bias": cout}
            tree[f"stage{stage}_block{b}"] = block
            cin = cout
    tree["head"] = {"kernel": (cin, 10), "bias": 10}
    return tree


def batchnorm_mlp_params() -> dict:
    """The parameters of the BatchNorm MLP 64-128-128-10, as a plain dict."""
    from flax import nnx

    from gradtransforms.models import MLP

    model = MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(0))
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def make_trees(size: int, leaves: int) -> dict[str, Any]:
    """The benchmark's parameter trees, as float32 arrays, by name."""
    side = max(1, round(math.sqrt(size / leaves)))
    shapes = {
        "(a) one leaf": {"w": (size,)},
        f"(b) {leaves} leaves": {f"w{i:04d}": (side, side) for i in range(leaves)},
        f"(c) {leaves} tiny leaves": {f"w{i:04d}": (16,) for i in range(leaves)},
        "(e) ResNet-like": resnet_like_shapes(),
    }
    key = iter(jax.random.split(jax.random.key(0), 10_000))

    def materialise(shape):
        shape = (shape,) if isinstance(shape, int) else shape
        return jax.random.normal(next(key), shape, jnp.float32)

    def is_shape(x):
        return isinstance(x, int | tuple)

    trees = {
        n: jax.tree.map(materialise, s, is_leaf=is_shape) for n, s in shapes.items()
    }
    trees["(d) BatchNorm MLP"] = jax.tree.map(jnp.asarray, batchnorm_mlp_params())
    return dict(sorted(trees.items()))
