"""Tree structure: comparing two trees, and finding a state type inside another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
from jax.typing import ArrayLike

__all__ = [
    "assert_same_shapes",
    "assert_same_structure",
    "assert_state_matches",
    "assert_updates_match",
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
        if pa != pb:  # name a path that one of the trees lacks, `a`'s first
            return jax.tree_util.keystr(pa if pa not in paths_b else pb)
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


_STATE_HINT = (
    " The gradients, the parameters and the optimizer state must have the same "
    "leaves: was the state built by tx.init for other parameters?"
)
"""What a shape mismatch between updates and a state most often means."""


def _describe(x: Any) -> str:
    """`(3,) float32`: a leaf's shape and dtype, for error messages."""
    dtype = getattr(x, "dtype", None)
    return f"{_shape(x)} {dtype if dtype is not None else type(x).__name__}"


def _shape(x: Any) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)  # arrays, tracers, ShapeDtypeStruct
    return tuple(shape) if shape is not None else np.shape(x)


def _is_complex(x: Any) -> bool:
    return np.issubdtype(np.dtype(getattr(x, "dtype", type(x))), np.complexfloating)


def _paired_leaves(a: Any, b: Any) -> list[tuple[tuple, Any, Any]]:
    """`(path, leaf of a, leaf of b)` for two trees of the same structure."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(a, is_leaf=is_none)
    leaves_b = treedef.flatten_up_to(b)
    return [(path, x, y) for (path, x), y in zip(with_path, leaves_b, strict=True)]


def _matched(tree: Any, other: Any, tree_name: str, other_name: str) -> list:
    """The leaves of `tree` paired with `other`'s; `tree` is the prefix.

    A `None` leaf of `tree` matches whatever `other` holds there (optax's rule
    for `None` parameters); anything else must have `tree`'s structure.
    """
    try:
        return _paired_leaves(tree, other)
    except ValueError:
        assert_same_structure(other, tree, other_name, tree_name)
        raise


def assert_same_shapes(
    tree: Any,
    other: Any,
    names: tuple[str, str] = ("one tree", "the other"),
    hint: str = "",
) -> None:
    """Raise `ValueError` at the first path where `other` does not fit `tree`.

    `other` must have the structure of `tree` (where `tree` has a `None`,
    `other` may hold anything), and each pair of array leaves the same shape;
    dtypes may differ (moments kept in float32 for bfloat16 parameters, say),
    and a `None` in `other` is allowed. The message names the path and both
    leaves' shapes and dtypes (`names` says what the two trees are), then
    `hint`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtransforms import tree
      >>> tree.assert_same_shapes({"w": jnp.ones(3)}, {"w": jnp.ones(4)}, ("p", "g"))
      Traceback (most recent call last):
      ...
      ValueError: p and g differ at ['w']: (3,) float32 in p, (4,) float32 in g.
    """
    tree_name, other_name = names
    for path, x, y in _matched(tree, other, tree_name, other_name):
        if x is not None and y is not None and _shape(x) != _shape(y):
            where = jax.tree_util.keystr(path) or "<root>"
            raise ValueError(
                f"{tree_name} and {other_name} differ at {where}: "
                f"{_describe(x)} in {tree_name}, {_describe(y)} in {other_name}."
                f"{hint}"
            )


def assert_state_matches(state_tree: Any, tree: Any, name: str = "the updates") -> None:
    """`assert_same_shapes` for a tree of the state kept like the parameters.

    For a moment, a trace or an average, against the updates (or the
    parameters, `name="params"`): the message names the optimizer state and
    `name`, and asks whether the state was built for other parameters.
    """
    assert_same_shapes(state_tree, tree, ("the optimizer state", name), _STATE_HINT)


def assert_updates_match(updates: Any, params: Any) -> None:
    """Raise `ValueError` unless `updates` can update `params` leaf for leaf.

    The structure of `params` (a `None` parameter takes any update, optax's
    rule), an update for every other parameter, the same shape in each leaf
    (no broadcasting), and no complex update for a real parameter (its
    imaginary part would be dropped). The message names the first differing
    path and both leaves.
    """
    for path, p, u in _matched(params, updates, "params", "updates"):
        if p is None:
            continue
        where = jax.tree_util.keystr(path) or "<root>"
        if u is None or _shape(u) != _shape(p) or _is_complex(u) > _is_complex(p):
            problem = (
                "a complex update for a real parameter would lose its imaginary part"
                if u is not None and _shape(u) == _shape(p)
                else "every parameter needs an update of its shape"
            )
            raise ValueError(
                f"updates and params differ at {where}: "
                f"{_describe(u) if u is not None else None} in updates, "
                f"{_describe(p)} in params; {problem}."
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
