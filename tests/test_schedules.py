"""Schedules: eq. 8.14 against its closed form, parity with optax, float64, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt


def _values(schedule, steps):
    return np.array([float(schedule(jnp.asarray(k, jnp.int32))) for k in steps])


def test_linear_decay_follows_eq_8_14():
    eps0, eps_tau, tau = 0.5, 0.005, 7
    steps = range(12)
    expected = [(1 - min(k / tau, 1)) * eps0 + min(k / tau, 1) * eps_tau for k in steps]
    np.testing.assert_allclose(
        _values(gt.linear_decay_schedule(eps0, eps_tau, tau), steps),
        expected,
        rtol=1e-6,
    )


def test_linear_decay_transition_begin_holds_the_initial_value():
    s = gt.linear_decay_schedule(1.0, 0.0, transition_steps=4, transition_begin=3)
    np.testing.assert_allclose(
        _values(s, range(9)), [1, 1, 1, 1, 0.75, 0.5, 0.25, 0, 0], atol=1e-7
    )


def test_schedules_are_float64_under_x64_without_a_float32_step(x64):
    """optax computes its linear schedule in float32; ours stays in float64."""
    eps0, eps_tau, tau = 0.1, 1e-3, 3
    s = gt.linear_decay_schedule(eps0, eps_tau, tau)
    k = jnp.asarray(1, jnp.int32)
    assert s(k).dtype == jnp.float64
    exact = (1 - 1 / 3) * eps0 + (1 / 3) * eps_tau  # Python double arithmetic
    assert float(s(k)) == pytest.approx(exact, rel=1e-15, abs=0)
    for sched in (
        gt.constant_schedule(0.1),
        gt.exponential_decay(0.1, 3, 0.5),
        gt.cosine_decay_schedule(0.1, 10),
        gt.warmup_cosine_decay_schedule(0.0, 0.1, 3, 10),
        gt.piecewise_constant_schedule(0.1, {2: 0.5}),
    ):
        assert sched(k).dtype == jnp.float64
    cos = gt.cosine_decay_schedule(0.1, 10, alpha=0.01)
    expected = 0.1 * ((1 - 0.01) * 0.5 * (1 + math.cos(math.pi * 3 / 10)) + 0.01)
    assert float(cos(jnp.asarray(3, jnp.int32))) == pytest.approx(expected, rel=1e-14)


STEPS = [*range(0, 40, 3), 100, 1000]
PAIRS = {
    "constant": (gt.constant_schedule(0.3), optax.constant_schedule(0.3)),
    "linear": (
        gt.linear_decay_schedule(0.3, 0.01, 17, transition_begin=2),
        optax.linear_schedule(0.3, 0.01, 17, transition_begin=2),
    ),
    "exponential": (
        gt.exponential_decay(0.3, 5, 0.7, transition_begin=3),
        optax.exponential_decay(0.3, 5, 0.7, transition_begin=3),
    ),
    "exponential_staircase_end": (
        gt.exponential_decay(0.3, 5, 0.7, staircase=True, end_value=0.1),
        optax.exponential_decay(0.3, 5, 0.7, staircase=True, end_value=0.1),
    ),
    "exponential_growth_end": (
        gt.exponential_decay(0.3, 5, 1.3, end_value=0.5),
        optax.exponential_decay(0.3, 5, 1.3, end_value=0.5),
    ),
    "piecewise": (
        gt.piecewise_constant_schedule(0.3, {5: 0.5, 20: 0.1}),
        optax.piecewise_constant_schedule(0.3, {5: 0.5, 20: 0.1}),
    ),
    "cosine": (
        gt.cosine_decay_schedule(0.3, 30, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(0.3, 30, alpha=0.1, exponent=2.0),
    ),
    "warmup_cosine": (
        gt.warmup_cosine_decay_schedule(0.0, 0.3, 6, 30, end_value=0.01),
        optax.warmup_cosine_decay_schedule(0.0, 0.3, 6, 30, end_value=0.01),
    ),
    "join": (
        gt.join_schedules(
            [gt.constant_schedule(0.1), gt.linear_decay_schedule(0.2, 0.0, 10)], [7]
        ),
        optax.join_schedules(
            [optax.constant_schedule(0.1), optax.linear_schedule(0.2, 0.0, 10)], [7]
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_optax(name):
    ours, theirs = PAIRS[name]
    with jax.numpy_dtype_promotion("standard"):
        expected = _values(theirs, STEPS)
    np.testing.assert_allclose(_values(ours, STEPS), expected, rtol=1e-5, atol=1e-7)


def test_schedules_jit_and_vmap_over_the_count():
    s = gt.warmup_cosine_decay_schedule(0.0, 1.0, 5, 20)
    counts = jnp.arange(25, dtype=jnp.int32)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(s))(counts), _values(s, range(25)), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: gt.linear_decay_schedule(0.1, 0.0, 0), "transition_steps"),
        (lambda: gt.linear_decay_schedule(0.1, 0.0, 2.5), "transition_steps"),
        (lambda: gt.linear_decay_schedule(0.1, 0.0, 5, -1), "transition_begin"),
        (lambda: gt.linear_decay_schedule(float("nan"), 0.0, 5), "init_value"),
        (lambda: gt.exponential_decay(0.1, 0, 0.5), "transition_steps"),
        (lambda: gt.exponential_decay(0.1, 5, -0.5), "decay_rate"),
        (lambda: gt.cosine_decay_schedule(0.1, 0), "decay_steps"),
        (lambda: gt.cosine_decay_schedule(0.1, 10, alpha=-1.0), "alpha"),
        (lambda: gt.warmup_cosine_decay_schedule(0, 1, 10, 5), "decay_steps"),
        (lambda: gt.warmup_cosine_decay_schedule(0, 1, -1, 5), "warmup_steps"),
        (lambda: gt.piecewise_constant_schedule(0.1, {-3: 0.5}), "boundaries"),
        (lambda: gt.piecewise_constant_schedule(0.1, {3: -0.5}), "boundaries"),
        (lambda: gt.join_schedules([gt.constant_schedule(1.0)], [3]), "boundaries"),
        (
            lambda: gt.join_schedules([gt.constant_schedule(1.0)] * 3, [5, 2]),
            "boundaries",
        ),
    ],
)
def test_bad_arguments_name_themselves(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


# ----------------------------------------------------------------------------
# Step counts beyond int32, and optax's zero peak


GIANT = 10**10  # more steps than an int32 holds


def test_cosine_decay_with_more_steps_than_int32():
    s = jax.jit(gt.cosine_decay_schedule(1000.0, decay_steps=GIANT))
    expected = 1000.0 * 0.5 * (1 + math.cos(math.pi * 10**9 / GIANT))  # 975.528...
    np.testing.assert_allclose(s(10**9), expected, rtol=1e-6)
    np.testing.assert_allclose(s(jnp.asarray(0, jnp.int32)), 1000.0)
    theirs = optax.cosine_decay_schedule(1000.0, decay_steps=GIANT)
    np.testing.assert_allclose(s(10**9), theirs(10**9), rtol=1e-6)


def test_warmup_cosine_decay_with_more_steps_than_int32():
    warmup = 100
    s = jax.jit(gt.warmup_cosine_decay_schedule(0.0, 1.0, warmup, GIANT, 0.1))
    for k in (0, 50, warmup, 10**9, 2**31 - 1):
        t = (k - warmup) / (GIANT - warmup)
        expected = (
            k / warmup if k < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
        )
        np.testing.assert_allclose(s(k), expected, rtol=1e-6, err_msg=str(k))


def test_linear_decay_with_more_steps_than_int32():
    s = jax.jit(gt.linear_decay_schedule(1.0, 0.0, transition_steps=GIANT))
    np.testing.assert_allclose(s(10**9), 0.9, rtol=1e-6)


def test_warmup_cosine_decay_with_a_zero_peak_is_optax_s():
    """optax reaches `end_value` as a fraction of the peak: 0 for a zero peak."""
    kwargs = dict(
        init_value=0.2,
        peak_value=0.0,
        end_value=-3.0,
        warmup_steps=50,
        decay_steps=100,
        exponent=2,
    )
    counts = np.array([0, 10, 49, 50, 75, 100, 150])
    ours = jax.jit(gt.warmup_cosine_decay_schedule(**kwargs))(counts)
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.jit(optax.warmup_cosine_decay_schedule(**kwargs))(counts)
    closed_form = [0.2 * (1 - k / 50) if k < 50 else 0.0 for k in counts]
    np.testing.assert_allclose(ours, closed_form, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"transition_steps": -1, "decay_rate": 1.0}, "transition_steps"),
        ({"transition_steps": 0, "decay_rate": 1.0}, "transition_steps"),
        ({"transition_steps": 2, "decay_rate": 0.0}, "decay_rate"),
    ],
)
def test_exponential_decay_refuses_what_optax_turns_into_a_constant(kwargs, argument):
    """Stricter than optax, which warns and returns a constant schedule."""
    with pytest.raises(ValueError, match=argument):
        gt.exponential_decay(1.0, **kwargs)


@pytest.mark.parametrize(
    "as_array", [np.array, jnp.array, tuple], ids=["numpy", "jax", "tuple"]
)
def test_join_schedules_takes_boundaries_as_optax_does(as_array):
    schedules = [optax.constant_schedule(v) for v in (1.0, 2.0, 3.0)]
    ours = gt.join_schedules(schedules, as_array([10, 20]))
    theirs = optax.join_schedules(schedules, [10, 20])
    for k in (0, 9, 10, 19, 20, 100):
        assert float(ours(k)) == float(theirs(k)), k
    with pytest.raises(TypeError, match=r"boundaries\[0\] must be an int"):
        gt.join_schedules(schedules, as_array([10.5, 20.0]))
