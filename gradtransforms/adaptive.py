"""Adaptive rescaling: AdaGrad, RMSProp and Adam (textbook Algorithms 8.4–8.7).

Each divides the update by the root of an accumulated second moment of the
gradients; they differ in how the moment is accumulated (a sum, an
exponential average, a bias-corrected average with a first moment).

The accumulators are kept in each parameter's accumulation dtype
(`tree.accumulation_dtype`: float32 for bfloat16, float16 and float32
parameters, float64 for float64, a complex parameter's own dtype) unless a
`*_dtype` argument says otherwise, and every update is computed there and
returned in the gradient's dtype. optax keeps them in the parameters' dtype,
where a float16 second moment overflows to infinity once it passes 65504 (a
sustained $|g| \\approx 256$) and the optimizer stops moving.
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
    check_non_negative,
    check_unit_interval,
    is_concrete_number,
)

__all__ = [
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_rss",
]


def _check_stabiliser(eps: Any, eps_root: Any, *initial: Any) -> None:
    """Reject eps = eps_root = 0 (with a zero initial accumulator): 0/0 = NaN."""
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    values = (eps, eps_root, *initial)
    if all(is_concrete_number(v) and float(v) == 0 for v in values):
        raise ValueError(
            "eps and eps_root are both 0: a zero gradient would give 0/0 = NaN. "
            "Set eps > 0 or eps_root > 0 (added under the root)."
        )


def _stabilisers(eps: Any, eps_root: Any, eps_in_sqrt: bool) -> tuple[Any, Any]:
    """`(outside, under)`: the constants added to the root and under it.

    `eps` goes under the root with `eps_in_sqrt` (optax's `eps_in_sqrt`),
    outside otherwise; `eps_root` always goes under it.
    """
    check_bool("eps_in_sqrt", eps_in_sqrt)
    if not eps_in_sqrt:
        return eps, eps_root
    if _is_zero(eps_root):
        return 0.0, eps
    return 0.0, eps + eps_root


class ScaleByRssState(NamedTuple):
    """State of `scale_by_rss`."""

    sum_of_squares: Any  # like params, accumulation dtype: r, the sum of |g|²


def scale_by_rss(
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-7,
    eps_root: float = 0.0,
    *,
    eps_in_sqrt: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    """AdaGrad scaling (textbook Algorithm 8.4): divide by the root sum of squares.

    $$r \\leftarrow r + |g|^2, \\qquad u = \\frac{g}{\\delta +
    \\sqrt{r + \\delta_\\text{root}}}$$

    ($|g|^2 = g \\odot g$ for real $g$; the squared modulus for complex.) The
    defaults (accumulator starting at 0, $\\delta = 10^{-7}$ outside the root)
    reproduce Algorithm 8.4. optax's `scale_by_rss` starts the accumulator at
    0.1 and puts `eps` under the root: `scale_by_rss(0.1, eps_in_sqrt=True)`
    is optax's. $r$ is kept in float32 for bfloat16 and float16 parameters
    (float16 overflows at $r > 65504$), and $u$ computed in float32, returned
    in the gradient's dtype; optax keeps $r$ in the parameters' dtype.

    Args:
      initial_accumulator_value: $r_0 \\ge 0$.
      eps: $\\delta \\ge 0$, added to the root, or under it with
        `eps_in_sqrt`.
      eps_root: $\\delta_\\text{root} \\ge 0$, added under the root.
      eps_in_sqrt: put `eps` under the root, as optax's `scale_by_rss` does
        (default `False`: outside, as Algorithm 8.4).
      accumulator_dtype: dtype of $r$ (default: each parameter's
        accumulation dtype, float32 for bfloat16, float16 and float32
        parameters, float64 for float64).

    Returns:
      A `GradientTransformation` with `ScaleByRssState`.
    """
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    _check_stabiliser(eps, eps_root, initial_accumulator_value)
    outside, under = _stabilisers(eps, eps_root, eps_in_sqrt)

    def init_fn(params):
        return ScaleByRssState(
            sum_of_squares=tu.accumulator_like(
                params, initial_accumulator_value, accumulator_dtype
            )
        )

    def update_fn(updates, state, params=None):
        del params

        # |g|² in float32 or wider, real for a complex g (a complex
        # accumulator keeps it real), rounded once to r's dtype.
        sum_of_squares = tu.map_widened(
            lambda r, g: r + tu.abs_sq(g).astype(r.dtype), state.sum_of_squares, updates
        )
        out = _divide_by_root(updates, sum_of_squares, eps=outside, eps_root=under)
        return out, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init_fn, update_fn)


def _is_zero(x: Any) -> bool:
    """True for a Python number equal to 0 (adding it can be skipped)."""
    return is_concrete_number(x) and float(x) == 0


def _divide_by_root(
    updates: Any, *stats: Any, eps: Any, eps_root: Any, variance: Any = None
):
    """$g / (\\sqrt{r + \\delta_\\text{root}} + \\delta)$ per leaf, in float32+.

    $r$ is the first of `stats`, or `variance(*stats)` when given, computed on
    the widened leaves (so in float32 or wider whatever the stats' dtype).
    """
    constants = tu.per_dtype(
        lambda dt: (jnp.asarray(eps_root, dt), jnp.asarray(eps, dt))
    )

    def one(g, *widened):
        r = widened[0] if variance is None else variance(*widened).astype(g.dtype)
        eps_root_, eps_ = constants(g.dtype)
        if not _is_zero(eps_root):
            r = r + eps_root_
        denom = jnp.sqrt(r)
        if not _is_zero(eps):
            denom = denom + eps_
        return g / denom

    return tu.map_widened(one, updates, *stats)


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`."""

    count: jax.Array  # int32 scalar: number of updates so far
    mu: Any  # like params, accumulation dtype: EMA of g (None unless centered)
    nu: Any  # like params, accumulation dtype: r, EMA of |g|²


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-6,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
    eps_root: float = 0.0,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    """RMSProp scaling (textbook Algorithms 8.5 and 8.6).

    $$r \\leftarrow \\rho r + (1 - \\rho)\\, |g|^2, \\qquad
    u = \\frac{g}{\\sqrt{\\hat r + \\delta}} \\ \\text{(eps\\_in\\_sqrt)}
    \\quad\\text{or}\\quad \\frac{g}{\\delta + \\sqrt{\\hat r}}$$

    with $\\hat r = r$, or $r - |\\bar g|^2$ when `centered` ($\\bar g$ the EMA
    of $g$; clamped at 0 against rounding), and both divided by
    $1 - \\rho^t$ when `bias_correction`; `eps_root` is added under the root
    as well. The arguments are optax's, in optax's order, with optax's meaning;
    the default $\\delta = 10^{-6}$ under the root reproduces Algorithm 8.5
    (optax's default is $10^{-8}$). optax's centred form is
    `optax.scale_by_stddev`; here it is `centered=True`. $r$ and $\\bar g$
    are kept in float32 for bfloat16 and float16 parameters, and the variance
    and $u$ computed in float32 (float16 moments would overflow, and give
    $\\infty - \\infty$ = NaN in the centred variance), $u$ returned in the
    gradient's dtype; optax keeps the moments in the parameters' dtype.

    Args:
      decay: $\\rho \\in [0, 1)$.
      eps: $\\delta \\ge 0$, under the root with `eps_in_sqrt`, else added to
        it.
      initial_scale: $r_0 \\ge 0$.
      eps_in_sqrt: put `eps` under the root (optax's default) or outside it.
      bias_correction: divide the moments by $1 - \\rho^t$.
      centered: divide by the root of the variance estimate instead.
      eps_root: $\\ge 0$, added under the root (besides `eps`).
      accumulator_dtype: dtype of $r$ and $\\bar g$ (default: each
        parameter's accumulation dtype, float32 for bfloat16, float16 and
        float32 parameters, float64 for float64).

    Returns:
      A `GradientTransformation` with `ScaleByRmsState`.
    """
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )
    check_unit_interval("decay", decay)
    check_non_negative("initial_scale", initial_scale)
    check_bool("centered", centered)
    check_bool("bias_correction", bias_correction)
    _check_stabiliser(eps, eps_root)
    outside, under = _stabilisers(eps, eps_root, eps_in_sqrt)

    def init_fn(params):
        mu = tu.accumulator_like(params, 0, accumulator_dtype) if centered else None
        return ScaleByRmsState(
            count=jnp.zeros([], jnp.int32),
            mu=mu,
            nu=tu.accumulator_like(params, initial_scale, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tu.safe_increment(state.count)
        nu = tu.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        nu_hat = tu.bias_correction(nu, decay, count) if bias_correction else nu
        if not centered:
            out = _divide_by_root(updates, nu_hat, eps=outside, eps_root=under)
            return out, state._replace(count=count, nu=nu)
        mu = tu.update_moment(updates, state.mu, decay, 1)
        mu_hat = tu.bias_correction(mu, decay, count) if bias_correction else mu
        out = _divide_by_root(
            updates, nu_hat, mu_hat, eps=outside, eps_root=under, variance=_variance
        )
        return out, ScaleByRmsState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


def _variance(nu: jax.Array, mu: jax.Array) -> jax.Array:
    """$E|g|^2 - |E g|^2$ on widened leaves: real, clamped at 0 against rounding."""
    return jnp.maximum(jnp.real(nu) - tu.abs_sq(mu), 0)


class ScaleByAdamState(NamedTuple):
    """State of `scale_by_adam` (field names as optax's)."""

    count: jax.Array  # int32 scalar: t, the number of updates so far
    mu: Any  # like params, accumulation dtype (or mu_dtype): s, first-moment EMA
    nu: Any  # like params, accumulation dtype (or nu_dtype): r, second-moment EMA


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
    (Bischl's lecture notes add a stray second-moment update after the bias
    correction; Adam has no such step: see "Misprints in the sources" in
    docs/textbook.md.) With `nesterov=True`,
    $\\hat s = \\rho_1 s_t / (1 - \\rho_1^{t+1}) + (1 - \\rho_1) g / (1 -
    \\rho_1^t)$ (Dozat, 2016), as in optax.

    $s$ and $r$ are kept in each parameter's accumulation dtype: float32 for
    bfloat16, float16 and float32 parameters, float64 for float64 (so that
    $r$ cannot overflow float16's 65504, and its relative steps of about
    $1 - \\rho_2 = 0.1\\%$ are not lost to bfloat16's resolution of
    $2^{-8} \\approx 0.4\\%$); `mu_dtype` and `nu_dtype` override it. $u$ is
    computed in float32 or wider and returned in the gradient's dtype. optax
    keeps the moments in the parameters' dtype: in float16, Adam stops after
    about 66 steps at $|g| = 1000$. For bfloat16 parameters, small updates
    are also lost when they are added to the parameters: see `master_weights`.

    Args:
      b1: $\\rho_1 \\in [0, 1)$.
      b2: $\\rho_2 \\in [0, 1)$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: $\\delta_\\text{root} \\ge 0$, added under the root.
      mu_dtype: dtype of $s$ (default: each parameter's accumulation dtype).
      nesterov: use the NAdam first moment.
      nu_dtype: dtype of $r$ (default: each parameter's accumulation dtype).

    Returns:
      A `GradientTransformation` with `ScaleByAdamState`.
    """
    check_float_dtype("mu_dtype", mu_dtype, optional=True, inexact=True)
    check_float_dtype("nu_dtype", nu_dtype, optional=True, inexact=True)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_bool("nesterov", nesterov)
    _check_stabiliser(eps, eps_root)

    def init_fn(params):
        return ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=tu.accumulator_like(params, 0, mu_dtype),
            nu=tu.accumulator_like(params, 0, nu_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tu.safe_increment(state.count)
        mu = tu.update_moment(updates, state.mu, b1, 1)
        nu = tu.update_moment_per_elem_norm(updates, state.nu, b2, 2)

        def factors(dtype):
            # Scalars shared by every leaf of one dtype, traced once per dtype;
            # the corrections are real, computed in the real part's dtype.
            real = tu.real_dtype(dtype)
            bc1 = tu.one_minus_power(b1, count, real).astype(dtype)
            bc2 = tu.one_minus_power(b2, count, real).astype(dtype)
            if nesterov:
                next_bc1 = tu.one_minus_power(b1, count + 1, real).astype(dtype)
                first = (jnp.asarray(b1, dtype), next_bc1, tu.complement(b1, dtype))
            else:
                first = None
            eps_root_, eps_ = jnp.asarray(eps_root, dtype), jnp.asarray(eps, dtype)
            return bc1, bc2, first, eps_root_, eps_

        shared = tu.per_dtype(factors)

        def one(g, m, v):
            bc1, bc2, first, eps_root_, eps_ = shared(g.dtype)
            if nesterov:
                b1_, next_bc1, one_minus_b1 = first
                m_hat = b1_ * (m / next_bc1) + one_minus_b1 * (g / bc1)
            else:
                m_hat = m / bc1
            v_hat = v / bc2
            if not _is_zero(eps_root):
                v_hat = v_hat + eps_root_
            return m_hat / (jnp.sqrt(v_hat) + eps_)

        out = tu.map_widened(one, updates, mu, nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)
