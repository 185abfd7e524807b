"""`minimize`: the compiled solver loop, against SciPy and scikit-learn.

Reference values come from independent sources: the closed-form Rosenbrock
minimum (all ones), scikit-learn's `LogisticRegression`, and iteration counts
from `scipy.optimize.minimize` run with NumPy objectives (SciPy's own
`rosen`/`rosen_der`/`rosen_hess`, and the NumPy logistic loss
`problems.logistic_regression_numpy`) at the same tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from sklearn.linear_model import LogisticRegression

from gradtransforms import problems
from gradtransforms import second_order as so
from gradtransforms.optimizers import sgd
from gradtransforms.scaling import scale
from tests.second_order.loop import count_evaluations

# (our optimizer, the SciPy method it is compared with)
METHODS = {
    "lbfgs": (so.lbfgs, "L-BFGS-B"),
    "bfgs": (so.bfgs, "BFGS"),
    "cg": (so.conjugate_gradient, "CG"),
    "newton_cg": (so.newton_cg, "Newton-CG"),
    "newton": (so.newton, "trust-exact"),
}


def _scipy_iterations(method, fun, jac, hess, x0, tol):
    """SciPy's iteration count at (as near as its options allow) the same tol."""
    options = {
        "L-BFGS-B": {"gtol": tol, "ftol": 0.0, "maxiter": 10_000},  # inf-norm
        "BFGS": {"gtol": tol, "norm": 2},
        "CG": {"gtol": tol, "norm": 2},
        "Newton-CG": {"xtol": 1e-12},  # no gradient tolerance: a tight step one
        "trust-exact": {"gtol": tol},
    }[method]
    kwargs = {"hess": hess} if method in ("Newton-CG", "trust-exact") else {}
    result = scipy.optimize.minimize(
        fun, x0, jac=jac, method=method, options=options, **kwargs
    )
    if method != "Newton-CG":
        assert np.linalg.norm(jac(result.x)) < 10 * tol, result.message
    return result.nit


# --------------------------------------------------------------------------
# Rosenbrock


def _rosenbrock(p):
    return problems.rosenbrock(p["x"])


