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

One compilation: `jax.jit` caches a step by its inputs' exact shardings, and
two equivalent specs (`P('x')` and `P('x', None)`, `P()` and `P(None,)`)
count as different inputs. A step that returns `P('x')` for a parameter that
came in as `P('x', None)` is looked up again, and cached twice, on its second
call. The helpers here return every `NamedSharding` in the one form JAX gives
a jitted function's outputs (`canonical`), so parameters placed with
`param_shardings` and state built by `init` go through a step unchanged;
`jax.jit(step, out_shardings=(param_shardings(params),
state_shardings(tx, params)))` pins them whatever the placement.

`params` may be concrete arrays or abstract `jax.ShapeDtypeStruct`s with
`sharding=` set (e.g. from `jax.eval_shape` of a model initialiser), so the
state of a model too large for one device is never materialised unsharded.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec, Sharding

from gradtransforms.base import GradientTransformation

__all__ = [
    "abstract_state",
    "canonical",
    "init",
    "param_shardings",
    "state_shardings",
]


def _sharding_of(x: Any) -> Sharding | None:
    sharding = getattr(x, "sharding", None)
    return sharding if isinstance(sharding, Sharding) else None


def canonical(sharding: Sharding, ndim: int) -> Sharding:
    """`sharding` in the form a jitted function gives its outputs of rank `ndim`.

    JAX compares shardings by their spec, not by their layout: a step whose
    output spec is written differently from its input's is looked up (and
    cached) again on the next call. On a mesh whose axes are all `Explicit`
    (the default of `jax.make_mesh` in JAX 0.10) an output's spec is its
    type's, one entry per dimension: `P('x', None)`, `P(None,)`. On an
    all-`Auto` mesh it is the spec read back from XLA, trailing `None`s
    dropped: `P('x')`, `P()`. A `NamedSharding` is rewritten in that form
    (the layout is the same); other shardings, and meshes that mix axis
    types, are returned as they are.

    Args:
      sharding: a `jax.sharding.Sharding`.
      ndim: the rank of the array it lays out.

    Returns:
      A sharding equivalent to `sharding` for rank `ndim`.
    """
    if not isinstance(sharding, NamedSharding) or len(sharding.spec) > ndim:
        return sharding
    kinds = set(getattr(sharding.mesh, "axis_types", ()))
    spec = list(sharding.spec)
    if kinds == {AxisType.Explicit}:
        spec += [None] * (ndim - len(spec))
    elif kinds == {AxisType.Auto}:
        while spec and spec[-1] is None:
            spec.pop()
    else:
        return sharding
    if tuple(spec) == tuple(sharding.spec):
        return sharding
    return NamedSharding(sharding.mesh, PartitionSpec(*spec))


def _stacked(sharding: Sharding, ndim: int) -> Sharding | None:
    """The sharding of a stack `(k, *shape)` of arrays laid out by `sharding`.

    The new leading axis is not split: `P(None, *spec)`. `None` when that
    cannot be written (a sharding other than `NamedSharding` over several
    devices).
    """
    if isinstance(sharding, NamedSharding):
        spec = (*sharding.spec, *[None] * (ndim - len(sharding.spec)))
        return NamedSharding(sharding.mesh, PartitionSpec(None, *spec))
    return sharding if len(sharding.device_set) == 1 else None


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


def param_shardings(params: Any) -> Any:
    """The parameters' shardings, each in `canonical` form.

    `jax.device_put(params, param_shardings(params))` relabels the
    parameters without moving data, in the form in which a jitted step
    returns shardings, so that a step which keeps each layout compiles once.
    XLA may still choose another layout for an output (on a one-device mesh
    it may return `P()` for `P('x')`, the same placement): to be sure, give
    the step `in_shardings` and `out_shardings`. A leaf without a sharding (a NumPy
    array, a `ShapeDtypeStruct` without `sharding=`) is replicated over the
    other parameters' devices; `None` leaves stay `None`.

    Args:
      params: the parameters, as arrays or `jax.ShapeDtypeStruct`s.

    Returns:
      A pytree of `jax.sharding.Sharding` with the structure of `params`.
    """
    leaves = jax.tree.leaves(params)
    replicated = _replicated_like(
        [s for x in leaves if (s := _sharding_of(x)) is not None]
    )
    return jax.tree.map(
        lambda x: canonical(_sharding_of(x) or replicated, len(x.shape)), params
    )


def state_shardings(tx: GradientTransformation, params: Any) -> Any:
    """The sharding of each leaf of `tx.init(params)`, in the state's structure.

    A state leaf belongs to a parameter when its key path ends with the
    parameter's key path (`mu['w']`, `inner_state[0].nu['w']`,
    `s_memory['w']`, ...). If it has the parameter's shape (moments, traces,
    averages, the previous gradient and direction of conjugate gradients) it
    takes the parameter's sharding; if it is a stack of them, shape
    `(k, *param.shape)` (L-BFGS's `s_memory` and `y_memory`), it takes
    `P(None, *param_spec)`: the stack axis whole, each slice laid out like
    the parameter. Everything else (counts, hyperparameters, flags, norms,
    L-BFGS's `rho_memory`) is replicated over the parameters' devices (the
    same mesh, `PartitionSpec()`), and so is the dense $n \\times n$
    inverse Hessian of BFGS and its raveled vectors: they belong to no one
    parameter (BFGS is for a few thousand parameters at most; shard a large
    problem's state with L-BFGS). Every sharding is in `canonical` form.

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

    def owner(path, shape):
        for p_path, p_shape, sharding in by_path:
            n = len(p_path)
            # (a single-array `params` has the empty path: shape decides)
            if len(path) < n or path[len(path) - n :] != p_path:
                continue
            if shape == p_shape:
                return sharding
            if len(shape) == len(p_shape) + 1 and shape[1:] == p_shape:
                return _stacked(sharding, len(p_shape))
        return None

    def one(path, leaf):
        shape = tuple(leaf.shape)
        return canonical(owner(tuple(path), shape) or replicated, len(shape))

    return jax.tree_util.tree_map_with_path(one, abstract_state(tx, params))


def init(tx: GradientTransformation, params: Any) -> Any:
    """`tx.init(params)` compiled with the state laid out by `state_shardings`.

    Each moment is created directly in its parameter's sharding (on each
    device only its shard); nothing is built on one device and scattered.
    """
    return jax.jit(tx.init, out_shardings=state_shardings(tx, params))(params)
