"""Skip connections keep a deep network trainable where the plain one stalls (§8.7.5).

The plain network is `models.MLP` without BatchNorm: `depth` Linear layers,
64 → width → ... → width → 10, ReLU. The residual network is
`models.ResidualMLP` with the same `depth` Linear layers of the same shapes
(an input projection, depth − 2 blocks h ← h + (f(h) W + b) / √(depth − 2), an
output layer), hence the same number of parameters. Both use the default
He-normal kernels and zero biases, and both are trained on scikit-learn's 8x8
digits with the same optimizer, learning rate, minibatches and number of
steps (SGD + momentum 0.9 at 0.01 by default; `--optimizer adam` for Adam at
1e-3). Each (network, depth) is one jit-compiled `lax.scan` over the steps,
`vmap`-ed over `--seeds` initialisations.

Prints, per depth and network, the final loss on the whole training set and
the validation accuracy (median over the seeds), and writes
`skip_connections.png` (training-loss curves; final loss against depth) to
`--out`.

Run from the repository root:

    python -m examples.skip_connections
    python -m examples.skip_connections --optimizer adam --out out/
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from examples.common import (
    OneLineParser,
    UsageError,
    exit_status,
    non_negative_int,
    positive_float,
    positive_int,
)

NETWORKS = ("plain", "residual")
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}
OPTIMIZER_NAMES = {"sgd": "SGD + momentum 0.9", "adam": "Adam"}


def _depth(text: str) -> int:
    value = positive_int(text)
    if value < 3:
        raise argparse.ArgumentTypeError(
            f"a depth must be >= 3 Linear layers (one residual block), got {value}"
        )
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.skip_connections",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--out", default="docs/figures", help="output folder (docs/figures)"
    )
    parser.add_argument(
        "--depths",
        type=_depth,
        nargs="+",
        default=[4, 16, 64],
        help="numbers of Linear layers (4 16 64)",
    )
    parser.add_argument("--width", type=positive_int, default=32, help="units (32)")
    parser.add_argument(
        "--steps", type=positive_int, default=1000, help="training steps (1000)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="learning rate (0.01 for sgd, 1e-3 for adam)",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=3, help="initialisations (3)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="first seed (0)"
    )
    args = parser.parse_args(argv)
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    return args


def make_model(network: str, depth: int, width: int, seed: int) -> Any:
    """The plain `MLP` or the `ResidualMLP` with `depth` Linear layers."""
    from flax import nnx

    from gradtransforms.models import MLP, ResidualMLP

    rngs = nnx.Rngs(seed)
    if network == "plain":
        features = (64, *([width] * (depth - 1)), 10)
        return MLP(features, batch_norm=False, rngs=rngs)
    return ResidualMLP(64, width, 10, num_blocks=depth - 2, rngs=rngs)


def make_trainer(
    make: Callable[[int], Any], seeds: Sequence[int], tx: Any, data: Any
) -> Callable[[Any], tuple[Any, Any, Any]]:
    """Stacked initial parameters and a jitted, seed-vmapped `train(indices)`.

    `train(indices)` takes `(seeds, steps, batch)` example indices and returns
    the minibatch losses `(seeds, steps)`, the final loss on the whole training
    set and the validation accuracy `(seeds,)`.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import gradtransforms as gt

    models = [make(s) for s in seeds]
    graphdef = nnx.graphdef(models[0])
    params = jax.tree.map(
        lambda *leaves: jnp.stack(leaves), *[nnx.state(m, nnx.Param) for m in models]
    )
    arrays = tuple(
        jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_valid, data.y_valid)
    )

    from gradtransforms.models import cross_entropy

    def loss_fn(params, x, y):
        return cross_entropy(nnx.merge(graphdef, params, copy=True)(x), y)

    def train_one(params, indices, x_train, y_train, x_valid, y_valid):
        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(
                params, x_train[idx], y_train[idx]
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (gt.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), indices)
        logits = nnx.merge(graphdef, params, copy=True)(x_valid)
        accuracy = jnp.mean(
            (jnp.argmax(logits, axis=-1) == y_valid).astype(jnp.float32)
        )
        return losses, loss_fn(params, x_train, y_train), accuracy

    # The data are arguments, not constants baked into the compiled program.
    train = jax.jit(jax.vmap(train_one, in_axes=(0, 0, None, None, None, None)))
    return lambda indices: train(params, indices, *arrays)


