"""Benchmark: `lbfgs_b` against SciPy's L-BFGS-B on bounded problems, float64.

    python -m benchmarks.bounded [--runs 3]

The problems: every problem of the Moré–Garbow–Hillstrom set
(`gradtransforms.problem_set`) in a box around its starting point, $x_0 -
1 \\le x \\le x_0 + 1$ (so that for most of them the unconstrained
minimiser lies outside and some bounds are active at the solution; the
published minima do not apply), and four problems of our own: 10-D
Rosenbrock in $[-2, 0.5]$ on the even coordinates and $[-2, 2]$ on the odd
ones, a random convex quadratic in $[-0.5, 0.5]^{20}$, extended Powell in
12-D with $x \\ge 0.1$, and a 100-D least-squares problem plus $\\sum x^4$ in
$[0, 1]^{100}$. Ours: `minimize(fun, x0, lbfgs_b(lower, upper),
tol=1e-6)` (the projected gradient's 2-norm); SciPy: `L-BFGS-B` with the
value and gradient from `jax.jit(jax.value_and_grad(fun))`, `gtol=1e-6`
(its projected gradient's max-norm) and `ftol=0`. A problem counts for a
side when its final value is within `1e-6 * max(1, |f|)` of the better of
the two. Wall times are medians over `--runs` runs, ours after a first
call that compiles.
"""

from __future__ import annotations

import argparse
import statistics

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

from benchmarks.harness import machine_description, time_calls, timed  # noqa: E402
from gradtransforms import problem_set  # noqa: E402
from gradtransforms import second_order as so  # noqa: E402

TOL = 1e-6
MAX_STEPS = 5000


def _own_problems() -> dict:
    """name -> (fun, x0, lower, upper) for the four problems of our own."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 20))
    a = a @ a.T + np.eye(20)
    b = rng.standard_normal(20) * 5
    jac = rng.standard_normal((150, 100))
    r0 = rng.standard_normal(150) * 3

    def quadratic(x):
        return 0.5 * x @ (jnp.asarray(a) @ x) - jnp.asarray(b) @ x

    def powell(x):
        x = x.reshape(-1, 4)
        return jnp.sum(
            (x[:, 0] + 10 * x[:, 1]) ** 2 + 5 * (x[:, 2] - x[:, 3]) ** 2
            + (x[:, 1] - 2 * x[:, 2]) ** 4 + 10 * (x[:, 0] - x[:, 3]) ** 4
        )  # fmt: skip

    def least_squares(x):
        r = jnp.asarray(jac) @ x - jnp.asarray(r0)
        return 0.5 * jnp.sum(r**2) + 0.25 * jnp.sum(x**4)

    upper = np.full(10, 2.0)
    upper[::2] = 0.5
    return {
        "rosenbrock 10-D": (
            _rosenbrock, np.full(10, -1.2), np.full(10, -2.0), upper,
        ),
        "quadratic 20-D": (
            quadratic, np.zeros(20), np.full(20, -0.5), np.full(20, 0.5)
        ),
        "ext. Powell 12-D, x >= 0.1": (
            powell, np.tile([3.0, -1.0, 0.0, 1.0], 3), np.full(12, 0.1),
            np.full(12, np.inf),
        ),
        "least squares 100-D": (
            least_squares, np.full(100, 0.5), np.zeros(100), np.ones(100)
        ),
    }  # fmt: skip


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def bounded_problems() -> dict:
    """name -> (fun, x0, lower, upper): the boxed MGH set and our own four."""
    boxed = {
        f"MGH {p.name}": (p.fun, p.x0, p.x0 - 1.0, p.x0 + 1.0)
        for p in problem_set.PROBLEMS
    }
    return boxed | _own_problems()


def run_pair(fun, x0, lower, upper, runs: int) -> dict:
    """Ours and SciPy's on one problem."""
    optimizer = so.lbfgs_b(jnp.asarray(lower), jnp.asarray(upper))
    start = jnp.asarray(x0)

    def ours():
        result = so.minimize(fun, start, optimizer, max_steps=MAX_STEPS, tol=TOL)
        return jax.block_until_ready(result)

    result, first = timed(ours)
    wall = statistics.median(time_calls(ours, runs)[0])
    value_and_grad = jax.jit(jax.value_and_grad(fun))

    def numpy_fun(x):
        value, grad = value_and_grad(jnp.asarray(x))
        return float(value), np.asarray(grad, np.float64)

    numpy_fun(np.asarray(x0))  # compile outside the timing
    options = {"gtol": TOL, "ftol": 0.0, "maxiter": MAX_STEPS}
    bounds = list(zip(lower, upper, strict=True))

    def theirs():
        return scipy.optimize.minimize(
            numpy_fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
            options=options,
        )  # fmt: skip

    times, reference = time_calls(theirs, runs)
    return {
        "f": (float(result.value), float(reference.fun)),
        "nfev": (int(result.num_fun_evals), int(reference.nfev)),
        "wall": (wall, statistics.median(times)),
        "compile": max(first - wall, 0.0),
        "message": result.message,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median)")
    args = parser.parse_args()
    print(f"{machine_description(jax, scipy, np)}; float64, tol {TOL:g}")
    print()
    print("| problem | f (ours / SciPy) | f evals | wall ms | ratio | our message |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name, (fun, x0, lower, upper) in bounded_problems().items():
        row = run_pair(fun, x0, lower, upper, args.runs)
        rows.append(row)
        (ours_f, scipy_f), (ours_n, scipy_n) = row["f"], row["nfev"]
        ours_w, scipy_w = row["wall"]
        print(
            f"| {name} | {ours_f:.8g} / {scipy_f:.8g} | {ours_n} / {scipy_n} "
            f"| {1e3 * ours_w:.1f} / {1e3 * scipy_w:.1f} "
            f"| {ours_w / scipy_w:.2f} | {row['message']} |",
            flush=True,
        )
    best = [min(r["f"]) for r in rows]
    good = [
        [f - b <= 1e-6 * max(1.0, abs(b)) for f in r["f"]]
        for r, b in zip(rows, best, strict=True)
    ]
    both = [i for i, g in enumerate(good) if all(g)]
    ratio = statistics.median(rows[i]["nfev"][0] / rows[i]["nfev"][1] for i in both)
    walls = statistics.median(rows[i]["wall"][0] / rows[i]["wall"][1] for i in both)
    print()
    print(
        f"At the best value found: ours {sum(g[0] for g in good)}, SciPy "
        f"{sum(g[1] for g in good)} of {len(rows)}; over the {len(both)} both "
        f"reach, median evaluation ratio ours / SciPy {ratio:.2f}, median "
        f"wall-time ratio {walls:.3f}."
    )


if __name__ == "__main__":
    main()
