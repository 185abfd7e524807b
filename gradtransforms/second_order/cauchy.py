"""The generalised Cauchy point and the subspace step of L-BFGS-B.

Given the iterate $x$ in the box $\\ell \\le x \\le u$, the gradient $g$ and
the limited-memory matrix in compact form (Byrd, Nocedal & Schnabel 1994),

$$B = \\theta I - W M W^\\top, \\qquad W = [\\,Y \\;\\; \\theta S\\,], \\qquad
M = \\begin{bmatrix} -D & L^\\top \\\\ L & \\theta S^\\top S
\\end{bmatrix}^{-1},$$

with $S, Y$ the stored steps and gradient changes (oldest first, one column
each), $D = \\operatorname{diag}(s_i^\\top y_i)$ and $L$ the strictly lower
triangle of $S^\\top Y$, one iteration of L-BFGS-B (Byrd, Lu, Nocedal & Zhu
1995, *A limited memory algorithm for bound constrained optimization*, SIAM
J. Sci. Comput. 16(5)) builds its search direction in two stages:

1. **Generalised Cauchy point** (section 4): the first local minimiser
   $x^c$ of the quadratic model $m(z) = g^\\top (z - x) + \\tfrac12 (z -
   x)^\\top B (z - x)$ along the projected steepest-descent path $t \\mapsto
   P(x - t g)$, a piecewise-linear path whose kinks (breakpoints) are where
   a variable reaches a bound. The breakpoints are visited in increasing
   order; on each segment the model is a one-dimensional quadratic whose
   slope $f'$ and curvature $f''$ are updated in $O(m^2)$ per breakpoint
   through $p = W^\\top d$ and $c = W^\\top (z - x)$.
2. **Subspace minimisation** (section 5.1, the direct primal method): with
   the variables at a bound at $x^c$ held fixed, minimise the model over the
   free ones, $\\hat d = -\\hat B^{-1} \\hat r$ with the reduced gradient
   $\\hat r = Z^\\top (g + \\theta (x^c - x) - W M c)$ and $\\hat B^{-1}$ by
   the Sherman-Morrison-Woodbury formula, then truncate the step into the
   box: $\\bar x = x^c + \\alpha^* \\hat d$ with $\\alpha^* \\le 1$ the
   largest step keeping $\\bar x$ feasible.

Everything works on the raveled parameter vector with static shapes: sets of
variables are boolean masks, empty memory slots are zero columns of $W$
(given unit diagonal entries in the middle matrix so that it stays
invertible), and the breakpoints are sorted once with `jnp.argsort` and
visited in a `lax.while_loop`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

__all__ = [
    "CauchyPoint",
    "CompactForm",
    "cauchy_point",
    "compact_form",
    "max_feasible_step",
    "subspace_step",
]


class CompactForm(NamedTuple):
    """$B = \\theta I - W M W^\\top$, on the raveled parameters."""

    w: jax.Array  # (n, 2m): W = [Y, θS], zero columns for empty slots
    mid: jax.Array  # (2m, 2m): the middle matrix M
    theta: jax.Array  # scalar θ > 0


class CauchyPoint(NamedTuple):
    """The generalised Cauchy point $x^c$ and what the subspace step needs."""

    x: jax.Array  # (n,): x^c, inside the box
    c: jax.Array  # (2m,): Wᵀ(x^c - x)
    free: jax.Array  # (n,) bool: the variables not at a bound at x^c


def compact_form(
    s_memory: jax.Array, y_memory: jax.Array, num_pairs: jax.Array, theta: jax.Array
) -> CompactForm:
    """$W$ and $M$ from the newest `num_pairs` rows of the memories (oldest first).

    $M$ is inverted blockwise through the Schur complement of $-D$,
    $T = \\theta S^\\top S + L D^{-1} L^\\top$ (positive definite when every
    $s_i^\\top y_i > 0$), factorised by Cholesky:

    $$M = \\begin{bmatrix} -D^{-1} + D^{-1} L^\\top T^{-1} L D^{-1} &
    D^{-1} L^\\top T^{-1} \\\\ T^{-1} L D^{-1} & T^{-1} \\end{bmatrix}.$$

    An empty slot gets $D_{ii} = 1$ and $T_{ii} = 1$ with zero rows and
    columns elsewhere, so it decouples and its zero column of $W$ makes it
    a no-op. With no pairs, $B = \\theta I$.
    """
    m = s_memory.shape[0]
    valid = jnp.arange(m, dtype=jnp.int32) >= m - num_pairs
    s = jnp.where(valid[:, None], s_memory, 0)
    y = jnp.where(valid[:, None], y_memory, 0)
    sy = s @ y.T  # (i, j): s_i · y_j
    diag = jnp.where(valid, jnp.diag(sy), 1)
    low = jnp.tril(sy, -1)
    low_dinv = low / diag[None, :]  # L D⁻¹
    empty = jnp.diag(jnp.where(valid, 0, 1).astype(s.dtype))
    schur = theta * (s @ s.T) + low_dinv @ low.T + empty
    chol = (jnp.linalg.cholesky(schur), True)
    m21 = cho_solve(chol, low_dinv)  # T⁻¹ L D⁻¹
    m22 = cho_solve(chol, jnp.eye(m, dtype=s.dtype))
    m11 = low_dinv.T @ m21 - jnp.diag(1 / diag)
    mid = jnp.block([[m11, m21.T], [m21, m22]])
    w = jnp.concatenate([y.T, theta * s.T], axis=1)
    return CompactForm(w, mid, theta)


def max_feasible_step(
    x: jax.Array, d: jax.Array, lower: jax.Array, upper: jax.Array
) -> jax.Array:
    """The largest $\\alpha \\ge 0$ keeping $x + \\alpha d$ in the box, or $\\infty$."""
    safe = jnp.where(d == 0, 1, d)
    room = jnp.where(d > 0, (upper - x) / safe, (lower - x) / safe)
    room = jnp.where(d == 0, jnp.inf, jnp.maximum(room, 0))
    return jnp.min(room, initial=jnp.inf)


class _Walk(NamedTuple):
    """The breakpoint search's carry (section 4, Algorithm CP)."""

    k: jax.Array  # int32: breakpoints passed
    t_old: jax.Array  # the last breakpoint passed
    d: jax.Array  # (n,): the path's current direction
    hit: jax.Array  # (n,) bool: variables that have reached a bound
    c: jax.Array  # (2m,): Wᵀ(z - x) at t_old
    p: jax.Array  # (2m,): Wᵀd
    f1: jax.Array  # the model's slope f' at t_old
    f2: jax.Array  # its curvature f''
    dt_min: jax.Array  # -f'/f'': the minimiser on the current segment


