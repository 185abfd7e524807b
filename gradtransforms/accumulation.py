"""Gradient accumulation: one optimizer step from the mean of k microbatches.

A batch that does not fit on the device is split into $k$ microbatches of
equal size; their gradients are averaged and the optimizer steps once, as if
it had seen the whole batch (the mean of equal-sized microbatch means is the
batch mean). Growing $k$ during training with a fixed microbatch grows the
batch, the textbook's §8.1.3 advice for a noisy gradient late in training.
The same job as `optax.MultiSteps`, written as an ordinary transformation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.validation import (
    check_float_dtype,
    check_positive_int,
    check_transformation,
)

__all__ = ["AccumulateGradientsState", "accumulate_gradients"]


class AccumulateGradientsState(NamedTuple):
    """State of `accumulate_gradients` (field names as `optax.MultiStepsState`)."""

    mini_step: jax.Array
    """int32 scalar: microbatches in the running mean now, $0 \\dots k - 1$."""
    gradient_step: jax.Array
    """int32 scalar: steps of the inner transformation so far (saturating)."""
    inner_opt_state: Any
    """The inner transformation's state."""
    acc_grads: Any
    """Like params, in the accumulator dtype: the mean of the gradients of
    this step's microbatches so far (zeros after a step)."""


def _every_k(every_k_steps: int | Callable[[jax.Array], Any]) -> Callable:
    """`every_k_steps` as a function of the inner step count, int32 >= 1."""
    if callable(every_k_steps):
        return lambda step: jnp.maximum(
            jnp.asarray(every_k_steps(step)).astype(jnp.int32), 1
        )
    check_positive_int("every_k_steps", every_k_steps)
    k = int(every_k_steps)
    return lambda step: jnp.int32(k)


def accumulate_gradients(
    tx: GradientTransformation,
    every_k_steps: int | Callable[[jax.Array], Any],
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """Average `every_k_steps` microbatch gradients, then apply `tx` once.

    $$\\bar g \\leftarrow \\bar g + \\frac{g_j - \\bar g}{j}, \\quad j = 1,
    \\dots, k; \\qquad u = \\mathrm{tx}(\\bar g) \\text{ at } j = k$$

    Each call adds one microbatch gradient $g_j$ to the running mean
    $\\bar g$. On the first $k - 1$ calls of a step the updates are zeros (in
    each leaf's dtype) and `tx`'s state is untouched, as with
    `optax.MultiSteps`: `apply_updates` leaves the parameters as they are, so
    every microbatch's gradient is taken at the same parameters. On the
    $k$-th call `tx` receives $\\bar g$ (cast to the gradients' dtype), the
    current parameters and the call's extra arguments, its updates are
    emitted, and the mean starts again from zero. With equal-sized
    microbatches this is the step of the whole batch, to rounding; only the
    $k$-th call runs `tx.update` (a `lax.cond`).

    A non-finite microbatch gradient makes the mean non-finite, so with
    `accumulate_gradients(apply_if_finite(tx), k)` the whole accumulated step
    is skipped (and the next starts afresh); `apply_if_finite` outside would
    instead skip that microbatch alone and wait for another.

    Args:
      tx: the transformation to apply to the mean gradient.
      every_k_steps: $k$, an int >= 1; or a function of the number of steps
        of `tx` so far (an int32 scalar, 0 for the first) returning $k$ (a
        schedule: `lambda step: 1 + step // 100` grows the batch, §8.1.3;
        values below 1 count as 1). The $k$ of a step is read when its first
        microbatch arrives and at each later one, so keep it constant while
        a step accumulates (a function of the step count is).
      accumulator_dtype: dtype of the running mean; `None`: float32 for
        bfloat16, float16 and float32 gradients, float64 for float64 (so a
        mean of 16-bit gradients is not rounded to 16 bits $k$ times).

    Returns:
      A `GradientTransformationExtraArgs` with an `AccumulateGradientsState`.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> tx = gt.accumulate_gradients(gt.sgd(1.0), every_k_steps=2)
      >>> params = {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> u, state = tx.update({"w": jnp.array([1.0, 2.0])}, state, params)
      >>> u["w"]
      Array([0., 0.], dtype=float32)
      >>> u, state = tx.update({"w": jnp.array([3.0, 4.0])}, state, params)
      >>> u["w"]
      Array([-2., -3.], dtype=float32)
    """
    check_transformation("tx", tx)
    every_k = _every_k(every_k_steps)
    check_float_dtype("accumulator_dtype", accumulator_dtype, optional=True)
    inner = optax.with_extra_args_support(tx)

    def init_fn(params):
        return AccumulateGradientsState(
            mini_step=jnp.zeros([], jnp.int32),
            gradient_step=jnp.zeros([], jnp.int32),
            inner_opt_state=inner.init(params),
            acc_grads=tu.accumulator_like(params, dtype=accumulator_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        tu.assert_state_matches(state.acc_grads, updates)
        count = state.mini_step + 1
        acc = jax.tree.map(
            lambda m, g: m + (g.astype(m.dtype) - m) / count.astype(m.dtype),
            state.acc_grads,
            updates,
        )

        def step(_):
            mean = tu.cast_like(acc, updates)
            return inner.update(mean, state.inner_opt_state, params, **extra_args)

        emitted = jax.eval_shape(step, None)[0]

        def wait(_):
            zeros = jax.tree.map(lambda u: jnp.zeros(u.shape, u.dtype), emitted)
            return zeros, state.inner_opt_state

        emit = count >= every_k(state.gradient_step)
        new_updates, inner_state = jax.lax.cond(emit, step, wait, None)
        new_state = AccumulateGradientsState(
            mini_step=jnp.where(emit, jnp.zeros_like(count), count),
            gradient_step=jnp.where(
                emit, tu.safe_increment(state.gradient_step), state.gradient_step
            ),
            inner_opt_state=inner_state,
            acc_grads=jax.tree.map(
                lambda m: jnp.where(emit, jnp.zeros_like(m), m), acc
            ),
        )
        return new_updates, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)
