"""problems.py: the shared test problems against SciPy, NumPy and closed forms.

References: `scipy.optimize.rosen` and `rosen_der` for Rosenbrock, the
NumPy transcription `logistic_regression_numpy` (checked itself against
finite differences), `numpy.linalg.solve` for the quadratic's minimiser and
`numpy.linalg.eigvalsh` for the random quadratic's spectrum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from gradtransforms import problems


@pytest.mark.parametrize("n", [2, 5])
def test_rosenbrock_matches_scipy(n, x64):
    rng = np.random.default_rng(n)
    for x in (np.ones(n), np.array([-1.2, 1.0, *np.zeros(n - 2)]), rng.normal(size=n)):
        value, grad = jax.value_and_grad(problems.rosenbrock)(jnp.asarray(x))
        np.testing.assert_allclose(float(value), scipy.optimize.rosen(x), rtol=1e-14)
        np.testing.assert_allclose(grad, scipy.optimize.rosen_der(x), rtol=1e-13)
    assert float(problems.rosenbrock(jnp.ones(n))) == 0.0
    assert problems.rosenbrock(jnp.ones(n, jnp.float32)).dtype == jnp.float32


def _logistic_data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    return x, y


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_logistic_regression_matches_its_numpy_transcription(l2, x64):
    x, y = _logistic_data()
    loss = problems.logistic_regression(x, y, l2)
    fun, jac, hess = problems.logistic_regression_numpy(x, y, l2)
    v = np.array([0.5, -1.0, 2.0, 0.25])  # (w, b)

    def stacked(v):
        return loss({"w": v[:3], "b": v[3]})

    value, grad = jax.value_and_grad(stacked)(jnp.asarray(v))
    np.testing.assert_allclose(float(value), fun(v), rtol=1e-13)
    np.testing.assert_allclose(grad, jac(v), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        jax.hessian(stacked)(jnp.asarray(v)), hess(v), rtol=1e-12, atol=1e-15
    )
    # The transcription's own derivatives, by central differences.
    h = 1e-6
    eye = np.eye(4)
    numeric = [(fun(v + h * e) - fun(v - h * e)) / (2 * h) for e in eye]
    np.testing.assert_allclose(jac(v), numeric, rtol=1e-6, atol=1e-9)
    columns = [(jac(v + h * e) - jac(v - h * e)) / (2 * h) for e in eye]
    np.testing.assert_allclose(hess(v), np.stack(columns, 1), rtol=1e-6, atol=1e-9)


def test_logistic_regression_penalises_the_weights_only(x64):
    x, y = _logistic_data()
    plain = problems.logistic_regression(x, y)
    penalised = problems.logistic_regression(x, y, 0.5)
    p = {"w": jnp.array([1.0, 2.0, -2.0]), "b": jnp.asarray(3.0)}
    np.testing.assert_allclose(penalised(p) - plain(p), 0.5 * 0.5 * 9.0, rtol=1e-12)


def test_quadratic_minimiser_is_the_solution_of_a_x_equals_b(x64):
    a, b = problems.random_quadratic(5, seed=2, condition=30.0)
    f = problems.quadratic(a, b)
    x_star = np.linalg.solve(a, b)
    np.testing.assert_allclose(jax.grad(f)(jnp.asarray(x_star)), 0.0, atol=1e-12)
    np.testing.assert_allclose(jax.hessian(f)(jnp.asarray(x_star)), a, rtol=1e-12)
    np.testing.assert_allclose(float(f(jnp.asarray(x_star))), -0.5 * b @ x_star)
    assert f(jnp.zeros(5, jnp.float32)).dtype == jnp.float32


@pytest.mark.parametrize(("n", "condition"), [(4, 100.0), (7, 10.0), (3, 1.0)])
def test_random_quadratic_has_the_chosen_spectrum(n, condition):
    a, b = problems.random_quadratic(n, seed=1, condition=condition)
    assert a.dtype == b.dtype == np.float64 and b.shape == (n,)
    np.testing.assert_array_equal(a, a.T)
    eigenvalues = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(eigenvalues, np.geomspace(1.0, condition, n), rtol=1e-12)
    again, b_again = problems.random_quadratic(n, seed=1, condition=condition)
    np.testing.assert_array_equal(again, a)
    np.testing.assert_array_equal(b_again, b)
    _, other = problems.random_quadratic(n, seed=2, condition=condition)
    assert not np.allclose(other, b)


def test_digits_mlp_is_a_tuning_problem():
    problem = problems.digits_mlp((8,), seed=0)
    x_train, y_train = problem.train_data
    x_valid, y_valid = problem.valid_data
    assert x_train.shape[1] == 64 and len(x_train) == len(y_train)
    assert len(x_valid) + len(x_train) == 1797  # scikit-learn's 8x8 digits
    params = problem.init_fn(jax.random.key(0))
    loss = problem.loss_fn(params, (x_train[:32], y_train[:32]))
    metrics = problem.metrics_fn(params, (x_valid, y_valid))
    assert set(metrics) == {"loss", "accuracy"}
    assert np.isfinite(float(loss)) and 0.0 <= float(metrics["accuracy"]) <= 1.0
    np.testing.assert_allclose(
        metrics["loss"], problem.loss_fn(params, (x_valid, y_valid)), rtol=1e-6
    )
