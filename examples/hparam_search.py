"""Grid, random and TPE hyperparameter search on the digits MLP, all vectorised.

The textbook's point (seeds/000, after Bergstra & Bengio): when only some
hyperparameters matter, random search beats grid search at the same budget,
because a grid spends its trials on repeats of the few values it has of the
important ones. Here an MLP (64-64-10, no BatchNorm) learns scikit-learn's
digits with SGD + momentum 0.9 and weight decay, and the search is over

* the learning rate, log-uniform on [1e-4, 10]: it matters a lot;
* the weight decay, log-uniform on [1e-6, 1e-3]: it hardly matters here;

scored by the validation loss after a few epochs. Each method gets the same
budget (16 trials by default): a 4 x 4 grid (4 distinct learning rates),
16 random draws (16 distinct learning rates) and Optuna's TPE (4 rounds of
4: ask 4, train them in one vmapped run, tell 4). Where a grid's points fall
relative to the optimum is luck, so every method is repeated: the grid with
a random offset of its points (a fraction of the grid spacing, per
dimension), random search and TPE with fresh seeds. All grid and random
trials of all repeats are trained in a single `gt.tuning.sweep` call: one
compiled program, `vmap`-ed over the configurations, run in chunks of 8 searches.

Prints a table (median and mean best validation loss over the repeats, and
how often each method beats the grid) and writes `hparam_search.png`
(validation loss against the learning rate for every trial; the sampled
points over the two dimensions; the best loss so far against the number of
trials) and `hparam_search.json` to `--out`.

Run from the repository root:

    python -m examples.hparam_search --out out/
    python -m examples.hparam_search --epochs 5 --trials 25 --no-tpe
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples._cli import OneLineParser, UsageError, positive_int

LR_RANGE = (1e-4, 10.0)
WD_RANGE = (1e-6, 1e-3)
MOMENTUM = 0.9


def _square(text: str) -> int:
    value = positive_int(text)
    if math.isqrt(value) ** 2 != value or value < 4:
        raise argparse.ArgumentTypeError(
            f"must be a square >= 4 (a k x k grid), got {value}"
        )
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.hparam_search",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--out", default="out", help="output folder (out)")
    parser.add_argument(
        "--trials", type=_square, default=16, help="budget per search, k*k (16)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=100, help="grid/random repeats (100)"
    )
    parser.add_argument(
        "--tpe-repeats", type=positive_int, default=20, help="TPE repeats (20)"
    )
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs (3)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (0)")
    parser.add_argument("--no-tpe", action="store_true", help="skip TPE (Optuna)")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------
# The problem


def digits_mlp_problem(hidden: Sequence[int] = (64,), *, seed: int = 0) -> Any:
    """The digits MLP (`models.MLP`, no BatchNorm) as a `gt.tuning.Problem`.

    Parameters are the MLP's `nnx.Param` state; the loss is the mean softmax
    cross-entropy; validation metrics are the loss and the accuracy on the
    held-out 20% of the digits (split by `seed`).
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import gradtransforms.tuning
    from gradtransforms import models

    data = models.load_digits(validation_fraction=0.2, seed=seed, flatten=True)
    features = (data.x_train.shape[1], *hidden, 10)

    def make(key):
        return models.MLP(features, batch_norm=False, rngs=nnx.Rngs(key))

    graphdef = nnx.graphdef(make(jax.random.key(0)))

    def init_fn(key):
        return nnx.state(make(key), nnx.Param)

    def logits(params, x):
        return nnx.merge(graphdef, params, copy=True)(x)

    def loss_fn(params, batch):
        x, y = batch
        return optax.softmax_cross_entropy_with_integer_labels(
            logits(params, x), y
        ).mean()

    def metrics_fn(params, batch):
        x, y = batch
        z = logits(params, x)
        return {
            "loss": optax.softmax_cross_entropy_with_integer_labels(z, y).mean(),
            "accuracy": jnp.mean(jnp.argmax(z, -1) == y),
        }

    return gradtransforms.tuning.Problem(
        init_fn=init_fn,
        loss_fn=loss_fn,
        train_data=(data.x_train, data.y_train),
        valid_data=(data.x_valid, data.y_valid),
        metrics_fn=metrics_fn,
    )


def sgd_with_weight_decay(learning_rate: Any, weight_decay: Any) -> Any:
    """SGD with momentum 0.9 and L2 weight decay added to the gradient."""
    import gradtransforms as gt

    return gt.chain(
        gt.add_decayed_weights(weight_decay), gt.sgd(learning_rate, momentum=MOMENTUM)
    )


def search_space() -> dict[str, Any]:
    import gradtransforms.tuning as tuning

    return {
        "learning_rate": tuning.log_uniform(*LR_RANGE),
        "weight_decay": tuning.log_uniform(*WD_RANGE),
    }


