"""The textbook's picture: optimizer paths over the contours of two 2-D problems.

Gradient descent, momentum, Nesterov momentum, AdaGrad, RMSProp, Adam,
nonlinear conjugate gradients, BFGS and damped Newton, each run from the same
start on

* an ill-conditioned quadratic ravine, f(x, y) = (x² + 25 y²) / 2 (condition
  number 25), where gradient descent zig-zags across the valley (§8.2.1) and
  momentum damps the zig-zag (§8.3.2), while the second-order methods (§8.6)
  finish in a handful of steps;
* Rosenbrock's banana valley, f(x, y) = (1 - x)² + 100 (y - x²)².

Writes `trajectories.png` to `--out` and prints, per method and problem, the
number of steps taken and the final distance to the minimum.

    python -m examples.trajectories --out out
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from examples.common import OneLineParser, exit_status
from gradtransforms import problems

PROBLEMS = {
    "ravine": {
        "fun": problems.quadratic(np.diag([1.0, 25.0]), np.zeros(2)),
        "start": (-9.0, 1.6),
        "minimum": (0.0, 0.0),
        "steps": 40,
        "box": ((-10, 3), (-2.2, 2.2)),
    },
    "rosenbrock": {
        "fun": problems.rosenbrock,
        "start": (-1.2, 1.0),
        "minimum": (1.0, 1.0),
        "steps": 600,
        "box": ((-1.6, 1.6), (-0.6, 1.6)),
    },
}


def optimizers(problem: str) -> dict[str, object]:
    """Per problem, a learning rate each first-order method handles well."""
    import gradtransforms as gt

    lr = {"ravine": 0.05, "rosenbrock": 1.5e-3}[problem]
    # Momentum multiplies the step by up to 1/(1 - α) = 10 (§8.3.2).
    lr_momentum = {"ravine": 0.01, "rosenbrock": 1.5e-3}[problem]
    adaptive = {"ravine": 0.5, "rosenbrock": 0.05}[problem]
    return {
        "GD": gt.sgd(lr),
        "momentum": gt.sgd(lr_momentum, momentum=0.9),
        "Nesterov": gt.sgd(lr_momentum, momentum=0.9, nesterov=True),
        "AdaGrad": gt.adagrad(adaptive * 2),
        "RMSProp": gt.rmsprop(adaptive / 2),
        "Adam": gt.adam(adaptive),
        "CG": gt.conjugate_gradient(),
        "BFGS": gt.bfgs(),
        "Newton": gt.newton(),
    }


def run_path(tx, fun: Callable, start, steps: int) -> np.ndarray:
    """The iterates of `tx` on `fun`, stopping early once converged."""
    import jax
    import jax.numpy as jnp

    import gradtransforms as gt

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(fun)(params)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=fun
        )
        return gt.apply_updates(params, updates), state, jnp.linalg.norm(grad)

    params = jnp.asarray(start)
    state = tx.init(params)
    path = [np.asarray(params)]
    for _ in range(steps):
        params, state, grad_norm = step(params, state)
        path.append(np.asarray(params))
        if float(grad_norm) < 1e-6:
            break
    return np.array(path)


def values_on_grid(fun: Callable, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`fun` at every point `(xs[i, j], ys[i, j])` of a mesh grid."""
    import jax
    import jax.numpy as jnp

    points = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], axis=1))
    return np.asarray(jax.vmap(fun)(points)).reshape(xs.shape)


def plot(paths: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    colors = plt.get_cmap("tab10").colors
    for ax, (name, problem) in zip(axes, PROBLEMS.items(), strict=True):
        (x0, x1), (y0, y1) = problem["box"]
        xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        zs = values_on_grid(problem["fun"], xs, ys)
        levels = np.geomspace(max(zs.min(), 1e-3), zs.max(), 18)
        ax.contour(xs, ys, zs, levels=levels, colors="0.8", linewidths=0.8)
        for i, (method, p) in enumerate(paths[name].items()):
            ax.plot(p[:, 0], p[:, 1], "-", color=colors[i], lw=1.3, label=method)
            ax.plot(p[-1, 0], p[-1, 1], "o", color=colors[i], ms=3)
        ax.plot(*problem["start"], "ko", ms=5)
        ax.plot(*problem["minimum"], "k*", ms=11)
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=name, xlabel="x", ylabel="y")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Optimizer paths (start ●, minimum ★)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.trajectories", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default="out", help="output folder")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, dict[str, np.ndarray]]:
    """Every method on both problems: prints the table, writes the figure."""
    os.makedirs(args.out, exist_ok=True)
    paths: dict[str, dict[str, np.ndarray]] = {}
    print("| method | problem | steps | distance to minimum |\n|---|---|---:|---:|")
    for name, problem in PROBLEMS.items():
        paths[name] = {}
        for method, tx in optimizers(name).items():
            p = run_path(tx, problem["fun"], problem["start"], problem["steps"])
            paths[name][method] = p
            dist = float(np.linalg.norm(p[-1] - np.asarray(problem["minimum"])))
            print(f"| {method} | {name} | {len(p) - 1} | {dist:.2e} |")
    plot(paths, os.path.join(args.out, "trajectories.png"))
    print(f"wrote {args.out}/trajectories.png")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status("trajectories", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
