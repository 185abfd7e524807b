"""The trees a checkpoint holds: pytrees and Flax NNX objects, flattened.

A tree to save is flattened into its leaves in a fixed order, with a
description (`describe`) of its structure. Plain pytrees flatten with JAX
(`jax.tree_util`), so any registered container works, whatever its keys.
Flax NNX objects (a `Module`, an `Optimizer`, any `nnx.State` or other
`nnx.Pytree`) flatten with NNX's own `nnx.state` and `nnx.to_flat_state`:
every variable is kept (parameters, BatchNorm statistics, the optimizer's
step and state, PRNG keys and counts), and restoring writes the values back
with `nnx.update`, in place.

Arrays are stored by Orbax, except typed PRNG keys, which are stored as
`jax.random.key_data` and wrapped again with `jax.random.wrap_key_data`, and
Python numbers, strings and `None`, which are stored exactly in the JSON
metadata.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Flat",
    "Stored",
    "abstract",
    "describe",
    "first_mismatch",
    "flatten",
    "is_nnx",
    "restored",
    "stored",
]

# Leaves stored in the JSON metadata rather than by Orbax.
PYTHON_VALUES = (bool, int, float, str, type(None))


def is_nnx(x: Any) -> bool:
    """Whether `x` is a Flax NNX object (a `Module`, `Optimizer`, `State`...)."""
    nnx = sys.modules.get("flax.nnx")  # not imported: cannot be an NNX object
    return nnx is not None and isinstance(x, nnx.Pytree | nnx.State)


def is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def is_key(x: Any) -> bool:
    return is_array(x) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaf_line(x: Any) -> str:
    shape = ",".join(str(d) for d in x.shape)
    dtype = str(x.dtype) if is_key(x) else np.dtype(x.dtype).name
    return f"{dtype}[{shape}]"


def _describe_pytree(tree: Any) -> list[str]:
    lines: list[str] = []

    def walk(path: tuple, x: Any) -> None:
        where = jax.tree_util.keystr(path) or "<root>"
        if is_array(x):
            lines.append(f"{where}: {_leaf_line(x)}")
            return
        children, treedef = jax.tree_util.tree_flatten_with_path(
            x, is_leaf=lambda y: y is not x
        )
        lines.append(f"{where}: {type(x).__name__}")
        if treedef.num_nodes == 1 and treedef.num_leaves == 1:  # an opaque leaf
            return
        for key, child in children:
            walk((*path, *key), child)

    walk((), tree)
    return lines


def _nnx_entries(obj: Any) -> list[tuple[str, Any]]:
    """`(path, variable)` for every variable of an NNX object, in NNX's order."""
    from flax import nnx

    state = obj if isinstance(obj, nnx.State) else nnx.state(obj)
    return [
        ("/" + "/".join(str(p) for p in path), variable)
        for path, variable in nnx.to_flat_state(state)
    ]


def _value(variable: Any) -> Any:
    return variable.get_value() if hasattr(variable, "get_value") else variable


def describe(tree: Any) -> list[str]:
    """One line per node of `tree`, in flattening order.

    For a pytree, containers read `"<path>: <type name>"` (`None` and empty
    containers included), leaves `"<path>: <dtype>[<shape>]"`; arrays and
    `jax.ShapeDtypeStruct`s describe alike, so a checkpoint's description
    can be compared with the abstract tree it is to be restored into. PRNG
    key arrays read `key<fry>[...]` (their key type). For a Flax NNX object
    the first line is `"<root>: nnx"`, then one line per variable:
    `"/<path>: <variable type> <dtype>[<shape>]"`.

    Examples:
      >>> import jax.numpy as jnp
      >>> describe({"w": jnp.zeros((2, 3)), "b": None})
      ['<root>: dict', "['b']: NoneType", "['w']: float32[2,3]"]
    """
    if not is_nnx(tree):
        return _describe_pytree(tree)
    lines = ["<root>: nnx"]
    for path, variable in _nnx_entries(tree):
        value = _value(variable)
        leaf = _leaf_line(value) if is_array(value) else type(value).__name__
        lines.append(f"{path}: {type(variable).__name__} {leaf}")
    return lines


class Flat(NamedTuple):
    """A tree as its leaves, and the way back."""

    lines: list[str]  # describe(tree)
    paths: list[str]  # each leaf's path, for messages
    leaves: list[Any]  # arrays, ShapeDtypeStructs or Python values, in order
    rebuild: Callable[[list[Any]], Any]  # new leaves -> the tree (NNX: in place)


def _flatten_nnx(obj: Any) -> Flat:
    from flax import nnx

    entries = _nnx_entries(obj)
    flat = list(
        nnx.to_flat_state(obj if isinstance(obj, nnx.State) else nnx.state(obj))
    )

    def rebuild(leaves: list[Any]) -> Any:
        new = nnx.from_flat_state(
            [(path, v.replace(x)) for (path, v), x in zip(flat, leaves, strict=True)]
        )
        if isinstance(obj, nnx.State):
            return new
        nnx.update(obj, new)
        return obj

    return Flat(
        describe(obj), [p for p, _ in entries], [_value(v) for _, v in entries], rebuild
    )


