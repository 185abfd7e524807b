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
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradtransforms as gt
from benchmarks.compiled_steps import (
    add_step,
    first_call,
    jax_step,
    mlp_train_steps,
    peak_bytes,
    same_program,
    torch_step,
    train_step_first_call,
    xla_loops,
)
from benchmarks.harness import (
    machine_description,
    median_min_max,
    paired_ratio,
    time_in_turn,
)
from benchmarks.parameter_trees import make_trees

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


def format_times(t: tuple[float, float, float]) -> str:
    """`median (min–max)` of a timing summary, in milliseconds."""
    med, lo, hi = (1e3 * x for x in t)
    digits = 2 if med >= 1 else 3
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


# ---------------------------------------------------------------------------
# The tables


def time_optimizer(opt_name: str, params, args, use_torch: bool):
    """Every implementation of one optimizer on one tree, timed in turn.

    Returns the timings by implementation and the compiled JAX steps.
    """
    grads = jax.tree.map(lambda x: 1e-2 * jnp.cos(x), params)
    layout = gt.packed_layout(params)
    multi_leaf = len(jax.tree.leaves(params)) > 1
    gt_factory, optax_factory, torch_factory = OPTIMIZERS[opt_name]
    impls, compiled = {}, {}
    run, block, compiled["gt"] = jax_step(gt_factory(), gt.apply_updates, params, grads)
    impls["gt"] = (run, block)
    if multi_leaf:
        run, block, compiled["gt packed"] = jax_step(
            gt_factory(), gt.apply_updates, layout.pack(params), layout.pack(grads)
        )
        impls["gt packed"] = (run, block)
    run, block, compiled["optax"] = jax_step(
        optax_factory(), optax.apply_updates, params, grads
    )
    impls["optax"] = (run, block)
    if use_torch and torch_factory is not None:
        impls["torch"] = torch_step(torch_factory, params, grads)
    if opt_name == "adam" and not multi_leaf:  # timed in the same turns
        impls["x + y"] = add_step(args.size)
    return time_in_turn(impls, args.repeats, args.timing_seconds), compiled


