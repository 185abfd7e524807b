"""Standard objectives for trying, testing and benchmarking optimizers.

Each objective is a plain JAX function of the parameters, paired where it
helps with an independent NumPy transcription (value, gradient, Hessian) to
check against. The tests, the examples and the benchmarks take their test
problems from here, so that a Rosenbrock or a logistic regression is defined
once.

* `rosenbrock(x)`: the $n$-dimensional Rosenbrock function
  $\\sum_i 100(x_{i+1} - x_i^2)^2 + (1 - x_i)^2$, minimum 0 at $(1, \\dots, 1)$
  (SciPy's `scipy.optimize.rosen` computes the same).
* `quadratic(a, b)`: $f(x) = \\tfrac12 x^\\top A x - b^\\top x$, and
  `random_quadratic(n, ...)` for an $A$ with a chosen spectrum.
* `logistic_regression(x, y, l2)`: the mean log-loss of a linear model with
  an L2 penalty on the weights, on parameters `{"w": (d,), "b": ()}`, and
  `logistic_regression_numpy(x, y, l2)` its NumPy transcription on the
  stacked vector $v = (w, b)$.
* `digits_mlp(hidden)`: an MLP learning scikit-learn's 8x8 digits, as a
  `gradtransforms.tuning.Problem` (needs Flax and scikit-learn).

Examples:
  >>> import jax.numpy as jnp
  >>> from gradtransforms import problems
  >>> float(problems.rosenbrock(jnp.ones(3)))
  0.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "digits_mlp",
    "logistic_regression",
    "logistic_regression_numpy",
    "quadratic",
    "random_quadratic",
    "rosenbrock",
]


def rosenbrock(x: jax.Array) -> jax.Array:
    """The $n$-dimensional Rosenbrock function, $n \\ge 2$.

    $$f(x) = \\sum_{i=1}^{n-1} 100\\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2$$

    A curved valley whose floor leads to the minimum $f = 0$ at
    $x = (1, \\dots, 1)$; the usual start is $(-1.2, 1)$ in two dimensions.

    Args:
      x: a 1-D array of length $n \\ge 2$.

    Returns:
      The scalar $f(x)$, in `x`'s dtype.
    """
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def quadratic(a: Any, b: Any) -> Callable[[jax.Array], jax.Array]:
    """The quadratic $f(x) = \\tfrac12 x^\\top A x - b^\\top x$.

    With $A$ symmetric positive definite its minimum is at $x^* = A^{-1} b$.

    Args:
      a: the $n \\times n$ matrix $A$.
      b: the vector $b$ of length $n$.

    Returns:
      `f(x)` for a 1-D array `x` (computed in `x`'s dtype).
    """
    a_np, b_np = np.asarray(a), np.asarray(b)

    def f(x: jax.Array) -> jax.Array:
        aj = jnp.asarray(a_np, x.dtype)
        bj = jnp.asarray(b_np, x.dtype)
        return 0.5 * x @ (aj @ x) - bj @ x

    return f


def random_quadratic(
    n: int, *, seed: int = 0, condition: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    """A random positive-definite $A$ (eigenvalues $1 \\dots \\kappa$) and $b$.

    $A = Q\\,\\mathrm{diag}(\\lambda)\\,Q^\\top$ with $Q$ a random orthogonal
    matrix (the QR factor of a Gaussian matrix) and $\\lambda$ spaced
    geometrically from 1 to $\\kappa$ = `condition`; $b$ is standard normal.

    Args:
      n: the dimension.
      seed: the seed of `numpy.random.default_rng`.
      condition: the condition number $\\kappa \\ge 1$ of $A$.

    Returns:
      `(a, b)` as float64 NumPy arrays.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0.0, np.log10(condition), n)) @ q.T
    a = 0.5 * (a + a.T)
    b = rng.normal(size=n)
    return a, b


