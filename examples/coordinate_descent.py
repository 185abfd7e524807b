"""Coordinate descent on the textbook's slow case, against Newton's one step (§8.7.2).

f(x) = (x₁ − x₂)² + α(x₁² + x₂²) has its minimum at 0, but for small α the two
variables are strongly coupled: minimising over x₁ alone gives x₁ = x₂/(1 + α),
over x₂ alone x₂ = x₁/(1 + α), so each sweep of exact coordinate descent only
shrinks x by (1 + α)⁻², and reaching |x| < tol takes O(1/α) sweeps. Newton's
method, x ← x − H⁻¹∇f, solves the quadratic in one step.

For each α the script runs exact coordinate descent with
gt.alternating_minimization (the closed-form block minimisers above), and the
gradient-based variant gt.block_coordinate_descent(gt.sgd(lr), labels), which
moves one coordinate per step; with lr = 1/(2 + 2α), the inverse of the
coordinate's curvature, each of its steps lands on the same minimiser, so the
two paths coincide. It prints the sweeps each needs to reach |x| < tol, the
count predicted by the (1 + α)⁻² rate, and Newton's single step (jax.hessian
and jnp.linalg.solve). It writes coordinate_descent.png: the zig-zag path over
the contours for the first α, and |x| against the sweep for every α.

Run from the repository root:  python -m examples.coordinate_descent [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import gradtransforms as gt
from examples.common import OneLineParser, parse_or_exit

matplotlib.use("Agg")
import matplotlib.pyplot as plt

X0 = (-1.0, 2.0)  # the start: x₁ is minimised first, so only x₂ matters


PROG = "python -m examples.coordinate_descent"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--out", default="out", help="output folder (out)")
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=[1e-1, 1e-2, 1e-3],
        help="values of α > 0 (1e-1 1e-2 1e-3)",
    )
    parser.add_argument("--sweeps", type=int, default=5000, help="sweeps to run")
    parser.add_argument("--tol", type=float, default=1e-3, help="target |x|")
    args = parser.parse_args(argv)
    if not all(a > 0 and math.isfinite(a) for a in args.alphas):
        parser.error(f"every --alphas value must be > 0; got {args.alphas}")
    if args.sweeps < 1:
        parser.error(f"--sweeps must be >= 1; got {args.sweeps}")
    if not args.tol > 0:
        parser.error(f"--tol must be > 0; got {args.tol}")
    return args


def f(params: dict, alpha: jax.Array) -> jax.Array:
    """The textbook's example: (x₁ − x₂)² + α(x₁² + x₂²)."""
    x1, x2 = params["x1"], params["x2"]
    return (x1 - x2) ** 2 + alpha * (x1**2 + x2**2)


def start() -> dict:
    return {"x1": jnp.asarray(X0[0]), "x2": jnp.asarray(X0[1])}


def exact_coordinate_descent(alpha: jax.Array, num_sweeps: int) -> dict:
    """Parameters after each sweep of exact minimisation, x₁ then x₂."""
    minimise_x1 = lambda p: {**p, "x1": p["x2"] / (1 + alpha)}
    minimise_x2 = lambda p: {**p, "x2": p["x1"] / (1 + alpha)}
    _, history = gt.alternating_minimization(
        [minimise_x1, minimise_x2], start(), num_sweeps
    )
    return history


def block_gradient_descent(alpha: jax.Array, num_sweeps: int) -> dict:
    """Parameters after each sweep of one SGD step per coordinate, x₁ then x₂."""
    labels = {"x1": "x1", "x2": "x2"}
    tx = gt.block_coordinate_descent(gt.sgd(1 / (2 + 2 * alpha)), labels)

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(f)(params, alpha), state, params)
        params = gt.apply_updates(params, updates)
        return (params, state), params

    params = start()
    _, history = jax.lax.scan(step, (params, tx.init(params)), length=2 * num_sweeps)
    return jax.tree.map(lambda h: h[1::2], history)  # after x₂'s step: a sweep


def newton_step(alpha: jax.Array) -> jax.Array:
    """One Newton step x − H⁻¹∇f from the start, with the Hessian by jax.hessian."""
    vector_f = lambda x: f({"x1": x[0], "x2": x[1]}, alpha)
    x = jnp.asarray(X0)
    return x - jnp.linalg.solve(jax.hessian(vector_f)(x), jax.grad(vector_f)(x))


def predicted_sweeps(alpha: float, tol: float) -> int:
    """Sweeps until |x| < tol: after k sweeps x = x₂⁽⁰⁾((1+α)^(1−2k), (1+α)^(−2k))."""
    size = abs(X0[1]) * math.hypot(1.0, 1.0 + alpha)
    return max(1, math.ceil(math.log(size / tol) / (2 * math.log1p(alpha))))


def first_below(norms: np.ndarray, tol: float) -> int | None:
    """The 1-based sweep at which |x| first falls below tol, or None."""
    hits = np.flatnonzero(norms < tol)
    return int(hits[0]) + 1 if hits.size else None


