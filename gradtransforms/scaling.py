"""Plain scaling of updates: by a constant, a schedule, a learning rate; weight decay.

Each factory validates its numeric arguments, then returns an optax
`GradientTransformation(init, update)` whose state is the `NamedTuple` declared
above it. Equations refer to Goodfellow, Bengio & Courville, *Deep Learning*
(2016), chapter 8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation
from gradtransforms.combine import masked
from gradtransforms.validation import (
    check_bool,
    check_callable,
    check_finite,
    check_learning_rate,
    check_non_negative,
    check_scheduled,
)

__all__ = [
    "AddDecayedWeightsState",
    "ScaleByScheduleState",
    "add_decayed_weights",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
]


def scale(step_size: float) -> GradientTransformation:
    """Multiply updates by a constant: $u \\leftarrow s\\,g$.

    Args:
      step_size: the factor $s$ (any finite number; negative to descend).

    Returns:
      A stateless `GradientTransformation`.
    """
    check_finite("step_size", step_size)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        return tu.scale(step_size, updates), state

    return GradientTransformation(init_fn, update_fn)


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_schedule`."""

    count: jax.Array  # int32 scalar: number of updates so far


def scale_by_schedule(
    step_size_fn: Callable[[jax.Array], Any],
) -> GradientTransformation:
    """Multiply updates by a schedule of the update count: $u = s(k)\\,g$.

    The first update uses $s(0)$ (the optax convention).

    Args:
      step_size_fn: a schedule `count -> scalar`.

    Returns:
      A `GradientTransformation` with `ScaleByScheduleState`.
    """
    check_callable("step_size_fn", step_size_fn)

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        return tu.scale(step_size, updates), ScaleByScheduleState(
            count=tu.safe_increment(state.count)
        )

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: float | Callable[[jax.Array], Any], *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply updates by $-\\varepsilon$ (a number or a schedule $\\varepsilon_k$).

    Under `validation.debug_checks()`, a schedule's values are checked too
    (finite and >= 0; reported under `checkify.checkify`).

    Args:
      learning_rate: a number > 0 or a schedule.
      flip_sign: multiply by $-\\varepsilon$ (descent, the default) rather
        than $\\varepsilon$.

    Returns:
      `scale(-lr)` for a number, `scale_by_schedule(-lr(k))` for a schedule.
    """
    check_learning_rate(learning_rate)
    check_bool("flip_sign", flip_sign)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):

        def scheduled(count):
            value = learning_rate(count)
            check_scheduled("learning_rate (scheduled)", value)  # debug_checks()
            return sign * value

        return scale_by_schedule(scheduled)
    rate: Any = learning_rate
    if jnp.issubdtype(getattr(rate, "dtype", float), jnp.unsignedinteger):
        rate = rate.astype(float)  # -1 * uint8(1) overflows
    return scale(sign * rate)


class AddDecayedWeightsState(NamedTuple):
    """State of `add_decayed_weights` (stateless)."""


def add_decayed_weights(
    weight_decay: float = 0.0, mask: Any = None
) -> GradientTransformation:
    """Add decoupled weight decay: $u \\leftarrow u + \\lambda\\theta$.

    Placed before the learning rate (as `adamw` does), this gives
    $\\theta \\leftarrow \\theta - \\varepsilon(u + \\lambda\\theta)$
    (Loshchilov & Hutter, 2019).

    Args:
      weight_decay: $\\lambda \\ge 0$.
      mask: a pytree of bools like the parameters (or a callable returning
        one): decay only where `True`. `None` decays every leaf.

    Returns:
      A `GradientTransformation`; its `update` needs `params`.
    """
    check_non_negative("weight_decay", weight_decay)

    def init_fn(params):
        del params
        return AddDecayedWeightsState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "add_decayed_weights needs the parameters: call "
                "update(updates, state, params)."
            )
        # `updates` is the prefix: a `None` update passes through (optax's rule).
        tu.assert_same_shapes(updates, params, ("updates", "params"))
        wd = tu.per_dtype(lambda dt: jnp.asarray(weight_decay, dt))
        out = tu.map_widened(lambda g, p: g + wd(g.dtype) * p, updates, params)
        return out, state

    tx = GradientTransformation(init_fn, update_fn)
    return tx if mask is None else masked(tx, mask)