ROSENBROCK_STARTS = {
    "2d": np.array([-1.2, 1.0]),
    "10d": np.zeros(10),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("dim", ["2d", pytest.param("10d", marks=pytest.mark.slow)])
def test_rosenbrock(dim, method, x64):
    make, scipy_method = METHODS[method]
    x0 = ROSENBROCK_STARTS[dim]
    tol = 1e-6
    fun, calls = count_evaluations(_rosenbrock)
    result = so.minimize(fun, {"x": jnp.asarray(x0)}, make(), max_steps=5000, tol=tol)

    assert bool(result.converged) and float(result.grad_norm) <= tol
    np.testing.assert_allclose(result.params["x"], np.ones_like(x0), atol=1e-5)
    np.testing.assert_allclose(result.value, 0.0, atol=1e-10)
    # Every evaluation of f is counted (Hessians and Hessian-vector products
    # are reported apart, so Newton's host count is larger).
    if method != "newton":
        assert len(calls) == int(result.num_fun_evals)
    assert int(result.num_grad_evals) >= int(result.num_steps)
    # No more than twice SciPy's iterations at the same tolerance.
    scipy_steps = _scipy_iterations(
        scipy_method,
        scipy.optimize.rosen,
        scipy.optimize.rosen_der,
        scipy.optimize.rosen_hess,
        x0,
        tol,
    )
    assert int(result.num_steps) <= 2 * scipy_steps


# --------------------------------------------------------------------------
# L2-regularised logistic regression against scikit-learn


def _logistic_problem(n=200, d=5, lam=1e-2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    logits = x @ rng.normal(size=d) + 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return x, y, lam


@pytest.mark.parametrize("method", list(METHODS))
def test_logistic_regression_matches_scikit_learn(method, x64):
    make, scipy_method = METHODS[method]
    x, y, lam = _logistic_problem()
    n, d = x.shape
    loss = problems.logistic_regression(x, y, lam)
    tol = 1e-9
    init = {"w": jnp.zeros(d), "b": jnp.zeros(())}
    result = so.minimize(loss, init, make(), max_steps=1000, tol=tol)
    assert bool(result.converged)

    # scikit-learn minimises C Σ log-loss + ½‖w‖² (intercept not penalised):
    # divided by C n, that is our objective with λ = 1 / (C n).
    reference = LogisticRegression(C=1 / (n * lam), tol=1e-12, max_iter=10_000)
    reference.fit(x, y.astype(int))
    np.testing.assert_allclose(result.params["w"], reference.coef_[0], atol=1e-6)
    np.testing.assert_allclose(result.params["b"], reference.intercept_[0], atol=1e-6)

    fun, jac, hess = problems.logistic_regression_numpy(x, y, lam)
    scipy_steps = _scipy_iterations(scipy_method, fun, jac, hess, np.zeros(d + 1), tol)
    assert int(result.num_steps) <= 2 * scipy_steps


# --------------------------------------------------------------------------
# Any optimizer: first-order, plain GradientTransformation, optax's L-BFGS


def _bowl(p):
    """A pytree quadratic with minimum at w = 1, b = [-2, 3]."""
    return jnp.sum((p["w"] - 1.0) ** 2) + 0.5 * jnp.sum(
        (p["b"]["c"] - jnp.array([-2.0, 3.0])) ** 2
    )


@pytest.mark.parametrize(
    "optimizer",
    [sgd(0.1), scale(-0.1), optax.adam(0.05)],
    ids=["gt.sgd", "plain-GradientTransformation", "optax.adam"],
)
def test_first_order_optimizers(optimizer):
    init = {"w": jnp.zeros(3), "b": {"c": jnp.zeros(2)}}
    # optax's own code is not written for strict dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        result = so.minimize(_bowl, init, optimizer, max_steps=2000, tol=1e-4)
    assert bool(result.converged)
    np.testing.assert_allclose(result.params["w"], np.ones(3), atol=1e-3)
    np.testing.assert_allclose(result.params["b"]["c"], [-2.0, 3.0], atol=1e-3)
    # One evaluation at the start and one after each update.
    assert int(result.num_fun_evals) == int(result.num_steps) + 1
    assert int(result.num_grad_evals) == int(result.num_steps) + 1


def test_compiled_once_and_max_steps():
    traces = []

    def fun(p):
        traces.append(1)  # runs at trace time only
        return _bowl(p)

    optimizer = sgd(0.1)
    init = {"w": jnp.zeros(3), "b": {"c": jnp.zeros(2)}}
    first = so.minimize(fun, init, optimizer, max_steps=2000, tol=1e-4)
    count = len(traces)
    init = jax.tree.map(lambda x: x + 0.5, init)
    second = so.minimize(fun, init, optimizer, max_steps=7, tol=0.0)
    assert len(traces) == count  # new start, max_steps and tol: no retrace
    assert bool(first.converged)
    assert int(second.num_steps) == 7 and not bool(second.converged)


@pytest.mark.parametrize(
    "optimizer",
    [so.lbfgs(), so.bfgs(), so.newton(), so.conjugate_gradient(), sgd(0.1)],
    ids=["lbfgs", "bfgs", "newton", "cg", "sgd"],
)
def test_an_infinite_value_is_never_converged(optimizer):
    """f = |x|^2 + inf has a zero gradient at 0 (issue 20): the value is not
    finite, so the loop stops at once and does not report convergence."""
    result = so.minimize(
        lambda x: jnp.sum(x**2) + jnp.inf, jnp.zeros(2), optimizer,
        max_steps=10, tol=1e-6,
    )  # fmt: skip
    assert float(result.grad_norm) == 0.0 and np.isinf(float(result.value))
    assert int(result.num_steps) == 0 and not bool(result.converged)


def test_optax_lbfgs(x64):
    x0 = ROSENBROCK_STARTS["2d"]
    fun, calls = count_evaluations(_rosenbrock)
    with jax.numpy_dtype_promotion("standard"):  # optax's code needs it
        result = so.minimize(
            fun, {"x": jnp.asarray(x0)}, optax.lbfgs(), max_steps=500, tol=1e-6
        )
    assert bool(result.converged)
    np.testing.assert_allclose(result.params["x"], np.ones(2), atol=1e-5)
    # optax's line-search evaluations are counted too, and reused.
    assert len(calls) == int(result.num_fun_evals) > int(result.num_steps)
    scipy_steps = _scipy_iterations(
        "L-BFGS-B", scipy.optimize.rosen, scipy.optimize.rosen_der, None, x0, 1e-6
    )
    assert int(result.num_steps) <= 2 * scipy_steps


def test_has_aux_returns_aux_at_the_solution(x64):
    def fun(p):
        value = _bowl(p)
        return value, {"residual": p["w"] - 1.0, "value_again": value}

    init = {"w": jnp.zeros(3), "b": {"c": jnp.zeros(2)}}
    result = so.minimize(fun, init, so.bfgs(), max_steps=100, tol=1e-8, has_aux=True)
    assert bool(result.converged)
    value, aux = fun(result.params)
    np.testing.assert_allclose(result.aux["residual"], aux["residual"])
    np.testing.assert_allclose(result.aux["value_again"], value)
    np.testing.assert_allclose(result.value, value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_steps": 0, "tol": 1e-6}, "max_steps"),
        ({"max_steps": 1.5, "tol": 1e-6}, "max_steps"),
        ({"max_steps": 10, "tol": -1.0}, "tol"),
        ({"max_steps": 10, "tol": 1e-6, "has_aux": "no"}, "has_aux"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        so.minimize(_bowl, {"w": jnp.zeros(3)}, so.lbfgs(), **kwargs)


def test_bad_fun_or_optimizer_raise():
    with pytest.raises(TypeError, match="fun"):
        so.minimize(3.0, jnp.zeros(2), so.lbfgs(), max_steps=5, tol=0.0)
    with pytest.raises(TypeError, match="optimizer"):
        so.minimize(_bowl, jnp.zeros(2), "lbfgs", max_steps=5, tol=0.0)
