"""Momentum (textbook Algorithms 8.2 and 8.3) and exponential averages of updates.

`trace` keeps the velocity of heavy-ball and Nesterov momentum as a running
sum; `ema` keeps an exponential moving average of the updates (to average the
*parameters*, eq. 8.39, use `ema_average`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation
from gradtransforms.validation import (
    check_bool,
    check_float_dtype,
    check_unit_interval,
)

__all__ = ["EmaState", "TraceState", "ema", "trace"]


class TraceState(NamedTuple):
    """State of `trace`."""

    trace: Any  # like params (or accumulator_dtype): the velocity m


def trace(
    decay: float, nesterov: bool = False, accumulator_dtype: Any = None
) -> GradientTransformation:
    """Momentum (textbook Algorithms 8.2 and 8.3) as a running sum.

    $$m \\leftarrow \\alpha m + g, \\qquad u = \\begin{cases} m &
    \\text{heavy ball (Alg. 8.2)} \\\\ \\alpha m + g & \\text{Nesterov
    (Alg. 8.3)} \\end{cases}$$

    When the incoming updates are already $-\\varepsilon g$ (the learning rate
    applied first, as `sgd` does), $m$ is the textbook velocity $v$ of
    Algorithm 8.2 exactly, also under a schedule $\\varepsilon_k$. For
    Nesterov, the parameters this transformation sees are the look-ahead point
    $\\varphi = \\theta + \\alpha v$ of Algorithm 8.3: the gradient is
    taken there, and $\\varphi_{t+1} = \\varphi_t + \\alpha v_{t+1} - \\varepsilon
    g(\\varphi_t)$; the textbook $\\theta$ is $\\varphi - \\alpha v$.

    Args:
      decay: the momentum $\\alpha \\in [0, 1)$.
      nesterov: use the Nesterov update.
      accumulator_dtype: dtype of $m$ (default: the parameters' dtype).

    Returns:
      A `GradientTransformation` with `TraceState`.
    """
    check_unit_interval("decay", decay)
    check_bool("nesterov", nesterov)
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )

    def init_fn(params):
        return TraceState(trace=tu.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params

        alpha = tu.per_dtype(lambda dt: jnp.asarray(decay, dt))

        def velocity(m, g):  # in the accumulation dtype of m
            return alpha(m.dtype) * m + g

        tu.assert_state_matches(state.trace, updates)
        new_trace = tu.map_widened(velocity, state.trace, updates)
        if nesterov:
            out = tu.map_widened(velocity, new_trace, updates, out_like=updates)
        else:
            out = tu.cast_like(new_trace, updates)
        return out, TraceState(trace=new_trace)

    return GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
    """State of `ema` (field names as optax's)."""

    count: jax.Array  # int32 scalar
    ema: Any  # like params (or accumulator_dtype)


def ema(
    decay: float, debias: bool = True, accumulator_dtype: Any = None
) -> GradientTransformation:
    """Exponential moving average of the *updates*.

    $$m \\leftarrow \\beta m + (1 - \\beta) g, \\qquad u = \\begin{cases}
    m / (1 - \\beta^t) & \\text{debias} \\\\ m & \\text{otherwise}\\end{cases}$$

    (To average the *parameters* — textbook eq. 8.39 — use `ema_average`.)

    Args:
      decay: $\\beta \\in [0, 1)$.
      debias: divide by $1 - \\beta^t$.
      accumulator_dtype: dtype of $m$ (default: the parameters').

    Returns:
      A `GradientTransformation` with `EmaState`.
    """
    check_unit_interval("decay", decay)
    check_bool("debias", debias)
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )

    def init_fn(params):
        return EmaState(
            count=jnp.zeros([], jnp.int32),
            ema=tu.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tu.safe_increment(state.count)
        new_ema = tu.update_moment(updates, state.ema, decay, 1)
        out = tu.bias_correction(new_ema, decay, count) if debias else new_ema
        return tu.cast_like(out, updates), EmaState(count=count, ema=new_ema)

    return GradientTransformation(init_fn, update_fn)
