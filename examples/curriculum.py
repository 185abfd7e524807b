"""Curriculum learning on the digits MLP: easy examples first, vs uniform sampling.

A stochastic curriculum (Bengio et al., 2009; Zaremba & Sutskever, 2014;
textbook §8.7.6) with `gt.training.curriculum_sampler`: the training examples
are ranked by a difficulty score, training starts on the easiest 20%
(`--start`) and the admitted share grows linearly to all of them by the middle
of the run (`--ramp`), the pacing function
`gt.linear_decay_schedule(0.2, 1.0, ramp · steps)`; 10% of every batch
(`--hard-fraction`) is drawn from the whole training set.

How difficulty is defined (`--difficulty`), from the training set only — the
validation set is used for nothing but the reported accuracy:

* `teacher` (default): the cross-entropy of the example under a softmax
  regression that did not see it. The training set is split into two halves;
  a regression (300 full-batch AdamW steps, weight decay 1e-3) is fitted on
  each half and scores the other half (cross-fitting, so a score is never the
  loss of a model on its own training data).
* `distance`: the Euclidean distance of the image to the mean image of its
  class, the class means taken over the training set.

Four samplers train the same MLP (64-128-10, ReLU, no BatchNorm, Adam 1e-3)
for the same number of steps, from the same initial weights per seed:
`uniform` (every batch drawn uniformly, the curriculum switched off with
`pacing=1.0`), `curriculum` (with the mix), `curriculum, no mix`
(`hard_fraction=0`) and `anti-curriculum` (the same mix, hardest first).
All seeds of a sampler run as one `vmap` of one compiled `lax.scan` over the
steps. Prints, as mean ± standard deviation over the seeds, the final loss on
the whole training set (not on the sampled batches, which are easier for a
curriculum), the validation accuracy at the end and after a quarter of the
steps; writes the learning curves to `--out` as `curriculum.png`.

Curriculum learning is not guaranteed to help, and on a problem as easy as
the digits little is expected: read the table, not the hope.

Run from the repository root:

    python -m examples.curriculum
    python -m examples.curriculum --difficulty distance --seeds 3 --out out
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
    fraction,
    positive_int,
)

HIDDEN = 128
LEARNING_RATE = 1e-3
TEACHER_STEPS = 300
TEACHER_WEIGHT_DECAY = 1e-3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.curriculum", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=positive_int, default=1200)
    parser.add_argument(
        "--eval-every", type=positive_int, default=50, help="steps between points"
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--seeds", type=positive_int, default=5, help="repeats")
    parser.add_argument(
        "--difficulty", choices=("teacher", "distance"), default="teacher"
    )
    parser.add_argument("--start", type=fraction, default=0.2, help="λ(0)")
    parser.add_argument(
        "--ramp",
        type=fraction,
        default=0.5,
        help="share of the steps until every example is admitted",
    )
    parser.add_argument("--hard-fraction", type=fraction, default=0.1)
    parser.add_argument("--out", default="docs/figures", help="figure folder")
    args = parser.parse_args(argv)
    if args.steps % args.eval_every:
        parser.error(
            f"argument --steps: must be a multiple of --eval-every "
            f"({args.eval_every}), got {args.steps}"
        )
    return args


# ----------------------------------------------------------------------------
# Difficulty scores, from the training set only


def teacher_difficulty(x: Any, y: Any, num_classes: int) -> Any:
    """Cross-fitted loss of a softmax regression: each half scored by the other."""
    import jax
    import jax.numpy as jnp
    import optax

    import gradtransforms as gt

    n, d = x.shape
    half = np.random.default_rng(0).permutation(n) < n // 2  # a fixed split
    tx = gt.adamw(0.05, weight_decay=TEACHER_WEIGHT_DECAY)

    def linear(params, x):
        w, b = params
        return x @ w + b

    def fit(weights):  # weights: 1.0 on the half to fit, 0.0 elsewhere
        def loss(params):
            per_example = optax.softmax_cross_entropy_with_integer_labels(
                linear(params, x), y
            )
            return jnp.sum(weights * per_example) / jnp.sum(weights)

        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            return (gt.apply_updates(params, updates), state), None

        params = (jnp.zeros((d, num_classes)), jnp.zeros((num_classes,)))
        (params, _), _ = jax.lax.scan(
            step, (params, tx.init(params)), None, length=TEACHER_STEPS
        )
        return optax.softmax_cross_entropy_with_integer_labels(linear(params, x), y)

    on_first = jnp.asarray(half, jnp.float32)
    by_first, by_second = jax.jit(jax.vmap(fit))(jnp.stack([on_first, 1 - on_first]))
    return np.where(half, np.asarray(by_second), np.asarray(by_first))


def distance_difficulty(x: Any, y: Any, num_classes: int) -> Any:
    """Distance of each image to the mean training image of its class."""
    means = np.stack([x[y == c].mean(axis=0) for c in range(num_classes)])
    return np.linalg.norm(x - means[y], axis=1)


# ----------------------------------------------------------------------------
# Training


def make_trainer(data: Any, args: argparse.Namespace, graphdef: Any) -> Any:
    """A compiled `(hard_fraction; params, keys, difficulty, levels) -> curves`.

    Each seed builds `gt.training.curriculum_sampler(difficulty, ...,
    pacing=lambda t: levels[t])` and trains with one `lax.scan` over chunks
    of `eval_every` steps (the batches of a chunk from
    `sampler.epoch_indices`), evaluating after each chunk; seeds are a `vmap`
    over the initial parameters and the batch keys. With the difficulty and
    the pacing as arguments, the samplers that share a `hard_fraction` (a
    static shape) share one compilation. The curves are the loss on the whole
    training set and the validation accuracy after every chunk, each of shape
    `(seeds, steps // eval_every)`.
    """
    import functools

    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import gradtransforms as gt

    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_valid, y_valid = jnp.asarray(data.x_valid), jnp.asarray(data.y_valid)
    tx = gt.adam(LEARNING_RATE)

    def logits(params, x):
        return nnx.merge(graphdef, params, copy=True)(x)

    def loss(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(
            logits(params, x), y
        ).mean()

    def run(hard_fraction, params, key, difficulty, levels):
        sampler = gt.training.curriculum_sampler(
            difficulty,
            args.batch_size,
            pacing=lambda t: levels[t],
            hard_fraction=hard_fraction,
        )

        def chunk(carry, first_step):
            indices = sampler.epoch_indices(key, first_step, args.eval_every)

            def step(carry, idx):
                params, state = carry
                grads = jax.grad(loss)(params, x_train[idx], y_train[idx])
                updates, state = tx.update(grads, state, params)
                return (gt.apply_updates(params, updates), state), None

            (params, state), _ = jax.lax.scan(step, carry, indices)
            accuracy = jnp.mean(jnp.argmax(logits(params, x_valid), -1) == y_valid)
            return (params, state), (loss(params, x_train, y_train), accuracy)

        starts = jnp.arange(0, args.steps, args.eval_every, dtype=jnp.int32)
        _, curves = jax.lax.scan(chunk, (params, tx.init(params)), starts)
        return curves

    @functools.partial(jax.jit, static_argnums=0)
    def train_seeds(hard_fraction, params, keys, difficulty, levels):
        per_seed = functools.partial(run, hard_fraction)
        return jax.vmap(per_seed, in_axes=(0, 0, None, None))(
            params, keys, difficulty, levels
        )

    return train_seeds


def train_all(difficulty: Any, data: Any, args: argparse.Namespace) -> dict:
    """The four samplers, each over every seed; returns their curves by name.

    Seed `i` gives the same initial weights and batch key to every sampler.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import gradtransforms as gt
    from gradtransforms import models

    def make(key):
        features = (data.x_train.shape[1], HIDDEN, 10)
        return models.MLP(features, batch_norm=False, rngs=nnx.Rngs(key))

    graphdef = nnx.graphdef(nnx.eval_shape(lambda: make(jax.random.key(0))))
    keys = jax.vmap(jax.random.split)(jax.random.split(jax.random.key(0), args.seeds))
    params = jax.jit(jax.vmap(lambda k: nnx.state(make(k), nnx.Param)))(keys[:, 0])
    train_seeds = make_trainer(data, args, graphdef)

    ramp_steps = max(1, round(args.ramp * args.steps))
    pacing = gt.linear_decay_schedule(args.start, 1.0, ramp_steps)
    paced = pacing(jnp.arange(args.steps))  # λ(t) for every step t
    everything = jnp.ones(args.steps, paced.dtype)  # λ ≡ 1: uniform sampling
    difficulty = jnp.asarray(difficulty, jnp.float32)
    runs = {  # name: (hard_fraction, difficulty, pacing)
        "uniform": (0.0, difficulty, everything),
        "curriculum": (args.hard_fraction, difficulty, paced),
        "curriculum, no mix": (0.0, difficulty, paced),
        "anti-curriculum": (args.hard_fraction, -difficulty, paced),
    }
    results = {}
    for name, (hard_fraction, scores, levels) in runs.items():
        train_loss, accuracy = train_seeds(
            hard_fraction, params, keys[:, 1], scores, levels
        )
        results[name] = {
            "train_loss": np.asarray(train_loss),
            "accuracy": np.asarray(accuracy),
        }
    return results


