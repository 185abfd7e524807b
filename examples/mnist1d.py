"""The MNIST-1D table (Greydanus 2020) reproduced with gradtransforms.

MNIST-1D is a 1-D analogue of MNIST built to tell models and training
choices apart at small cost: 4,000 training and 1,000 test sequences of
length 40, ten classes, generated from ten templates by padding, shifting,
scaling, shearing and noise. The paper trains each model with Adam
(learning rate 0.01, no weight decay) for 6,000 steps of 100 examples and
reports its test accuracy: logistic regression 32%, MLP 68%, CNN 94%.

The models are those of the paper's repository (`notebooks/models.py`, run
by its classification notebook for 6,000 steps), built with the library's
models where it has them, with PyTorch's default initialisation (kernels
and biases uniform in $\\pm 1/\\sqrt{\\text{fan-in}}$:
`gt.init.fan_in_uniform` and `gt.init.fan_in_bias_uniform`):

* logistic: `models.LinearClassifier(40, 10)`;
* MLP: the repository's `MLPBase`, two hidden layers of 100 with a skip
  connection around the second: h1 = relu(W1 x + b1),
  h2 = h1 + relu(W2 h1 + b2), logits W3 h2 + b3 (`paper_mlp` below, an NNX
  module: the library's `models.MLP` has no skip connection);
* CNN: `models.CNN` on sequences, three convolutions of 25 channels
  (kernels 5, 3, 3, stride 2, padding 1: lengths 40 → 19 → 10 → 5), ReLU,
  no pooling, flattened into `Linear(125, 10)`.

Each model is one `gt.tuning.sweep` of `Problem.from_nnx`: all `--seeds`
seeds in one compiled program, a budget of `--steps` steps, the test set
scored every `--eval-every` steps. The table gives the final test accuracy as
the mean and 95% confidence interval over the seeds, beside the paper's
table and the final accuracy of the one run per model that the repository's
classification notebook prints (31.5%, 65.1% and 92.3%, each below the
table's figure).
The data come from the `mnist1d` package's offline generator,
`make_dataset(get_dataset_args())` (never its downloading `get_dataset`).

Run from the repository root (1 min 26 s on 2 CPU cores, most of it the
CNN):

    python -m examples.mnist1d
    python -m examples.mnist1d --models mlp cnn --seeds 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from examples.common import (
    OneLineParser,
    UsageError,
    exit_status,
    non_negative_int,
    positive_float,
    positive_int,
)

# Test accuracy (%) of Greydanus (2020), table 1.
PAPER = {"logistic": 32.0, "mlp": 68.0, "cnn": 94.0}
# Test accuracy (%) at step 6,000 of the one run per model printed in the
# repository's notebooks/mnist1d-classification.ipynb, which made that table.
NOTEBOOK = {"logistic": 31.5, "mlp": 65.1, "cnn": 92.3}
LENGTH, CLASSES = 40, 10


def load_mnist1d() -> dict[str, Any]:
    """MNIST-1D from the `mnist1d` package's generator: train and test arrays."""
    import numpy as np

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise UsageError(
            "this example needs the mnist1d package: pip install -e '.[examples]'"
        ) from None
    data = make_dataset(get_dataset_args())  # offline: built from templates
    return {
        "train": (data["x"].astype(np.float32), data["y"].astype(np.int32)),
        "test": (data["x_test"].astype(np.float32), data["y_test"].astype(np.int32)),
    }


