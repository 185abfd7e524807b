"""Benchmark: one optimizer step, gradtransforms against optax and torch.optim.

    python -m benchmarks.optimizer_step [--write benchmarks/RESULTS.md]

Times the update of parameters and optimizer state from fixed gradients (the
part of a training step the optimizer owns), for the same maths in one
process:

* `gt`: `tx.update` then `gt.apply_updates`, jit-compiled, parameters and
  state donated;
* `gt packed`: the same transformation on the parameters packed by
  `gt.packed_layout` (one buffer per dtype; the gradients arrive packed when
  the loss reads `layout.unpack(packed)`, see the performance guide);
* `optax`: `optax.<name>` and `optax.apply_updates`, jit-compiled, donated;
* `torch`: `torch.optim` with `fused=True` where torch has a fused CPU kernel
  (SGD, Adam, AdamW), if torch is installed (`pip install -e ".[bench]"`).

Parameter trees: (a) one leaf of `--size` floats; (b) 1000 leaves totalling
`--size`; (c) 1000 leaves of 16 floats; (d) the BatchNorm MLP of the main job
(64-128-128-10); (e) a ResNet-56-like tree (3 stages x 9 basic blocks, 16/32/64
channels: 3x3 kernels and many small BatchNorm scales and biases).

Each step time is the median (min-max) over `--repeats` timings of a run of
consecutive steps, the implementations measured in turn (the order rotating
between timings) so that background load hits all of them alike, and each
timing after an untimed lead-in of the same steps (torch's worker threads,
still busy after its turn, slowed the JAX step timed next on small trees).
A ratio is the median over timings of the ratio of two timings taken back to
back. "XLA loops" counts the fused loops (kernels) in each compiled step, and
"same HLO" says whether gt's and optax's compiled programs are identical
(source locations aside): for those, a ratio away from 1 is timing noise.

Also reported: the memory bandwidth of a jitted, donated `x + y` (12 bytes a
float) and Adam's effective bandwidth (28 bytes a float: read params, grads,
m, v; write params, m, v); the first-call time (trace + compile) of the
update step and of a toy training step with 500 to 2000 leaves and on the
ResNet-like tree; and XLA's peak memory for the compiled step.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtransforms as gt

try:  # torch is a benchmark-only extra
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

BEGIN = "<!-- optimizer_step: begin (written by benchmarks/optimizer_step.py) -->"
END = "<!-- optimizer_step: end -->"
LR = 1e-3

# name -> (gradtransforms factory, optax factory, torch factory or None)
OPTIMIZERS: dict[str, tuple[Callable, Callable, Callable | None]] = {
    "sgd": (
        lambda: gt.sgd(LR),
        lambda: optax.sgd(LR),
        lambda ps: torch.optim.SGD(ps, lr=LR, fused=True),
    ),
    "momentum": (
        lambda: gt.sgd(LR, momentum=0.9),
        lambda: optax.sgd(LR, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=LR, momentum=0.9, fused=True),
    ),
    "adam": (
        lambda: gt.adam(LR),
        lambda: optax.adam(LR),
        lambda ps: torch.optim.Adam(ps, lr=LR, fused=True),
    ),
    "adamw": (
        lambda: gt.adamw(LR, weight_decay=1e-4),
        lambda: optax.adamw(LR, weight_decay=1e-4),
        lambda ps: torch.optim.AdamW(ps, lr=LR, weight_decay=1e-4, fused=True),
    ),
    "rmsprop": (lambda: gt.rmsprop(LR), lambda: optax.rmsprop(LR), None),
    "clip+adam": (
        lambda: gt.chain(gt.clip_by_global_norm(1.0), gt.adam(LR)),
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR)),
        None,
    ),
}


# ---------------------------------------------------------------------------
# Parameter trees


def _resnet_like(width: int = 16, blocks: int = 9) -> dict:
    tree: dict[str, Any] = {
        "stem": {"kernel": (3, 3, 3, width), "bn": {"scale": width, "bias": width}}
    }
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for b in range(blocks):
            block = {
                "conv1": (3, 3, cin, cout),
                "bn1": {"scale": cout, "bias": cout},
                "conv2": (3, 3, cout, cout),
                "bn2": {"scale": cout, "bias": cout},
            }
            if cin != cout:
                block["proj"] = (1, 1, cin, cout)
                block["bn_proj"] = {"scale": cout, "bias": cout}
            tree[f"stage{stage}_block{b}"] = block
            cin = cout
    tree["head"] = {"kernel": (cin, 10), "bias": 10}
    return tree


def _bn_mlp() -> dict:
    from flax import nnx
    from gradtransforms.models import MLP

    model = MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(0))
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def make_trees(size: int, leaves: int) -> dict[str, Any]:
    """The benchmark's parameter trees, as float32 arrays."""
    side = max(1, round(math.sqrt(size / leaves)))
    shapes = {
        "(a) one leaf": {"w": (size,)},
        f"(b) {leaves} leaves": {f"w{i:04d}": (side, side) for i in range(leaves)},
        f"(c) {leaves} tiny leaves": {f"w{i:04d}": (16,) for i in range(leaves)},
        "(e) ResNet-like": _resnet_like(),
    }
    key = iter(jax.random.split(jax.random.key(0), 10_000))

    def materialise(shape):
        shape = (shape,) if isinstance(shape, int) else shape
        return jax.random.normal(next(key), shape, jnp.float32)

    def is_shape(x):
        return isinstance(x, int | tuple)

    trees = {
        n: jax.tree.map(materialise, s, is_leaf=is_shape) for n, s in shapes.items()
    }
    trees["(d) BatchNorm MLP"] = jax.tree.map(jnp.asarray, _bn_mlp())
    return dict(sorted(trees.items()))


