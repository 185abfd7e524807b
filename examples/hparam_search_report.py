"""The report of `examples/hparam_search.py`: its summary table and its figure.

`summarise` reduces the trials of each search method to the numbers of the
table (the best validation loss of each repeat, its median and mean, how
often the method beats the grid), `format_table` prints them as Markdown and
`plot` draws `hparam_search.png`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def summarise(methods: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, the best trial of each repeat summarised over the repeats."""
    grid_best = np.nanmin(methods["grid"]["losses"], axis=1)
    rows = []
    for label, m in methods.items():
        best = np.array([np.nanmin(trial) for trial in m["losses"]])
        index = [np.argmin(np.nan_to_num(trial, nan=np.inf)) for trial in m["losses"]]
        best_accuracy = np.array(
            [acc[i] for acc, i in zip(m["accuracy"], index, strict=True)]
        )
        distinct = np.mean(
            [len(np.unique(np.round(lr, 6))) for lr in m["learning_rate"]]
        )
        beats = float(np.mean(best[:, None] < grid_best[None, :]))
        rows.append(
            {
                "method": label,
                "repeats": len(best),
                "distinct_learning_rates": float(distinct),
                "median_best_loss": float(np.median(best)),
                "mean_best_loss": float(np.mean(best)),
                "median_best_accuracy": float(np.median(best_accuracy)),
                "beats_grid": beats,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], n: int) -> str:
    """The summary rows as a Markdown table."""
    lines = [
        f"| search ({n} trials) | repeats | distinct learning rates "
        "| best valid loss, median | mean | valid accuracy of the best, median "
        "| P(better than grid) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        beats = "–" if r["method"] == "grid" else f"{r['beats_grid']:.2f}"
        lines.append(
            f"| {r['method']} | {r['repeats']} | {r['distinct_learning_rates']:.0f} "
            f"| {r['median_best_loss']:.4f} | {r['mean_best_loss']:.4f} "
            f"| {r['median_best_accuracy']:.4f} | {beats} |"
        )
    return "\n".join(lines)


COLOURS = {"grid": "tab:blue", "random": "tab:orange", "TPE": "tab:green"}


def plot(
    methods: dict[str, dict[str, Any]],
    path: str,
    n: int,
    ranges: tuple[tuple[float, float], tuple[float, float]],
) -> None:
    """Loss against learning rate; one repeat's points; the best loss so far.

    `ranges` are those of the learning rate and the weight decay (the axes of
    the middle panel).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import gradtransforms.tuning as tuning

    fig, (ax_lr, ax_pts, ax_best) = plt.subplots(1, 3, figsize=(15, 4.4))
    floor = min(np.nanmin(m["losses"]) for m in methods.values())
    for label, m in methods.items():
        colour = COLOURS[label]
        lr = m["learning_rate"].ravel()
        loss = np.clip(np.nan_to_num(m["losses"].ravel(), nan=10.0), None, 10.0)
        ax_lr.scatter(lr, loss, s=6, alpha=0.25, color=colour, label=label)
        ax_pts.scatter(
            m["learning_rate"][0],
            m["weight_decay"][0],
            s=28,
            marker={"grid": "s", "random": "o", "TPE": "^"}[label],
            facecolor="none" if label != "grid" else colour,
            edgecolor=colour,
            label=f"{label} (repeat 1)",
        )
        losses = m["losses"]
        if label == "grid":  # a grid has no order: take its trials in random order
            order = np.random.default_rng(0).permuted(
                np.tile(np.arange(n), (len(losses), 1)), axis=1
            )
            losses = np.take_along_axis(losses, order, axis=1)
        curves = np.stack([tuning.best_so_far(trial) for trial in losses])
        trials = np.arange(1, n + 1)
        median = np.nanmedian(curves, axis=0)
        low, high = np.nanpercentile(curves, [25, 75], axis=0)
        name = "grid (random order)" if label == "grid" else label
        ax_best.plot(trials, median, color=colour, label=name)
        ax_best.fill_between(trials, low, high, color=colour, alpha=0.15)
    ax_lr.set(
        xscale="log",
        yscale="log",
        xlabel="learning rate",
        ylabel="validation loss",
        title="every trial: only the learning rate matters",
    )
    ax_lr.set_ylim(floor * 0.8, 10.0)
    ax_pts.set(
        xscale="log",
        yscale="log",
        xlabel="learning rate (important)",
        ylabel="weight decay (unimportant)",
        title=f"the {n} points of one repeat",
        xlim=ranges[0],
        ylim=ranges[1],
    )
    ax_best.set(
        xlabel="number of trials",
        ylabel="best validation loss so far",
        yscale="log",
        title="best so far (median, 25–75% band)",
    )
    for ax in (ax_lr, ax_pts, ax_best):
        ax.grid(alpha=0.3, which="both")
    ax_lr.legend(fontsize=8, markerscale=2)
    ax_pts.legend(fontsize=8, loc="upper left")
    ax_best.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
