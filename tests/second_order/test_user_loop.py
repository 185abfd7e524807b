"""Every second-order solver, used step by step in a user's own jitted loop.

Cross-cutting over the solvers: float32 parameters stay float32 (no float64
leaks into the state even with x64 enabled), and the dense methods take mixed
float32/bfloat16 parameters. The reference is the closed-form Rosenbrock
minimum (all ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run


def _rosenbrock(p):
    return problems.rosenbrock(p["x"])


@pytest.mark.parametrize(
    "make",
    [so.lbfgs, so.bfgs, so.newton, so.newton_cg, so.conjugate_gradient],
    ids=["lbfgs", "bfgs", "newton", "newton_cg", "cg"],
)
def test_float32_rosenbrock_in_a_user_loop(make, x64):
    tx = make()
    params = {"x": jnp.array([-1.2, 1.0], jnp.float32)}
    params, state, _ = run(tx, _rosenbrock, params, 150)
    assert params["x"].dtype == jnp.float32
    float_dtypes = {
        leaf.dtype
        for leaf in jax.tree.leaves(state)
        if jnp.issubdtype(leaf.dtype, jnp.floating)
    }
    assert float_dtypes == {jnp.dtype(jnp.float32)}
    np.testing.assert_allclose(params["x"], [1.0, 1.0], atol=2e-3)


def test_dense_methods_take_mixed_dtype_parameters():
    """float32 and bfloat16 leaves together: raveled in float32, cast back."""
    params = {"w": jnp.ones(3), "h": jnp.ones(2, jnp.bfloat16)}

    def f(p):
        return jnp.sum(p["w"] ** 2) + jnp.sum(p["h"].astype(jnp.float32) ** 2)

    for tx in (so.bfgs(), so.newton()):
        state = tx.init(params)
        value, grads = jax.value_and_grad(f)(params)
        updates, state = tx.update(
            grads, state, params, value=value, grad=grads, value_fn=f
        )
        assert updates["h"].dtype == jnp.bfloat16
        assert float(f(gt.apply_updates(params, updates))) < float(value)
