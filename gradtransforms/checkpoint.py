"""Checkpoints of (parameters, optimizer state, step) with Orbax.

The arrays are written by Orbax (`orbax.checkpoint`, its `StandardSave` /
`StandardRestore`, which handle sharded and multi-process arrays); next to
them a small JSON item records the step and a description of both trees: each
node's key path and container type, each leaf's dtype and shape. `restore`
compares that description with the trees it is asked to fill *before* reading
any array, so restoring into a differently configured optimizer (Adam's state
into SGD with momentum, `centered=True` into `centered=False`, other shapes or
dtypes) raises a `CheckpointMismatchError` naming the first differing path,
instead of silently filling the wrong slots.

Restoring is bit-exact: resuming from a checkpoint gives the same parameters
and state, bit for bit, as a run that was never interrupted.

    import gradtransforms as gt
    gt.checkpoint.save("/tmp/run/step_100", params, opt_state, step=100)
    params, opt_state, step = gt.checkpoint.restore(
        "/tmp/run/step_100", params, tx.init(params))

For rotating checkpoints (keep the last *n*, save every *k* steps) use
`orbax.checkpoint.CheckpointManager` with `save_args` / `restore_args`, which
return the same Orbax arguments `save` and `restore` use.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = [
    "CheckpointMismatchError",
    "describe",
    "restore",
    "restore_args",
    "save",
    "save_args",
]

_FORMAT = "gradtransforms.checkpoint/1"


class CheckpointMismatchError(ValueError):
    """The trees to restore into do not match the checkpoint's."""


def _is_leaf_value(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def describe(tree: Any) -> list[str]:
    """One line per node of `tree`, in flattening order.

    Containers read `"<path>: <type name>"` (`None` and empty containers
    included), leaves `"<path>: <dtype>[<shape>]"`; arrays and
    `jax.ShapeDtypeStruct`s describe alike, so a checkpoint's description can
    be compared with the abstract tree it is to be restored into.

    Examples:
      >>> import jax.numpy as jnp
      >>> describe({"w": jnp.zeros((2, 3)), "b": None})
      ['<root>: dict', "['b']: NoneType", "['w']: float32[2,3]"]
    """
    lines: list[str] = []

    def walk(path: tuple, x: Any) -> None:
        where = jax.tree_util.keystr(path) or "<root>"
        if _is_leaf_value(x):
            shape = ",".join(str(d) for d in x.shape)
            lines.append(f"{where}: {np.dtype(x.dtype).name}[{shape}]")
            return
        children, treedef = jax.tree_util.tree_flatten_with_path(
            x, is_leaf=lambda y: y is not x
        )
        if treedef.num_nodes == 1 and treedef.num_leaves == 1:  # an opaque leaf
            lines.append(f"{where}: {type(x).__name__}")
            return
        lines.append(f"{where}: {type(x).__name__}")
        for key, child in children:
            walk((*path, *key), child)

    walk((), tree)
    return lines


def _first_mismatch(saved: list[str], wanted: list[str]) -> tuple[str, str, str] | None:
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


def _path_of(line: str) -> str | None:
    """The key path of a `describe` line ('' for the root)."""
    if ": " not in line:
        return None
    path = line.rsplit(": ", 1)[0]
    return "" if path == "<root>" else path


def _abstract(tree: Any) -> Any:
    """`jax.ShapeDtypeStruct`s (with shardings) for arrays and abstract leaves.

    A leaf without a sharding is placed on the first local device.
    """
    default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def one(x):
        sharding = getattr(x, "sharding", None) or default
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(one, tree)


def save_args(params: Any, opt_state: Any, step: int) -> ocp.args.Composite:
    """The Orbax arguments `save` writes: arrays plus the JSON description.

    Pass them to `orbax.checkpoint.CheckpointManager.save(step, args=...)` to
    keep several checkpoints with Orbax's retention policies.
    """
    if isinstance(step, bool) or not isinstance(step, int | np.integer):
        raise TypeError(f"step must be an int >= 0; got {step!r}.")
    if step < 0:
        raise ValueError(f"step must be an int >= 0; got {step!r}.")
    meta = {
        "format": _FORMAT,
        "step": int(step),
        "params": describe(params),
        "opt_state": describe(opt_state),
    }
    return ocp.args.Composite(
        state=ocp.args.StandardSave({"params": params, "opt_state": opt_state}),
        meta=ocp.args.JsonSave(meta),
    )


def restore_args(params_like: Any, opt_state_like: Any) -> ocp.args.Composite:
    """The Orbax arguments `restore` reads with (after checking the description)."""
    target = {"params": params_like, "opt_state": opt_state_like}
    return ocp.args.Composite(
        state=ocp.args.StandardRestore(_abstract(target)),
        meta=ocp.args.JsonRestore(),
    )


def save(
    path: str | os.PathLike,
    params: Any,
    opt_state: Any,
    step: int,
    *,
    force: bool = False,
) -> str:
    """Write `params`, `opt_state` and `step` to the folder `path`.

    Synchronous: when it returns, the checkpoint is complete on disk. In a
    multi-process run every process calls it with the same `path`; Orbax
    writes each array's shards from the processes that own them.

    Args:
      path: a folder that does not exist yet (unless `force`).
      params: a pytree of arrays (sharded arrays welcome).
      opt_state: the optimizer state.
      step: the training step, an int >= 0.
      force: overwrite an existing checkpoint at `path`.

    Returns:
      The absolute path written.
    """
    path = os.path.abspath(os.fspath(path))
    args = save_args(params, opt_state, step)
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(path, args, force=force)
    return path


def restore(
    path: str | os.PathLike, params_like: Any, opt_state_like: Any
) -> tuple[Any, Any, int]:
    """Read a checkpoint written by `save` into trees like the given ones.

    `params_like` and `opt_state_like` give the structure, shapes, dtypes
    and shardings to restore into: concrete arrays (e.g. freshly initialised
    parameters and `tx.init(params)`) or `jax.ShapeDtypeStruct`s (e.g. from
    `jax.eval_shape(tx.init, params)`, with `sharding=` set to restore
    directly onto a mesh). Arrays come back with the shardings of the
    matching leaves (the first local device for leaves without one).

    Args:
      path: the folder given to `save`.
      params_like: a tree like the saved parameters.
      opt_state_like: a tree like the saved optimizer state.

    Returns:
      `(params, opt_state, step)`, bit-identical to what was saved.

    Raises:
      CheckpointMismatchError: (a `ValueError`) if the trees differ from the
        checkpoint's in structure, container types, shapes or dtypes; the
        message names the first differing path. Nothing is read then.
      FileNotFoundError: if there is no checkpoint at `path`.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        meta = checkpointer.restore(
            path, ocp.args.Composite(meta=ocp.args.JsonRestore())
        )["meta"]
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise CheckpointMismatchError(
                f"{path} is not a gradtransforms checkpoint (no {_FORMAT} metadata)."
            )
        for name, like in (("params", params_like), ("opt_state", opt_state_like)):
            mismatch = _first_mismatch(meta[name], describe(like))
            if mismatch is not None:
                where, saved, wanted = mismatch
                raise CheckpointMismatchError(
                    f"checkpoint {path} does not match {name}_like: first "
                    f"difference at {name}{where}: the "
                    f"checkpoint has {saved!r}, {name}_like has {wanted!r}. "
                    "Was it saved with a differently configured optimizer or "
                    "model?"
                )
        state = checkpointer.restore(path, restore_args(params_like, opt_state_like))[
            "state"
        ]
    return state["params"], state["opt_state"], int(meta["step"])
