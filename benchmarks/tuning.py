"""Benchmark: N configurations trained one after another vs in one vmapped run.

    python -m benchmarks.tuning [--sizes 8 32 64] [--epochs 5] [--runs 2]

The digits MLP of `gradtransforms.problems.digits_mlp` (64-64-10, no
BatchNorm, 1,438 training examples, minibatches of 64) trained with Adam for
`--epochs` epochs, for N learning rates log-spaced on [1e-4, 1e-1], three
ways:

* per-step loop: the usual training loop, a jitted optimizer step (Adam
  under `inject_hyperparams`, so one compiled step serves every learning
  rate) called from Python for each minibatch, and a jitted evaluation after
  each epoch; the N learning rates one after another;
* sequential runs: `jax.jit(train_fn)`, where `train_fn =
  gt.tuning.make_train_fn(...)` is one whole training run (every epoch a
  `lax.scan` over minibatches, validation metrics after each) as a pure
  function of the configuration: compiled once, then called for the N
  learning rates one after another, with no Python per step;
* vmapped: `jax.jit(jax.vmap(train_fn))` over the N learning rates, one call
  (what `gt.tuning.sweep` runs).

Same total work: N runs of the same number of steps on the same minibatches.
Compilation (ahead of time, `.lower(...).compile()`, with JAX's caches
cleared for each N) is reported apart; wall times are the best of `--runs`
calls after it. Each speed-up is a sequential time / the vmapped time (> 1:
the vmapped sweep is faster). All three give the same metrics (checked, to
float32 tolerance).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
import gradtransforms.tuning as tuning
from benchmarks.harness import machine_description, time_calls, timed
from gradtransforms import problems


def best_time(fn, runs: int) -> float:
    """The fastest of `runs` calls of `fn`, waiting for its arrays, in seconds."""
    return min(time_calls(lambda: jax.block_until_ready(fn()), runs)[0])


def per_step_loop(problem, num_epochs: int, batch_size: int, key):
    """`run(lr) -> metrics`: a Python loop over one compiled optimizer step.

    Same initial parameters and minibatches as `make_train_fn(...)(config,
    key)`: `init_fn(k0)` and `epoch_indices` from the keys it splits off.
    """
    x, y = (jnp.asarray(a) for a in problem.train_data)
    valid = tuple(jnp.asarray(a) for a in problem.valid_data)
    init_key, data_key = jax.random.split(key)
    params0 = problem.init_fn(init_key)
    orders = [
        gt.training.epoch_indices(k, len(x), batch_size)[0]
        for k in jax.random.split(data_key, num_epochs)
    ]
    tx = gt.inject_hyperparams(gt.adam)(learning_rate=1e-3)
    grad_fn = jax.value_and_grad(problem.loss_fn)

    @jax.jit
    def step(params, opt_state, idx):
        loss, grads = grad_fn(params, (x[idx], y[idx]))
        updates, opt_state = tx.update(grads, opt_state, params)
        return gt.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(problem.metrics_fn)

    def run(lr):
        opt_state = tx.init(params0)
        params, opt_state = (
            params0,
            opt_state._replace(
                hyperparams={**opt_state.hyperparams, "learning_rate": lr}
            ),
        )
        metrics = {"train_loss": []}
        for epoch in orders:
            losses = []
            for idx in epoch:
                params, opt_state, loss = step(params, opt_state, idx)
                losses.append(loss)
            metrics["train_loss"].append(jnp.mean(jnp.stack(losses)))
            for name, value in evaluate(params, valid).items():
                metrics.setdefault(f"valid_{name}", []).append(value)
        return {k: jnp.stack(v) for k, v in metrics.items()}

    return run


def measure(train_fn, loop, n: int, runs: int, key) -> dict:
    """Compile and wall times of the three ways for `n` learning rates."""
    lrs = jnp.asarray(np.geomspace(1e-4, 1e-1, n), jnp.float32)
    jax.clear_caches()  # every size pays its own compilations
    jit_one = jax.jit(train_fn)
    jit_many = jax.jit(jax.vmap(train_fn, in_axes=(0, None)))

    one, compile_one = timed(lambda: jit_one.lower({"lr": lrs[0]}, key).compile())
    many, compile_many = timed(lambda: jit_many.lower({"lr": lrs}, key).compile())

    def sequential():
        return [jax.block_until_ready(one({"lr": lr}, key)[0]) for lr in lrs]

    def vmapped():
        return many({"lr": lrs}, key)[0]

    def stepwise():
        return [jax.block_until_ready(loop(lr)) for lr in lrs]

    # Warm-up (compiles the per-step loop's step), and all three agree.
    a, b, c = sequential(), vmapped(), stepwise()
    for i in range(n):
        for name, curve in b.items():
            np.testing.assert_allclose(a[i][name], curve[i], rtol=2e-3, atol=2e-4)
            np.testing.assert_allclose(c[i][name], curve[i], rtol=2e-3, atol=2e-4)
    return {
        "n": n,
        "compile_one": compile_one,
        "compile_many": compile_many,
        "per_step": best_time(stepwise, runs),
        "sequential": best_time(sequential, runs),
        "vmapped": best_time(vmapped, runs),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)

    machine = machine_description(jax, np)
    problem = problems.digits_mlp()
    train_fn = tuning.make_train_fn(
        problem,
        optimizer=gt.adam,
        hyperparams={"learning_rate": "lr"},
        num_epochs=args.epochs,
        batch_size=64,
    )
    steps = args.epochs * (len(problem.train_data[0]) // 64)
    key = jax.random.key(0)
    loop = per_step_loop(problem, args.epochs, 64, key)
    rows = [measure(train_fn, loop, n, args.runs, key) for n in args.sizes]

    print(
        f"\ndigits MLP 64-64-10, Adam, {args.epochs} epochs = {steps} steps per "
        f"configuration; {machine} at the start; best of {args.runs}\n"
    )
    print(
        "| N | per-step loop s | sequential runs s | vmapped s "
        "| speed-up vs per-step loop | speed-up vs sequential runs "
        "| vmapped steps/s | compile s (one run / vmapped) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n = r["n"]
        print(
            f"| {n} | {r['per_step']:.2f} | {r['sequential']:.2f} "
            f"| {r['vmapped']:.2f} | {r['per_step'] / r['vmapped']:.1f}x "
            f"| {r['sequential'] / r['vmapped']:.1f}x "
            f"| {n * steps / r['vmapped']:,.0f} "
            f"| {r['compile_one']:.1f} / {r['compile_many']:.1f} |"
        )


if __name__ == "__main__":
    main()
