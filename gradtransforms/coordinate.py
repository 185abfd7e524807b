"""Block coordinate descent (textbook §8.7.2).

Two forms:

* `block_coordinate_descent` — a transformation that lets one block of
  parameters move per step (blocks given by labels, as for `partition`),
  cycling through the blocks or drawing them at random. Every other block
  gets a zero update, and its inner state does not advance.
* `alternating_minimization` — exact block minimisation: each block is set to
  its minimiser with the others held fixed (closed-form solvers supplied by
  the user), sweep after sweep, in one compiled `lax.scan`.

The text's warning case, $f(x) = (x_1 - x_2)^2 + \\alpha(x_1^2 + x_2^2)$ with
small $\\alpha$, shows the weakness: each exact coordinate step only shrinks
the error by $1/(1+\\alpha)$, so convergence takes $O(1/\\alpha)$ sweeps while
Newton's method solves it in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.validation import (
    INT64_MAX,
    check_choice,
    check_int,
    check_positive_int,
    check_transformation,
)

__all__ = [
    "BlockCoordinateState",
    "alternating_minimization",
    "block_coordinate_descent",
]


class BlockCoordinateState(NamedTuple):
    """State of `block_coordinate_descent`."""

    count: jax.Array
    """int32 scalar: updates so far."""
    active_block: jax.Array
    """int32 scalar: index (into `blocks`) of the block moved last; -1 at first."""
    inner_states: tuple
    """One state of the inner transformation per block."""


def block_coordinate_descent(
    inner: GradientTransformation,
    param_labels: Any,
    *,
    blocks: Sequence[Hashable] | None = None,
    order: str = "cyclic",
    steps_per_block: int = 1,
    seed: int = 0,
) -> GradientTransformationExtraArgs:
    """Move one block of parameters per step; the others stay where they are.

    At update $k$ the active block is
    $b_k = \\lfloor k / m \\rfloor \\bmod B$ (`order="cyclic"`) or drawn
    uniformly from the $B$ blocks once every $m$ = `steps_per_block` updates
    (`order="random"`, reproducible from `seed`). The active block's updates
    come from its own copy of `inner`; every other block receives zeros and
    its copy of `inner` keeps its state unchanged (momenta do not decay while
    a block waits).

    Args:
      inner: the transformation applied to the active block (e.g. `gt.sgd(0.1)`).
      param_labels: a pytree of labels with the parameters' structure, or a
        callable `params -> labels`.
      blocks: the labels in visiting order (default: sorted labels).
      order: `"cyclic"` or `"random"`.
      steps_per_block: $m \\ge 1$, updates spent on a block before moving on.
      seed: seed of the random block order, an int in [-2**63, 2**63 - 1].

    Returns:
      A `GradientTransformationExtraArgs` with `BlockCoordinateState`.
    """
    check_transformation("inner", inner)
    check_choice("order", order, ("cyclic", "random"))
    check_positive_int("steps_per_block", steps_per_block)
    check_int("seed", seed, low=-INT64_MAX - 1, high=INT64_MAX)
    inner = optax.with_extra_args_support(inner)

    def labels_of(tree):
        return param_labels(tree) if callable(param_labels) else param_labels

    def block_order(tree):
        present = sorted(set(jax.tree.leaves(labels_of(tree))), key=str)
        if blocks is None:
            return present
        missing = set(present) - set(blocks)
        if missing:
            raise ValueError(
                f"param_labels uses labels {sorted(map(str, missing))} missing "
                f"from blocks {list(blocks)}."
            )
        return list(blocks)

    def masks(tree):
        labels = labels_of(tree)
        return [
            jax.tree.map(lambda lab, b=b: lab == b, labels) for b in block_order(tree)
        ]

    def init_fn(params):
        inner_states = tuple(
            optax.masked(inner, mask).init(params) for mask in masks(params)
        )
        if not inner_states:
            raise ValueError("param_labels defines no block.")
        return BlockCoordinateState(
            count=jnp.zeros([], jnp.int32),
            active_block=jnp.full([], -1, jnp.int32),
            inner_states=inner_states,
        )

    def update_fn(updates, state, params=None, **extra_args):
        tree_masks = masks(params if params is not None else updates)
        num_blocks = len(tree_masks)
        period = state.count // steps_per_block
        if order == "cyclic":
            active = period % num_blocks
        else:
            key = jax.random.fold_in(jax.random.key(seed), period)
            active = jax.random.randint(key, (), 0, num_blocks)

        def branch(i):
            def move_block_i(operand):
                grads, inner_states = operand
                tx = optax.masked(inner, tree_masks[i])
                out, new_state = tx.update(grads, inner_states[i], params, **extra_args)
                out = jax.tree.map(
                    lambda u, keep: u if keep else jnp.zeros_like(u), out, tree_masks[i]
                )
                return out, (*inner_states[:i], new_state, *inner_states[i + 1 :])

            return move_block_i

        out, inner_states = jax.lax.switch(
            active,
            [branch(i) for i in range(num_blocks)],
            (updates, state.inner_states),
        )
        return out, BlockCoordinateState(
            count=tu.safe_increment(state.count),
            active_block=jnp.asarray(active, jnp.int32),
            inner_states=inner_states,
        )

    return GradientTransformationExtraArgs(init_fn, update_fn)


def alternating_minimization(
    block_minimizers: Sequence[Callable[[Any], Any]],
    init_params: Any,
    num_sweeps: int,
) -> tuple[Any, Any]:
    """Exact block coordinate descent: minimise over one block at a time.

    One sweep applies every minimiser in turn,
    $\\theta \\leftarrow \\operatorname{argmin}_{\\theta_b} f(\\theta)$ for
    $b = 1, \\dots, B$, each holding the other blocks fixed (§8.7.2; e.g. the
    sparse-coding problem, alternating between the code and the dictionary).
    The whole run is one compiled `lax.scan`.

    Args:
      block_minimizers: functions `params -> params`, each returning the
        parameters with its block replaced by the minimiser given the rest.
      init_params: the starting parameters.
      num_sweeps: number of sweeps through all blocks, >= 1.

    Returns:
      `(params, history)`: the final parameters, and the parameters after
      every sweep stacked along a new leading axis.
    """
    check_positive_int("num_sweeps", num_sweeps)
    minimizers = list(block_minimizers)
    if not minimizers or not all(callable(f) for f in minimizers):
        raise TypeError("block_minimizers must be a non-empty sequence of callables.")

    def sweep(params, _):
        for minimize_block in minimizers:
            params = minimize_block(params)
        return params, params

    return jax.lax.scan(sweep, init_params, length=num_sweeps)
