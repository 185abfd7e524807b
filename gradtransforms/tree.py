"""Tree maths shared by every transformation, written once.

All helpers map over pytrees with `jax.tree.map`, so `None` leaves (and
optax's `MaskedNode`) are empty subtrees that pass through untouched. Scalars
that meet a leaf (decays, learning rates, clipping factors) are cast to that
leaf's dtype first: nothing is silently promoted, and a float64 parameter is
never pushed through a float32 step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

__all__ = [
    "accumulation_dtype",
    "assert_same_structure",
    "bias_correction",
    "cast",
    "cast_like",
    "complement",
    "first_difference",
    "full_like",
    "global_norm",
    "one_minus_power",
    "per_dtype",
    "ravel",
    "safe_increment",
    "scale_tree",
    "tree_accumulation_dtype",
    "tree_add_scaled",
    "tree_cast",
    "tree_vdot",
    "update_moment",
    "zeros_like",
]

safe_increment = optax.safe_int32_increment
"""Add one to an int32 counter, saturating at the largest int32."""


def _is_none(x: Any) -> bool:
    return x is None


def first_difference(a: Any, b: Any) -> str | None:
    """Return the key path of the first place two pytrees differ, else None."""
    if jax.tree.structure(a) == jax.tree.structure(b):
        return None
    paths_a = [p for p, _ in jax.tree_util.tree_leaves_with_path(a, is_leaf=_is_none)]
    paths_b = [p for p, _ in jax.tree_util.tree_leaves_with_path(b, is_leaf=_is_none)]
    for pa, pb in zip(paths_a, paths_b, strict=False):
        if pa != pb:
            return jax.tree_util.keystr(min(pa, pb, key=len))
        leaf_a = _leaf_at(a, pa)
        leaf_b = _leaf_at(b, pb)
        if (leaf_a is None) != (leaf_b is None):
            return jax.tree_util.keystr(pa)
    if len(paths_a) != len(paths_b):
        longer = paths_a if len(paths_a) > len(paths_b) else paths_b
        return jax.tree_util.keystr(longer[min(len(paths_a), len(paths_b))])
    return "<root> (container types differ)"


def _leaf_at(tree: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            tree = tree[key.key]
        elif isinstance(key, jax.tree_util.SequenceKey):
            tree = tree[key.idx]
        elif isinstance(key, jax.tree_util.GetAttrKey):
            tree = getattr(tree, key.name)
        else:  # a custom node: give up on leaf comparison, paths already matched
            return object()
    return tree


def assert_same_structure(a: Any, b: Any, a_name: str, b_name: str) -> None:
    """Raise `ValueError` naming the first path where `a` and `b` differ."""
    where = first_difference(a, b)
    if where is not None:
        raise ValueError(
            f"{a_name} and {b_name} have different tree structures; "
            f"first difference at {where or '<root>'}. "
            f"{a_name}: {jax.tree.structure(a, is_leaf=_is_none)}; "
            f"{b_name}: {jax.tree.structure(b, is_leaf=_is_none)}"
        )


def accumulation_dtype(dtype: Any) -> jnp.dtype:
    """The dtype in which statistics of a leaf of `dtype` are accumulated.

    float64 stays float64; every narrower float (bfloat16, float16, float32)
    accumulates in float32.
    """
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float64) if dtype.itemsize >= 8 else jnp.dtype(jnp.float32)


def cast(x: jax.Array, dtype: Any) -> jax.Array:
    """`x` in `dtype`; `x` itself when it already has it (nothing traced)."""
    return x if x.dtype == dtype else x.astype(dtype)


def cast_like(x: Any, leaf: jax.Array) -> jax.Array:
    """`x` (a Python number or scalar array) as an array of `leaf`'s dtype."""
    return jnp.asarray(x, dtype=jnp.asarray(leaf).dtype)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like each leaf, in `dtype` or the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype or _dtype(x)), tree)


def full_like(tree: Any, value: Any, dtype: Any = None) -> Any:
    """`value` broadcast to each leaf's shape, in `dtype` or the leaf's dtype."""
    return jax.tree.map(
        lambda x: jnp.full_like(x, value, dtype=dtype or _dtype(x)), tree
    )


def tree_cast(tree: Any, like: Any) -> Any:
    """Cast every leaf of `tree` to the dtype of the matching leaf of `like`."""
    return jax.tree.map(lambda x, y: cast(jnp.asarray(x), _dtype(y)), tree, like)


def _dtype(x: Any) -> jnp.dtype:
    return jnp.asarray(x).dtype


def complement(decay: Any, dtype: Any) -> jax.Array:
    """$1 - \\beta$ in `dtype`, subtracted *before* rounding to `dtype`.

    For a Python number the subtraction is exact in double precision; in
    float32, `1 - float32(0.999)` would be off by 1.3e-5 relative.
    """
    return jnp.asarray(1 - decay, dtype)