# ----------------------------------------------------------------------------
# Report


def format_table(results: dict[str, dict[str, Any]], early: int, every: int) -> str:
    """Mean ± std over the seeds; `early`: the evaluation (0-based) of column 4."""
    lines = [
        "| sampler | train loss (whole set) | valid accuracy "
        f"| valid accuracy at step {(early + 1) * every} |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        loss, acc = r["train_loss"][:, -1], r["accuracy"][:, -1]
        at_early = r["accuracy"][:, early]
        lines.append(
            f"| {name} | {loss.mean():.4f} ± {loss.std():.4f} "
            f"| {acc.mean():.4f} ± {acc.std():.4f} "
            f"| {at_early.mean():.4f} ± {at_early.std():.4f} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Any]], args: argparse.Namespace, path: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, args.steps // args.eval_every + 1) * args.eval_every
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in results.items():
        for ax, key in ((ax_loss, "train_loss"), (ax_acc, "accuracy")):
            mean, std = r[key].mean(0), r[key].std(0)
            (line,) = ax.plot(steps, mean, label=name)
            ax.fill_between(
                steps, mean - std, mean + std, alpha=0.15, lw=0, color=line.get_color()
            )
    ramp_end = args.ramp * args.steps
    for ax in (ax_loss, ax_acc):
        ax.axvline(ramp_end, color="0.6", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("step")
    ax_loss.set(ylabel="loss on the whole training set", yscale="log")
    ax_acc.set(ylabel="validation accuracy")
    ax_acc.set_ylim(max(0.0, ax_acc.get_ylim()[0]), 1.0)
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"digits MLP, {args.difficulty} difficulty: mean ± std over "
        f"{args.seeds} seeds (dotted: all examples admitted)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from gradtransforms import models

    wall = time.perf_counter()
    data = models.load_digits(validation_fraction=0.2, seed=0, flatten=True)
    if args.batch_size > len(data.x_train):
        raise UsageError(
            f"argument --batch-size: must be <= {len(data.x_train)} (the training "
            f"set), got {args.batch_size}"
        )
    score = {"teacher": teacher_difficulty, "distance": distance_difficulty}
    difficulty = score[args.difficulty](data.x_train, data.y_train, 10)
    results = train_all(difficulty, data, args)
    early = max(0, round(args.steps / 4 / args.eval_every) - 1)  # ~ a quarter
    print(
        f"\ndigits: {len(data.x_train)} training / {len(data.x_valid)} validation "
        f"examples; MLP 64-{HIDDEN}-10, Adam {LEARNING_RATE:g}, {args.steps} steps "
        f"of batch {args.batch_size}, {args.seeds} seeds\n"
        f"difficulty: {args.difficulty}; pacing λ(t) from {args.start:g} to 1 over "
        f"{max(1, round(args.ramp * args.steps))} steps; hard fraction "
        f"{args.hard_fraction:g}\n"
    )
    print(format_table(results, early, args.eval_every))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "curriculum.png")
    plot(results, args, path)
    print(f"\nwrote {path}; total wall time {time.perf_counter() - wall:.1f} s")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status(
        "curriculum", lambda: run(parse_args(argv)), errors=(UsageError, ValueError)
    )


if __name__ == "__main__":
    sys.exit(main())
