"""Rotating checkpoints through Orbax's own `CheckpointManager`.

`save_args` / `restore_args` are the Orbax arguments of `save` / `restore`;
the manager restores into the caller's trees (NNX objects in place) after the
same checks as `restore`.
"""

from __future__ import annotations

import orbax.checkpoint as ocp
import pytest

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from tests.checkpoint.common import (
    bitwise_equal,
    bn_mlp,
    make_params,
    nnx_train_step,
    nnx_values,
    stepper,
)

OPTIONS = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)


def test_checkpoint_manager_with_pytrees(tmp_path):
    tx = gt.adam(0.1)
    step_fn = stepper(tx)
    params = make_params()
    state = tx.init(params)
    with ocp.CheckpointManager(tmp_path / "run", options=OPTIONS) as manager:
        for i in range(1, 4):
            params, state = step_fn(params, state)
            manager.save(i, args=ckpt.save_args(params, state, i, tx=tx))
        manager.wait_until_finished()
        assert manager.all_steps() == [2, 3]
        args = ckpt.restore_args(make_params(), tx.init(make_params()), tx=tx)
        assert manager.restore(2, args=args)["meta"]["step"] == 2
        restored = manager.restore(3, args=args)  # the same arguments, reused
    bitwise_equal(restored["state"]["params"], params)
    bitwise_equal(restored["state"]["opt_state"], state)
    assert restored["meta"]["step"] == 3
    # what the manager wrote, `restore` reads
    r_params, r_state, step = ckpt.restore(tmp_path / "run" / "3", params, state)
    assert step == 3
    bitwise_equal(r_params, params)
    bitwise_equal(r_state, state)


def test_checkpoint_manager_with_an_nnx_model_and_optimizer(tmp_path):
    import jax.numpy as jnp

    model, optimizer = bn_mlp()
    x = jnp.linspace(-1.0, 1.0, 18).reshape(6, 3)
    with ocp.CheckpointManager(tmp_path / "run", options=OPTIONS) as manager:
        for _ in range(3):
            nnx_train_step(model, optimizer, x)
            step = optimizer.step[...]
            manager.save(int(step), args=ckpt.save_args(model, optimizer, step))
    model2, optimizer2 = bn_mlp(seed=1)
    with ocp.CheckpointManager(tmp_path / "run", options=OPTIONS) as manager:
        latest = manager.latest_step()
        restored = manager.restore(latest, args=ckpt.restore_args(model2, optimizer2))
    assert latest == 3 and restored["meta"]["step"] == 3
    assert restored["state"]["params"] is model2
    assert restored["state"]["opt_state"] is optimizer2
    bitwise_equal(nnx_values(model2), nnx_values(model))
    bitwise_equal(nnx_values(optimizer2), nnx_values(optimizer))


def test_the_manager_checks_the_trees_before_reading(tmp_path):
    params = make_params()
    with ocp.CheckpointManager(tmp_path / "run", options=OPTIONS) as manager:
        manager.save(1, args=ckpt.save_args(params, gt.adam(0.1).init(params), 1))
    with ocp.CheckpointManager(tmp_path / "run", options=OPTIONS) as manager:
        with pytest.raises(ckpt.CheckpointMismatchError, match=r"opt_state\[0\]"):
            manager.restore(
                1,
                args=ckpt.restore_args(params, gt.sgd(0.1, momentum=0.9).init(params)),
            )
