"""validation.py, and every constructor's argument checks, in one place.

Bad hyperparameters fail when an optimizer is built, never later inside jit:
each raises ValueError or TypeError naming the argument. A table of bad
constructor calls, a fuzzing table (negative, NaN, ±inf, out of range, wrong
type for each numeric hyperparameter) and the second-order solvers' table
check the constructors; the `gradtransforms.validation` functions are tested
directly at the end.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt
from gradtransforms import second_order as so
from gradtransforms import validation as va

# --------------------------------------------------------------------------
# Bad constructor calls

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
    gt.sgd(gt.constant_schedule(0.1), momentum=0.9)
    gt.adam(jnp.asarray(1e-3), b1=jnp.asarray(0.9))  # arrays may be traced: not checked


def test_optimizers_can_be_built_inside_jit():
    def f(x):
        tx = gt.chain(gt.clip_by_global_norm(1.0), gt.sgd(0.1, momentum=0.9))
        updates, _ = tx.update({"w": x}, tx.init({"w": x}), {"w": x})
        return updates["w"]

    assert float(jax.jit(f)(1.0)) == pytest.approx(-0.1)


# --------------------------------------------------------------------------
# Fuzzing: every numeric hyperparameter given values outside its range

NAN, INF = math.nan, math.inf
WRONG_TYPE = ["0.1", None, True, [0.1]]

# constructor, the argument, its other required arguments, invalid values
RULES = [
    (gt.sgd, "learning_rate", {}, [0.0, -0.1, NAN, INF, -INF, *WRONG_TYPE]),
    (gt.sgd, "momentum", {"learning_rate": 0.1}, [-0.1, 1.0, 1.5, NAN, INF, "0.9"]),
    (gt.adagrad, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.adagrad, "eps", {"learning_rate": 0.1}, [-1e-7, NAN, INF, "x"]),
    (gt.adagrad, "eps_root", {"learning_rate": 0.1}, [-1e-7, NAN, INF, "x"]),
    (gt.adagrad, "initial_accumulator_value", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.rmsprop, "decay", {"learning_rate": 0.1}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.rmsprop, "eps", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "eps_root", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "initial_scale", {"learning_rate": 0.1}, [-1.0, NAN, INF]),
    (gt.rmsprop, "momentum", {"learning_rate": 0.1}, [-0.5, 1.0, NAN]),
    (gt.adam, "learning_rate", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.adam, "b1", {}, [-0.1, 1.0, 2.0, NAN, INF, "x"]),
    (gt.adam, "b2", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.adam, "eps", {}, [-1e-8, NAN, INF]),
    (gt.adam, "eps_root", {}, [-1e-8, NAN, INF]),
    (gt.adamw, "weight_decay", {}, [-1e-4, NAN, INF, "x"]),
    (gt.trace, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.ema, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.scale, "step_size", {}, [NAN, INF, -INF, *WRONG_TYPE]),
    (gt.clip, "max_delta", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.clip_by_norm, "max_norm", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.clip_by_global_norm, "max_norm", {}, [0.0, -1.0, NAN, INF, *WRONG_TYPE]),
    (gt.add_decayed_weights, "weight_decay", {}, [-1.0, NAN, INF, "x"]),
    (gt.polyak_average, "start_step", {}, [-1, 1.5, NAN, "3", None]),
    (gt.ema_average, "decay", {}, [-0.1, 1.0, NAN, INF, "x"]),
    (gt.ema_average, "start_step", {"decay": 0.9}, [-1, 1.5, "3"]),
    (
        gt.linear_decay_schedule,
        "transition_steps",
        {"init_value": 1.0, "end_value": 0.0},
        [0, -3, 2.5, NAN, "4", None],
    ),
    (
        gt.linear_decay_schedule,
        "init_value",
        {"end_value": 0.0, "transition_steps": 4},
        [NAN, INF, "1"],
    ),
    (
        gt.exponential_decay,
        "decay_rate",
        {"init_value": 1.0, "transition_steps": 4},
        [0.0, -0.5, NAN, INF, "x"],
    ),
    (gt.cosine_decay_schedule, "decay_steps", {"init_value": 1.0}, [0, -1, 2.5, "x"]),
    (
        gt.apply_if_finite,
        "max_consecutive_errors",
        {"inner": gt.sgd(0.1)},
        [0, -1, 1.5, "3"],
    ),
    (gt.lbfgs, "memory_size", {}, [0, -1, 2.5, "10"]),
    (gt.newton, "damping", {}, [-1.0, NAN, INF, "x"]),
    (gt.smooth_gradient, "sigma", {}, [-0.1, NAN, INF, "x", [0.1]]),
    (gt.smooth_gradient, "num_samples", {"sigma": 0.1}, [0, -2, 2.5, 3, "4", None]),
    (gt.smooth_gradient, "key", {"sigma": 0.1}, [1.5, "0", None, [0, 1]]),
    (gt.add_noise, "eta", {"gamma": 0.55}, [-1.0, NAN, INF, "x"]),
    (gt.add_noise, "gamma", {"eta": 0.01}, [-1.0, NAN, INF, "x"]),
    (
        gt.training.curriculum_sampler,
        "hard_fraction",
        {"difficulty": [0.1, 0.2, 0.3], "batch_size": 2, "pacing": 0.5},
        [-0.1, 1.5, NAN, "x"],
    ),
    (
        gt.training.curriculum_sampler,
        "batch_size",
        {"difficulty": [0.1, 0.2, 0.3], "pacing": 0.5},
        [0, -1, 2.5, "2"],
    ),
    (
        gt.training.curriculum_sampler,
        "pacing",
        {"difficulty": [0.1, 0.2, 0.3], "batch_size": 2},
        [-0.1, 1.5, NAN, "x"],
    ),
    (
        gt.training.curriculum_sampler,
        "difficulty",
        {"batch_size": 2, "pacing": 0.5},
        [[], [[0.1, 0.2]], [0.1, NAN], "easy"],
    ),
]

FUZZ_CASES = [
    pytest.param(ctor, arg, fixed, bad, id=f"{ctor.__name__}-{arg}-{bad!r}")
    for ctor, arg, fixed, values in RULES
    for bad in values
]


@pytest.mark.parametrize(("ctor", "arg", "fixed", "bad"), FUZZ_CASES)
def test_invalid_value_is_rejected_at_construction(ctor, arg, fixed, bad):
    with pytest.raises((ValueError, TypeError), match=arg):
        ctor(**fixed, **{arg: bad})


# --------------------------------------------------------------------------
# The second-order solvers

SECOND_ORDER_CASES = [
    (so.scale_by_backtracking_linesearch, {"max_backtracking_steps": 0}),
    (so.scale_by_backtracking_linesearch, {"slope_rtol": 1.5}),
    (so.scale_by_backtracking_linesearch, {"decrease_factor": 1.0}),
    (so.scale_by_backtracking_linesearch, {"increase_factor": 0.5}),
    (so.scale_by_backtracking_linesearch, {"max_learning_rate": -1.0}),
    (so.scale_by_backtracking_linesearch, {"store_grad": "yes"}),
    (so.scale_by_zoom_linesearch, {"max_linesearch_steps": 2.5}),
    (so.scale_by_zoom_linesearch, {"curv_rtol": 1e-5}),
    (so.scale_by_zoom_linesearch, {"slope_rtol": 0.0}),
    (so.scale_by_zoom_linesearch, {"increase_factor": 1.0}),
    (so.scale_by_zoom_linesearch, {"max_learning_rate": 0.0}),
    (so.scale_by_zoom_linesearch, {"initial_guess_strategy": "two"}),
    (so.scale_by_zoom_linesearch, {"has_aux": 1}),
    (so.newton, {"damping": -1.0}),
    (so.newton, {"damping": float("nan")}),
    (so.newton, {"damping_increase": 1.0}),
    (so.newton, {"damping_decrease": 0.5}),
    (so.newton, {"accept_ratio": 0.0}),
    (so.newton, {"max_damping_steps": 0}),
    (so.newton_cg, {"cg_tol": 2.0}),
    (so.newton_cg, {"max_cg_steps": 0}),
    (so.conjugate_gradient, {"variant": "dai_yuan"}),
    (so.conjugate_gradient, {"restart_every": 0}),
    (so.lbfgs, {"memory_size": 0}),
    (so.lbfgs, {"scale_init_precond": 1}),
    (so.lbfgs, {"learning_rate": -1.0}),
]


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    SECOND_ORDER_CASES,
    ids=[f"{f.__name__}-{next(iter(k))}" for f, k in SECOND_ORDER_CASES],
)
def test_bad_arguments_raise_naming_the_argument(factory, kwargs):
    (name,) = kwargs
    with pytest.raises((TypeError, ValueError), match=name):
        factory(**kwargs)


# --------------------------------------------------------------------------
# The checks themselves (gradtransforms.validation)


def test_check_bool_takes_python_and_numpy_bools_only():
    for value in (True, False, np.bool_(True)):
        va.check_bool("flag", value)
    for value in ("False", 1, None, jnp.asarray(True)):
        with pytest.raises(TypeError, match="flag must be a bool"):
            va.check_bool("flag", value)


def test_check_key_takes_a_single_key_or_an_int_seed():
    va.check_key("key", jax.random.key(0))  # typed key, shape ()
    va.check_key("key", jax.random.PRNGKey(0))  # raw uint32[2]
    for seed in (0, 7, np.int64(3)):
        va.check_key("key", seed, allow_seed=True)
    with pytest.raises(TypeError, match="key must be a single PRNG key"):
        va.check_key("key", 0)  # seeds only when allowed
    with pytest.raises(TypeError, match="key must be an int seed or"):
        va.check_key("key", True, allow_seed=True)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        (jax.random.split(jax.random.key(0), 3), ValueError),  # typed batch
        (jnp.zeros((3, 2), jnp.uint32), TypeError),  # raw batch
        (jnp.zeros(2, jnp.int32), TypeError),  # not uint32
        (jnp.zeros(2, jnp.float32), TypeError),
    ],
    ids=["typed-batch", "raw-batch", "int32", "float32"],
)
def test_check_key_rejects_batches_and_non_keys(keys, error):
    with pytest.raises(error, match="key must be"):
        va.check_key("key", keys, allow_seed=True)


def test_check_fraction_open_closed_and_concrete():
    va.check_fraction("f", 0.5)
    for edge in (0.0, 1.0, math.nan, 1.5):
        with pytest.raises(ValueError, match=r"f must be a number in \(0, 1\)"):
            va.check_fraction("f", edge)
    va.check_fraction("f", 0.0, closed=True)
    va.check_fraction("f", np.float32(1.0), closed=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]; got 1.5"):
        va.check_fraction("f", 1.5, closed=True)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        va.check_fraction("f", 4.0, low=2.0, high=4.0)
    with pytest.raises(ValueError, match="f must be"):  # concrete: checked (#18)
        va.check_fraction("f", jnp.asarray(7.0))
    with pytest.raises(TypeError, match="f must be a number"):
        va.check_fraction("f", jnp.asarray(0.5), concrete=True)
    va.check_fraction("f", np.array(0.5), concrete=True)  # 0-d NumPy: concrete


def _learning_rate(name, value):
    va.check_learning_rate(value, name)


def _factor_or_inf(name, value):
    va.check_factor(name, value, allow_inf=True)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (va.check_finite, [-3.0, 0, np.float32(2.5)], [math.inf, math.nan]),
        (va.check_positive, [1e-12, 3], [0.0, -1.0, math.inf]),
        (va.check_non_negative, [0.0, 2], [-1e-12, math.inf]),
        (va.check_unit_interval, [0.0, 0.999], [1.0, -0.1]),
        (va.check_max_step, [None, 0.5, math.inf], [0.0, -1.0]),
        (_learning_rate, [0.1, optax.constant_schedule(0.1)], [0.0, math.inf]),
        (_factor_or_inf, [2.0, math.inf], [1.0]),
        (va.check_factor, [1.5], [1.0, 0.5, math.inf]),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_number_checks_accept_and_reject(check, good, bad):
    for value in good:
        check("x", value)
    for value in bad:
        with pytest.raises(ValueError, match="x must be"):
            check("x", value)
    for value in ("1", True, [1.0]):  # not numbers at all
        with pytest.raises(TypeError, match="x must be"):
            check("x", value)


def test_integer_checks():
    va.check_int("n", -3)
    va.check_positive_int("n", np.int64(2))
    va.check_non_negative_int("n", 0)
    for check, value in [(va.check_positive_int, 0), (va.check_non_negative_int, -1)]:
        with pytest.raises(ValueError, match="n must be an int"):
            check("n", value)
    for check in (va.check_int, va.check_positive_int, va.check_non_negative_int):
        for value in (True, 2.0, "2"):
            with pytest.raises(TypeError, match="n must be an int"):
                check("n", value)


def test_check_choice_callable_and_float_dtype():
    va.check_choice("mode", "max", ("min", "max"))
    for value in ("up", 1):
        with pytest.raises(ValueError, match=r"mode must be one of \['min', 'max'\]"):
            va.check_choice("mode", value, ("min", "max"))
    va.check_callable("fn", abs)
    with pytest.raises(TypeError, match="fn must be callable"):
        va.check_callable("fn", 1.0)
    for dtype in (jnp.float32, "bfloat16", np.float16):
        va.check_float_dtype("dtype", dtype)
    for dtype in (jnp.int32, None, "x", bool):
        with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
            va.check_float_dtype("dtype", dtype)


def test_check_transformation():
    for tx in (gt.sgd(0.1), optax.adam(1e-3), gt.identity()):
        va.check_transformation("inner", tx)
    not_callable = optax.GradientTransformation(lambda p: None, None)
    for value in (lambda g: g, "sgd", not_callable):
        with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
            va.check_transformation("inner", value)


def test_is_concrete_number_and_traced_values_pass():
    for value in (1, 1.5, np.float32(2.0), np.array(3.0)):
        assert va.is_concrete_number(value)
    for value in (True, np.bool_(False), jnp.asarray(1.0), np.ones(2), "1"):
        assert not va.is_concrete_number(value)

    @jax.jit
    def checked(x):  # a tracer cannot be range-checked: it passes through
        va.check_positive("x", x)
        va.check_unit_interval("x", x)
        return x

    assert float(checked(-5.0)) == -5.0
