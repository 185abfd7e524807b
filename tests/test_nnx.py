"""gradtransforms/nnx.py: the helpers on Flax NNX modules, `averaged_model` and LSUV.

References are NumPy forward passes and means over the recorded iterates,
never the code under test.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradtransforms as gt
import gradtransforms.init as gi
from gradtransforms.models import CNN, MLP
from tests.models.reference import flat_he_normal

# --- averaged_model -------------------------------------------------------------


def test_averaged_model_for_flax_nnx_leaves_the_training_model_alone():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(
        model, gt.chain(gt.sgd(0.5), gt.polyak_average()), wrt=nnx.Param
    )
    x = jax.random.normal(jax.random.key(1), (8, 3))
    kernels = []
    for _ in range(4):
        grads = nnx.grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
        optimizer.update(model, grads)
        kernels.append(np.asarray(model.kernel[...]))
    trained = np.asarray(model.kernel[...])
    averaged = gt.averaged_model(model, optimizer.opt_state)
    np.testing.assert_allclose(
        averaged.kernel[...], np.mean(kernels, axis=0), rtol=1e-6
    )
    np.testing.assert_array_equal(model.kernel[...], trained)
    assert averaged is not model


# --- LSUV ---------------------------------------------------------------------


def _numpy_pre_activations(model: MLP, x) -> list[np.ndarray]:
    """The Linear outputs of an MLP without BatchNorm, computed in NumPy."""
    h, outs = np.asarray(x, np.float64), []
    for i, layer in enumerate(model.linears):
        h = h @ np.asarray(layer.kernel[...], np.float64)
        if layer.bias is not None:
            h = h + np.asarray(layer.bias[...], np.float64)
        outs.append(h)
        if i < len(model.linears) - 1:
            h = np.maximum(h, 0.0)
    return outs


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_lsuv_gives_target_std_per_layer(bias):
    model = MLP((16, 32, 32, 8), batch_norm=False, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for layer in model.linears:  # biases make the loop necessary
        layer.bias[...] = jnp.asarray(bias * rng.normal(size=layer.bias.shape))
    old = [np.asarray(layer.kernel[...]) for layer in model.linears]
    x = jnp.asarray(rng.normal(0.0, 3.0, size=(256, 16)), jnp.float32)
    reports = gi.lsuv(model, x, target_std=1.0, tol=1e-4)
    assert [r.path for r in reports] == ["linears/0", "linears/1", "linears/2"]
    assert all(r.converged for r in reports)
    for h in _numpy_pre_activations(model, x):
        np.testing.assert_allclose(h.std(), 1.0, rtol=1e-3)
    for w_old, layer in zip(old, model.linears, strict=True):
        # Only a positive rescaling of each kernel.
        w_new = np.asarray(layer.kernel[...], np.float64)
        ratio = (w_new * w_old).sum() / (w_old**2).sum()
        assert ratio > 0
        np.testing.assert_allclose(w_new, ratio * w_old, rtol=1e-4, atol=1e-7)


def test_lsuv_target_std_and_restores_batch_stats():
    model = MLP((16, 32, 8), rngs=nnx.Rngs(1))  # with BatchNorm, train mode
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(128, 16)), jnp.float32)
    reports = gi.lsuv(model, x, target_std=0.5, jit=False)  # eager path
    np.testing.assert_allclose([r.std_after for r in reports], [0.5, 0.5], rtol=1e-3)
    h = np.asarray(x, np.float64) @ np.asarray(model.linears[0].kernel[...], np.float64)
    np.testing.assert_allclose(h.std(), 0.5, rtol=1e-3)
    chex.assert_trees_all_close(
        jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat)), before
    )
    assert not model.norms[0].use_running_average


def test_lsuv_conv_layers():
    # A flat He-normal draw: jax's 4-D draws compile slowly on CPU.
    model = CNN(10, channels=(4,), kernel_init=flat_he_normal, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(3), (16, 8, 8, 1))
    reports = gi.lsuv(model, x)
    assert [r.path for r in reports] == ["convs/0", "head"]
    h = jax.lax.conv_general_dilated(
        x,
        model.convs[0].kernel[...],
        (1, 1),
        "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(float(jnp.std(h)), 1.0, rtol=1e-3)
    assert nnx.Conv.__call__ is nnx.Conv.__dict__["__call__"]  # unpatched


def test_lsuv_reports_non_convergence():
    model = MLP((16, 32, 8), batch_norm=False, rngs=nnx.Rngs(0))
    # Per-unit biases of +-5: the output std cannot fall below 5.
    model.linears[0].bias[...] = jnp.array([5.0, -5.0] * 16)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(64, 16)), jnp.float32)
    first = gi.lsuv(model, x, max_iters=3)[0]
    assert first.iterations == 3
    assert not first.converged
    assert first.std_after > 4.0


def test_lsuv_errors():
    model = MLP((16, 32, 8), batch_norm=False, rngs=nnx.Rngs(0))
    x = jnp.zeros((8, 16))
    with pytest.raises(ValueError, match="target_std"):
        gi.lsuv(model, x, target_std=0.0)
    with pytest.raises(ValueError, match="max_iters"):
        gi.lsuv(model, x, max_iters=0)
    with pytest.raises(ValueError, match="tol"):
        gi.lsuv(model, x, tol=-1.0)
    with pytest.raises(TypeError, match="model"):
        gi.lsuv(lambda x: x, x)
    with pytest.raises(TypeError, match="layer_types"):
        gi.lsuv(model, x, layer_types=[nnx.Linear])
    # Zero inputs: every output equals its bias (0), std 0.
    with pytest.raises(ValueError, match="linears/0"):
        gi.lsuv(model, x)
    assert nnx.Linear.__call__ is nnx.Linear.__dict__["__call__"]


class _ScaledLinear(nnx.Linear):
    """A Linear subclass whose __call__ wraps its base's."""

    def __call__(self, x):
        return 3.0 * super().__call__(x)


