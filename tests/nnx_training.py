"""A minimal NNX training loop shared by the model tests."""

from __future__ import annotations

from flax import nnx

from gradtransforms.models import cross_entropy

__all__ = ["cross_entropy", "train_losses"]


def train_losses(model, tx, x, y, steps=25):
    """Train `model` in place with `nnx.Optimizer(model, tx)` on one batch.

    Returns the minibatch loss of each step.
    """
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    model.train()
    return [float(train_step(model, optimizer, x, y)) for _ in range(steps)]
