"""Train the BatchNorm MLP data-parallel and FSDP-style on 8 (simulated) devices.

The same model, data, minibatches and optimizer (Adam) are trained three ways:

* `single`: everything on one device, the reference;
* `data_parallel`: parameters and optimizer state replicated on a `Mesh` of 8
  devices, each minibatch split across them (gradients are all-reduced by
  XLA);
* `fsdp`: as data-parallel, but every parameter whose first axis divides by 8
  is split along that axis, and its optimizer moments with it (created
  directly sharded through `gt.sharding.state_shardings`).

Each epoch is one compiled `lax.scan`. The script prints the final training
loss of each run, how far its parameters are from the single-device run, and
where the optimizer state lives; it exits with status 1 if a sharded run
differs from the single-device one by more than the tolerance.

Run from the repository root (the flag simulates 8 CPU devices; it is added
when missing, before JAX starts):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python -m examples.sharded_training
    python -m examples.sharded_training --epochs 10 --batch-size 128
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

DEVICES = 8
_FLAG = f"--xla_force_host_platform_device_count={DEVICES}"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import gradtransforms as gt  # noqa: E402
import gradtransforms.sharding as gs  # noqa: E402
from examples.common import (  # noqa: E402
    OneLineParser,
    batchnorm_epoch,
    parse_or_exit,
    split_for_training,
)
from gradtransforms import models  # noqa: E402

PROG = "python -m examples.sharded_training"
LAYOUTS = ("single", "data_parallel", "fsdp")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rtol",
        type=float,
        default=1e-3,
        help="allowed relative difference of the final loss vs one device",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.batch_size % DEVICES:
        parser.error(f"--epochs must be >= 1 and --batch-size a multiple of {DEVICES}")
    return args


def param_sharding(mesh: jax.sharding.Mesh, layout: str, x: jax.Array):
    """FSDP: split along the first axis when it divides by the mesh size."""
    if layout == "fsdp" and x.ndim and x.shape[0] % mesh.size == 0:
        return NamedSharding(mesh, PartitionSpec("data"))
    return NamedSharding(mesh, PartitionSpec())


def train(layout: str, args: argparse.Namespace, data) -> dict:
    """Train one run; return its final loss, parameters and state layout."""
    model = models.MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(args.seed))
    graphdef, params, batch_stats = split_for_training(model)
    tx = gt.adam(args.learning_rate)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    n = len(x_train)

    if layout == "single":
        mesh = None
        batch_sharding = None
        opt_state = tx.init(params)
    else:
        mesh = jax.make_mesh(
            (DEVICES,), ("data",), axis_types=(jax.sharding.AxisType.Auto,)
        )
        replicated = NamedSharding(mesh, PartitionSpec())
        batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
        params = jax.device_put(
            params, jax.tree.map(lambda x: param_sharding(mesh, layout, x), params)
        )
        batch_stats = jax.device_put(batch_stats, replicated)
        x_train, y_train = jax.device_put((x_train, y_train), replicated)
        opt_state = gs.init(tx, params)  # moments created in their params' layout

    def batch(idx):
        x, y = x_train[idx], y_train[idx]
        if batch_sharding is not None:  # each device takes 1/8 of the batch
            x = jax.lax.with_sharding_constraint(x, batch_sharding)
            y = jax.lax.with_sharding_constraint(y, batch_sharding)
        return x, y

    train_epoch = batchnorm_epoch(
        graphdef,
        tx,
        batch=batch,
        loss=optax.softmax_cross_entropy_with_integer_labels,
    )

    def epoch(carry, key):
        idx, _ = gt.training.epoch_indices(key, n, args.batch_size)
        return train_epoch(carry, idx)

    carry = (params, batch_stats, opt_state)
    # The carry is donated: each epoch updates parameters and state in place.
    if mesh is None:
        run_epoch = jax.jit(epoch, donate_argnums=0)
    else:  # keep every array where it is: the state stays sharded like params
        layout_of = jax.tree.map(lambda x: x.sharding, carry)
        run_epoch = jax.jit(
            epoch, donate_argnums=0, out_shardings=(layout_of, replicated)
        )
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    for e in range(args.epochs):
        carry, loss = run_epoch(carry, jax.random.fold_in(key, e))
    loss = float(loss)
    seconds = time.perf_counter() - start
    params, _, opt_state = carry
    return {
        "loss": loss,
        "params": params,
        "opt_state": opt_state,
        "seconds": seconds,
    }


def describe_layout(params, opt_state) -> tuple[int, int]:
    """(moments laid out like their parameter, moments that are not)."""
    shardings = gs.state_shardings(gt.adam(), params)
    good = bad = 0
    for leaf, want in zip(
        jax.tree.leaves(opt_state), jax.tree.leaves(shardings), strict=True
    ):
        if leaf.ndim == 0:
            continue
        if leaf.sharding.is_equivalent_to(want, leaf.ndim):
            good += 1
        else:
            bad += 1
    return good, bad


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_or_exit(PROG, lambda: parse_args(argv))
    if jax.device_count() < DEVICES:
        print(
            f"sharded_training: needs {DEVICES} devices, found "
            f"{jax.device_count()}; run with XLA_FLAGS={_FLAG}",
            file=sys.stderr,
        )
        return 2
    data = models.load_digits(seed=args.seed, flatten=True)
    print(
        f"{jax.device_count()} {jax.devices()[0].platform.upper()} devices; digits: "
        f"{len(data.x_train)} training examples, batch {args.batch_size}, "
        f"{args.epochs} epochs, Adam({args.learning_rate})"
    )
    runs = {layout: train(layout, args, data) for layout in LAYOUTS}
    ref = runs["single"]
    ok = True
    print(
        "| run | final train loss | max |Δθ| vs single | moments sharded like θ | s |"
    )
    print("|---|---:|---:|---:|---:|")
    for layout, run in runs.items():
        diff = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0))
            for a, b in zip(
                jax.tree.leaves(run["params"]),
                jax.tree.leaves(ref["params"]),
                strict=True,
            )
        )
        good, bad = describe_layout(run["params"], run["opt_state"])
        close = abs(run["loss"] - ref["loss"]) <= args.rtol * abs(ref["loss"])
        ok &= close and bad == 0
        print(
            f"| {layout} | {run['loss']:.6f} | {diff:.2e} | {good}/{good + bad} "
            f"| {run['seconds']:.2f} |"
        )
    verdict = "match" if ok else "DO NOT match"
    print(
        f"\ndata-parallel and FSDP runs {verdict} the single-device run "
        f"(final loss within rtol={args.rtol}, every moment in its parameter's "
        "sharding)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
