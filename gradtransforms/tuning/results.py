"""Results of a sweep, and the running best of a sequence of trials."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gradtransforms.tuning.stats import mean_ci

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
    eval_steps: np.ndarray | None = None
    """The step count at each evaluation, shape `(T,)`."""
    model_state: Any = None
    """With `keep_params` and a model with state, its final state, stacked
    like `params`; else None."""
    seeds: int | None = None
    """The number of seeds, or None when the results have no seeds axis."""

    @property
    def final(self) -> dict[str, np.ndarray]:
        """Each metric at the last evaluation, shape `(n,)` (or `(n, seeds)`)."""
        return {k: v[..., -1] for k, v in self.metrics.items()}

    def _final(self, metric: str) -> np.ndarray:
        if metric not in self.metrics:
            raise KeyError(f"metric {metric!r} not in {sorted(self.metrics)}.")
        return self.final[metric]

    def best(self, metric: str, direction: str = "minimize") -> int:
        """Index of the configuration with the best final `metric` (NaN is worst).

        With seeds, the best mean over the seeds (a seed's NaN makes the mean
        NaN).
        """
        values = self._final(metric)
        if self.seeds is not None:
            values = values.mean(axis=1)
        return int(np.argmin(as_costs(values, direction)))

    def mean_ci(
        self, metric: str, confidence: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each configuration's mean final `metric` over the seeds, and its CI.

        Returns `(mean, half_width)` of shape `(n,)`: the interval is
        `mean ± half_width` (Student's t, see `gt.tuning.mean_ci`). Needs
        `sweep(..., seeds=k)` with $k \\ge 2$.
        """
        if self.seeds is None:
            raise ValueError(
                "mean_ci needs results over seeds: sweep(..., seeds=k), k >= 2."
            )
        return mean_ci(self._final(metric), axis=1, confidence=confidence)


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
