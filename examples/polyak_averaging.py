"""Averaging the iterates of SGD with a large constant learning rate (§8.7.3).

A noisy least-squares problem in two parameters: 512 examples whose features
make the loss a rotated valley (Hessian eigenvalues about 0.92 and 0.09),
labels with noise of standard deviation 0.5, minibatches of 16. SGD with a
constant learning rate of 1.6 (ε·λmax ≈ 1.5, where 1 would step straight to
the valley floor) overshoots across the valley at every step and, pushed by
the minibatch noise, never settles: its excess loss stalls at a noise floor.
Its Polyak average, gt.chain(gt.sgd(lr), gt.polyak_average()), keeps closing
in on the optimum, and the exponential average of eq. 8.39,
gt.ema_average(0.9), smooths the bouncing over about ten steps. Training
itself is the same in all runs: the averages are pass-through
transformations, and the script checks that the raw iterates coincide.

Prints the excess loss f(θ) − f(θ*) and the distance ‖θ − θ*‖ of each after
the last step, and the mean excess loss over the last quarter of the steps;
writes polyak_averaging.png (the paths over the loss contours, all steps and
the last quarter, and the excess loss against the step on log scales). Every
epoch is one lax.scan over minibatch indices from gt.training.epoch_indices,
and the whole run one jit-compiled scan over epochs.

Run from the repository root:  python -m examples.polyak_averaging [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import gradtransforms as gt
from examples.common import OneLineParser, parse_or_exit

matplotlib.use("Agg")
import matplotlib.pyplot as plt

NUM_EXAMPLES = 512
SCALES = (1.0, 0.3)  # feature scales: the Hessian's eigenvalues are ~ 1 and 0.09
ANGLE = np.deg2rad(35.0)  # rotation of the valley
W_TRUE = (1.0, -1.0)
W_INIT = (-1.5, -3.5)
NOISE = 0.5


PROG = "python -m examples.polyak_averaging"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--out", default="out", help="output folder (out)")
    parser.add_argument("--epochs", type=int, default=30, help="passes over data")
    parser.add_argument("--batch-size", type=int, default=16, help="minibatch size")
    parser.add_argument("--lr", type=float, default=1.6, help="constant SGD rate")
    parser.add_argument("--decay", type=float, default=0.9, help="EMA decay α")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    if not 1 <= args.batch_size <= NUM_EXAMPLES:
        parser.error(
            f"--batch-size must be in [1, {NUM_EXAMPLES}]; got {args.batch_size}"
        )
    if not args.lr > 0:
        parser.error(f"--lr must be > 0; got {args.lr}")
    if not 0 <= args.decay < 1:
        parser.error(f"--decay must be in [0, 1); got {args.decay}")
    return args


def make_problem(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Features with a rotated, ill-conditioned covariance and noisy labels."""
    key_x, key_noise = jax.random.split(key)
    c, s = np.cos(ANGLE), np.sin(ANGLE)
    rotation = jnp.array([[c, -s], [s, c]], jnp.float32)
    z = jax.random.normal(key_x, (NUM_EXAMPLES, 2))
    x = (z * jnp.array(SCALES)[None, :]) @ rotation.T
    y = x @ jnp.array(W_TRUE) + NOISE * jax.random.normal(key_noise, (NUM_EXAMPLES,))
    return x, y


