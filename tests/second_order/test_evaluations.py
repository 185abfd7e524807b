"""The evaluation records `minimize` reads from optimizer states.

The reference is a host-side count of the objective's executions
(`jax.debug.callback`), independent of the records under test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradtransforms import second_order as so
from gradtransforms.objective import Evaluation
from gradtransforms.optimizers import sgd
from gradtransforms.second_order.evaluations import evaluations, value_after
from tests.second_order.loop import count_evaluations


def _bowl(x):
    return jnp.sum((x - 1.0) ** 2)


def test_records_are_found_in_ours_and_optax_states_only():
    x = jnp.zeros(3)
    ours = evaluations(so.lbfgs().init(x))
    assert len(ours) == 1 and isinstance(ours[0], Evaluation)
    with jax.numpy_dtype_promotion("standard"):
        theirs = evaluations(optax.lbfgs().init(x))
    assert len(theirs) == 1 and int(theirs[0].num_fun_evals) == 0
    assert evaluations(sgd(0.1).init(x)) == []


def test_a_stored_finite_value_is_reused_without_evaluating():
    fun, calls = count_evaluations(_bowl)
    x = jnp.array([0.5, 2.0])
    grad = jax.grad(_bowl)(x)
    record = Evaluation(_bowl(x), grad, jnp.int32(3), jnp.int32(3))

    def evaluate(p):
        return jax.value_and_grad(fun)(p)

    value, g, fun_evals, grad_evals = value_after(evaluate, (record,), x)
    jax.block_until_ready(value)
    assert calls == []  # nothing evaluated: the record's values are used
    assert int(fun_evals) == 3 and int(grad_evals) == 3
    np.testing.assert_allclose(value, 1.25)
    np.testing.assert_allclose(g, [-1.0, 2.0])


def test_a_non_finite_stored_value_is_evaluated_again():
    fun, calls = count_evaluations(_bowl)
    x = jnp.array([0.5, 2.0])
    record = Evaluation(jnp.inf, jnp.zeros(2), jnp.int32(2), jnp.int32(2))

    def evaluate(p):
        return jax.value_and_grad(fun)(p)

    value, g, fun_evals, grad_evals = value_after(evaluate, (record,), x)
    jax.block_until_ready(value)
    assert len(calls) == 1 and int(fun_evals) == 3 and int(grad_evals) == 3
    np.testing.assert_allclose(value, 1.25)
    np.testing.assert_allclose(g, [-1.0, 2.0])


def test_without_records_the_point_is_evaluated():
    fun, calls = count_evaluations(_bowl)
    x = jnp.array([0.5, 2.0])
    value, _, fun_evals, grad_evals = value_after(
        lambda p: jax.value_and_grad(fun)(p), sgd(0.1).init(x), x
    )
    jax.block_until_ready(value)
    assert len(calls) == 1 and int(fun_evals) == 1 and int(grad_evals) == 1
