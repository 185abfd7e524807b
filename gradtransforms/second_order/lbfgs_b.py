"""L-BFGS-B: limited-memory BFGS for a box, $\\ell \\le \\theta \\le u$.

Byrd, Lu, Nocedal & Zhu (1995), *A limited memory algorithm for bound
constrained optimization*, SIAM J. Sci. Comput. 16(5), 1190-1208. On the
raveled parameters $x$, with the quasi-Newton matrix $B = \\theta I - W M
W^\\top$ of the last $m$ pairs $s = x_{k+1} - x_k$, $y = g_{k+1} - g_k$
(compact form, Byrd, Nocedal & Schnabel 1994), one update

1. finds the generalised Cauchy point $x^c$, the first minimiser of the
   quadratic model along the projected steepest-descent path $P(x - t g)$
   (section 4), and
2. minimises the model over the variables that are free at $x^c$, truncating
   the step into the box (section 5.1, the direct primal method): a point
   $\\bar x$ (both in `gradtransforms.second_order.cauchy`);
3. searches along $d = \\bar x - x$ for a step $\\lambda \\in (0,
   \\lambda_\\text{max}]$, $\\lambda_\\text{max}$ the largest keeping $x +
   \\lambda d$ in the box, with Moré & Thuente's line search (1994, *Line
   search algorithms with guaranteed sufficient decrease*, ACM TOMS 20(3)),
   for the strong Wolfe conditions with $c_1 = 10^{-3}$, $c_2 = 0.9$, as
   the reference Fortran code (and SciPy) does;
4. stores the new pair if $s^\\top y > \\epsilon\\,(-g^\\top s)$, and sets
   $\\theta = y^\\top y / s^\\top y$.

If $d$ is not a descent direction or the line search fails, the memory is
discarded and the update is retried with $B = I$ (projected steepest
descent), as the Fortran code restarts; if that fails too, the update is
zero.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.objective import (
    Evaluation,
    check_call,
    evaluation_property,
    objective,
)
from gradtransforms.second_order.box import Box, make_box
from gradtransforms.second_order.cauchy import (
    cauchy_point,
    compact_form,
    max_feasible_step,
    subspace_step,
)
from gradtransforms.second_order.complex_params import reject_complex
from gradtransforms.second_order.more_thuente import more_thuente
from gradtransforms.validation import check_bool, check_positive_int

__all__ = ["LbfgsBState", "lbfgs_b"]

_BIG = 1e10  # the longest step along an unbounded direction
_FLOAT_MAX = float(np.finfo(np.float64).max)  # a Python float: exact int comparison


class LbfgsBState(NamedTuple):
    """State of `lbfgs_b`, on the raveled parameters."""

    count: jax.Array  # int32: updates so far
    s_memory: jax.Array  # (m, n): steps s, oldest first, the newest num_pairs used
    y_memory: jax.Array  # (m, n): gradient changes y, likewise
    num_pairs: jax.Array  # int32: pairs in use (0 after a restart)
    theta: jax.Array  # scalar: θ = yᵀy / sᵀy of the newest pair (1 when none)
    box: Box  # the bounds, like the params
    evaluation: Evaluation  # f and ∇f at params + updates, and the trials made

    value = evaluation_property("value")
    grad = evaluation_property("grad")
    num_fun_evals = evaluation_property("num_fun_evals")
    num_grad_evals = evaluation_property("num_grad_evals")


class _Memory(NamedTuple):
    s: jax.Array
    y: jax.Array
    num_pairs: jax.Array
    theta: jax.Array


class _Problem(NamedTuple):
    """One update's data, raveled."""

    x: jax.Array  # the iterate, projected onto the box
    g: jax.Array  # ∇f there
    lower: jax.Array
    upper: jax.Array
    f0: jax.Array  # f there
    first: jax.Array  # bool: the first update (a shorter first trial step)
    constrained: jax.Array  # bool: some bound is finite
    boxed: jax.Array  # bool: every bound is finite


class _Outcome(NamedTuple):
    ok: jax.Array  # bool: a step that does not increase f was found
    x: jax.Array  # the new iterate (x itself when not ok)
    value: jax.Array
    grad: jax.Array
    num_evals: jax.Array  # int32


