"""Argument checks shared by the models."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from gradtransforms.validation import (
    INT32_MAX,
    check_bool,
    check_callable,
    check_float_dtype,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

__all__ = ["check_features", "check_layer_options", "check_per_block"]


def check_features(name: str, features: Any, min_len: int) -> tuple[int, ...]:
    """Return `features` as a tuple of ints > 0, or raise naming `name`."""
    if isinstance(features, str | bytes) or not isinstance(features, Sequence):
        raise TypeError(f"{name} must be a sequence of ints > 0; got {features!r}.")
    for f in features:
        if isinstance(f, bool) or not isinstance(f, numbers.Integral):
            raise ValueError(f"{name} must hold ints > 0; got {features!r}.")
        if not 0 < int(f) <= INT32_MAX:
            raise ValueError(
                f"{name} must hold ints > 0 (at most 2**31 - 1); got {f!r}."
            )
    if len(features) < min_len:
        raise ValueError(
            f"{name} must have at least {min_len} entries; got {features!r}."
        )
    return tuple(int(f) for f in features)


def check_per_block(name: str, value: Any, num_blocks: int) -> tuple[int, ...]:
    """One int > 0 per block: `value` itself for every block, or one per block."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        check_positive_int(name, value)
        return (int(value),) * num_blocks
    values = check_features(name, value, min_len=1)
    if len(values) != num_blocks:
        raise ValueError(
            f"{name} must be an int or hold one int per block ({num_blocks}, as "
            f"many as channels); got {value!r}."
        )
    return values


def check_layer_options(
    *,
    activation: Any,
    batch_norm_momentum: Any,
    batch_norm_epsilon: Any,
    batch_norm: Any = False,
    dtype: Any = None,
    param_dtype: Any = "float32",
    **initialisers: Any,
) -> None:
    """The checks every model makes of its layer options, in one order.

    Each initialiser (`kernel_init=...`, `bias_init=...`) and the activation
    must be callable; BatchNorm's momentum must lie in [0, 1) and its epsilon
    be a finite number > 0; `batch_norm` a bool; `dtype` a floating dtype
    or None (the inputs'), `param_dtype` a floating dtype.
    """
    for name, init in initialisers.items():
        check_callable(name, init)
    check_callable("activation", activation)
    check_unit_interval("batch_norm_momentum", batch_norm_momentum)
    check_positive("batch_norm_epsilon", batch_norm_epsilon)
    check_bool("batch_norm", batch_norm)
    check_float_dtype("dtype", dtype, optional=True)
    check_float_dtype("param_dtype", param_dtype)
