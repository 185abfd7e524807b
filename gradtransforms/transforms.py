"""The first-order transformations: scaling, momentum and adaptive rescaling.

Each factory validates its numeric arguments, then returns an optax
`GradientTransformation(init, update)` whose state is the `NamedTuple` declared
above it. The maths is per leaf; the tree plumbing lives in `tree_math`.
Equations and algorithm numbers refer to Goodfellow, Bengio & Courville,
*Deep Learning* (2016), chapter 8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree_math as tm
from gradtransforms.base import GradientTransformation
from gradtransforms.validation import (
    check_finite,
    check_learning_rate,
    check_non_negative,
    check_unit_interval,
    is_concrete_number,
)

__all__ = [
    "AddDecayedWeightsState",
    "EmaState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "ema",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "trace",
]


def _check_stabiliser(eps: Any, eps_root: Any, *initial: Any) -> None:
    """Reject eps = eps_root = 0 (with a zero initial accumulator): 0/0 = NaN."""
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    values = (eps, eps_root, *initial)
    if all(is_concrete_number(v) and float(v) == 0 for v in values):
        raise ValueError(
            "eps and eps_root are both 0: a zero gradient would give 0/0 = NaN. "
            "Set eps > 0 (added to the root) or eps_root > 0 (added under it)."
        )


# --------------------------------------------------------------------------
# Plain scaling


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
        return tm.scale_tree(step_size, updates), state

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
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn must be callable; got {step_size_fn!r}.")

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        return tm.scale_tree(step_size, updates), ScaleByScheduleState(
            count=tm.safe_increment(state.count)
        )

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: float | Callable[[jax.Array], Any], *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply updates by $-\\varepsilon$ (a number or a schedule $\\varepsilon_k$).

    Args:
      learning_rate: a number > 0 or a schedule.
      flip_sign: multiply by $-\\varepsilon$ (descent, the default) rather
        than $\\varepsilon$.

    Returns:
      `scale(-lr)` for a number, `scale_by_schedule(-lr(k))` for a schedule.
    """
    check_learning_rate(learning_rate)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# --------------------------------------------------------------------------