def _attempt(evaluate, prob: _Problem, memory: _Memory, lenient, max_steps):
    """Direction from the model of `memory`, then the line search (steps 1-3).

    The first trial step is $\\min(1/\\lVert d\\rVert, 1)$ at the first
    update when some bound is infinite, else 1; $\\lambda_\\text{max}$ is 1
    at the first update with a finite bound (the point $x + d$ itself), else
    the largest feasible step (at most `_BIG`). Accepted: a line search that
    ended normally at a finite point not above $f(x)$; when `lenient` also
    the best point of one that ran out of trials, if lower than $f(x)$.
    """
    x, g, lower, upper = prob.x, prob.g, prob.lower, prob.upper
    form = compact_form(memory.s, memory.y, memory.num_pairs, memory.theta)
    xbar = subspace_step(
        x, g, lower, upper, cauchy_point(x, g, lower, upper, form), form
    )
    d = xbar - x
    slope = g @ d
    active = jnp.all(jnp.isfinite(d)) & (slope < 0)
    d = jnp.where(active, d, 0)
    room = jnp.maximum(jnp.minimum(max_feasible_step(x, d, lower, upper), _BIG), 1)
    stp_max = jnp.where(prob.first & prob.constrained, 1, room).astype(x.dtype)
    norm = jnp.sqrt(d @ d)
    short = prob.first & ~prob.boxed & (norm > 0)
    stp0 = jnp.minimum(jnp.where(short, 1 / jnp.where(norm > 0, norm, 1), 1), stp_max)

    def trial(stp):
        return jnp.clip(jnp.where(stp == 1, xbar, x + stp * d), lower, upper)

    def along(stp):
        f, grad = evaluate(trial(stp))
        return f, grad @ d, grad

    stp, f, grad, ended, n = more_thuente(
        along, prob.f0, g, slope, stp0, stp_max, active, max_steps
    )
    sound = jnp.isfinite(f) & jnp.all(jnp.isfinite(grad)) & (f <= prob.f0) & (stp > 0)
    ok = active & sound & (ended | (lenient & (f < prob.f0)))
    return _Outcome(ok, jnp.where(ok, trial(stp), x), f, grad, n)


def _step(evaluate, prob: _Problem, memory: _Memory, max_steps):
    """Steps 1-4, with one restart from an empty memory if the first attempt fails.

    The attempts run in a `lax.while_loop` (at most two), so the solver is
    compiled once. Returns the outcome (its `num_evals` summed over the
    attempts) and the memory after the update.
    """
    empty = _Memory(
        jnp.zeros_like(memory.s), jnp.zeros_like(memory.y),
        jnp.int32(0), jnp.ones_like(memory.theta),
    )  # fmt: skip

    def body_fn(carry):
        before, mem, _ = carry
        out = _attempt(evaluate, prob, mem, mem.num_pairs == 0, max_steps)
        out = out._replace(num_evals=before.num_evals + out.num_evals)
        retry = ~out.ok & (mem.num_pairs > 0)
        mem = jax.tree.map(lambda a, b: jnp.where(retry, a, b), empty, mem)
        return out, mem, retry

    zero = jnp.zeros_like(prob.f0)
    none = _Outcome(jnp.zeros((), bool), prob.x, zero, prob.g, jnp.int32(0))
    start = (none, memory, jnp.ones((), bool))
    out, memory, _ = jax.lax.while_loop(lambda c: c[2], body_fn, start)
    step = out.x - prob.x
    stored = _remember(memory, step, out.grad - prob.g, prob.g @ step)
    memory = jax.tree.map(lambda a, b: jnp.where(out.ok, a, b), stored, memory)
    return out, memory


def _remember(memory: _Memory, s, y, gs) -> _Memory:
    """Append $(s, y)$, dropping the oldest, if $s^\\top y > \\epsilon (-g^\\top s)$."""
    sy, yy = s @ y, y @ y
    eps = jnp.finfo(s.dtype).eps
    accept = jnp.isfinite(sy) & jnp.isfinite(yy) & (sy > eps * -gs) & (sy > 0)

    def push(mem, v):
        return jnp.where(accept, jnp.concatenate([mem[1:], v[None]]), mem)

    m = memory.s.shape[0]
    return _Memory(
        push(memory.s, s),
        push(memory.y, y),
        jnp.where(accept, jnp.minimum(memory.num_pairs + 1, m), memory.num_pairs),
        jnp.where(accept, yy / jnp.where(accept, sy, 1), memory.theta),
    )


