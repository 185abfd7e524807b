"""Continuation by smoothing (§8.7.6, eq. 8.40) on a rippled bowl.

The objective is a wide bowl plus a cosine ripple,

    J(θ) = a/2 (θ − c)² + b (1 − cos ωθ),   a = 0.5, c = 0.8, b = 1, ω = π,

which has local minima near θ = −4, −2, 2, 4 and 6 and its global minimum θ*
near 0. Gradient descent stops in the minimum of whichever ripple
it starts in. Its Gaussian blur (eq. 8.40) has the closed form

    J_σ(θ) = a/2 (θ − c)² + a σ²/2 + b (1 − exp(−ω²σ²/2) cos ωθ),

a plain bowl for σ ≳ 1. Continuation, gt.chain(gt.smooth_gradient(σ_k),
gt.sgd(lr)), follows the Monte-Carlo gradient of J_σ while σ_k decreases
linearly to 0, then the plain gradient of J; the minimum of the bowl (c)
lies in θ*'s basin, so the iterate is handed down to θ*. For comparison,
annealed gradient noise, gt.chain(gt.add_noise(η, γ), gt.sgd(lr)).

Prints, per method, how many of the starts (a uniform grid on [−6, 6]) end
within 0.25 of θ* and the mean final J; writes continuation.png (J and J_σ for
a few σ with the final points, and the paths against the step). All methods
and starts run in one jit-compiled call: vmap over starts, lax.scan over steps.

Run from the repository root:  python -m examples.continuation [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
from examples.common import OneLineParser, exit_status, positive_int

BOWL, CENTRE, RIPPLE, OMEGA = 0.5, 0.8, 1.0, np.pi  # a, c, b, ω
START_RANGE = 6.0  # starts on a uniform grid over [−6, 6]
SUCCESS_RADIUS = 0.25  # final |θ − θ*| counted as reaching the global minimum
METHODS = ("gradient descent", "continuation (smooth_gradient)", "add_noise")


def objective(theta):
    """J(θ) = a/2 (θ − c)² + b (1 − cos ωθ), summed over the entries of θ."""
    return jnp.sum(
        0.5 * BOWL * (theta - CENTRE) ** 2 + RIPPLE * (1 - jnp.cos(OMEGA * theta))
    )


def blurred_objective(theta: np.ndarray, sigma: float) -> np.ndarray:
    """J_σ(θ) = E J(θ + σε), ε ~ N(0, 1), in closed form (NumPy, elementwise)."""
    bowl = 0.5 * BOWL * ((theta - CENTRE) ** 2 + sigma**2)
    damping = np.exp(-0.5 * (OMEGA * sigma) ** 2)
    return bowl + RIPPLE * (1 - damping * np.cos(OMEGA * theta))


def global_minimum() -> tuple[float, float]:
    """θ* and J(θ*): the best point of a fine grid, polished by Newton steps."""
    grid = np.linspace(-3 * START_RANGE, 3 * START_RANGE, 400_001)
    theta = grid[np.argmin(blurred_objective(grid, 0.0))]
    for _ in range(5):
        slope = BOWL * (theta - CENTRE) + RIPPLE * OMEGA * np.sin(OMEGA * theta)
        curvature = BOWL + RIPPLE * OMEGA**2 * np.cos(OMEGA * theta)
        theta -= slope / curvature
    return float(theta), float(blurred_objective(np.asarray(theta), 0.0))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m examples.continuation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="docs/figures", help="output folder")
    parser.add_argument("--starts", type=positive_int, default=48, help="starts")
    parser.add_argument("--steps", type=positive_int, default=600, help="steps")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--sigma0", type=float, default=1.5, help="first σ")
    parser.add_argument(
        "--smooth-steps",
        type=positive_int,
        default=400,
        help="steps over which σ decreases linearly to 0",
    )
    parser.add_argument(
        "--samples", type=positive_int, default=8, help="gradients per step (even)"
    )
    parser.add_argument("--eta", type=float, default=100.0, help="add_noise η")
    parser.add_argument("--gamma", type=float, default=0.55, help="add_noise γ")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")
    args = parser.parse_args(argv)
    if not 0 < args.lr < 2 / (BOWL + RIPPLE * OMEGA**2):
        parser.error(f"--lr must be in (0, 0.19) for a stable descent; got {args.lr}")
    if not 0 <= args.sigma0 < np.inf:
        parser.error(f"--sigma0 must be a finite number >= 0; got {args.sigma0}")
    if args.samples % 2:
        parser.error(f"--samples must be even (antithetic pairs); got {args.samples}")
    if args.smooth_steps > args.steps:
        parser.error(
            f"--smooth-steps must be <= --steps ({args.steps}); got {args.smooth_steps}"
        )
    for name in ("eta", "gamma"):
        if not 0 <= getattr(args, name) < np.inf:
            parser.error(f"--{name} must be a finite number >= 0")
    return args


def sigma_schedule(args: argparse.Namespace):
    """σ_k: linear from --sigma0 to 0 over --smooth-steps, then 0 (plain J)."""
    return gt.linear_decay_schedule(args.sigma0, 0.0, args.smooth_steps)


def experiment(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Every method from every start, in one compiled call.

    Returns the starts and, per method, the paths (steps + 1, starts).
    """
    sigma = sigma_schedule(args)

    def optimizer(method: str, key: jax.Array):
        if method == METHODS[1]:
            smooth = gt.smooth_gradient(sigma, args.samples, key=key)
            return gt.chain(smooth, gt.sgd(args.lr))
        if method == METHODS[2]:
            return gt.chain(
                gt.add_noise(args.eta, args.gamma, key=key), gt.sgd(args.lr)
            )
        return gt.chain(gt.sgd(args.lr))  # accepts (ignores) value_fn

    def descend(method: str, theta0: jax.Array, key: jax.Array) -> jax.Array:
        tx = optimizer(method, key)

        def step(carry, _):
            theta, state = carry
            grads = jax.grad(objective)(theta)
            updates, state = tx.update(grads, state, theta, value_fn=objective)
            theta = gt.apply_updates(theta, updates)
            return (theta, state), theta

        carry = (theta0, tx.init(theta0))
        _, path = jax.lax.scan(step, carry, None, length=args.steps)
        return jnp.concatenate([theta0[None], path])

    @jax.jit
    def run(starts, keys):
        return {
            m: jax.vmap(lambda t, k, m=m: descend(m, t, k), out_axes=1)(starts, keys)
            for m in METHODS
        }

    starts = jnp.linspace(-START_RANGE, START_RANGE, args.starts)
    keys = jax.random.split(jax.random.key(args.seed), args.starts)
    paths = run(starts, keys)
    return {"starts": np.asarray(starts)} | {m: np.asarray(p) for m, p in paths.items()}


