"""Polyak and EMA averaging of iterates, against NumPy over the recorded iterates."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt


def _loss(params):
    return jnp.sum((params["w"] - jnp.array([1.0, -2.0, 0.5])) ** 2) + jnp.sum(
        jnp.cos(3.0 * params["w"])
    )


def _iterates(tx, steps=12, params=None):
    """Run tx and return (list of params θ_1..θ_t as NumPy, final state)."""
    params = params or {"w": jnp.array([0.3, 0.1, -0.4])}
    state = tx.init(params)
    step = jax.jit(tx.update)
    thetas = [params]
    for _ in range(steps):
        updates, state = step(jax.grad(_loss)(params), state, params)
        params = gt.apply_updates(params, updates)
        thetas.append(params)
    return [np.asarray(t["w"], np.float64) for t in thetas], state


def test_polyak_average_is_the_mean_of_the_iterates():
    thetas, state = _iterates(gt.chain(gt.sgd(0.2), gt.polyak_average()))
    expected = np.mean(thetas[1:], axis=0)  # θ_1 ... θ_t, not θ_0
    np.testing.assert_allclose(gt.averaged_params(state)["w"], expected, rtol=1e-6)
    assert int(state[1].count) == 12


def test_polyak_average_start_step_skips_early_iterates():
    thetas, state = _iterates(gt.chain(gt.sgd(0.2), gt.polyak_average(start_step=5)))
    np.testing.assert_allclose(
        gt.averaged_params(state)["w"], np.mean(thetas[6:], axis=0), rtol=1e-6
    )


def test_ema_average_without_debias_starts_from_the_initial_parameters():
    alpha = 0.7
    thetas, state = _iterates(
        gt.chain(gt.sgd(0.2), gt.ema_average(alpha, debias=False))
    )
    avg = thetas[0]
    for theta in thetas[1:]:  # eq. 8.39
        avg = alpha * avg + (1 - alpha) * theta
    np.testing.assert_allclose(gt.averaged_params(state)["w"], avg, rtol=1e-6)


def test_ema_average_with_debias_starts_from_zero_and_divides():
    alpha = 0.9
    thetas, state = _iterates(gt.chain(gt.sgd(0.2), gt.ema_average(alpha)))
    raw = np.zeros(3)
    for theta in thetas[1:]:
        raw = alpha * raw + (1 - alpha) * theta
    expected = raw / (1 - alpha ** (len(thetas) - 1))
    np.testing.assert_allclose(gt.averaged_params(state)["w"], expected, rtol=1e-6)


def test_updates_pass_through_unchanged():
    g = {"w": jnp.array([1.0, 2.0, 3.0])}
    for tx in (gt.polyak_average(), gt.ema_average(0.9)):
        out, _ = tx.update(g, tx.init(g), g)
        chex.assert_trees_all_equal(out, g)


def test_bfloat16_parameters_average_in_float32():
    params = {"w": jnp.array([0.3, 0.1, -0.4], jnp.bfloat16)}
    tx = gt.chain(gt.sgd(0.01), gt.polyak_average())
    state = tx.init(params)
    for _ in range(50):
        grads = {"w": jnp.ones(3, jnp.bfloat16)}
        updates, state = tx.update(grads, state, params)
        params = gt.apply_updates(params, updates)
    avg = gt.averaged_params(state)["w"]
    assert avg.dtype == jnp.float32
    # The exact mean of the (bfloat16) iterates would need float32: check that
    # the average is finer than bfloat16 can represent.
    assert not np.allclose(
        np.asarray(avg), np.asarray(avg.astype(jnp.bfloat16), np.float32)
    )
    tx_bf16 = gt.polyak_average(accumulator_dtype=jnp.bfloat16)
    assert tx_bf16.init(params).average["w"].dtype == jnp.bfloat16


def test_averaged_params_is_found_through_nesting():
    params = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    grads = {"a": jnp.array([0.5, -0.5]), "b": jnp.array(1.0)}
    nested = gt.inject_hyperparams(
        lambda learning_rate: gt.chain(
            gt.clip_by_global_norm(10.0),
            gt.masked(
                gt.chain(gt.sgd(learning_rate), gt.polyak_average()),
                {"a": True, "b": False},
            ),
        )
    )(learning_rate=0.1)
    state = nested.init(params)
    updates, state = nested.update(grads, state, params)
    new = gt.apply_updates(params, updates)
    with pytest.raises(ValueError, match="params="):
        gt.averaged_params(state)
    avg = gt.averaged_params(state, params=new)
    chex.assert_trees_all_close(avg, new)  # one iterate: the average is θ_1

    partitioned = gt.partition(
        {
            "x": gt.chain(gt.sgd(0.1), gt.polyak_average()),
            "y": gt.chain(gt.sgd(0.2), gt.ema_average(0.5, debias=False)),
        },
        {"a": "x", "b": "y"},
    )
    state = partitioned.init(params)
    updates, state = partitioned.update(grads, state, params)
    avg = gt.averaged_params(state)
    np.testing.assert_allclose(avg["a"], params["a"] - 0.1 * grads["a"])
    np.testing.assert_allclose(avg["b"], 0.5 * 3.0 + 0.5 * (3.0 - 0.2 * 1.0))


def test_averaged_params_without_an_average_raises():
    with pytest.raises(ValueError, match="no parameter average"):
        gt.averaged_params(gt.adam().init({"w": jnp.ones(2)}))


def test_update_without_params_raises():
    tx = gt.polyak_average()
    with pytest.raises(ValueError, match="params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: gt.polyak_average(start_step=-1), "start_step"),
        (lambda: gt.polyak_average(start_step=1.5), "start_step"),
        (lambda: gt.ema_average(1.0), "decay"),
        (lambda: gt.ema_average(-0.1), "decay"),
    ],
)
def test_bad_arguments(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


def test_state_does_not_alias_the_parameters_so_both_can_be_donated():
    tx = gt.chain(gt.sgd(0.1), gt.polyak_average(), gt.ema_average(0.9, debias=False))
    params = {"w": jnp.array([1.0, 2.0, 3.0])}

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(_loss)(params), state, params)
        return gt.apply_updates(params, updates), state

    donating = jax.jit(step, donate_argnums=(0, 1))
    state = tx.init(params)
    params, state = donating(params, state)  # fails if a buffer is shared
    chex.assert_tree_all_finite(state)
