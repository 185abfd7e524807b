"""Compare the textbook's optimizers on real data, tuned on an equal budget.

Which of the textbook's optimizers (SGD, momentum, Nesterov momentum,
AdaGrad, RMSProp, RMSProp with Nesterov momentum, Adam: Algorithms 8.1-8.7)
trains this model best? Each optimizer's learning rate is chosen from the
same grid by a vectorised sweep on a validation split, then the chosen
setting is retrained under several fresh seeds on the training and
validation splits and scored on a test split
(`examples/comparison.py` states the protocol). Data: scikit-learn's digits
with the BatchNorm MLP of `models/` (default); MNIST-1D (`--dataset
mnist1d`, generated offline by the `mnist1d` package) with the paper's MLP or
1-D CNN (`--model cnn`); or an `.npz` with arrays `x` and `y`.

Prints the protocol and a table (chosen learning rate, test accuracy and
loss as mean ± 95% confidence interval over the seeds, steps to a target
accuracy, steps/s, compile s), and writes to `--out` a figure (test-accuracy
curves with confidence bands; validation accuracy against the learning
rate) and the raw results as JSON.

Run from the repository root:

    python -m examples.compare_optimizers
    python -m examples.compare_optimizers --quick
    python -m examples.compare_optimizers --dataset mnist1d --out results
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from examples.common import (
    OneLineParser,
    UsageError,
    exit_status,
    non_negative_int,
    positive_float,
    positive_int,
)
from examples.comparison import DEFAULTS, OPTIMIZER_NAMES

QUICK = dict(grid=4, tune_seeds=2, epochs=5)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, and wraps help text without breaking words."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            text, width, break_long_words=False, break_on_hyphens=False
        )


def _optimizer_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIMIZER_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(OPTIMIZER_NAMES)}"
        )
    return names


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m examples.compare_optimizers",
        description=__doc__.split("\n\n")[0],
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "--dataset",
        default="digits",
        help="digits, mnist1d, or an .npz with arrays x (examples first) and y "
        "(integer labels)",
    )
    add("--model", choices=("mlp", "cnn"), default="mlp", help="cnn: MNIST-1D only")
    add(
        "--optimizers",
        type=_optimizer_list,
        default=list(OPTIMIZER_NAMES),
        help=f"comma-separated subset of: {', '.join(OPTIMIZER_NAMES)}",
    )
    add("--steps", type=positive_int, help="steps per run (default: the dataset's)")
    add("--epochs", type=positive_int, help="the budget in epochs instead of steps")
    add("--batch-size", type=positive_int, help="default: the dataset's")
    add("--eval-every", type=positive_int, help="default: one epoch (digits)")
    add("--grid", type=positive_int, default=11, help="learning rates tried")
    add(
        "--lr-range",
        type=positive_float,
        nargs=2,
        default=(1e-4, 10.0),
        metavar=("LOW", "HIGH"),
        help="the grid's ends (log-spaced between)",
    )
    add("--tune-seeds", type=positive_int, default=2, help="seeds per grid point")
    add("--seeds", type=positive_int, default=5, help="seeds of the retraining")
    add("--target", type=float, help="target test accuracy (default: the dataset's)")
    add("--seed", type=non_negative_int, default=0, help="the first PRNG seed")
    add("--quick", action="store_true", help="a first look in under 30 s")
    add("--out", default="out", help="output folder")
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if args.steps is not None and args.epochs is not None:
        raise UsageError("give the budget as --steps or --epochs, not both")
    if args.seeds < 2 and not args.quick:
        raise UsageError("--seeds must be at least 2 for a confidence interval")
    if not args.lr_range[0] < args.lr_range[1]:
        raise UsageError("--lr-range LOW HIGH needs LOW < HIGH")
    if args.model == "cnn" and args.dataset != "mnist1d":
        raise UsageError("--model cnn is the MNIST-1D CNN: use --dataset mnist1d")
    return args


def _check_out(folder: str) -> None:
    """Fail now, in one line, if results cannot be written to `folder`."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(
            f"--out {folder!r} is not a writable folder ({e.strerror or e})"
        ) from None


