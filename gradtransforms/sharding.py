"""Optimizer state laid out like the parameters, on JAX's own sharding.

Every moment of the optimizers here (`mu`, `nu`, `trace`, `sum_of_squares`,
averages) is an array shaped like its parameter, built by element-wise maths;
under `jax.jit` such state keeps whatever `jax.sharding` it is given, and the
update of a sharded parameter with a sharded moment needs no communication at
all. What JAX cannot guess is the layout of *new* state: `tx.init` builds
zeros that depend on no input, so a compiled `init` may place them anywhere
(replicated, typically). `state_shardings` says where each state leaf
belongs, so the state can be created sharded directly:

    shardings = gt.sharding.state_shardings(tx, params)
    opt_state = jax.jit(tx.init, out_shardings=shardings)(params)

(or `gt.sharding.init(tx, params)`, the same in one call). Nothing here
moves data itself: layouts are declared and XLA does the rest.

`params` may be concrete arrays or abstract `jax.ShapeDtypeStruct`s with
`sharding=` set (e.g. from `jax.eval_shape` of a model initialiser), so the
state of a model too large for one device is never materialised unsharded.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec, Sharding

from gradtransforms.base import GradientTransformation

__all__ = ["abstract_state", "init", "state_shardings"]


def _sharding_of(x: Any) -> Sharding | None:
    sharding = getattr(x, "sharding", None)
    return sharding if isinstance(sharding, Sharding) else None


def _replicated_like(shardings: list[Sharding]) -> Sharding:
    """A fully replicated sharding on the parameters' devices."""
    for s in shardings:
        if isinstance(s, NamedSharding):
            return NamedSharding(s.mesh, PartitionSpec())
    for s in shardings:
        if len(s.device_set) == 1:
            return s
    if shardings:  # some other sharding over several devices: replicate on them
        devices = sorted(shardings[0].device_set, key=lambda d: d.id)
        mesh = jax.sharding.Mesh(devices, ("_replica",))
        return NamedSharding(mesh, PartitionSpec())
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def abstract_state(tx: GradientTransformation, params: Any) -> Any:
    """`jax.eval_shape(tx.init, params)`: the state's shapes and dtypes.

    Works on concrete or abstract (`jax.ShapeDtypeStruct`) parameters; no
    array is allocated.
    """
    return jax.eval_shape(tx.init, params)


def state_shardings(tx: GradientTransformation, params: Any) -> Any:
    """The sharding of each leaf of `tx.init(params)`, in the state's structure.

    A state leaf that belongs to a parameter (its key path ends with the
    parameter's key path, and it has the parameter's shape: `mu['w']`,
    `trace['w']`, `inner_state[0].nu['w']`, ...) takes that parameter's
    sharding; everything else (counts, hyperparameters, flags, norms, the
    matrices of full-matrix methods such as BFGS) is replicated over the
    parameters' devices (the same mesh, `PartitionSpec()`).

    Args:
      tx: the transformation whose state is meant.
      params: the parameters, as arrays or `jax.ShapeDtypeStruct`s, each with
        a `.sharding` (leaves without one count as replicated).

    Returns:
      A pytree of `jax.sharding.Sharding` with the structure of the state,
      suitable as `out_shardings` of `jax.jit(tx.init)`.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> params = {"w": jnp.zeros((4, 2))}
      >>> tx = gt.adam(1e-3)
      >>> state = jax.jit(
      ...     tx.init, out_shardings=gt.sharding.state_shardings(tx, params)
      ... )(params)
    """
    param_leaves = jax.tree_util.tree_leaves_with_path(params)
    known = [s for _, x in param_leaves if (s := _sharding_of(x)) is not None]
    replicated = _replicated_like(known)
    by_path = [
        (tuple(path), tuple(x.shape), _sharding_of(x) or replicated)
        for path, x in param_leaves
    ]
    # Longest paths first: `['a']['w']` wins over `['w']`.
    by_path.sort(key=lambda item: -len(item[0]))

    def one(path, leaf):
        path = tuple(path)
        for p_path, p_shape, sharding in by_path:
            n = len(p_path)
            # (a single-array `params` has the empty path: shape decides)
            if (
                len(path) >= n
                and path[len(path) - n :] == p_path
                and tuple(leaf.shape) == p_shape
            ):
                return sharding
        return replicated

    return jax.tree_util.tree_map_with_path(one, abstract_state(tx, params))


def init(tx: GradientTransformation, params: Any) -> Any:
    """`tx.init(params)` compiled with the state laid out by `state_shardings`.

    Each moment is created directly in its parameter's sharding (on each
    device only its shard); nothing is built on one device and scattered.
    """
    return jax.jit(tx.init, out_shardings=state_shardings(tx, params))(params)
