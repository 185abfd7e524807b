"""Helpers of the second-order tests: `run` scans a transformation in a user's
own loop; `count_evaluations` counts an objective's executions on the host."""

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


def count_evaluations(fun):
    """`fun` plus a host-side count of its executions (independent of ours)."""
    calls = []

    def counted(params):
        jax.debug.callback(lambda: calls.append(1))
        return fun(params)

    return counted, calls