def shifted_grid(space: dict[str, Any], k: int, offset: np.ndarray) -> dict:
    """A k-per-dimension grid whose points start a fraction `offset` of a cell in.

    Dimension $d$ gets the points $\\text{low}_d \\cdot r_d^{(u_d + i)/k}$,
    $i = 0..k-1$, $r_d = \\text{high}_d/\\text{low}_d$: evenly spaced on the log
    scale, inside the range, at a position set by $u_d \\in [0, 1)$.
    """
    import gradtransforms.tuning as tuning

    shifted = {}
    for (name, dim), u in zip(space.items(), offset, strict=True):
        ratio = dim.high / dim.low
        shifted[name] = tuning.log_uniform(
            dim.low * ratio ** (u / k), dim.low * ratio ** ((u + k - 1) / k)
        )
    return tuning.grid(shifted, k)


# ----------------------------------------------------------------------------
# The searches


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import gradtransforms.tuning as tuning

    wall = time.perf_counter()
    problem = digits_mlp_problem(seed=args.seed)
    space = search_space()
    n, k, repeats = args.trials, math.isqrt(args.trials), args.repeats
    settings = dict(
        optimizer=sgd_with_weight_decay,
        hyperparams=("learning_rate", "weight_decay"),
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        key=jax.random.key(args.seed),
    )
    rng = np.random.default_rng(args.seed)
    grids = [shifted_grid(space, k, rng.uniform(size=2)) for _ in range(repeats)]
    randoms = [
        tuning.random(space, n, jax.random.key(1000 + args.seed * repeats + r))
        for r in range(repeats)
    ]
    configs = {
        name: jnp.concatenate([c[name] for c in grids + randoms]) for name in space
    }
    # Every grid and random trial of every repeat: one vmapped program.
    result = tuning.sweep(problem, space, configs, chunk_size=8 * n, **settings)
    losses = result.final["valid_loss"].reshape(2, repeats, n)
    accuracy = result.final["valid_accuracy"].reshape(2, repeats, n)
    points = {name: np.asarray(configs[name]).reshape(2, repeats, n) for name in space}
    methods: dict[str, dict[str, Any]] = {}
    for m, label in enumerate(("grid", "random")):
        methods[label] = {
            "losses": losses[m],
            "accuracy": accuracy[m],
            "learning_rate": points["learning_rate"][m],
            "weight_decay": points["weight_decay"][m],
        }
    if not args.no_tpe:
        try:
            import optuna
        except ImportError:
            print(
                "optuna is not installed: TPE skipped (pip install "
                "'gradtransforms[tuning]')",
                file=sys.stderr,
            )
        else:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            methods["TPE"] = run_tpe(problem, space, settings, args)
            tpe_seconds = methods["TPE"].pop("seconds")
    summary = summarise(methods)
    total = time.perf_counter() - wall
    table = format_table(summary, n)
    print(
        f"\ndigits MLP 64-64-10, SGD (momentum {MOMENTUM}) + weight decay, "
        f"{args.epochs} epochs of batch {args.batch_size}; objective: validation "
        f"loss; {n} trials per search; {repeats} grid/random repeats"
        + ("" if "TPE" not in methods else f", {args.tpe_repeats} TPE repeats")
        + "\n"
    )
    print(table)
    print(
        f"\n{2 * repeats * n} grid and random trials trained in one vmapped "
        f"sweep: {result.compile_seconds:.1f} s to compile, "
        f"{result.run_seconds:.1f} s to train"
        + (
            ""
            if "TPE" not in methods
            else f"; TPE, {args.tpe_repeats} x {n // math.isqrt(n)} rounds of "
            f"ask-train-tell: {tpe_seconds:.1f} s"
        )
        + f"; total wall time {total:.1f} s"
    )
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "hparam_search.png")
    plot(methods, png, n)
    with open(os.path.join(args.out, "hparam_search.json"), "w") as f:
        json.dump(
            {
                "settings": {
                    "trials": n,
                    "repeats": repeats,
                    "tpe_repeats": args.tpe_repeats,
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "seed": args.seed,
                    "learning_rate_range": LR_RANGE,
                    "weight_decay_range": WD_RANGE,
                },
                "summary": summary,
                "trials": {
                    label: {
                        key: np.asarray(value).tolist() for key, value in method.items()
                    }
                    for label, method in methods.items()
                },
            },
            f,
            indent=1,
        )
    print(f"wrote {png} and hparam_search.json")
    return {"summary": summary, "methods": methods, "table": table}


def run_tpe(
    problem: Any, space: dict, settings: dict, args: argparse.Namespace
) -> dict[str, Any]:
    """TPE: rounds of `sqrt(trials)` trials, each round one vmapped sweep."""
    import gradtransforms.tuning as tuning

    n, per_round = args.trials, math.isqrt(args.trials)
    evaluate_batch = tuning.sweeper(problem, space, **settings)  # compiles once
    out: dict[str, list] = {
        "losses": [],
        "accuracy": [],
        "learning_rate": [],
        "weight_decay": [],
    }
    tic = time.perf_counter()
    for r in range(args.tpe_repeats):
        accuracy: list[np.ndarray] = []

        def evaluate(configs, accuracy=accuracy):
            result = evaluate_batch(configs)
            accuracy.append(result.final["valid_accuracy"])
            return result.final["valid_loss"]

        found = tuning.tpe_search(
            space,
            evaluate,
            num_trials=n,
            trials_per_round=per_round,
            seed=args.seed * args.tpe_repeats + r,
        )
        out["losses"].append(found.values)
        out["accuracy"].append(np.concatenate(accuracy))
        for name in space:
            out[name].append(found.configs[name])
    result: dict[str, Any] = {key: np.stack(value) for key, value in out.items()}
    result["seconds"] = time.perf_counter() - tic
    return result


