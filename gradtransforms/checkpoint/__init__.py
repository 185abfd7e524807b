"""Checkpoints of (parameters, optimizer state, step) with Orbax.

`save` writes, and `restore` reads back bit for bit, plain pytrees and Flax
NNX objects alike: a model (BatchNorm statistics and PRNG keys included), an
`nnx.Optimizer`, any `nnx.State`. The arrays are written by Orbax
(`orbax.checkpoint`, which handles sharded and multi-process arrays); next to
them a JSON item records the step, a description of both trees (each node's
key path and container type, each leaf's dtype and shape), and a
`fingerprint` of the optimizer: its transformations and hyperparameters.

`restore` compares that record with what it is asked to fill *before*
reading any array: restoring into other trees (another structure, shape or
dtype) or into a differently configured optimizer (Polyak instead of EMA
averaging, Nesterov instead of heavy-ball momentum, NAdam instead of Adam,
another learning rate) raises a `CheckpointMismatchError` naming the first
difference. Every other failure has its own type too: `FileNotFoundError`
for no checkpoint, `CheckpointCorruptedError` for an incomplete or damaged
one; each message names the path.

    import gradtransforms as gt
    gt.checkpoint.save("/tmp/run/step_100", model, optimizer, step=100)
    model, optimizer, step = gt.checkpoint.restore(
        "/tmp/run/step_100", model, optimizer)

For rotating checkpoints (keep the last *n*, save every *k* steps) use
`orbax.checkpoint.CheckpointManager` with `save_args` / `restore_args`: the
same Orbax arguments, the same checks.
"""

from gradtransforms.checkpoint.errors import (
    CheckpointCorruptedError,
    CheckpointMismatchError,
)
from gradtransforms.checkpoint.fingerprint import fingerprint
from gradtransforms.checkpoint.saving import restore, restore_args, save, save_args
from gradtransforms.checkpoint.trees import describe

__all__ = [
    "CheckpointCorruptedError",
    "CheckpointMismatchError",
    "describe",
    "fingerprint",
    "restore",
    "restore_args",
    "save",
    "save_args",
]