def cauchy_point(
    x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, form: CompactForm
) -> CauchyPoint:
    """The generalised Cauchy point along $P(x - t g)$ (section 4, Algorithm CP).

    Variable $i$ reaches its bound at the breakpoint $t_i = (x_i - u_i)/g_i$
    if $g_i < 0$, $(x_i - \\ell_i)/g_i$ if $g_i > 0$ ($\\infty$ if $g_i = 0$
    or the bound is infinite). From $t = 0$, on the segment after the last
    breakpoint passed the path direction is $d$ ($-g_i$ for the variables
    still moving, 0 for the others) and the model along it is
    $f' \\Delta t + \\tfrac12 f'' \\Delta t^2$, minimised at
    $\\Delta t_\\text{min} = -f'/f''$. If that lies before the next
    breakpoint the search stops there; otherwise variable $b$ is fixed at its
    bound and, with $z_b$ its displacement and $w_b$ its row of $W$,

    $$f' \\leftarrow f' + \\Delta t f'' + g_b^2 + \\theta g_b z_b - g_b
    w_b^\\top M c, \\qquad f'' \\leftarrow f'' - \\theta g_b^2 - 2 g_b
    w_b^\\top M p - g_b^2 w_b^\\top M w_b,$$

    then $p \\leftarrow p + g_b w_b$. $f''$ is kept above $\\epsilon$ times
    its initial value against rounding. Variables already at a bound with
    the gradient pushing outwards (and those with $\\ell_i = u_i$) never
    move. Cost: $O(n \\log n + m^2 n_\\text{breakpoints passed})$.
    """
    theta, w, mid = form.theta, form.w, form.mid
    eps = jnp.finfo(x.dtype).eps
    at_bound = ((x <= lower) & (g >= 0)) | ((x >= upper) & (g <= 0))
    moving = ~at_bound & (g != 0)
    target = jnp.where(g < 0, upper, lower)  # the bound a moving variable reaches
    t = jnp.where(moving, (x - target) / jnp.where(g == 0, 1, g), jnp.inf)
    order = jnp.argsort(t)
    t_sorted = t[order]
    num_breaks = jnp.sum(jnp.isfinite(t), dtype=jnp.int32)
    d = jnp.where(moving, -g, 0)
    p = w.T @ d
    f1 = -(d @ d)
    f2 = -theta * f1 - p @ (mid @ p)
    floor = eps * jnp.maximum(f2, -theta * f1)
    f2 = jnp.maximum(f2, floor)

    def minimiser(f1, f2):
        return -f1 / jnp.where(f2 > 0, f2, 1)

    def cond_fn(s: _Walk):
        nxt = t_sorted[jnp.minimum(s.k, x.size - 1)]
        return (s.k < num_breaks) & (s.dt_min >= nxt - s.t_old)

    def body_fn(s: _Walk):
        b, t_b = order[s.k], t_sorted[s.k]
        dt = t_b - s.t_old
        g_b, w_b = g[b], w[b]
        z_b = target[b] - x[b]
        c = s.c + dt * s.p
        f1 = s.f1 + dt * s.f2 + g_b * g_b + theta * g_b * z_b - g_b * (w_b @ (mid @ c))
        f2 = (
            s.f2
            - theta * g_b * g_b
            - 2 * g_b * (w_b @ (mid @ s.p))
            - g_b * g_b * (w_b @ (mid @ w_b))
        )
        f2 = jnp.maximum(f2, floor)
        return _Walk(
            s.k + 1, t_b, s.d.at[b].set(0), s.hit.at[b].set(True),
            c, s.p + g_b * w_b, f1, f2, minimiser(f1, f2),
        )  # fmt: skip

    zero = jnp.zeros((), x.dtype)
    start = _Walk(
        jnp.int32(0), zero, d, jnp.zeros(x.shape, bool),
        jnp.zeros_like(p), p, f1, f2, minimiser(f1, f2),
    )  # fmt: skip
    s = jax.lax.while_loop(cond_fn, body_fn, start)
    dt_min = jnp.where(jnp.any(s.d != 0), jnp.maximum(s.dt_min, 0), 0)
    xc = jnp.where(s.hit, target, x + (s.t_old + dt_min) * s.d)
    xc = jnp.clip(xc, lower, upper)
    return CauchyPoint(xc, s.c + dt_min * s.p, ~at_bound & ~s.hit)


