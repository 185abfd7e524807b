"""Helpers shared by the line searches: scalars in the search's dtype, safe scaling."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtransforms import tree as tm

__all__ = ["scalar", "scaled_or_zero"]


def scalar(x: Any, dtype: Any) -> jax.Array:
    return jnp.asarray(x).astype(dtype)


def scaled_or_zero(step: jax.Array, updates: Any) -> Any:
    """`step * updates` if `step > 0`, else exact zeros (never `0 * nan`)."""

    def one(u):
        u = jnp.asarray(u)
        dtype = tm.accumulation_dtype(u.dtype)
        scaled = (step.astype(dtype) * u.astype(dtype)).astype(u.dtype)
        return jnp.where(step > 0, scaled, jnp.zeros_like(u))

    return jax.tree.map(one, updates)
