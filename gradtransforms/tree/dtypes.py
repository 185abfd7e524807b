"""Dtypes of leaves: the accumulation dtype, and maps that widen to it and back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtransforms.tree.structure import assert_same_shapes, is_none

__all__ = [
    "accumulation_dtype",
    "accumulator_like",
    "astype",
    "cast_like",
    "checked_dtype",
    "complex_dtype",
    "full_like",
    "leaf_dtype",
    "map_widened",
    "per_dtype",
    "real_dtype",
    "scalar_dtype",
    "tree_dtype",
    "with_path",
    "zeros_like",
]


def accumulation_dtype(dtype: Any) -> jnp.dtype:
    """The dtype in which statistics of a leaf of `dtype` are accumulated.

    float64 stays float64, and every narrower float (bfloat16, float16,
    float32) accumulates in float32; complex64 and complex128 stay as they
    are (their real and imaginary parts are float32 and float64).

    Raises:
      TypeError: for an integer or bool dtype: gradtransforms updates
        floating-point and complex leaves only.
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"gradtransforms updates floating-point and complex leaves only; got "
            f"a leaf of dtype {dtype.name}. Keep integer and bool leaves out of "
            "the optimized tree, or mask them: gt.masked(tx, mask) or "
            "gt.partition({..., 'frozen': gt.set_to_zero()}, labels)."
        )
    return jnp.dtype(jnp.float64) if dtype.itemsize >= 8 else jnp.dtype(jnp.float32)


def real_dtype(dtype: Any) -> jnp.dtype:
    """The real dtype of a real or complex dtype (float32 for complex64)."""
    return jnp.finfo(jnp.dtype(dtype)).dtype


def astype(x: jax.Array, dtype: Any) -> jax.Array:
    """`x` in `dtype`; `x` itself when it already has it (nothing traced)."""
    return x if x.dtype == dtype else x.astype(dtype)


def leaf_dtype(x: Any) -> jnp.dtype:
    """The dtype of an array, a Python number or a `jax.ShapeDtypeStruct`.

    A Python int or float is a number, not an integer array: its dtype is
    JAX's default float (float32, or float64 under x64); a Python complex,
    the default complex. A Python bool stays bool. A NumPy float64 leaf has
    the dtype JAX gives it, float32 unless x64 is enabled.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return jnp.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if isinstance(x, bool):
        return jnp.dtype(bool)
    if isinstance(x, complex):
        return jnp.dtype(jnp.result_type(complex))
    if isinstance(x, int | float):
        return jnp.dtype(jnp.result_type(float))
    return jnp.asarray(x).dtype


def with_path(path: tuple, error: TypeError) -> TypeError:
    where = jax.tree_util.keystr(path) or "<root>"
    return TypeError(f"leaf {where}: {error}")


def map_widened(
    fn: Callable[..., jax.Array | None], tree: Any, *rest: Any, out_like: Any = None
) -> Any:
    """Apply `fn` leaf by leaf in the accumulation dtype; round each result once.

    $$u_\\ell = \\operatorname{round}_{d_\\ell}\\big(f(\\bar x_\\ell, \\bar y_\\ell,
    \\dots)\\big), \\qquad \\bar x_\\ell = x_\\ell \\text{ widened}$$

    The leaves of `tree` and of each tree in `rest` are cast to
    `accumulation_dtype` of the leaf of `tree` (float32 for bfloat16, float16
    and float32; float64 for float64; a complex dtype stays), `fn` computes
    there, and its result is cast to the dtype $d_\\ell$ of the matching leaf
    of `out_like` (default: `tree`). Inside `fn`, `x.dtype` is the
    accumulation dtype, so scalar factors can be taken from a `per_dtype`
    cache. A `None` leaf of `tree` stays `None` (whatever the other trees
    hold there), as in optax; a `None` where `rest` has a leaf reaches `fn`
    as `None`, and `fn` may return `None`.

    Args:
      fn: `fn(x, *ys) -> array`, on widened leaves.
      tree: the pytree whose leaves set the accumulation dtype.
      *rest: pytrees with the structure of `tree` (extra leaves of `fn`).
      out_like: a pytree like `tree` whose leaves' dtypes the results take.

    Returns:
      A pytree like `tree`.

    Raises:
      TypeError: for an integer or bool leaf, naming its path.
      ValueError: if a tree of `rest` differs from `tree` in structure or in
        a leaf's shape, naming the first differing path and both leaves.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtransforms import tree
      >>> g = {"w": jnp.ones(2, jnp.bfloat16)}
      >>> tree.map_widened(lambda x: x * 1e-3 + 1.0, g)["w"].dtype
      dtype(bfloat16)
    """
    like = tree if out_like is None else out_like
    for other in rest:
        assert_same_shapes(tree, other)

    def one(path: tuple, x: Any, out: Any, *ys: Any) -> jax.Array | None:
        if x is None:
            return None
        x = jnp.asarray(x, leaf_dtype(x))
        try:
            dtype = accumulation_dtype(x.dtype)
        except TypeError as error:
            raise with_path(path, error) from None
        widened = [None if y is None else astype(jnp.asarray(y), dtype) for y in ys]
        result = fn(astype(x, dtype), *widened)
        return None if result is None else astype(result, leaf_dtype(out))

    return jax.tree_util.tree_map_with_path(one, tree, like, *rest, is_leaf=is_none)


def checked_dtype(path: tuple, x: Any) -> jnp.dtype:
    """`x`'s dtype, after checking that gradtransforms can update such a leaf."""
    dtype = leaf_dtype(x)
    try:
        accumulation_dtype(dtype)
    except TypeError as error:
        raise with_path(path, error) from None
    return dtype