def protocol(args: argparse.Namespace, data: Any) -> argparse.Namespace:
    """The run's settings, the dataset's defaults filled in."""
    defaults = DEFAULTS[data.kind]
    batch = min(args.batch_size or defaults["batch_size"], len(data.train[1]))
    per_epoch = len(data.train[1]) // batch
    epochs = args.epochs or (QUICK["epochs"] if args.quick and not args.steps else None)
    steps = args.steps or (epochs * per_epoch if epochs else defaults["steps"])
    eval_every = args.eval_every or (per_epoch if epochs else defaults["eval_every"])
    return argparse.Namespace(
        batch_size=batch,
        steps=steps,
        eval_every=min(eval_every, steps),
        grid=QUICK["grid"] if args.quick else args.grid,
        lr_low=args.lr_range[0],
        lr_high=args.lr_range[1],
        tune_seeds=QUICK["tune_seeds"] if args.quick else args.tune_seeds,
        seeds=QUICK["tune_seeds"] if args.quick else args.seeds,
        retrain=not args.quick,
        seed=args.seed,
        target=args.target if args.target is not None else defaults["target"],
    )


def describe(p: argparse.Namespace, data: Any, model: str) -> str:
    """The protocol in a few lines, printed above the table."""
    epochs = p.steps / (len(data.train[1]) // p.batch_size)
    plural = "epoch" if epochs == 1 else "epochs"
    retrain = (
        f"retrained under {p.seeds} fresh seeds on train + valid"
        if p.retrain
        else f"--quick: the chosen rate's {p.seeds} tuning runs reported"
    )
    return "\n".join(
        [
            f"{data.describe()}; {model}",
            f"budget: {p.steps} steps of {p.batch_size} ({epochs:g} {plural}) "
            f"per run, scored every {p.eval_every} steps",
            f"tuning: {p.grid} learning rates log-spaced on [{p.lr_low:g}, "
            f"{p.lr_high:.3g}], the same for every optimizer, {p.tune_seeds} "
            f"seeds each, by final validation accuracy; {retrain}, scored on "
            "the test split",
        ]
    )


def _progress(args: argparse.Namespace, total: int) -> Any:
    """A progress bar on a terminal; None (plain lines) otherwise."""
    if args.no_progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="optimizer", file=sys.stderr)


def _outputs(args: argparse.Namespace, data: Any) -> tuple[str, str]:
    tag = data.kind + ("_cnn" if args.model == "cnn" else "")
    base = os.path.abspath(os.path.join(args.out, f"compare_optimizers_{tag}"))
    return base + ".png", base + ".json"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from examples import comparison, comparison_report

    _check_out(args.out)
    data = comparison.load_data(args.dataset)
    p = protocol(args, data)
    model_fn, model = comparison.model_fn(data, args.model)
    problems = comparison.problems(data, model_fn)
    settings = dict(num_steps=p.steps, eval_every=p.eval_every, batch_size=p.batch_size)
    print(describe(p, data, model), flush=True)
    bar = _progress(args, len(args.optimizers))
    wall = time.perf_counter()
    outcomes, rows = [], []
    for name in args.optimizers:
        outcome = comparison.compare_one(name, problems, settings, p)
        outcomes.append(outcome)
        rows.append(comparison_report.summary(outcome, p.target))
        line = (
            f"{name}: lr {outcome.lr:.2g}, test accuracy "
            f"{100 * rows[-1]['test_accuracy']:.2f}%"
        )
        if bar is None:
            print(line, flush=True)
        else:
            bar.set_description(line)
            bar.update(1)
    if bar is not None:
        bar.close()
    print()
    print(comparison_report.format_table(rows, p.target))
    if any(r["at_grid_edge"] for r in rows):
        print("* the grid's end: the best rate may lie beyond it (see --lr-range)")
    print(f"\ntotal wall time {time.perf_counter() - wall:.1f} s")
    figure, record = _outputs(args, data)
    for path in (figure, record):
        if os.path.exists(path):
            print(f"replacing {path}")
    comparison_report.plot(outcomes, figure, f"{data.name}, {model}")
    settings_record = {**vars(p), "dataset": data.describe(), "model": model}
    comparison_report.write_json(record, settings_record, outcomes, rows)
    print(f"wrote {figure}\nwrote {record}")
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
