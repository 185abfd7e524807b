"""Constructor fuzzing: invalid hyperparameters fail at construction, by name.

Every public constructor of a numeric hyperparameter is given values outside
its allowed range (negative, NaN, ±inf, out of range, wrong type); each must
raise ValueError or TypeError naming the argument when the optimizer is
built, never later inside jit.
"""

from __future__ import annotations

import math

import pytest

import gradtransforms as gt

NAN, INF = math.nan, math.inf
WRONG_TYPE = ["0.1", None, True, [0.1]]

# constructor, the argument, its other required arguments, invalid values
RULES = [
    (gt.sgd, "learning_rate", {}, [0.0, -0.1, NAN, INF, -INF, *WRONG_TYPE]),
    (gt.sgd, "momentum", {"learning_rate": 0.1}, [-0.1, 1.0, 1.5, NAN, INF, "0.9"]),
    (gt.adagrad, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.adagrad, "eps", {"learning_rate": 0.1}, [-1e-7, NAN, INF, "x"]),
    (gt.adagrad, "eps_root", {"learning_rate": 0.1}, [-1e-7, NAN, INF, "x"]),
    (gt.adagrad, "initial_accumulator_value", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.rmsprop, "decay", {"learning_rate": 0.1}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.rmsprop, "eps", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "eps_root", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "initial_scale", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "momentum", {"learning_rate": 0.1}, [-0.5, 1.0, NAN]),
    (gt.adam, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.adam, "b1", {}, [-0.1, 1.0, 2.0, NAN, INF, "x"]),
    (gt.adam, "b2", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.adam, "eps", {}, [-1e-8, NAN, INF]),
    (gt.adam, "eps_root", {}, [-1e-8, NAN, INF]),
    (gt.adamw, "weight_decay", {}, [-1e-4, NAN, INF, "x"]),
    (gt.trace, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.ema, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.scale, "step_size", {}, [NAN, INF, -INF, *WRONG_TYPE]),
    (gt.clip, "max_delta", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.clip_by_norm, "max_norm", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.clip_by_global_norm, "max_norm", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.add_decayed_weights, "weight_decay", {}, [-1.0, NAN, INF, "x"]),
    (gt.polyak_average, "start_step", {}, [-1, 1.5, NAN, "3", None]),
    (gt.ema_average, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.ema_average, "start_step", {"decay": 0.9}, [-1, 1.5, "3"]),
    (
        gt.linear_decay_schedule,
        "transition_steps",
        {"init_value": 1.0, "end_value": 0.0},
        [0, -3, 2.5, NAN, "4", None],
    ),
    (
        gt.linear_decay_schedule,
        "init_value",
        {"end_value": 0.0, "transition_steps": 4},
        [NAN, INF, "1"],
    ),
    (
        gt.exponential_decay,
        "decay_rate",
        {"init_value": 1.0, "transition_steps": 4},
        [0.0, -0.5, NAN, INF, "x"],
    ),
    (gt.cosine_decay_schedule, "decay_steps", {"init_value": 1.0}, [0, -1, 2.5, "x"]),
    (
        gt.apply_if_finite,
        "max_consecutive_errors",
        {"inner": gt.sgd(0.1)},
        [0, -1, 1.5, "3"],
    ),
    (gt.lbfgs, "memory_size", {}, [0, -1, 2.5, "10"]),
    (gt.newton, "damping", {}, [-1.0, NAN, INF, "x"]),
    (gt.smooth_gradient, "sigma", {}, [-0.1, NAN, INF, "x", [0.1]]),
    (gt.smooth_gradient, "num_samples", {"sigma": 0.1}, [0, -2, 2.5, 3, "4", None]),
    (gt.smooth_gradient, "key", {"sigma": 0.1}, [1.5, "0", None, [0, 1]]),
    (gt.add_noise, "eta", {"gamma": 0.55}, [-1.0, NAN, INF, "x"]),
    (gt.add_noise, "gamma", {"eta": 0.01}, [-1.0, NAN, INF, "x"]),
    (
        gt.training.curriculum_sampler,
        "hard_fraction",
        {"difficulty": [0.1, 0.2, 0.3], "batch_size": 2, "pacing": 0.5},
        [-0.1, 1.5, NAN, "x"],
    ),
    (
        gt.training.curriculum_sampler,
        "batch_size",
        {"difficulty": [0.1, 0.2, 0.3], "pacing": 0.5},
        [0, -1, 2.5, "2"],
    ),
    (
        gt.training.curriculum_sampler,
        "pacing",
        {"difficulty": [0.1, 0.2, 0.3], "batch_size": 2},
        [-0.1, 1.5, NAN, "x"],
    ),
    (
        gt.training.curriculum_sampler,
        "difficulty",
        {"batch_size": 2, "pacing": 0.5},
        [[], [[0.1, 0.2]], [0.1, NAN], "easy"],
    ),
]

CASES = [
    pytest.param(ctor, arg, fixed, bad, id=f"{ctor.__name__}-{arg}-{bad!r}")
    for ctor, arg, fixed, values in RULES
    for bad in values
]


@pytest.mark.parametrize(("ctor", "arg", "fixed", "bad"), CASES)
def test_invalid_value_is_rejected_at_construction(ctor, arg, fixed, bad):
    with pytest.raises((ValueError, TypeError), match=arg):
        ctor(**fixed, **{arg: bad})
