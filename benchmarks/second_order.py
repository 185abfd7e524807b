"""Benchmark: `minimize` against `scipy.optimize.minimize`, in one process, float64.

    python -m benchmarks.second_order [--runs 5]

Problems: L2-regularised logistic regression (d = 30 and d = 1000 features,
plus an intercept) and the 100-D Rosenbrock function (from zeros). Pairs:
our `lbfgs` / SciPy `L-BFGS-B`, `bfgs` / `BFGS`, `newton` / `trust-exact`,
`newton_cg` / `Newton-CG`. Both stop when the gradient norm is <= `TOL`
(SciPy: `gtol`; L-BFGS-B measures it in the max-norm and has `ftol=0`;
Newton-CG has no gradient test, so it gets a tight `xtol`). SciPy gets NumPy
objectives returning value and gradient together (`jac=True`), SciPy's own
`rosen`, `rosen_der`, `rosen_hess` for Rosenbrock, and analytic Hessians.

Wall times are medians over `--runs` runs after a first call that compiles
(reported apart as "compile"). Printed as a Markdown table; ratios are ours /
SciPy (< 1: ours is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

from gradtransforms import second_order as so  # noqa: E402

TOL = 1e-6
MAX_STEPS = 10_000


# --------------------------------------------------------------------------
# Problems: (jax objective, x0 pytree, numpy value_and_grad, numpy hessian)


def logistic_problem(d: int, n: int, lam: float = 1e-3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) / np.sqrt(d)
    logits = x @ rng.normal(size=d) * 3.0 + 0.3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    xa = np.hstack([x, np.ones((n, 1))])
    penalty = lam * np.append(np.ones(d), 0.0)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def loss(p):
        z = xj @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - yj * z) + 0.5 * lam * p["w"] @ p["w"]

    def value_and_grad(v):
        z = xa @ v
        value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * v @ (penalty * v)
        grad = xa.T @ ((1 / (1 + np.exp(-z)) - y) / n) + penalty * v
        return value, grad

    def hess(v):
        s = 1 / (1 + np.exp(-(xa @ v)))
        return xa.T @ ((s * (1 - s) / n)[:, None] * xa) + np.diag(penalty)

    init = {"w": jnp.zeros(d), "b": jnp.zeros(())}
    return loss, init, value_and_grad, hess, np.zeros(d + 1)


def rosenbrock_problem(n: int):
    def rosen(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    def value_and_grad(x):
        return scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)

    return rosen, jnp.zeros(n), value_and_grad, scipy.optimize.rosen_hess, np.zeros(n)


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
    optimizer = make()

    def call():
        result = so.minimize(fun, init, optimizer, max_steps=MAX_STEPS, tol=TOL)
        return jax.block_until_ready(result)

    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    wall = statistics.median(times)
    # `newton` forms one Hessian per update; the others form none (newton_cg's
    # Hessian-vector products are not tallied across updates).
    newton = isinstance(result.state, so.NewtonState)
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


def run_scipy(value_and_grad, hess, x0, method, runs):
    options = {
        "L-BFGS-B": {"gtol": TOL, "ftol": 0.0, "maxiter": MAX_STEPS},
        "BFGS": {"gtol": TOL, "norm": 2, "maxiter": MAX_STEPS},
        "trust-exact": {"gtol": TOL, "maxiter": MAX_STEPS},
        "Newton-CG": {"xtol": 1e-12, "maxiter": MAX_STEPS},
    }[method]
    kwargs = {"hess": hess} if method in ("trust-exact", "Newton-CG") else {}

    def call():
        return scipy.optimize.minimize(
            value_and_grad, x0, jac=True, method=method, options=options, **kwargs
        )

    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return {
        "steps": int(result.nit),
        "nfev": int(result.nfev),
        "njev": int(getattr(result, "njev", result.nfev)),
        "nhev": str(result.nhev) if "hess" in kwargs else "—",
        "grad_norm": float(np.linalg.norm(value_and_grad(result.x)[1])),
        "value": float(result.fun),
        "converged": bool(result.success),
        "wall": statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median)")
    args = parser.parse_args()

    print(
        f"jax {jax.__version__}, scipy {scipy.__version__}, numpy {np.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"float64, tol {TOL:g} on the gradient 2-norm, median of {args.runs} runs"
    )
    print()
    print(
        "| problem | ours / SciPy | iterations | f evals | ∇f evals | H evals "
        "| final ‖g‖ | wall ms (ours / SciPy) | ratio | our compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for problem, build in PROBLEMS.items():
        fun, init, value_and_grad, hess, x0 = build()
        for name, (make, method) in METHODS.items():
            ours = run_ours(fun, init, make, args.runs)
            theirs = run_scipy(value_and_grad, hess, x0, method, args.runs)
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


if __name__ == "__main__":
    main()
