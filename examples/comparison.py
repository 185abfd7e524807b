"""The optimizer comparison's protocol: data splits, models, tuning, retraining.

Every optimizer gets the same treatment (after Choi et al. 2019 and Schmidt,
Schneider & Hennig 2021, whose comparisons show rankings change once each
method is tuned on an equal budget):

1. **Tune.** Its learning rate is chosen from the same log-spaced grid for
   every optimizer, by the final validation accuracy (mean over
   `tune_seeds` seeds; ties go to the lower validation loss), in one
   vectorised `gt.tuning.sweep`. Only the learning rate is tuned: the
   textbook calls it the hyperparameter that matters most (Goodfellow et
   al. §11.4.1; the lecture's "typical effects of learning rate"); momentum
   (0.9), the decay rates and $\\epsilon$ keep the textbook's defaults, and
   SGD and the momentum methods decay the rate linearly to 1% (eq. 8.14).
2. **Retrain.** The chosen setting is trained again under `seeds` fresh
   seeds (one more sweep, vectorised over the seeds) on the training and
   validation splits together, with the same budget in steps, and scored on
   the test split, which played no part in the choice.

The result of each optimizer is the mean test accuracy and loss with a 95%
Student-t interval over the seeds, and the steps its mean test-accuracy
curve takes to reach a target.

Importing this module loads neither JAX nor Flax; the functions do.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

OPTIMIZER_NAMES = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "rmsprop_nesterov",
    "adam",
)
DATASETS = ("digits", "mnist1d")
# Per dataset: model, batch size, steps, evaluation period, target accuracy.
DEFAULTS = {
    "digits": dict(model="mlp", batch_size=64, steps=510, eval_every=17, target=0.97),
    "mnist1d": dict(
        model="mlp", batch_size=100, steps=6000, eval_every=250, target=0.6
    ),
    "npz": dict(model="mlp", batch_size=64, steps=500, eval_every=50, target=0.9),
}


@dataclasses.dataclass(frozen=True)
class Data:
    """Training, validation and test splits of one dataset."""

    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    num_classes: int
    name: str
    kind: str  # "digits", "mnist1d" or "npz"

    def describe(self) -> str:
        sizes = (len(self.train[1]), len(self.valid[1]), len(self.test[1]))
        return f"{self.name}: {sizes[0]} train / {sizes[1]} valid / {sizes[2]} test"


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple:
    """`(x, y)` cut by a seeded permutation into `(rest, held out)`."""
    order = np.random.default_rng(seed).permutation(len(x))
    held = max(1, round(fraction * len(x)))
    return (x[order[held:]], y[order[held:]]), (x[order[:held]], y[order[:held]])


def load_data(dataset: str) -> Data:
    """`digits`, `mnist1d` or an `.npz` path, split train / valid / test.

    The splits are fixed (seed 0), whatever the training seeds: digits keeps
    scikit-learn's 20% test split of `models.load_digits` and holds out 20%
    of the rest for validation; MNIST-1D keeps its 1,000 test sequences and
    holds out 800 of its 4,000 training ones; an `.npz` is cut 60/20/20.
    """
    from gradtransforms import models

    if dataset == "digits":
        split = models.load_digits(validation_fraction=0.2, seed=0, flatten=True)
        train, valid = _split(split.x_train, split.y_train, 0.2, 0)
        test = (split.x_valid, split.y_valid)
        return Data(train, valid, test, 10, "digits (scikit-learn)", "digits")
    if dataset == "mnist1d":
        from examples.mnist1d import load_mnist1d

        arrays = load_mnist1d()
        train, valid = _split(*arrays["train"], 0.2, 0)
        return Data(train, valid, arrays["test"], 10, "MNIST-1D", "mnist1d")
    x, y = models.load_npz(dataset)
    if len(x) < 10:
        raise models.DataError(f"{dataset}: needs at least 10 examples; got {len(x)}.")
    x = x.reshape(len(x), -1)
    scale = float(np.abs(x).max())
    x = x / scale if scale > 1 else x
    rest, test = _split(x, y, 0.2, 0)
    train, valid = _split(*rest, 0.25, 1)
    return Data(train, valid, test, int(y.max()) + 1, os.fspath(dataset), "npz")


def model_fn(data: Data, model: str) -> tuple[Callable, str]:
    """`(model_fn(rngs), description)` of the model trained on `data`.

    The BatchNorm MLP (two hidden layers of 128, He init) on digits and
    `.npz` data; on MNIST-1D the paper's models with PyTorch's default
    initialisation (`examples/mnist1d.py`): an MLP 40-100-100-10 with a skip
    connection, or the 1-D CNN, without BatchNorm.
    """
    from gradtransforms import models

    inputs = data.train[0].shape[1]
    classes = data.num_classes
    if data.kind != "mnist1d":
        features = (inputs, 128, 128, classes)
        return (
            lambda rngs: models.MLP(features, batch_norm=True, rngs=rngs),
            f"MLP {'-'.join(map(str, features))} with BatchNorm",
        )
    from examples.mnist1d import model_fn as paper_model

    if model == "mlp":
        mlp = "the paper's MLP, 40-100-100-10 with a skip connection"
        return paper_model("mlp"), mlp
    return paper_model("cnn"), "the paper's 1-D CNN, 3 x 25 channels"


def recipe(name: str, total_steps: int) -> dict[str, Any]:
    """`sweep`'s optimizer keywords for `name`, its learning rate `"lr"`."""
    import gradtransforms as gt

    decay = lambda h: gt.linear_decay_schedule(h["lr"], h["lr"] / 100, total_steps)
    momentum = {"momentum": 0.9}
    recipes = {
        "sgd": (gt.sgd, {}, decay),
        "momentum": (gt.sgd, momentum, decay),
        "nesterov": (gt.sgd, {**momentum, "nesterov": True}, decay),
        "adagrad": (gt.adagrad, {}, "lr"),
        "rmsprop": (gt.rmsprop, {}, "lr"),
        "rmsprop_nesterov": (gt.rmsprop, {**momentum, "nesterov": True}, "lr"),
        "adam": (gt.adam, {}, "lr"),
    }
    factory, fixed, lr = recipes[name]
    return dict(
        optimizer=factory,
        optimizer_kwargs=fixed,
        hyperparams={"learning_rate": lr},
        static_args=("nesterov",) if "nesterov" in fixed else (),
    )


