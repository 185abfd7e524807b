"""Grow the batch during training (§8.1.3) with gradient accumulation.

The textbook's advice for the gradient noise that remains late in training:
use larger batches as training goes on. When the larger batch does not fit on
the device, keep the microbatch fixed and accumulate more of them per step:
`gt.accumulate_gradients(tx, every_k_steps)` averages k microbatch gradients
and steps once, and here k doubles at each phase (1, 2, 4, ...), so the batch
grows from the microbatch to 2^(phases-1) times it while each call of the
compiled step still sees one microbatch.

One accumulator serves all the phases: `every_k_steps` is a function of the
number of optimizer steps taken, so one compiled step runs the whole
schedule. (With an int k, start a new accumulator at each phase and carry
the inner state over: `acc.init(params)._replace(inner_opt_state=...)`.)

It trains the digits MLP (64-64-10) with Adam and prints, per phase, k, the
batch size, the steps and microbatches, and the loss on the whole training
set and the validation accuracy at the end of the phase.

    python -m examples.growing_batch
    python -m examples.growing_batch --phases 3 --steps-per-phase 50 --microbatch 16
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from examples.common import (
    OneLineParser,
    UsageError,
    exit_status,
    positive_float,
    positive_int,
)

PROG = "python -m examples.growing_batch"
HIDDEN = 64


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", type=positive_int, default=4)
    parser.add_argument(
        "--steps-per-phase", type=positive_int, default=40, help="optimizer steps"
    )
    parser.add_argument("--microbatch", type=positive_int, default=32)
    parser.add_argument("--learning-rate", type=positive_float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.phases > 8:
        parser.error(f"argument --phases: must be <= 8 (k = 2^7), got {args.phases}")
    return args


def phase_schedule(steps_per_phase: int, phases: int):
    """k as a function of the optimizer step: 1, 2, 4, ... per phase."""
    import jax.numpy as jnp

    ks = jnp.asarray([2**p for p in range(phases)], jnp.int32)
    return lambda step: ks[jnp.minimum(step // steps_per_phase, phases - 1)]


def train(args: argparse.Namespace, data: Any) -> list[dict[str, float]]:
    """Train through the phases; one row per phase."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import gradtransforms as gt
    from gradtransforms import models

    model = models.MLP((64, HIDDEN, 10), batch_norm=False, rngs=nnx.Rngs(args.seed))
    graphdef, params = nnx.split(model, nnx.Param)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_valid, y_valid = jnp.asarray(data.x_valid), jnp.asarray(data.y_valid)

    def logits(params, x):
        return nnx.merge(graphdef, params, copy=True)(x)

    def loss(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(
            logits(params, x), y
        ).mean()

    every_k = phase_schedule(args.steps_per_phase, args.phases)
    tx = gt.accumulate_gradients(gt.adam(args.learning_rate), every_k)
    state = tx.init(params)

    @jax.jit
    def micro_step(params, state, idx):
        grads = jax.grad(loss)(params, x_train[idx], y_train[idx])
        updates, state = tx.update(grads, state, params)
        return gt.apply_updates(params, updates), state

    @jax.jit
    def evaluate(params):
        accuracy = jnp.mean(jnp.argmax(logits(params, x_valid), -1) == y_valid)
        return loss(params, x_train, y_train), accuracy

    batches = gt.training.minibatches(
        jnp.arange(len(x_train)),
        args.microbatch,
        key=jax.random.key(args.seed),
        num_epochs=10**6,
        drop_remainder=True,
    )
    rows = []
    for phase in range(args.phases):
        k = 2**phase
        for _ in range(args.steps_per_phase * k):
            params, state = micro_step(params, state, next(batches))
        train_loss, accuracy = evaluate(params)
        rows.append(
            {
                "phase": phase + 1,
                "k": k,
                "batch": k * args.microbatch,
                "steps": int(state.gradient_step),
                "microbatches": args.steps_per_phase * k,
                "train_loss": float(train_loss),
                "valid_accuracy": float(accuracy),
            }
        )
        print(
            f"phase {phase + 1}: k = {k:3d}, batch {k * args.microbatch:5d}, "
            f"{args.steps_per_phase} steps ({args.steps_per_phase * k} microbatches)"
            f": train loss {float(train_loss):.4f}, "
            f"validation accuracy {float(accuracy):.3f}",
            flush=True,
        )
    return rows


def run(args: argparse.Namespace) -> list[dict[str, float]]:
    from gradtransforms import models

    data = models.load_digits(validation_fraction=0.2, seed=0, flatten=True)
    if args.microbatch > len(data.x_train):
        raise ValueError(
            f"argument --microbatch: must be <= {len(data.x_train)} (the training "
            f"set), got {args.microbatch}"
        )
    start = time.perf_counter()
    print(
        f"digits MLP 64-{HIDDEN}-10, Adam {args.learning_rate:g}, microbatch "
        f"{args.microbatch}, k doubling over {args.phases} phases"
    )
    rows = train(args, data)
    print(f"total wall time {time.perf_counter() - start:.1f} s")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status(
        "growing_batch", lambda: run(parse_args(argv)), errors=(UsageError, ValueError)
    )


if __name__ == "__main__":
    sys.exit(main())
