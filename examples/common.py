"""What the examples share: their command line and their training epoch.

* The command line: `OneLineParser` turns a bad argument into a `UsageError`,
  which `exit_status` (for a `main` that returns an exit status) or
  `parse_or_exit` (for a `main` that returns its results) reports in one line
  on stderr with exit status 2; `positive_int`, `non_negative_int`,
  `positive_float` and `fraction` are argparse types that say in that line
  what they expected.
* `split_for_training`, `batchnorm_epoch` and `accuracy`: a Flax NNX model
  with BatchNorm trained by pure, jit-compilable functions. The model is
  split once (`nnx.split`) into its graph, its parameters and the rest of its
  state (the running statistics); each minibatch step of a `lax.scan` merges
  them again (`nnx.merge`) inside the traced function.

JAX and Flax are imported where they are used, so that `--help` and a bad
argument answer without loading them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# ----------------------------------------------------------------------------
# The command line


class UsageError(Exception):
    """Bad command-line input: the example reports it in one line and exits 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that raises `UsageError` instead of printing usage."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def exit_status(
    prog: str,
    body: Callable[[], object],
    errors: tuple[type[Exception], ...] = (UsageError,),
) -> int:
    """Run `body`: 0 when it returns, 2 with a one-line error on one of `errors`.

    Args:
      prog: the name that starts the error line, `{prog}: error: {message}`.
      body: the example's work, parsing included.
      errors: the exceptions that are the user's mistake (a `ValueError` for
        a data file that cannot be read, say); anything else propagates.

    Returns:
      The exit status, 0 or 2.
    """
    try:
        body()
    except errors as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


def parse_or_exit(prog: str, parse: Callable[[], T]) -> T:
    """Return `parse()`; on a `UsageError`, one line on stderr and exit status 2.

    Args:
      prog: the name that starts the error line, `{prog}: error: {message}`.
      parse: parses (and checks) the command line, raising `UsageError`.

    Returns:
      What `parse` returns.

    Raises:
      SystemExit: with status 2, after the error line.
    """
    try:
        return parse()
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _number(text: str, kind: type[T]) -> T:
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0."""
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (a learning rate, a scale)."""
    value = _number(text, float)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1] (a share of the steps or a batch)."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


# ----------------------------------------------------------------------------
# The loss


# ----------------------------------------------------------------------------
# A BatchNorm model trained by pure functions


def split_for_training(model: Any) -> tuple[Any, Any, Any]:
    """`(graphdef, params, batch_stats)`: the model split once, for pure steps.

    `batch_stats` is all the state that is not an `nnx.Param` (BatchNorm's
    running statistics; empty for a model without BatchNorm).
    """
    from flax import nnx

    return nnx.split(model, nnx.Param, ...)


def batchnorm_epoch(
    graphdef: Any,
    tx: Any,
    batch: Callable[[Any], tuple[Any, Any]] | None = None,
    loss: Callable[[Any, Any], Any] | None = None,
) -> Callable[[tuple[Any, Any, Any], Any], tuple[tuple[Any, Any, Any], Any]]:
    """One epoch of minibatch training, as a pure function to trace or jit.

    Each step merges `graphdef` with the parameters and the batch statistics
    (`nnx.merge`, in training mode: BatchNorm normalises with the minibatch's
    statistics and updates its running ones), takes the gradient of the mean
    of `loss` and applies the update of `tx`; the steps are one `lax.scan`
    over the minibatches.

    Args:
      graphdef: the model's graph, from `split_for_training`.
      tx: the optimizer, a gradtransforms or optax `GradientTransformation`.
      batch: maps one scanned element to the minibatch `(x, y)`, e.g. a row
        of example indices to `(x_train[idx], y_train[idx])`; by default the
        scanned elements are the minibatches themselves.
      loss: `loss(logits, labels)`, the minibatch's mean loss or its
        per-example losses (their mean is minimised); by default
        `gradtransforms.models.cross_entropy`; or e.g.
        `optax.softmax_cross_entropy_with_integer_labels`. The same
        cross-entropy computed another way rounds differently and training
        amplifies the difference, so each example passes the loss that its
        published numbers came from.

    Returns:
      `epoch(carry, batches) -> (carry, mean minibatch loss)`, where `carry`
      is `(params, batch_stats, opt_state)` and `batches` has the steps on
      its leading axis.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import gradtransforms as gt
    from gradtransforms.models import cross_entropy

    loss = cross_entropy if loss is None else loss

    def loss_fn(params, batch_stats, x, y):
        model = nnx.merge(graphdef, params, batch_stats, copy=True)
        model.train()
        return jnp.mean(loss(model(x), y)), split_for_training(model)[2]

    def step(carry, scanned):
        params, batch_stats, opt_state = carry
        x, y = scanned if batch is None else batch(scanned)
        (value, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, x, y
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return (gt.apply_updates(params, updates), batch_stats, opt_state), value

    def epoch(carry, batches):
        carry, losses = jax.lax.scan(step, carry, batches)
        return carry, jnp.mean(losses)

    return epoch


def accuracy(graphdef: Any, params: Any, batch_stats: Any, x: Any, y: Any) -> Any:
    """The share of `x` classified as `y`, BatchNorm on its running statistics.

    Args:
      graphdef: the model's graph, from `split_for_training`.
      params: its parameters.
      batch_stats: its running statistics (the rest of its state).
      x: the inputs.
      y: their integer labels.

    Returns:
      A float32 scalar in [0, 1].
    """
    import jax.numpy as jnp
    from flax import nnx

    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    model.eval()
    return jnp.mean(jnp.argmax(model(x), axis=-1) == y)