def plot(args, result, theta_star, path) -> None:
    """J and J_σ with the final points; the paths of GD and of continuation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    theta = np.linspace(-START_RANGE - 0.5, START_RANGE + 0.5, 1201)
    for sigma, shade in zip((1.5, 0.6, 0.3), ("0.8", "0.6", "0.4"), strict=True):
        ax.plot(
            theta,
            blurred_objective(theta, sigma),
            color=shade,
            lw=1.2,
            label=f"$J_\\sigma$, σ = {sigma:g}",
        )
    ax.plot(theta, blurred_objective(theta, 0.0), "k", lw=1.6, label="J (σ = 0)")
    styles = {
        METHODS[0]: ("x", "tab:red", 8),
        METHODS[1]: ("o", "tab:blue", 10),
        METHODS[2]: ("^", "tab:orange", 6),
    }
    for method, (marker, color, size) in styles.items():
        final = result[method][-1]
        j = blurred_objective(final, 0.0)
        ax.plot(
            final, j, marker, c=color, mfc="none", ms=size, label=f"final: {method}"
        )
    starts = result["starts"]
    ax.plot(starts, np.full_like(starts, -0.5), "|", color="0.4", label="starts")
    ax.axvline(theta_star, color="tab:green", lw=0.8, ls=":")
    ax.set(
        xlabel="θ", ylabel="objective", title="J and its blur $J_\\sigma$ (eq. 8.40)"
    )
    ax.legend(fontsize=7, loc="upper center", ncol=2)

    steps = np.arange(args.steps + 1)
    for ax, method in zip(axes[1:], METHODS[:2], strict=True):
        ax.plot(steps, result[method], color=styles[method][1], lw=0.6, alpha=0.7)
        ax.axhline(theta_star, color="tab:green", lw=1.0, ls=":", label="θ*")
        ax.set(xlabel="step", ylabel="θ", title=f"Paths: {method}")
        ax.legend(fontsize=8, loc="upper right")
    sigma = np.asarray(jax.vmap(sigma_schedule(args))(jnp.asarray(steps)))
    twin = axes[2].twinx()
    twin.plot(steps, sigma, "k--", lw=1.2, label="σ_k")
    twin.set_ylabel("σ_k (dashed)")
    twin.set_ylim(0, 1.1 * max(args.sigma0, 1e-3))
    twin.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Every method from every start: prints the table, writes the figure."""
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    result = experiment(args)
    elapsed = time.perf_counter() - start
    theta_star, j_star = global_minimum()
    print(
        f"J(θ) = {BOWL:g}/2 (θ − {CENTRE:g})² + {RIPPLE:g} (1 − cos πθ): "
        f"θ* = {theta_star:.4f}, J* = {j_star:.4f}; {args.starts} starts on "
        f"[−{START_RANGE:g}, {START_RANGE:g}], {args.steps} steps of lr {args.lr:g}; "
        f"σ {args.sigma0:g} → 0 over {args.smooth_steps} steps, "
        f"{args.samples} samples; add_noise η = {args.eta:g}, γ = {args.gamma:g}"
    )
    print("| method | success rate | mean final J |\n|---|---:|---:|")
    for method in METHODS:
        final = result[method][-1]
        hits = int(np.sum(np.abs(final - theta_star) < SUCCESS_RADIUS))
        mean_j = float(np.mean(blurred_objective(final, 0.0)))
        print(
            f"| {method} | {hits}/{args.starts} ({100 * hits / args.starts:.0f}%) "
            f"| {mean_j:.4f} |"
        )
    path = os.path.join(args.out, "continuation.png")
    plot(args, result, theta_star, path)
    print(f"compiled and ran in {elapsed:.1f} s; wrote {path}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status("continuation", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
