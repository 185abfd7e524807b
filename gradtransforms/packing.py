"""Packed parameters: many leaves kept in a few flat buffers, one per dtype.

An optimizer step is memory-bound, and with many small leaves its cost is not
the arithmetic but the fixed cost per buffer: every leaf is a separate input
and output of the compiled step and a separate loop in it, and compile time
grows with the leaf count. A `PackedLayout` keeps all leaves of one dtype
(and, optionally, one user label) in one 1-D buffer, so the optimizer sees a
handful of leaves whatever the model's size. The model reads its parameters
back with `layout.unpack(packed)` *inside* the loss: the slices and reshapes
fuse into their consumers, and the gradient with respect to the buffers
arrives already packed (the transpose of the split is one concatenation
inside the backward pass), so nothing is concatenated per step outside it.

Nothing in the optimizers changes: any transformation runs on the packed
buffers as on any pytree. Element-wise transformations (every optimizer in
this library, weight decay, `clip`, `clip_by_global_norm`, `apply_if_finite`)
give the same results as on the unpacked tree. Transformations that look at
leaves one by one (`clip_by_norm`, a `masked`/`partition` label per leaf)
see one leaf per buffer instead: give such leaves their own `labels` group.

Examples:
  >>> import jax, jax.numpy as jnp, gradtransforms as gt
  >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
  >>> layout = gt.packed_layout(params)
  >>> packed = layout.pack(params)
  >>> {k: v.shape for k, v in packed.items()}
  {'float32': (9,)}
  >>> loss = lambda packed: jnp.sum(layout.unpack(packed)["w"] ** 2)
  >>> jax.grad(loss)(packed)["float32"].shape
  (9,)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms import tree as tu

__all__ = ["PackedLayout", "packed_layout"]


class _Slot(NamedTuple):
    group: tuple[str, ...]  # key path of the buffer in the packed dict
    shape: tuple[int, ...]


def _path_name(path: tuple) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def _sharding(leaf: Any) -> Any:
    """A concrete array's sharding when it is split across devices, else None."""
    sharding = getattr(leaf, "sharding", None)
    if sharding is None or not isinstance(leaf, jax.Array):
        return None
    if sharding.is_fully_replicated:
        return None
    return sharding


class PackedLayout:
    """Where each leaf of a parameter tree lives in the packed buffers.

    Built by `packed_layout`; immutable and cheap to close over in a jitted
    function. `pack` turns a tree like the parameters into the packed dict
    (done once, e.g. when the model is built or restored); `unpack` turns a
    packed dict back into the tree (done inside the loss, under `jit`, and for
    any tree that lives in the packed space: gradients, updates, moments,
    averages).

    Attributes:
      treedef: the structure of the parameter tree.
      groups: the packed buffers' key paths, in order, with their sizes and
        dtypes.
    """

    def __init__(
        self,
        treedef: Any,
        slots: tuple[_Slot, ...],
        groups: dict[tuple[str, ...], tuple[int, jnp.dtype]],
    ):
        self.treedef = treedef
        self._slots = slots
        self.groups = groups
        members: dict[tuple[str, ...], list[int]] = {g: [] for g in groups}
        for i, slot in enumerate(slots):
            members[slot.group].append(i)
        self._members = {g: tuple(m) for g, m in members.items()}

    def __repr__(self) -> str:
        groups = ", ".join(
            f"{'/'.join(g)}: {dtype.name}[{size}]"
            for g, (size, dtype) in self.groups.items()
        )
        return f"PackedLayout({len(self._slots)} leaves -> {{{groups}}})"

    def _nest(self, values: dict[tuple[str, ...], Any]) -> dict:
        out: dict = {}
        for group, value in values.items():
            node = out
            for key in group[:-1]:
                node = node.setdefault(key, {})
            node[group[-1]] = value
        return out

    def abstract(self) -> dict:
        """The packed dict as `jax.ShapeDtypeStruct`s (for `eval_shape`-style use)."""
        return self._nest(
            {
                g: jax.ShapeDtypeStruct((size,), dtype)
                for g, (size, dtype) in self.groups.items()
            }
        )

    def pack(self, tree: Any) -> dict:
        """The leaves of `tree` (shaped like the parameters) in flat buffers.

        Args:
          tree: a pytree with the parameters' structure, shapes and dtypes.

        Returns:
          A dict of 1-D buffers, shaped like `abstract()`.

        Raises:
          ValueError: if `tree` differs from the parameters in structure, a
            leaf's shape or a leaf's dtype; the message names the first
            offending path.
        """
        leaves = self._leaves_of(tree)
        buffers = {}
        for group, members in self._members.items():
            parts = [jnp.ravel(leaves[i]) for i in members]
            buffers[group] = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
        return self._nest(buffers)

    def unpack(self, packed: Any) -> Any:
        """The tree of leaves stored in `packed` (the inverse of `pack`).

        Under `jit` this is one split and a reshape per leaf, which fuse into
        whatever reads the leaves; its gradient is one concatenation.

        Args:
          packed: a dict shaped like `abstract()`: packed parameters,
            gradients, updates or optimizer moments (in any dtype, e.g.
            moments kept in float32 for bfloat16 parameters).

        Returns:
          A pytree with the parameters' structure and shapes, each leaf in its
          buffer's dtype.

        Raises:
          ValueError: if `packed` does not match the layout (structure or
            buffer size); the message names the buffer.
        """
        skeleton = self.abstract()
        tu.assert_same_structure(packed, skeleton, "packed", "the layout's buffers")
        flat = dict(
            zip(self.groups, jax.tree.leaves(packed), strict=True)
        )  # groups are in the dict's flattening order
        leaves: list[Any] = [None] * len(self._slots)
        for group, members in self._members.items():
            buffer = jnp.asarray(flat[group])
            size, dtype = self.groups[group]
            if buffer.shape != (size,):
                raise ValueError(
                    f"packed buffer {'/'.join(group)!r} must have shape ({size},) "
                    f"like the layout's {dtype.name}[{size}]; got "
                    f"{buffer.dtype.name}{list(buffer.shape)}."
                )
            sizes = [math.prod(self._slots[i].shape) for i in members]
            parts = (
                [buffer] if len(members) == 1 else jax.lax.split(buffer, sizes, axis=0)
            )
            for i, part in zip(members, parts, strict=True):
                leaves[i] = part.reshape(self._slots[i].shape)
        return jax.tree.unflatten(self.treedef, leaves)

    def _leaves_of(self, tree: Any) -> list[Any]:
        paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        if treedef != self.treedef:
            skeleton = jax.tree.unflatten(self.treedef, [0] * len(self._slots))
            tu.assert_same_structure(tree, skeleton, "tree", "the layout's params")
            raise ValueError(  # same key paths, different node types
                f"tree has structure {treedef}; the layout was built for "
                f"{self.treedef}."
            )
        leaves = []
        for (path, leaf), slot in zip(paths_leaves, self._slots, strict=True):
            leaf = jnp.asarray(leaf)
            dtype = self.groups[slot.group][1]
            if leaf.shape != slot.shape or leaf.dtype != dtype:
                raise ValueError(
                    f"leaf {_path_name(path)} must be {dtype.name}{list(slot.shape)} "
                    f"as in the layout; got {leaf.dtype.name}{list(leaf.shape)}."
                )
            leaves.append(leaf)
        return leaves


