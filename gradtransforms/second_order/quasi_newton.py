"""Quasi-Newton methods: BFGS and L-BFGS (textbook §8.6.3).

Both approximate the inverse Hessian by a matrix $M_t$ built from the steps
$s = \\theta_{t} - \\theta_{t-1}$ and gradient changes $y = g_t - g_{t-1}$,
and search along $-M_t g_t$. BFGS stores $M_t$: $O(n^2)$ memory and time
per step. L-BFGS stores only the last $m$ pairs $(s, y)$ and applies $M_t$ by
the two-loop recursion: $O(mn)$. Each update first records the pair from the
previous step, then preconditions the gradient, so a line search placed
after it has already moved the parameters when the pair is formed.
References: Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006),
eqs. 6.17 and 6.20, Algorithms 7.4 and 7.5.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.combine import chain
from gradtransforms.objective import check_call
from gradtransforms.scaling import scale, scale_by_learning_rate
from gradtransforms.second_order.complex_params import real_vdot, reject_complex
from gradtransforms.second_order.linesearch import scale_by_zoom_linesearch
from gradtransforms.second_order.linesearch.defaults import (
    default_linesearch,
    resolve_linesearch,
)
from gradtransforms.validation import check_bool, check_positive_int

__all__ = [
    "ScaleByBfgsState",
    "ScaleByLbfgsState",
    "bfgs",
    "lbfgs",
    "scale_by_bfgs",
    "scale_by_lbfgs",
]


def _curvature_ok(sy: jax.Array, s_norm: jax.Array, y_norm: jax.Array) -> jax.Array:
    """The curvature condition $s^\\top y > 0$, with a rounding margin."""
    margin = jnp.finfo(sy.dtype).eps * s_norm * y_norm
    return jnp.isfinite(sy) & (sy > margin)


def _first_step_scale(g_norm: jax.Array) -> jax.Array:
    """$\\min(1, 1/\\lVert g\\rVert)$: the first step has length at most 1."""
    return jnp.minimum(1, 1 / g_norm)


# --------------------------------------------------------------------------
# BFGS


class ScaleByBfgsState(NamedTuple):
    """State of `scale_by_bfgs`."""

    count: jax.Array  # int32: updates so far
    num_pairs: jax.Array  # int32: (s, y) pairs accepted into M so far
    inv_hessian: jax.Array  # (n, n), params' dtype: M, the inverse-Hessian estimate
    prev_params: jax.Array  # (n,): raveled θ_{t-1}
    prev_grad: jax.Array  # (n,): raveled g_{t-1}


def scale_by_bfgs() -> GradientTransformationExtraArgs:
    """Precondition the gradient by the BFGS inverse-Hessian estimate: $u = M_t g_t$.

    $$M_{t} = (I - \\rho\\, s y^\\top) M_{t-1} (I - \\rho\\, y s^\\top) + \\rho\\,
    s s^\\top, \\qquad \\rho = 1/(y^\\top s)$$

    (Nocedal & Wright eq. 6.17) on the raveled parameters. The update is
    skipped when the curvature condition $s^\\top y > 0$ fails (it would make
    $M$ indefinite); the strong Wolfe line search guarantees it holds.
    Before the first update, $M_0 = I$ is replaced by
    $\\frac{y^\\top s}{y^\\top y} I$ (eq. 6.20). Until a pair is accepted
    the output is $g$ scaled to length at most 1 (a heuristic: the first
    line search then starts from a step of length at most 1). Outputs the
    preconditioned gradient (optax's sign convention for `scale_by_*`):
    chain with `scale(-1.0)` and a line search, as `bfgs` does. The updates
    it receives are taken as the gradient. $O(n^2)$ memory. Complex
    parameters raise `TypeError` at `init` (use `lbfgs`).

    Returns:
      A `GradientTransformationExtraArgs` (extra arguments ignored) with a
      `ScaleByBfgsState`.
    """

    def init_fn(params):
        reject_complex(params, "bfgs")
        # The raveled parameters' shape and dtype (params may be abstract).
        x = jax.eval_shape(lambda p: tu.ravel(p)[0], params)
        return ScaleByBfgsState(
            count=jnp.int32(0),
            num_pairs=jnp.int32(0),
            inv_hessian=jnp.eye(x.size, dtype=x.dtype),
            prev_params=jnp.zeros(x.shape, x.dtype),
            prev_grad=jnp.zeros(x.shape, x.dtype),
        )

    def update_fn(updates, state, params=None, **extra):
        del extra
        check_call("scale_by_bfgs", updates, params)
        x, unravel = tu.ravel(params)
        if x.shape != state.prev_params.shape:
            raise ValueError(
                f"scale_by_bfgs: params have {x.size} elements but the state was "
                f"built for {state.prev_params.size}; build it with "
                "tx.init(params) for these parameters."
            )
        g = tu.ravel(tu.cast_like(updates, params))[0].astype(x.dtype)
        s, y = x - state.prev_params, g - state.prev_grad
        sy, yy = s @ y, y @ y
        accept = (state.count > 0) & _curvature_ok(sy, jnp.linalg.norm(s), jnp.sqrt(yy))
        m = state.inv_hessian
        m = jnp.where(accept & (state.num_pairs == 0), (sy / yy) * m, m)
        rho = 1 / jnp.where(accept, sy, 1)
        my = m @ y
        m_new = (
            m
            - rho * (jnp.outer(s, my) + jnp.outer(my, s))
            + (rho * rho * (y @ my) + rho) * jnp.outer(s, s)
        )
        m = jnp.where(accept, m_new, state.inv_hessian)
        num_pairs = state.num_pairs + accept.astype(jnp.int32)
        direction = m @ g
        first = _first_step_scale(jnp.linalg.norm(g)) * g
        direction = jnp.where(num_pairs > 0, direction, first)
        new_state = ScaleByBfgsState(
            count=tu.safe_increment(state.count),
            num_pairs=num_pairs,
            inv_hessian=m,
            prev_params=x,
            prev_grad=g,
        )
        return unravel(direction), new_state

    # optax types `update` with an optional `params`; this one requires it.
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


_BFGS_LINESEARCH = default_linesearch(
    scale_by_zoom_linesearch, initial_guess_strategy="one"
)


def bfgs(
    linesearch: Any = _BFGS_LINESEARCH, has_aux: bool = False
) -> GradientTransformationExtraArgs:
    """BFGS with a strong Wolfe line search (textbook §8.6.3, eq. 8.33).

    $$\\rho_t = -M_t g_t, \\qquad \\theta_{t+1} = \\theta_t + \\varepsilon^*
    \\rho_t$$

    `chain(scale_by_bfgs(), scale(-1.0), linesearch)`; the default line
    search is `scale_by_zoom_linesearch(initial_guess_strategy="one")` (the
    full quasi-Newton step is tried first). Stores the dense $n \\times n$
    matrix $M$: $O(n^2)$ memory, impractical beyond a few thousand
    parameters (use `lbfgs`). Complex parameters raise `TypeError` at
    `init`.

    Args:
      linesearch: the line-search link; `None`: no line search, the full
        quasi-Newton step $-M_t g_t$ (as `lbfgs`, and optax's `lbfgs`).
      has_aux: `value_fn` returns `(value, aux)`; passed to the default line
        search (a line search given explicitly is used as given).

    Returns:
      A `GradientTransformationExtraArgs`; its state is the tuple of the
      three links' states.
    """
    check_bool("has_aux", has_aux)
    return chain(scale_by_bfgs(), scale(-1.0), resolve_linesearch(linesearch, has_aux))


# --------------------------------------------------------------------------
# L-BFGS


class ScaleByLbfgsState(NamedTuple):
    """State of `scale_by_lbfgs`."""

    count: jax.Array  # int32: updates so far
    s_memory: Any  # like params, leaves stacked (memory_size, ...): oldest first
    y_memory: Any  # like params, leaves stacked (memory_size, ...): oldest first
    rho_memory: jax.Array  # (memory_size,): 1 / s'y per slot (0: empty, or s'y = 0)
    prev_params: Any  # like params: θ_{t-1}
    prev_grad: Any  # like params: g_{t-1}


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformationExtraArgs:
    """Precondition the gradient by L-BFGS's two-loop recursion: $u = M_t g_t$.

    $$q \\leftarrow g;\\ \\text{for } i = t-1, \\dots, t-m:\\ \\alpha_i =
    \\rho_i s_i^\\top q,\\ q \\leftarrow q - \\alpha_i y_i; \\quad r
    \\leftarrow \\gamma q;\\ \\text{for } i = t-m, \\dots, t-1:\\ \\beta =
    \\rho_i y_i^\\top r,\\ r \\leftarrow r + s_i(\\alpha_i - \\beta)$$

    (Nocedal & Wright Algorithm 7.4) with $\\rho_i = 1 / y_i^\\top s_i$ and,
    with `scale_init_precond`, $\\gamma = s^\\top y / y^\\top y$ from the
    newest pair (eq. 7.20), else $\\gamma = 1$. The last `memory_size` pairs
    are kept oldest first, on the parameters' own pytree (no raveling; a new
    pair shifts the others down): $O(mn)$ memory. Every pair is stored, as
    optax does ($\\rho = 0$ when $s^\\top y = 0$; a pair with a non-finite
    $s^\\top y$ is dropped): a strong Wolfe line search guarantees
    $s^\\top y > 0$, which keeps $M$ positive definite; without one (or when
    it fails) a pair with $s^\\top y < 0$ can make $-M g$ an ascent
    direction, until the pair leaves the memory. With `scale_init_precond`,
    at the first update $\\gamma = \\min(1, 1/\\lVert g\\rVert)$, so that the
    first step has length at most 1 (optax's heuristic). Outputs the
    preconditioned gradient (optax's sign convention): chain with
    `scale(-1.0)` and a line search, as `lbfgs` does. The updates it
    receives are taken as the gradient. For complex parameters every inner
    product is $\\operatorname{Re}\\sum \\bar x y$, the one of
    $\\mathbb{R}^{2n}$ (see `gradtransforms.second_order.complex_params`).

    Args:
      memory_size: $m$, the number of pairs kept, as optax.
      scale_init_precond: start the recursion from $\\gamma I$ with $\\gamma$
        as above rather than from $I$, as optax.

    Returns:
      A `GradientTransformationExtraArgs` (extra arguments ignored) with a
      `ScaleByLbfgsState`.
    """
    check_positive_int("memory_size", memory_size)
    check_bool("scale_init_precond", scale_init_precond)
    m = memory_size

    def init_fn(params):
        dtype = tu.scalar_dtype(params)
        stacked = jax.tree.map(
            lambda x: jnp.zeros((m, *jnp.shape(x)), jnp.result_type(x)), params
        )
        return ScaleByLbfgsState(
            count=jnp.int32(0),
            s_memory=stacked,
            y_memory=stacked,
            rho_memory=jnp.zeros((m,), dtype),
            prev_params=tu.zeros_like(params),
            prev_grad=tu.zeros_like(params),
        )

    def update_fn(updates, state, params=None, **extra):
        del extra
        check_call("scale_by_lbfgs", updates, params)
        tu.assert_state_matches(state.prev_params, params)
        g = tu.cast_like(updates, params)
        dtype = state.rho_memory.dtype
        s = tu.add_scale(params, -1, state.prev_params)
        y = tu.add_scale(g, -1, state.prev_grad)
        sy, yy = real_vdot(s, y, dtype), real_vdot(y, y, dtype)
        # Every pair is stored, as optax does (ρ = 0 when sᵀy = 0), but one
        # with a non-finite sᵀy (an overflow) would poison the memory.
        accept = (state.count > 0) & jnp.isfinite(sy) & jnp.isfinite(yy)
        s_mem, y_mem = (
            _push(accept, state.s_memory, s),
            _push(accept, state.y_memory, y),
        )
        rho = jnp.where(sy == 0, 0, 1 / jnp.where(sy == 0, 1, sy))
        rho_mem = _push(accept, state.rho_memory, rho)
        if scale_init_precond:  # from the newest pair stored
            s_n, y_n = (jax.tree.map(lambda x: x[-1], t) for t in (s_mem, y_mem))
            sy_n, yy_n = real_vdot(s_n, y_n, dtype), real_vdot(y_n, y_n, dtype)
            gamma = jnp.where(yy_n > 0, sy_n / jnp.where(yy_n > 0, yy_n, 1), 1)
            first = _first_step_scale(tu.global_norm(g).astype(dtype))
            gamma = jnp.where(state.count > 0, gamma, first)
        else:
            gamma = jnp.ones((), dtype)
        new_state = ScaleByLbfgsState(
            count=tu.safe_increment(state.count),
            s_memory=s_mem,
            y_memory=y_mem,
            rho_memory=rho_mem,
            prev_params=tu.cast_like(params, state.prev_params),
            prev_grad=g,
        )
        return _two_loop(g, s_mem, y_mem, rho_mem, gamma), new_state

    # optax types `update` with an optional `params`; this one requires it.
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def _push(accept: jax.Array, memory: Any, new: Any) -> Any:
    """Drop the oldest entry and append `new` last, if `accept`."""

    def one(mem, v):
        pushed = jnp.concatenate([mem[1:], jnp.asarray(v, mem.dtype)[None]])
        return jnp.where(accept, pushed, mem)

    return jax.tree.map(one, memory, new)


def _two_loop(g: Any, s_mem: Any, y_mem: Any, rho_mem: jax.Array, gamma) -> Any:
    """$M g$ by Algorithm 7.4, as two scans over the memory.

    Empty slots have $\\rho = 0$ and zero vectors: no-ops.
    """
    dtype = rho_mem.dtype

    def newest_first(q, pair):
        s_i, y_i, rho_i = pair
        alpha = rho_i * real_vdot(s_i, q, dtype)
        return tu.add_scale(q, -alpha, y_i), alpha

    q, alphas = jax.lax.scan(newest_first, g, (s_mem, y_mem, rho_mem), reverse=True)

    def oldest_first(r, pair):
        s_i, y_i, rho_i, alpha = pair
        beta = rho_i * real_vdot(y_i, r, dtype)
        return tu.add_scale(r, alpha - beta, s_i), None

    r, _ = jax.lax.scan(
        oldest_first, tu.scale(gamma, q), (s_mem, y_mem, rho_mem, alphas)
    )
    return r


_LBFGS_LINESEARCH = default_linesearch(
    scale_by_zoom_linesearch, max_linesearch_steps=20, initial_guess_strategy="one"
)


def lbfgs(
    learning_rate: Any = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _LBFGS_LINESEARCH,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """L-BFGS with a strong Wolfe line search (textbook §8.6.3).

    $$\\rho_t = -M_t g_t \\ \\text{(two-loop recursion over the last } m
    \\text{ pairs)}, \\qquad \\theta_{t+1} = \\theta_t + \\varepsilon^*
    \\rho_t$$

    `chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1.0),
    linesearch)`, the same links, keywords and defaults as `optax.lbfgs`:
    the default line search is `scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one")`, and
    `linesearch=None` means no line search (the step is then $-M_t g_t$, or
    $-\\varepsilon M_t g_t$ with a `learning_rate`). $O(mn)$ memory. Complex
    parameters are supported (see `scale_by_lbfgs`).

    Args:
      learning_rate: `None` (the default; the line search chooses the step)
        or a number or schedule $\\varepsilon$ replacing `scale(-1.0)` by
        `scale_by_learning_rate(learning_rate)`, as optax.
      memory_size: $m$, the number of $(s, y)$ pairs kept, as optax.
      scale_init_precond: see `scale_by_lbfgs`, as optax.
      linesearch: the line-search link (`None`: none), as optax.
      has_aux: `value_fn` returns `(value, aux)`; passed to the default line
        search (a line search given explicitly is used as given).

    Returns:
      A `GradientTransformationExtraArgs`; its state is the tuple of the
      three links' states.
    """
    check_bool("has_aux", has_aux)
    flip = (
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    )
    return chain(
        scale_by_lbfgs(memory_size, scale_init_precond),
        flip,
        resolve_linesearch(linesearch, has_aux),
    )
