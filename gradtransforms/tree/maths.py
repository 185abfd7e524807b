"""Maths on trees: moments, bias correction, scaling, norms and inner products."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradtransforms.tree.dtypes import (
    accumulation_dtype,
    astype,
    cast_like,
    checked_dtype,
    complex_dtype,
    map_widened,
    per_dtype,
    real_dtype,
    scalar_dtype,
    tree_dtype,
)
from gradtransforms.tree.structure import assert_state_matches, is_none

__all__ = [
    "abs_sq",
    "add_scale",
    "all_finite",
    "bias_correction",
    "complement",
    "global_norm",
    "one_minus_power",
    "overflow_safe_global_norm",
    "ravel",
    "scale",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
]


def complement(decay: Any, dtype: Any) -> jax.Array:
    """$1 - \\beta$ in `dtype`, subtracted *before* rounding to `dtype`.

    For a Python number the subtraction is exact in double precision; in
    float32, `1 - float32(0.999)` would be off by 1.3e-5 relative.
    """
    return jnp.asarray(1 - decay, dtype)


def one_minus_power(decay: Any, count: jax.Array, dtype: Any) -> jax.Array:
    """$1 - \\beta^t$ in `dtype`, accurate when $\\beta^t$ is close to 1.

    Computed as $-\\operatorname{expm1}(t \\log(1 - (1 - \\beta)))$ with
    $1 - \\beta$ from `complement`: in float32 the literal $1 - \\beta^t$ at
    $\\beta = 0.999$, $t = 1$ is off by 1.3e-5 relative, which Adam's first
    step would inherit.
    """
    t = jnp.asarray(count).astype(dtype)
    return -jnp.expm1(t * jnp.log1p(-complement(decay, dtype)))


def abs_sq(x: jax.Array) -> jax.Array:
    """$|x|^2$ element-wise, real for a complex `x` (optax's `numerics.abs_sq`)."""
    if jnp.iscomplexobj(x):
        return jnp.square(x.real) + jnp.square(x.imag)
    return jnp.square(x)


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """Exponential moving average of `updates**order`, stored in each moment's dtype.

    $$m \\leftarrow \\beta m + (1 - \\beta)\\, g^{k}$$

    As `optax.tree.update_moment` (for complex `g`, $g^k$ itself; see
    `update_moment_per_elem_norm` for $|g|^k$; a `None` update gives a
    `None` moment), but computed in the accumulation dtype and rounded once to
    the moment's dtype (optax computes in the moment's dtype: in bfloat16,
    $\\beta = 0.999$ would round to 1 and $1 - \\beta$ to 0).
    """
    return _moving_average(updates, moments, decay, lambda g: g**order)


def update_moment_per_elem_norm(
    updates: Any, moments: Any, decay: Any, order: int
) -> Any:
    """Exponential moving average of $|g|^k$, stored in each moment's dtype.

    $$m \\leftarrow \\beta m + (1 - \\beta)\\, |g|^{k}$$

    As `optax.tree.update_moment_per_elem_norm`: for real `g`, $g^k$; for
    complex `g`, the power of its modulus (real), so that the second moment of
    Adam, RMSProp and AdaGrad is $|g|^2$. Computed in the accumulation dtype.
    """

    def power(g: jax.Array) -> jax.Array:
        if not jnp.iscomplexobj(g):
            return g**order
        return abs_sq(g) if order == 2 else jnp.abs(g) ** order

    return _moving_average(updates, moments, decay, power)


def _moving_average(updates: Any, moments: Any, decay: Any, term: Callable) -> Any:
    """$m \\leftarrow \\beta m + (1 - \\beta)\\,$ `term(g)`, with `term(g)` widened."""
    factors = per_dtype(lambda dt: (jnp.asarray(decay, dt), complement(decay, dt)))
    assert_state_matches(moments, updates)

    def widened_term(path: tuple, g: Any) -> jax.Array | None:
        if g is None:
            return None
        g = jnp.asarray(g, checked_dtype(path, g))
        return term(astype(g, accumulation_dtype(g.dtype)))

    terms = jax.tree_util.tree_map_with_path(widened_term, updates, is_leaf=is_none)

    def one(m: jax.Array, t: jax.Array | None) -> jax.Array | None:
        if t is None:
            return None
        d, one_minus_d = factors(m.dtype)
        return d * m + one_minus_d * t.astype(m.dtype)

    return map_widened(one, moments, terms)


def bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
    """Divide each moment by $1 - \\beta^t$ (Adam's bias correction)."""
    correction = per_dtype(
        lambda dt: one_minus_power(decay, count, real_dtype(dt)).astype(dt)
    )
    return map_widened(lambda m: m / correction(m.dtype), moment)


def scale(scalar: Any, tree: Any) -> Any:
    """Multiply every leaf by `scalar`, in the accumulation dtype; leaf dtypes kept."""
    factor = per_dtype(lambda dt: jnp.asarray(scalar, dt))
    return map_widened(lambda x: factor(x.dtype) * x, tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """$x + s\\,y$ leaf by leaf, in the accumulation dtype, in `tree_x`'s dtypes."""
    return map_widened(
        lambda x, y: x + jnp.asarray(scalar).astype(x.dtype) * y, tree_x, tree_y
    )


def global_norm(tree: Any) -> jax.Array:
    """$\\sqrt{\\sum_\\text{leaves} \\|x\\|^2}$, in `scalar_dtype(tree)`.

    $|x|^2$ of a complex element is the square of its modulus. 0 for an
    empty tree.
    """
    dtype = scalar_dtype(tree)
    total = jnp.zeros((), dtype)
    for x in jax.tree.leaves(tree):
        x = jnp.asarray(x)
        wide = complex_dtype(dtype) if jnp.iscomplexobj(x) else dtype
        total = total + jnp.sum(abs_sq(x.astype(wide)).astype(dtype))
    return jnp.sqrt(total)


def overflow_safe_global_norm(tree: Any) -> jax.Array:
    """`global_norm` that does not overflow on finite input.

    The squares of a float32 element above about $1.8 \\cdot 10^{19}$
    overflow, and with them the plain norm. Where that happens the norm is
    taken again of the tree scaled by $2^{-k}$ (exact: a power of two) and
    divided by it, so a finite tree has a finite norm unless the norm itself
    is beyond the dtype's range. NaN and $\\pm\\infty$ elements still give NaN
    and $\\infty$. Costs a second pass over the tree. The factor is a
    constant to `jax.grad` (1 unless the plain norm overflows), so the
    gradient is the norm's, with no 0-times-infinity from an unused branch.
    """
    norm = jax.lax.stop_gradient(global_norm(tree))
    shift = jnp.finfo(norm.dtype).maxexp // 2 + 16  # 80 for float32
    factor = jnp.where(jnp.isinf(norm), 2.0**-shift, 1.0).astype(norm.dtype)
    return global_norm(scale(factor, tree)) / factor


def vdot(tree_x: Any, tree_y: Any) -> jax.Array:
    """$\\sum_\\text{leaves} \\sum \\bar x\\, y$, the inner product (optax's `vdot`).

    $x$ is conjugated when complex, as in `jnp.vdot`. Each leaf pair is cast
    explicitly to the trees' accumulation dtype before it is multiplied and
    summed (float32 trees stay float32, float64 trees float64; complex when
    either tree has a complex leaf). 0 for empty trees.
    """
    dtype = jnp.result_type(tree_dtype(tree_x), tree_dtype(tree_y))
    total = jnp.zeros((), dtype)
    for x, y in zip(jax.tree.leaves(tree_x), jax.tree.leaves(tree_y), strict=True):
        x = jnp.asarray(x).astype(dtype)
        y = jnp.asarray(y).astype(dtype)
        # jnp.vdot conjugates x; XLA's dot, at full precision, as optax sums.
        total = total + jnp.vdot(x, y, precision=jax.lax.Precision.HIGHEST)
    return total


def all_finite(tree: Any) -> jax.Array:
    """True (a bool scalar) if every element of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.asarray(leaves)) if leaves else jnp.ones((), bool)


def ravel(tree: Any) -> tuple[jax.Array, Any]:
    """Flatten a pytree into one vector in the trees' accumulation dtype.

    That dtype is `scalar_dtype(tree)`, complex if a leaf is complex. Unlike
    `jax.flatten_util.ravel_pytree`, mixed leaf dtypes (float32 with
    bfloat16, say) are widened explicitly instead of promoted implicitly, and
    `unravel` casts each piece back to its leaf's own dtype.

    Returns:
      `(vector, unravel)`.
    """
    dtype = tree_dtype(tree)
    flat, unravel_wide = ravel_pytree(
        jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)
    )

    def unravel(vector: jax.Array) -> Any:
        return cast_like(unravel_wide(vector), tree)

    return flat, unravel
