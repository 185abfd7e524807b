"""Averaging of iterates (textbook §8.7.3): Polyak and exponential averages.

Both are pass-through transformations: the updates leave unchanged, and the
state keeps a running average of the *parameters after each update*,
$\\theta^{(1)}, \\dots, \\theta^{(t)}$ — so place them last in a chain, after
the learning rate. Training continues from the raw iterate; the average is
what one evaluates (`averaged_params`, `averaged_model`).

All three averages are one running weighted mean,
$\\hat\\theta \\leftarrow \\hat\\theta + w_n(\\theta^{(t)} - \\hat\\theta)$ over
the $n$-th averaged iterate, with

* Polyak: $w_n = 1/n$, giving $\\hat\\theta = \\frac1n \\sum_i \\theta^{(i)}$;
* EMA (eq. 8.39) from the initial parameters: $w_n = 1 - \\alpha$;
* EMA debiased (from zero, divided by $1 - \\alpha^n$):
  $w_n = (1 - \\alpha)/(1 - \\alpha^n)$.

The debiased form stores the already-corrected average, so evaluating it
needs no extra state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation
from gradtransforms.validation import (
    check_bool,
    check_float_dtype,
    check_non_negative_int,
    check_unit_interval,
)

__all__ = [
    "AverageState",
    "averaged_params",
    "ema_average",
    "polyak_average",
]


class AverageState(NamedTuple):
    """State of `polyak_average` and `ema_average`."""

    count: jax.Array
    """int32 scalar: updates seen so far (iterates $\\theta^{(1)}\\dots$)."""
    average: Any
    """Like params, in the accumulator dtype: the current average."""


def _copy(p: Any, dtype: Any) -> jax.Array:
    """A copy of `p` in `dtype`; zeros for an abstract `jax.ShapeDtypeStruct`."""
    if isinstance(p, jax.ShapeDtypeStruct):  # a restore or sharding target
        return jnp.zeros(p.shape, dtype)
    return jnp.array(p, dtype=dtype)


def _running_average(weight_fn, start_step: int, accumulator_dtype: Any):
    """The shared pass-through: average the iterates after `start_step` updates.

    Before the first averaged iterate the average tracks the current
    parameters, so it always holds something one can evaluate.
    """

    def dtype_of(p):
        return accumulator_dtype or tu.accumulation_dtype(jnp.result_type(p))

    def init_fn(params):
        # A copy, never an alias of the parameters: callers donate both.
        average = jax.tree.map(lambda p: _copy(p, dtype_of(p)), params)
        return AverageState(count=jnp.zeros([], jnp.int32), average=average)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "averaging needs the parameters: call update(updates, state, params)."
            )
        tu.assert_updates_match(updates, params)
        tu.assert_state_matches(state.average, params, "params")
        count = tu.safe_increment(state.count)
        n = count - start_step  # how many iterates this average now includes

        def one(p, u, avg):
            theta = jnp.asarray(p).astype(avg.dtype) + jnp.asarray(u).astype(avg.dtype)
            w = jnp.where(n > 0, weight_fn(n, avg.dtype), jnp.ones([], avg.dtype))
            return avg + w * (theta - avg)

        average = jax.tree.map(one, params, updates, state.average)
        return updates, AverageState(count=count, average=average)

    return GradientTransformation(init_fn, update_fn)


def polyak_average(
    start_step: int = 0, accumulator_dtype: Any = None
) -> GradientTransformation:
    """Polyak averaging (§8.7.3): the arithmetic mean of the iterates.

    $$\\hat\\theta^{(t)} = \\frac{1}{t - s} \\sum_{i=s+1}^{t} \\theta^{(i)}$$

    with $s$ = `start_step` (iterates from earlier updates are left out).
    A pass-through: place it last in the chain.

    Args:
      start_step: number of updates to skip before averaging starts.
      accumulator_dtype: dtype of the average (default float32, or float64 for
        float64 parameters; bfloat16 parameters average in float32).

    Returns:
      A `GradientTransformation` with `AverageState`; its `update` needs
      `params`.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.chain(gt.sgd(0.5), gt.polyak_average())
    """
    check_non_negative_int("start_step", start_step)
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )
    return _running_average(
        lambda n, dtype: 1 / n.astype(dtype), start_step, accumulator_dtype
    )


def ema_average(
    decay: float,
    debias: bool = True,
    start_step: int = 0,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    """Exponential moving average of the iterates (textbook eq. 8.39).

    $$\\hat\\theta^{(t)} = \\alpha\\hat\\theta^{(t-1)} + (1 - \\alpha)\\theta^{(t)}$$

    With `debias=False` the average starts from the parameters at
    `start_step` (the initial parameters by default), as torch, Keras and
    Flax do. With `debias=True` it starts from zero and is divided by
    $1 - \\alpha^n$ after $n$ averaged iterates, so early averages are not
    pulled towards zero (or towards the initialisation).

    Args:
      decay: $\\alpha \\in [0, 1)$.
      debias: start from zero and divide by $1 - \\alpha^n$.
      start_step: number of updates before averaging starts.
      accumulator_dtype: dtype of the average (default float32 or wider).

    Returns:
      A `GradientTransformation` with `AverageState`; its `update` needs
      `params`.
    """
    check_unit_interval("decay", decay)
    check_bool("debias", debias)
    check_non_negative_int("start_step", start_step)
    check_float_dtype(
        "accumulator_dtype", accumulator_dtype, optional=True, inexact=True
    )
    if debias:

        def weight(n, dtype):
            return tu.complement(decay, dtype) / tu.one_minus_power(decay, n, dtype)

    else:

        def weight(n, dtype):
            return tu.complement(decay, dtype)

    return _running_average(weight, start_step, accumulator_dtype)


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def averaged_params(opt_state: Any, params: Any = None) -> Any:
    """Find the parameter average anywhere inside an optimizer state.

    Looks through `chain`, `masked`, `partition`, `inject_hyperparams` and
    any other nesting for the `AverageState` of `polyak_average` or
    `ema_average`. Under `partition`, each group's average is merged into
    one tree. Leaves that no average covers (masked out) are taken from
    `params` when given.

    Args:
      opt_state: an optimizer state.
      params: the current parameters, to fill leaves no average covers.

    Returns:
      The averaged parameters (in the accumulator dtype; cast them with
      `jax.tree.map` if needed).

    Raises:
      ValueError: if the state holds no average, or leaves are uncovered and
        `params` is not given.
    """
    found = [x.average for x in tu.find_states(opt_state, AverageState)]
    if not found:
        raise ValueError(
            "opt_state holds no parameter average; add gt.polyak_average() or "
            "gt.ema_average(decay) at the end of the chain."
        )

    def merge(*leaves):
        for leaf in leaves:
            if not _is_masked(leaf):
                return leaf
        return leaves[0]

    merged = jax.tree.map(merge, *found, is_leaf=_is_masked)
    uncovered = [
        x for x in jax.tree.leaves(merged, is_leaf=_is_masked) if _is_masked(x)
    ]
    if uncovered:
        if params is None:
            raise ValueError(
                "the average covers only some parameters (masked or partitioned); "
                "pass params= to fill in the others."
            )
        merged = jax.tree.map(
            lambda a, p: p if _is_masked(a) else a, merged, params, is_leaf=_is_masked
        )
    return merged
