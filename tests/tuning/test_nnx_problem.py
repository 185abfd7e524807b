"""tuning/problem.py, tuning/nnx_problem.py: sweeps of Flax NNX models with state.

The reference is the model trained by hand, as a Flax user would: an
`nnx.Optimizer` with optax's Adam, `model.train()` for the steps and
`model.eval()` for the metrics. The models are the library's BatchNorm MLP on
scikit-learn's digits (the tuning issue's "done when") and a small model with
dropout, whose random-number counter is state too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradtransforms as gt
import gradtransforms.tuning as tu
from gradtransforms.models import MLP, cross_entropy, load_digits

KEY = jax.random.key(3)
SPACE = {"lr": tu.log_uniform(1e-3, 1e-1)}


@functools.cache
def _digits():
    d = load_digits(flatten=True)
    return (d.x_train[:256], d.y_train[:256]), (d.x_valid[:128], d.y_valid[:128])


def _bn_mlp(rngs):
    # The key of `rngs` is ignored: every run starts from the same weights,
    # which the hand-written reference can rebuild.
    return MLP((64, 16, 10), rngs=nnx.Rngs(42))


def _loss(model, batch):
    x, y = batch
    return cross_entropy(model(x), y)


def _metrics(model, batch):
    x, y = batch
    logits = model(x)
    return {
        "loss": cross_entropy(logits, y),
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == y),
    }


def _problem(**kwargs):
    train, valid = _digits()
    return tu.Problem.from_nnx(
        _bn_mlp, _loss, train, valid, metrics_fn=_metrics, **kwargs
    )


def _reference(lr, steps, train, eval_sets):
    """Full-batch Adam on the BatchNorm MLP, by hand with nnx.Optimizer + optax."""
    model = _bn_mlp(None)
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(_loss)(model, train)
        optimizer.update(model, grads)
        return loss

    curves = {}
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it
        for _ in range(steps):
            model.train()
            curves.setdefault("train_loss", []).append(float(step(model, optimizer)))
            model.eval()
            for name, data in eval_sets.items():
                for metric, value in _metrics(model, data).items():
                    curves.setdefault(f"{name}_{metric}", []).append(float(value))
    return curves, model


def test_from_nnx_sweep_equals_training_by_hand():
    """State carried, fresh in every run, and read in evaluation mode."""
    train, valid = _digits()
    test = (train[0][:64], train[1][:64])
    problem = _problem(eval_data={"test": test})
    configs = {"lr": jnp.asarray([0.003, 0.03])}
    steps = 8
    result = tu.sweep(
        problem,
        SPACE,
        configs,
        optimizer=gt.adam,
        hyperparams={"learning_rate": "lr"},
        num_epochs=steps,  # full-batch: one step per epoch
        key=KEY,
        keep_params=True,
    )
    expected_names = {"train_loss", "valid_loss", "valid_accuracy"}
    assert set(result.metrics) == expected_names | {"test_loss", "test_accuracy"}
    for i, lr in enumerate([0.003, 0.03]):
        curves, model = _reference(lr, steps, train, {"valid": valid, "test": test})
        for name, curve in curves.items():
            np.testing.assert_allclose(
                result.metrics[name][i], curve, rtol=2e-4, atol=2e-5, err_msg=name
            )
        # The final BatchNorm statistics are the hand-trained model's.
        norm = model.norms[0]
        state = result.model_state["norms"][0]
        np.testing.assert_allclose(
            state["mean"][i], norm.mean[...], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(state["var"][i], norm.var[...], rtol=1e-4, atol=1e-5)
    # Training moved the running statistics away from their start (0 and 1).
    assert np.abs(result.model_state["norms"][0]["mean"]).max() > 1e-2


def test_bn_mlp_on_digits_tuned_over_seeds_in_one_call():
    """The issue's 'done when': a BatchNorm MLP swept over seeds by one call."""
    train, valid = _digits()
    problem = tu.Problem.from_nnx(
        lambda rngs: MLP((64, 32, 10), rngs=rngs),
        _loss,
        train,
        valid,
        metrics_fn=_metrics,
    )
    result = tu.sweep(
        problem,
        SPACE,
        tu.grid(SPACE, 3),
        optimizer=gt.adam,
        hyperparams={"learning_rate": "lr"},
        num_steps=40,
        eval_every=20,
        batch_size=32,
        key=KEY,
        seeds=3,
    )
    assert result.metrics["valid_accuracy"].shape == (3, 3, 2)
    np.testing.assert_array_equal(result.eval_steps, [20, 40])
    mean, half = result.mean_ci("valid_accuracy")
    assert mean.shape == half.shape == (3,)
    assert np.all(half > 0)  # the seeds differ: their initial weights do
    # Adam at 0.03 learns the digits in 40 steps; 0.001 barely starts.
    assert mean[2] > 0.8 > mean[0]
    assert result.best("valid_accuracy", "maximize") in (1, 2)


