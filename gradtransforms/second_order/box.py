"""Box constraints $\\ell \\le \\theta \\le u$, leaf by leaf, for bounded solvers.

A bounded solver (`lbfgs_b`) keeps a `Box` in its state. `minimize` finds it
there by its type (as it finds `Evaluation` records) and then starts from the
projection of `init_params` onto the box and measures convergence by the
projected gradient $P(\\theta - g) - \\theta$, whose norm is zero exactly at a
first-order (KKT) point of the bounded problem.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms import tree as tu
from gradtransforms.validation import concrete_values

__all__ = ["Box", "find_box", "make_box", "project", "projected_gradient"]


class Box(NamedTuple):
    """Bounds like the parameters: `lower` and `upper`, $\\pm\\infty$ where free."""

    lower: Any
    upper: Any


def _is_number(bound: Any) -> bool:
    """A scalar bound: a Python or NumPy number, or a 0-d array (maybe traced)."""
    return jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)) and (
        np.ndim(bound) == 0
    )


def _bound_like(name: str, bound: Any, params: Any, fill: float) -> Any:
    """`bound` as a tree like `params` (None: `fill`; a number: every element)."""
    if bound is None:
        return tu.full_like(params, fill)
    if _is_number(bound):
        dtype = getattr(bound, "dtype", None)
        real = isinstance(bound, (int, float, np.integer, np.floating)) or (
            dtype is not None and jnp.issubdtype(dtype, jnp.number)
        )
        if isinstance(bound, bool) or not real or jnp.iscomplexobj(bound):
            raise TypeError(f"{name} must be a real number or a tree like the params.")
        return tu.full_like(params, bound)
    if jax.tree.structure(bound) != jax.tree.structure(params):
        raise ValueError(
            f"{name} must be None, a number, or a tree with the params' structure "
            f"{jax.tree.structure(params)}; got {jax.tree.structure(bound)}."
        )

    def leaf(b: Any, p: Any) -> jax.Array:
        b = jnp.asarray(b)
        if jnp.iscomplexobj(b) or not jnp.issubdtype(b.dtype, jnp.number):
            raise TypeError(f"{name} must be real; got dtype {b.dtype}.")
        try:
            return jnp.broadcast_to(b, jnp.shape(p)).astype(p.dtype)
        except ValueError:
            raise ValueError(
                f"{name}: a leaf of shape {b.shape} does not broadcast to the "
                f"parameter's shape {jnp.shape(p)}."
            ) from None

    return jax.tree.map(leaf, bound, params)


def _concrete_leaves(bound: Any, params: Any, fill: float) -> list[Any]:
    """The bound's leaves as float64 NumPy arrays (None where traced).

    Taken from the arguments themselves, so that the checks of `make_box`
    also run when it is traced (`init` under `jit` or `vmap`).
    """
    shapes = [jnp.shape(p) for p in jax.tree.leaves(params)]
    if bound is None or _is_number(bound):
        raws = [fill if bound is None else bound] * len(shapes)
    else:
        raws = jax.tree.leaves(bound)

    def concrete(raw: Any, shape: tuple) -> Any:
        values = concrete_values(raw)
        return None if values is None else np.broadcast_to(values, shape)

    return [concrete(r, s) for r, s in zip(raws, shapes, strict=True)]


def make_box(params: Any, lower: Any = None, upper: Any = None) -> Box:
    """The `Box` for `params`: bounds broadcast leaf by leaf, checked.

    `lower` and `upper` are each None (unbounded), a real number or 0-d
    array (every element), or a tree with the params' structure whose leaves
    broadcast to the params' leaves. Raises `TypeError` for a bound that is
    not real, `ValueError` for a wrong structure or shape, a NaN bound, or a
    lower bound above its upper bound (checked on the bounds' values, also
    when `params` are traced; bounds that are themselves traced are not
    checked).
    """
    box = Box(
        _bound_like("lower", lower, params, -jnp.inf),
        _bound_like("upper", upper, params, jnp.inf),
    )
    pairs = zip(
        _concrete_leaves(lower, params, -np.inf),
        _concrete_leaves(upper, params, np.inf),
        strict=True,
    )
    for lo, up in pairs:
        if lo is not None and np.any(np.isnan(lo)):
            raise ValueError("lower must not contain NaN.")
        if up is not None and np.any(np.isnan(up)):
            raise ValueError("upper must not contain NaN.")
        if lo is not None and up is not None and np.any(lo > up):
            raise ValueError("lower must be <= upper, element by element.")
    return box


def project(params: Any, box: Box) -> Any:
    """$P(\\theta) = \\min(\\max(\\theta, \\ell), u)$, leaf by leaf."""
    return jax.tree.map(
        lambda p, lo, up: jnp.clip(p, lo, up).astype(p.dtype),
        params,
        box.lower,
        box.upper,
    )


def projected_gradient(params: Any, grad: Any, box: Box) -> Any:
    """$P(\\theta - g) - \\theta$: zero exactly at a KKT point of the box problem."""
    stepped = tu.add_scale(params, -1, tu.cast_like(grad, params))
    return tu.add_scale(project(stepped, box), -1, params)


def find_box(state: Any) -> Box | None:
    """The `Box` an optimizer state carries, or None (raises if it has several)."""
    boxes = tu.find_states(state, Box)
    if len(boxes) > 1:
        raise ValueError("the optimizer's state holds more than one Box.")
    return boxes[0] if boxes else None
