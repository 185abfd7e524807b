"""What can go wrong when restoring, each with its own exception type.

- `FileNotFoundError`: no folder at the path, an empty folder, a folder
  holding no checkpoint.
- `CheckpointCorruptedError`: a save that did not finish (Orbax's temporary
  folder, an item missing); metadata or arrays that cannot be read (not
  JSON, not UTF-8, damaged or missing array files).
- `CheckpointMismatchError`: trees of another structure, shape or dtype;
  another optimizer, or the same one configured otherwise; another format.

Each message names the checkpoint's path. Both classes are `ValueError`s.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ITEMS",
    "CheckpointCorruptedError",
    "CheckpointMismatchError",
    "check_folder",
]

# The Orbax items of a gradtransforms checkpoint: the arrays and the JSON.
ITEMS = ("meta", "state")
# Orbax writes a checkpoint into a folder of this name, renamed when complete.
_TEMPORARY_MARK = ".orbax-checkpoint-tmp"
# Files Orbax writes into every checkpoint it has finished.
_ORBAX_FILES = ("_CHECKPOINT_METADATA",)


class CheckpointMismatchError(ValueError):
    """The trees or the optimizer to restore into do not match the checkpoint's."""


class CheckpointCorruptedError(ValueError):
    """The checkpoint is incomplete or damaged: it cannot be read as written."""


def _listing(path: Path) -> str:
    names = sorted(p.name for p in path.iterdir())
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return shown


def check_folder(path: str | os.PathLike) -> Path:
    """The absolute path of a complete checkpoint folder, or the error why not.

    Raises:
      FileNotFoundError: no folder at `path`, an empty folder, or a folder
        holding no checkpoint (the message lists what it holds, e.g. the
        numbered steps of a `CheckpointManager` directory).
      CheckpointCorruptedError: a checkpoint whose save did not finish.
    """
    path = Path(os.path.abspath(os.fspath(path)))
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: there is no such folder.")
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}: it is a file, not a folder.")
    entries = {p.name for p in path.iterdir()}
    if not entries:
        raise FileNotFoundError(f"no checkpoint at {path}: the folder is empty.")
    if _TEMPORARY_MARK in path.name:
        raise CheckpointCorruptedError(
            f"checkpoint {path} is incomplete: it is the temporary folder of a "
            "save that did not finish. Restore the last complete checkpoint."
        )
    found = [name for name in (*ITEMS, *_ORBAX_FILES) if name in entries]
    if not found:
        raise FileNotFoundError(
            f"no checkpoint at {path}: the folder holds {_listing(path)}, not a "
            "gradtransforms checkpoint (for a CheckpointManager's directory, "
            "pass one of its step folders)."
        )
    missing = [name for name in ITEMS if not (path / name).is_dir()]
    if missing:
        raise CheckpointCorruptedError(
            f"checkpoint {path} is incomplete: its {' and '.join(missing)} "
            f"item{'s are' if len(missing) > 1 else ' is'} missing (it holds "
            f"{_listing(path)})."
        )
    return path
