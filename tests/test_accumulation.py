"""Gradient accumulation: k microbatches and one step equal the big-batch step."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests.registry import IDS, REGISTRY

BATCH, K, STEPS = 24, 4, 3


def _data(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3))
    y = np.tanh(x @ np.array([1.0, -2.0, 0.5])) + 0.1 * rng.standard_normal(BATCH)
    return jnp.asarray(x, dtype), jnp.asarray(y, dtype)


def _params(dtype):
    return {
        "w": jnp.asarray([[0.3, -0.1], [0.2, 0.4], [-0.5, 0.1]], dtype),
        "v": jnp.asarray([0.7, -0.3], dtype),
        "b": jnp.zeros((), dtype),
    }


def _loss(params, x, y):
    """Mean squared error of a tiny two-unit tanh network: mean over the batch."""
    pred = jnp.tanh(x @ params["w"]) @ params["v"] + params["b"]
    return jnp.mean((pred - y) ** 2)


_grad = jax.jit(jax.grad(_loss))


def _big_batch(tx, params, x, y, steps=STEPS):
    """The reference: `steps` steps of `tx` on the whole batch's gradient."""
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(_grad(params, x, y), state, params)
        params = gt.apply_updates(params, updates)
    return params, state


def _accumulated(tx, params, x, y, k=K, steps=STEPS):
    """`steps * k` calls of `accumulate_gradients(tx, k)`, one microbatch each."""
    acc = gt.accumulate_gradients(tx, k)
    state = acc.init(params)
    update = jax.jit(acc.update)
    micro = len(x) // k
    for _ in range(steps):
        for j in range(k):
            part = slice(j * micro, (j + 1) * micro)
            grads = _grad(params, x[part], y[part])
            updates, state = update(grads, state, params)
            params = gt.apply_updates(params, updates)
    return params, state


def max_abs_difference(entry) -> float:
    """Largest |θ_accumulated - θ_big batch| after STEPS steps, float64."""
    with jax.enable_x64(True):
        x, y = _data(jnp.float64)
        tx = entry.build()
        want, _ = _big_batch(tx, _params(jnp.float64), x, y)
        got, _ = _accumulated(tx, _params(jnp.float64), x, y)
        return max(
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
        )


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_equals_the_big_batch_step_in_float64(entry):
    """Every registry optimizer, 3 steps of 4 microbatches: the parameters of
    the 24-example batch, to rounding (an independent gradient of the mean)."""
    assert max_abs_difference(entry) < 1e-13


def test_inner_state_equals_the_big_batch_state(x64):
    x, y = _data(jnp.float64)
    tx = gt.adam(0.05)
    _, want = _big_batch(tx, _params(jnp.float64), x, y)
    _, state = _accumulated(tx, _params(jnp.float64), x, y)
    chex.assert_trees_all_close(state.inner_opt_state, want, atol=1e-14)
    assert int(state.mini_step) == 0 and int(state.gradient_step) == STEPS


def test_zero_updates_and_untouched_state_until_the_kth_call():
    tx = gt.accumulate_gradients(gt.sgd(0.1, momentum=0.9), 3)
    params = _params(jnp.float32)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for j in range(2):
        updates, new = tx.update(grads, state, params)
        chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, params))
        chex.assert_trees_all_equal(new.inner_opt_state, state.inner_opt_state)
        assert int(new.mini_step) == j + 1
        state = new
    updates, state = tx.update(grads, state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda p: -0.1 * p, grads))
    assert int(state.mini_step) == 0 and int(state.gradient_step) == 1
    chex.assert_trees_all_equal(state.acc_grads, jax.tree.map(jnp.zeros_like, params))


def test_a_schedule_grows_the_batch():
    """k = 1 + step: steps emitted after calls 1, 3, 6, 10 (batches 1, 2, 3, 4)."""
    tx = gt.accumulate_gradients(gt.sgd(1.0), lambda step: 1 + step)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    emitted = []
    update = jax.jit(tx.update)
    for call in range(1, 11):
        grads = {"w": jnp.asarray(float(call))}
        updates, state = update(grads, state, params)
        if float(updates["w"]) != 0:
            emitted.append((call, -float(updates["w"])))
    # each step's update is the mean of its microbatches' gradients
    assert emitted == [(1, 1.0), (3, 2.5), (6, 5.0), (10, 8.5)]


