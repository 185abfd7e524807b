"""Compare the textbook's optimizers on real data: the main job of gradtransforms.

Trains the BatchNorm MLP of `models/` on scikit-learn's handwritten digits (no
download; or any `.npz` with `x`/`y` via `--dataset`) with SGD, momentum,
Nesterov momentum, AdaGrad, RMSProp, RMSProp with Nesterov momentum and Adam
(Algorithms 8.1–8.7), and evaluates Adam's Polyak and EMA averages of the
iterates (§8.7.3) too. Every optimizer starts from the same initial weights
and sees the same minibatches; each epoch is one compiled `lax.scan`.

Prints a table (final training loss, validation accuracy, steps per second,
wall time), and writes to `--out` the figure `compare_optimizers.png` (training
loss and validation accuracy per epoch) and the curves as
`compare_optimizers.json`.

Run from the repository root:

    python -m examples.compare_optimizers
    python -m examples.compare_optimizers --optimizers adam,sgd --epochs 5
    python -m examples.compare_optimizers --dataset mnist.npz --out results
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from examples.common import (
    OneLineParser,
    UsageError,
    accuracy,
    batchnorm_epoch,
    exit_status,
    positive_int,
    split_for_training,
)

OPTIMIZER_NAMES = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "rmsprop_nesterov",
    "adam",
)
AVERAGES = ("adam_polyak", "adam_ema")


def _optimizer_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIMIZER_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(OPTIMIZER_NAMES)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.compare_optimizers",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--optimizers",
        type=_optimizer_list,
        default=list(OPTIMIZER_NAMES),
        help=f"comma-separated subset of: {','.join(OPTIMIZER_NAMES)}",
    )
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out", help="output folder")
    parser.add_argument(
        "--dataset",
        default=None,
        help="an .npz with arrays x (examples first) and y (integer labels); "
        "default: scikit-learn's digits",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the bar")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------
# Data


@dataclasses.dataclass(frozen=True)
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    num_classes: int
    name: str


def load_data(path: str | None, seed: int) -> Data:
    from gradtransforms import models

    if path is None:
        split = models.load_digits(validation_fraction=0.2, seed=seed, flatten=True)
        return Data(*split, num_classes=10, name="digits (scikit-learn)")
    x, y = models.load_npz(path)
    if len(x) < 10:
        raise models.DataError(f"{path}: needs at least 10 examples; got {len(x)}.")
    x = x.reshape(len(x), -1)
    scale = float(np.abs(x).max())
    x = x / scale if scale > 1 else x
    order = np.random.default_rng(seed).permutation(len(x))
    n_valid = max(1, round(0.2 * len(x)))
    valid, train = order[:n_valid], order[n_valid:]
    return Data(
        x[train], y[train], x[valid], y[valid], int(y.max()) + 1, os.fspath(path)
    )


# ----------------------------------------------------------------------------
# Optimizers


def build_optimizers(names: Sequence[str], total_steps: int) -> dict[str, Any]:
    """Each optimizer with settings that suit it on this problem.

    SGD and the momentum methods use the linear decay of eq. 8.14 from
    ε₀ to ε_τ = ε₀/100 over the whole run (τ = total steps), as the text
    advises; the adaptive methods use a constant rate. Adam carries a Polyak
    average of its iterates over the second half of the run and an EMA
    average (α = 0.99) at the end of its chain.
    """
    import gradtransforms as gt

    def decay(eps0: float) -> gt.Schedule:
        return gt.linear_decay_schedule(eps0, eps0 / 100, total_steps)

    recipes: dict[str, Callable[[], Any]] = {
        "sgd": lambda: gt.sgd(decay(0.2)),
        "momentum": lambda: gt.sgd(decay(0.05), momentum=0.9),
        "nesterov": lambda: gt.sgd(decay(0.05), momentum=0.9, nesterov=True),
        "adagrad": lambda: gt.adagrad(0.05),
        "rmsprop": lambda: gt.rmsprop(1e-3),
        "rmsprop_nesterov": lambda: gt.rmsprop(1e-3, momentum=0.9, nesterov=True),
        "adam": lambda: gt.chain(
            gt.adam(2e-3),
            gt.polyak_average(start_step=total_steps // 2),
            gt.ema_average(0.99),
        ),
    }
    return {name: recipes[name]() for name in names}


# ----------------------------------------------------------------------------
# Training


@dataclasses.dataclass
class Result:
    train_loss: list[float] = dataclasses.field(default_factory=list)
    valid_accuracy: list[float] = dataclasses.field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0
    compile_seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds else float("nan")


def _make_model(data: Data, seed: int):
    from flax import nnx

    from gradtransforms import models

    features = (data.x_train.shape[1], 128, 128, data.num_classes)
    return models.MLP(features, batch_norm=True, rngs=nnx.Rngs(seed))


def train_one(tx, data: Data, args, on_epoch: Callable[[], None]) -> tuple[Result, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import gradtransforms as gt

    model = _make_model(data, args.seed)
    graphdef, params, batch_stats = split_for_training(model)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_valid, y_valid = jnp.asarray(data.x_valid), jnp.asarray(data.y_valid)
    n = len(data.x_train)
    batch_size = min(args.batch_size, n)
    train_epoch = batchnorm_epoch(
        graphdef,
        tx,
        batch=lambda idx: (x_train[idx], y_train[idx]),
        loss=optax.softmax_cross_entropy_with_integer_labels,
    )

    def epoch(carry, key):
        idx, _ = gt.training.epoch_indices(key, n, batch_size, drop_remainder=True)
        return train_epoch(carry, idx)

    carry = (params, batch_stats, tx.init(params))
    run_epoch = jax.jit(epoch, donate_argnums=0)
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    run_epoch = run_epoch.lower(carry, key).compile()
    result = Result(compile_seconds=time.perf_counter() - start)
    for e in range(args.epochs):
        start = time.perf_counter()
        carry, loss = run_epoch(carry, jax.random.fold_in(key, e))
        loss = float(loss)  # waits for the epoch to finish
        result.train_seconds += time.perf_counter() - start
        result.steps += n // batch_size
        result.train_loss.append(loss)
        params, batch_stats, _ = carry
        result.valid_accuracy.append(
            float(accuracy(graphdef, params, batch_stats, x_valid, y_valid))
        )
        on_epoch()
    return result, (graphdef, carry, x_train, y_train, x_valid, y_valid)


def evaluate_average(average, graphdef, carry, x_train, y_train, x_valid, y_valid):
    """Validation accuracy and training loss of averaged weights.

    BatchNorm statistics belong to the weights that produced them, so they are
    recomputed for the average from one full pass over the training set (as
    stochastic weight averaging does).
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    params, batch_stats, _ = carry
    average = jax.tree.map(lambda a, p: a.astype(p.dtype), average, params)
    model = nnx.merge(graphdef, average, batch_stats, copy=True)
    model.train()
    for norm in model.norms:
        norm.momentum = 0.0  # running statistics := full-training-set statistics
    model(x_train)
    model.eval()
    logits = model(x_train)
    loss = float(
        optax.softmax_cross_entropy_with_integer_labels(logits, y_train).mean()
    )
    accuracy = float(jnp.mean(jnp.argmax(model(x_valid), -1) == y_valid))
    return loss, accuracy


