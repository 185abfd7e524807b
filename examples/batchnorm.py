"""Batch normalisation lets the same MLP train at much larger learning rates (§8.7.1).

The same MLP (64-128-128-10, ReLU, He-normal init) with and without BatchNorm,
trained on scikit-learn's 8x8 digits with SGD + momentum 0.9 at several
learning rates. Each run is one jit-compiled function: a `lax.scan` over epochs
whose body shuffles the training set and `lax.scan`s the minibatch steps; the
step is pure (`nnx.split` once, `nnx.merge` inside), and the learning rate is a
traced argument, so each network compiles once for all rates.

Prints the final training loss and validation accuracy per run and writes a
figure (validation accuracy against learning rate; training-loss curves).

Run from the repository root:  python -m examples.batchnorm [--out DIR]
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

import gradtransforms as gt
from examples.common import (
    OneLineParser,
    accuracy,
    batchnorm_epoch,
    parse_or_exit,
    split_for_training,
)
from gradtransforms.models import MLP, load_digits

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FEATURES = (64, 128, 128, 10)


def make_trainer(batch_norm: bool, data, *, epochs: int, batch_size: int, seed: int):
    """A jitted `train(lr) -> (train_loss[epochs], valid_acc[epochs])`."""
    model = MLP(FEATURES, batch_norm=batch_norm, rngs=nnx.Rngs(seed))
    graphdef, params, batch_stats = split_for_training(model)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_valid, y_valid = jnp.asarray(data.x_valid), jnp.asarray(data.y_valid)
    steps = len(x_train) // batch_size

    @jax.jit
    def train(learning_rate):
        tx = gt.sgd(learning_rate, momentum=0.9)
        train_epoch = batchnorm_epoch(graphdef, tx)

        def epoch(carry, key):
            perm = jax.random.permutation(key, len(x_train))[: steps * batch_size]
            xb = x_train[perm].reshape(steps, batch_size, -1)
            yb = y_train[perm].reshape(steps, batch_size)
            carry, loss = train_epoch(carry, (xb, yb))
            params, batch_stats, _ = carry
            return carry, (
                loss,
                accuracy(graphdef, params, batch_stats, x_valid, y_valid),
            )

        keys = jax.random.split(jax.random.key(seed + 1), epochs)
        carry = (params, batch_stats, tx.init(params))
        _, (losses, accs) = jax.lax.scan(epoch, carry, keys)
        return losses, accs

    return train


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.batchnorm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="out/", help="output folder (out/)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--lrs", type=float, nargs="+", default=[0.01, 0.1, 0.3, 1.0, 3.0]
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def print_table(results: dict, args: argparse.Namespace) -> None:
    """Final training loss and validation accuracy per learning rate and network."""
    print(
        f"MLP {'-'.join(map(str, FEATURES))} on digits, SGD momentum 0.9, "
        f"{args.epochs} epochs of batch {args.batch_size}"
    )
    print(
        f"{'lr':>6} | {'plain loss':>11} {'plain acc':>10} | "
        f"{'BN loss':>11} {'BN acc':>10}"
    )
    for lr in args.lrs:
        cells = []
        for bn in (False, True):
            losses, accs = results[bn, lr]
            loss = losses[-1]
            cells.append(
                f"{loss:>11.4f} {accs[-1]:>10.3f}"
                if math.isfinite(loss)
                else f"{'diverged':>11} {accs[-1]:>10.3f}"
            )
        print(f"{lr:>6g} | {cells[0]} | {cells[1]}")


def plot(results: dict, args: argparse.Namespace, path: str) -> None:
    """Final validation accuracy against the learning rate; training-loss curves."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for bn, style in ((False, "--"), (True, "-")):
        label = "BatchNorm" if bn else "plain"
        ax_acc.plot(
            args.lrs,
            [results[bn, lr][1][-1] for lr in args.lrs],
            style,
            marker="o",
            label=label,
        )
        for i, lr in enumerate(args.lrs):
            losses = results[bn, lr][0]
            ax_loss.plot(
                np.arange(1, len(losses) + 1),
                np.where(np.isfinite(losses), losses, np.nan),
                style,
                color=f"C{i}",
                label=f"{label}, lr={lr:g}",
            )
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel("learning rate")
    ax_acc.set_ylabel("final validation accuracy")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend()
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (epoch mean)")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=7, ncol=2)
    fig.suptitle("Same MLP with and without BatchNorm (digits, SGD + momentum 0.9)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_or_exit("python -m examples.batchnorm", lambda: parse_args(argv))
    os.makedirs(args.out, exist_ok=True)

    start = time.perf_counter()
    data = load_digits(flatten=True)
    results = {}
    for bn in (False, True):
        train = make_trainer(
            bn, data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed
        )
        for lr in args.lrs:
            losses, accs = train(jnp.float32(lr))
            results[bn, lr] = (np.asarray(losses), np.asarray(accs))
    print_table(results, args)
    path = os.path.join(args.out, "batchnorm.png")
    plot(results, args, path)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return results


if __name__ == "__main__":
    main()
