"""The step a line search returns: the accepted multiple of the direction, or 0."""

from __future__ import annotations

from typing import Any

import jax

from gradtransforms import tree as tu

__all__ = ["scaled_or_zero"]


def scaled_or_zero(step: jax.Array, updates: Any) -> Any:
    """`step * updates` if `step > 0`, else exact zeros (never `0 * nan`)."""
    return tu.where(step > 0, tu.scale(step, updates), tu.zeros_like(updates))
