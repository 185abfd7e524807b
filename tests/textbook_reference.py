"""Literal NumPy transcriptions of textbook Algorithms 8.1–8.7 and eq. 8.14.

Goodfellow, Bengio & Courville, *Deep Learning* (2016), chapter 8 (the
sources are listed in docs/textbook.md). Each algorithm is a plain Python loop
over steps, in float64, written from the book's listing and *not* from the
library: the tests compare the library against these. The book's lines are
quoted as comments so each one can be matched with its listing.

Conventions shared by every function:

* `grad(theta)` returns the gradient estimate g at `theta` (a NumPy array);
  the minibatch sampling of the listings is replaced by a deterministic
  gradient, so "Sample a minibatch ..." has no code.
* "while stopping criterion not met" becomes a fixed number of steps,
  `num_steps`.
* The return value holds the trajectory: row i is the value *after* step i+1
  (the initial value is not included).

Misprints in the other sources ("Misprints in the sources" in
docs/textbook.md) are not reproduced: Adam has no
second-moment update after the bias correction, and the linear-decay slope is
(eps_tau - eps_0) / tau.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GradFn = Callable[[np.ndarray], np.ndarray]
LearningRate = float | Callable[[int], float]


def _f64(x) -> np.ndarray:
    return np.array(x, dtype=np.float64, copy=True)


def linear_decay(k: int, eps_0: float, eps_tau: float, tau: int) -> float:
    """Eq. 8.14: the learning rate at iteration k (k counted from 1 in Alg. 8.1).

    "In practice, it is common to decay the learning rate linearly until
    iteration tau:  eps_k = (1 - alpha) eps_0 + alpha eps_tau  with
    alpha = k / tau. After iteration tau, it is common to leave eps constant."
    """
    if k >= tau:
        # "After iteration tau, it is common to leave eps constant."
        return float(eps_tau)
    # "with alpha = k / tau"
    alpha = k / tau
    # "eps_k = (1 - alpha) eps_0 + alpha eps_tau"
    return (1.0 - alpha) * eps_0 + alpha * eps_tau


def _rate(learning_rate: LearningRate, k: int) -> float:
    """eps_k: a constant rate, or a schedule evaluated at iteration k."""
    if callable(learning_rate):
        return float(learning_rate(k))
    return float(learning_rate)


def sgd(
    grad: GradFn, theta: np.ndarray, learning_rate: LearningRate, num_steps: int
) -> np.ndarray:
    """Algorithm 8.1, stochastic gradient descent (SGD) update.

    Require: Learning rate schedule eps_1, eps_2, ...  (`learning_rate(k)`
    for k = 1, 2, ..., or a constant)
    Require: Initial parameter theta

    Returns:
      thetas, shape (num_steps, *theta.shape).
    """
    theta = _f64(theta)
    thetas = []
    # "k <- 1"
    k = 1
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute gradient estimate: g_hat <- 1/m grad_theta sum_i L(...)"
        g_hat = grad(theta)
        # "Apply update: theta <- theta - eps_k g_hat"
        theta = theta - _rate(learning_rate, k) * g_hat
        # "k <- k + 1"
        k = k + 1
        thetas.append(theta.copy())
    # "end while"
    return np.array(thetas)


def momentum(
    grad: GradFn,
    theta: np.ndarray,
    learning_rate: LearningRate,
    alpha: float,
    num_steps: int,
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 8.2, stochastic gradient descent (SGD) with momentum.

    Require: Learning rate eps, momentum parameter alpha
    Require: Initial parameter theta, initial velocity v (default 0)

    The listing has a constant eps. A schedule eps_k, with k counted from 1 as
    in Algorithm 8.1, may be passed instead; it enters where eps does,
    v <- alpha v - eps_k g.

    Returns:
      (thetas, vs), each of shape (num_steps, *theta.shape).
    """
    theta = _f64(theta)
    v = np.zeros_like(theta) if v is None else _f64(v)
    thetas, vs = [], []
    k = 1  # only used by a schedule (Algorithm 8.1's counter)
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute gradient estimate: g <- 1/m grad_theta sum_i L(f(x_i; theta), y_i)"
        g = grad(theta)
        # "Compute velocity update: v <- alpha v - eps g"
        v = alpha * v - _rate(learning_rate, k) * g
        # "Apply update: theta <- theta + v"
        theta = theta + v
        k = k + 1
        thetas.append(theta.copy())
        vs.append(v.copy())
    # "end while"
    return np.array(thetas), np.array(vs)


