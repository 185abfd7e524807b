"""Model-based search with Optuna's Tree-structured Parzen Estimator, in rounds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from gradtransforms.tuning.results import as_costs
from gradtransforms.tuning.samplers import encode
from gradtransforms.tuning.space import (
    Dimension,
    Integer,
    LogUniform,
    Space,
    Uniform,
    check_space,
)
from gradtransforms.validation import check_positive_int

__all__ = ["SearchResult", "tpe_search"]


class SearchResult(NamedTuple):
    """All trials of `tpe_search`, in the order they were asked."""

    configs: dict[str, np.ndarray]
    """The configuration batch of every trial (choices as indices)."""
    values: np.ndarray
    """float64 `(num_trials,)`: the objective of each trial (NaN kept)."""
    study: Any
    """The `optuna.Study`, for Optuna's own analysis and plots."""


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gradtransforms.tuning.tpe_search needs Optuna, an optional "
            "dependency: pip install 'gradtransforms[tuning]' (or pip install "
            "optuna)."
        ) from e
    return optuna


def _suggest(trial: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    out = {}
    for name, dim in space.items():
        if isinstance(dim, Uniform):
            out[name] = trial.suggest_float(name, dim.low, dim.high)
        elif isinstance(dim, LogUniform):
            out[name] = trial.suggest_float(name, dim.low, dim.high, log=True)
        elif isinstance(dim, Integer):
            out[name] = trial.suggest_int(name, dim.low, dim.high)
        else:
            out[name] = trial.suggest_categorical(name, dim.values)
    return out


def tpe_search(
    space: Space,
    evaluate: Callable[[dict[str, jax.Array]], Any],
    *,
    num_trials: int,
    trials_per_round: int,
    seed: int = 0,
    direction: str = "minimize",
    num_startup_trials: int | None = None,
    study: Any = None,
) -> SearchResult:
    """Model-based search with Optuna's Tree-structured Parzen Estimator, in rounds.

    TPE models $m(h)$ from the trials so far: it splits them into the best
    fraction $\\gamma$ and the rest, fits a Parzen (kernel density)
    estimator to each, $\\ell(h)$ and $g(h)$, and proposes the candidate
    maximising $\\ell(h)/g(h)$ — the $h$ most likely to belong to the good
    group. Here each round *asks* `trials_per_round` trials (Optuna's
    constant-liar strategy keeps a round's proposals apart), *evaluates*
    them together with one call `evaluate(configs)` — typically a vmapped
    `sweep` — and *tells* Optuna the results. The first
    `num_startup_trials` trials are random (default: one round). A NaN
    result (a diverged run) is told as the worst possible value, $\\pm\\infty$.

    Optuna is an optional dependency: `pip install 'gradtransforms[tuning]'`.

    Args:
      space: dict `name -> dimension` (Optuna's `suggest_float`, `log=True`,
        `suggest_int` and `suggest_categorical`).
      evaluate: `evaluate(configs) -> values`: a configuration batch of the
        space in, an array of shape `(n,)` out.
      num_trials: total trials, >= 1.
      trials_per_round: trials asked, evaluated and told together, >= 1 (the
        last round may be smaller).
      seed: the seed of the TPE sampler.
      direction: `"minimize"` or `"maximize"` the values.
      num_startup_trials: random trials before TPE starts modelling.
      study: an existing `optuna.Study` to continue (its sampler and
        direction are used; `seed`, `num_startup_trials` are then unused).

    Returns:
      A `SearchResult(configs, values, study)` over the trials of this call.
    """
    optuna = _import_optuna()
    space = check_space(space)
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable; got {evaluate!r}.")
    check_positive_int("num_trials", num_trials)
    check_positive_int("trials_per_round", trials_per_round)
    as_costs([], direction)
    if num_startup_trials is None:
        num_startup_trials = trials_per_round
    else:
        check_positive_int("num_startup_trials", num_startup_trials)
    if study is None:
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=num_startup_trials
        )
        study = optuna.create_study(direction=direction, sampler=sampler)
    elif study.direction.name.lower() != direction:
        raise ValueError(
            f"direction={direction!r} differs from the study's "
            f"{study.direction.name.lower()!r}."
        )
    worst = math.inf if direction == "minimize" else -math.inf
    trials_done: list[dict[str, Any]] = []
    values_done: list[np.ndarray] = []
    while len(trials_done) < num_trials:
        count = min(trials_per_round, num_trials - len(trials_done))
        trials = [study.ask() for _ in range(count)]
        try:
            suggested = [_suggest(trial, space) for trial in trials]
            values = np.asarray(evaluate(encode(space, suggested)), np.float64)
            if values.shape != (count,):
                raise ValueError(
                    f"evaluate must return an array of shape ({count},), one "
                    f"value per configuration; got shape {values.shape}."
                )
        except BaseException:
            for trial in trials:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for trial, value in zip(trials, values, strict=True):
            study.tell(trial, float(value) if np.isfinite(value) else worst)
        trials_done.extend(suggested)
        values_done.append(values)
    configs = encode(space, trials_done)
    return SearchResult(
        configs={k: np.asarray(v) for k, v in configs.items()},
        values=np.concatenate(values_done),
        study=study,
    )
