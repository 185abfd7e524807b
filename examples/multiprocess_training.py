"""Data-parallel training across processes with `jax.distributed` (CPU: gloo).

Each process holds a replica of the BatchNorm MLP's parameters and of the
optimizer state (Adam), and a slice of every minibatch; under `jax.jit`, XLA
all-reduces the gradients across processes (on CPU through the gloo
collectives, JAX's default `jax_cpu_collectives_implementation`). Every
process sees the same *global* minibatch as a single-process run, so the
final parameters must equal that run's up to the order of floating-point
additions.

Run from the repository root. The launcher starts N local processes on a free
port, waits for them, trains the single-process reference and compares:

    python -m examples.multiprocess_training --launch 2

One process of a run by hand (what the launcher starts; start all N):

    python -m examples.multiprocess_training --num-processes 2 \\
        --process-id 0 --coordinator localhost:12345 --out /tmp/mp
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from examples.common import (
    OneLineParser,
    batchnorm_epoch,
    parse_or_exit,
    split_for_training,
)

PROG = "python -m examples.multiprocess_training"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--launch", type=int, default=0, metavar="N", help="start N local processes"
    )
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--coordinator", default=None, help="host:port")
    parser.add_argument("--out", default=None, help="folder for the results")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds")
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="allowed max |Δθ| vs one process"
    )
    return parser.parse_args(argv)


def train(args: argparse.Namespace) -> tuple[dict, float]:
    """Train on this process's share; return (host parameters, final loss).

    With `--num-processes 1` this is the single-process reference; the code
    path is the same.
    """
    import jax
    import optax
    from flax import nnx
    from jax.sharding import NamedSharding, PartitionSpec

    import gradtransforms as gt
    import gradtransforms.sharding as gs
    from gradtransforms import models

    n_proc, rank = jax.process_count(), jax.process_index()
    mesh = jax.make_mesh(
        (jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,)
    )
    replicated = NamedSharding(mesh, PartitionSpec())
    by_example = NamedSharding(mesh, PartitionSpec(None, "data"))  # (steps, B, ...)

    def global_replica(x):
        x = np.asarray(x)
        return jax.make_array_from_process_local_data(replicated, x, x.shape)

    data = models.load_digits(seed=args.seed, flatten=True)
    model = models.MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(args.seed))
    graphdef, params, batch_stats = split_for_training(model)
    params = jax.tree.map(global_replica, params)  # same seed: same values
    batch_stats = jax.tree.map(global_replica, batch_stats)
    tx = gt.adam(args.learning_rate)
    opt_state = gs.init(tx, params)  # replicated like the parameters

    carry = (params, batch_stats, opt_state)
    layout = jax.tree.map(lambda x: x.sharding, carry)
    # The carry is donated: each epoch updates parameters and state in place.
    epoch = batchnorm_epoch(
        graphdef, tx, loss=optax.softmax_cross_entropy_with_integer_labels
    )
    run_epoch = jax.jit(
        epoch,
        donate_argnums=0,
        out_shardings=(layout, replicated),
    )
    n, b = len(data.x_train), args.batch_size
    share = b // n_proc
    key = jax.random.key(args.seed)
    for e in range(args.epochs):
        # Every process draws the same global minibatches, keeps its slice.
        idx, _ = gt.training.epoch_indices(jax.random.fold_in(key, e), n, b)
        idx = np.asarray(idx)[:, rank * share : (rank + 1) * share]
        xs, ys = data.x_train[idx], data.y_train[idx]
        steps = idx.shape[0]
        xs = jax.make_array_from_process_local_data(by_example, xs, (steps, b, 64))
        ys = jax.make_array_from_process_local_data(by_example, ys, (steps, b))
        carry, loss = run_epoch(carry, (xs, ys))
    params = carry[0]
    host = {
        jax.tree_util.keystr(path): np.asarray(x.addressable_data(0))
        for path, x in jax.tree_util.tree_leaves_with_path(params)
    }
    return host, float(np.asarray(loss.addressable_data(0)))


def worker(args: argparse.Namespace) -> int:
    import jax

    if args.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=int(args.timeout),
        )
    if args.batch_size % jax.device_count():
        raise SystemExit(
            f"--batch-size {args.batch_size} must divide by the "
            f"{jax.device_count()} devices"
        )
    params, loss = train(args)
    print(
        f"process {jax.process_index()}/{jax.process_count()}: "
        f"{jax.local_device_count()} local / {jax.device_count()} global devices, "
        f"final loss {loss:.6f}",
        flush=True,
    )
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        name = f"params_{args.process_id}_of_{args.num_processes}.npz"
        np.savez(os.path.join(args.out, name), loss=loss, **params)
    if args.num_processes > 1:
        jax.distributed.shutdown()
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace) -> int:
    """Start `args.launch` processes, then compare with one process."""
    n = args.launch
    out = args.out or tempfile.mkdtemp(prefix="multiprocess_training_")
    coordinator = f"localhost:{_free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    common = [
        "--num-processes", str(n), "--coordinator", coordinator, "--out", out,
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
        "--learning-rate", str(args.learning_rate), "--seed", str(args.seed),
        "--timeout", str(args.timeout),
    ]  # fmt: skip
    start = time.perf_counter()
    procs = []
    for i in range(n):
        command = [sys.executable, "-m", "examples.multiprocess_training", *common]
        procs.append(subprocess.Popen([*command, "--process-id", str(i)], env=env))
    codes = []
    try:
        for p in procs:
            remaining = args.timeout - (time.perf_counter() - start)
            codes.append(p.wait(timeout=max(remaining, 1.0)))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        print(f"multiprocess_training: timed out after {args.timeout:.0f} s")
        return 1
    wall = time.perf_counter() - start
    if any(codes):
        print(f"multiprocess_training: process exit codes {codes}")
        return 1
    print(f"{n} processes finished in {wall:.1f} s (coordinator {coordinator})")

    single = argparse.Namespace(**{**vars(args), "num_processes": 1, "out": None})
    ref, ref_loss = train(single)
    ok = True
    for i in range(n):
        got = np.load(os.path.join(out, f"params_{i}_of_{n}.npz"))
        diff = max(float(np.max(np.abs(got[k] - ref[k]), initial=0.0)) for k in ref)
        same = diff <= args.atol
        ok &= same
        print(
            f"process {i}: final loss {float(got['loss']):.6f} "
            f"(single process {ref_loss:.6f}); max |Δθ| = {diff:.2e}"
        )
    verdict = "equal" if ok else "DO NOT equal"
    print(
        f"final parameters of the {n}-process run {verdict} the single-process "
        f"run's (atol {args.atol})"
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_or_exit(PROG, lambda: parse_args(argv))
    if args.launch:
        return launch(args)
    return worker(args)


if __name__ == "__main__":
    sys.exit(main())
