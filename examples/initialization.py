"""How the initialiser sets the activation variance of a deep linear network (§8.4).

The seeds' worked example: ten linear layers of 100 units, inputs of variance 1.
Each layer multiplies the variance by m·Var(W) (m = 100 inputs), so N(0, 1)
weights reach 100^10 = 1e20 at the output, fan-in uniform shrinks it by 3 per
layer, He doubles it, while Glorot and orthogonal keep it of order 1. Sparse
(Martens, 2010; k = 15 Gaussian weights into each unit) multiplies it by k·σ².

Prints log10 of the activation variance at each depth (mean over --seeds
networks) and writes a figure.

Run from the repository root:  python -m examples.initialization [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx

import gradtransforms.init as gi
from examples.common import OneLineParser, parse_or_exit
from gradtransforms.models import DeepLinear

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DEPTH, WIDTH = 10, 100

INITIALISERS = {
    "N(0, 1)": gi.normal(1.0),
    "fan-in uniform": gi.fan_in_uniform(),
    "Glorot uniform": gi.glorot_uniform(),
    "He normal": gi.he_normal(),
    "orthogonal": gi.orthogonal(1.0),
    "sparse k=15": gi.sparse(15),
    "sparse k=15, σ=1/√15": gi.sparse(15, stddev=1.0 / math.sqrt(15)),
}

# Expected log10 variance after one layer: log10(m·Var(W)), m = 100.
EXPECTED_PER_LAYER = {
    "N(0, 1)": 2.0,
    "fan-in uniform": math.log10(1.0 / 3.0),
    "Glorot uniform": 0.0,
    "He normal": math.log10(2.0),
    "orthogonal": 0.0,
    "sparse k=15": math.log10(15.0),
    "sparse k=15, σ=1/√15": 0.0,
}


@nnx.jit
def _activations(net: DeepLinear, x: jax.Array) -> list[jax.Array]:
    return net.activations(x)


def log10_variances(init, seeds: int, batch: int) -> np.ndarray:
    """log10 of the activation variance at each depth, averaged over `seeds` nets."""
    out = np.zeros((seeds, DEPTH))
    x = jax.random.normal(jax.random.key(12345), (batch, WIDTH))
    for s in range(seeds):
        net = DeepLinear(DEPTH, WIDTH, kernel_init=init, rngs=nnx.Rngs(s))
        hs = _activations(net, x)
        out[s] = [math.log10(float(jnp.var(h))) for h in hs]
    return out.mean(axis=0)


PROG = "python -m examples.initialization"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/", help="output folder (out/)")
    parser.add_argument("--seeds", type=int, default=5, help="networks per init")
    parser.add_argument("--batch", type=int, default=1000, help="input samples")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    args = parse_or_exit(PROG, lambda: parse_args(argv))
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    table = {
        name: log10_variances(init, args.seeds, args.batch)
        for name, init in INITIALISERS.items()
    }
    header = f"{'initialiser':<22}" + "".join(f"{d:>7}" for d in range(1, DEPTH + 1))
    print("log10 activation variance by layer (ten linear layers of 100 units)")
    print(header + f"{'expected':>10}")
    for name, row in table.items():
        cells = "".join(f"{v:>7.2f}" for v in row)
        print(f"{name:<22}{cells}{DEPTH * EXPECTED_PER_LAYER[name]:>10.2f}")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    depth = np.arange(1, DEPTH + 1)
    markers = "os^vDxP"
    for i, (name, row) in enumerate(table.items()):
        ax.plot(depth, row, marker=markers[i % len(markers)], label=name)
    ax.set_xlabel("layer")
    ax.set_ylabel("log10 activation variance")
    ax.set_title("Ten linear layers of 100 units, unit-variance inputs")
    ax.set_xticks(depth)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(args.out, "initialization.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return table


if __name__ == "__main__":
    main()