# ----------------------------------------------------------------------------
# Report


def summarise(methods: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    grid_best = np.nanmin(methods["grid"]["losses"], axis=1)
    rows = []
    for label, m in methods.items():
        best = np.array([np.nanmin(trial) for trial in m["losses"]])
        index = [np.argmin(np.nan_to_num(trial, nan=np.inf)) for trial in m["losses"]]
        best_accuracy = np.array(
            [acc[i] for acc, i in zip(m["accuracy"], index, strict=True)]
        )
        distinct = np.mean(
            [len(np.unique(np.round(lr, 6))) for lr in m["learning_rate"]]
        )
        beats = float(np.mean(best[:, None] < grid_best[None, :]))
        rows.append(
            {
                "method": label,
                "repeats": len(best),
                "distinct_learning_rates": float(distinct),
                "median_best_loss": float(np.median(best)),
                "mean_best_loss": float(np.mean(best)),
                "median_best_accuracy": float(np.median(best_accuracy)),
                "beats_grid": beats,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], n: int) -> str:
    lines = [
        f"| search ({n} trials) | repeats | distinct learning rates "
        "| best valid loss, median | mean | valid accuracy of the best, median "
        "| P(better than grid) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        beats = "–" if r["method"] == "grid" else f"{r['beats_grid']:.2f}"
        lines.append(
            f"| {r['method']} | {r['repeats']} | {r['distinct_learning_rates']:.0f} "
            f"| {r['median_best_loss']:.4f} | {r['mean_best_loss']:.4f} "
            f"| {r['median_best_accuracy']:.4f} | {beats} |"
        )
    return "\n".join(lines)


COLOURS = {"grid": "tab:blue", "random": "tab:orange", "TPE": "tab:green"}


def plot(methods: dict[str, dict[str, Any]], path: str, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import gradtransforms.tuning as tuning

    fig, (ax_lr, ax_pts, ax_best) = plt.subplots(1, 3, figsize=(15, 4.4))
    floor = min(np.nanmin(m["losses"]) for m in methods.values())
    for label, m in methods.items():
        colour = COLOURS[label]
        lr = m["learning_rate"].ravel()
        loss = np.clip(np.nan_to_num(m["losses"].ravel(), nan=10.0), None, 10.0)
        ax_lr.scatter(lr, loss, s=6, alpha=0.25, color=colour, label=label)
        ax_pts.scatter(
            m["learning_rate"][0],
            m["weight_decay"][0],
            s=28,
            marker={"grid": "s", "random": "o", "TPE": "^"}[label],
            facecolor="none" if label != "grid" else colour,
            edgecolor=colour,
            label=f"{label} (repeat 1)",
        )
        losses = m["losses"]
        if label == "grid":  # a grid has no order: take its trials in random order
            order = np.random.default_rng(0).permuted(
                np.tile(np.arange(n), (len(losses), 1)), axis=1
            )
            losses = np.take_along_axis(losses, order, axis=1)
        curves = np.stack([tuning.best_so_far(trial) for trial in losses])
        trials = np.arange(1, n + 1)
        median = np.nanmedian(curves, axis=0)
        low, high = np.nanpercentile(curves, [25, 75], axis=0)
        name = "grid (random order)" if label == "grid" else label
        ax_best.plot(trials, median, color=colour, label=name)
        ax_best.fill_between(trials, low, high, color=colour, alpha=0.15)
    ax_lr.set(
        xscale="log",
        yscale="log",
        xlabel="learning rate",
        ylabel="validation loss",
        title="every trial: only the learning rate matters",
    )
    ax_lr.set_ylim(floor * 0.8, 10.0)
    ax_pts.set(
        xscale="log",
        yscale="log",
        xlabel="learning rate (important)",
        ylabel="weight decay (unimportant)",
        title=f"the {n} points of one repeat",
        xlim=LR_RANGE,
        ylim=WD_RANGE,
    )
    ax_best.set(
        xlabel="number of trials",
        ylabel="best validation loss so far",
        yscale="log",
        title="best so far (median, 25–75% band)",
    )
    for ax in (ax_lr, ax_pts, ax_best):
        ax.grid(alpha=0.3, which="both")
    ax_lr.legend(fontsize=8, markerscale=2)
    ax_pts.legend(fontsize=8, loc="upper left")
    ax_best.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        run(args)
    except (UsageError, ValueError) as e:  # ValueError: e.g. --batch-size too big
        print(f"hparam_search: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