# ---------------------------------------------------------------------------
# Timed steps


def jax_step(tx, apply_updates, params, grads) -> tuple[Callable[[], None], Any]:
    """A closure that runs one donated, jitted step; and the compiled step."""

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return apply_updates(p, u), s

    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = [jax.tree.map(jnp.copy, params), tx.init(params)]
    compiled = jitted.lower(*box, grads).compile()

    def run():
        box[0], box[1] = compiled(box[0], box[1], grads)

    def block():
        jax.block_until_ready(box)

    return run, block, compiled


def torch_step(factory, params, grads):
    torch.manual_seed(0)
    ps = [
        torch.tensor(np.asarray(p), requires_grad=True) for p in jax.tree.leaves(params)
    ]
    for p, g in zip(ps, jax.tree.leaves(grads), strict=True):
        p.grad = torch.tensor(np.asarray(g))
    opt = factory(ps)

    def run():
        opt.step()

    return run, lambda: None


def time_runs(
    impls: dict[str, tuple[Callable, Callable]], repeats: int, seconds: float = 0.2
) -> dict:
    """Seconds per step of each implementation: `repeats` timings, taken in turn.

    Each timing is a run of consecutive steps lasting about `seconds`; the
    r-th timings of all implementations are taken one after another.
    """
    counts = {}
    for name, (run, block) in impls.items():
        run(), block()  # warm up
        start = time.perf_counter()
        for _ in range(3):
            run()
        block()
        per_step = (time.perf_counter() - start) / 3
        counts[name] = int(min(200, max(3, seconds / max(per_step, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(repeats):
        # Rotate who goes first, so no implementation always follows another.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, block = impls[name]
            for _ in range(max(1, counts[name] // 4)):  # untimed lead-in
                run()
            block()
            start = time.perf_counter()
            for _ in range(counts[name]):
                run()
            block()
            samples[name].append((time.perf_counter() - start) / counts[name])
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    """Median, min and max of one implementation's timings."""
    return statistics.median(samples), min(samples), max(samples)


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over timings of a / b, each pair measured back to back.

    Load that comes and goes during the run hits both members of a pair alike,
    so this is steadier than the ratio of the two medians.
    """
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def xla_loops(compiled) -> int:
    """The number of fused loops (kernels) in a compiled step's entry computation."""
    return _computations(compiled).split("\nENTRY ", 1)[1].count(" fusion(")


def same_program(a, b) -> bool:
    """Whether two compiled steps are the same HLO, source locations aside."""
    return _computations(a) == _computations(b)


def _computations(compiled) -> str:
    """A compiled module's computations, without metadata and source tables."""
    text = compiled.as_text()
    starts = [i for i in (text.find("\n%"), text.find("\nENTRY ")) if i >= 0]
    text = text[min(starts) :]
    return re.sub(r", metadata=\{[^}]*\}", "", text)


def add_step(size: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """A jitted, donated `x + y` over `size` float32s: 12 bytes a float."""
    add = jax.jit(lambda x, y: x + y, donate_argnums=0)
    box = [jnp.ones(size, jnp.float32)]
    y = jnp.ones(size, jnp.float32)

    def run():
        box[0] = add(box[0], y)

    return run, lambda: jax.block_until_ready(box)


def peak_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    return (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
        + m.temp_size_in_bytes
    )


def first_call(tx_factory, params, grads, apply_updates) -> float:
    """Seconds to trace and compile one update step (JAX's caches cleared)."""
    jax.clear_caches()
    tx = tx_factory()

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return apply_updates(p, u), s

    start = time.perf_counter()
    jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), grads).compile()
    return time.perf_counter() - start


def train_step_first_call(params: Any, packed: bool) -> float:
    """Trace + compile seconds of a toy loss, its gradient and an Adam step.

    The loss, sum(sin(w) * w) over the leaves, reads every parameter once.
    """
    jax.clear_caches()
    layout = gt.packed_layout(params)
    tx = gt.adam(LR)

    def loss(p):
        p = layout.unpack(p) if packed else p
        return sum(jnp.sum(jnp.sin(w) * w) for w in jax.tree.leaves(p))

    def step(p, s):
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return gt.apply_updates(p, u), s

    p = layout.pack(params) if packed else params
    start = time.perf_counter()
    jax.jit(step, donate_argnums=(0, 1)).lower(p, tx.init(p)).compile()
    return time.perf_counter() - start


def mlp_train_step_times(repeats: int, seconds: float) -> dict:
    """Whole training steps of the BatchNorm MLP (forward, backward, Adam).

    Batches of 64 random inputs; parameters, state and batch statistics
    donated. `gt packed` reads its parameters with `layout.unpack` inside the
    loss, so its gradients come out packed.
    """
    from flax import nnx
    from gradtransforms.models import MLP

    model = MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    layout = gt.packed_layout(params)
    x = jax.random.normal(jax.random.key(1), (64, 64), jnp.float32)
    y = jnp.arange(64) % 10
    impls = {}
    variants = {
        "gt": (gt.adam(LR), gt.apply_updates, lambda p: p, params),
        "gt packed": (
            gt.adam(LR),
            gt.apply_updates,
            layout.unpack,
            layout.pack(params),
        ),
        "optax": (optax.adam(LR), optax.apply_updates, lambda p: p, params),
    }
    for name, (tx, apply_updates, unpack, p0) in variants.items():

        def loss_fn(p, stats, unpack=unpack):
            model = nnx.merge(graphdef, unpack(p), stats, copy=True)
            logits = model(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, nnx.state(model, nnx.BatchStat)

        def step(p, s, stats, tx=tx, apply_updates=apply_updates, loss_fn=loss_fn):
            (_, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p, stats)
            u, s = tx.update(g, s, p)
            return apply_updates(p, u), s, stats

        compiled = (
            jax.jit(step, donate_argnums=(0, 1, 2))
            .lower(p0, tx.init(p0), stats)
            .compile()
        )
        box = [jax.tree.map(jnp.copy, p0), tx.init(p0), jax.tree.map(jnp.copy, stats)]

        def run(box=box, compiled=compiled):
            box[:] = compiled(*box)

        impls[name] = (run, lambda box=box: jax.block_until_ready(box))
    return time_runs(impls, repeats, seconds)


# ---------------------------------------------------------------------------
# The run


def _fmt(t: tuple[float, float, float]) -> str:
    med, lo, hi = (1e3 * x for x in t)
    digits = 2 if med >= 1 else 3
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def run(args) -> str:
    trees = {
        name: tree
        for name, tree in make_trees(args.size, args.leaves).items()
        if name[1] in args.trees
    }
    use_torch = torch is not None and not args.no_torch
    lines: list[str] = []
    out = lines.append

    header = "| tree | optimizer | gt ms | gt packed ms | optax ms | torch ms "
    header += "| gt / optax | packed / optax | gt / torch | XLA loops gt / optax "
    header += "| same HLO |"
    out(header)
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    adam_one_leaf = None
    memory_rows = []
    for tree_name, params in trees.items():
        grads = jax.tree.map(lambda x: 1e-2 * jnp.cos(x), params)
        layout = gt.packed_layout(params)
        packed_params, packed_grads = layout.pack(params), layout.pack(grads)
        multi_leaf = len(jax.tree.leaves(params)) > 1
        for opt_name in args.optimizers:
            gt_factory, optax_factory, torch_factory = OPTIMIZERS[opt_name]
            impls, compiled = {}, {}
            run_, block, compiled["gt"] = jax_step(
                gt_factory(), gt.apply_updates, params, grads
            )
            impls["gt"] = (run_, block)
            if multi_leaf:
                run_, block, compiled["gt packed"] = jax_step(
                    gt_factory(), gt.apply_updates, packed_params, packed_grads
                )
                impls["gt packed"] = (run_, block)
            run_, block, compiled["optax"] = jax_step(
                optax_factory(), optax.apply_updates, params, grads
            )
            impls["optax"] = (run_, block)
            if use_torch and torch_factory is not None:
                impls["torch"] = torch_step(torch_factory, params, grads)
            if opt_name == "adam" and not multi_leaf:  # timed in the same turns
                impls["x + y"] = add_step(args.size)
            samples = time_runs(impls, args.repeats, args.timing_seconds)
            t = {k: summary(v) for k, v in samples.items()}

            def ratio(a, b, samples=samples):
                if a not in samples or b not in samples:
                    return "–"
                return f"{paired_ratio(samples[a], samples[b]):.2f}"

            same = "yes" if same_program(compiled["gt"], compiled["optax"]) else "no"
            out(
                f"| {tree_name} | {opt_name} | {_fmt(t['gt'])} "
                f"| {_fmt(t['gt packed']) if 'gt packed' in t else '–'} "
                f"| {_fmt(t['optax'])} | {_fmt(t['torch']) if 'torch' in t else '–'} "
                f"| {ratio('gt', 'optax')} | {ratio('gt packed', 'optax')} "
                f"| {ratio('gt', 'torch')} "
                f"| {xla_loops(compiled['gt'])} / {xla_loops(compiled['optax'])} "
                f"| {same} |"
            )
            if opt_name == "adam" and not multi_leaf:
                adam_one_leaf = samples
            if opt_name == "adam":
                memory_rows.append(
                    (tree_name, {k: peak_bytes(c) for k, c in compiled.items()})
                )
            print(lines[-1], flush=True)

    n = args.size
    if adam_one_leaf is not None:
        add = adam_one_leaf.pop("x + y")
        bw = 12 * n / statistics.median(add)
        out("")
        out(
            f"Memory bandwidth, jitted donated x + y over {n:,} float32 (timed in "
            f"turn with the Adam steps): **{bw / 1e9:.1f} GB/s**. Adam on one leaf "
            f"of {n:,} moves 28 bytes a parameter; the percentage is the median "
            "over back-to-back pairs of Adam's bytes per second over x + y's:"
        )
        out("")
        out("| Adam, one leaf | ms | effective GB/s | % of x + y bandwidth |")
        out("|---|---:|---:|---:|")
        for name, times in adam_one_leaf.items():
            med = statistics.median(times)
            share = statistics.median(
                (28 / t) / (12 / a) for t, a in zip(times, add, strict=True)
            )
            out(
                f"| {name} | {1e3 * med:.2f} | {28 * n / med / 1e9:.1f} "
                f"| {100 * share:.0f}% |"
            )

    out("")
    out("XLA's peak memory of the compiled Adam step (arguments + outputs − donated")
    out("aliases + temporaries), MB:")
    out("")
    out("| tree | gt | gt packed | optax |")
    out("|---|---:|---:|---:|")
    for tree_name, peaks in memory_rows:
        cells = [
            f"{peaks[k] / 2**20:.1f}" if k in peaks else "–"
            for k in ("gt", "gt packed", "optax")
        ]
        out(f"| {tree_name} | " + " | ".join(cells) + " |")

    train_samples = mlp_train_step_times(args.repeats, args.timing_seconds)
    train = {k: summary(v) for k, v in train_samples.items()}
    out("")
    out(
        "Whole training step of the BatchNorm MLP 64-128-128-10 (batch 64: "
        "forward, backward, Adam), ms:"
    )
    out("")
    out("| gt | gt packed | optax | gt / optax | packed / optax |")
    out("|---:|---:|---:|---:|---:|")
    out(
        f"| {_fmt(train['gt'])} | {_fmt(train['gt packed'])} | {_fmt(train['optax'])} "
        f"| {paired_ratio(train_samples['gt'], train_samples['optax']):.2f} "
        f"| {paired_ratio(train_samples['gt packed'], train_samples['optax']):.2f} |"
    )
    print(lines[-1], flush=True)

    if args.compile_leaves:
        out("")
        out("First call (trace + compile, caches cleared), seconds:")
        out("")
        out(
            "| leaves of 16 floats | Adam step: gt | gt packed | optax "
            "| train step (loss, grad, Adam): gt | gt packed |"
        )
        out("|---:|---:|---:|---:|---:|---:|")
        for leaves in args.compile_leaves:
            params = {f"w{i:05d}": jnp.ones((16,), jnp.float32) for i in range(leaves)}
            layout = gt.packed_layout(params)
            packed = layout.pack(params)
            cells = [
                first_call(OPTIMIZERS["adam"][0], params, params, gt.apply_updates),
                first_call(OPTIMIZERS["adam"][0], packed, packed, gt.apply_updates),
                first_call(OPTIMIZERS["adam"][1], params, params, optax.apply_updates),
                train_step_first_call(params, packed=False),
                train_step_first_call(params, packed=True),
            ]
            out(f"| {leaves} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
            print(lines[-1], flush=True)
        resnet = [(n, t) for n, t in trees.items() if n.startswith("(e)")]
        for tree_name, params in resnet:
            leaves = jax.tree.leaves(params)
            out("")
            out(
                f"The same toy training step on the {tree_name} tree ({len(leaves)} "
                f"leaves of {len({x.shape for x in leaves})} distinct shapes), "
                "first call, seconds: "
                f"gt {train_step_first_call(params, packed=False):.2f}, "
                f"gt packed {train_step_first_call(params, packed=True):.2f}."
            )
            print(lines[-1], flush=True)
    return "\n".join(lines)


def describe(args) -> str:
    versions = f"jax {jax.__version__}, optax {optax.__version__}"
    if torch is not None and not args.no_torch:
        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{jax.default_backend()} backend; {versions}; float32; "
        f"median (min–max) of {args.repeats} timings; load average at the start "
        f"{load:.1f}."
    )


def write_section(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text:
        text = re.sub(
            re.escape(BEGIN) + ".*?" + re.escape(END),
            lambda _: section,
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizer_step")
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--timing-seconds",
        type=float,
        default=0.2,
        help="length of one timing (a run of consecutive steps)",
    )
    parser.add_argument(
        "--trees", nargs="+", default=list("abcde"), choices=list("abcde")
    )
    parser.add_argument(
        "--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS)
    )
    parser.add_argument(
        "--compile-leaves", type=int, nargs="*", default=[500, 1000, 2000]
    )
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--write", type=Path, default=None, metavar="RESULTS_MD")
    args = parser.parse_args(argv)
    for name in ("size", "leaves", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")

    argv = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.optimizer_step " + " ".join(argv)
    start = describe(args)
    print(start, flush=True)
    body = run(args)
    section = (
        "## One optimizer step\n\n"
        "How long the update of parameters and state takes, from fixed "
        "gradients; ratios < 1: gradtransforms is faster. What each column "
        "measures is in the docstring of `benchmarks/optimizer_step.py`.\n\n"
        f"Command: `{command.strip()}`\n\n{start}\n\n{body}\n"
    )
    if args.write is not None:
        write_section(args.write, section)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