def minibatch_indices(seed: int, num_examples: int, batch_size: int, steps: int):
    """`(steps, batch_size)` indices: shuffled epochs, cut after `steps` batches."""
    import jax

    import gradtransforms as gt

    per_epoch = num_examples // batch_size
    keys = jax.random.split(jax.random.key(seed), -(-steps // per_epoch))
    idx = jax.vmap(lambda k: gt.training.epoch_indices(k, num_examples, batch_size))(
        keys
    )[0]
    return idx.reshape(-1, batch_size)[:steps]


def run(args: argparse.Namespace) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    import jax
    import matplotlib

    import gradtransforms as gt
    from gradtransforms.models import load_digits

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    data = load_digits(flatten=True)
    n_train = len(data.y_train)
    if args.batch_size > n_train:
        raise UsageError(
            f"--batch-size ({args.batch_size}) exceeds the {n_train} training examples"
        )
    seeds = [args.seed + s for s in range(args.seeds)]
    # The same minibatches for both networks (one sequence per seed).
    indices = jax.numpy.stack(
        [
            minibatch_indices(10_000 + s, n_train, args.batch_size, args.steps)
            for s in seeds
        ]
    )
    if args.optimizer == "sgd":
        tx = gt.sgd(args.lr, momentum=0.9)
    else:
        tx = gt.adam(args.lr)

    results: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for depth in args.depths:
        for network in NETWORKS:
            train = make_trainer(
                lambda s, n=network, d=depth: make_model(n, d, args.width, s),
                seeds,
                tx,
                data,
            )
            losses, final, accuracy = (np.asarray(a) for a in train(indices))
            results[network, depth] = {
                "losses": losses,
                "final_loss": final,
                "accuracy": accuracy,
            }

    opt = OPTIMIZER_NAMES[args.optimizer]
    print(
        f"Digits, width {args.width}, He-normal init, {opt} at lr {args.lr:g}, "
        f"{args.steps} steps of batch {args.batch_size}; "
        f"median over {args.seeds} seed(s)"
    )
    print(
        "| depth | plain train loss | plain valid acc "
        "| residual train loss | residual valid acc |"
    )
    print("|---:|---:|---:|---:|---:|")
    for depth in args.depths:
        cells = []
        for network in NETWORKS:
            r = results[network, depth]
            loss = float(np.median(r["final_loss"]))
            cells.append(f"{loss:.4f}" if math.isfinite(loss) else "diverged")
            cells.append(f"{float(np.median(r['accuracy'])):.3f}")
        print(f"| {depth} | " + " | ".join(cells) + " |")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "skip_connections.png")
    plot(results, args, path, plt)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return results


def plot(results, args, path: str, plt: Any) -> None:
    """Training-loss curves per depth; final training loss against depth."""
    fig, (ax_curve, ax_depth) = plt.subplots(1, 2, figsize=(11, 4.2))
    window = max(1, args.steps // 50)
    for i, depth in enumerate(args.depths):
        for network, style in (("plain", "--"), ("residual", "-")):
            losses = results[network, depth]["losses"]
            curve = np.median(losses, axis=0)
            n = len(curve) // window * window
            smooth = curve[:n].reshape(-1, window).mean(axis=1)
            ax_curve.plot(
                (np.arange(len(smooth)) + 0.5) * window,
                np.where(np.isfinite(smooth), smooth, np.nan),
                style,
                color=f"C{i}",
                label=f"{network}, {depth} layers",
            )
    for network, style in (("plain", "--"), ("residual", "-")):
        ax_depth.plot(
            args.depths,
            [np.median(results[network, d]["final_loss"]) for d in args.depths],
            style,
            marker="o",
            label=network,
        )
    ax_curve.set_yscale("log")
    ax_curve.set_xlabel("step")
    ax_curve.set_ylabel(f"minibatch loss (mean of {window} steps)")
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8, ncol=2)
    ax_depth.set_xscale("log", base=2)
    ax_depth.set_yscale("log")
    ax_depth.set_xticks(args.depths, [str(d) for d in args.depths])
    ax_depth.set_xlabel("depth (Linear layers)")
    ax_depth.set_ylabel("final training loss")
    ax_depth.grid(alpha=0.3)
    ax_depth.legend()
    fig.suptitle(
        f"Plain vs residual MLP of width {args.width} on digits "
        f"({OPTIMIZER_NAMES[args.optimizer]}, lr {args.lr:g}, {args.steps} steps)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status("skip_connections", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
