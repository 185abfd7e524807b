"""Grid, random and TPE hyperparameter search on the digits MLP, all vectorised.

The point of Tripp's slides (after Bergstra & Bengio; docs/textbook.md): when only some
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

from examples.common import OneLineParser, UsageError, exit_status, positive_int
from examples.hparam_search_report import format_table, plot, summarise

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


def sweep_grid_and_random(
    problem: Any, space: dict, settings: dict, args: argparse.Namespace
) -> tuple[dict[str, dict[str, Any]], Any]:
    """Every grid and random trial of every repeat, trained in one vmapped sweep.

    Returns the trials per method (losses, accuracies and the two
    hyperparameters, each `(repeats, trials)`) and the sweep's result.
    """
    import jax
    import jax.numpy as jnp

    import gradtransforms.tuning as tuning

    n, k, repeats = args.trials, math.isqrt(args.trials), args.repeats
    rng = np.random.default_rng(args.seed)
    grids = [shifted_grid(space, k, rng.uniform(size=2)) for _ in range(repeats)]
    randoms = [
        tuning.random(space, n, jax.random.key(1000 + args.seed * repeats + r))
        for r in range(repeats)
    ]
    configs = {
        name: jnp.concatenate([c[name] for c in grids + randoms]) for name in space
    }
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
    return methods, result


def optuna_available() -> bool:
    """Whether Optuna imports (quietened); if not, say that TPE is skipped."""
    try:
        import optuna
    except ImportError:
        print(
            "optuna is not installed: TPE skipped (pip install "
            "'gradtransforms[tuning]')",
            file=sys.stderr,
        )
        return False
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return True


def print_report(
    table: str, result: Any, tpe_seconds: float | None, total: float, args
) -> None:
    """The settings, the table and where the time went."""
    n, repeats = args.trials, args.repeats
    print(
        f"\ndigits MLP 64-64-10, SGD (momentum {MOMENTUM}) + weight decay, "
        f"{args.epochs} epochs of batch {args.batch_size}; objective: validation "
        f"loss; {n} trials per search; {repeats} grid/random repeats"
        + ("" if tpe_seconds is None else f", {args.tpe_repeats} TPE repeats")
        + "\n"
    )
    print(table)
    print(
        f"\n{2 * repeats * n} grid and random trials trained in one vmapped "
        f"sweep: {result.compile_seconds:.1f} s to compile, "
        f"{result.run_seconds:.1f} s to train"
        + (
            ""
            if tpe_seconds is None
            else f"; TPE, {args.tpe_repeats} x {n // math.isqrt(n)} rounds of "
            f"ask-train-tell: {tpe_seconds:.1f} s"
        )
        + f"; total wall time {total:.1f} s"
    )


def write_json(path: str, summary: list, methods: dict, args) -> None:
    """The settings, the summary rows and every trial."""
    with open(path, "w") as f:
        json.dump(
            {
                "settings": {
                    "trials": args.trials,
                    "repeats": args.repeats,
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from gradtransforms import problems

    wall = time.perf_counter()
    problem = problems.digits_mlp(seed=args.seed)
    space = search_space()
    settings = dict(
        optimizer=sgd_with_weight_decay,
        hyperparams=("learning_rate", "weight_decay"),
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        key=jax.random.key(args.seed),
    )
    methods, result = sweep_grid_and_random(problem, space, settings, args)
    tpe_seconds = None
    if not args.no_tpe and optuna_available():
        methods["TPE"] = run_tpe(problem, space, settings, args)
        tpe_seconds = methods["TPE"].pop("seconds")
    summary = summarise(methods)
    total = time.perf_counter() - wall
    table = format_table(summary, args.trials)
    print_report(table, result, tpe_seconds, total, args)
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "hparam_search.png")
    plot(methods, png, args.trials, (LR_RANGE, WD_RANGE))
    write_json(os.path.join(args.out, "hparam_search.json"), summary, methods, args)
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


def main(argv: Sequence[str] | None = None) -> int:
    # A ValueError is bad input too: a --batch-size larger than the data, say.
    return exit_status(
        "hparam_search",
        lambda: run(parse_args(argv)),
        errors=(UsageError, ValueError),
    )


if __name__ == "__main__":
    sys.exit(main())