def scalar_dtype(tree: Any) -> jnp.dtype:
    """The real accumulation dtype of the widest leaf (float32 for an empty tree).

    The dtype in which real scalars computed from the whole tree (norms, step
    sizes, objective values) are kept: float64 if any leaf is float64 or
    complex128, float32 otherwise.
    """
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    if not leaves:
        return jnp.dtype(jnp.float32)
    return max(
        (real_dtype(accumulation_dtype(checked_dtype(p, x))) for p, x in leaves),
        key=lambda d: d.itemsize,
    )


def complex_dtype(dtype: Any) -> jnp.dtype:
    """The complex dtype whose parts are `dtype` (complex64 for float32)."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    return jnp.dtype(jnp.complex128 if dtype.itemsize >= 8 else jnp.complex64)


def tree_dtype(tree: Any) -> jnp.dtype:
    """`scalar_dtype`, made complex when any leaf is complex."""
    dtype = scalar_dtype(tree)
    if any(jnp.iscomplexobj(x) for x in jax.tree.leaves(tree)):
        return complex_dtype(dtype)
    return dtype


def cast_like(tree: Any, other: Any) -> Any:
    """Cast every leaf of `tree` to the dtype of the matching leaf of `other`."""
    return jax.tree.map(lambda x, y: astype(jnp.asarray(x), leaf_dtype(y)), tree, other)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like each leaf, in `dtype` or the leaf's own dtype.

    Leaves may be arrays, Python numbers or `jax.ShapeDtypeStruct`s (so that
    `jax.eval_shape(tx.init, abstract_params)` works); integer and bool leaves
    raise a `TypeError` naming their path, as in `map_widened`.
    """
    return full_like(tree, 0, dtype)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """`fill_value` broadcast to each leaf's shape, in `dtype` or the leaf's dtype."""

    def one(path: tuple, x: Any) -> jax.Array:
        own = checked_dtype(path, x)
        return jnp.full_like(x, fill_value, dtype=dtype or own)

    return jax.tree_util.tree_map_with_path(one, tree)


def accumulator_like(tree: Any, fill_value: Any = 0, dtype: Any = None) -> Any:
    """`fill_value` shaped like each leaf, in `dtype` or its accumulation dtype.

    The state in which a statistic of the leaves is kept (Adam's moments,
    AdaGrad's sum of squares): by default each leaf's `accumulation_dtype`,
    float32 for bfloat16, float16 and float32 leaves, float64 for float64,
    the leaf's own for complex; `dtype`, when given, for every leaf. In
    float16, $|g|^2$ overflows to infinity for $|g| > 256$; in float32, only
    for $|g| > 1.8 \\times 10^{19}$. Leaves may be arrays, Python numbers or
    `jax.ShapeDtypeStruct`s; integer and bool leaves raise a `TypeError`
    naming their path, as in `map_widened`.
    """

    def one(path: tuple, x: Any) -> jax.Array:
        own = accumulation_dtype(checked_dtype(path, x))
        return jnp.full_like(x, fill_value, dtype=own if dtype is None else dtype)

    return jax.tree_util.tree_map_with_path(one, tree)


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