def _paper_mlp_class() -> type:
    """`PaperMLP`, built on first use so that importing loads no Flax."""
    import jax
    from flax import nnx

    import gradtransforms as gt

    def linear(m: int, n: int, rngs: Any) -> Any:
        return nnx.Linear(
            m,
            n,
            kernel_init=gt.init.fan_in_uniform(),
            bias_init=gt.init.fan_in_bias_uniform(m),
            rngs=rngs,
        )

    class PaperMLP(nnx.Module):
        """The MLP of the MNIST-1D repository: 40-100-100-10, a skip connection."""

        def __init__(self, rngs: nnx.Rngs, hidden: int = 100):
            self.linear1 = linear(LENGTH, hidden, rngs)
            self.linear2 = linear(hidden, hidden, rngs)
            self.linear3 = linear(hidden, CLASSES, rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            h = jax.nn.relu(self.linear1(x))
            h = h + jax.nn.relu(self.linear2(h))
            return self.linear3(h)

    return PaperMLP


def paper_mlp(rngs: Any) -> Any:
    """The repository's MLP, `h1 + relu(W2 h1 + b2)` on `relu(W1 x + b1)`."""
    return _paper_mlp_class()(rngs)


def model_fn(name: str):
    """`model_fn(rngs)` of a model of the paper, PyTorch's initialisation."""
    import gradtransforms as gt
    from gradtransforms import models

    init = dict(
        kernel_init=gt.init.fan_in_uniform(), bias_init=gt.init.fan_in_bias_uniform()
    )
    if name == "logistic":
        return lambda rngs: models.LinearClassifier(LENGTH, CLASSES, rngs=rngs, **init)
    if name == "mlp":
        return paper_mlp
    return lambda rngs: models.CNN(
        CLASSES,
        spatial_dims=1,
        channels=(25, 25, 25),
        kernel_size=(5, 3, 3),
        strides=2,
        padding=1,
        batch_norm=False,
        max_pool=False,
        head="flatten",
        input_size=LENGTH,
        rngs=rngs,
        **init,
    )


def _loss(model, batch):
    from gradtransforms import models

    x, y = batch
    return models.cross_entropy(model(x), y)


def _metrics(model, batch):
    import jax.numpy as jnp

    from gradtransforms import models

    x, y = batch
    logits = model(x)
    return {
        "loss": models.cross_entropy(logits, y),
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == y),
    }


def train(name: str, data: dict[str, Any], args: argparse.Namespace) -> dict:
    """Every seed of one model, as one vectorised sweep; its test accuracy."""
    import jax
    import jax.numpy as jnp

    import gradtransforms as gt

    problem = gt.tuning.Problem.from_nnx(
        model_fn(name),
        _loss,
        data["train"],
        metrics_fn=_metrics,
        eval_data={"test": data["test"]},
    )
    space = {"lr": gt.tuning.log_uniform(args.lr / 10, args.lr * 10)}
    tic = time.perf_counter()
    result = gt.tuning.sweep(
        problem,
        space,
        {"lr": jnp.asarray([args.lr])},
        optimizer=gt.adam,
        hyperparams={"learning_rate": "lr"},
        num_steps=args.steps,
        eval_every=min(args.eval_every, args.steps),
        batch_size=args.batch_size,
        key=jax.random.key(args.seed),
        seeds=args.seeds,
    )
    accuracy = 100 * result.final["test_accuracy"][0]
    mean, half = gt.tuning.mean_ci(accuracy)
    return {
        "name": name,
        "accuracies": accuracy.tolist(),
        "mean": float(mean),
        "half_width": float(half),
        "seconds": time.perf_counter() - tic,
        "compile_seconds": result.compile_seconds,
    }


def table(rows: list[dict], args: argparse.Namespace) -> str:
    """The results beside the paper's, as a Markdown table."""
    lines = [
        f"MNIST-1D test accuracy, Adam lr {args.lr:g}, {args.steps} steps of "
        f"{args.batch_size}, mean ± 95% CI over {args.seeds} seeds",
        "",
        "| model | paper | paper's notebook | gradtransforms | seeds | s (compile) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        seeds = ", ".join(f"{a:.1f}" for a in r["accuracies"])
        lines.append(
            f"| {r['name']} | {PAPER[r['name']]:.0f}% | {NOTEBOOK[r['name']]}% | "
            f"{r['mean']:.1f} ± "
            f"{r['half_width']:.1f}% | {seeds} | {r['seconds']:.0f} "
            f"({r['compile_seconds']:.0f}) |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="mnist1d",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", choices=list(PAPER), default=list(PAPER))
    parser.add_argument("--steps", type=positive_int, default=6000)
    parser.add_argument("--eval-every", type=positive_int, default=250)
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--lr", type=positive_float, default=1e-2)
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--seed", type=non_negative_int, default=1)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        raise UsageError("--seeds must be at least 2 for a confidence interval")
    if args.batch_size > 4000:
        raise UsageError("--batch-size must be at most 4000, the training set")
    return args


def run(args: argparse.Namespace) -> list[dict]:
    data = load_mnist1d()
    rows = []
    for name in args.models:
        rows.append(train(name, data, args))
        print(f"{name}: {rows[-1]['mean']:.1f}% ({rows[-1]['seconds']:.0f} s)")
    print()
    print(table(rows, args))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return exit_status("mnist1d", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
