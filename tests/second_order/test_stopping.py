"""Why `minimize` stops: statuses, messages and stalls (issue 20).

References are independent of the code under test: closed-form iterates of
gradient descent on a quadratic (for `ftol`, `xtol` and `max_steps`), SciPy's
own BFGS reporting precision loss at the same tolerance, and a gradient
deliberately made wrong, on which no line search can succeed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from gradtransforms import problems
from gradtransforms import second_order as so
from gradtransforms.optimizers import sgd
from gradtransforms.second_order.stopping import status_message

Status = so.MinimizeStatus


def _bowl(x):
    return jnp.sum(x**2)


def test_gradient_status_and_message(x64):
    result = so.minimize(_bowl, jnp.ones(3), so.lbfgs(), max_steps=50, tol=1e-8)
    assert int(result.status) == Status.GRADIENT and bool(result.converged)
    assert result.message == "converged: gradient norm <= tol"
    assert float(result.grad_norm) <= 1e-8


def _descent_iterates(x0, lr, steps):
    """Gradient descent on Σx², literally: x ← (1 − 2 lr) x."""
    xs = [np.asarray(x0, float)]
    for _ in range(steps):
        xs.append(xs[-1] * (1 - 2 * lr))
    return xs


def test_ftol_stops_at_the_first_small_relative_decrease(x64):
    x0, ftol = np.ones(2), 1e-6
    xs = _descent_iterates(x0, 0.1, 200)
    fs = [float(x @ x) for x in xs]
    expected = next(
        t + 1
        for t in range(200)
        if fs[t] - fs[t + 1] <= ftol * max(abs(fs[t]), abs(fs[t + 1]), 1)
    )
    result = so.minimize(
        _bowl, jnp.asarray(x0), sgd(0.1), max_steps=1000, tol=0.0, ftol=ftol
    )
    assert int(result.status) == Status.SMALL_CHANGE and bool(result.converged)
    assert int(result.num_steps) == expected
    np.testing.assert_allclose(result.params, xs[expected], rtol=1e-12)


def test_xtol_stops_at_the_first_small_step(x64):
    x0, xtol = np.array([3.0, -4.0]), 1e-5
    xs = _descent_iterates(x0, 0.1, 200)
    expected = next(
        t + 1
        for t in range(200)
        if np.linalg.norm(xs[t + 1] - xs[t]) <= xtol * (1 + np.linalg.norm(xs[t + 1]))
    )
    result = so.minimize(
        _bowl, jnp.asarray(x0), sgd(0.1), max_steps=1000, tol=0.0, xtol=xtol
    )
    assert int(result.status) == Status.SMALL_CHANGE
    assert int(result.num_steps) == expected


def test_max_steps_status(x64):
    result = so.minimize(
        problems.rosenbrock, jnp.zeros(4), so.lbfgs(), max_steps=3, tol=1e-10
    )
    assert int(result.status) == Status.MAX_STEPS and not bool(result.converged)
    assert int(result.num_steps) == 3
    assert result.message == "stopped: max_steps reached"


def test_a_first_order_method_never_stalls(x64):
    """SGD with lr = 1 on Σx² maps x to −x: f never decreases, yet a
    first-order method is not a descent method, so only max_steps stops it."""
    result = so.minimize(_bowl, jnp.ones(2), sgd(1.0), max_steps=40, tol=1e-8)
    assert int(result.status) == Status.MAX_STEPS and int(result.num_steps) == 40


@pytest.mark.parametrize("name", ["lbfgs", "bfgs"])
def test_precision_loss_stops_within_a_bounded_budget(name, x64):
    """f = Rosenbrock + 1: the minimum is f = 1, where rounding (1e-16) hides
    any decrease long before ‖g‖ reaches 1e-14. SciPy's BFGS says the same."""

    def shifted(x):
        return problems.rosenbrock(x) + 1.0

    def numpy_fun(x):
        return scipy.optimize.rosen(x) + 1.0

    reference = scipy.optimize.minimize(
        numpy_fun, np.zeros(10), jac=scipy.optimize.rosen_der, method="BFGS",
        options={"gtol": 1e-14},
    )  # fmt: skip
    assert "precision loss" in reference.message

    make = {"lbfgs": so.lbfgs, "bfgs": so.bfgs}[name]
    results = [
        so.minimize(shifted, jnp.zeros(10), make(), max_steps=m, tol=1e-14)
        for m in (5_000, 50_000)
    ]
    for r in results:
        # BFGS happens to land where the computed gradient is exactly 0.
        assert int(r.status) in (Status.PRECISION_LOSS, Status.GRADIENT), r.message
        np.testing.assert_allclose(r.params, np.ones(10), atol=1e-6)
    if name == "lbfgs":
        assert "precision loss" in results[0].message
    # The stop does not depend on the budget.
    assert int(results[0].num_fun_evals) == int(results[1].num_fun_evals)
    assert int(results[0].num_steps) < 200


