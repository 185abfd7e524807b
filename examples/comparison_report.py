"""The optimizer comparison's outputs: the table, the figure, the JSON record."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from examples.comparison import Outcome, steps_to_target


def mean_ci(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the seeds (axis 0) and the 95% interval's half-width."""
    import gradtransforms as gt

    return gt.tuning.mean_ci(values, axis=0)


def summary(outcome: Outcome, target: float) -> dict[str, Any]:
    """One optimizer's row: chosen rate, test accuracy and loss, speed."""
    accuracy, accuracy_ci = mean_ci(outcome.test_accuracy[:, -1])
    loss, loss_ci = mean_ci(outcome.test_loss[:, -1])
    curve = outcome.test_accuracy.mean(axis=0)
    return {
        "name": outcome.name,
        "learning_rate": outcome.lr,
        "at_grid_edge": outcome.at_grid_edge,
        "test_accuracy": float(accuracy),
        "test_accuracy_ci": float(accuracy_ci),
        "test_loss": float(loss),
        "test_loss_ci": float(loss_ci),
        "steps_to_target": steps_to_target(outcome.steps, curve, target),
        "steps_per_second": outcome.steps_per_second,
        "compile_seconds": outcome.compile_seconds,
    }


def format_table(rows: list[dict[str, Any]], target: float) -> str:
    """The rows as a Markdown table (an edge learning rate is marked *)."""
    lines = [
        f"| optimizer | learning rate | test accuracy | test loss | "
        f"steps to {100 * target:g}% | steps/s | compile s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        edge = "*" if r["at_grid_edge"] else ""
        reached = r["steps_to_target"]
        lines.append(
            f"| {r['name']} | {r['learning_rate']:.2g}{edge} | "
            f"{100 * r['test_accuracy']:.2f} ± {100 * r['test_accuracy_ci']:.2f}% | "
            f"{r['test_loss']:.3f} ± {r['test_loss_ci']:.3f} | "
            f"{'-' if reached is None else reached} | "
            f"{r['steps_per_second']:,.0f} | {r['compile_seconds']:.1f} |"
        )
    return "\n".join(lines)


def plot(outcomes: list[Outcome], path: str, title: str) -> None:
    """Test-accuracy curves with 95% bands; validation accuracy against lr."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, sensitivity) = plt.subplots(1, 2, figsize=(12, 4.4))
    for i, o in enumerate(outcomes):
        color = f"C{i}"
        marker = "o" if len(o.steps) < 3 else None  # a short run: points
        if len(o.test_accuracy) > 1:
            mean, half = mean_ci(o.test_accuracy)
        else:
            mean, half = o.test_accuracy[0], np.zeros(len(o.steps))
        curves.plot(o.steps, mean, color=color, marker=marker, label=o.name)
        curves.fill_between(o.steps, mean - half, mean + half, color=color, alpha=0.2)
        valid = o.tune_valid_accuracy.mean(axis=1)
        sensitivity.plot(o.grid, valid, color=color, marker="o", ms=3, label=o.name)
        sensitivity.plot(o.grid[o.chosen], valid[o.chosen], "*", color=color, ms=12)
    curves.set(
        xlabel="step",
        ylabel="test accuracy (mean, 95% band)",
        title="at each optimizer's tuned learning rate",
    )
    sensitivity.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="final validation accuracy",
        title="learning-rate sensitivity (★ chosen)",
        ylim=(0, 1),
    )
    for ax in (curves, sensitivity):
        ax.grid(alpha=0.3)
    curves.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: str, protocol: dict, outcomes: list[Outcome], rows: list) -> None:
    """The protocol, every optimizer's tuning and retraining curves, the table."""
    record = {
        "protocol": protocol,
        "optimizers": {
            o.name: {
                "learning_rate_grid": o.grid.tolist(),
                "tuning_valid_accuracy": o.tune_valid_accuracy.tolist(),
                "chosen_learning_rate": o.lr,
                "steps": o.steps.tolist(),
                "test_accuracy": o.test_accuracy.tolist(),
                "test_loss": o.test_loss.tolist(),
                "train_loss": o.train_loss.tolist(),
            }
            for o in outcomes
        },
        "table": rows,
    }
    with open(path, "w") as f:
        json.dump(record, f, indent=1, allow_nan=True)
