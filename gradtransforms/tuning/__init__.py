"""Hyperparameter search: spaces, grid/random/TPE samplers, vectorised sweeps.

Tripp's lecture slides (after Goodfellow et al. §11.4; see docs/textbook.md)
name three ways to choose hyperparameters $h$ by treating a performance
measure $m(h)$ as a black box: **grid search** (the product of a few values
per hyperparameter), **random search** (independent draws; better when only
some hyperparameters matter, because every trial then tries a new value of the
important ones) and **model-based search** such as the Tree-structured Parzen
Estimator (TPE, through Optuna). This module gives all three over one search
space, and a trainer that evaluates $m$ for $N$ configurations at once:
`jax.vmap` over hyperparameters injected with `inject_hyperparams`, so the $N$
training runs are one compiled program.

A *space* is a dict `name -> dimension`, the dimensions being `uniform`,
`log_uniform`, `integer` and `choice`. A *configuration batch* ("configs") is
a dict `name -> array of shape (n,)`: floats for the continuous dimensions,
int32 for `integer`, and int32 *indices* into the values of a `choice`
(`decode` turns a batch into Python values, `encode` does the reverse).

    import jax, gradtransforms as gt
    space = {"lr": gt.tuning.log_uniform(1e-4, 1e-1),
             "b2": gt.tuning.uniform(0.9, 0.999)}
    configs = gt.tuning.random(space, 16, jax.random.key(0))
    result = gt.tuning.sweep(problem, space, configs, optimizer=gt.adam,
                             hyperparams={"learning_rate": "lr", "b2": "b2"},
                             num_epochs=10, batch_size=64, key=jax.random.key(1))
    result.final["valid_loss"]          # (16,)
"""

from gradtransforms.tuning.results import SweepResult, best_so_far
from gradtransforms.tuning.samplers import decode, encode, grid, random
from gradtransforms.tuning.space import (
    Choice,
    Integer,
    LogUniform,
    Uniform,
    choice,
    integer,
    log_uniform,
    uniform,
)
from gradtransforms.tuning.stats import mean_ci
from gradtransforms.tuning.sweeps import sweep, sweeper
from gradtransforms.tuning.tpe import SearchResult, tpe_search
from gradtransforms.tuning.trainer import Problem, make_train_fn

__all__ = [
    "Choice",
    "Integer",
    "LogUniform",
    "Problem",
    "SearchResult",
    "SweepResult",
    "Uniform",
    "best_so_far",
    "choice",
    "decode",
    "encode",
    "grid",
    "integer",
    "log_uniform",
    "make_train_fn",
    "mean_ci",
    "random",
    "sweep",
    "sweeper",
    "tpe_search",
    "uniform",
]
