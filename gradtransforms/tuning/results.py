"""Results of a sweep, and the running best of a sequence of trials."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["SweepResult", "as_costs", "best_so_far"]


class SweepResult(NamedTuple):
    """Per-configuration results of `sweep`, as NumPy arrays in `configs` order."""

    configs: dict[str, np.ndarray]
    """The configuration batch that was trained (choices as indices)."""
    metrics: dict[str, np.ndarray]
    """Curves of shape `(n, num_epochs)`: `"train_loss"` (mean minibatch loss
    of each epoch) and `"valid_<name>"` per validation metric."""
    params: Any
    """The final parameters stacked along a leading axis `n`, or None unless
    `keep_params=True`."""
    compile_seconds: float
    """Seconds spent compiling in this call (once per static group and chunk
    size, and for the shared initial parameters and minibatch orders)."""
    run_seconds: float
    """Seconds spent training, after compilation."""

    @property
    def final(self) -> dict[str, np.ndarray]:
        """Each metric after the last epoch, shape `(n,)`."""
        return {k: v[:, -1] for k, v in self.metrics.items()}

    def best(self, metric: str, direction: str = "minimize") -> int:
        """Index of the configuration with the best final `metric` (NaN is worst)."""
        if metric not in self.metrics:
            raise KeyError(f"metric {metric!r} not in {sorted(self.metrics)}.")
        return int(np.argmin(as_costs(self.final[metric], direction)))


def as_costs(values: Any, direction: str) -> np.ndarray:
    """Values as costs to minimise, NaN as +inf."""
    if direction not in ("minimize", "maximize"):
        raise ValueError(
            f"direction must be 'minimize' or 'maximize'; got {direction!r}."
        )
    costs = np.asarray(values, np.float64)
    costs = costs if direction == "minimize" else -costs
    return np.where(np.isnan(costs), np.inf, costs)


def best_so_far(values: Any, direction: str = "minimize") -> np.ndarray:
    """The running best of a sequence of trial results, NaN counting as worst.

    $b_t = \\min_{i \\le t} m(h_i)$ (or $\\max$): the usual way to compare
    search methods at equal budget, plotted against the number of trials $t$.

    Args:
      values: 1-D results $m(h_1), m(h_2), \\dots$ in trial order.
      direction: `"minimize"` or `"maximize"`.

    Returns:
      A float64 array like `values` (NaN until the first finite result).

    Examples:
      >>> import gradtransforms as gt
      >>> gt.tuning.best_so_far([3.0, float("nan"), 1.0, 2.0]).tolist()
      [3.0, 3.0, 1.0, 1.0]
    """
    costs = as_costs(values, direction)
    if costs.ndim != 1:
        raise ValueError(f"values must be 1-D; got shape {costs.shape}.")
    best = np.minimum.accumulate(costs) if costs.size else costs
    best = np.where(np.isinf(best) & (best > 0), np.nan, best)
    return best if direction == "minimize" else -best