def subspace_step(
    x: jax.Array,
    g: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    cauchy: CauchyPoint,
    form: CompactForm,
) -> jax.Array:
    """$\\bar x$: the model minimised over the free variables from $x^c$ (section 5.1).

    With $Z$ selecting the free variables, the reduced Hessian is $\\hat B =
    \\theta I - Z^\\top W M W^\\top Z$ and, by Sherman-Morrison-Woodbury,

    $$\\hat d = -\\frac1\\theta \\Bigl(\\hat r + \\frac1\\theta Z^\\top W
    \\bigl(I - \\tfrac1\\theta M W^\\top Z Z^\\top W\\bigr)^{-1} M W^\\top
    Z \\hat r\\Bigr),$$

    a $2m \\times 2m$ solve. The step is then truncated into the box,
    $\\bar x = x^c + \\alpha^* \\hat d$ with $\\alpha^* = \\min(1,
    \\max\\{\\alpha : \\ell \\le x^c + \\alpha \\hat d \\le u\\})$, as in the
    paper (not SciPy's later variant, which projects the step and backtracks
    only if the projection is not a descent direction). If the solve fails
    (a non-finite result), $\\bar x = x^c$.
    """
    theta, w, mid = form.theta, form.w, form.mid
    free = cauchy.free
    r = g + theta * (cauchy.x - x) - w @ (mid @ cauchy.c)
    r = jnp.where(free, r, 0)
    wz = jnp.where(free[:, None], w, 0)
    inner = jnp.eye(mid.shape[0], dtype=x.dtype) - (mid @ (wz.T @ wz)) / theta
    u = jnp.linalg.solve(inner, mid @ (wz.T @ r))
    step = jnp.where(free, -(r + (wz @ u) / theta) / theta, 0)
    alpha = jnp.minimum(1, max_feasible_step(cauchy.x, step, lower, upper))
    xbar = jnp.clip(cauchy.x + alpha * step, lower, upper)
    return jnp.where(jnp.all(jnp.isfinite(step)), xbar, cauchy.x)
