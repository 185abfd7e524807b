"""Early stopping (textbook §8.1.2) as a pure state machine usable inside `jit`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.validation import (
    check_bool,
    check_choice,
    check_non_negative,
    check_positive_int,
)

__all__ = ["EarlyStopping", "EarlyStoppingState", "early_stopping"]


class EarlyStoppingState(NamedTuple):
    """State of `early_stopping`."""

    step: jax.Array
    """int32: number of evaluations seen."""
    best_value: jax.Array
    """The best validation value so far (+inf or -inf before any)."""
    best_step: jax.Array
    """int32: the evaluation index (0-based) of `best_value`; -1 before any."""
    num_bad: jax.Array
    """int32: evaluations since the last improvement."""
    should_stop: jax.Array
    """bool: `num_bad >= patience`."""
    best_params: Any
    """A copy of the parameters at `best_step` (None unless kept)."""


class EarlyStopping(NamedTuple):
    """The pure `(init, update)` pair returned by `early_stopping`."""

    init: Callable[..., EarlyStoppingState]
    """`init(params=None) -> state`."""
    update: Callable[..., EarlyStoppingState]
    """`update(state, value, params=None) -> state`."""


def early_stopping(
    patience: int,
    *,
    min_delta: float = 0.0,
    mode: str = "min",
    keep_best_params: bool = False,
) -> EarlyStopping:
    """Early stopping (§8.1.2) as a pure state machine usable inside `jit`.

    After each validation evaluation $v_k$: it improves on the best value
    $v^*$ if $v_k < v^* - \\delta$ (`mode="min"`) or $v_k > v^* + \\delta$
    (`mode="max"`); then $v^*$, its step and (optionally) the parameters are
    recorded and the patience counter resets, otherwise the counter grows.
    `should_stop` turns on once `patience` evaluations in a row failed to
    improve. NaN values never improve. Restore `state.best_params` at the end
    (the book's "return the best parameters seen").

    Args:
      patience: evaluations without improvement before stopping, >= 1.
      min_delta: $\\delta \\ge 0$, the least change that counts as improvement.
      mode: `"min"` (a loss) or `"max"` (an accuracy).
      keep_best_params: keep a copy of the best parameters in the state
        (costs one copy of the parameters).

    Returns:
      An `EarlyStopping(init, update)` pair.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> es = gt.training.early_stopping(patience=2)
      >>> state = es.init()
      >>> for v in [3.0, 2.0, 2.5, 2.4]:
      ...     state = es.update(state, jnp.asarray(v))
      >>> int(state.best_step), bool(state.should_stop)
      (1, True)
    """
    check_positive_int("patience", patience)
    check_non_negative("min_delta", min_delta)
    check_bool("keep_best_params", keep_best_params)
    check_choice("mode", mode, ("min", "max"))
    sign = 1.0 if mode == "min" else -1.0

    def init(params: Any = None) -> EarlyStoppingState:
        if keep_best_params and params is None:
            raise ValueError("keep_best_params=True needs init(params).")
        best_params = jax.tree.map(jnp.array, params) if keep_best_params else None
        return EarlyStoppingState(
            step=jnp.zeros([], jnp.int32),
            best_value=jnp.asarray(sign * jnp.inf),
            best_step=jnp.full([], -1, jnp.int32),
            num_bad=jnp.zeros([], jnp.int32),
            should_stop=jnp.asarray(False),
            best_params=best_params,
        )

    def update(
        state: EarlyStoppingState, value: Any, params: Any = None
    ) -> EarlyStoppingState:
        if keep_best_params and params is None:
            raise ValueError(
                "keep_best_params=True needs update(state, value, params)."
            )
        value = jnp.asarray(value).astype(state.best_value.dtype)
        margin = jnp.asarray(min_delta, value.dtype)
        if mode == "min":
            improved = value < state.best_value - margin
        else:
            improved = value > state.best_value + margin
        num_bad = jnp.where(improved, 0, state.num_bad + 1)
        best_params = state.best_params
        if keep_best_params:
            best_params = tu.where(improved, params, best_params)
        return EarlyStoppingState(
            step=state.step + 1,
            best_value=jnp.where(improved, value, state.best_value),
            best_step=jnp.where(improved, state.step, state.best_step),
            num_bad=num_bad,
            should_stop=num_bad >= patience,
            best_params=best_params,
        )

    return EarlyStopping(init, update)
