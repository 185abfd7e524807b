"""Benchmark: `minimize` against `scipy.optimize.minimize`, in one process, float64.

    python -m benchmarks.second_order [--runs 5]

Problems: L2-regularised logistic regression (d = 30 and d = 1000 features,
plus an intercept) and the 100-D Rosenbrock function (from zeros). Pairs:
our `lbfgs` / SciPy `L-BFGS-B`, `bfgs` / `BFGS`, `newton` / `trust-exact`,
`newton_cg` / `Newton-CG`. Both stop when the gradient norm is <= `TOL`
(SciPy: `gtol`; L-BFGS-B measures it in the max-norm and has `ftol=0`;
Newton-CG has no gradient test, so it gets a tight `xtol`). The objectives
come from `gradtransforms.problems`: ours minimises `logistic_regression` and
`rosenbrock`; SciPy gets the NumPy transcription `logistic_regression_numpy`
(value, gradient and analytic Hessian, as separate functions) and SciPy's own
`rosen`, `rosen_der`, `rosen_hess` for Rosenbrock.

Wall times are medians over `--runs` runs after a first call that compiles
(reported apart as "compile"). Printed as a Markdown table; ratios are ours /
SciPy (< 1: ours is faster).

Batches (`--batch N`, default 1000): the 2-D Rosenbrock function from `N`
starting points drawn uniformly from [-2, 2]², solved by one
`jax.vmap(minimize)` with `lbfgs` (each member stopping on its own) against a
Python loop of SciPy `L-BFGS-B` calls on SciPy's own NumPy `rosen` and
`rosen_der`.
"""

from __future__ import annotations

import argparse
import statistics

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import gradtransforms as gt  # noqa: E402
from benchmarks.harness import machine_description, time_calls, timed  # noqa: E402
from gradtransforms import problems  # noqa: E402
from gradtransforms import second_order as so  # noqa: E402

TOL = 1e-6
MAX_STEPS = 10_000


# --------------------------------------------------------------------------
# Problems: (jax objective, x0 pytree, numpy (fun, jac, hess), numpy x0)


def logistic_problem(d: int, n: int, lam: float = 1e-3, seed: int = 0):
    """`problems.logistic_regression` on `n` examples drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) / np.sqrt(d)
    logits = x @ rng.normal(size=d) * 3.0 + 0.3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    init = {"w": jnp.zeros(d), "b": jnp.zeros(())}
    numpy = problems.logistic_regression_numpy(x, y, lam)
    return problems.logistic_regression(x, y, lam), init, numpy, np.zeros(d + 1)


def rosenbrock_problem(n: int):
    """`problems.rosenbrock` in `n` dimensions from zeros; SciPy's `rosen` for it."""
    numpy = (scipy.optimize.rosen, scipy.optimize.rosen_der, scipy.optimize.rosen_hess)
    return problems.rosenbrock, jnp.zeros(n), numpy, np.zeros(n)


PROBLEMS = {
    "logistic d=30 (n=5000)": lambda: logistic_problem(30, 5000),
    "logistic d=1000 (n=2000)": lambda: logistic_problem(1000, 2000),
    "Rosenbrock 100-D": lambda: rosenbrock_problem(100),
}

METHODS = {
    "lbfgs": (so.lbfgs, "L-BFGS-B"),
    "bfgs": (so.bfgs, "BFGS"),
    "newton": (so.newton, "trust-exact"),
    "newton_cg": (so.newton_cg, "Newton-CG"),
}


# --------------------------------------------------------------------------
# Runners


def run_ours(fun, init, make, runs):
    """Our `minimize` with the optimizer `make()` from `init` on `fun`."""
    optimizer = make()

    def call():
        result = so.minimize(fun, init, optimizer, max_steps=MAX_STEPS, tol=TOL)
        return jax.block_until_ready(result)

    result, first = timed(call)
    wall = statistics.median(time_calls(call, runs)[0])
    # `newton` forms one Hessian per update; the others form none (newton_cg's
    # Hessian-vector products are not tallied across updates).
    newton = bool(gt.tree.find_states(result.state, so.NewtonState))
    hessians = str(int(result.num_steps)) if newton else "—"
    return {
        "steps": int(result.num_steps),
        "nfev": int(result.num_fun_evals),
        "njev": int(result.num_grad_evals),
        "nhev": hessians,
        "grad_norm": float(result.grad_norm),
        "value": float(result.value),
        "converged": bool(result.converged),
        "wall": wall,
        "compile": max(first - wall, 0.0),
    }


