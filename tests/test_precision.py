"""precision.py: `master_weights`, a float32 master copy of 16-bit parameters.

The reference for the master copy is a NumPy transcription of Adam (Algorithm
8.7) in float32 on the same gradients; the parameters must be the master copy
rounded to their dtype, bit for bit, at every step.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt

PARAMS0 = np.linspace(0.5, 1.75, 6)  # exact in bfloat16 and float16
# Mostly positive: Adam's steps of about 1e-4 add up to about -0.01.
GRADS = 1.0 + 0.5 * np.random.default_rng(3).normal(size=(100, 6))


def _numpy_adam_float32(lr, grads, b1=0.9, b2=0.999, eps=1e-8):
    """The master copy after each Adam step, in float32 (Algorithm 8.7)."""
    f32 = np.float32
    theta = PARAMS0.astype(f32)
    s, r, out = np.zeros_like(theta), np.zeros_like(theta), []
    for t, g in enumerate(grads.astype(f32), start=1):
        s = f32(b1) * s + f32(1 - b1) * g
        r = f32(b2) * r + f32(1 - b2) * g * g
        s_hat, r_hat = s / f32(1 - b1**t), r / f32(1 - b2**t)
        theta = theta - f32(lr) * s_hat / (np.sqrt(r_hat) + f32(eps))
        out.append(theta)
    return np.array(out)


def _train(tx, dtype, grads=GRADS):
    """The parameters (as float32) and the state after each step, scanned.

    The parameters leave the scan in their own dtype: converted to float32
    inside it, XLA (excess precision allowed, its default) may skip their
    rounding to bfloat16.
    """
    params = jnp.asarray(PARAMS0, dtype)

    def step(carry, g):
        params, state = carry
        updates, state = tx.update(g.astype(dtype), state, params)
        params = gt.apply_updates(params, updates)
        return (params, state), (params, state)

    _, (trajectory, states) = jax.lax.scan(
        step, (params, tx.init(params)), jnp.asarray(grads, jnp.float32)
    )
    return np.asarray(trajectory, np.float32), states


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_adam_1e_4_moves_16_bit_parameters_only_under_master_weights(dtype):
    # Adam's steps of about 1e-4 are below half the spacing of these numbers
    # (2^-9 in [0.5, 1) for bfloat16): each is rounded away, as documented.
    plain, _ = _train(gt.adam(1e-4), dtype)
    np.testing.assert_array_equal(plain[-1], PARAMS0.astype(np.float32))

    trajectory, states = _train(gt.master_weights(gt.adam(1e-4)), dtype)
    master = np.asarray(states.master_params)
    grads = np.asarray(jnp.asarray(GRADS, jnp.float32).astype(dtype), np.float32)
    np.testing.assert_allclose(
        master, _numpy_adam_float32(1e-4, grads), rtol=0, atol=2e-6
    )
    # The parameters are the master copy rounded, bit for bit, every step.
    rounded = np.asarray(jnp.asarray(master).astype(dtype).astype(jnp.float32))
    np.testing.assert_array_equal(trajectory, rounded)
    assert np.all(trajectory[-1] != PARAMS0.astype(np.float32))


def test_wider_leaves_keep_no_copy_and_get_the_inner_update():
    params = {"h": jnp.ones(3, jnp.bfloat16), "f": jnp.ones(2), "none": None}
    grads = {"h": jnp.ones(3, jnp.bfloat16), "f": jnp.full(2, 0.5), "none": None}
    tx = gt.master_weights(gt.adam(0.1))
    state = tx.init(params)
    assert state.master_params["f"] is None and state.master_params["none"] is None
    assert state.master_params["h"].dtype == jnp.float32
    assert state.inner_state[0].mu["h"].dtype == jnp.float32
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert updates["none"] is None and updates["h"].dtype == jnp.bfloat16
    inner = gt.adam(0.1)
    expected, _ = inner.update(grads, inner.init(params), params)
    np.testing.assert_array_equal(updates["f"], expected["f"])


def test_init_takes_abstract_parameters():
    params = {"h": jnp.ones((2, 3), jnp.float16), "f": jnp.ones(2), "none": None}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    tx = gt.master_weights(gt.adam(1e-3))
    expected = jax.tree.map(lambda x: (x.shape, x.dtype), tx.init(params))
    for state in (tx.init(abstract), jax.eval_shape(tx.init, abstract)):
        assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == expected


def test_integer_leaves_are_refused_by_path():
    tx = gt.master_weights(gt.adam(1e-3))
    params = {"w": jnp.ones(2, jnp.bfloat16), "step": jnp.zeros((), jnp.int32)}
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        tx.init(params)


def test_update_without_params_names_the_argument():
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    tx = gt.master_weights(gt.sgd(0.1))
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


def test_arguments_are_checked_when_built():
    with pytest.raises(TypeError, match="inner"):
        gt.master_weights(gt.adam)  # the factory, not a transformation
    with pytest.raises(TypeError, match="dtype"):
        gt.master_weights(gt.adam(1e-3), dtype=jnp.int32)


def test_extra_arguments_reach_the_inner_transformation():
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(extra_args)
        return updates, state

    inner = gt.GradientTransformationExtraArgs(lambda p: gt.EmptyState(), update)
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    tx = gt.master_weights(inner)
    tx.update(params, tx.init(params), params, value=jnp.ones(()))
    assert list(seen[0]) == ["value"]


def test_a_step_across_zero_lands_within_a_rounding_and_is_caught_up():
    """Sterbenz's lemma does not apply across 0: the parameter lands off the
    rounded master copy, which is unaffected; the next step lands on it."""
    params = jnp.ones(1, jnp.bfloat16)
    tx = gt.master_weights(gt.identity())  # the update is the gradient
    state = tx.init(params)
    step = jnp.full(1, -1.0009765625, jnp.float32)  # -(1 + 2^-10), not bfloat16
    updates, state = tx.update(step, state, params)
    params = gt.apply_updates(params, updates)
    target = np.float32(1.0) + np.float32(-1.0009765625)  # -2^-10, exact
    np.testing.assert_array_equal(state.master_params, [target])
    assert float(params[0]) == 0.0  # 1 + round(-2^-10 - 1) = 1 - 1
    updates, state = tx.update(jnp.zeros(1, jnp.bfloat16), state, params)
    params = gt.apply_updates(params, updates)
    assert float(params[0]) == target  # 2^-10 is exact in bfloat16
    chex.assert_trees_all_equal(state.master_params, jnp.asarray([target]))
