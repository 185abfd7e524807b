"""float16 and bfloat16 parameters: the adaptive optimizers keep moving (issue 18).

With the moments in the parameters' dtype, a float16 second moment overflowed
to infinity at |g| ~ 1e3 and Adam, AdamW, NAdam, AdaGrad and RMSProp stopped
moving; centred RMSProp gave NaN (inf - inf) at the first step. The moments
now default to float32 for 16-bit parameters. The reference is optax run on
float32 parameters (its moments then float32 too) on the same gradients:
every update of the float16 run must be optax's rounded to float16, and the
float16 parameters must end where optax's float32 ones do, to float16's
resolution. Never the code under test.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

STEPS = 200
PARAMS0 = np.linspace(0.5, 1.9, 8).astype(np.float16)  # exact in float16

# name -> (gradtransforms optimizer, optax's with the same maths).
OPTIMIZERS = {
    "adam": (lambda: gt.adam(1e-2), lambda: optax.adam(1e-2)),
    "adamw": (
        lambda: gt.adamw(1e-2, weight_decay=1e-4),
        lambda: optax.adamw(1e-2, weight_decay=1e-4),
    ),
    "nadam": (
        lambda: gt.adam(1e-2, nesterov=True),
        lambda: optax.adam(1e-2, nesterov=True),
    ),
    "adagrad": (  # optax's defaults: accumulator from 0.1, eps under the root
        lambda: gt.adagrad(0.1, 0.1, 1e-7, eps_in_sqrt=True),
        lambda: optax.adagrad(0.1, 0.1, 1e-7),
    ),
    "rmsprop": (
        lambda: gt.rmsprop(1e-2, eps=1e-8),
        lambda: optax.rmsprop(1e-2, eps=1e-8),
    ),
    "rmsprop_centered": (
        lambda: gt.rmsprop(1e-2, eps=1e-8, centered=True),
        lambda: optax.rmsprop(1e-2, eps=1e-8, centered=True),
    ),
}


def _gradients(scale: float) -> np.ndarray:
    """`STEPS` gradients of magnitude `scale` (0.5 to 1.5 times it), random
    signs, exact in float16 (below its largest value, 65504)."""
    rng = np.random.default_rng(0)
    size = (STEPS, len(PARAMS0))
    g = scale * rng.uniform(0.5, 1.5, size) * rng.choice([-1.0, 1.0], size)
    return g.astype(np.float16)


def _runs(ours, theirs, grads: np.ndarray):
    """Our float16 run and optax's float32 run on the same gradients, scanned.

    Returns the per-step updates and the final parameters of each.
    """
    p16 = jnp.asarray(PARAMS0)
    p32 = p16.astype(jnp.float32)

    def step(carry, g16):
        p16, s16, p32, s32 = carry
        u16, s16 = ours.update(g16, s16, p16)
        u32, s32 = theirs.update(g16.astype(jnp.float32), s32, p32)
        p16, p32 = gt.apply_updates(p16, u16), optax.apply_updates(p32, u32)
        return (p16, s16, p32, s32), (u16, u32)

    with jax.numpy_dtype_promotion("standard"):  # optax's code is not strict
        carry = (p16, ours.init(p16), p32, theirs.init(p32))
        (p16, _, p32, _), (u16, u32) = jax.jit(lambda c, g: jax.lax.scan(step, c, g))(
            carry, jnp.asarray(grads)
        )
    return u16, u32, p16, p32


@pytest.mark.parametrize("scale", [1e3, 2.5e4])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float16_parameters_keep_moving_like_optax_in_float32(name, scale):
    ours, theirs = (build() for build in OPTIMIZERS[name])
    u16, u32, p16, p32 = _runs(ours, theirs, _gradients(scale))
    assert u16.dtype == p16.dtype == jnp.float16  # the parameters' dtype
    chex.assert_tree_all_finite((u16, p16))
    # Every update is optax's float32 update rounded to float16 (within one
    # float16 rounding: the two compute in float32 by different formulas).
    np.testing.assert_allclose(
        np.asarray(u16, np.float32),
        np.asarray(u32.astype(jnp.float16), np.float32),
        rtol=2e-3,
        atol=2e-5,
    )
    assert np.all(np.abs(np.asarray(u16[-20:], np.float32)).max(axis=0) > 0)
    # The float16 parameters moved, and end where optax's float32 ones do, up
    # to the roundings of 200 float16 additions (float16's spacing is 2^-10
    # in [1, 2)).
    moved = np.abs(np.asarray(p16, np.float32) - PARAMS0.astype(np.float32))
    assert np.all(moved > 0)
    np.testing.assert_allclose(np.asarray(p16, np.float32), p32, atol=3e-2)


def test_float16_moments_reproduce_optax_stopping_after_66_steps():
    """The override keeps optax's dtype rule: float16 moments overflow at
    |g| = 1000 (r passes 65504) and Adam stops, as documented."""
    grads = np.full((100, len(PARAMS0)), 1000.0, np.float16)
    narrow = gt.adam(1e-2, mu_dtype=jnp.float16, nu_dtype=jnp.float16)
    u_narrow, _, _, _ = _runs(narrow, optax.adam(1e-2), grads)
    stopped = np.flatnonzero(np.all(np.asarray(u_narrow) == 0, axis=1))
    assert 60 <= stopped[0] <= 70 and stopped.tolist() == list(range(stopped[0], 100))
    u_wide, _, _, _ = _runs(gt.adam(1e-2), optax.adam(1e-2), grads)
    assert np.all(np.asarray(u_wide) != 0)


BUILDERS = {
    "adam": (gt.adam, ("mu", "nu"), {"mu_dtype": jnp.bfloat16, "nu_dtype": "float16"}),
    "adamw": (gt.adamw, ("mu", "nu"), {"mu_dtype": jnp.bfloat16}),
    "adagrad": (gt.adagrad, ("sum_of_squares",), {"accumulator_dtype": jnp.float16}),
    "rmsprop": (gt.rmsprop, ("nu",), {"accumulator_dtype": jnp.bfloat16}),
    "rmsprop_centered": (
        lambda lr, **kw: gt.rmsprop(lr, centered=True, **kw),
        ("mu", "nu"),
        {"accumulator_dtype": jnp.float16},
    ),
}
EXPECTED = {  # parameter dtype -> default dtype of the moments
    "float16": "float32",
    "bfloat16": "float32",
    "float32": "float32",
    "float64": "float64",
    "complex64": "complex64",
}


@pytest.mark.parametrize("param_dtype", list(EXPECTED))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_moment_dtypes_default_to_the_accumulation_dtype(name, param_dtype, x64):
    build, fields, _ = BUILDERS[name]
    tx = build(1e-2)
    params = {"w": jnp.ones(3, param_dtype), "s": jnp.ones((), param_dtype)}
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update(params, state, params)
    for field in fields:
        moments = getattr(state[0], field)
        assert {str(m.dtype) for m in jax.tree.leaves(moments)} == {
            EXPECTED[param_dtype]
        }, field
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_moment_dtypes_can_be_overridden(name):
    build, fields, overrides = BUILDERS[name]
    tx = build(1e-2, **overrides)
    params = {"w": jnp.ones(3, jnp.float32)}
    state = tx.init(params)
    updates, state = tx.update(params, state, params)
    asked = {
        "mu": overrides.get("mu_dtype", overrides.get("accumulator_dtype")),
        "nu": overrides.get("nu_dtype", overrides.get("accumulator_dtype")),
        "sum_of_squares": overrides.get("accumulator_dtype"),
    }
    for field in fields:
        want = jnp.dtype(asked[field] or jnp.float32)
        assert getattr(state[0], field)["w"].dtype == want, field
    assert updates["w"].dtype == jnp.float32


def test_injected_adam_keeps_float32_moments_for_float16_parameters():
    tx = gt.inject_hyperparams(gt.adam)(learning_rate=1e-2)
    theirs = optax.adam(1e-2)
    u16, u32, p16, _ = _runs(tx, theirs, _gradients(2.5e4))
    chex.assert_tree_all_finite(p16)
    np.testing.assert_allclose(
        np.asarray(u16, np.float32),
        np.asarray(u32.astype(jnp.float16), np.float32),
        rtol=2e-3,
        atol=2e-5,
    )
    state = tx.init(jnp.asarray(PARAMS0))
    assert state.inner_state[0].nu.dtype == jnp.float32
