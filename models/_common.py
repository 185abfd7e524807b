"""Argument checks shared by the models."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["check_callable", "check_features"]


def check_features(name: str, features: Any, min_len: int) -> tuple[int, ...]:
    """Return `features` as a tuple of ints > 0, or raise naming `name`."""
    if isinstance(features, str | bytes) or not isinstance(features, Sequence):
        raise TypeError(f"{name} must be a sequence of ints > 0; got {features!r}.")
    for f in features:
        if isinstance(f, bool) or not isinstance(f, numbers.Integral) or f <= 0:
            raise ValueError(f"{name} must hold ints > 0; got {features!r}.")
    if len(features) < min_len:
        raise ValueError(
            f"{name} must have at least {min_len} entries; got {features!r}."
        )
    return tuple(int(f) for f in features)


def check_callable(name: str, value: Any) -> None:
    """Require a callable (an initialiser or an activation function)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {value!r}.")
