"""Combinators: `chain`, `masked`, `partition` and `inject_hyperparams`.

`chain`, `masked` and `partition` delegate to optax's implementations (their
states are optax's, so optax tooling understands them) and add argument
checks with clear errors. `inject_hyperparams` is our own: which arguments are
hyperparameters, schedules or static is stated by the caller, never guessed
from a signature.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NamedTuple

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

__all__ = [
    "InjectHyperparamsState",
    "chain",
    "inject_hyperparams",
    "masked",
    "partition",
]


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
      naming the first differing path if `updates` and `params` differ in
      structure.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.chain(gt.clip_by_global_norm(1.0), gt.scale_by_adam(),
      ...               gt.scale_by_learning_rate(1e-3))
    """
    for i, tx in enumerate(transforms):
        check_transformation(f"chain argument {i}", tx)
    inner = optax.chain(*transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if params is not None:
            tu.assert_same_structure(updates, params, "updates", "params")
        return inner.update(updates, state, params, **extra_args)

    return GradientTransformationExtraArgs(inner.init, update_fn)


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply `inner` only where `mask` is `True`; elsewhere updates pass through.

    Args:
      inner: the transformation to apply to the selected leaves.
      mask: a pytree of bools with the structure of the parameters (or a
        prefix of it), or a callable `params -> mask`.

    Returns:
      The optax masked transformation (state `optax.MaskedState`).
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
    return optax.masked(inner, mask)


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
      The optax partition transformation.
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

    return GradientTransformationExtraArgs(init_fn, inner.update)


# --------------------------------------------------------------------------
# inject_hyperparams


class InjectHyperparamsState(NamedTuple):
    """State of `inject_hyperparams` (field names as optax's)."""

    count: jax.Array  # int32 scalar: updates so far (the schedules' input)
    hyperparams: dict[str, jax.Array]  # current values, scalar arrays
    inner_state: Any


def _is_static_value(value: Any) -> bool:
    """None, bools, strings and dtypes: values that cannot be hyperparameters.

    Dtypes are checked here because `jnp.bfloat16` is a class, hence callable,
    and would otherwise be taken for a schedule.
    """
    if value is None or isinstance(value, bool | str | np.bool_ | np.dtype | type):
        return True
    return False


def inject_hyperparams(
    factory: Callable[..., GradientTransformation],
    *,
    static_args: Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    """Make an optimizer's numeric hyperparameters arrays in its state.

    `inject_hyperparams(factory, static_args=...)(**kwargs)` builds
    `factory(**kwargs)` so that its hyperparameters live in
    `state.hyperparams` and can be read, changed between steps, scheduled or
    `vmap`-ed. The keyword arguments are sorted by an explicit rule:

    * names listed in `static_args`, and values that are `bool`, `None`,
      `str` or a dtype, are passed through unchanged (e.g. `nesterov=True`,
      `mu_dtype=jnp.bfloat16`); a mask (a pytree or a function) must be listed
      in `static_args`;
    * a callable value is a *schedule* of the update count; its value is
      computed each step and stored in `state.hyperparams[name]`;
    * every other value must be a number or scalar array: it is stored as an
      array in `state.hyperparams[name]`.

    Arguments are keywords only. Numbers are validated once, here, by building
    `factory` with them (schedules at step 0).

    Args:
      factory: an optimizer or transformation factory, e.g. `gt.adam`.
      static_args: names of arguments that are not hyperparameters (masks,
        dtypes, callables that are not schedules).
      hyperparam_dtype: dtype of the stored values (default: JAX's default
        float, float64 under x64, so a float64 run stays exact).

    Returns:
      A function of keyword arguments returning a
      `GradientTransformationExtraArgs` with `InjectHyperparamsState`.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1, momentum=0.9)
      >>> state = tx.init({"w": jnp.zeros(3)})
      >>> state = state._replace(
      ...     hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(0.01)})
    """
    static_names = frozenset(static_args)

    def build(*args, **kwargs):
        if args:
            raise TypeError(
                "inject_hyperparams(...)(...) takes keyword arguments only, so "
                f"every hyperparameter is named; got {len(args)} positional."
            )
        static, schedules, numeric = {}, {}, {}
        for name, value in kwargs.items():
            if name in static_names or _is_static_value(value):
                static[name] = value
            elif callable(value):
                schedules[name] = value
            elif _is_scalar(value):
                numeric[name] = value
            else:
                raise TypeError(
                    f"{name}={value!r} is neither a number, a schedule nor "
                    "static; list it in inject_hyperparams(..., "
                    f"static_args=({name!r},)) to pass it through unchanged."
                )
        # Validate once, with concrete values (schedules at step 0).
        factory(
            **static, **numeric, **{k: _concrete(s(0)) for k, s in schedules.items()}
        )
        dtype = hyperparam_dtype or jnp.result_type(float)

        def values_at(count, hyperparams):
            out = dict(hyperparams)
            for k, s in schedules.items():
                out[k] = jnp.asarray(s(count), dtype)
            return out

        def init_fn(params):
            count = jnp.zeros([], jnp.int32)
            hp = {k: jnp.asarray(v, dtype) for k, v in numeric.items()}
            hp = values_at(count, hp)
            inner = factory(**static, **hp)
            return InjectHyperparamsState(count, hp, inner.init(params))

        def update_fn(updates, state, params=None, **extra_args):
            hp = values_at(state.count, state.hyperparams)
            inner = optax.with_extra_args_support(factory(**static, **hp))
            updates, inner_state = inner.update(
                updates, state.inner_state, params, **extra_args
            )
            return updates, InjectHyperparamsState(
                tu.safe_increment(state.count), hp, inner_state
            )

        return GradientTransformationExtraArgs(init_fn, update_fn)

    return build


def _is_scalar(value: Any) -> bool:
    if isinstance(value, int | float | np.number):
        return True
    return hasattr(value, "shape") and hasattr(value, "dtype") and value.shape == ()


def _concrete(value: Any) -> Any:
    """A schedule's value at step 0 as a Python float, when concrete."""
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return value
