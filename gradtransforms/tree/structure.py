"""Tree structure: comparing two trees, and finding a state type inside another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from jax.typing import ArrayLike

__all__ = [
    "assert_same_structure",
    "find_states",
    "first_difference",
    "is_none",
    "safe_increment",
    "where",
]


# optax annotates the result `ArrayLike`; it is always a `jax.Array` (a `jnp.where`).
safe_increment: Callable[[ArrayLike], jax.Array] = optax.safe_int32_increment  # pyright: ignore[reportAssignmentType]
"""Add one to an int32 counter, saturating at the largest int32 (optax's)."""

where = optax.tree.where
"""`where(condition, tree_x, tree_y)`: `tree_x` where the scalar `condition`
holds, else `tree_y`, leaf by leaf (`optax.tree.where`)."""


def is_none(x: Any) -> bool:
    return x is None


def first_difference(a: Any, b: Any) -> str | None:
    """Return the key path of the first place two pytrees differ, else None."""
    if jax.tree.structure(a) == jax.tree.structure(b):
        return None
    paths_a = [p for p, _ in jax.tree_util.tree_leaves_with_path(a, is_leaf=is_none)]
    paths_b = [p for p, _ in jax.tree_util.tree_leaves_with_path(b, is_leaf=is_none)]
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
            f"{a_name}: {jax.tree.structure(a, is_leaf=is_none)}; "
            f"{b_name}: {jax.tree.structure(b, is_leaf=is_none)}"
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