def packed_layout(params: Any, labels: Any = None) -> PackedLayout:
    """A `PackedLayout` that stores the leaves of `params` in one buffer per dtype.

    Leaves are grouped by dtype, in the tree's flattening order, and, with
    `labels`, by label first: the packed dict is then `{label: {dtype: buffer}}`
    instead of `{dtype: buffer}`, so `masked` and `partition` can treat groups
    differently (e.g. no weight decay on biases and BatchNorm scales).

    Args:
      params: a pytree of floating-point arrays (or `jax.ShapeDtypeStruct`s).
        Arrays split across devices (FSDP-style shardings) cannot share a flat
        buffer and are rejected; replicated and single-device arrays are fine.
      labels: `None`, a pytree of strings with the structure of `params`, or a
        function `params -> labels`.

    Returns:
      The layout; `layout.pack(params)` gives the packed buffers.

    Raises:
      ValueError: for a non-floating leaf, a sharded leaf, or labels that do
        not match `params` (naming the path).
      TypeError: for a label that is not a string.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> layout = gt.packed_layout(params, labels={"w": "decay", "b": "no_decay"})
      >>> jax.tree.map(jnp.shape, layout.pack(params))
      {'decay': {'float32': (6,)}, 'no_decay': {'float32': (3,)}}
    """
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    if callable(labels):
        labels = labels(params)
    if labels is None:
        label_leaves = [None] * len(paths_leaves)
    else:
        tu.assert_same_structure(labels, params, "labels", "params")
        label_leaves = jax.tree.leaves(labels)
    slots = []
    groups: dict[tuple[str, ...], tuple[int, jnp.dtype]] = {}
    for (path, leaf), label in zip(paths_leaves, label_leaves, strict=True):
        name = _path_name(path)
        if not hasattr(leaf, "dtype"):  # a Python or NumPy scalar
            leaf = jnp.asarray(leaf)
        dtype = jnp.dtype(leaf.dtype)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(
                f"packed_layout packs floating-point leaves; {name} has dtype "
                f"{dtype.name}."
            )
        if _sharding(leaf) is not None:
            raise ValueError(
                f"{name} is split across devices ({leaf.sharding}); a packed "
                "buffer holds replicated or single-device leaves only. Keep "
                "sharded parameters unpacked."
            )
        if label is not None and not isinstance(label, str):
            raise TypeError(f"labels must be strings; {name} has {label!r}.")
        group = (dtype.name,) if label is None else (label, dtype.name)
        shape = tuple(int(d) for d in np.shape(leaf))
        size, _ = groups.get(group, (0, dtype))
        groups[group] = (size + math.prod(shape), dtype)
        slots.append(_Slot(group, shape))
    # Order the groups as a dict of them flattens (sorted keys), so that
    # `unpack` can pair buffers with groups by position.
    ordered = dict(sorted(groups.items()))
    return PackedLayout(treedef, tuple(slots), ordered)