def logistic_regression(
    x: Any, y: Any, l2: float = 0.0
) -> Callable[[dict[str, jax.Array]], jax.Array]:
    """L2-regularised logistic regression: mean log-loss plus a weight penalty.

    $$f(w, b) = \\frac1n \\sum_{i=1}^n \\log(1 + e^{z_i}) - y_i z_i +
    \\frac{\\lambda}{2} \\|w\\|^2, \\qquad z_i = x_i^\\top w + b$$

    (the bias is not penalised). Convex; strictly convex when $\\lambda > 0$.

    Args:
      x: the features, shape `(n, d)`.
      y: the labels in {0, 1}, shape `(n,)`.
      l2: $\\lambda \\ge 0$.

    Returns:
      `f(params)` for `params = {"w": (d,), "b": ()}`.
    """
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def f(params: dict[str, jax.Array]) -> jax.Array:
        z = xj @ params["w"] + params["b"]
        loss = jnp.mean(jnp.logaddexp(0.0, z) - yj * z)
        return loss + 0.5 * l2 * params["w"] @ params["w"]

    return f


def logistic_regression_numpy(
    x: Any, y: Any, l2: float = 0.0
) -> tuple[Callable, Callable, Callable]:
    """`logistic_regression` transcribed in NumPy, on the stacked $v = (w, b)$.

    The gradient is $X_a^\\top(\\sigma(z) - y)/n + \\lambda (w, 0)$ and the
    Hessian $X_a^\\top \\mathrm{diag}(\\sigma(z)(1 - \\sigma(z))) X_a / n +
    \\lambda\\,\\mathrm{diag}(1, \\dots, 1, 0)$, with $X_a = [X, 1]$.

    Args:
      x: the features, shape `(n, d)`.
      y: the labels in {0, 1}, shape `(n,)`.
      l2: $\\lambda \\ge 0$.

    Returns:
      `(fun, jac, hess)`, each a function of the float64 vector $v$ of
      length $d + 1$.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, d = x.shape
    xa = np.hstack([x, np.ones((n, 1))])
    penalty = l2 * np.append(np.ones(d), 0.0)

    def fun(v: np.ndarray) -> float:
        z = xa @ v
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * v @ (penalty * v))

    def jac(v: np.ndarray) -> np.ndarray:
        return xa.T @ ((1 / (1 + np.exp(-(xa @ v))) - y) / n) + penalty * v

    def hess(v: np.ndarray) -> np.ndarray:
        s = 1 / (1 + np.exp(-(xa @ v)))
        return xa.T @ ((s * (1 - s) / n)[:, None] * xa) + np.diag(penalty)

    return fun, jac, hess


def digits_mlp(hidden: Sequence[int] = (64,), *, seed: int = 0) -> Any:
    """The digits MLP (`models.MLP`, no BatchNorm) as a `tuning.Problem`.

    An MLP with ReLU layers of `hidden` units between the 64 pixels and the
    10 classes learns scikit-learn's 8x8 handwritten digits. The parameters
    are the MLP's `nnx.Param` state; the loss is the mean softmax
    cross-entropy; the validation metrics are the loss and the accuracy on
    the held-out 20% of the digits. Flax, optax and scikit-learn are imported
    when it is called.

    Args:
      hidden: the widths of the hidden layers.
      seed: the seed of the training / validation split.

    Returns:
      A `gradtransforms.tuning.Problem` whose `init_fn(key)` draws the MLP's
      initial parameters.
    """
    import optax
    from flax import nnx

    from gradtransforms import models, tuning

    data = models.load_digits(validation_fraction=0.2, seed=seed, flatten=True)
    features = (data.x_train.shape[1], *hidden, 10)

    def make(key):
        return models.MLP(features, batch_norm=False, rngs=nnx.Rngs(key))

    graphdef = nnx.graphdef(make(jax.random.key(0)))

    def init_fn(key):
        return nnx.state(make(key), nnx.Param)

    def logits(params, x):
        return nnx.merge(graphdef, params, copy=True)(x)

    def loss_fn(params, batch):
        x, y = batch
        return optax.softmax_cross_entropy_with_integer_labels(
            logits(params, x), y
        ).mean()

    def metrics_fn(params, batch):
        x, y = batch
        z = logits(params, x)
        return {
            "loss": optax.softmax_cross_entropy_with_integer_labels(z, y).mean(),
            "accuracy": jnp.mean(jnp.argmax(z, -1) == y),
        }

    return tuning.Problem(
        init_fn=init_fn,
        loss_fn=loss_fn,
        train_data=(data.x_train, data.y_train),
        valid_data=(data.x_valid, data.y_valid),
        metrics_fn=metrics_fn,
    )