def nesterov(
    grad: GradFn,
    theta: np.ndarray,
    learning_rate: float,
    alpha: float,
    num_steps: int,
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 8.3, stochastic gradient descent (SGD) with Nesterov momentum.

    Require: Learning rate eps, momentum parameter alpha
    Require: Initial parameter theta, initial velocity v (default 0)

    The gradient really is evaluated at the interim point theta + alpha v.

    Returns:
      (thetas, vs), each of shape (num_steps, *theta.shape).
    """
    eps = float(learning_rate)
    theta = _f64(theta)
    v = np.zeros_like(theta) if v is None else _f64(v)
    thetas, vs = [], []
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Apply interim update: theta_tilde <- theta + alpha v"
        theta_tilde = theta + alpha * v
        # "Compute gradient (at interim point):
        #  g <- 1/m grad_theta_tilde sum_i L(f(x_i; theta_tilde), y_i)"
        g = grad(theta_tilde)
        # "Compute velocity update: v <- alpha v - eps g"
        v = alpha * v - eps * g
        # "Apply update: theta <- theta + v"
        theta = theta + v
        thetas.append(theta.copy())
        vs.append(v.copy())
    # "end while"
    return np.array(thetas), np.array(vs)


def adagrad(
    grad: GradFn,
    theta: np.ndarray,
    learning_rate: float,
    num_steps: int,
    delta: float = 1e-7,
) -> np.ndarray:
    """Algorithm 8.4, the AdaGrad algorithm.

    Require: Global learning rate eps
    Require: Initial parameter theta
    Require: Small constant delta, perhaps 1e-7, for numerical stability

    Returns:
      thetas, shape (num_steps, *theta.shape).
    """
    eps = float(learning_rate)
    theta = _f64(theta)
    thetas = []
    # "Initialize gradient accumulation variable r = 0"
    r = np.zeros_like(theta)
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute gradient: g <- 1/m grad_theta sum_i L(f(x_i; theta), y_i)"
        g = grad(theta)
        # "Accumulate squared gradient: r <- r + g ⊙ g"
        r = r + g * g
        # "Compute update: Delta theta <- - eps / (delta + sqrt(r)) ⊙ g"
        # "(Division and square root applied element-wise)"
        delta_theta = -eps / (delta + np.sqrt(r)) * g
        # "Apply update: theta <- theta + Delta theta"
        theta = theta + delta_theta
        thetas.append(theta.copy())
    # "end while"
    return np.array(thetas)


def rmsprop(
    grad: GradFn,
    theta: np.ndarray,
    learning_rate: float,
    rho: float,
    num_steps: int,
    delta: float = 1e-6,
) -> np.ndarray:
    """Algorithm 8.5, the RMSProp algorithm.

    Require: Global learning rate eps, decay rate rho
    Require: Initial parameter theta
    Require: Small constant delta, usually 1e-6, used to stabilize division by
    small numbers

    Returns:
      thetas, shape (num_steps, *theta.shape).
    """
    eps = float(learning_rate)
    theta = _f64(theta)
    thetas = []
    # "Initialize accumulation variables r = 0"
    r = np.zeros_like(theta)
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute gradient: g <- 1/m grad_theta sum_i L(f(x_i; theta), y_i)"
        g = grad(theta)
        # "Accumulate squared gradient: r <- rho r + (1 - rho) g ⊙ g"
        r = rho * r + (1.0 - rho) * g * g
        # "Compute parameter update: Delta theta = - eps / sqrt(delta + r) ⊙ g"
        # "(1 / sqrt(delta + r) applied element-wise)"
        delta_theta = -eps / np.sqrt(delta + r) * g
        # "Apply update: theta <- theta + Delta theta"
        theta = theta + delta_theta
        thetas.append(theta.copy())
    # "end while"
    return np.array(thetas)


def rmsprop_nesterov(
    grad: GradFn,
    theta: np.ndarray,
    learning_rate: float,
    rho: float,
    alpha: float,
    num_steps: int,
    v: np.ndarray | None = None,
    delta: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 8.6, RMSProp algorithm with Nesterov momentum.

    Require: Global learning rate eps, decay rate rho, momentum coefficient alpha
    Require: Initial parameter theta, initial velocity v (default 0)

    The listing divides by sqrt(r) with no stabiliser. `delta` (default 0, the
    literal listing) is added *under* the root, sqrt(delta + r), as Algorithm
    8.5 does, so the reference can be compared with a library whose
    stabiliser sits there.

    The gradient really is evaluated at the interim point theta + alpha v.

    Returns:
      (thetas, vs), each of shape (num_steps, *theta.shape).
    """
    eps = float(learning_rate)
    theta = _f64(theta)
    v = np.zeros_like(theta) if v is None else _f64(v)
    thetas, vs = [], []
    # "Initialize accumulation variable r = 0"
    r = np.zeros_like(theta)
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute interim update: theta_tilde <- theta + alpha v"
        theta_tilde = theta + alpha * v
        # "Compute gradient:
        #  g <- 1/m grad_theta_tilde sum_i L(f(x_i; theta_tilde), y_i)"
        g = grad(theta_tilde)
        # "Accumulate gradient: r <- rho r + (1 - rho) g ⊙ g"
        r = rho * r + (1.0 - rho) * g * g
        # "Compute velocity update: v <- alpha v - eps / sqrt(r) ⊙ g"
        # "(1 / sqrt(r) applied element-wise)"  -- here sqrt(delta + r)
        v = alpha * v - eps / np.sqrt(delta + r) * g
        # "Apply update: theta <- theta + v"
        theta = theta + v
        thetas.append(theta.copy())
        vs.append(v.copy())
    # "end while"
    return np.array(thetas), np.array(vs)


def adam(
    grad: GradFn,
    theta: np.ndarray,
    num_steps: int,
    learning_rate: float = 0.001,
    rho_1: float = 0.9,
    rho_2: float = 0.999,
    delta: float = 1e-8,
) -> np.ndarray:
    """Algorithm 8.7, the Adam algorithm.

    Require: Step size eps (Suggested default: 0.001)
    Require: Exponential decay rates for moment estimates, rho_1 and rho_2 in
    [0, 1). (Suggested defaults: 0.9 and 0.999 respectively)
    Require: Small constant delta used for numerical stabilization (Suggested
    default: 1e-8)
    Require: Initial parameters theta

    Returns:
      thetas, shape (num_steps, *theta.shape).
    """
    eps = float(learning_rate)
    theta = _f64(theta)
    thetas = []
    # "Initialize 1st and 2nd moment variables s = 0, r = 0"
    s = np.zeros_like(theta)
    r = np.zeros_like(theta)
    # "Initialize time step t = 0"
    t = 0
    # "while stopping criterion not met do"
    for _ in range(num_steps):
        # "Compute gradient: g <- 1/m grad_theta sum_i L(f(x_i; theta), y_i)"
        g = grad(theta)
        # "t <- t + 1"
        t = t + 1
        # "Update biased first moment estimate: s <- rho_1 s + (1 - rho_1) g"
        s = rho_1 * s + (1.0 - rho_1) * g
        # "Update biased second moment estimate: r <- rho_2 r + (1 - rho_2) g ⊙ g"
        r = rho_2 * r + (1.0 - rho_2) * g * g
        # "Correct bias in first moment: s_hat <- s / (1 - rho_1^t)"
        s_hat = s / (1.0 - rho_1**t)
        # "Correct bias in second moment: r_hat <- r / (1 - rho_2^t)"
        r_hat = r / (1.0 - rho_2**t)
        # "Compute update: Delta theta = - eps s_hat / (sqrt(r_hat) + delta)"
        # "(operations applied element-wise)"
        delta_theta = -eps * s_hat / (np.sqrt(r_hat) + delta)
        # "Apply update: theta <- theta + Delta theta"
        theta = theta + delta_theta
        thetas.append(theta.copy())
    # "end while"
    return np.array(thetas)
