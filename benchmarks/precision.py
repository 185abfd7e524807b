"""Benchmark: training in bfloat16 and float16, with and without master weights.

    python -m benchmarks.precision [--epochs 40] [--learning-rates 1e-3 1e-4]
        [--write benchmarks/RESULTS.md docs/guides/low-precision.md]

The digits MLP of the main job (`gradtransforms.models.MLP`, 64-128-128-10,
BatchNorm after each hidden layer unless `--no-batch-norm`, He-normal
initialisation) trained with Adam on scikit-learn's digits (1,438 training and
359 validation examples, minibatches of 64: 22 steps an epoch), for each
learning rate of `--learning-rates`, five ways:

* float32 parameters, `gt.adam(lr)`;
* bfloat16 and float16 parameters (`param_dtype` and `dtype` of the model:
  the forward and backward passes run in 16 bits), `gt.adam(lr)`;
* the same two, under `gt.master_weights(gt.adam(lr))` (a float32 copy of
  the parameters in the optimizer state).

Every run starts from the same initial weights (drawn in float32, rounded to
the row's dtype) and sees the same minibatches; each epoch is one compiled
`lax.scan`. The loss is the mean cross-entropy of the logits taken to float32;
BatchNorm keeps its running statistics in float32 (Flax's default).
Reported: the final training loss (the mean over the last epoch's
minibatches, in training mode), the validation accuracy (BatchNorm on its
running statistics), its difference from the float32 run in percentage
points, the share of parameter elements that training changed at all, and
the wall time (compilation included).

`--write` rewrites this benchmark's section (between its markers) in each
file given: appended to a file without the markers.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
from benchmarks.harness import machine_description

BEGIN = "<!-- precision: begin (written by benchmarks/precision.py) -->"
END = "<!-- precision: end -->"
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
# (parameter dtype, under master_weights): the rows of each table.
ROWS = (
    ("float32", False),
    ("bfloat16", False),
    ("float16", False),
    ("bfloat16", True),
    ("float16", True),
)


def build(features, batch_norm: bool, dtype: Any, seed: int):
    """`(graphdef, params, batch_stats)` of the MLP in `dtype`, with the float32
    model's initial weights rounded to `dtype` (the same weights for every row)."""
    from flax import nnx

    from gradtransforms import models

    def split(param_dtype):
        model = models.MLP(
            features,
            batch_norm=batch_norm,
            dtype=param_dtype,
            param_dtype=param_dtype,
            rngs=nnx.Rngs(seed),
        )
        return nnx.split(model, nnx.Param, ...)

    _, params32, _ = split(jnp.float32)
    graphdef, params, batch_stats = split(dtype)
    params = jax.tree.map(lambda p, p32: p32.astype(p.dtype), params, params32)
    return graphdef, params, batch_stats


def train(tx, graphdef, params, batch_stats, data, args) -> dict[str, Any]:
    """Train for `args.epochs`; the final loss, accuracy and changed share."""
    from flax import nnx

    from gradtransforms.models import cross_entropy

    x, y, x_valid, y_valid = (jnp.asarray(a) for a in data)
    dtype = jax.tree.leaves(params)[0].dtype
    params0 = params

    def loss_fn(params, batch_stats, xb, yb):
        model = nnx.merge(graphdef, params, batch_stats, copy=True)
        model.train()
        logits = model(xb.astype(dtype)).astype(jnp.float32)
        loss = cross_entropy(logits, yb)
        return loss, nnx.split(model, nnx.Param, ...)[2]

    def step(carry, idx):
        params, batch_stats, opt_state = carry
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, x[idx], y[idx]
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return (gt.apply_updates(params, updates), batch_stats, opt_state), loss

    @jax.jit
    def epoch(carry, key):
        idx, _ = gt.training.epoch_indices(key, len(x), args.batch_size)
        carry, losses = jax.lax.scan(step, carry, idx)
        return carry, jnp.mean(losses)

    @jax.jit
    def accuracy(params, batch_stats):
        model = nnx.merge(graphdef, params, batch_stats, copy=True)
        model.eval()
        logits = model(x_valid.astype(dtype))
        return jnp.mean(jnp.argmax(logits, axis=-1) == y_valid)

    start = time.perf_counter()
    carry, key = (params, batch_stats, tx.init(params)), jax.random.key(args.seed)
    loss = jnp.zeros(())
    for e in range(args.epochs):
        carry, loss = epoch(carry, jax.random.fold_in(key, e))
    params, batch_stats, _ = carry
    changed = [
        np.asarray(a != b)
        for a, b in zip(*map(jax.tree.leaves, (params, params0)), strict=True)
    ]
    result = {
        "loss": float(loss),
        "accuracy": float(accuracy(params, batch_stats)),
        "changed": float(np.concatenate([c.ravel() for c in changed]).mean()),
    }
    result["seconds"] = time.perf_counter() - start
    return result


