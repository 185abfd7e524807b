"""Clipping and numerical safety (textbook §8.2.4).

`clip` bounds each element, `clip_by_norm` each leaf's L2 norm, and
`clip_by_global_norm` the norm of all updates together. `apply_if_finite` and
`zero_nans` keep non-finite gradients away from the parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.validation import (
    check_positive,
    check_positive_int,
    check_transformation,
)

__all__ = [
    "ApplyIfFiniteState",
    "ClipByGlobalNormState",
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

    per leaf $\\ell$ (per tensor). The norm is accumulated in float32 or wider.

    Args:
      max_norm: $h > 0$.

    Returns:
      A stateless `GradientTransformation`.
    """
    check_positive("max_norm", max_norm)

    def one(g):
        factor = _norm_factor(tu.global_norm(g), max_norm)
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
        norm = tu.global_norm(updates)
        factor = _norm_factor(norm, max_norm)
        out = tu.scale(factor, updates)
        if state is None:  # optax's clip is stateless: its callers may pass None
            return out, None
        return out, ClipByGlobalNormState(
            global_norm=norm.astype(state.global_norm.dtype)
        )

    return GradientTransformation(init_fn, update_fn)


class ApplyIfFiniteState(NamedTuple):
    """State of `apply_if_finite` (field names as optax's)."""

    notfinite_count: jax.Array  # int32: non-finite steps in a row
    last_finite: jax.Array  # bool: whether the last step was finite
    total_notfinite: jax.Array  # int32: non-finite steps in all
    inner_state: Any


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: int | None = None
) -> GradientTransformationExtraArgs:
    """Skip every step whose updates contain a NaN or $\\pm\\infty$.

    The incoming updates are checked; if any element is non-finite, the
    updates become zeros and `inner`'s state is left as it was, so neither the
    parameters nor the moments are ever corrupted, however many bad steps come
    in a row. The state counts them (`notfinite_count` in a row,
    `total_notfinite` overall).

    Unlike `optax.apply_if_finite`, which lets the non-finite update through
    after `max_consecutive_errors` bad steps, this never does. A training loop
    can stop when `state.notfinite_count` reaches `max_consecutive_errors`;
    the argument is validated and kept only for that and for optax's calling
    convention.

    Args:
      inner: the transformation to guard.
      max_consecutive_errors: optional int > 0, see above.

    Returns:
      A `GradientTransformationExtraArgs` with `ApplyIfFiniteState`.
    """
    check_transformation("inner", inner)
    if max_consecutive_errors is not None:
        check_positive_int("max_consecutive_errors", max_consecutive_errors)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return ApplyIfFiniteState(zero, jnp.array(True), zero, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        finite = tu.all_finite(updates)
        # Feed zeros to the inner transformation on a bad step: its outputs are
        # discarded, and zeros keep NaNs out of the branch that is not taken.
        safe = tu.where(finite, updates, tu.zeros_like(updates))
        new_updates, new_inner = inner.update(
            safe, state.inner_state, params, **extra_args
        )
        out = tu.where(finite, new_updates, tu.zeros_like(new_updates))
        inner_state = tu.where(finite, new_inner, state.inner_state)
        return out, ApplyIfFiniteState(
            notfinite_count=jnp.where(
                finite, 0, tu.safe_increment(state.notfinite_count)
            ),
            last_finite=finite,
            total_notfinite=jnp.where(
                finite, state.total_notfinite, tu.safe_increment(state.total_notfinite)
            ),
            inner_state=inner_state,
        )

    return GradientTransformationExtraArgs(init_fn, update_fn)


class ZeroNansState(NamedTuple):
    """State of `zero_nans` (field names as optax's)."""

    found_nan: Any  # like params, bool scalars: whether the leaf had a NaN


def zero_nans() -> GradientTransformation:
    """Replace NaNs in the updates by 0, recording per leaf whether any was seen.

    $\\pm\\infty$ pass through; guard against them with `apply_if_finite`.

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