class _TwoLayers(nnx.Module):
    def __init__(self, rngs):
        self.first = _ScaledLinear(4, 8, rngs=rngs)
        self.second = nnx.Linear(8, 2, rngs=rngs)

    def features(self, x):
        return self.second(jax.nn.relu(self.first(x)))


def test_lsuv_subclass_layers_and_custom_forward():
    model = _TwoLayers(nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (64, 4))
    reports = gi.lsuv(model, x, forward=lambda m, x: m.features(x))
    assert [r.path for r in reports] == ["first", "second"]
    # The subclass's own output (3 x the base Linear's) has unit std.
    w1 = np.asarray(model.first.kernel[...], np.float64)
    h = 3.0 * np.asarray(x, np.float64) @ w1
    np.testing.assert_allclose(h.std(), 1.0, rtol=1e-3)
    assert "__call__" in _ScaledLinear.__dict__
    assert nnx.Linear.__call__ is nnx.Linear.__dict__["__call__"]


@pytest.mark.parametrize("jit", [False, True])
def test_lsuv_patches_no_class_and_records_only_the_models_layers(jit):
    model = MLP((8, 16, 4), batch_norm=False, rngs=nnx.Rngs(0))
    other = nnx.Linear(8, 8, rngs=nnx.Rngs(1))  # another model's layer
    other_kernel = np.asarray(other.kernel[...])
    seen = []

    def forward(m, x):
        # During the measuring pass: the class's own __call__, and the other
        # model's Linear as it was. It runs first: its output is not recorded.
        seen.append((nnx.Linear.__dict__["__call__"], type(other)))
        return m(jax.nn.relu(other(x)))

    x = jax.random.normal(jax.random.key(2), (128, 8))
    reports = gi.lsuv(model, x, tol=1e-4, forward=forward, jit=jit)
    assert [r.path for r in reports] == ["linears/0", "linears/1"]
    call = nnx.Linear.__dict__["__call__"]
    assert seen and all(c is call and t is nnx.Linear for c, t in seen)
    np.testing.assert_array_equal(other.kernel[...], other_kernel)
    # The model's own layers have unit std on the inputs they receive.
    w, b = (np.asarray(a, np.float64) for a in (other.kernel[...], other.bias[...]))
    h = np.maximum(np.asarray(x, np.float64) @ w + b, 0.0)
    for pre_activation in _numpy_pre_activations(model, h):
        np.testing.assert_allclose(pre_activation.std(), 1.0, rtol=1e-3)