def run_all(args: argparse.Namespace) -> dict[float, dict[str, np.ndarray]]:
    """Both descents and Newton's step for every α; prints the table of sweeps."""

    @jax.jit
    def run(alpha):
        norm = lambda h: jnp.hypot(h["x1"], h["x2"])
        exact = exact_coordinate_descent(alpha, args.sweeps)
        block = block_gradient_descent(alpha, args.sweeps)
        return exact, norm(exact), norm(block), newton_step(alpha)

    results = {}
    print(
        f"f(x) = (x1 - x2)^2 + alpha (x1^2 + x2^2) from x = {X0}; "
        f"sweeps to reach |x| < {args.tol:g} (at most {args.sweeps})"
    )
    print(
        f"{'alpha':>8}{'exact CD':>10}{'block CD (sgd)':>16}{'predicted':>11}"
        f"{'Newton':>8}{'|x| after Newton':>18}"
    )
    for alpha in args.alphas:
        exact, exact_norm, block_norm, newton = run(jnp.asarray(alpha, jnp.float32))
        exact_norm, block_norm = np.asarray(exact_norm), np.asarray(block_norm)
        newton_norm = float(jnp.linalg.norm(newton))
        cells = [
            first_below(exact_norm, args.tol),
            first_below(block_norm, args.tol),
        ]
        cells = [f">{args.sweeps}" if c is None else str(c) for c in cells]
        newton_steps = "1" if newton_norm < args.tol else ">1"
        print(
            f"{alpha:>8g}{cells[0]:>10}{cells[1]:>16}"
            f"{predicted_sweeps(alpha, args.tol):>11}{newton_steps:>8}"
            f"{newton_norm:>18.1e}"
        )
        results[alpha] = {
            "path": np.stack([np.asarray(exact["x1"]), np.asarray(exact["x2"])], 1),
            "exact": exact_norm,
            "block": block_norm,
            "newton": np.asarray(newton),
        }
    return results


def plot_path(ax, alpha: float, result: dict[str, np.ndarray]) -> None:
    """The zig-zag of exact coordinate descent over the contours, and Newton's step."""
    path = np.concatenate([[X0], result["path"]])
    # The zig-zag: x₁ moves first (horizontally), then x₂ (vertically).
    corners = np.stack([path[1:, 0], path[:-1, 1]], axis=1)
    zigzag = np.empty((2 * len(corners) + 1, 2))
    zigzag[0], zigzag[1::2], zigzag[2::2] = path[0], corners, path[1:]
    lim = 1.15 * np.abs(path).max()
    g1, g2 = np.meshgrid(np.linspace(-lim, lim, 200), np.linspace(-lim, lim, 200))
    ax.contour(
        g1,
        g2,
        (g1 - g2) ** 2 + alpha * (g1**2 + g2**2),
        levels=np.geomspace(1e-3, 10.0, 13),
        colors="0.8",
    )
    ax.plot(
        zigzag[:, 0],
        zigzag[:, 1],
        "-",
        color="tab:blue",
        lw=1.0,
        label="coordinate descent",
    )
    ax.annotate(
        "",
        xy=result["newton"],
        xytext=X0,
        arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.5},
    )
    ax.plot([], [], color="tab:red", label="Newton (one step)")
    ax.plot(*X0, "ko", ms=4, label="start")
    ax.plot(0, 0, "k*", ms=10, label="minimum")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"α = {alpha:g}: exact coordinate steps")
    ax.legend(fontsize=8, loc="lower right")


def plot_norms(ax, results: dict, args: argparse.Namespace) -> None:
    """|x| against the sweep for every α, and Newton's one step."""
    sweeps = np.arange(1, args.sweeps + 1)
    for i, (alpha, r) in enumerate(results.items()):
        color = f"C{i}"
        ax.plot(sweeps, r["exact"], color=color, label=f"α = {alpha:g}")
        ax.plot(sweeps, r["block"], "--", color="k", lw=0.6)
        newton_norm = max(float(np.linalg.norm(r["newton"])), 1e-12)
        ax.plot(1, newton_norm, "x", color=color, ms=8)
    ax.plot([], [], "--", color="k", lw=0.6, label="block CD with sgd")
    ax.plot([], [], "x", color="0.3", label="Newton, 1 step")
    ax.axhline(args.tol, color="0.5", lw=0.8, ls=":", label=f"|x| = {args.tol:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-12, 10.0)  # lower lies float32 underflow, not information
    ax.set_xlabel("sweep (one step per coordinate)")
    ax.set_ylabel("|x| (distance to the minimum)")
    ax.set_title("Coordinate descent needs O(1/α) sweeps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")


def main(argv: Sequence[str] | None = None) -> dict[float, dict[str, np.ndarray]]:
    args = parse_or_exit(PROG, lambda: parse_args(argv))
    os.makedirs(args.out, exist_ok=True)
    begin = time.perf_counter()
    results = run_all(args)
    fig, (ax_path, ax_norm) = plt.subplots(1, 2, figsize=(11, 4.8))
    plot_path(ax_path, args.alphas[0], results[args.alphas[0]])
    plot_norms(ax_norm, results, args)
    fig.tight_layout()
    out = os.path.join(args.out, "coordinate_descent.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out} in {time.perf_counter() - begin:.1f} s")
    return results


if __name__ == "__main__":
    main()