def per_dtype(fn: Callable[[jnp.dtype], Any]) -> Callable[[Any], Any]:
    """Memoise `fn(dtype)`, so a scalar factor is traced once per dtype.

    Transformations compute their scalar factors (bias corrections, $1 -
    \\beta$, a scheduled step size) through this inside `update`: with
    thousands of leaves, computing them once per leaf would multiply the traced
    program, and with it trace and compile time, for the same result.
    """
    cache: dict[jnp.dtype, Any] = {}

    def get(dtype: Any) -> Any:
        dtype = jnp.dtype(dtype)
        if dtype not in cache:
            cache[dtype] = fn(dtype)
        return cache[dtype]

    return get


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """Exponential moving average of `updates**order`, stored in each moment's dtype.

    $$m \\leftarrow \\beta m + (1 - \\beta)\\, g^{k}$$

    Computed in float32 or wider (`accumulation_dtype`) and rounded once to the
    moment's dtype: in bfloat16, $\\beta = 0.999$ would round to 1 and
    $1 - \\beta$ to 0.
    """
    factors = per_dtype(lambda dt: (jnp.asarray(decay, dt), complement(decay, dt)))

    def one(g, m):
        dtype = accumulation_dtype(m.dtype)
        d, one_minus_d = factors(dtype)
        g = cast(jnp.asarray(g), dtype)
        new = d * cast(m, dtype) + one_minus_d * (g**order if order != 1 else g)
        return cast(new, m.dtype)

    return jax.tree.map(one, updates, moments)


def one_minus_power(decay: Any, count: jax.Array, dtype: Any) -> jax.Array:
    """$1 - \\beta^t$ in `dtype`, accurate when $\\beta^t$ is close to 1.

    Computed as $-\\operatorname{expm1}(t \\log(1 - (1 - \\beta)))$ with
    $1 - \\beta$ from `complement`: in float32 the literal $1 - \\beta^t$ at
    $\\beta = 0.999$, $t = 1$ is off by 1.3e-5 relative, which Adam's first
    step would inherit.
    """
    t = jnp.asarray(count).astype(dtype)
    return -jnp.expm1(t * jnp.log1p(-complement(decay, dtype)))


def bias_correction(moments: Any, decay: Any, count: jax.Array) -> Any:
    """Divide each moment by $1 - \\beta^t$ (Adam's bias correction)."""

    correction = per_dtype(lambda dt: one_minus_power(decay, count, dt))

    def one(m):
        dtype = accumulation_dtype(m.dtype)
        return cast(cast(m, dtype) / correction(dtype), m.dtype)

    return jax.tree.map(one, moments)


def scale_tree(scalar: Any, tree: Any) -> Any:
    """Multiply every leaf by `scalar`, in float32 or wider, keeping leaf dtypes."""

    factor = per_dtype(lambda dt: jnp.asarray(scalar, dt))

    def one(x):
        x = jnp.asarray(x)
        dtype = accumulation_dtype(x.dtype)
        return cast(factor(dtype) * cast(x, dtype), x.dtype)

    return jax.tree.map(one, tree)


def global_norm(tree: Any) -> jax.Array:
    """$\\sqrt{\\sum_\\text{leaves} \\|x\\|^2}$, accumulated in float32 (float64
    if any leaf is float64); 0 for an empty tree."""
    dtype = tree_accumulation_dtype(tree)
    total = jnp.zeros((), dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.square(jnp.asarray(x).astype(dtype)))
    return jnp.sqrt(total)


def _itemsize(dtype: jnp.dtype) -> int:
    return jnp.dtype(dtype).itemsize


def tree_accumulation_dtype(tree: Any) -> jnp.dtype:
    """The accumulation dtype of the widest leaf (float32 for an empty tree).

    The dtype in which scalars computed from the whole tree (inner products,
    step sizes, objective values) are kept: float64 if any leaf is float64,
    float32 otherwise.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.dtype(jnp.float32)
    return max((accumulation_dtype(_dtype(x)) for x in leaves), key=_itemsize)


def tree_vdot(a: Any, b: Any) -> jax.Array:
    """$\\sum_\\text{leaves} \\langle a, b\\rangle$, in `tree_accumulation_dtype(a)`.

    Each leaf pair is cast to that dtype explicitly before it is multiplied
    and summed (no implicit promotion; float32 trees stay float32, float64
    trees float64). 0 for empty trees.
    """
    dtype = tree_accumulation_dtype(a)
    total = jnp.zeros((), dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x = jnp.asarray(x).astype(dtype)
        y = jnp.asarray(y).astype(dtype)
        total = total + jnp.sum(x * y)
    return total


def tree_add_scaled(a: Any, scalar: Any, b: Any) -> Any:
    """$a + s\\,b$ leaf by leaf, computed in float32 or wider, in `a`'s dtypes."""

    def one(x, y):
        x = jnp.asarray(x)
        dtype = accumulation_dtype(x.dtype)
        s = jnp.asarray(scalar).astype(dtype)
        return (x.astype(dtype) + s * jnp.asarray(y).astype(dtype)).astype(x.dtype)

    return jax.tree.map(one, a, b)


def ravel(tree: Any) -> tuple[jax.Array, Any]:
    """Flatten a pytree into one vector in `tree_accumulation_dtype(tree)`.

    Unlike `jax.flatten_util.ravel_pytree`, mixed leaf dtypes (float32 with
    bfloat16, say) are widened explicitly instead of promoted implicitly, and
    `unravel` casts each piece back to its leaf's own dtype.

    Returns:
      `(vector, unravel)`.
    """
    dtype = tree_accumulation_dtype(tree)
    flat, unravel_wide = ravel_pytree(
        jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)
    )

    def unravel(vector: jax.Array) -> Any:
        return tree_cast(unravel_wide(vector), tree)

    return flat, unravel


def finite_tree(tree: Any) -> jax.Array:
    """True (a bool scalar) if every element of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.asarray(leaves)) if leaves else jnp.ones((), bool)


def int32(x: Any) -> jax.Array:
    """`x` as an int32 scalar array (int64 never leaks in under x64)."""
    return jnp.asarray(x, jnp.int32)
