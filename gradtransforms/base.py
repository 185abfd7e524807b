"""Protocol types, `apply_updates` and the trivial transformations.

gradtransforms does not define look-alike protocol types: every transformation
built here *is* an `optax.GradientTransformation` (or
`optax.GradientTransformationExtraArgs`), so it goes inside `optax.chain`,
optax's transformations go inside ours, and `flax.nnx.Optimizer` accepts ours.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gradtransforms.tree import assert_updates_match
from gradtransforms.tree.dtypes import leaf_dtype
from gradtransforms.tree.structure import is_none

GradientTransformation = optax.GradientTransformation
GradientTransformationExtraArgs = optax.GradientTransformationExtraArgs
EmptyState = optax.EmptyState
OptState = optax.OptState
Params = optax.Params
Updates = optax.Updates
Schedule = optax.Schedule

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "OptState",
    "Params",
    "Schedule",
    "Updates",
    "apply_updates",
    "identity",
    "set_to_zero",
]


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return `params + updates`, leaf by leaf, in each parameter's dtype.

    $$\\theta \\leftarrow \\theta + u$$

    The sign convention is optax's: transformations emit updates that are
    *added*, so optimizers emit $-\\varepsilon\\,\\text{direction}$. Each sum is
    cast back to its parameter's dtype (a float32 update on a bfloat16
    parameter stays bfloat16). `None` leaves in `params` stay `None`.

    Args:
      params: a pytree of arrays.
      updates: a pytree with the same structure as `params`.

    Returns:
      The updated parameters, same structure and dtypes as `params`.

    Raises:
      ValueError: if the two trees differ; the message names the first
        differing path.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> gt.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
      {'w': Array([0.5, 0.5], dtype=float32)}
    """

    def add(p: Any, u: Any) -> Any:
        if p is None:  # optax's rule: a None parameter stays None
            return None
        p = jnp.asarray(p, leaf_dtype(p))
        return p + jnp.asarray(u).astype(p.dtype)

    assert_updates_match(updates, params)
    return jax.tree.map(add, params, updates, is_leaf=is_none)


def identity() -> GradientTransformation:
    """Pass updates through unchanged; stateless.

    $$u \\leftarrow g$$

    Returns:
      A `GradientTransformation` with `EmptyState`.
    """
    return optax.identity()


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes the parameters it is applied to).

    $$u \\leftarrow 0$$

    Typically used inside `partition` or `masked` to freeze part of a model.

    Returns:
      A `GradientTransformation` with `EmptyState`.
    """
    return optax.set_to_zero()