def table(lr: float, results: list[tuple[str, bool, dict]]) -> str:
    """One learning rate's rows as a Markdown table."""
    reference = next(r["accuracy"] for d, m, r in results if d == "float32" and not m)
    lines = [
        f"Adam, learning rate {lr:g}:\n",
        "| parameters | optimizer | final training loss | validation accuracy "
        "| vs float32 (points) | parameters changed | wall s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for dtype, master, r in results:
        optimizer = (
            f"`gt.master_weights(gt.adam({lr:g}))`" if master else f"`gt.adam({lr:g})`"
        )
        gap = 100 * (r["accuracy"] - reference)
        lines.append(
            f"| {dtype} | {optimizer} | {r['loss']:.4f} | {100 * r['accuracy']:.1f}% "
            f"| {gap:+.1f} | {100 * r['changed']:.1f}% | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` by `body` (append it if absent)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text:
        pattern = re.escape(BEGIN) + ".*?" + re.escape(END)
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Training in 16 bits\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[1e-3, 1e-4])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--no-batch-norm", action="store_true")
    parser.add_argument(
        "--train-examples", type=int, default=None, help="use the first N"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, nargs="+", default=[], metavar="FILE")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    from gradtransforms import models

    split = models.load_digits(validation_fraction=0.2, seed=args.seed, flatten=True)
    n = len(split.x_train) if args.train_examples is None else args.train_examples
    data = (split.x_train[:n], split.y_train[:n], split.x_valid, split.y_valid)
    features = (data[0].shape[1], *args.hidden, 10)
    batch_norm = not args.no_batch_norm
    machine = machine_description(jax, np)
    print(machine, flush=True)

    tables = []
    for lr in args.learning_rates:
        results = []
        for dtype, master in ROWS:
            graphdef, params, stats = build(
                features, batch_norm, DTYPES[dtype], args.seed
            )
            tx = gt.adam(lr)
            tx = gt.master_weights(tx) if master else tx
            r = train(tx, graphdef, params, stats, data, args)
            print(f"lr {lr:g} {dtype}{' + master' if master else ''}: {r}", flush=True)
            results.append((dtype, master, r))
        tables.append(table(lr, results))

    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.precision", *argv])
    steps = args.epochs * (n // args.batch_size)
    body = (
        "The same training run with the parameters in float32, bfloat16 and "
        "float16, with plain Adam and under `gt.master_weights`; what each column "
        "measures is in the docstring of `benchmarks/precision.py`.\n\n"
        f"Command: `{command}`\n\n{machine} at the start.\n\n"
        f"digits MLP {'-'.join(map(str, features))}, BatchNorm "
        f"{'on' if batch_norm else 'off'}, {n} training and {len(data[2])} "
        f"validation examples, minibatches of {args.batch_size}, {args.epochs} "
        f"epochs = {steps} steps, seed {args.seed}; the same initial weights and "
        "minibatches in every row.\n\n" + "\n\n".join(tables) + "\n"
    )
    print("\n" + body)
    for path in args.write:
        write_section(path, body)
        print(f"wrote {path}")
    return body


if __name__ == "__main__":
    main()
