"""Learning-rate schedules: functions from the update count to a value.

A schedule maps the update count `k` (0 for the first update, the optax
convention) to a scalar array. Values are computed in JAX's default float
dtype — float64 when `jax_enable_x64` is on — and cast to each parameter's
dtype only where they meet it, so a float64 run has no hidden float32 step.
Step counts are validated when the schedule is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.validation import (
    INT64_MAX,
    check_bool,
    check_callable,
    check_finite,
    check_non_negative,
    check_non_negative_int,
    check_positive,
    check_positive_int,
)

Schedule = Callable[[Any], jax.Array]

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_decay_schedule",
    "piecewise_constant_schedule",
    "warmup_cosine_decay_schedule",
]


def _float(x: Any) -> jax.Array:
    """`x` in JAX's default float dtype (float64 under x64)."""
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _fraction_done(count: Any, steps: int) -> jax.Array:
    """$\\min(k, T) / T$ in floating point, where $T$ may exceed the largest int32.

    Computed in the count's int32, `min(k, 10**10)` would overflow.
    """
    return jnp.minimum(_float(count), float(steps)) / float(steps)


def constant_schedule(value: float) -> Schedule:
    """$\\varepsilon_k = \\varepsilon$ for every step $k$.

    Args:
      value: the constant.

    Returns:
      A schedule `count -> value`.
    """
    check_finite("value", value)
    return lambda count: _float(value)


