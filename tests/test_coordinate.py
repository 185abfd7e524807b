"""Block coordinate descent (§8.7.2): blocks wait with frozen state; the slow case."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

LABELS = {"x": "first", "y": "second", "z": "first"}


def _params():
    return {"x": jnp.array([1.0, -1.0]), "y": jnp.array(2.0), "z": jnp.array(0.5)}


def _loss(p):
    return jnp.sum(p["x"] ** 2) + 3.0 * p["y"] ** 2 + p["z"] ** 4 + p["y"] * p["z"]


def test_cyclic_blocks_move_one_at_a_time_and_waiting_state_is_frozen():
    tx = gt.block_coordinate_descent(
        gt.sgd(0.1, momentum=0.9), LABELS, steps_per_block=2
    )
    params = _params()
    state = tx.init(params)
    step = jax.jit(tx.update)
    expected_blocks = [0, 0, 1, 1, 0, 0, 1]
    for k, block in enumerate(expected_blocks):
        grads = jax.grad(_loss)(params)
        updates, new_state = step(grads, state, params)
        assert int(new_state.active_block) == block, k
        waiting = 1 - block
        moving_leaves = ("x", "z") if block == 0 else ("y",)
        for name in ("x", "y", "z"):
            if name in moving_leaves:
                assert np.any(np.asarray(updates[name]) != 0), (k, name)
            else:
                np.testing.assert_array_equal(updates[name], 0.0)
        chex.assert_trees_all_equal(
            new_state.inner_states[waiting], state.inner_states[waiting]
        )
        params = gt.apply_updates(params, updates)
        state = new_state


def test_random_order_is_reproducible_and_visits_every_block():
    def blocks(seed):
        tx = gt.block_coordinate_descent(gt.sgd(0.1), LABELS, order="random", seed=seed)
        state = tx.init(_params())
        step = jax.jit(tx.update)
        seen = []
        for _ in range(30):
            _, state = step(jax.grad(_loss)(_params()), state, _params())
            seen.append(int(state.active_block))
        return seen

    first = blocks(3)
    assert blocks(3) == first
    assert set(first) == {0, 1}
    assert blocks(4) != first


def test_block_descent_converges_where_all_blocks_get_turns():
    tx = gt.block_coordinate_descent(gt.sgd(0.1), LABELS, blocks=["second", "first"])
    params = _params()

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(_loss)(params), state, params)
        return (gt.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), length=400)
    assert float(_loss(params)) < float(_loss(_params())) * 1e-2


def _textbook_minimizers(alpha):
    """Exact coordinate minimisers of f = (x1 - x2)^2 + α(x1^2 + x2^2):
    ∂f/∂x1 = 2(x1 - x2) + 2αx1 = 0  ⇒  x1 = x2 / (1 + α), and symmetrically."""
    return [
        lambda p: p.at[0].set(p[1] / (1 + alpha)),
        lambda p: p.at[1].set(p[0] / (1 + alpha)),
    ]


def _sweeps_to_converge(minimizers, x0, tol=1e-3, max_sweeps=20_000):
    _, history = gt.alternating_minimization(minimizers, x0, max_sweeps)
    dist = np.linalg.norm(np.asarray(history), axis=1)  # the minimum is at 0
    below = np.nonzero(dist < tol)[0]
    return int(below[0]) + 1 if below.size else None


def test_the_textbooks_slow_case_is_slow_and_the_separable_case_fast():
    x0 = jnp.array([1.0, 1.0])
    slow = _sweeps_to_converge(_textbook_minimizers(1e-3), x0)
    # Each sweep multiplies the error by 1/(1+α)^2: about ln(1000)/(2α) sweeps.
    assert slow is not None and slow > 3000
    separable = [lambda p: p.at[0].set(0.0), lambda p: p.at[1].set(0.0)]
    assert _sweeps_to_converge(separable, x0) == 1
    # Newton solves the quadratic in one step (the text's comparison).
    f = lambda x: (x[0] - x[1]) ** 2 + 1e-3 * (x[0] ** 2 + x[1] ** 2)
    newton = x0 - jnp.linalg.solve(jax.hessian(f)(x0), jax.grad(f)(x0))
    np.testing.assert_allclose(newton, 0.0, atol=1e-4)  # float32, cond ≈ 2000


def test_alternating_minimization_on_ridge_matrix_factorisation():
    """Sparse-coding-like alternation with closed-form blocks: min over H, then
    W, of ||X - W H||² + λ(||W||² + ||H||²); each block is a ridge regression."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
    lam = 0.1

    def objective(p):
        return jnp.sum((x - p["w"] @ p["h"]) ** 2) + lam * (
            jnp.sum(p["w"] ** 2) + jnp.sum(p["h"] ** 2)
        )

    def solve_h(p):
        w = p["w"]
        h = jnp.linalg.solve(w.T @ w + lam * jnp.eye(w.shape[1]), w.T @ x)
        return {**p, "h": h}

    def solve_w(p):
        h = p["h"]
        w = jnp.linalg.solve(h @ h.T + lam * jnp.eye(h.shape[0]), h @ x.T).T
        return {**p, "w": w}

    init = {
        "w": jnp.asarray(rng.normal(size=(6, 2)), jnp.float32),
        "h": jnp.zeros((2, 5)),
    }
    final, history = gt.alternating_minimization([solve_h, solve_w], init, 30)
    values = np.array(
        [objective(jax.tree.map(lambda a, i=i: a[i], history)) for i in range(30)]
    )
    assert np.all(np.diff(values) <= 1e-4 * values[:-1])  # monotone (block-exact)
    # The H block is exactly the least-squares solution given W (NumPy reference).
    w = np.asarray(final["w"], np.float64)
    h_ref = np.linalg.lstsq(
        np.vstack([w, np.sqrt(lam) * np.eye(2)]),
        np.vstack([np.asarray(x, np.float64), np.zeros((2, 5))]),
        rcond=None,
    )[0]
    np.testing.assert_allclose(solve_h(final)["h"], h_ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (
            lambda: gt.block_coordinate_descent(gt.sgd(0.1), LABELS, order="zigzag"),
            "order",
        ),
        (
            lambda: gt.block_coordinate_descent(gt.sgd(0.1), LABELS, steps_per_block=0),
            "steps_per_block",
        ),
        (lambda: gt.alternating_minimization([], jnp.zeros(2), 3), "block_minimizers"),
        (lambda: gt.alternating_minimization([abs], jnp.zeros(2), 0), "num_sweeps"),
    ],
)
def test_bad_arguments(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


def test_unknown_block_label_is_named():
    tx = gt.block_coordinate_descent(gt.sgd(0.1), LABELS, blocks=["first"])
    with pytest.raises(ValueError, match="second"):
        tx.init(_params())