def run_scipy(numpy, x0, method, runs):
    """SciPy's `method` from `x0` on `numpy = (fun, jac, hess)`."""
    fun, jac, hess = numpy
    options = {
        "L-BFGS-B": {"gtol": TOL, "ftol": 0.0, "maxiter": MAX_STEPS},
        "BFGS": {"gtol": TOL, "norm": 2, "maxiter": MAX_STEPS},
        "trust-exact": {"gtol": TOL, "maxiter": MAX_STEPS},
        "Newton-CG": {"xtol": 1e-12, "maxiter": MAX_STEPS},
    }[method]
    kwargs = {"hess": hess} if method in ("trust-exact", "Newton-CG") else {}

    def call():
        return scipy.optimize.minimize(
            fun, x0, jac=jac, method=method, options=options, **kwargs
        )

    times, result = time_calls(call, runs)
    return {
        "steps": int(result.nit),
        "nfev": int(result.nfev),
        "njev": int(getattr(result, "njev", result.nfev)),
        "nhev": str(result.nhev) if "hess" in kwargs else "—",
        "grad_norm": float(np.linalg.norm(jac(result.x))),
        "value": float(result.fun),
        "converged": bool(result.success),
        "wall": statistics.median(times),
    }


def batch_comparison(num_starts: int, runs: int, seed: int = 0) -> dict:
    """Multi-start: one vmapped `minimize` against a loop of SciPy calls."""
    starts = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(num_starts, 2))
    optimizer = so.lbfgs()

    @jax.jit
    def solve_all(x0s):
        return jax.vmap(
            lambda x0: so.minimize(
                problems.rosenbrock, x0, optimizer, max_steps=MAX_STEPS, tol=TOL
            )
        )(x0s)

    def ours():
        return jax.block_until_ready(solve_all(jnp.asarray(starts)))

    result, first = timed(ours)
    wall = statistics.median(time_calls(ours, runs)[0])
    options = {"gtol": TOL, "ftol": 0.0, "maxiter": MAX_STEPS}

    def theirs():
        return [
            scipy.optimize.minimize(
                scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der,
                method="L-BFGS-B", options=options,
            )
            for x0 in starts
        ]  # fmt: skip

    times, scipy_results = time_calls(theirs, max(1, runs // 2))
    solved = np.linalg.norm(np.asarray(result.params) - 1.0, axis=1) < 1e-4
    scipy_solved = [np.linalg.norm(r.x - 1.0) < 1e-4 for r in scipy_results]
    return {
        "starts": num_starts,
        "solved": (int(solved.sum()), int(sum(scipy_solved))),
        "nfev": (
            int(np.sum(result.num_fun_evals)),
            sum(int(r.nfev) for r in scipy_results),
        ),
        "wall": (wall, statistics.median(times)),
        "compile": max(first - wall, 0.0),
    }


def print_batch(row: dict) -> None:
    """The batch comparison as a Markdown table."""
    ours_wall, scipy_wall = row["wall"]
    print(
        "| starts | solved (ours / SciPy) | f evals, total | wall s (ours / SciPy) "
        "| ratio | our compile s |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {row['starts']} | {row['solved'][0]} / {row['solved'][1]} "
        f"| {row['nfev'][0]} / {row['nfev'][1]} "
        f"| {ours_wall:.3f} / {scipy_wall:.3f} | {ours_wall / scipy_wall:.3f} "
        f"| {row['compile']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median)")
    parser.add_argument(
        "--batch", type=int, default=1000, help="starting points of the batch run"
    )
    args = parser.parse_args()

    print(
        f"{machine_description(jax, scipy, np)}; "
        f"float64, tol {TOL:g} on the gradient 2-norm, median of {args.runs} runs"
    )
    print()
    print(
        "| problem | ours / SciPy | iterations | f evals | ∇f evals | H evals "
        "| final ‖g‖ | wall ms (ours / SciPy) | ratio | our compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for problem, build in PROBLEMS.items():
        fun, init, numpy, x0 = build()
        for name, (make, method) in METHODS.items():
            ours = run_ours(fun, init, make, args.runs)
            theirs = run_scipy(numpy, x0, method, args.runs)
            flag = "" if ours["converged"] else " (not converged)"
            print(
                f"| {problem} | {name} / {method}{flag} "
                f"| {ours['steps']} / {theirs['steps']} "
                f"| {ours['nfev']} / {theirs['nfev']} "
                f"| {ours['njev']} / {theirs['njev']} "
                f"| {ours['nhev']} / {theirs['nhev']} "
                f"| {ours['grad_norm']:.1e} / {theirs['grad_norm']:.1e} "
                f"| {1e3 * ours['wall']:.1f} / {1e3 * theirs['wall']:.1f} "
                f"| {ours['wall'] / theirs['wall']:.2f} "
                f"| {ours['compile']:.1f} |",
                flush=True,
            )
    print()
    print(f"Batch: 2-D Rosenbrock from {args.batch} starts, lbfgs / L-BFGS-B")
    print()
    print_batch(batch_comparison(args.batch, args.runs))


if __name__ == "__main__":
    main()