# ----------------------------------------------------------------------------
# Report


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| optimizer | final train loss | valid accuracy | steps/s | train s "
        "| compile s |\n|---|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for r in rows:
        timing = (
            f"{r['steps_per_second']:.0f} | {r['train_seconds']:.2f} | "
            f"{r['compile_seconds']:.2f}"
            if "steps_per_second" in r
            else "(Adam's run) | | "
        )
        lines.append(
            f"| {r['name']} | {r['train_loss']:.4f} | {r['valid_accuracy']:.4f} | "
            f"{timing} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Result], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, res in results.items():
        epochs = np.arange(1, len(res.train_loss) + 1)
        ax_loss.plot(epochs, res.train_loss, label=name)
        ax_acc.plot(epochs, res.valid_accuracy, label=name)
    ax_loss.set(xlabel="epoch", ylabel="training loss (minibatch mean)", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy")
    ax_acc.set_ylim(top=1.0)
    ax_loss.grid(alpha=0.3)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tqdm import tqdm

    data = load_data(args.dataset, args.seed)
    steps_per_epoch = len(data.x_train) // min(args.batch_size, len(data.x_train))
    optimizers = build_optimizers(args.optimizers, steps_per_epoch * args.epochs)
    os.makedirs(args.out, exist_ok=True)
    results: dict[str, Result] = {}
    rows = []
    bar = tqdm(
        total=len(optimizers) * args.epochs,
        unit="epoch",
        disable=args.no_progress,
        file=sys.stderr,
    )
    wall = time.perf_counter()
    for name, tx in optimizers.items():
        bar.set_description(name)
        res, trained = train_one(tx, data, args, lambda: bar.update(1))
        results[name] = res
        rows.append(
            {
                "name": name,
                "train_loss": res.train_loss[-1],
                "valid_accuracy": res.valid_accuracy[-1],
                "steps_per_second": res.steps_per_second,
                "train_seconds": res.train_seconds,
                "compile_seconds": res.compile_seconds,
            }
        )
        if name == "adam":
            opt_state = trained[1][2]
            for label, average in (
                ("adam_polyak", opt_state[1].average),
                ("adam_ema", opt_state[2].average),
            ):
                loss, acc = evaluate_average(average, *trained)
                rows.append({"name": label, "train_loss": loss, "valid_accuracy": acc})
    bar.close()
    total = time.perf_counter() - wall
    table = format_table(rows)
    print(
        f"\n{data.name}: {len(data.x_train)} training / {len(data.x_valid)} "
        f"validation examples, {args.epochs} epochs, batch {args.batch_size}\n"
    )
    print(table)
    print(f"\ntotal wall time {total:.1f} s")
    plot(results, os.path.join(args.out, "compare_optimizers.png"), data.name)
    with open(os.path.join(args.out, "compare_optimizers.json"), "w") as f:
        json.dump(
            {
                "dataset": data.name,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "seed": args.seed,
                "curves": {
                    name: {
                        "train_loss": r.train_loss,
                        "valid_accuracy": r.valid_accuracy,
                    }
                    for name, r in results.items()
                },
                "table": rows,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.out}/compare_optimizers.png and compare_optimizers.json")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    # A data file that cannot be read raises models.DataError, a ValueError.
    return exit_status(
        "compare_optimizers",
        lambda: run(parse_args(argv)),
        errors=(UsageError, ValueError),
    )


if __name__ == "__main__":
    sys.exit(main())
