"""optimizers.py: sgd, adagrad, rmsprop, adam, adamw, each a short chain.

Each optimizer's parameter trajectory is checked against a float64 NumPy loop
of its docstring's update (the textbook's listings, and Loshchilov & Hutter's
decoupled weight decay for adamw), on gradients that depend on the
parameters: g = A θ - b for a fixed A and b.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

A = np.diag([1.0, 3.0, 0.5])
B = np.array([1.0, -2.0, 0.5])
THETA0 = np.array([0.5, 0.5, -1.0])
STEPS = 8


def _trajectory(tx):
    params = jnp.asarray(THETA0, jnp.float32)
    state = tx.init(params)
    out = []
    for _ in range(STEPS):
        grad = jnp.asarray(A, jnp.float32) @ params - jnp.asarray(B, jnp.float32)
        updates, state = tx.update(grad, state, params)
        params = gt.apply_updates(params, updates)
        out.append(np.asarray(params, np.float64))
    return np.array(out)


def _numpy(step):
    """θ after each of STEPS calls of `step(θ, g, t, memory) -> (θ, memory)`."""
    theta, memory, out = THETA0.copy(), {}, []
    for t in range(1, STEPS + 1):
        theta, memory = step(theta, A @ theta - B, t, memory)
        out.append(theta.copy())
    return np.array(out)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_momentum(nesterov):
    lr, alpha = 0.1, 0.9

    def step(theta, g, t, m):
        v = alpha * m.get("v", 0.0) - lr * g
        return theta + (alpha * v - lr * g if nesterov else v), {"v": v}

    actual = _trajectory(gt.sgd(lr, momentum=alpha, nesterov=nesterov))
    np.testing.assert_allclose(actual, _numpy(step), rtol=1e-5, atol=1e-6)


def test_adagrad():
    lr, r0, delta = 0.5, 0.1, 1e-7

    def step(theta, g, t, m):
        r = m.get("r", r0) + g * g
        return theta - lr * g / (delta + np.sqrt(r)), {"r": r}

    actual = _trajectory(gt.adagrad(lr, initial_accumulator_value=r0, eps=delta))
    np.testing.assert_allclose(actual, _numpy(step), rtol=1e-5, atol=1e-6)


def test_rmsprop_centered_with_momentum():
    lr, rho, alpha, eps_root = 0.01, 0.9, 0.5, 1e-6

    def step(theta, g, t, m):
        r = rho * m.get("r", 0.0) + (1 - rho) * g * g
        s = rho * m.get("s", 0.0) + (1 - rho) * g
        v = alpha * m.get("v", 0.0) - lr * g / np.sqrt(r - s * s + eps_root)
        return theta + v, {"r": r, "s": s, "v": v}

    tx = gt.rmsprop(
        lr, decay=rho, eps=0.0, eps_root=eps_root, centered=True, momentum=alpha
    )
    np.testing.assert_allclose(_trajectory(tx), _numpy(step), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_and_adamw(weight_decay):
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8

    def step(theta, g, t, m):
        s = b1 * m.get("s", 0.0) + (1 - b1) * g
        r = b2 * m.get("r", 0.0) + (1 - b2) * g * g
        direction = (s / (1 - b1**t)) / (np.sqrt(r / (1 - b2**t)) + eps)
        return theta - lr * (direction + weight_decay * theta), {"s": s, "r": r}

    if weight_decay:
        tx = gt.adamw(lr, b1, b2, eps, weight_decay=weight_decay)
    else:
        tx = gt.adam(lr, b1, b2, eps)
    np.testing.assert_allclose(_trajectory(tx), _numpy(step), rtol=1e-5, atol=1e-6)


def test_adamw_mask_decays_only_the_selected_leaves():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    zero = {"w": jnp.zeros(2), "b": jnp.zeros(2)}
    tx = gt.adamw(0.1, weight_decay=0.5, mask={"w": True, "b": False})
    updates, _ = tx.update(zero, tx.init(params), params)
    # A zero gradient leaves only the decay: -lr · λ · θ on the masked leaf.
    np.testing.assert_allclose(updates["w"], [-0.05, -0.05], rtol=1e-6)
    np.testing.assert_array_equal(updates["b"], [0.0, 0.0])


def test_optimizers_are_chains_with_extra_args():
    for tx in (gt.sgd(0.1), gt.adagrad(0.1), gt.rmsprop(0.1), gt.adam(), gt.adamw()):
        assert isinstance(tx, gt.GradientTransformationExtraArgs)
