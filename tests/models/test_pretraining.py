"""Tests for models/pretraining.py (greedy supervised pretraining, Figure 8.7).

Checked: the returned network has the requested depth and is built from the
stages (layer l of the network is the layer trained at stage l, exactly when
the earlier layers are frozen); fine-tuning starts from the last stage; stage
and fine-tuning losses decrease; `fit` is a pure loop; errors name the
argument. (tests/examples/test_pretraining.py runs examples/pretraining.py.)

All the runs share one optimizer object, so their compiled loops are reused.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
from gradtransforms.models import MLP, ResidualMLP, fit, greedy_pretrain, load_digits
from gradtransforms.models.pretraining import cross_entropy

FEATURES = (64, 12, 12, 12, 10)  # three hidden layers: three stages
SETTINGS = {"stage_steps": 40, "finetune_steps": 30, "batch_size": 32}
TX = gt.adam(1e-2)
SEED = 3


@pytest.fixture(scope="module")
def data():
    digits = load_digits(flatten=True)
    return jnp.asarray(digits.x_train[:256]), jnp.asarray(digits.y_train[:256])


@pytest.fixture(scope="module")
def frozen(data):
    return greedy_pretrain(FEATURES, *data, optimizer=TX, key=SEED, **SETTINGS)


@pytest.fixture(scope="module")
def joint(data):
    return greedy_pretrain(
        FEATURES, *data, optimizer=TX, freeze=False, key=SEED, **SETTINGS
    )


def layer_arrays(layer: nnx.Linear) -> tuple[jax.Array, jax.Array]:
    return layer.kernel[...], layer.bias[...]


def full_loss(model, data) -> float:
    x, y = data
    return float(cross_entropy(model(x), y))


# --- structure -------------------------------------------------------------------


@pytest.mark.parametrize("result_name", ["frozen", "joint"])
def test_returns_a_network_of_the_requested_depth(result_name, request):
    result = request.getfixturevalue(result_name)
    assert isinstance(result.model, MLP)
    assert result.model.features == FEATURES
    assert not result.model.batch_norm
    assert len(result.model.linears) == len(FEATURES) - 1
    assert [s.features for s in result.stages] == [
        (64, 12, 10),
        (64, 12, 12, 10),
        (64, 12, 12, 12, 10),
    ]
    chex.assert_shape(list(result.stage_losses), [(40,)] * 3)
    chex.assert_shape(result.finetune_losses, (30,))
    chex.assert_tree_all_finite(nnx.state(result.model, nnx.Param))


def test_frozen_layers_are_the_stages_layers_exactly(frozen):
    stages = frozen.stages
    for stage, model in enumerate(stages):
        for j in range(stage):  # layer j was trained at stage j, then kept
            chex.assert_trees_all_equal(
                layer_arrays(model.linears[j]), layer_arrays(stages[j].linears[j])
            )
    # The new layer and the output layer did change between stages.
    assert not np.array_equal(
        stages[2].linears[-1].kernel[...], stages[1].linears[-1].kernel[...]
    )


def test_without_finetuning_the_network_is_the_last_stage(data):
    result = greedy_pretrain(
        FEATURES, *data, optimizer=TX, key=SEED, **{**SETTINGS, "finetune_steps": 0}
    )
    chex.assert_shape(result.finetune_losses, (0,))
    chex.assert_trees_all_equal(
        nnx.state(result.model, nnx.Param), nnx.state(result.stages[-1], nnx.Param)
    )
    for layer, stage in enumerate(result.stages):  # layer l comes from stage l
        chex.assert_trees_all_equal(
            layer_arrays(result.model.linears[layer]),
            layer_arrays(stage.linears[layer]),
        )


@pytest.mark.parametrize("result_name", ["frozen", "joint"])
def test_finetuning_starts_from_the_last_stage(result_name, request, data):
    result = request.getfixturevalue(result_name)
    # The documented contract: fine-tuning is `fit` of stages[-1] with the key
    # fold_in(key, L + 1).
    again, losses = fit(
        result.stages[-1],
        *data,
        optimizer=TX,
        steps=SETTINGS["finetune_steps"],
        batch_size=SETTINGS["batch_size"],
        key=jax.random.fold_in(jax.random.key(SEED), len(FEATURES) - 1),
    )
    chex.assert_trees_all_equal(
        nnx.state(again, nnx.Param), nnx.state(result.model, nnx.Param)
    )
    chex.assert_trees_all_equal(losses, result.finetune_losses)
    # ... and it did move the weights, a little.
    before = result.stages[-1].linears[0].kernel[...]
    after = result.model.linears[0].kernel[...]
    change = float(jnp.linalg.norm(after - before) / jnp.linalg.norm(before))
    assert 0 < change < 0.5


def test_finetuning_with_a_frozen_optimizer_returns_the_last_stage(data):
    result = greedy_pretrain(
        FEATURES,
        *data,
        optimizer=TX,
        finetune_optimizer=gt.set_to_zero(),
        key=SEED,
        **SETTINGS,
    )
    chex.assert_trees_all_equal(
        nnx.state(result.model, nnx.Param), nnx.state(result.stages[-1], nnx.Param)
    )


def test_joint_stages_train_the_earlier_layers_from_the_previous_stage(
    frozen, joint, data
):
    # Stage 1 is the same either way (same key, nothing below it).
    chex.assert_trees_all_equal(
        nnx.state(joint.stages[0], nnx.Param), nnx.state(frozen.stages[0], nnx.Param)
    )
    for stage in (1, 2):
        for j in range(stage):
            start = joint.stages[stage - 1].linears[j].kernel[...]
            now = joint.stages[stage].linears[j].kernel[...]
            change = float(jnp.linalg.norm(now - start) / jnp.linalg.norm(start))
            assert 0 < change < 0.5  # trained along, from where it was
    # The first stages do not depend on the depth requested.
    shallow = greedy_pretrain(
        FEATURES[:3] + FEATURES[-1:],
        *data,
        optimizer=TX,
        freeze=False,
        key=SEED,
        **SETTINGS,
    )
    for a, b in zip(shallow.stages, joint.stages[:2], strict=True):
        chex.assert_trees_all_equal(nnx.state(a, nnx.Param), nnx.state(b, nnx.Param))


@pytest.mark.parametrize("result_name", ["frozen", "joint"])
def test_losses_decrease(result_name, request, data):
    result = request.getfixturevalue(result_name)
    for losses in [*result.stage_losses, result.finetune_losses]:
        losses = np.asarray(losses)
        assert losses[-10:].mean() < losses[:10].mean()
    # Fine-tuning improves on the last stage. (A stage need not end below the
    # previous one: it starts again from a fresh output layer.)
    assert full_loss(result.model, data) < full_loss(result.stages[-1], data)


# --- fit -------------------------------------------------------------------------


def test_fit_is_pure_and_trains_any_param_only_module(data):
    model = ResidualMLP(64, 12, 10, 2, rngs=nnx.Rngs(0))
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    trained, losses = fit(model, *data, optimizer=TX, steps=40, batch_size=32, key=1)
    chex.assert_trees_all_equal(nnx.state(model, nnx.Param), before)  # untouched
    assert isinstance(trained, ResidualMLP)
    assert full_loss(trained, data) < 0.5 * full_loss(model, data)
    chex.assert_shape(losses, (40,))
    # Same key, same result; zero steps, a copy.
    again, _ = fit(model, *data, optimizer=TX, steps=40, batch_size=32, key=1)
    chex.assert_trees_all_equal(nnx.state(again), nnx.state(trained))
    copy, none = fit(model, *data, optimizer=TX, steps=0, batch_size=32)
    chex.assert_shape(none, (0,))
    assert copy is not model
    chex.assert_trees_all_equal(nnx.state(copy), nnx.state(model))


def test_fit_rejects_batch_norm_models(data):
    model = MLP((64, 4, 10), rngs=nnx.Rngs(0))  # BatchNorm statistics
    with pytest.raises(ValueError, match=r"nnx\.Param"):
        fit(model, *data, optimizer=TX, steps=1, batch_size=8)


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"features": (64, 10)}, ValueError, "features"),
        ({"features": (64, 0, 10)}, ValueError, "features"),
        ({"features": (8, 4, 10)}, ValueError, "x must have shape"),
        ({"optimizer": "adam"}, TypeError, "optimizer"),
        ({"finetune_optimizer": gt.adam}, TypeError, "finetune_optimizer"),
        ({"stage_steps": 0}, ValueError, "stage_steps"),
        ({"finetune_steps": -1}, ValueError, "finetune_steps"),
        ({"finetune_steps": 1.5}, TypeError, "finetune_steps"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1000}, ValueError, "batch_size"),
        ({"loss_fn": None}, TypeError, "loss_fn"),
        ({"activation": "relu"}, TypeError, "activation"),
        ({"kernel_init": 1.0}, TypeError, "kernel_init"),
        ({"key": "0"}, TypeError, "key"),
        ({"key": jnp.zeros(2, jnp.float32)}, TypeError, "key"),
    ],
)
def test_argument_errors_name_the_argument(kwargs, error, name, data):
    args = {"features": (64, 4, 10), "optimizer": TX, **SETTINGS, **kwargs}
    with pytest.raises(error, match=name):
        greedy_pretrain(x=data[0], y=data[1], **args)


def test_mismatched_rows_are_rejected(data):
    x, y = data
    with pytest.raises(ValueError, match="same number of rows"):
        greedy_pretrain((64, 4, 10), x, y[:-1], optimizer=TX, **SETTINGS)
    with pytest.raises(TypeError, match="model"):
        fit("model", x, y, optimizer=TX, steps=1, batch_size=8)
