"""Contract tests run over every optimizer in the registry."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from tests.registry import IDS, REGISTRY, ROSENBROCK_STEPS

registry = pytest.mark.parametrize("entry", REGISTRY, ids=IDS)


def _quadratic(params):
    """0.5 Σ a_i x_i² with curvatures 1..10, minimum 0 at the origin."""
    x = params["x"]
    a = jnp.linspace(1.0, 10.0, x.shape[0], dtype=x.dtype)
    return 0.5 * jnp.sum(a * x * x)


def _rosenbrock(params):
    x, y = params["x"], params["y"]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _run(tx, loss, params, steps):
    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return (gt.apply_updates(params, updates), state), None

    (params, state), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))(
        (params, tx.init(params))
    )
    return params, state


def _signature(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.asarray(x).dtype) for x in jax.tree.leaves(tree)
    ]


@registry
def test_jit_and_no_jit_agree(entry):
    tx = entry.build()
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    grads = {"w": jnp.array([0.3, -0.1, 0.2]), "b": jnp.array(-1.0)}
    state = tx.init(params)
    chex.assert_trees_all_close(jax.jit(tx.init)(params), state)
    eager = tx.update(grads, state, params)
    jitted = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6)


@registry
def test_state_structure_and_dtypes_are_stable(entry):
    tx = entry.build()
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    state = tx.init(params)
    first = _signature(state)
    update = jax.jit(tx.update)
    for i in range(3):
        grads = jax.tree.map(lambda p, i=i: jnp.full_like(p, 0.1 * (i + 1)), params)
        updates, state = update(grads, state, params)
        params = gt.apply_updates(params, updates)
        assert _signature(state) == first


@registry
def test_no_recompilation_on_later_steps(entry):
    tx = entry.build()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        grads = jax.grad(_quadratic)(params)
        updates, state = tx.update(grads, state, params)
        return gt.apply_updates(params, updates), state

    chex.clear_trace_counter()
    params = {"x": jnp.ones(4)}
    state = tx.init(params)
    for _ in range(3):
        params, state = step(params, state)


@registry
def test_converges_on_a_parabola(entry):
    params, _ = _run(entry.build(), _quadratic, {"x": jnp.ones(6)}, steps=300)
    assert float(_quadratic(params)) < 1e-3


@pytest.mark.slow
@registry
def test_converges_on_rosenbrock(entry):
    tx = entry.factory(**entry.rosenbrock_kwargs)
    start = {"x": jnp.array(-1.2), "y": jnp.array(1.0)}
    params, _ = _run(tx, _rosenbrock, start, steps=ROSENBROCK_STEPS)
    distance = float(jnp.hypot(params["x"] - 1, params["y"] - 1))
    assert distance < 1e-2, f"ended at {params} after {ROSENBROCK_STEPS} steps"


def _is_schedule_free(entry):
    return not any(callable(v) for v in entry.kwargs.values())


@registry
def test_inject_hyperparams_matches_the_plain_optimizer_in_float64(entry, x64):
    plain = entry.build()
    injected = gt.inject_hyperparams(entry.factory, static_args=entry.static_args)(
        **entry.kwargs
    )
    params = {"x": jnp.linspace(-1.0, 2.0, 5, dtype=jnp.float64)}
    p_plain, _ = _run(plain, _quadratic, params, steps=20)
    p_inj, s_inj = _run(injected, _quadratic, params, steps=20)
    assert p_inj["x"].dtype == jnp.float64
    chex.assert_trees_all_close(p_inj, p_plain, rtol=1e-15, atol=0)
    for name, value in s_inj.hyperparams.items():
        assert value.dtype == jnp.float64, name


@registry
def test_nested_trees_with_none_empty_and_scalar_leaves(entry):
    tx = entry.build()
    params = {
        "dense": {"kernel": jnp.ones((2, 3)), "bias": None},
        "empty": {},
        "nothing": (),
        "scale": jnp.array(2.0),
        "layers": [jnp.arange(3.0), (jnp.ones(1),)],
    }
    grads = jax.tree.map(lambda p: 0.5 * p + 0.1, params)
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_equal_structs(updates, params)
    assert updates["dense"]["bias"] is None
    chex.assert_tree_all_finite(updates)
    new = gt.apply_updates(params, updates)
    chex.assert_trees_all_equal_shapes_and_dtypes(new, params)


@registry
def test_empty_tree(entry):
    tx = entry.build()
    state = tx.init({})
    updates, _ = tx.update({}, state, {})
    assert updates == {}


@registry
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
def test_parameter_dtypes_are_preserved(entry, dtype, x64):
    tx = entry.build()
    params = {"w": jnp.linspace(-1.0, 1.0, 4).astype(dtype), "s": jnp.ones((), dtype)}
    state = tx.init(params)
    first = _signature(state)
    for _ in range(3):
        grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2) + p["s"] ** 2)(params)
        updates, state = tx.update(grads, state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
        params = gt.apply_updates(params, updates)
    assert _signature(state) == first
    chex.assert_tree_all_finite(params)
    assert np.all(np.abs(np.asarray(params["w"], np.float32)) < 1.5)
