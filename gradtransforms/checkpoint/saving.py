"""`save` and `restore`, and their Orbax arguments for a `CheckpointManager`."""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from gradtransforms.checkpoint import trees
from gradtransforms.checkpoint.errors import check_folder
from gradtransforms.checkpoint.handlers import (
    MetaRestore,
    MetaSave,
    Restoring,
    StateRestore,
    StateSave,
    meta_record,
)

__all__ = ["restore", "restore_args", "save", "save_args"]


def _step(step: Any) -> int:
    """`step` as a Python int: an int, or a NumPy/JAX integer scalar (uint32 too)."""
    dtype = getattr(step, "dtype", None)
    is_integer = isinstance(step, int) or (
        dtype is not None and np.issubdtype(np.dtype(dtype), np.integer)
    )
    if isinstance(step, bool | np.bool_) or not is_integer:
        raise TypeError(f"step must be an int >= 0; got {step!r}.")
    if np.ndim(step) != 0:
        raise TypeError(f"step must be a scalar; got shape {np.shape(step)}.")
    try:
        value = operator.index(step) if isinstance(step, int) else int(step)
    except TypeError as e:  # a traced value
        raise TypeError(f"step must be a concrete int >= 0; got {step!r}.") from e
    if value < 0:
        raise ValueError(f"step must be an int >= 0; got {step!r}.")
    return value


def _optimizer(opt_state: Any, tx: Any) -> Any:
    """The transformation to fingerprint: `tx`, or an `nnx.Optimizer`'s own."""
    if tx is not None:
        return tx
    inner = getattr(opt_state, "tx", None) if trees.is_nnx(opt_state) else None
    return inner if hasattr(inner, "init") and hasattr(inner, "update") else None


def save_args(
    params: Any, opt_state: Any, step: Any, *, tx: Any = None
) -> ocp.args.Composite:
    """The Orbax arguments `save` writes: the arrays and the JSON record.

    Pass them to `orbax.checkpoint.CheckpointManager.save(step, args=...)`
    to keep several checkpoints under Orbax's retention policies; restore
    with `restore_args`, which checks the record as `restore` does.

    Args:
      params: a pytree of arrays, or a Flax NNX object (e.g. the model).
      opt_state: the optimizer state: a pytree or an NNX object (e.g. the
        `nnx.Optimizer`).
      step: the training step: an int >= 0, or a NumPy/JAX integer scalar
        such as `nnx.Optimizer.step[...]`.
      tx: the optimizer (`GradientTransformation`) that made `opt_state`,
        recorded so that restoring into another can be refused; an
        `nnx.Optimizer`'s own `tx` is recorded without it.

    Raises:
      TypeError: `step` is not an integer, or a leaf is not an array nor a
        Python number, string or `None` (the message names its path).
      ValueError: `step` is negative.
    """
    step = _step(step)
    flats = {"params": trees.flatten(params), "opt_state": trees.flatten(opt_state)}
    stored = {name: trees.stored(flat, name) for name, flat in flats.items()}
    meta = meta_record(step, flats, stored, _optimizer(opt_state, tx))
    return ocp.args.Composite(
        state=StateSave({name: s.arrays for name, s in stored.items()}),
        meta=MetaSave(meta),
    )


def restore_args(
    params_like: Any,
    opt_state_like: Any,
    *,
    tx: Any = None,
    check_optimizer: bool = True,
) -> ocp.args.Composite:
    """The Orbax arguments `restore` reads with, checks included.

    With `orbax.checkpoint.CheckpointManager.restore(step, args=...)`, the
    result is `{"state": {"params": ..., "opt_state": ...}, "meta": {...}}`:
    trees like `params_like` and `opt_state_like` (NNX objects updated in
    place), and the JSON record, whose `"step"` is the saved step. The
    manager raises the errors `restore` documents.
    """
    restoring = Restoring(
        params_like, opt_state_like, _optimizer(opt_state_like, tx), check_optimizer
    )
    return ocp.args.Composite(
        state=StateRestore(restoring), meta=MetaRestore(restoring)
    )


def save(
    path: str | os.PathLike,
    params: Any,
    opt_state: Any,
    step: Any,
    *,
    force: bool = False,
    tx: Any = None,
) -> str:
    """Write `params`, `opt_state` and `step` to the folder `path`.

    Synchronous: when it returns, the checkpoint is complete on disk (Orbax
    writes into a temporary folder and renames it, so a crash never leaves a
    half-written checkpoint under `path`). In a multi-process run every
    process calls it with the same `path`; Orbax writes each array's shards
    from the processes that own them.

    Args:
      path: a folder that does not exist yet (unless `force`).
      params: a pytree of arrays (sharded arrays welcome), or a Flax NNX
        object such as the model (every variable is saved: parameters,
        BatchNorm statistics, PRNG keys).
      opt_state: the optimizer state, or an `nnx.Optimizer`.
      step: the training step: an int >= 0, or a NumPy/JAX integer scalar.
      force: overwrite an existing checkpoint at `path`.
      tx: the optimizer that made `opt_state` (taken from an `nnx.Optimizer`
        when not given); its structure and hyperparameters are recorded.

    Returns:
      The absolute path written.
    """
    path = os.path.abspath(os.fspath(path))
    args = save_args(params, opt_state, step, tx=tx)
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(path, args, force=force)
    return path


def restore(
    path: str | os.PathLike,
    params_like: Any,
    opt_state_like: Any,
    *,
    tx: Any = None,
    check_optimizer: bool = True,
) -> tuple[Any, Any, int]:
    """Read a checkpoint written by `save` into trees like the given ones.

    `params_like` and `opt_state_like` give the structure, shapes, dtypes
    and shardings to restore into: concrete arrays (e.g. freshly initialised
    parameters and `tx.init(params)`), `jax.ShapeDtypeStruct`s (e.g. from
    `jax.eval_shape(tx.init, params)`, with `sharding=` set to restore
    directly onto a mesh), or Flax NNX objects (a model, an `nnx.Optimizer`,
    an `nnx.State`), which are updated in place. Arrays come back with the
    shardings of the matching leaves (the first local device for leaves
    without one).

    Args:
      path: the folder given to `save`.
      params_like: a tree like the saved parameters.
      opt_state_like: a tree like the saved optimizer state.
      tx: the optimizer to restore into (taken from an `nnx.Optimizer` when
        not given). When both it and the checkpoint's record are known, they
        must have been built alike: same transformations, same
        hyperparameters.
      check_optimizer: set to `False` to restore the state into a
        differently configured optimizer on purpose.

    Returns:
      `(params, opt_state, step)`, bit-identical to what was saved (for NNX
      objects, the objects themselves, updated).

    Raises:
      FileNotFoundError: no folder at `path`, or no checkpoint in it.
      CheckpointMismatchError: (a `ValueError`) the trees differ from the
        checkpoint's in structure, container types, shapes or dtypes, or
        the optimizer from the one that saved it; the message names the
        first difference. Nothing is read then.
      CheckpointCorruptedError: (a `ValueError`) the checkpoint is
        incomplete, or its metadata or arrays cannot be read.
    """
    folder = check_folder(path)
    args = restore_args(
        params_like, opt_state_like, tx=tx, check_optimizer=check_optimizer
    )
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        out = checkpointer.restore(folder, args)
    state = out["state"]
    return state["params"], state["opt_state"], int(out["meta"]["step"])
