"""Low-precision parameters trained in full precision: master weights.

A bfloat16 number has 8 significant bits: next to a parameter of magnitude 1
its neighbours are $2^{-8} \\approx 0.004$ and $2^{-7} \\approx 0.008$ away, so
an update smaller than about 0.002 (half the spacing below 1), such as Adam's
first steps at a learning rate of $10^{-4}$, is rounded away when it is added
and the parameter never moves, silently. `master_weights` keeps a float32
copy of such parameters in the optimizer state, lets the optimizer move the
copy, and makes the low-precision parameters follow it: small updates add up
in the copy until they change its rounding. See the low-precision guide
(docs/guides/low-precision.md) for the dtype rule of the moments and a
measured comparison.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.tree.dtypes import checked_dtype, leaf_dtype
from gradtransforms.tree.structure import is_none
from gradtransforms.validation import check_float_dtype, check_transformation

__all__ = ["MasterWeightsState", "master_weights"]


class MasterWeightsState(NamedTuple):
    """State of `master_weights`."""

    master_params: Any
    """Like params: $\\theta^*$ in `dtype` for each float leaf narrower than
    `dtype`; `None` for the other leaves (they are their own master copy)."""
    inner_state: Any
    """The state of `inner`, built and updated on the master copy."""


def _needs_copy(own: jnp.dtype, dtype: jnp.dtype) -> bool:
    """A real float leaf narrower than `dtype` (bfloat16, float16 for float32)."""
    return jnp.issubdtype(own, jnp.floating) and own.itemsize < dtype.itemsize


def _full_precision(master_params: Any, params: Any) -> Any:
    """The parameters `inner` sees: the master copy, or the parameter itself."""
    return jax.tree.map(
        lambda p, m: p if m is None else m, params, master_params, is_leaf=is_none
    )


def master_weights(
    inner: GradientTransformation, dtype: Any = jnp.float32
) -> GradientTransformationExtraArgs:
    """Keep a full-precision master copy of low-precision parameters in the state.

    $$\\theta^* \\leftarrow \\theta^* + \\operatorname{inner}(\\bar g;
    \\theta^*), \\qquad u = \\operatorname{round}(\\theta^*) - \\theta$$

    For each float leaf narrower than `dtype` (bfloat16 and float16 under the
    default float32), the state holds $\\theta^*$, a copy in `dtype` made at
    `init`. Each update widens the gradient $g$ (taken at the low-precision
    parameters $\\theta$) to $\\bar g$ in `dtype`, runs `inner` on it
    against $\\theta^*$, advances $\\theta^*$ by the inner update in
    `dtype`, and emits, in the parameters' dtype, the $u$ that takes
    $\\theta$ to $\\theta^*$ rounded to the parameters' dtype: with
    `apply_updates(params, u)`, the parameters become
    $\\operatorname{round}(\\theta^*)$. That is exact whenever
    $\\operatorname{round}(\\theta^*) - \\theta$ is itself representable in
    the parameters' dtype, which Sterbenz's lemma guarantees when the two
    have the same sign and lie within a factor 2 of each other (every step
    but a change of sign or a jump); otherwise the parameters land within
    one rounding of it. Either way $\\theta^*$ is unaffected, and the next
    step starts from it again, so no error accumulates. An update too
    small to change $\\theta$ still moves $\\theta^*$, and the updates add
    up there until they change its rounding: with bfloat16 parameters,
    `adam(1e-4)` trains under `master_weights` and does not move the
    parameters without it.

    Leaves of `dtype` or wider (float32 and float64 under the default) and
    complex leaves keep no copy (`None` in `master_params`): they get the
    inner update unchanged, which is what a copy would give them. `None`
    leaves stay `None`. Place `master_weights` outermost, around the whole
    optimizer, or last in a chain: a link after it would move the parameters
    away from the master copy (links before it, such as clipping, see the
    16-bit gradients). The full-precision parameters are `state.master_params`
    where it is not `None` and the parameters elsewhere; if the parameters
    are changed outside the optimizer, initialise it again.

    Args:
      inner: the optimizer run on the master copy (any transformation;
        extra keyword arguments of `update` are passed on to it).
      dtype: the floating dtype of the master copy (default float32).

    Returns:
      A `GradientTransformationExtraArgs` with `MasterWeightsState`; its
      `update` needs `params`.

    Raises:
      TypeError: at `init`, for an integer or bool leaf, naming its path.
      ValueError: at `update`, when `params` is not given.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> params = {"w": jnp.ones(3, jnp.bfloat16)}
      >>> tx = gt.master_weights(gt.adam(1e-4))
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.ones(3, jnp.bfloat16)}
      >>> for _ in range(100):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gt.apply_updates(params, updates)
      >>> params["w"]  # gt.adam(1e-4) alone leaves it at 1
      Array([0.988281, 0.988281, 0.988281], dtype=bfloat16)
    """
    check_transformation("inner", inner)
    check_float_dtype("dtype", dtype)
    dtype = jnp.dtype(dtype)
    inner = optax.with_extra_args_support(inner)

    def copy(path: tuple, p: Any) -> jax.Array | None:
        if not _needs_copy(checked_dtype(path, p), dtype):
            return None
        if isinstance(p, jax.ShapeDtypeStruct):  # abstract parameters
            return jnp.zeros(p.shape, dtype)
        return jnp.asarray(p).astype(dtype)

    def init_fn(params):
        master_params = jax.tree_util.tree_map_with_path(copy, params)
        inner_state = inner.init(_full_precision(master_params, params))
        return MasterWeightsState(master_params, inner_state)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(
                "master_weights needs the parameters: call "
                "tx.update(updates, state, params) (params is missing); the "
                "update takes the parameters to the rounded master copy."
            )
        full = _full_precision(state.master_params, params)
        inner_updates, inner_state = inner.update(
            tu.cast_like(updates, full), state.inner_state, full, **extra_args
        )
        master_params = jax.tree.map(
            lambda m, u: None if m is None else m + jnp.asarray(u).astype(m.dtype),
            state.master_params,
            inner_updates,
            is_leaf=is_none,
        )

        def emitted(p: Any, m: Any, u: Any) -> jax.Array | None:
            if p is None:
                return None
            p = jnp.asarray(p, leaf_dtype(p))
            if m is None:
                return jnp.asarray(u).astype(p.dtype)
            # round(θ*) - θ, computed in `dtype`. The rounding sits behind a
            # barrier: under XLA's default `xla_allow_excess_precision`, a
            # convert to bfloat16 and back may be simplified away (the CPU
            # backend does so for the converts it inserts itself).
            rounded = jax.lax.optimization_barrier(m.astype(p.dtype))
            return (rounded.astype(m.dtype) - p.astype(m.dtype)).astype(p.dtype)

        out = jax.tree.map(
            emitted, params, master_params, inner_updates, is_leaf=is_none
        )
        return out, MasterWeightsState(master_params, inner_state)

    return GradientTransformationExtraArgs(init_fn, update_fn)