def _problem(params, updates, value, state: LbfgsBState) -> tuple[_Problem, Any]:
    """The update's data on the raveled parameters (and `unravel`)."""
    x, unravel = tu.ravel(params)
    if x.shape != state.s_memory.shape[1:]:
        raise ValueError(
            f"lbfgs_b: params have {x.size} elements but the state was built "
            f"for {state.s_memory.shape[1]}; build it with tx.init(params) for "
            "these parameters."
        )
    dtype = x.dtype
    g = tu.ravel(tu.cast_like(updates, params))[0].astype(dtype)
    lower = tu.ravel(state.box.lower)[0].astype(dtype)
    upper = tu.ravel(state.box.upper)[0].astype(dtype)
    finite_lo, finite_up = jnp.isfinite(lower), jnp.isfinite(upper)
    prob = _Problem(
        jnp.clip(x, lower, upper), g, lower, upper,
        jnp.asarray(value).astype(dtype), state.count == 0,
        jnp.any(finite_lo | finite_up), jnp.all(finite_lo & finite_up),
    )  # fmt: skip
    return prob, unravel


def _feasible_updates(params: Any, new: Any, box: Box) -> Any:
    """`new - params`, nudged by an ulp where `params + updates` would round out."""

    def one(p, n, lo, up):
        u = n - p
        for _ in range(2):
            lands = p + u
            u = jnp.where(lands > up, jnp.nextafter(u, jnp.full_like(u, -jnp.inf)), u)
            u = jnp.where(lands < lo, jnp.nextafter(u, jnp.full_like(u, jnp.inf)), u)
        return u

    return jax.tree.map(one, params, new, box.lower, box.upper)


def _check_bounds(lower: Any, upper: Any) -> None:
    """Check every leaf of the bounds now, and bounds given as numbers fully
    (trees are checked against the params by `init`)."""
    arrays = (int, float, np.integer, np.floating, np.ndarray, jax.Array)
    for name, bound in (("lower", lower), ("upper", upper)):
        for leaf in jax.tree.leaves(bound):
            if isinstance(leaf, (type, bool, np.bool_)) or not isinstance(leaf, arrays):
                raise TypeError(
                    f"{name} must be a real number, None, or a tree of real "
                    f"numbers or arrays; got a leaf {leaf!r}."
                )
            if isinstance(leaf, int) and abs(leaf) > _FLOAT_MAX:
                raise ValueError(
                    f"{name}: the integer {leaf} is too large for a float."
                )

    def number(b: Any) -> bool:
        leaf = jax.tree_util.treedef_is_leaf(jax.tree.structure(b))
        return b is None or (leaf and np.ndim(b) == 0)

    if number(lower) and number(upper):
        make_box(jnp.zeros(()), lower, upper)