def linear_decay_schedule(
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Linear decay of textbook eq. 8.14, constant after $\\tau$ steps.

    $$\\varepsilon_k = (1 - \\alpha)\\,\\varepsilon_0 + \\alpha\\,\\varepsilon_\\tau,
    \\qquad \\alpha = \\min(k/\\tau, 1)$$

    with $k$ counted from `transition_begin` (before it the value is
    $\\varepsilon_0$). The text suggests $\\tau$ of a few hundred passes over
    the data and $\\varepsilon_\\tau \\approx \\varepsilon_0/100$. (Bischl's notes
    misprint the slope as $-(\\alpha_0+\\alpha_\\tau)/\\tau$; the slope is
    $(\\varepsilon_\\tau - \\varepsilon_0)/\\tau$.) Also serves as a linear
    warm-up when `end_value > init_value`.

    Args:
      init_value: $\\varepsilon_0$.
      end_value: $\\varepsilon_\\tau$.
      transition_steps: $\\tau > 0$, an int up to 2**63 - 1 (the ratio is
        taken in floating point).
      transition_begin: steps to hold $\\varepsilon_0$ before decaying, an
        int in [0, 2**31 - 1].

    Returns:
      A schedule `count -> value`.

    Examples:
      >>> import gradtransforms as gt
      >>> s = gt.linear_decay_schedule(1.0, 0.0, transition_steps=4)
      >>> [float(s(k)) for k in range(6)]
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    check_finite("init_value", init_value)
    check_finite("end_value", end_value)
    check_positive_int("transition_steps", transition_steps, max_value=INT64_MAX)
    check_non_negative_int("transition_begin", transition_begin)
    transition_steps, transition_begin = int(transition_steps), int(transition_begin)

    def schedule(count):
        k = jnp.maximum(jnp.asarray(count) - transition_begin, 0)
        alpha = _fraction_done(k, transition_steps)
        return (1 - alpha) * _float(init_value) + alpha * _float(end_value)

    return schedule


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Exponential decay by a factor $r$ every $T$ steps.

    $$\\varepsilon_k = \\varepsilon_0\\, r^{(k - k_0)/T}, \\quad k \\ge k_0$$

    With `staircase=True` the exponent is floored (a step every $T$ updates).
    `end_value` bounds the value: from below when $r < 1$, from above when
    $r > 1$.

    Args:
      init_value: $\\varepsilon_0$.
      transition_steps: $T > 0$, an int up to 2**31 - 1.
      decay_rate: $r > 0$.
      transition_begin: $k_0 \\ge 0$, steps to hold $\\varepsilon_0$ (an int up
        to 2**31 - 1).
      staircase: floor the exponent.
      end_value: optional bound.

    Returns:
      A schedule `count -> value`.
    """
    check_finite("init_value", init_value)
    check_positive_int("transition_steps", transition_steps)
    check_positive("decay_rate", decay_rate)
    check_non_negative_int("transition_begin", transition_begin)
    transition_steps, transition_begin = int(transition_steps), int(transition_begin)
    check_bool("staircase", staircase)
    if end_value is not None:
        check_finite("end_value", end_value)

    def schedule(count):
        k = jnp.maximum(_float(jnp.asarray(count) - transition_begin), 0)
        exponent = k / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = _float(init_value) * _float(decay_rate) ** exponent
        if end_value is not None:
            bound = jnp.maximum if decay_rate < 1 else jnp.minimum
            value = bound(value, _float(end_value))
        return value

    return schedule


def piecewise_constant_schedule(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """Step schedule: multiply the value by `scale` from step `boundary` on.

    $$\\varepsilon_k = \\varepsilon_0 \\prod_{b_i \\le k} s_i$$

    Args:
      init_value: $\\varepsilon_0$.
      boundaries_and_scales: `{boundary_step: scale}` or `None`: steps ints in
        [0, 2**31 - 1], scales >= 0.

    Returns:
      A schedule `count -> value`.
    """
    check_finite("init_value", init_value)
    given = {} if boundaries_and_scales is None else boundaries_and_scales
    if not isinstance(given, Mapping):
        raise TypeError(
            "boundaries_and_scales must be None or a mapping {step: scale}; got "
            f"{given!r}."
        )
    for boundary, scale in given.items():
        check_non_negative_int(f"boundaries_and_scales key {boundary!r}", boundary)
        check_non_negative(f"boundaries_and_scales[{boundary}]", scale)
    items = sorted((int(step), scale) for step, scale in given.items())

    def schedule(count):
        count = jnp.asarray(count)
        value = _float(init_value)
        for boundary, scale in items:
            value = jnp.where(count >= boundary, value * _float(scale), value)
        return value

    return schedule


def cosine_decay_schedule(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> Schedule:
    """Cosine decay (Loshchilov & Hutter, 2017) to `alpha * init_value`.

    $$\\varepsilon_k = \\varepsilon_0\\left[(1-\\alpha)\\left(\\tfrac12
    (1 + \\cos\\tfrac{\\pi \\min(k, T)}{T})\\right)^p + \\alpha\\right]$$

    The ratio $\\min(k, T)/T$ is computed in floating point, so $T$ may exceed
    the largest int32 (`decay_steps=10**10`).

    Args:
      init_value: $\\varepsilon_0$.
      decay_steps: $T > 0$, an int up to 2**63 - 1.
      alpha: final value as a fraction of `init_value`, >= 0.
      exponent: $p > 0$.

    Returns:
      A schedule `count -> value`.
    """
    check_finite("init_value", init_value)
    check_positive_int("decay_steps", decay_steps, max_value=INT64_MAX)
    decay_steps = int(decay_steps)  # a Python int: no NumPy overflow below
    check_non_negative("alpha", alpha)
    check_positive("exponent", exponent)

    def schedule(count):
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * _fraction_done(count, decay_steps)))
        return _float(init_value) * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(
    schedules: Sequence[Schedule], boundaries: Sequence[int]
) -> Schedule:
    """Run `schedules[i]` from `boundaries[i-1]` on, restarting its count at 0.

    Args:
      schedules: n schedules.
      boundaries: n - 1 increasing step counts, ints in [1, 2**31 - 1]: a
        list, a tuple or a 1-D NumPy or JAX array, as optax's.

    Returns:
      A schedule `count -> value`.
    """
    if isinstance(boundaries, np.ndarray | jax.Array) and boundaries.ndim == 1:
        boundaries = list(np.asarray(boundaries))  # NumPy scalars, checked below
    for name, given in (("schedules", schedules), ("boundaries", boundaries)):
        if not isinstance(given, Sequence) or isinstance(given, str):
            raise TypeError(f"{name} must be a sequence; got {given!r}.")
    schedules, boundaries = list(schedules), list(boundaries)
    for i, fn in enumerate(schedules):
        check_callable(f"schedules[{i}]", fn)
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            "join_schedules needs len(schedules) == len(boundaries) + 1; got "
            f"{len(schedules)} schedules and {len(boundaries)} boundaries."
        )
    for i, b in enumerate(boundaries):
        check_positive_int(f"boundaries[{i}]", b)
        boundaries[i] = int(b)
        if i and b <= boundaries[i - 1]:
            raise ValueError(f"boundaries must increase; got {boundaries}.")

    def schedule(count):
        count = jnp.asarray(count)
        value = _float(schedules[0](count))
        for boundary, fn in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(count < boundary, value, _float(fn(count - boundary)))
        return value

    return schedule


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from `init_value` to `peak_value`, then cosine decay.

    The warm-up takes `warmup_steps`; the cosine part takes the remaining
    `decay_steps - warmup_steps` steps (so `decay_steps` counts both, as in
    optax) and ends at `end_value`:

    $$\\varepsilon_k = \\varepsilon_\\text{end} + (\\varepsilon_\\text{peak}
    - \\varepsilon_\\text{end})\\left(\\tfrac12(1 + \\cos\\tfrac{\\pi
    \\min(k - W, T - W)}{T - W})\\right)^p, \\quad k \\ge W.$$

    As in optax, `end_value` is reached as the fraction
    $\\varepsilon_\\text{end} / \\varepsilon_\\text{peak}$ of the peak, taken as 0
    when $\\varepsilon_\\text{peak} = 0$: a zero peak gives
    $\\varepsilon_k = 0$ for every $k \\ge W$, whatever `end_value`. The cosine
    part's ratio is computed in floating point, so $T$ may exceed the largest
    int32.

    Args:
      init_value: value at step 0.
      peak_value: value at the end of the warm-up.
      warmup_steps: $W \\ge 0$.
      decay_steps: $T > W$, an int up to 2**63 - 1.
      end_value: final value; ignored when `peak_value` is 0 (the value stays 0).
      exponent: $p > 0$.

    Returns:
      A schedule `count -> value`.
    """
    for name, v in (
        ("init_value", init_value),
        ("peak_value", peak_value),
        ("end_value", end_value),
    ):
        check_finite(name, v)
    check_non_negative_int("warmup_steps", warmup_steps)
    check_positive_int("decay_steps", decay_steps, max_value=INT64_MAX)
    warmup_steps, decay_steps = int(warmup_steps), int(decay_steps)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps})."
        )
    check_positive("exponent", exponent)
    cosine_steps = decay_steps - warmup_steps

    def decay(count):
        t = _fraction_done(count, cosine_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t))
        peak = _float(peak_value)
        end = jnp.where(peak == 0, 0.0, _float(end_value))  # optax's: a fraction
        return end + (peak - end) * cosine**exponent

    if warmup_steps == 0:
        return decay
    warmup = linear_decay_schedule(init_value, peak_value, warmup_steps)
    return join_schedules([warmup, decay], [warmup_steps])