def test_a_non_finite_microbatch_skips_the_whole_step():
    inner = gt.apply_if_finite(gt.sgd(0.1, momentum=0.9))
    tx = gt.accumulate_gradients(inner, 4)
    params = _params(jnp.float32)
    state = tx.init(params)
    good = jax.tree.map(jnp.ones_like, params)
    bad = {**good, "v": jnp.asarray([1.0, jnp.nan])}
    for grads in (good, bad, good, good):
        updates, state = tx.update(grads, state, params)
    chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, params))
    guard = state.inner_opt_state
    assert int(guard.total_notfinite) == 1 and not bool(guard.last_finite)
    chex.assert_trees_all_equal(guard.inner_state, inner.init(params).inner_state)
    # the accumulator starts again: the next step is a clean first step
    chex.assert_trees_all_equal(state.acc_grads, jax.tree.map(jnp.zeros_like, params))
    for _ in range(4):
        updates, state = tx.update(good, state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -0.1 * g, good))


def test_16_bit_gradients_accumulate_in_float32_unless_told():
    params = {"w": jnp.zeros(3, jnp.bfloat16), "x": jnp.zeros(2)}
    state = gt.accumulate_gradients(gt.sgd(0.1), 2).init(params)
    assert state.acc_grads["w"].dtype == jnp.float32
    assert state.acc_grads["x"].dtype == jnp.float32
    tx = gt.accumulate_gradients(gt.sgd(0.1), 2, accumulator_dtype=jnp.bfloat16)
    assert tx.init(params).acc_grads["w"].dtype == jnp.bfloat16
    tx = gt.accumulate_gradients(gt.sgd(0.1), 2)
    grads = {"w": jnp.full(3, 1 / 3, jnp.bfloat16), "x": jnp.ones(2)}
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update(grads, state, params)
    assert updates["w"].dtype == jnp.bfloat16
    assert updates["x"].dtype == jnp.float32


def test_abstract_init_and_none_leaves():
    params = {"w": jnp.ones((2, 3)), "frozen": None, "b": jnp.zeros(3)}
    tx = gt.accumulate_gradients(gt.adam(0.1), 2)
    abstract = jax.eval_shape(tx.init, jax.eval_shape(lambda: params))
    state = tx.init(params)
    chex.assert_trees_all_equal_shapes_and_dtypes(abstract, state)
    assert state.acc_grads["frozen"] is None
    grads = {"w": jnp.ones((2, 3)), "frozen": None, "b": jnp.ones(3)}
    for _ in range(2):
        updates, state = jax.jit(tx.update)(grads, state, params)
    assert updates["frozen"] is None
    chex.assert_tree_all_finite(updates["w"])


def test_packed_parameters_give_the_same_steps():
    x, y = _data(jnp.float32)
    params = _params(jnp.float32)
    layout = gt.packed_layout(params)
    tx = gt.adam(0.05)
    plain, _ = _accumulated(tx, params, x, y)
    acc = gt.accumulate_gradients(tx, K)
    packed = layout.pack(params)
    state = acc.init(packed)
    grad = jax.grad(lambda p, xb, yb: _loss(layout.unpack(p), xb, yb))
    micro = BATCH // K
    for _ in range(STEPS):
        for j in range(K):
            part = slice(j * micro, (j + 1) * micro)
            updates, state = acc.update(grad(packed, x[part], y[part]), state, packed)
            packed = gt.apply_updates(packed, updates)
    chex.assert_trees_all_close(layout.unpack(packed), plain, atol=1e-6)


def test_resume_mid_accumulation_is_bit_exact(tmp_path):
    """Save after 2 of 4 microbatches, restore, finish: as uninterrupted."""
    x, y = _data(jnp.float32)
    tx = gt.accumulate_gradients(gt.adam(0.05), K)
    params = _params(jnp.float32)
    micro = BATCH // K
    grads = [
        _grad(params, x[j * micro :][:micro], y[j * micro :][:micro]) for j in range(K)
    ]

    def run(params, state, parts):
        for g in parts:
            updates, state = tx.update(g, state, params)
            params = gt.apply_updates(params, updates)
        return params, state

    want = run(params, tx.init(params), grads)
    half = run(params, tx.init(params), grads[:2])
    gt.checkpoint.save(tmp_path / "c", *half, step=2)
    p, s, step = gt.checkpoint.restore(tmp_path / "c", params, tx.init(params))
    assert step == 2 and int(s.mini_step) == 2
    chex.assert_trees_all_equal(run(p, s, grads[2:]), want)


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, TypeError), (2.0, TypeError), ("4", TypeError), (0, ValueError)],
)
def test_every_k_steps_is_validated(value, error):
    with pytest.raises(error, match="every_k_steps"):
        gt.accumulate_gradients(gt.sgd(0.1), value)


def test_tx_is_validated():
    with pytest.raises(TypeError, match="tx"):
        gt.accumulate_gradients(object(), 2)  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="accumulator_dtype"):
        gt.accumulate_gradients(gt.sgd(0.1), 2, accumulator_dtype=jnp.int32)


if __name__ == "__main__":  # the figures quoted in the docs
    for e in REGISTRY:
        print(f"{e.name:24s} {max_abs_difference(e):.2e}")