def lbfgs_b(
    lower: Any = None,
    upper: Any = None,
    *,
    memory_size: int = 10,
    max_linesearch_steps: int = 20,
    has_aux: bool = False,
) -> GradientTransformationExtraArgs:
    """L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995): minimise $f$ in a box.

    $$\\theta_{k+1} = \\theta_k + \\lambda_k (\\bar\\theta_k - \\theta_k),
    \\qquad \\bar\\theta_k \\approx \\arg\\min_{\\ell \\le z \\le u} g_k^\\top
    (z - \\theta_k) + \\tfrac12 (z - \\theta_k)^\\top B_k (z - \\theta_k)$$

    with $B_k$ the limited-memory BFGS matrix of the last `memory_size`
    pairs, $\\bar\\theta_k$ found by the generalised Cauchy point and a
    subspace minimisation over the free variables (see
    `gradtransforms.second_order.cauchy`), and $\\lambda_k$ by Moré &
    Thuente's line search for the strong Wolfe conditions ($c_1 =
    10^{-3}$, $c_2 = 0.9$) within the largest step that stays in the box;
    the first trial step is 1, except at the first update where it is
    $1/\\lVert \\bar\\theta_0 - \\theta_0\\rVert$ unless every bound is
    finite (SciPy's `method="L-BFGS-B"` makes the same choices). Every
    iterate is feasible. A pair $(s, y)$ is stored only if $s^\\top y >
    \\epsilon\\,(-g^\\top s)$. When the direction is not a descent direction
    or the line search fails, the memory is discarded and the update retried
    as projected steepest descent ($B = I$); when that fails too (at a
    first-order point, say), the update is zero. The update is the whole
    step: this is a complete solver, not to be chained with a line search.

    A complete solver for `minimize`, which finds the `Box` in the state,
    starts from the projection of the initial parameters and measures
    convergence by the projected gradient $\\lVert P(\\theta - g) - \\theta
    \\rVert_2$ (`gradtransforms.second_order.box.projected_gradient`).
    Works on the raveled parameters: $O(mn)$ memory, $O(mn + m^3)$ time per
    update plus $O(m^2)$ per breakpoint passed. Complex parameters raise
    `TypeError` at `init`.

    Args:
      lower: $\\ell$: `None` (no lower bound), a real number for every
        element, or a tree like the params whose leaves broadcast to the
        params' leaves; $-\\infty$ where unbounded.
      upper: $u$, likewise ($+\\infty$ where unbounded). `lower <= upper`
        element by element (equal: the variable is fixed); NaN raises.
      memory_size: $m$, the number of pairs kept (SciPy's `maxcor`).
      max_linesearch_steps: most trial points per line search (SciPy's
        `maxls`).
      has_aux: `value_fn` returns `(value, aux)`; aux is ignored.

    Returns:
      A `GradientTransformationExtraArgs` whose `update(grads, state,
      params, *, value, grad, value_fn, **fn_kwargs)` returns the step to the
      new iterate and an `LbfgsBState`, whose `evaluation` holds $f$ and
      $\\nabla f$ there. `value_fn` is required (the line search needs it).
      The parameters are taken as feasible (infeasible ones are projected
      first, with $f$ and $g$ as given).
    """
    check_positive_int("memory_size", memory_size)
    check_positive_int("max_linesearch_steps", max_linesearch_steps)
    check_bool("has_aux", has_aux)
    _check_bounds(lower, upper)
    m = memory_size

    def init_fn(params):
        reject_complex(params, "lbfgs_b")
        box = make_box(params, lower, upper)
        x = jax.eval_shape(lambda p: tu.ravel(p)[0], params)
        return LbfgsBState(
            count=jnp.int32(0),
            s_memory=jnp.zeros((m, *x.shape), x.dtype),
            y_memory=jnp.zeros((m, *x.shape), x.dtype),
            num_pairs=jnp.int32(0),
            theta=jnp.ones((), x.dtype),
            box=box,
            evaluation=Evaluation.start(
                jnp.asarray(jnp.inf, x.dtype), tu.zeros_like(params)
            ),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, **extra):
        value_fn = extra.pop("value_fn", None)
        needs = {"value": value, "grad": grad, "value_fn": value_fn}
        check_call("lbfgs_b", updates, params, state.evaluation, **needs)
        f = objective(value_fn, extra, has_aux, "lbfgs_b")
        prob, unravel = _problem(params, updates, value, state)

        def evaluate(z):
            fz, gz = jax.value_and_grad(f)(unravel(z))
            gz = tu.ravel(tu.cast_like(gz, params))[0].astype(z.dtype)
            return jnp.asarray(fz).astype(z.dtype), gz

        memory = _Memory(state.s_memory, state.y_memory, state.num_pairs, state.theta)
        final, memory = _step(evaluate, prob, memory, max_linesearch_steps)
        new_state = LbfgsBState(
            count=tu.safe_increment(state.count),
            s_memory=memory.s,
            y_memory=memory.y,
            num_pairs=memory.num_pairs,
            theta=memory.theta,
            box=state.box,
            evaluation=Evaluation(
                value=jnp.where(final.ok, final.value, prob.f0),
                grad=tu.where(
                    final.ok, unravel(final.grad), tu.cast_like(grad, params)
                ),
                num_fun_evals=final.num_evals,
                num_grad_evals=final.num_evals,
            ),
        )
        new = unravel(jnp.where(final.ok, final.x, prob.x))
        return _feasible_updates(params, new, state.box), new_state

    # optax types `update` with an optional `params` and no required keyword;
    # this one requires both (as optax's own line searches do).
    return GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
