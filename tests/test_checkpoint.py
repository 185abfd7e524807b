"""Checkpoints: bit-identical resume for every optimizer, clear mismatch errors.

Every registry optimizer, plus averaging, `inject_hyperparams` and the
second-order methods (whose states hold line-search brackets and curvature
pairs), is run 4 steps uninterrupted, and 2 steps, saved, restored into
freshly initialised trees, and run 2 more: the two runs must agree bit for bit.
"""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from gradtransforms import second_order
from tests.registry import REGISTRY

EXTRAS = {
    "adam_polyak_ema": lambda: gt.chain(
        gt.adam(0.05), gt.polyak_average(start_step=1), gt.ema_average(0.9)
    ),
    "injected_adam": lambda: gt.inject_hyperparams(gt.adam)(
        learning_rate=gt.linear_decay_schedule(0.1, 0.01, 10), b1=0.8
    ),
    "guarded_adamw_masked": lambda: gt.apply_if_finite(
        gt.adamw(0.05, mask={"w": True, "b": False, "h": True})
    ),
    "lbfgs": lambda: second_order.lbfgs(memory_size=3),
    "bfgs": lambda: second_order.bfgs(),
    "conjugate_gradient": lambda: second_order.conjugate_gradient(),
}
SECOND_ORDER = {"lbfgs", "bfgs", "conjugate_gradient"}
CASES = {e.name: e.build for e in REGISTRY} | EXTRAS

STEPS, SAVE_AT = 4, 2


def _loss(params):
    w, b, h = params["w"], params["b"], params["h"].astype(jnp.float32)
    return (
        jnp.sum((w - jnp.arange(3.0)) ** 2 * jnp.array([1.0, 3.0, 10.0]))
        + (1 - b) ** 2
        + 100 * (b - jnp.sum(w) ** 2 / 9) ** 2
        + jnp.sum(h**2)
    )


def _params(h_dtype=jnp.bfloat16):
    return {
        "w": jnp.array([0.3, -1.2, 2.0]),
        "b": jnp.array(0.5),
        "h": jnp.linspace(-1.0, 1.0, 4).astype(h_dtype),
    }


def _stepper(tx, second_order_call):
    # First-order steps run eagerly: bit-identical all the same, and the
    # primitives compiled once serve every optimizer (no compile per case).
    maybe_jit = jax.jit if second_order_call else (lambda f: f)

    @maybe_jit
    def step(params, state):
        value, grads = jax.value_and_grad(_loss)(params)
        extra = (
            {"value": value, "grad": grads, "value_fn": _loss}
            if second_order_call
            else {}
        )
        updates, state = tx.update(grads, state, params, **extra)
        return gt.apply_updates(params, updates), state

    return step