def _wrong_gradient(f):
    """f with the sign of its gradient flipped: every search direction rises."""

    @jax.custom_jvp
    def wrong(x):
        return f(x)

    @wrong.defjvp
    def _(primals, tangents):
        (x,), (dx,) = primals, tangents
        value, slope = jax.jvp(f, (x,), (dx,))
        return value, -slope

    return wrong


@pytest.mark.parametrize(
    "make", [so.lbfgs, so.bfgs, so.conjugate_gradient, so.newton_cg]
)
def test_a_failed_line_search_stops_after_two_updates(make, x64):
    fun = _wrong_gradient(_bowl)
    result = so.minimize(fun, jnp.ones(3), make(), max_steps=10_000, tol=1e-8)
    assert int(result.status) == Status.LINESEARCH_FAILED, result.message
    assert int(result.num_steps) == 2 and not bool(result.converged)
    # It never got anywhere: at most a step of rounding size was accepted.
    np.testing.assert_allclose(result.params, np.ones(3), rtol=1e-13)
    # Two updates' searches (30 trials each), and the loop's own evaluations.
    assert int(result.num_fun_evals) <= 2 * (30 + 1) + 1


def test_non_finite_status_mid_run(x64):
    """SGD with lr = 10 on Σx² multiplies x by −19 a step: f overflows."""
    with np.errstate(over="ignore"):
        overflow = next(
            t for t in range(1000) if np.isinf(2 * np.float64(19.0) ** (2 * t))
        )
    result = so.minimize(_bowl, jnp.ones(2), sgd(10.0), max_steps=10_000, tol=0.0)
    assert int(result.status) == Status.NON_FINITE and not bool(result.converged)
    assert result.message == "stopped: f or its gradient is not finite"
    assert int(result.num_steps) == overflow


def test_a_batch_stops_member_by_member(x64):
    starts = jnp.array([[0.0, 0.0], [-1.2, 1.0], [2.0, 2.0], [1.0, 1.0]])

    def solve(x0):
        return so.minimize(problems.rosenbrock, x0, so.lbfgs(), max_steps=500, tol=1e-9)

    batch = jax.vmap(solve)(starts)
    for i, x0 in enumerate(starts):
        alone = solve(x0)
        assert int(batch.num_steps[i]) == int(alone.num_steps)
        assert int(batch.num_fun_evals[i]) == int(alone.num_fun_evals)
        assert int(batch.status[i]) == int(alone.status)
        np.testing.assert_allclose(batch.params[i], alone.params, rtol=1e-12)
    assert int(batch.num_steps[3]) == 0  # already at the minimum
    assert list(batch.message) == [alone.message] * 4
    np.testing.assert_allclose(batch.params, np.ones((4, 2)), atol=1e-7)


def test_a_batch_over_problem_data(x64):
    """Many small fits at once: least squares for several right-hand sides."""
    a = jnp.array([[3.0, 1.0], [1.0, 2.0], [0.0, 1.0]])
    targets = jnp.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0], [2.0, 2.0, 2.0]])

    def fit(b):
        def loss(x):
            return jnp.sum((a @ x - b) ** 2)

        return so.minimize(loss, jnp.zeros(2), so.bfgs(), max_steps=100, tol=1e-10)

    result = jax.vmap(fit)(targets)
    for i, b in enumerate(np.asarray(targets)):
        expected = np.linalg.lstsq(np.asarray(a), b, rcond=None)[0]
        np.testing.assert_allclose(result.params[i], expected, atol=1e-9)
    assert np.all(np.asarray(result.status) == Status.GRADIENT)


@pytest.mark.parametrize("name", ["ftol", "xtol"])
def test_bad_tolerances_raise_naming_them(name):
    with pytest.raises(ValueError, match=name):
        so.minimize(
            _bowl, jnp.ones(2), so.lbfgs(), max_steps=5, tol=0.0, **{name: -1.0}
        )
    with pytest.raises(TypeError, match=name):
        so.minimize(
            _bowl, jnp.ones(2), so.lbfgs(), max_steps=5, tol=0.0,
            **{name: jnp.ones(2)},
        )  # fmt: skip


def test_status_is_last_and_an_empty_batch_has_no_messages():
    assert so.MinimizeResult._fields[-1] == "status"  # old unpacking still works
    assert status_message(np.zeros((0,), np.int32)).shape == (0,)
    assert list(status_message(np.array([0, 4]))) == [
        "converged: gradient norm <= tol",
        "stopped: max_steps reached",
    ]
