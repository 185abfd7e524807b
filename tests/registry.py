"""The registry of every optimizer, for the contract tests.

Each entry builds an optimizer from keyword arguments (`factory(**kwargs)`),
so the same entry can be built plainly or through `inject_hyperparams`.
`rosenbrock_kwargs` are settings under which it reaches the Rosenbrock minimum
in `ROSENBROCK_STEPS` steps from (-1.2, 1); they were found by a sweep and are
test settings, not recommendations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gradtransforms as gt

ROSENBROCK_STEPS = 20_000


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., gt.GradientTransformation]
    kwargs: dict[str, Any]
    rosenbrock_kwargs: dict[str, Any]
    static_args: tuple[str, ...] = ()

    def build(self, **overrides: Any) -> gt.GradientTransformation:
        return self.factory(**{**self.kwargs, **overrides})


def _cosine(peak: float) -> gt.Schedule:
    return gt.cosine_decay_schedule(peak, ROSENBROCK_STEPS)


REGISTRY: tuple[Entry, ...] = (
    Entry("sgd", gt.sgd, {"learning_rate": 0.05}, {"learning_rate": 1e-3}),
    Entry(
        "sgd_linear_decay",
        gt.sgd,
        {"learning_rate": gt.linear_decay_schedule(0.1, 0.001, 200)},
        {"learning_rate": gt.linear_decay_schedule(3e-3, 3e-5, ROSENBROCK_STEPS)},
    ),
    Entry(
        "momentum",
        gt.sgd,
        {"learning_rate": 0.02, "momentum": 0.9},
        {"learning_rate": 1e-3, "momentum": 0.9},
    ),
    Entry(
        "nesterov",
        gt.sgd,
        {"learning_rate": 0.02, "momentum": 0.9, "nesterov": True},
        {"learning_rate": 1e-3, "momentum": 0.9, "nesterov": True},
    ),
    Entry("adagrad", gt.adagrad, {"learning_rate": 0.5}, {"learning_rate": 0.3}),
    Entry(
        "rmsprop",
        gt.rmsprop,
        {"learning_rate": 0.01},
        {"learning_rate": _cosine(1e-3)},
    ),
    Entry(
        "rmsprop_centered",
        gt.rmsprop,
        {"learning_rate": 0.01, "centered": True},
        {"learning_rate": _cosine(1e-3), "centered": True},
    ),
    Entry(
        "rmsprop_bias_corrected",
        gt.rmsprop,
        {"learning_rate": 0.01, "bias_correction": True, "eps": 1e-8, "eps_root": 0.0},
        {"learning_rate": _cosine(1e-3), "bias_correction": True},
    ),
    Entry(
        "rmsprop_nesterov",
        gt.rmsprop,
        {"learning_rate": 0.005, "momentum": 0.9, "nesterov": True},
        {"learning_rate": 3e-4, "momentum": 0.9, "nesterov": True},
    ),
    Entry("adam", gt.adam, {"learning_rate": 0.05}, {"learning_rate": 0.03}),
    Entry(
        "nadam",
        gt.adam,
        {"learning_rate": 0.05, "nesterov": True},
        {"learning_rate": _cosine(0.01), "nesterov": True},
    ),
    Entry(
        "adamw",
        gt.adamw,
        {"learning_rate": 0.05, "weight_decay": 1e-3},
        {"learning_rate": 0.03, "weight_decay": 0.0},
    ),
    Entry(
        "clipped_adam",
        lambda max_norm, **kw: gt.chain(
            gt.clip_by_global_norm(max_norm), gt.adam(**kw)
        ),
        {"max_norm": 1.0, "learning_rate": 0.05},
        {"max_norm": 10.0, "learning_rate": 0.03},
    ),
    Entry(
        "guarded_momentum",
        lambda **kw: gt.apply_if_finite(gt.sgd(**kw), max_consecutive_errors=5),
        {"learning_rate": 0.02, "momentum": 0.9},
        {"learning_rate": 1e-3, "momentum": 0.9},
    ),
)

IDS = [e.name for e in REGISTRY]
