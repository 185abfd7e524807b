"""Combinators: `chain`, `masked` and `partition`.

They delegate to optax's implementations (their states are optax's, so optax
tooling understands them) and add argument checks with clear errors.
`inject_hyperparams` is in `gradtransforms.injection`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradtransforms import tree as tu
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
)
from gradtransforms.validation import check_transformation

__all__ = ["chain", "masked", "partition"]


def chain(*transforms: GradientTransformation) -> GradientTransformationExtraArgs:
    """Apply transformations one after another: $u = f_n(\\cdots f_1(g))$.

    The state is the tuple of the inner states. Extra keyword arguments of
    `update` (`value`, `grad`, `value_fn`, ...) reach every inner
    transformation that accepts them, as in `optax.chain`; optax
    transformations may be mixed in freely.

    Args:
      *transforms: the transformations, applied left to right.

    Returns:
      A `GradientTransformationExtraArgs`. Its `update` raises `ValueError`
      naming the first differing path (and both leaves' shapes and dtypes)
      if `updates` and `params` differ in structure or in a leaf's shape, or
      if a complex update meets a real parameter.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.chain(gt.clip_by_global_norm(1.0), gt.scale_by_adam(),
      ...               gt.scale_by_learning_rate(1e-3))
    """
    for i, tx in enumerate(transforms):
        check_transformation(f"chain argument {i}", tx)
    return _checking_params(optax.chain(*transforms))


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply `inner` only where `mask` is `True`; elsewhere updates pass through.

    Args:
      inner: the transformation to apply to the selected leaves.
      mask: a pytree of bools with the structure of the parameters (or a
        prefix of it), or a callable `params -> mask`.

    Returns:
      The optax masked transformation (state `optax.MaskedState`); its
      `update` checks `updates` against `params`, when given, as `chain` does.
    """
    check_transformation("inner", inner)
    if not callable(mask):
        bad = [
            jax.tree_util.keystr(path)
            for path, leaf in jax.tree_util.tree_leaves_with_path(mask)
            if not isinstance(leaf, bool | np.bool_)
            and not (hasattr(leaf, "dtype") and leaf.dtype == jnp.bool_)
        ]
        if bad:
            raise TypeError(
                f"mask must be a pytree of bools or a callable; leaf at {bad[0]} "
                "is not a bool."
            )
    return _checking_params(optax.masked(inner, mask))


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    param_labels: Any,
) -> GradientTransformation:
    """Apply a different transformation to each labelled group of parameters.

    Args:
      transforms: `{label: transformation}`.
      param_labels: a pytree of labels with the parameters' structure, or a
        callable `params -> labels`. Every label must be a key of
        `transforms`.

    Returns:
      The optax partition transformation; its `update` checks `updates`
      against `params`, when given, as `chain` does.
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError("transforms must be a non-empty mapping {label: transform}.")
    for label, tx in transforms.items():
        check_transformation(f"transforms[{label!r}]", tx)
    inner = optax.partition(transforms, param_labels)

    def init_fn(params):
        labels = param_labels(params) if callable(param_labels) else param_labels
        missing = set(jax.tree.leaves(labels)) - set(transforms)
        if missing:
            raise ValueError(
                f"param_labels uses labels {sorted(map(str, missing))} that are "
                f"not keys of transforms ({sorted(map(str, transforms))})."
            )
        return inner.init(params)

    return _checking_params(GradientTransformationExtraArgs(init_fn, inner.update))


def _checking_params(tx: GradientTransformation) -> GradientTransformationExtraArgs:
    """`tx`, whose `update` first checks `updates` against `params` if given."""

    def update_fn(updates, state, params=None, **extra_args):
        if params is not None:
            tu.assert_updates_match(updates, params)
        return optax.with_extra_args_support(tx).update(
            updates, state, params, **extra_args
        )

    return GradientTransformationExtraArgs(tx.init, update_fn)