def flatten(tree: Any) -> Flat:
    """The leaves of `tree` (a pytree or an NNX object) and how to rebuild it."""
    if is_nnx(tree):
        return _flatten_nnx(tree)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [jax.tree_util.keystr(p) for p, _ in with_paths]
    leaves = [x for _, x in with_paths]
    return Flat(describe(tree), paths, leaves, treedef.unflatten)


def _path_of(line: str) -> str | None:
    """The key path of a `describe` line ('' for the root)."""
    if ": " not in line:
        return None
    path = line.rsplit(": ", 1)[0]
    return "" if path == "<root>" else path


def first_mismatch(saved: list[str], wanted: list[str]) -> tuple[str, str, str] | None:
    """`(path, saved line, wanted line)` at the first line that differs."""
    n = min(len(saved), len(wanted))
    at = next((i for i in range(n) if saved[i] != wanted[i]), None)
    if at is None:
        if len(saved) == len(wanted):
            return None
        at = n
    a = saved[at] if at < len(saved) else "(nothing more)"
    b = wanted[at] if at < len(wanted) else "(nothing more)"
    path_a, path_b = _path_of(a), _path_of(b)
    saved_paths = {_path_of(line) for line in saved}
    wanted_paths = {_path_of(line) for line in wanted}
    if path_a is not None and path_a not in wanted_paths:
        path = path_a  # in the checkpoint only
    elif path_b is not None and path_b not in saved_paths:
        path = path_b  # in the target only
    else:
        path = path_a if path_a is not None else path_b
    return path or "", a, b


class Stored(NamedTuple):
    """A flattened tree as written: Orbax's arrays and the JSON's values."""

    arrays: dict[str, Any]  # leaf index -> array (PRNG keys as their key data)
    values: dict[str, Any]  # leaf index -> Python value (stored in the JSON)
    keys: dict[str, str]  # leaf index -> PRNG implementation of a key leaf


def stored(flat: Flat, name: str) -> Stored:
    """What `save` writes of the flattened tree `name`.

    Raises:
      TypeError: for a leaf that is neither an array nor a Python number,
        string or `None` (it could not be restored), naming its path.
    """
    arrays, values, keys = {}, {}, {}
    for i, (path, x) in enumerate(zip(flat.paths, flat.leaves, strict=True)):
        if is_key(x):
            arrays[str(i)] = jax.random.key_data(x)
            keys[str(i)] = str(jax.random.key_impl(x))
        elif isinstance(x, jax.Array | np.ndarray | np.generic):
            arrays[str(i)] = x
        elif isinstance(x, PYTHON_VALUES):
            values[str(i)] = x
        else:
            raise TypeError(
                f"cannot checkpoint {name}{path}: a {type(x).__name__}, not an "
                "array or a Python number, string or None."
            )
    return Stored(arrays, values, keys)


def _default_sharding() -> jax.sharding.Sharding:
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def abstract(flat: Flat) -> dict[str, Any]:
    """`jax.ShapeDtypeStruct`s (with shardings) of the arrays to read into `flat`.

    A leaf without a sharding is placed on the first local device; PRNG keys
    are read as their key data.
    """
    out = {}
    for i, x in enumerate(flat.leaves):
        if not is_array(x):
            continue
        if isinstance(x, np.ndarray | np.generic):  # read back as NumPy, any dtype
            out[str(i)] = np.zeros_like(x)
        elif is_key(x):
            data = jax.eval_shape(jax.random.key_data, x)
            sharding = None
            if isinstance(x, jax.Array):
                sharding = jax.random.key_data(x).sharding
            out[str(i)] = jax.ShapeDtypeStruct(
                data.shape, data.dtype, sharding=sharding or _default_sharding()
            )
        else:
            sharding = getattr(x, "sharding", None) or _default_sharding()
            out[str(i)] = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
    return out


def restored(flat: Flat, arrays: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The tree `flat` came from, with the leaves read back (NNX: in place).

    `meta` is this tree's part of the JSON: `values` and `keys` (see `Stored`).
    A leaf that was a NumPy array comes back as a NumPy array.
    """
    values, keys = meta.get("values", {}), meta.get("keys", {})
    leaves = []
    for i, like in enumerate(flat.leaves):
        at = str(i)
        if at in values:
            leaves.append(values[at])
        elif at in keys:
            leaves.append(jax.random.wrap_key_data(arrays[at], impl=keys[at]))
        elif isinstance(like, np.generic):
            leaves.append(np.asarray(arrays[at])[()])
        else:
            leaves.append(arrays[at])
    return flat.rebuild(leaves)
