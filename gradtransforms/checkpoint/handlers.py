"""The Orbax side: the two items of a checkpoint and their handlers.

A checkpoint is an Orbax composite of two items. `state` holds the arrays
(`StandardCheckpointHandler`: sharded and multi-process arrays included),
`meta` a JSON record (`JsonCheckpointHandler`) of the step, the description
of both trees, the Python values among their leaves, the PRNG implementation
of each key, and the optimizer's `fingerprint`. The handlers here subclass
Orbax's two so that restoring checks the JSON before any array is read,
through `restore` and through `orbax.checkpoint.CheckpointManager` alike:
Orbax restores a composite's items in sorted order, `meta` first, and the
`state` handler checks again (the result is cached) if it comes first.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from gradtransforms.checkpoint import trees
from gradtransforms.checkpoint.errors import (
    CheckpointCorruptedError,
    CheckpointMismatchError,
)
from gradtransforms.checkpoint.fingerprint import fingerprint, first_difference

__all__ = [
    "FORMAT",
    "MetaHandler",
    "MetaRestore",
    "MetaSave",
    "Restoring",
    "StateHandler",
    "StateRestore",
    "StateSave",
    "meta_record",
]

FORMAT = "gradtransforms.checkpoint/2"
TREES = ("params", "opt_state")
_FIELDS = ("step", *TREES, "stored", "optimizer")


def meta_record(
    step: int, flats: dict[str, trees.Flat], stored: dict, tx: Any
) -> dict[str, Any]:
    """The JSON item of a checkpoint."""
    return {
        "format": FORMAT,
        "step": step,
        **{name: flats[name].lines for name in TREES},
        "stored": {
            name: {"values": s.values, "keys": s.keys} for name, s in stored.items()
        },
        "optimizer": None if tx is None else fingerprint(tx),
    }


def _read_meta(path: Path, meta_dir: Path) -> dict[str, Any]:
    file = meta_dir / "metadata"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckpointCorruptedError(
            f"checkpoint {path} is incomplete: its metadata file {file} is missing."
        ) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointCorruptedError(
            f"checkpoint {path} is damaged: its metadata {file} is not valid "
            f"JSON ({type(e).__name__}: {e})."
        ) from e
    if not isinstance(meta, dict) or "format" not in meta:
        raise CheckpointCorruptedError(
            f"checkpoint {path} is damaged: its metadata {file} is not a "
            "gradtransforms record."
        )
    if meta["format"] != FORMAT:
        raise CheckpointMismatchError(
            f"checkpoint {path} has format {meta['format']!r}; this version "
            f"of gradtransforms reads {FORMAT!r}."
        )
    missing = [k for k in _FIELDS if k not in meta]
    if missing or not isinstance(meta["step"], int):
        raise CheckpointCorruptedError(
            f"checkpoint {path} is damaged: its metadata {file} lacks "
            f"{missing or ['an integer step']}."
        )
    return meta


class Restoring:
    """One restore in progress: the targets, and the JSON once checked."""

    def __init__(self, params_like: Any, opt_state_like: Any, tx: Any, check: bool):
        self.flats = {
            "params": trees.flatten(params_like),
            "opt_state": trees.flatten(opt_state_like),
        }
        self.tx = tx if check else None
        self.checked: dict[Path, dict[str, Any]] = {}  # path -> its checked JSON

    def checked_meta(self, path: Path) -> dict[str, Any]:
        """The JSON of the checkpoint at `path`, checked against the targets."""
        if path in self.checked:
            return self.checked[path]
        meta = _read_meta(path, path / "meta")
        for name in TREES:
            mismatch = trees.first_mismatch(meta[name], self.flats[name].lines)
            if mismatch is not None:
                where, saved, wanted = mismatch
                raise CheckpointMismatchError(
                    f"checkpoint {path} does not match {name}_like: first "
                    f"difference at {name}{where}: the checkpoint has {saved!r}, "
                    f"{name}_like has {wanted!r}. Was it saved with a differently "
                    "configured optimizer or model?"
                )
        if self.tx is not None and meta["optimizer"] is not None:
            difference = first_difference(meta["optimizer"], fingerprint(self.tx))
            if difference is not None:
                raise CheckpointMismatchError(
                    f"checkpoint {path} was saved by a differently configured "
                    f"optimizer: {difference}. Restore into the optimizer that "
                    "wrote it, or pass check_optimizer=False to restore its "
                    "state anyway."
                )
        self.checked[path] = meta
        return meta

    def abstract(self) -> dict[str, Any]:
        return {name: trees.abstract(flat) for name, flat in self.flats.items()}

    def rebuild(self, arrays: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        return {
            name: trees.restored(flat, arrays[name], meta["stored"][name])
            for name, flat in self.flats.items()
        }


class MetaHandler(ocp.JsonCheckpointHandler):
    """Orbax's JSON handler, checking the record against the targets on restore."""

    async def async_save(self, directory: Any, item: Any = None, args: Any = None):
        return await super().async_save(directory, args=ocp.args.JsonSave(args.item))

    def restore(self, directory: Any, item: Any = None, args: Any = None) -> Any:
        return args.restoring.checked_meta(Path(directory).parent)


class StateHandler(ocp.StandardCheckpointHandler):
    """Orbax's array handler, restoring into the caller's trees (NNX in place)."""

    async def async_save(
        self, directory: Any, item: Any = None, save_args: Any = None, args: Any = None
    ):
        return await super().async_save(
            directory, args=ocp.args.StandardSave(args.item)
        )

    def restore(self, directory: Any, item: Any = None, args: Any = None) -> Any:
        restoring: Restoring = args.restoring
        path = Path(directory).parent
        meta = restoring.checked_meta(path)
        try:
            arrays = super().restore(
                directory, args=ocp.args.StandardRestore(restoring.abstract())
            )
        except Exception as e:
            raise CheckpointCorruptedError(
                f"checkpoint {path} is damaged: its arrays cannot be read "
                f"({type(e).__name__}: {e})."
            ) from e
        return restoring.rebuild(arrays, meta)


@ocp.args.register_with_handler(MetaHandler, for_save=True)
@dataclasses.dataclass
class MetaSave(ocp.args.CheckpointArgs):
    """The JSON record to write."""

    item: dict[str, Any]


@ocp.args.register_with_handler(MetaHandler, for_restore=True)
@dataclasses.dataclass
class MetaRestore(ocp.args.CheckpointArgs):
    """Read and check the JSON record."""

    restoring: Restoring


@ocp.args.register_with_handler(StateHandler, for_save=True)
@dataclasses.dataclass
class StateSave(ocp.args.CheckpointArgs):
    """The arrays to write: `{"params": {index: array}, "opt_state": {...}}`."""

    item: dict[str, Any]


@ocp.args.register_with_handler(StateHandler, for_restore=True)
@dataclasses.dataclass
class StateRestore(ocp.args.CheckpointArgs):
    """Read the arrays into the targets of `restoring`."""

    restoring: Restoring