def loss(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Half the mean squared error: its Hessian is xᵀx / n."""
    return 0.5 * jnp.mean((x @ w - y) ** 2)


def train(tx, x, y, key, epochs: int, batch_size: int):
    """Minibatch SGD through `tx`; returns the iterates and their average, per step."""

    def epoch(carry, epoch_key):
        indices, _ = gt.training.epoch_indices(epoch_key, NUM_EXAMPLES, batch_size)

        def step(carry, idx):
            w, state = carry
            grads = jax.grad(loss)(w, x[idx], y[idx])
            updates, state = tx.update(grads, state, w)
            w = gt.apply_updates(w, updates)
            return (w, state), (w, gt.averaged_params(state))

        return jax.lax.scan(step, carry, indices)

    w0 = jnp.array(W_INIT)
    keys = jax.random.split(key, epochs)
    _, (iterates, averages) = jax.lax.scan(epoch, (w0, tx.init(w0)), keys)
    return iterates.reshape(-1, 2), averages.reshape(-1, 2)


def experiment(args: argparse.Namespace) -> dict[str, jax.Array]:
    """The problem, its solution and both averaged runs, in one compiled call."""

    sgd = gt.sgd(args.lr)
    with_polyak = gt.chain(sgd, gt.polyak_average())
    with_ema = gt.chain(sgd, gt.ema_average(args.decay))

    @jax.jit
    def run(key):
        key_data, key_batches = jax.random.split(key)
        x, y = make_problem(key_data)
        w_star = jnp.linalg.solve(x.T @ x, x.T @ y)
        common = (x, y, key_batches, args.epochs, args.batch_size)
        raw, polyak = train(with_polyak, *common)
        raw_again, ema = train(with_ema, *common)
        return {
            "x": x,
            "y": y,
            "w_star": w_star,
            "f_star": loss(w_star, x, y),
            "paths": jnp.stack([raw, polyak, ema]),
            "same": jnp.array_equal(raw, raw_again),
        }

    return run(jax.random.key(args.seed))


@jax.jit
def excess_loss(w: jax.Array, x: jax.Array, y: jax.Array, f_star: jax.Array):
    """f(w) − f(θ*) for a batch of parameter vectors w of shape (..., 2)."""
    flat = w.reshape(-1, 2)
    return (jax.vmap(loss, (0, None, None))(flat, x, y) - f_star).reshape(w.shape[:-1])


def print_table(args, paths: dict, excess: dict, eigenvalues, w_star, same) -> None:
    """Excess loss and distance to θ* after the last step, and over the last quarter."""
    steps = next(iter(paths.values())).shape[0]
    print(
        f"least squares, {NUM_EXAMPLES} examples, Hessian eigenvalues "
        f"{eigenvalues[1]:.3f} and {eigenvalues[0]:.3f}; {steps} SGD steps of "
        f"batch {args.batch_size} ({args.epochs} epochs), lr × λmax = "
        f"{args.lr * eigenvalues[1]:.2f}"
    )
    width = max(map(len, paths)) + 2
    quarter = slice(3 * steps // 4, None)
    print(
        f"{'':<{width}}{'f - f*':>10}{'|θ - θ*|':>10}   mean f - f* over the"
        f"\n{'method':<{width}}{'(last step)':>20}   last quarter of steps"
    )
    for name, p in paths.items():
        distance = float(np.linalg.norm(p[-1] - w_star))
        print(
            f"{name:<{width}}{excess[name][-1]:>10.2e}{distance:>10.2e}"
            f"   {excess[name][quarter].mean():.2e}"
        )
    print(f"raw iterates identical with either average: {same}")


STYLES = (
    {"color": "0.55", "lw": 0.5},
    {"color": "tab:blue", "lw": 1.8},
    {"color": "tab:orange", "lw": 1.0},
)


def plot_paths(ax, title: str, first: int, half: float, paths: dict, r: dict):
    """The paths from step `first` on, over the contours, in a square around θ*."""
    x, y, f_star = r["x"], r["y"], r["f_star"]
    w_star = np.asarray(r["w_star"])
    g1, g2 = np.meshgrid(
        np.linspace(w_star[0] - half, w_star[0] + half, 160),
        np.linspace(w_star[1] - half, w_star[1] + half, 160),
    )
    grid = jnp.asarray(np.stack([g1, g2], axis=-1), jnp.float32)
    f_grid = np.asarray(excess_loss(grid, x, y, f_star))
    levels = float(f_grid.max()) * np.linspace(0.05, 0.95, 9) ** 2
    ax.contour(g1, g2, f_grid.reshape(g1.shape), levels=levels, colors="0.8")
    for (name, p), style in zip(paths.items(), STYLES, strict=True):
        p = p[first:]
        if first == 0:
            p = np.concatenate([[W_INIT], p])
        ax.plot(p[:, 0], p[:, 1], label=name, **style)
    if first == 0:
        ax.plot(*W_INIT, "ko", ms=4, label="start")
    ax.plot(*w_star, "r+", ms=14, mew=2, zorder=5, label="optimum θ*")
    ax.set_xlim(w_star[0] - half, w_star[0] + half)
    ax.set_ylim(w_star[1] - half, w_star[1] + half)
    ax.set_aspect("equal")
    ax.set_xlabel("θ₁")
    ax.set_ylabel("θ₂")
    ax.set_title(title)


def plot(args, paths: dict, excess: dict, r: dict, path: str) -> None:
    """The paths (all steps; the last quarter) and the excess loss per step."""
    fig, (ax_path, ax_zoom, ax_loss) = plt.subplots(1, 3, figsize=(15, 4.6))
    w_star = np.asarray(r["w_star"])
    raw = next(iter(paths.values()))
    steps = raw.shape[0]
    tail = 3 * steps // 4
    # Half-widths of the square windows: every point, and most of the tail.
    spread = np.max(np.abs(raw - w_star), axis=1)
    whole = 1.05 * max(spread.max(), *np.abs(W_INIT - w_star))
    plot_paths(ax_path, "All steps", 0, whole, paths, r)
    zoom = 1.1 * np.quantile(spread[tail:], 0.98)
    plot_paths(ax_zoom, f"Steps {tail + 1}–{steps}, near θ*", tail, zoom, paths, r)
    ax_path.legend(fontsize=8, loc="upper left")

    t = np.arange(1, steps + 1)
    for (name, e), style in zip(excess.items(), STYLES, strict=True):
        ax_loss.plot(t, np.maximum(e, 1e-12), label=name, **style)
    ax_loss.set_xscale("log")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("excess loss f(θ) − f(θ*)")
    ax_loss.set_title(f"Constant lr {args.lr:g}, batch {args.batch_size}")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    args = parse_or_exit(PROG, lambda: parse_args(argv))
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    r = experiment(args)
    x, y = r["x"], r["y"]
    eigenvalues = np.linalg.eigvalsh(np.asarray(x.T @ x) / NUM_EXAMPLES)
    names = [
        f"SGD iterate (lr={args.lr:g})",
        "Polyak average",
        f"EMA average (decay {args.decay:g})",
    ]
    paths = dict(zip(names, np.asarray(r["paths"]), strict=True))
    excess = dict(
        zip(names, np.asarray(excess_loss(r["paths"], x, y, r["f_star"])), strict=True)
    )
    w_star = np.asarray(r["w_star"])
    print_table(args, paths, excess, eigenvalues, w_star, bool(r["same"]))
    path = os.path.join(args.out, "polyak_averaging.png")
    plot(args, paths, excess, r, path)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return paths


if __name__ == "__main__":
    main()
