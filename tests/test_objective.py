"""objective.py: calling value_fn with the keywords it accepts; Evaluation.

The line-search case is checked against closed forms on f(x) = |x|².
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import second_order as so
from gradtransforms.objective import Evaluation, check_call, objective


def test_objective_passes_only_the_keywords_value_fn_accepts():
    def value_fn(params, batch, scale=1.0):
        return scale * jnp.sum((params - batch) ** 2)

    f = objective(value_fn, {"batch": jnp.ones(2), "scale": 3.0}, False, "owner")
    np.testing.assert_allclose(f(jnp.zeros(2)), 6.0)
    with pytest.raises(TypeError, match=r"owner\.update .*\['other'\]"):
        objective(value_fn, {"batch": jnp.ones(2), "other": 1}, False, "owner")


def test_objective_with_var_keyword_takes_everything_and_drops_aux():
    def value_fn(params, **kwargs):
        return jnp.sum(params) + kwargs["offset"], {"kwargs": sorted(kwargs)}

    f = objective(value_fn, {"offset": 1.0, "other": 2}, True, "owner")
    assert float(f(jnp.ones(3))) == 4.0  # the value only, aux dropped
    assert float(objective(lambda p: jnp.sum(p), {}, False, "o")(jnp.ones(2))) == 2.0


@pytest.mark.parametrize("value_fn", [None, 3.0])
def test_objective_needs_a_callable(value_fn):
    with pytest.raises(TypeError, match=r"owner\.update needs value_fn"):
        objective(value_fn, {}, False, "owner")


def test_evaluation_start_has_spent_nothing():
    record = Evaluation.start(value=1.0)
    assert record.value == 1.0 and record.grad is None
    assert int(record.num_fun_evals) == 0 and int(record.num_grad_evals) == 0
    assert record.num_fun_evals.dtype == jnp.int32


@pytest.mark.parametrize(
    ("linesearch", "keeps_grad"),
    [
        (so.scale_by_zoom_linesearch(), True),
        (so.scale_by_backtracking_linesearch(), False),
        (so.scale_by_backtracking_linesearch(store_grad=True), True),
    ],
    ids=["zoom", "backtracking", "backtracking-store_grad"],
)
def test_a_line_search_state_reads_its_evaluation(linesearch, keeps_grad, x64):
    def f(x):
        return x @ x

    x = jnp.array([1.0, -2.0])
    g = 2 * x  # ∇f, closed form
    updates, state = linesearch.update(
        -g, linesearch.init(x), x, value=f(x), grad=g, value_fn=f
    )
    assert isinstance(state.evaluation, Evaluation)
    new = np.asarray(x + updates)
    assert new @ new < float(f(x))
    # f and ∇f at params + updates, read through the state's attributes.
    np.testing.assert_allclose(state.value, new @ new, rtol=1e-12)
    assert state.num_fun_evals is state.evaluation.num_fun_evals
    assert int(state.num_fun_evals) >= 1
    if keeps_grad:
        np.testing.assert_allclose(state.grad, 2 * new, rtol=1e-12)
        assert int(state.num_grad_evals) == int(state.num_fun_evals)
    else:
        assert state.grad is None and int(state.num_grad_evals) == 0


def test_check_call_names_every_missing_argument_and_the_mismatch():
    params = {"w": jnp.ones(2)}
    check_call("s", params, params, value=1.0, grad=params, value_fn=jnp.sum)
    with pytest.raises(TypeError, match=r"^s\.update needs params, grad; call"):
        check_call("s", params, None, grad=None, value_fn=jnp.sum)
    with pytest.raises(ValueError, match=r"params and grad differ at \['w'\]"):
        check_call("s", params, params, grad={"w": jnp.ones(3)})
    kept = Evaluation.start(grad={"w": jnp.ones(5)})
    with pytest.raises(ValueError, match=r"optimizer state and params .*\['w'\]"):
        check_call("s", params, params, kept)
