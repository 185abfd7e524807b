"""Bad hyperparameters fail when the optimizer is built, naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import gradtransforms as gt

CASES = [
    (lambda: gt.sgd(0.0), "learning_rate"),
    (lambda: gt.sgd(-0.1), "learning_rate"),
    (lambda: gt.sgd(float("nan")), "learning_rate"),
    (lambda: gt.sgd(float("inf")), "learning_rate"),
    (lambda: gt.sgd("0.1"), "learning_rate"),
    (lambda: gt.sgd(None), "learning_rate"),
    (lambda: gt.sgd(0.1, momentum=1.0), "momentum"),
    (lambda: gt.sgd(0.1, momentum=-0.1), "momentum"),
    (lambda: gt.sgd(0.1, nesterov=True), "momentum"),
    (lambda: gt.adagrad(0.1, eps=-1e-7), "eps"),
    (lambda: gt.adagrad(0.1, initial_accumulator_value=-1.0), "initial_accumulator"),
    (lambda: gt.adagrad(0.1, eps=0.0), "eps"),
    (lambda: gt.rmsprop(0.1, decay=1.0), "decay"),
    (lambda: gt.rmsprop(0.1, eps_root=-1.0), "eps_root"),
    (lambda: gt.rmsprop(0.1, eps=0.0, eps_root=0.0), "eps"),
    (lambda: gt.rmsprop(0.1, momentum=2.0), "momentum"),
    (lambda: gt.adam(b1=1.0), "b1"),
    (lambda: gt.adam(b2=-0.5), "b2"),
    (lambda: gt.adam(b2=np.float32(1.5)), "b2"),
    (lambda: gt.adam(learning_rate=0), "learning_rate"),
    (lambda: gt.adamw(1e-3, weight_decay=-1e-4), "weight_decay"),
    (lambda: gt.adamw(1e-3, mask={"w": 1.0}), "mask"),
    (lambda: gt.trace(1.5), "decay"),
    (lambda: gt.ema(1.0), "decay"),
    (lambda: gt.scale(float("nan")), "step_size"),
    (lambda: gt.scale_by_schedule(0.1), "step_size_fn"),
    (lambda: gt.scale_by_learning_rate(-1.0), "learning_rate"),
    (lambda: gt.scale_by_adam(eps=0.0, eps_root=0.0), "eps"),
]


@pytest.mark.parametrize(("build", "argument"), CASES)
def test_bad_hyperparameters_raise_naming_the_argument(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


def test_error_states_the_allowed_range():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        gt.adam(b1=1.2)
    with pytest.raises(ValueError, match="> 0 or a schedule"):
        gt.sgd(-1.0)


def test_schedules_and_arrays_are_accepted():
    import jax.numpy as jnp

    gt.sgd(gt.constant_schedule(0.1), momentum=0.9)
    gt.adam(jnp.asarray(1e-3), b1=jnp.asarray(0.9))  # arrays may be traced: not checked


def test_optimizers_can_be_built_inside_jit():
    import jax

    def f(x):
        tx = gt.chain(gt.clip_by_global_norm(1.0), gt.sgd(0.1, momentum=0.9))
        updates, _ = tx.update({"w": x}, tx.init({"w": x}), {"w": x})
        return updates["w"]

    assert float(jax.jit(f)(1.0)) == pytest.approx(-0.1)
