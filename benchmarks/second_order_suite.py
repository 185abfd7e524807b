"""Benchmark: `minimize` against SciPy on the Moré–Garbow–Hillstrom test set.

    python -m benchmarks.second_order_suite [--runs 1] [--max-steps 5000]
        [--detail] [--problems meyer,wood] [--methods lbfgs,newton] [--json PATH]

Every problem of `gradtransforms.problem_set` (34, float64) from the paper's
starting point, with six pairs: our `lbfgs` / SciPy `L-BFGS-B`, `bfgs` /
`BFGS`, `newton` / `trust-exact`, `newton_cg` / `Newton-CG`,
`conjugate_gradient()` (Polak–Ribière, "cg_pr") / `CG` and
`conjugate_gradient("fletcher_reeves")` ("cg_fr") / `CG`. Ours runs
`minimize(fun, x0, opt, max_steps=..., tol=1e-6)`; SciPy gets the value and
gradient from `jax.jit(jax.value_and_grad(fun))` (and the Hessian from
`jax.jit(jax.hessian(fun))` for trust-exact and Newton-CG) as NumPy, with
`gtol=1e-6` (L-BFGS-B measures it in the max-norm, with `ftol=0`; BFGS and
CG in the 2-norm; Newton-CG has no gradient test and gets `xtol=1e-12`).

**Solved**: the final value is within `RTOL * |ref| + ATOL` of `ref`, the
published minimum value $f^*$ or one of the published local minima.
`RTOL = 1e-5`: the paper gives 6 digits, some truncated (Meyer's 87.9458 is
87.945855..., Jennrich–Sampson's 124.362 is 124.36218...). `ATOL = 1e-8`:
a gradient tolerance of 1e-6 leaves about that much on the problems with a
small $f^*$ (penalty II ends 5e-9 above its 2.93660e-4, Osborne 1 5e-9
above its 5.46489e-5); it makes the test a loose one for Gaussian, whose
$f^* = 1.12793 \\cdot 10^{-8}$ (from $f(x_0) = 3.9 \\cdot 10^{-6}$).

**Counts**: evaluations of $f$: ours `result.num_fun_evals`, SciPy's `nfev`.
"Stall" is the number of evaluations after the last improvement: in a
separate untimed run, each evaluation of $f$ is logged through
`jax.debug.callback(..., ordered=True)` (for SciPy, in the Python function it
calls); an evaluation at the same point as the one before it is dropped
(`jax.hessian` and `jax.linearize` evaluate $f$ at the current point again:
these are not new evaluations); the stall counts the evaluations after the
last one that lowered the best value so far by more than a relative 1e-12.

**Times**: ours, the median of `--runs` runs after a first call that
compiles (reported apart as "compile"); SciPy, the median of `--runs` runs
(its compiled JAX functions warmed up first). The summary gives, per pair,
the problems solved, the median ratio ours / SciPy of evaluations and of
wall time over the problems both solve, and the largest stall; `--detail`
adds a table per problem (with `result.message` where `minimize` has one).
About 14 minutes on 2 (busy) cores, most of it compiling: each of the 204
pairs compiles our solver twice (timed and logged), 1.5 s each; `--methods`
runs a part (about 2 minutes per pair).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

from benchmarks.harness import machine_description, time_calls, timed  # noqa: E402
from gradtransforms import second_order as so  # noqa: E402
from gradtransforms.problem_set import PROBLEMS, SolverProblem  # noqa: E402

TOL = 1e-6
MAX_STEPS = 5000
RTOL = 1e-5
ATOL = 1e-8
IMPROVEMENT = 1e-12  # relative decrease of the best value that counts

# name -> (our optimizer's factory, the SciPy method)
METHODS: dict[str, tuple[Callable[[], Any], str]] = {
    "lbfgs": (so.lbfgs, "L-BFGS-B"),
    "bfgs": (so.bfgs, "BFGS"),
    "newton": (so.newton, "trust-exact"),
    "newton_cg": (so.newton_cg, "Newton-CG"),
    "cg_pr": (so.conjugate_gradient, "CG"),
    "cg_fr": (functools.partial(so.conjugate_gradient, "fletcher_reeves"), "CG"),
}


def is_solved(value: float, problem: SolverProblem) -> bool:
    """`value` is the published f* or a published local minimum (see the doc)."""
    refs = (problem.f_star, *problem.local_minima)
    return math.isfinite(value) and any(
        abs(value - ref) <= RTOL * abs(ref) + ATOL for ref in refs
    )


def stall(log: Sequence[tuple[bytes, float]]) -> tuple[int, int]:
    """(evaluations after the last improvement, evaluations) of a log.

    `log` holds `(point's bytes, value)` per evaluation, in order; one at the
    same point as the one before it is not counted.
    """
    values = [v for i, (x, v) in enumerate(log) if i == 0 or x != log[i - 1][0]]
    best, last = math.inf, -1
    for i, v in enumerate(values):
        if (last < 0 and v < best) or v < best - IMPROVEMENT * abs(best):
            best, last = v, i
    return len(values) - 1 - last, len(values)


def _message(result: Any) -> str:
    """`result.message` where `minimize` has one (else its status, else "")."""
    for field in ("message", "status"):
        if hasattr(result, field):
            return str(np.asarray(getattr(result, field)))
    return ""


def run_ours(problem: SolverProblem, make: Callable[[], Any], max_steps, runs):
    """Our `minimize`: timed runs, then a logged one for the stall."""
    x0, optimizer = jnp.asarray(problem.x0), make()

    def call():
        result = so.minimize(problem.fun, x0, optimizer, max_steps=max_steps, tol=TOL)
        return jax.block_until_ready(result)

    _, first = timed(call)
    times, result = time_calls(call, runs)
    log: list[tuple[bytes, float]] = []

    def record(x, value):
        log.append((np.asarray(x).tobytes(), float(value)))

    def logged(x):
        value = problem.fun(x)
        jax.debug.callback(record, x, value, ordered=True)
        return value

    jax.block_until_ready(
        so.minimize(logged, x0, optimizer, max_steps=max_steps, tol=TOL)
    )
    after, distinct = stall(log)
    wall = statistics.median(times)
    return {
        "value": float(result.value),
        "nfev": int(result.num_fun_evals),
        "steps": int(result.num_steps),
        "converged": bool(result.converged),
        "message": _message(result),
        "wall": wall,
        "compile": max(first - wall, 0.0),
        "stall": after,
        "logged": distinct,
    }


def _scipy_functions(problem: SolverProblem, log: list[tuple[bytes, float]], hessians):
    """`(fun_and_grad, hess)` in NumPy, from jitted JAX; `fun_and_grad` logs."""
    value_and_grad = jax.jit(jax.value_and_grad(problem.fun))
    hessian = jax.jit(jax.hessian(problem.fun))

    def fun_and_grad(x):
        value, grad = value_and_grad(x)
        log.append((np.asarray(x).tobytes(), float(value)))
        return float(value), np.asarray(grad)

    def hess(x):
        return np.asarray(hessian(x))

    fun_and_grad(problem.x0)  # compile
    if hessians:
        hess(problem.x0)
    return fun_and_grad, hess


def run_scipy(problem: SolverProblem, method: str, max_steps: int, runs: int):
    """`scipy.optimize.minimize(method)` with JAX derivatives, as NumPy."""
    log: list[tuple[bytes, float]] = []
    hessians = method in ("trust-exact", "Newton-CG")
    fun_and_grad, hess = _scipy_functions(problem, log, hessians)
    options = {
        "L-BFGS-B": {"gtol": TOL, "ftol": 0.0, "maxiter": max_steps},
        "BFGS": {"gtol": TOL, "norm": 2, "maxiter": max_steps},
        "CG": {"gtol": TOL, "norm": 2, "maxiter": max_steps},
        "trust-exact": {"gtol": TOL, "maxiter": max_steps},
        "Newton-CG": {"xtol": 1e-12, "maxiter": max_steps},
    }[method]
    kwargs = {"hess": hess} if hessians else {}

    def call():
        log.clear()
        return scipy.optimize.minimize(
            fun_and_grad, problem.x0, jac=True, method=method, options=options, **kwargs
        )

    times, result = time_calls(call, runs)
    after, _ = stall(log)
    return {
        "value": float(result.fun),
        "nfev": int(result.nfev),
        "steps": int(result.nit),
        "converged": bool(result.success),
        "message": str(result.message),
        "wall": statistics.median(times),
        "stall": after,
    }


def run_suite(
    problems: Iterable[SolverProblem],
    methods: Iterable[str],
    max_steps: int = MAX_STEPS,
    runs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """One record per (problem, method name of `METHODS`): ours and SciPy's.

    A record has `problem`, `method`, `scipy_method`, `f_star`, and `ours` and
    `scipy`: dicts with `value`, `solved`, `nfev`, `steps`, `converged`,
    `message`, `wall` (s), `stall`, and for ours `compile` (s) and `logged`
    (the distinct evaluations the callback saw).
    """
    methods = list(methods)
    records = []
    for problem in problems:
        scipy_runs: dict[str, dict] = {}  # cg_pr and cg_fr share SciPy's CG
        for name in methods:
            make, method = METHODS[name]
            ours = run_ours(problem, make, max_steps, runs)
            if method not in scipy_runs:
                scipy_runs[method] = run_scipy(problem, method, max_steps, runs)
            theirs = dict(scipy_runs[method])
            for side in (ours, theirs):
                side["solved"] = is_solved(side["value"], problem)
            records.append(
                {
                    "problem": problem.name,
                    "method": name,
                    "scipy_method": method,
                    "f_star": problem.f_star,
                    "ours": ours,
                    "scipy": theirs,
                }
            )
            if progress is not None:
                progress(f"{problem.name} {name}: {ours['value']:.6g}")
    return records


def _median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "—"


def summary_table(records: list[dict]) -> str:
    """Per pair: solved, evaluation and time ratios, largest stall (Markdown)."""
    lines = [
        "| ours / SciPy | solved (ours / SciPy) | median f evals ratio "
        "| median wall ratio | max stall (ours / SciPy) | ours compile s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["method"] for r in records):
        rows = [r for r in records if r["method"] == name]
        both = [r for r in rows if r["ours"]["solved"] and r["scipy"]["solved"]]
        evals = [r["ours"]["nfev"] / max(r["scipy"]["nfev"], 1) for r in both]
        walls = [r["ours"]["wall"] / r["scipy"]["wall"] for r in both]
        solved = [sum(r[s]["solved"] for r in rows) for s in ("ours", "scipy")]
        stalls = [max(r[s]["stall"] for r in rows) for s in ("ours", "scipy")]
        compile_s = statistics.median(r["ours"]["compile"] for r in rows)
        lines.append(
            f"| {name} / {rows[0]['scipy_method']} "
            f"| {solved[0]} / {solved[1]} of {len(rows)} "
            f"| {_median(evals)} ({len(both)} problems) | {_median(walls)} "
            f"| {stalls[0]} / {stalls[1]} | {compile_s:.2f} |"
        )
    return "\n".join(lines)


def detail_table(records: list[dict]) -> str:
    """One row per (problem, pair) (Markdown)."""
    lines = [
        "| problem | ours / SciPy | f* | final f (ours / SciPy) | solved "
        "| f evals | stall | wall ms | our message |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    mark = {True: "yes", False: "no"}
    for r in records:
        o, s = r["ours"], r["scipy"]
        lines.append(
            f"| {r['problem']} | {r['method']} / {r['scipy_method']} "
            f"| {r['f_star']:.6g} | {o['value']:.6g} / {s['value']:.6g} "
            f"| {mark[o['solved']]} / {mark[s['solved']]} "
            f"| {o['nfev']} / {s['nfev']} | {o['stall']} / {s['stall']} "
            f"| {1e3 * o['wall']:.1f} / {1e3 * s['wall']:.1f} | {o['message']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the suite (`python -m benchmarks.second_order_suite --help`)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs (median)")
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS)
    parser.add_argument("--detail", action="store_true", help="per-problem table")
    parser.add_argument("--problems", help="comma-separated names (default: all)")
    parser.add_argument("--methods", help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--json", help="also write the records to this file")
    args = parser.parse_args(argv)
    problems = [
        p for p in PROBLEMS if not args.problems or p.name in args.problems.split(",")
    ]
    methods = args.methods.split(",") if args.methods else list(METHODS)
    print(
        f"{machine_description(jax, scipy, np)}; float64, tol {TOL:g}, "
        f"max steps {args.max_steps}, median of {args.runs} run(s); "
        f"{len(problems)} problems",
        flush=True,
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    records, seconds = timed(
        lambda: run_suite(problems, methods, args.max_steps, args.runs, progress)
    )
    print(f"\n{summary_table(records)}\n")
    if args.detail:
        print(f"{detail_table(records)}\n")
    print(f"(suite: {seconds:.0f} s)")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(records, file, indent=1)
    return records


if __name__ == "__main__":
    main()