def _bitwise_equal(a, b):
    """Same tree (container types included) and every leaf equal bit for bit."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for (path, x), y in zip(
        jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True
    ):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.dtype, x.shape) == (y.dtype, y.shape), jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), jax.tree_util.keystr(path)


SLOW = {"bfgs", "conjugate_gradient"}  # long compiles; still run in CI


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES],
)
def test_resume_is_bit_identical(name, tmp_path):
    tx = CASES[name]()
    step = _stepper(tx, name in SECOND_ORDER)
    # BFGS cannot take mixed-dtype trees (it ravels them into one vector).
    h_dtype = jnp.float32 if name == "bfgs" else jnp.bfloat16
    params = _params(h_dtype)
    state = tx.init(params)
    for _ in range(SAVE_AT):
        params, state = step(params, state)
    saved = ckpt.save(tmp_path / "ckpt", params, state, step=SAVE_AT)
    mid_params, mid_state = params, state
    for _ in range(STEPS - SAVE_AT):
        params, state = step(params, state)

    fresh = _params(h_dtype)  # a new process would build these from scratch
    r_params, r_state, r_step = ckpt.restore(saved, fresh, tx.init(fresh))
    assert r_step == SAVE_AT
    _bitwise_equal(r_params, mid_params)
    _bitwise_equal(r_state, mid_state)
    assert jax.tree.structure(r_state) == jax.tree.structure(mid_state)
    for _ in range(STEPS - SAVE_AT):
        r_params, r_state = step(r_params, r_state)
    _bitwise_equal(r_params, params)
    _bitwise_equal(r_state, state)
    chex.assert_tree_all_finite(r_params)


def test_restore_into_abstract_trees_from_eval_shape(tmp_path):
    tx = gt.adam(0.1)
    params = _params()
    state = tx.init(params)
    ckpt.save(tmp_path / "c", params, state, step=7)
    params_like = jax.eval_shape(lambda: params)
    state_like = jax.eval_shape(tx.init, params_like)
    r_params, r_state, step = ckpt.restore(tmp_path / "c", params_like, state_like)
    assert step == 7
    _bitwise_equal(r_params, params)
    _bitwise_equal(r_state, state)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(r_state))


def _saved_adam(tmp_path):
    params = _params()
    tx = gt.adam(0.1)
    path = ckpt.save(tmp_path / "adam", params, tx.init(params), step=1)
    return path, params


@pytest.mark.parametrize(
    ("other", "where", "saved_says"),
    [
        (lambda: gt.sgd(0.1, momentum=0.9), "opt_state[0]", "ScaleByAdamState"),
        (lambda: gt.rmsprop(0.1, centered=True), "opt_state[0]", "ScaleByAdamState"),
        (lambda: gt.adamw(0.1), "opt_state[1]", "EmptyState"),
        (
            lambda: gt.adam(0.1, mu_dtype=jnp.bfloat16),
            "opt_state[0].mu['b']",
            "float32[]",
        ),
        (lambda: gt.apply_if_finite(gt.adam(0.1)), "opt_state", "tuple"),
    ],
    ids=["adam_into_momentum", "same_fields_other_type", "extra_link", "dtype", "wrap"],
)
def test_restoring_into_another_optimizer_names_the_first_difference(
    tmp_path, other, where, saved_says
):
    path, params = _saved_adam(tmp_path)
    with pytest.raises(ckpt.CheckpointMismatchError) as info:
        ckpt.restore(path, params, other().init(params))
    message = str(info.value)
    assert f"first difference at {where}:" in message, message
    assert saved_says in message, message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: {**p, "w": jnp.zeros(4)}, "params['w']"),
        (lambda p: {**p, "w": p["w"].astype(jnp.bfloat16)}, "params['w']"),
        (lambda p: {**p, "extra": jnp.zeros(1)}, "params['extra']"),
        (lambda p: {k: v for k, v in p.items() if k != "b"}, "params['b']"),
    ],
    ids=["shape", "dtype", "extra_leaf", "missing_leaf"],
)
def test_restoring_other_parameters_names_the_first_difference(tmp_path, change, where):
    path, params = _saved_adam(tmp_path)
    other = change(params)
    with pytest.raises(ckpt.CheckpointMismatchError, match=rf"at {re.escape(where)}"):
        ckpt.restore(path, other, gt.adam(0.1).init(other))


def test_save_and_restore_errors(tmp_path):
    params = _params()
    state = gt.sgd(0.1).init(params)
    with pytest.raises(FileNotFoundError):
        ckpt.restore(tmp_path / "missing", params, state)
    with pytest.raises(TypeError, match="step"):
        ckpt.save(tmp_path / "a", params, state, step=1.5)
    with pytest.raises(ValueError, match="step"):
        ckpt.save(tmp_path / "a", params, state, step=-1)
    ckpt.save(tmp_path / "a", params, state, step=1)
    with pytest.raises(Exception, match="exist"):
        ckpt.save(tmp_path / "a", params, state, step=2)
    ckpt.save(tmp_path / "a", params, state, step=2, force=True)
    assert ckpt.restore(tmp_path / "a", params, state)[2] == 2


def test_checkpoint_manager_with_save_args(tmp_path):
    """Rotating checkpoints through Orbax's own `CheckpointManager`."""
    tx = gt.adam(0.1)
    step_fn = _stepper(tx, False)
    params = _params()
    state = tx.init(params)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, enable_async_checkpointing=False
    )
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        for i in range(1, 4):
            params, state = step_fn(params, state)
            manager.save(i, args=ckpt.save_args(params, state, i))
        manager.wait_until_finished()
        assert manager.all_steps() == [2, 3]
        restored = manager.restore(
            3, args=ckpt.restore_args(_params(), tx.init(_params()))
        )
    _bitwise_equal(restored["state"]["params"], params)
    _bitwise_equal(restored["state"]["opt_state"], state)
    assert restored["meta"]["step"] == 3
