"""Greedy supervised pretraining vs training the same deep MLP from scratch (§8.7.4).

The network is `models.MLP` (64 → 32 → ... → 32 → 10, `--hidden` hidden
layers of `--width` ReLU units, no BatchNorm, He-normal init) on
scikit-learn's 8x8 digits. Methods, all with the same optimizer (SGD +
momentum 0.9 at lr 0.01 by default) and the same total number of minibatch
steps, hidden × stage steps + fine-tuning steps:

* scratch: `models.fit` of a freshly initialised network for all the steps;
* greedy (frozen): `models.greedy_pretrain(freeze=True)`, Figure 8.7: each
  stage trains one new hidden layer and a new output layer on top of the
  fixed earlier layers, then the whole network is fine-tuned;
* greedy (joint): the same with `freeze=False`: every stage also trains the
  earlier layers.

The table gives, per method, the loss on the whole training set and the
validation accuracy at the end (and, for the greedy methods, before the
fine-tuning), as the median and range over `--seeds` seeds. The figure
`pretraining.png` (in `--out`) shows the minibatch loss against the step.

Run from the repository root:

    python -m examples.pretraining
    python -m examples.pretraining --hidden 3 --stage-steps 100 --out out/
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
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

METHODS = ("scratch", "greedy (frozen)", "greedy (joint)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.pretraining", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", default="docs/figures", help="output folder (docs/figures)"
    )
    parser.add_argument(
        "--hidden", type=positive_int, default=7, help="hidden layers (7)"
    )
    parser.add_argument("--width", type=positive_int, default=32, help="units (32)")
    parser.add_argument(
        "--stage-steps", type=positive_int, default=200, help="steps per stage (200)"
    )
    parser.add_argument(
        "--finetune-steps",
        type=non_negative_int,
        default=600,
        help="fine-tuning steps (600)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument(
        "--lr", type=positive_float, default=0.01, help="SGD learning rate (0.01)"
    )
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds (5)")
    parser.add_argument("--no-joint", action="store_true", help="skip greedy (joint)")
    return parser.parse_args(argv)


def train_methods(
    args: argparse.Namespace, data: Any, features: tuple[int, ...], total: int
) -> dict[str, dict[str, Any]]:
    """Every method for every seed: final and pretrained (loss, accuracy), curves."""
    import jax.numpy as jnp
    from flax import nnx

    import gradtransforms as gt
    from gradtransforms import models

    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    tx = gt.sgd(args.lr, momentum=0.9)  # one object: compiled loops are reused

    def evaluate(model) -> tuple[float, float]:
        loss = float(models.cross_entropy(model(x), y))
        logits = model(jnp.asarray(data.x_valid))
        accuracy = float(jnp.mean(jnp.argmax(logits, axis=-1) == data.y_valid))
        return loss, accuracy

    methods = METHODS[:2] if args.no_joint else METHODS
    results: dict[str, dict[str, Any]] = {
        m: {"final": [], "pretrained": [], "curves": []} for m in methods
    }
    for seed in range(args.seeds):
        scratch = models.MLP(features, batch_norm=False, rngs=nnx.Rngs(seed))
        model, losses = models.fit(
            scratch,
            x,
            y,
            optimizer=tx,
            steps=total,
            batch_size=args.batch_size,
            key=seed,
        )
        results["scratch"]["final"].append(evaluate(model))
        results["scratch"]["curves"].append(np.asarray(losses))
        for method in methods[1:]:
            result = models.greedy_pretrain(
                features,
                x,
                y,
                optimizer=tx,
                stage_steps=args.stage_steps,
                finetune_steps=args.finetune_steps,
                batch_size=args.batch_size,
                freeze=method == "greedy (frozen)",
                key=seed,
            )
            results[method]["final"].append(evaluate(result.model))
            results[method]["pretrained"].append(evaluate(result.stages[-1]))
            results[method]["curves"].append(
                np.concatenate(
                    [*map(np.asarray, result.stage_losses), result.finetune_losses]
                )
            )
    return results


def print_table(
    results: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    features: tuple[int, ...],
    total: int,
) -> None:
    """Per method, the training loss and validation accuracy over the seeds."""
    print(
        f"MLP {features[0]}-({args.width} x {args.hidden})-{features[-1]} on digits, "
        f"SGD + momentum 0.9 at lr "
        f"{args.lr:g}, batch {args.batch_size}, {total} steps per method "
        f"(greedy: {args.hidden} stages x {args.stage_steps} + "
        f"{args.finetune_steps} fine-tuning); median [min, max] over "
        f"{args.seeds} seed(s)"
    )
    print("| method | train loss | valid accuracy |")
    print("|---|---:|---:|")
    for method, result in results.items():
        rows = [(method, result["final"])]
        if result["pretrained"]:
            rows.insert(0, (f"{method}, before fine-tuning", result["pretrained"]))
        for name, values in rows:
            loss, acc = np.asarray(values).T
            print(f"| {name} | {_summary(loss, '.4f')} | {_summary(acc, '.3f')} |")


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    import matplotlib

    from gradtransforms import models

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    data = models.load_digits(flatten=True)
    n_train = len(data.y_train)
    if args.batch_size > n_train:
        raise UsageError(
            f"--batch-size ({args.batch_size}) exceeds the {n_train} training examples"
        )
    features = (data.x_train.shape[1], *([args.width] * args.hidden), 10)
    total = args.hidden * args.stage_steps + args.finetune_steps
    results = train_methods(args, data, features, total)
    print_table(results, args, features, total)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "pretraining.png")
    plot(results, args, total, path, plt)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return results


def _summary(values: np.ndarray, fmt: str) -> str:
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        return f"{bad} of {len(values)} diverged"
    median = format(float(np.median(values)), fmt)
    if len(values) == 1:
        return median
    return f"{median} [{values.min():{fmt}}, {values.max():{fmt}}]"


def plot(results, args, total: int, path: str, plt: Any) -> None:
    """Minibatch loss (median over seeds, smoothed) against the step."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    window = max(1, min(args.stage_steps, total) // 10)
    for i, (method, r) in enumerate(results.items()):
        curve = np.median(np.stack(r["curves"]), axis=0)
        n = len(curve) // window * window
        smooth = curve[:n].reshape(-1, window).mean(axis=1)
        ax.plot(
            (np.arange(len(smooth)) + 0.5) * window, smooth, color=f"C{i}", label=method
        )
    for stage in range(1, args.hidden + 1):
        ax.axvline(stage * args.stage_steps, color="0.8", lw=0.8, zorder=0)
    ax.set_yscale("log")
    ax.set_xlabel("step (grey lines: ends of the greedy stages)")
    ax.set_ylabel(f"minibatch loss (mean of {window} steps)")
    ax.set_title(
        f"Greedy supervised pretraining vs scratch, {args.hidden} hidden layers "
        f"of {args.width} (digits, SGD lr {args.lr:g})"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status("pretraining", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