def lr_grid(low: float, high: float, num: int) -> np.ndarray:
    """`num` learning rates, log-spaced from `low` to `high`, both included."""
    return np.geomspace(low, high, num) if num > 1 else np.asarray([low])


def choose(valid_accuracy: np.ndarray, valid_loss: np.ndarray) -> int:
    """The best configuration: highest mean accuracy, ties to the lower loss.

    Both arguments are `(configurations, seeds)`; NaN (a diverged run) is worst.
    """
    accuracy = np.nan_to_num(valid_accuracy.mean(axis=1), nan=-np.inf)
    loss = np.nan_to_num(valid_loss.mean(axis=1), nan=np.inf)
    return int(np.lexsort((loss, -accuracy))[0])


def steps_to_target(steps: np.ndarray, curve: np.ndarray, target: float) -> int | None:
    """The first evaluation step at which `curve` reaches `target`, or None."""
    reached = np.flatnonzero(np.asarray(curve) >= target)
    return int(steps[reached[0]]) if reached.size else None


@dataclasses.dataclass
class Outcome:
    """One optimizer's tuning and retraining."""

    name: str
    grid: np.ndarray
    tune_valid_accuracy: np.ndarray  # (grid, tune seeds)
    chosen: int
    steps: np.ndarray  # evaluation steps, (T,)
    test_accuracy: np.ndarray  # (seeds, T)
    test_loss: np.ndarray  # (seeds, T)
    train_loss: np.ndarray  # (seeds, T)
    steps_per_second: float
    compile_seconds: float

    @property
    def lr(self) -> float:
        return float(self.grid[self.chosen])

    @property
    def at_grid_edge(self) -> bool:
        return self.chosen in (0, len(self.grid) - 1) and len(self.grid) > 1


def problems(data: Data, model_fn: Callable) -> tuple[Any, Any]:
    """`(tuning, retraining)` problems: train vs valid, then train + valid.

    Both score the test split too (the tuning runs' test scores are reported
    only by `--quick`, which does not retrain).
    """
    import jax.numpy as jnp

    import gradtransforms as gt
    from gradtransforms import models

    def loss(model, batch):
        return models.cross_entropy(model(batch[0]), batch[1])

    def metrics(model, batch):
        logits = model(batch[0])
        return {
            "loss": models.cross_entropy(logits, batch[1]),
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch[1]),
        }

    test = {"test": data.test}
    tuning = gt.tuning.Problem.from_nnx(
        model_fn, loss, data.train, data.valid, metrics_fn=metrics, eval_data=test
    )
    both = tuple(
        np.concatenate(pair) for pair in zip(data.train, data.valid, strict=True)
    )
    retraining = gt.tuning.Problem.from_nnx(
        model_fn, loss, both, metrics_fn=metrics, eval_data=test
    )
    return tuning, retraining


def compare_one(
    name: str, problems: tuple[Any, Any], settings: dict, protocol: Any
) -> Outcome:
    """Tune `name`'s learning rate on the grid, then retrain it over seeds."""
    import jax
    import jax.numpy as jnp

    import gradtransforms as gt

    grid = lr_grid(protocol.lr_low, protocol.lr_high, protocol.grid)
    space = {"lr": gt.tuning.log_uniform(float(grid[0]), float(grid[-1]) * 1.001)}
    keywords = {**recipe(name, protocol.steps), **settings}
    key = jax.random.key(protocol.seed)
    tuned = gt.tuning.sweep(
        problems[0],
        space,
        {"lr": jnp.asarray(grid, jnp.float32)},
        key=key,
        seeds=protocol.tune_seeds,
        **keywords,
    )
    accuracy = tuned.final["valid_accuracy"]
    chosen = choose(accuracy, tuned.final["valid_loss"])
    if protocol.retrain:
        # Fresh seeds: the reported runs are not the ones the choice was made on.
        result = gt.tuning.sweep(
            problems[1],
            space,
            {"lr": jnp.asarray(grid[chosen : chosen + 1], jnp.float32)},
            key=jax.random.fold_in(key, 1),
            seeds=protocol.seeds,
            **keywords,
        )
        row, seconds = 0, result.run_seconds
        compile_seconds = tuned.compile_seconds + result.compile_seconds
        runs = protocol.seeds
    else:  # --quick: report the chosen setting's tuning runs
        result, row, seconds = tuned, chosen, tuned.run_seconds
        compile_seconds, runs = tuned.compile_seconds, len(grid) * protocol.tune_seeds
    curves = {k: np.asarray(v[row]) for k, v in result.metrics.items()}
    return Outcome(
        name=name,
        grid=grid,
        tune_valid_accuracy=np.asarray(accuracy),
        chosen=chosen,
        steps=np.asarray(result.eval_steps),
        test_accuracy=curves["test_accuracy"],
        test_loss=curves["test_loss"],
        train_loss=curves["train_loss"],
        steps_per_second=runs * protocol.steps / seconds if seconds else math.nan,
        compile_seconds=compile_seconds,
    )
