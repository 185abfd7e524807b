"""Optimizers with the same state layout are told apart by their fingerprint.

Each pair below has identical state trees, so only the record of what built
the optimizer can refuse the restore; the error must name the first
difference, directly and through `orbax.checkpoint.CheckpointManager`.
"""

from __future__ import annotations

import json

import orbax.checkpoint as ocp
import pytest

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from gradtransforms.checkpoint.fingerprint import first_difference
from tests.checkpoint.common import bitwise_equal, bn_mlp, make_params

# name -> (saved with, restored into, the difference named)
PAIRS = {
    "polyak_vs_ema": (
        lambda: gt.chain(gt.sgd(0.1), gt.polyak_average()),
        lambda: gt.chain(gt.sgd(0.1), gt.ema_average(0.9)),
        "weight_fn: saved polyak_average.<locals>.<lambda>, restoring into "
        "ema_average.<locals>.weight (at chain.update_fns[1] / "
        "_running_average.weight_fn)",
    ),
    "heavy_ball_vs_nesterov": (
        lambda: gt.sgd(0.1, momentum=0.9),
        lambda: gt.sgd(0.1, momentum=0.9, nesterov=True),
        "nesterov: saved False, restoring into True (at chain.update_fns[1] / "
        "trace.nesterov)",
    ),
    "adam_vs_nadam": (
        lambda: gt.adam(0.1),
        lambda: gt.adam(0.1, nesterov=True),
        "nesterov: saved False, restoring into True (at chain.update_fns[0] / "
        "scale_by_adam.nesterov)",
    ),
    "learning_rate": (
        lambda: gt.adam(0.1),
        lambda: gt.adam(0.01),
        "step_size: saved -0.1, restoring into -0.01",
    ),
    "schedule_constant": (
        lambda: gt.sgd(gt.linear_decay_schedule(0.1, 0.01, 10)),
        lambda: gt.sgd(gt.linear_decay_schedule(0.1, 0.01, 20)),
        "transition_steps: saved 10, restoring into 20",
    ),
    "schedule_kind": (
        lambda: gt.sgd(gt.cosine_decay_schedule(0.1, 100)),
        lambda: gt.sgd(gt.exponential_decay(0.1, 100, 0.5)),
        "saved cosine_decay_schedule",
    ),
    "injected_b1": (
        lambda: gt.inject_hyperparams(gt.adam)(learning_rate=0.1, b1=0.9),
        lambda: gt.inject_hyperparams(gt.adam)(learning_rate=0.1, b1=0.8),
        "numeric['b1']: saved 0.9, restoring into 0.8",
    ),
    "mask": (
        lambda: gt.adamw(0.1, mask={"w": True, "b": False, "h": True}),
        lambda: gt.adamw(0.1, mask={"w": True, "b": True, "h": True}),
        "mask['b']: saved False, restoring into True",
    ),
    "clip_threshold": (
        lambda: gt.chain(gt.clip_by_global_norm(1.0), gt.adam(0.1)),
        lambda: gt.chain(gt.clip_by_global_norm(2.0), gt.adam(0.1)),
        "saved 1.0, restoring into 2.0",
    ),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_a_differently_configured_optimizer_is_refused(tmp_path, name):
    saved_tx, other_tx, says = PAIRS[name][0](), PAIRS[name][1](), PAIRS[name][2]
    params = make_params()
    state = saved_tx.init(params)
    path = ckpt.save(tmp_path / "c", params, state, step=1, tx=saved_tx)
    # the state layouts are the same: only the fingerprint tells them apart
    ckpt.restore(path, params, other_tx.init(params))
    with pytest.raises(ckpt.CheckpointMismatchError) as info:
        ckpt.restore(path, params, other_tx.init(params), tx=other_tx)
    message = str(info.value)
    assert says in message and path in message, message
    # on purpose, the check can be turned off
    _, r_state, _ = ckpt.restore(
        path, params, other_tx.init(params), tx=other_tx, check_optimizer=False
    )
    bitwise_equal(r_state, state)


@pytest.mark.parametrize(
    "name", ["polyak_vs_ema", "heavy_ball_vs_nesterov", "adam_vs_nadam"]
)
def test_refused_through_a_checkpoint_manager(tmp_path, name):
    saved_tx, other_tx, says = PAIRS[name][0](), PAIRS[name][1](), PAIRS[name][2]
    params = make_params()
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        args = ckpt.save_args(params, saved_tx.init(params), 4, tx=saved_tx)
        manager.save(4, args=args)
        manager.wait_until_finished()
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        with pytest.raises(ckpt.CheckpointMismatchError, match="run/4") as info:
            manager.restore(
                4, args=ckpt.restore_args(params, other_tx.init(params), tx=other_tx)
            )
        assert says in str(info.value)


def test_an_nnx_optimizer_is_checked_by_its_own_transformation(tmp_path):
    model, optimizer = bn_mlp(tx=gt.sgd(0.1, momentum=0.9))
    ckpt.save(tmp_path / "c", model, optimizer, step=0)
    model2, nesterov = bn_mlp(tx=gt.sgd(0.1, momentum=0.9, nesterov=True))
    with pytest.raises(ckpt.CheckpointMismatchError, match="nesterov: saved False"):
        ckpt.restore(tmp_path / "c", model2, nesterov)
    model3, same = bn_mlp(tx=gt.sgd(0.1, momentum=0.9))
    assert ckpt.restore(tmp_path / "c", model3, same)[1] is same


def test_fingerprints_are_json_and_equal_for_equal_constructions():
    def build():
        return gt.chain(
            gt.clip_by_global_norm(1.0),
            gt.inject_hyperparams(gt.adamw, static_args=("mask",))(
                learning_rate=gt.warmup_cosine_decay_schedule(1e-5, 1e-3, 10, 100),
                mask={"w": True},
            ),
            gt.add_noise(0.01, 0.55, key=0),
            gt.ema_average(0.99),
        )

    a, b = ckpt.fingerprint(build()), ckpt.fingerprint(build())
    assert json.loads(json.dumps(a)) == a
    assert first_difference(a, b) is None
    assert first_difference(json.loads(json.dumps(a)), b) is None


def test_a_noise_seed_is_part_of_the_configuration():
    a = ckpt.fingerprint(gt.add_noise(0.01, 0.55, key=0))
    b = ckpt.fingerprint(gt.add_noise(0.01, 0.55, key=1))
    assert first_difference(a, b) == "key: saved 0, restoring into 1 (at add_noise.key)"


def test_another_optimizer_altogether():
    a, b = ckpt.fingerprint(gt.adam(0.1)), ckpt.fingerprint(gt.sgd(0.1))
    assert str(first_difference(a, b)).startswith(
        "update: saved scale_by_adam, restoring into scale"
    )