def step_table(trees: dict[str, Any], args, lines: list[str]) -> tuple[Any, list]:
    """One row a tree and optimizer; returns Adam's one-leaf timings and peaks."""
    use_torch = torch is not None and not args.no_torch
    header = "| tree | optimizer | gt ms | gt packed ms | optax ms | torch ms "
    header += "| gt / optax | packed / optax | gt / torch | XLA loops gt / optax "
    header += "| same HLO |"
    lines += [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    adam_one_leaf = None
    memory_rows = []
    for tree_name, params in trees.items():
        multi_leaf = len(jax.tree.leaves(params)) > 1
        for opt_name in args.optimizers:
            samples, compiled = time_optimizer(opt_name, params, args, use_torch)
            t = {k: median_min_max(v) for k, v in samples.items()}

            def ratio(a, b, samples=samples):
                if a not in samples or b not in samples:
                    return "–"
                return f"{paired_ratio(samples[a], samples[b]):.2f}"

            def cell(name, t=t):
                return format_times(t[name]) if name in t else "–"

            same = "yes" if same_program(compiled["gt"], compiled["optax"]) else "no"
            lines.append(
                f"| {tree_name} | {opt_name} | {format_times(t['gt'])} "
                f"| {cell('gt packed')} | {format_times(t['optax'])} "
                f"| {cell('torch')} "
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
    return adam_one_leaf, memory_rows


def bandwidth_table(adam_one_leaf: dict, n: int, lines: list[str]) -> None:
    """x + y's bandwidth, and Adam's effective bandwidth as a share of it."""
    add = adam_one_leaf.pop("x + y")
    bw = 12 * n / statistics.median(add)
    lines += [
        "",
        f"Memory bandwidth, jitted donated x + y over {n:,} float32 (timed in "
        f"turn with the Adam steps): **{bw / 1e9:.1f} GB/s**. Adam on one leaf "
        f"of {n:,} moves 28 bytes a parameter; the percentage is the median "
        "over back-to-back pairs of Adam's bytes per second over x + y's:",
        "",
        "| Adam, one leaf | ms | effective GB/s | % of x + y bandwidth |",
        "|---|---:|---:|---:|",
    ]
    for name, times in adam_one_leaf.items():
        med = statistics.median(times)
        share = statistics.median(
            (28 / t) / (12 / a) for t, a in zip(times, add, strict=True)
        )
        lines.append(
            f"| {name} | {1e3 * med:.2f} | {28 * n / med / 1e9:.1f} "
            f"| {100 * share:.0f}% |"
        )


def memory_table(memory_rows: list, lines: list[str]) -> None:
    """XLA's peak memory of the compiled Adam step, per tree."""
    lines += [
        "",
        "XLA's peak memory of the compiled Adam step (arguments + outputs − donated",
        "aliases + temporaries), MB:",
        "",
        "| tree | gt | gt packed | optax |",
        "|---|---:|---:|---:|",
    ]
    for tree_name, peaks in memory_rows:
        cells = [
            f"{peaks[k] / 2**20:.1f}" if k in peaks else "–"
            for k in ("gt", "gt packed", "optax")
        ]
        lines.append(f"| {tree_name} | " + " | ".join(cells) + " |")


def train_step_table(args, lines: list[str]) -> None:
    """Whole training steps of the BatchNorm MLP, timed in turn."""
    impls = mlp_train_steps(*OPTIMIZERS["adam"][:2])
    samples = time_in_turn(impls, args.repeats, args.timing_seconds)
    train = {k: median_min_max(v) for k, v in samples.items()}
    lines += [
        "",
        "Whole training step of the BatchNorm MLP 64-128-128-10 (batch 64: "
        "forward, backward, Adam), ms:",
        "",
        "| gt | gt packed | optax | gt / optax | packed / optax |",
        "|---:|---:|---:|---:|---:|",
        f"| {format_times(train['gt'])} | {format_times(train['gt packed'])} "
        f"| {format_times(train['optax'])} "
        f"| {paired_ratio(samples['gt'], samples['optax']):.2f} "
        f"| {paired_ratio(samples['gt packed'], samples['optax']):.2f} |",
    ]
    print(lines[-1], flush=True)


def compile_tables(trees: dict[str, Any], args, lines: list[str]) -> None:
    """First-call (trace + compile) seconds by number of leaves; the ResNet tree."""
    make_gt_adam, make_optax_adam, _ = OPTIMIZERS["adam"]
    lines += [
        "",
        "First call (trace + compile, caches cleared), seconds:",
        "",
        "| leaves of 16 floats | Adam step: gt | gt packed | optax "
        "| train step (loss, grad, Adam): gt | gt packed |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for leaves in args.compile_leaves:
        params = {f"w{i:05d}": jnp.ones((16,), jnp.float32) for i in range(leaves)}
        packed = gt.packed_layout(params).pack(params)
        cells = [
            first_call(make_gt_adam, params, params, gt.apply_updates),
            first_call(make_gt_adam, packed, packed, gt.apply_updates),
            first_call(make_optax_adam, params, params, optax.apply_updates),
            train_step_first_call(make_gt_adam, params, packed=False),
            train_step_first_call(make_gt_adam, params, packed=True),
        ]
        lines.append(f"| {leaves} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
        print(lines[-1], flush=True)
    resnet = [(n, t) for n, t in trees.items() if n.startswith("(e)")]
    for tree_name, params in resnet:
        leaves = jax.tree.leaves(params)
        plain, packed = (
            train_step_first_call(make_gt_adam, params, packed=p) for p in (False, True)
        )
        lines += [
            "",
            f"The same toy training step on the {tree_name} tree ({len(leaves)} "
            f"leaves of {len({x.shape for x in leaves})} distinct shapes), "
            f"first call, seconds: gt {plain:.2f}, gt packed {packed:.2f}.",
        ]
        print(lines[-1], flush=True)


def run(args) -> str:
    """Every table of the report, as Markdown."""
    trees = {
        name: tree
        for name, tree in make_trees(args.size, args.leaves).items()
        if name[1] in args.trees
    }
    lines: list[str] = []
    adam_one_leaf, memory_rows = step_table(trees, args, lines)
    if adam_one_leaf is not None:
        bandwidth_table(adam_one_leaf, args.size, lines)
    memory_table(memory_rows, lines)
    train_step_table(args, lines)
    if args.compile_leaves:
        compile_tables(trees, args, lines)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The report


def describe(args) -> str:
    """The machine, the versions and the settings: the report's first line."""
    packages: list[Any] = [jax, optax]
    if torch is not None and not args.no_torch:
        threads = torch.get_num_threads()
        packages.append(f"torch {torch.__version__} ({threads} threads)")
    return (
        f"{machine_description(*packages)} at the start; float32; "
        f"median (min–max) of {args.repeats} timings."
    )


def write_section(path: Path, body: str) -> None:
    """Replace this benchmark's section of `path` by `body` (append it if absent)."""
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
