"""Clipping and numerical safety (textbook §8.2.4).

`clip` bounds each element, `clip_by_norm` each leaf's L2 norm, and
`clip_by_global_norm` the norm of all updates together. `apply_if_finite`
skips every step that would put a NaN or $\\pm\\infty$ into the updates, the
wrapped optimizer's state or the parameters; `zero_nans` turns NaN gradients
into zeros.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    apply_updates,
)
from gradtransforms.validation import (
    check_positive,
    check_positive_int,
    check_transformation,
)

__all__ = [
    "ApplyIfFiniteState",
    "ClipByGlobalNormState",
    "SkipReason",
    "ZeroNansState",
    "apply_if_finite",
    "clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "zero_nans",
]


def _stateless(update_leaf, real_only: str | None = None) -> GradientTransformation:
    """A stateless transformation applying `update_leaf` to every leaf.

    With `real_only` (the transformation's name), `init` refuses complex
    parameters, naming the first complex leaf.
    """

    def init_fn(params):
        if real_only is not None:
            _refuse_complex(real_only, params)
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(update_leaf, updates), state

    return GradientTransformation(init_fn, update_fn)


def _refuse_complex(name: str, params: Any) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.complexfloating):
            raise TypeError(
                f"{name} clips each element between -max_delta and max_delta, "
                f"which complex values do not allow; leaf "
                f"{jax.tree_util.keystr(path) or '<root>'} is "
                f"{jnp.result_type(leaf)}. Clip the norm instead: "
                "clip_by_norm or clip_by_global_norm."
            )


def clip(max_delta: float) -> GradientTransformation:
    """Clip every element to $[-\\Delta, \\Delta]$.

    $$u = \\min(\\max(g, -\\Delta), \\Delta)$$

    Element-wise clipping orders the values, so it is defined for real
    parameters only: `init` raises a `TypeError` for complex ones (clip their
    norm instead, with `clip_by_norm` or `clip_by_global_norm`).

    Args:
      max_delta: $\\Delta > 0$.

    Returns:
      A stateless `GradientTransformation`.
    """
    check_positive("max_delta", max_delta)

    def one(g):
        bound = jnp.asarray(max_delta, jnp.asarray(g).dtype)
        return jnp.clip(g, -bound, bound)

    return _stateless(one, real_only="clip")


def _norm_factor(norm: jax.Array, max_norm: Any) -> jax.Array:
    """$h / \\max(\\|g\\|, h)$: 1 inside the ball, $h/\\|g\\|$ outside."""
    h = jnp.asarray(max_norm, norm.dtype)
    return h / jnp.maximum(norm, h)


def clip_by_norm(max_norm: float) -> GradientTransformation:
    """Rescale each leaf whose L2 norm exceeds $h$ onto the ball of radius $h$.

    $$g_\\ell \\leftarrow g_\\ell \\cdot \\frac{h}{\\max(\\|g_\\ell\\|_2, h)}$$

    per leaf $\\ell$ (per tensor). The norm is accumulated in float32 or wider,
    and rescaled where its squares would overflow, so a finite leaf is
    clipped onto the ball rather than zeroed. A leaf holding a NaN or
    $\\pm\\infty$ comes out with NaNs, as in optax.

    Args:
      max_norm: $h > 0$.

    Returns:
      A stateless `GradientTransformation`.
    """
    check_positive("max_norm", max_norm)

    def one(g):
        factor = _norm_factor(tu.overflow_safe_global_norm(g), max_norm)
        return tu.map_widened(lambda x: x * factor, g)

    return _stateless(one)


class ClipByGlobalNormState(NamedTuple):
    """State of `clip_by_global_norm`."""

    global_norm: jax.Array  # scalar: the norm of the last updates seen, unclipped


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Gradient clipping by the global norm (textbook §8.2.4).

    $$\\text{if } \\|g\\| > h:\\quad g \\leftarrow \\frac{h\\,g}{\\|g\\|}$$

    with $\\|g\\|$ the L2 norm over all leaves together. The updates are
    multiplied by one scalar, $h/\\max(\\|g\\|, h)$, rather than selected
    between two trees, so the multiply fuses into the next transformation.
    The unclipped norm is kept in `state.global_norm` for logging (optax's
    `clip_by_global_norm` is stateless; an `update` given `None` for the state,
    as optax's callers may do, returns `None` for it).

    Finite updates give finite outputs and a finite `global_norm`: where the
    sum of squares would overflow (float32 elements above about
    $10^{19}$), the norm is recomputed from the updates scaled by a power of
    two, so they are clipped onto the ball, not zeroed as by optax. Updates
    holding a NaN or $\\pm\\infty$ come out with NaNs, as in optax
    ($\\infty \\cdot 0$); put `apply_if_finite` outside to skip such steps.

    Args:
      max_norm: $h > 0$.

    Returns:
      A `GradientTransformation` with `ClipByGlobalNormState`.
    """
    check_positive("max_norm", max_norm)

    def init_fn(params):
        return ClipByGlobalNormState(global_norm=jnp.zeros((), tu.scalar_dtype(params)))

    def update_fn(updates, state, params=None) -> tuple[Any, Any]:
        del params
        norm = tu.overflow_safe_global_norm(updates)
        factor = _norm_factor(norm, max_norm)
        out = tu.scale(factor, updates)
        if state is None:  # optax's clip is stateless: its callers may pass None
            return out, None
        return out, ClipByGlobalNormState(
            global_norm=norm.astype(state.global_norm.dtype)
        )

    return GradientTransformation(init_fn, update_fn)


class SkipReason(enum.IntEnum):
    """Why `apply_if_finite` skipped a step: `ApplyIfFiniteState.last_skip_reason`.

    `NONE` (0): no step skipped yet; `NON_FINITE_GRADIENT` (1): the incoming
    gradient; `NON_FINITE_UPDATE` (2): the update `inner` made of a finite
    gradient (an overflow inside it); `NON_FINITE_INNER_STATE` (3): a buffer
    of `inner`'s new state that mirrors a parameter (e.g. a float16 moment);
    `NON_FINITE_PARAMS` (4): `apply_updates(params, updates)`. The checks run
    in this order; the first that fails is recorded. `describe` gives a
    sentence for a log:

    >>> import gradtransforms as gt
    >>> gt.SkipReason(2).describe()
    'the wrapped transformation turned a finite gradient into a non-finite update'
    """

    NONE = 0
    NON_FINITE_GRADIENT = 1
    NON_FINITE_UPDATE = 2
    NON_FINITE_INNER_STATE = 3
    NON_FINITE_PARAMS = 4

    def describe(self) -> str:
        """The reason as a sentence."""
        return _SENTENCES[self.value]


_SENTENCES = (
    "no step has been skipped",
    "the gradient held a NaN or an infinity",
    "the wrapped transformation turned a finite gradient into a non-finite update",
    "the wrapped transformation's new state held a NaN or an infinity in a buffer "
    "like the parameters (a moment, a momentum, an average)",
    "params + updates would have been non-finite in the parameters' dtype "
    "(an overflow, e.g. of a float16 parameter near 65504, or parameters "
    "already non-finite)",
)


class ApplyIfFiniteState(NamedTuple):
    """State of `apply_if_finite` (optax's fields, then `last_skip_reason`)."""

    notfinite_count: jax.Array  # int32: skipped steps in a row
    last_finite: jax.Array  # bool: whether the last step was applied
    total_notfinite: jax.Array  # int32: skipped steps in all
    inner_state: Any
    last_skip_reason: jax.Array  # int32: the `SkipReason` of the last skip, 0 if none


def _parameter_buffers(inner_state: Any, updates: Any) -> list[Any]:
    """The floating leaves of `inner_state` that mirror a parameter.

    A leaf mirrors one when its key path ends with the parameter's path and it
    has the parameter's shape: the moments, momenta and averages, also inside
    `chain`, `masked`, `partition` or `inject_hyperparams`. Counts, step sizes
    and line-search records (which may hold $\\infty$ by design) do not. For a
    bare-array parameter only the leaves of its shape count, none if scalar.
    """
    shapes: dict[tuple, tuple] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(updates):
        if path or jnp.ndim(leaf):
            shapes[tuple(path)] = jnp.shape(leaf)
    found = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(inner_state):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            continue
        shape = jnp.shape(leaf)
        if any(shapes.get(tuple(path[i:])) == shape for i in range(len(path) + 1)):
            found.append(leaf)
    return found


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: int | None = None
) -> GradientTransformationExtraArgs:
    """Skip every step that would put a NaN or $\\pm\\infty$ into the run.

    A step is skipped when any of these holds, checked in this order (the
    first that fails is recorded as a `SkipReason`):

    1. the incoming updates (the gradient) hold a non-finite element;
    2. the updates `inner` emits do, from a finite gradient (an overflow
       inside `inner`, e.g. a large scale);
    3. a buffer of `inner`'s new state that mirrors a parameter (a moment, a
       momentum, an average: a leaf at a parameter's key path with its shape)
       does, e.g. a float16 momentum past 65504; counts, step sizes and
       line-search records, which may hold $\\infty$ by design, are not
       checked (nor is anything for a bare scalar parameter);
    4. when `params` is given, `apply_updates(params, updates)` would, in
       each parameter's dtype (a float16 parameter near 65504 plus a finite
       update), or the parameters are non-finite already.

    A skipped step emits zeros in each leaf's dtype and leaves `inner`'s state
    exactly as it was, so from finite parameters no input, finite or not,
    makes them non-finite, however many bad steps come in a row. The state
    counts the skips (`notfinite_count` in a row, `total_notfinite` overall),
    `last_finite` says whether the last step was applied, and
    `last_skip_reason` keeps the `SkipReason` of the latest skip (0 before the
    first; `SkipReason(code).describe()` for a sentence). Check 4 assumes the
    guard's output is what is added to the parameters: put it outermost.

    Unlike `optax.apply_if_finite`, which checks the gradient only and lets
    the non-finite update through after `max_consecutive_errors` bad steps,
    this never does. A training loop can stop when `state.notfinite_count`
    reaches `max_consecutive_errors`; the argument is validated and kept only
    for that and for optax's calling convention.

    Args:
      inner: the transformation to guard.
      max_consecutive_errors: optional int > 0, see above.

    Returns:
      A `GradientTransformationExtraArgs` with `ApplyIfFiniteState`.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> tx = gt.apply_if_finite(gt.sgd(1.0))
      >>> params = {"w": jnp.array([6e4], jnp.float16)}
      >>> grads = {"w": jnp.array([-1e4], jnp.float16)}  # finite: 6e4 + 1e4 is not
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> updates["w"], gt.SkipReason(int(state.last_skip_reason)).name
      (Array([0.], dtype=float16), 'NON_FINITE_PARAMS')
    """
    check_transformation("inner", inner)
    if max_consecutive_errors is not None:
        check_positive_int("max_consecutive_errors", max_consecutive_errors)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return ApplyIfFiniteState(zero, jnp.array(True), zero, inner.init(params), zero)

    def update_fn(updates, state, params=None, **extra_args):
        grad_ok = tu.all_finite(updates)
        # Feed zeros to the inner transformation on a bad step: its outputs are
        # discarded, and zeros keep NaNs out of the branch that is not taken.
        safe = tu.where(grad_ok, updates, tu.zeros_like(updates))
        new_updates, new_inner = inner.update(
            safe, state.inner_state, params, **extra_args
        )
        checks = [
            grad_ok,
            tu.all_finite(new_updates),
            tu.all_finite(_parameter_buffers(new_inner, updates)),
        ]
        if params is not None:
            checks.append(tu.all_finite(apply_updates(params, new_updates)))
        reason = jnp.zeros([], jnp.int32)
        for code, ok in reversed(list(enumerate(checks, start=1))):
            reason = jnp.where(ok, reason, jnp.int32(code))
        applied = reason == SkipReason.NONE
        return tu.where(applied, new_updates, tu.zeros_like(new_updates)), (
            ApplyIfFiniteState(
                notfinite_count=jnp.where(
                    applied, 0, tu.safe_increment(state.notfinite_count)
                ),
                last_finite=applied,
                total_notfinite=jnp.where(
                    applied,
                    state.total_notfinite,
                    tu.safe_increment(state.total_notfinite),
                ),
                inner_state=tu.where(applied, new_inner, state.inner_state),
                last_skip_reason=jnp.where(applied, state.last_skip_reason, reason),
            )
        )

    return GradientTransformationExtraArgs(init_fn, update_fn)


class ZeroNansState(NamedTuple):
    """State of `zero_nans` (field names as optax's)."""

    found_nan: Any  # like params, bool scalars: whether the leaf had a NaN


def zero_nans() -> GradientTransformation:
    """Replace NaNs in the updates by 0, recording per leaf whether any was seen.

    As optax's `zero_nans`. $\\pm\\infty$ pass through; it does no arithmetic of
    its own, so it never makes a non-finite value. Guard against infinities
    with `apply_if_finite`.

    Returns:
      A `GradientTransformation` with `ZeroNansState`.
    """

    def init_fn(params):
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.array(False), params))

    def update_fn(updates, state, params=None):
        del params
        found = jax.tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        out = jax.tree.map(
            lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates
        )
        return out, ZeroNansState(found_nan=found)

    return GradientTransformation(init_fn, update_fn)