# Momentum


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

    def init_fn(params):
        return TraceState(trace=tm.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params

        alpha = tm.per_dtype(lambda dt: jnp.asarray(decay, dt))

        def velocity(g, m):
            dtype = tm.accumulation_dtype(m.dtype)
            return alpha(dtype) * tm.cast(m, dtype) + tm.cast(g, dtype)

        new_trace = jax.tree.map(
            lambda g, m: tm.cast(velocity(g, m), m.dtype), updates, state.trace
        )
        if nesterov:
            out = jax.tree.map(
                lambda g, m: tm.cast(velocity(g, m), g.dtype), updates, new_trace
            )
        else:
            out = tm.tree_cast(new_trace, updates)
        return out, TraceState(trace=new_trace)

    return GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Adaptive rescaling


class ScaleByRssState(NamedTuple):
    """State of `scale_by_rss`."""

    sum_of_squares: Any  # like params: r, the running sum of g ⊙ g


def scale_by_rss(
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-7,
    eps_root: float = 0.0,
) -> GradientTransformation:
    """AdaGrad scaling (textbook Algorithm 8.4): divide by the root sum of squares.

    $$r \\leftarrow r + g \\odot g, \\qquad u = \\frac{g}{\\delta +
    \\sqrt{r + \\delta_\\text{root}}}$$

    The defaults (accumulator starting at 0, $\\delta = 10^{-7}$ outside the
    root) reproduce Algorithm 8.4. optax's `scale_by_rss` differs: accumulator
    0.1 and `eps` under the root; `scale_by_rss(0.1, eps=0.0, eps_root=1e-7)`
    is its equivalent except where the accumulator is exactly 0.

    Args:
      initial_accumulator_value: $r_0 \\ge 0$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: $\\delta_\\text{root} \\ge 0$, added under the root.

    Returns:
      A `GradientTransformation` with `ScaleByRssState`.
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    _check_stabiliser(eps, eps_root, initial_accumulator_value)

    def init_fn(params):
        return ScaleByRssState(
            sum_of_squares=tm.full_like(params, initial_accumulator_value)
        )

    def update_fn(updates, state, params=None):
        del params

        sum_of_squares = jax.tree.map(
            lambda g, r: r + jnp.square(g.astype(r.dtype)),
            updates,
            state.sum_of_squares,
        )
        out = _divide_by_root(updates, sum_of_squares, eps=eps, eps_root=eps_root)
        return out, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init_fn, update_fn)


def _is_zero(x: Any) -> bool:
    """True for a Python number equal to 0 (adding it can be skipped)."""
    return is_concrete_number(x) and float(x) == 0


def _divide_by_root(updates: Any, accumulators: Any, *, eps: Any, eps_root: Any):
    """$g / (\\sqrt{r + \\delta_\\text{root}} + \\delta)$ per leaf, in float32+."""
    constants = tm.per_dtype(
        lambda dt: (jnp.asarray(eps_root, dt), jnp.asarray(eps, dt))
    )

    def one(g, r):
        dtype = tm.accumulation_dtype(g.dtype)
        eps_root_, eps_ = constants(dtype)
        r = tm.cast(r, dtype)
        if not _is_zero(eps_root):
            r = r + eps_root_
        denom = jnp.sqrt(r)
        if not _is_zero(eps):
            denom = denom + eps_
        return tm.cast(tm.cast(g, dtype) / denom, g.dtype)

    return jax.tree.map(one, updates, accumulators)


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`."""

    count: jax.Array  # int32 scalar: number of updates so far
    mu: Any  # like params: EMA of g (used only when centered; else zeros)
    nu: Any  # like params: r, EMA of g ⊙ g


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 0.0,
    eps_root: float = 1e-6,
    centered: bool = False,
    bias_correction: bool = False,
    initial_scale: float = 0.0,
) -> GradientTransformation:
    """RMSProp scaling (textbook Algorithms 8.5 and 8.6).

    $$r \\leftarrow \\rho r + (1 - \\rho)\\, g \\odot g, \\qquad
    u = \\frac{g}{\\delta + \\sqrt{\\hat r + \\delta_\\text{root}}}$$

    with $\\hat r = r$, or $r - \\bar g^2$ when `centered` ($\\bar g$ the EMA
    of $g$; clamped at 0 against rounding), and both divided by
    $1 - \\rho^t$ when `bias_correction`. The defaults ($\\rho = 0.9$,
    $\\delta = 10^{-6}$ *under* the root) reproduce Algorithm 8.5; optax puts
    its `eps=1e-8` under the root too (`eps_root=1e-8` here).

    Args:
      decay: $\\rho \\in [0, 1)$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: $\\delta_\\text{root} \\ge 0$, added under the root.
      centered: divide by the root of the variance estimate instead.
      bias_correction: divide the moments by $1 - \\rho^t$.
      initial_scale: $r_0 \\ge 0$.

    Returns:
      A `GradientTransformation` with `ScaleByRmsState`.
    """
    check_unit_interval("decay", decay)
    check_non_negative("initial_scale", initial_scale)
    _check_stabiliser(eps, eps_root)

    def init_fn(params):
        mu = tm.zeros_like(params) if centered else None
        return ScaleByRmsState(
            count=jnp.zeros([], jnp.int32),
            mu=mu,
            nu=tm.full_like(params, initial_scale),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tm.safe_increment(state.count)
        nu = tm.update_moment(updates, state.nu, decay, 2)
        nu_hat = tm.bias_correction(nu, decay, count) if bias_correction else nu
        if centered:
            mu = tm.update_moment(updates, state.mu, decay, 1)
            mu_hat = tm.bias_correction(mu, decay, count) if bias_correction else mu
            var = jax.tree.map(
                lambda n, m: jnp.maximum(n - jnp.square(m), 0), nu_hat, mu_hat
            )
        else:
            mu = state.mu
            var = nu_hat

        out = _divide_by_root(updates, var, eps=eps, eps_root=eps_root)
        return out, ScaleByRmsState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdamState(NamedTuple):
    """State of `scale_by_adam` (field names as optax's)."""

    count: jax.Array  # int32 scalar: t, the number of updates so far
    mu: Any  # like params (or mu_dtype): s, first-moment EMA
    nu: Any  # like params (or nu_dtype): r, second-moment EMA


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Adam scaling (textbook Algorithm 8.7), optionally with Nesterov (NAdam).

    $$s \\leftarrow \\rho_1 s + (1-\\rho_1) g, \\quad
    r \\leftarrow \\rho_2 r + (1-\\rho_2) g\\odot g, \\quad
    \\hat s = \\frac{s}{1-\\rho_1^t}, \\quad \\hat r = \\frac{r}{1-\\rho_2^t},
    \\quad u = \\frac{\\hat s}{\\sqrt{\\hat r + \\delta_\\text{root}} + \\delta}$$

    The defaults ($\\rho_1 = 0.9$, $\\rho_2 = 0.999$, $\\delta = 10^{-8}$
    outside the root) reproduce Algorithm 8.7 and optax's `scale_by_adam`.
    (`seeds/001` adds a stray second-moment update after the bias
    correction; Adam has no such step.) With `nesterov=True`,
    $\\hat s = \\rho_1 s_t / (1 - \\rho_1^{t+1}) + (1 - \\rho_1) g / (1 -
    \\rho_1^t)$ (Dozat, 2016), as in optax.

    Args:
      b1: $\\rho_1 \\in [0, 1)$.
      b2: $\\rho_2 \\in [0, 1)$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: $\\delta_\\text{root} \\ge 0$, added under the root.
      mu_dtype: dtype of $s$ (default: the parameters').
      nesterov: use the NAdam first moment.
      nu_dtype: dtype of $r$ (default: the parameters').

    Returns:
      A `GradientTransformation` with `ScaleByAdamState`.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    _check_stabiliser(eps, eps_root)

    def init_fn(params):
        return ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=tm.zeros_like(params, mu_dtype),
            nu=tm.zeros_like(params, nu_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tm.safe_increment(state.count)
        mu = tm.update_moment(updates, state.mu, b1, 1)
        nu = tm.update_moment(updates, state.nu, b2, 2)

        def factors(dtype):
            # Scalars shared by every leaf of one dtype, traced once per dtype.
            bc1 = tm.one_minus_power(b1, count, dtype)
            bc2 = tm.one_minus_power(b2, count, dtype)
            if nesterov:
                next_bc1 = tm.one_minus_power(b1, count + 1, dtype)
                first = (jnp.asarray(b1, dtype), next_bc1, tm.complement(b1, dtype))
            else:
                first = None
            eps_root_, eps_ = jnp.asarray(eps_root, dtype), jnp.asarray(eps, dtype)
            return bc1, bc2, first, eps_root_, eps_

        shared = tm.per_dtype(factors)

        def one(g, m, v):
            dtype = tm.accumulation_dtype(g.dtype)
            bc1, bc2, first, eps_root_, eps_ = shared(dtype)
            m, v, gw = tm.cast(m, dtype), tm.cast(v, dtype), tm.cast(g, dtype)
            if nesterov:
                b1_, next_bc1, one_minus_b1 = first
                m_hat = b1_ * (m / next_bc1) + one_minus_b1 * (gw / bc1)
            else:
                m_hat = m / bc1
            v_hat = v / bc2
            if not _is_zero(eps_root):
                v_hat = v_hat + eps_root_
            return tm.cast(m_hat / (jnp.sqrt(v_hat) + eps_), g.dtype)

        out = jax.tree.map(one, updates, mu, nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Weight decay and EMA of updates


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

        def decayed(g, p):
            dtype = tm.accumulation_dtype(g.dtype)
            wd = jnp.asarray(weight_decay, dtype)
            return (g.astype(dtype) + wd * p.astype(dtype)).astype(g.dtype)

        out = jax.tree.map(decayed, updates, params)
        return out, state

    tx = GradientTransformation(init_fn, update_fn)
    if mask is None:
        return tx
    from gradtransforms.combine import masked

    return masked(tx, mask)


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

    def init_fn(params):
        return EmaState(
            count=jnp.zeros([], jnp.int32),
            ema=tm.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tm.safe_increment(state.count)
        new_ema = tm.update_moment(updates, state.ema, decay, 1)
        out = tm.bias_correction(new_ema, decay, count) if debias else new_ema
        return tm.tree_cast(out, updates), EmaState(count=count, ema=new_ema)

    return GradientTransformation(init_fn, update_fn)
