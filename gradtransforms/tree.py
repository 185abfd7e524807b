"""Tree maths for gradient transformations, written once (`gradtransforms.tree`).

Like `optax.tree`, every helper maps over pytrees with `jax.tree.map`, so
`None` leaves (and optax's `MaskedNode`) are empty subtrees that pass through
untouched; where a name is also in `optax.tree` it means the same thing.
What this module adds is precision: statistics and scalar factors are
computed in each leaf's *accumulation dtype* (float32 for bfloat16, float16
and float32 leaves, float64 for float64) and rounded once, back to the
leaf's own dtype. `map_widened` is that idiom as one function, and every
transformation of the library is written with it: nothing is silently
promoted, and a float64 parameter is never pushed through a float32 step.

Examples:
  >>> import jax.numpy as jnp
  >>> from gradtransforms import tree
  >>> m = tree.update_moment({"w": jnp.ones(2, jnp.bfloat16)},
  ...                        {"w": jnp.zeros(2, jnp.bfloat16)}, 0.999, 1)
  >>> m["w"].dtype  # 1 - 0.999 is computed in float32, stored in bfloat16
  dtype(bfloat16)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

__all__ = [
    "accumulation_dtype",
    "add_scale",
    "all_finite",
    "assert_same_structure",
    "bias_correction",
    "cast_like",
    "complement",
    "find_states",
    "first_difference",
    "full_like",
    "global_norm",
    "map_widened",
    "one_minus_power",
    "per_dtype",
    "ravel",
    "safe_increment",
    "scalar_dtype",
    "scale",
    "update_moment",
    "vdot",
    "where",
    "zeros_like",
]

# optax annotates the result `ArrayLike`; it is always a `jax.Array` (a `jnp.where`).
safe_increment: Callable[[ArrayLike], jax.Array] = optax.safe_int32_increment  # pyright: ignore[reportAssignmentType]
"""Add one to an int32 counter, saturating at the largest int32 (optax's)."""

where = optax.tree.where
"""`where(condition, tree_x, tree_y)`: `tree_x` where the scalar `condition`
holds, else `tree_y`, leaf by leaf (`optax.tree.where`)."""


# --------------------------------------------------------------------------
# Structure


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


def find_states(state: Any, kind: type | tuple[type, ...]) -> list[Any]:
    """Every node of type `kind` inside an optimizer state, in flattening order.

    Looks through `chain`, `masked`, `partition`, `inject_hyperparams` and any
    other nesting, e.g. for the `AverageState` of an averaging link.

    Args:
      state: an optimizer state (any pytree).
      kind: a state class, or a tuple of them.

    Returns:
      The matching nodes (an empty list when there are none).
    """

    def is_kind(x: Any) -> bool:
        return isinstance(x, kind)

    return [x for x in jax.tree.leaves(state, is_leaf=is_kind) if is_kind(x)]


# --------------------------------------------------------------------------
# Dtypes and widening


def accumulation_dtype(dtype: Any) -> jnp.dtype:
    """The dtype in which statistics of a leaf of `dtype` are accumulated.

    float64 stays float64; every narrower float (bfloat16, float16, float32)
    accumulates in float32.
    """
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float64) if dtype.itemsize >= 8 else jnp.dtype(jnp.float32)


def _cast(x: jax.Array, dtype: Any) -> jax.Array:
    """`x` in `dtype`; `x` itself when it already has it (nothing traced)."""
    return x if x.dtype == dtype else x.astype(dtype)


def _dtype(x: Any) -> jnp.dtype:
    return jnp.asarray(x).dtype


def map_widened(
    fn: Callable[..., jax.Array], tree: Any, *rest: Any, out_like: Any = None
) -> Any:
    """Apply `fn` leaf by leaf in the accumulation dtype; round each result once.

    $$u_\\ell = \\operatorname{round}_{d_\\ell}\\big(f(\\bar x_\\ell, \\bar y_\\ell,
    \\dots)\\big), \\qquad \\bar x_\\ell = x_\\ell \\text{ widened}$$

    The leaves of `tree` and of each tree in `rest` are cast to
    `accumulation_dtype` of the leaf of `tree` (float32 for bfloat16, float16
    and float32; float64 for float64), `fn` computes there, and its result
    is cast to the dtype $d_\\ell$ of the matching leaf of `out_like`
    (default: `tree`). Inside `fn`, `x.dtype` is the accumulation dtype, so
    scalar factors can be taken from a `per_dtype` cache.

    Args:
      fn: `fn(x, *ys) -> array`, on widened leaves.
      tree: the pytree whose leaves set the accumulation dtype.
      *rest: pytrees with the structure of `tree` (extra leaves of `fn`).
      out_like: a pytree like `tree` whose leaves' dtypes the results take.

    Returns:
      A pytree like `tree`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtransforms import tree
      >>> g = {"w": jnp.ones(2, jnp.bfloat16)}
      >>> tree.map_widened(lambda x: x * 1e-3 + 1.0, g)["w"].dtype
      dtype(bfloat16)
    """
    like = tree if out_like is None else out_like

    def one(x: Any, out: Any, *ys: Any) -> jax.Array:
        x = jnp.asarray(x)
        dtype = accumulation_dtype(x.dtype)
        widened = [_cast(jnp.asarray(y), dtype) for y in ys]
        return _cast(fn(_cast(x, dtype), *widened), _dtype(out))

    return jax.tree.map(one, tree, like, *rest)


