"""A user's own loop for the second-order tests: `run` scans a transformation."""

from __future__ import annotations

import jax
import optax


def run(tx, fun, params, steps, value_fn=None, **fn_kwargs):
    """`steps` updates in one jitted scan; returns every iterate and the state.

    `fun` gives the value and gradient; `value_fn` (default `fun`) is what the
    transformation receives.
    """

    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(fun)(params, **fn_kwargs)
        updates, state = tx.update(
            grad,
            state,
            params,
            value=value,
            grad=grad,
            value_fn=value_fn or fun,
            **fn_kwargs,
        )
        params = optax.apply_updates(params, updates)
        return (params, state), params

    @jax.jit
    def run(params):
        return jax.lax.scan(step, (params, tx.init(params)), length=steps)

    (params, state), trajectory = run(params)
    return params, state, trajectory