class _DropoutNet(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(64, 10, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.linear(self.dropout(x))


def test_random_state_advances_in_training_and_is_off_in_evaluation():
    train, valid = _digits()
    problem = tu.Problem.from_nnx(_DropoutNet, _loss, train, valid)
    result = tu.sweep(
        problem,
        SPACE,
        {"lr": jnp.asarray([0.0, 0.01])},
        optimizer=gt.sgd,
        hyperparams={"learning_rate": "lr"},
        num_steps=5,
        eval_every=1,
        key=KEY,
        keep_params=True,
    )
    # Learning rate 0: the parameters never change, so evaluation (dropout
    # off) gives the same loss after every step, while training draws a new
    # dropout mask each step.
    valid_loss, train_loss = (
        result.metrics[k][0] for k in ("valid_loss", "train_loss")
    )
    np.testing.assert_array_equal(valid_loss, np.full(5, valid_loss[0]))
    assert len(np.unique(train_loss)) == 5
    counts = [
        np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(result.model_state)
        if "count" in jax.tree_util.keystr(path)
    ]
    assert counts and all(np.all(c == 5) for c in counts)


def test_from_nnx_bad_arguments():
    train, valid = _digits()
    with pytest.raises(TypeError, match="model_fn"):
        tu.Problem.from_nnx(lambda rngs: 3, _loss, train)
    with pytest.raises(TypeError, match="model_fn"):
        tu.Problem.from_nnx("MLP", _loss, train)
    with pytest.raises(TypeError, match="loss_fn"):
        tu.Problem.from_nnx(_bn_mlp, None, train)
    with pytest.raises(TypeError, match="metrics_fn"):
        tu.Problem.from_nnx(_bn_mlp, _loss, train, valid, metrics_fn=3)


def test_make_train_fn_with_state_unjitted_equals_the_sweep():
    problem = _problem()
    settings = dict(
        optimizer=gt.adam, hyperparams={"learning_rate": "lr"}, num_epochs=3
    )
    train_fn = tu.make_train_fn(problem, **settings)
    metrics, (params, state) = train_fn({"lr": jnp.asarray(0.01)}, KEY)  # no jit
    swept = tu.sweep(
        problem, SPACE, {"lr": jnp.asarray([0.01])}, key=KEY, keep_params=True,
        **settings,
    )  # fmt: skip
    for name, curve in metrics.items():
        np.testing.assert_allclose(swept.metrics[name][0], curve, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        swept.model_state["norms"][0]["var"][0], state["norms"][0]["var"], rtol=1e-5
    )
    assert params["linears"][0]["kernel"].shape == (64, 16)


def test_bfloat16_parameters_keep_their_dtype_and_train():
    train, valid = _digits()
    problem = tu.Problem.from_nnx(
        lambda rngs: MLP((64, 16, 10), param_dtype=jnp.bfloat16, rngs=rngs),
        _loss,
        train,
        valid,
        metrics_fn=_metrics,
    )
    # Standard promotion, a user's default: Flax's BatchNorm mixes bfloat16
    # and float32, which the tests' strict promotion refuses.
    with jax.numpy_dtype_promotion("standard"):
        result = tu.sweep(
            problem,
            SPACE,
            {"lr": jnp.asarray([0.03])},
            optimizer=gt.adam,
            hyperparams={"learning_rate": "lr"},
            num_epochs=10,
            key=KEY,
            keep_params=True,
        )
    assert result.params["linears"][0]["kernel"].dtype == jnp.bfloat16
    # The state keeps the dtype the model gives it (Flax: float32 statistics).
    fresh = MLP((64, 16, 10), param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    mean = result.model_state["norms"][0]["mean"]
    assert mean.dtype == fresh.norms[0].mean[...].dtype
    accuracy = result.metrics["valid_accuracy"][0]
    assert np.all(np.isfinite(result.metrics["valid_loss"]))
    assert accuracy[-1] > accuracy[0] and accuracy[-1] > 0.5