def scalar_dtype(tree: Any) -> jnp.dtype:
    """The accumulation dtype of the widest leaf (float32 for an empty tree).

    The dtype in which scalars computed from the whole tree (inner products,
    step sizes, objective values) are kept: float64 if any leaf is float64,
    float32 otherwise.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.dtype(jnp.float32)
    return max(
        (accumulation_dtype(_dtype(x)) for x in leaves), key=lambda d: d.itemsize
    )


def cast_like(tree: Any, other: Any) -> Any:
    """Cast every leaf of `tree` to the dtype of the matching leaf of `other`."""
    return jax.tree.map(lambda x, y: _cast(jnp.asarray(x), _dtype(y)), tree, other)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like each leaf, in `dtype` or the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype or _dtype(x)), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """`fill_value` broadcast to each leaf's shape, in `dtype` or the leaf's dtype."""
    return jax.tree.map(
        lambda x: jnp.full_like(x, fill_value, dtype=dtype or _dtype(x)), tree
    )


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


# --------------------------------------------------------------------------
# Scalar factors


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


# --------------------------------------------------------------------------
# Moments and linear algebra on trees


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """Exponential moving average of `updates**order`, stored in each moment's dtype.

    $$m \\leftarrow \\beta m + (1 - \\beta)\\, g^{k}$$

    Computed in the accumulation dtype and rounded once to the moment's dtype
    (`optax.tree.update_moment` computes in the moment's dtype: in bfloat16,
    $\\beta = 0.999$ would round to 1 and $1 - \\beta$ to 0).
    """
    factors = per_dtype(lambda dt: (jnp.asarray(decay, dt), complement(decay, dt)))

    def one(m: jax.Array, g: jax.Array) -> jax.Array:
        d, one_minus_d = factors(m.dtype)
        return d * m + one_minus_d * (g**order if order != 1 else g)

    return map_widened(one, moments, updates)


def bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
    """Divide each moment by $1 - \\beta^t$ (Adam's bias correction)."""
    correction = per_dtype(lambda dt: one_minus_power(decay, count, dt))
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

    0 for an empty tree.
    """
    dtype = scalar_dtype(tree)
    total = jnp.zeros((), dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.square(jnp.asarray(x).astype(dtype)))
    return jnp.sqrt(total)


def vdot(tree_x: Any, tree_y: Any) -> jax.Array:
    """$\\sum_\\text{leaves} \\langle x, y\\rangle$, in `scalar_dtype(tree_x)`.

    Each leaf pair is cast to that dtype explicitly before it is multiplied
    and summed (no implicit promotion; float32 trees stay float32, float64
    trees float64). 0 for empty trees.
    """
    dtype = scalar_dtype(tree_x)
    total = jnp.zeros((), dtype)
    for x, y in zip(jax.tree.leaves(tree_x), jax.tree.leaves(tree_y), strict=True):
        x = jnp.asarray(x).astype(dtype)
        y = jnp.asarray(y).astype(dtype)
        total = total + jnp.sum(x * y)
    return total


def all_finite(tree: Any) -> jax.Array:
    """True (a bool scalar) if every element of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.asarray(leaves)) if leaves else jnp.ones((), bool)


def ravel(tree: Any) -> tuple[jax.Array, Any]:
    """Flatten a pytree into one vector in `scalar_dtype(tree)`.

    Unlike `jax.flatten_util.ravel_pytree`, mixed leaf dtypes (float32 with
    bfloat16, say) are widened explicitly instead of promoted implicitly, and
    `unravel` casts each piece back to its leaf's own dtype.

    Returns:
      `(vector, unravel)`.
    """
    dtype = scalar_dtype(tree)
    flat, unravel_wide = ravel_pytree(
        jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)
    )

    def unravel(vector: jax.Array) -> Any:
        return cast_like(unravel_wide(vector), tree)

    return flat, unravel
