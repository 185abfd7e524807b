"""inject_hyperparams: its rule, its state, and optax's arguments against optax's."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

PARAMS = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
GRADS = {"w": jnp.array([0.2, 0.4]), "b": jnp.array(-1.0)}


# ----------------------------------------------------------------------------
# inject_hyperparams


def test_inject_hyperparams_state_holds_arrays_that_can_be_changed():
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=0.1, momentum=0.9)
    state = tx.init(PARAMS)
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    state = state._replace(
        hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(0.01)}
    )
    out, _ = tx.update(GRADS, state, PARAMS)
    chex.assert_trees_all_close(out, jax.tree.map(lambda g: -0.01 * g, GRADS))


def test_inject_hyperparams_evaluates_schedules_each_step():
    sched = gt.piecewise_constant_schedule(1.0, {2: 0.1})
    tx = gt.inject_hyperparams(gt.sgd)(learning_rate=sched)
    state = tx.init(PARAMS)
    lrs = []
    for _ in range(4):
        _, state = tx.update(GRADS, state, PARAMS)
        lrs.append(float(state.hyperparams["learning_rate"]))
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.1, 0.1], rtol=1e-6)


def test_inject_hyperparams_static_args_pass_callables_through():
    mask_fn = lambda p: jax.tree.map(lambda x: x.ndim > 0, p)
    tx = gt.inject_hyperparams(gt.adamw, static_args=("mask",))(
        learning_rate=0.1, weight_decay=0.5, mask=mask_fn
    )
    state = tx.init(PARAMS)
    assert "mask" not in state.hyperparams
    reference = gt.adamw(0.1, weight_decay=0.5, mask=mask_fn)
    chex.assert_trees_all_close(
        tx.update(GRADS, state, PARAMS)[0],
        reference.update(GRADS, reference.init(PARAMS), PARAMS)[0],
    )


def test_inject_hyperparams_errors():
    with pytest.raises(TypeError, match="keyword"):  # bound as sgd binds them
        gt.inject_hyperparams(gt.sgd)(0.1, lr=0.1)
    with pytest.raises(TypeError, match="static_args"):
        gt.inject_hyperparams(gt.adamw)(learning_rate=0.1, mask={"w": True})
    with pytest.raises(ValueError, match="momentum"):
        gt.inject_hyperparams(gt.sgd)(learning_rate=0.1, momentum=1.5)


def test_inject_hyperparams_vmaps_over_learning_rates():
    lrs = jnp.array([0.1, 0.2, 0.3])

    def one(lr):
        tx = gt.inject_hyperparams(gt.sgd)(learning_rate=lr, momentum=0.5)
        return tx.update(GRADS, tx.init(PARAMS), PARAMS)[0]

    out = jax.vmap(one)(lrs)
    chex.assert_trees_all_close(
        out["w"], -lrs[:, None] * GRADS["w"][None, :], rtol=1e-6
    )


def test_inject_hyperparams_keeps_dtypes_static():
    tx = gt.inject_hyperparams(gt.adam)(learning_rate=0.1, mu_dtype=jnp.bfloat16)
    state = tx.init(PARAMS)
    assert "mu_dtype" not in state.hyperparams
    assert state.inner_state[0].mu["w"].dtype == jnp.bfloat16


# ----------------------------------------------------------------------------
# inject_hyperparams: optax's arguments and state, against optax's own


def _optax_run(factory, steps=3, params=None, **extra):
    """Updates and final state of `factory` (a built transformation), jitted."""
    params = PARAMS if params is None else params
    state = jax.jit(factory.init)(params)
    update = jax.jit(factory.update)
    outs = []
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(steps):
            out, state = update(GRADS, state, params, **extra)
            outs.append(out)
    return outs, state


def test_inject_hyperparams_names_positional_arguments_by_the_signature():
    ours = gt.inject_hyperparams(gt.sgd)(0.1, 0.9)
    theirs = optax.inject_hyperparams(optax.sgd)(0.1, 0.9)
    state = ours.init(PARAMS)
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    chex.assert_trees_all_close(_optax_run(ours)[0], _optax_run(theirs)[0])
    clip = gt.inject_hyperparams(gt.clip_by_global_norm)(0.1)
    assert float(clip.init(PARAMS).hyperparams["max_norm"]) == pytest.approx(0.1)


def test_inject_hyperparams_records_float_defaults_as_optax():
    """Adam's `eps` & co. are in the state (optax's "constant hyperparams")."""
    ours = gt.inject_hyperparams(gt.adam)(0.1).init(PARAMS).hyperparams
    theirs = optax.inject_hyperparams(optax.adam)(0.1).init(PARAMS).hyperparams
    assert set(ours) == set(theirs) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value)
    # Defaults that are ints (sizes, step counts) stay the factory's, unjitted.
    tx = gt.inject_hyperparams(gt.lbfgs)()
    state = jax.jit(tx.init)(PARAMS)
    assert state.hyperparams == {}
    assert any(x.shape == (10,) for x in jax.tree.leaves(state))  # memory_size


@pytest.mark.parametrize("static_args", ["mask", ["mask"], ("mask",)])
def test_inject_hyperparams_static_args_as_a_name_or_names(static_args):
    def custom(learning_rate, mask):
        return gt.masked(gt.scale(-learning_rate), mask)

    mask_fn = lambda p: jax.tree.map(lambda x: x.ndim > 0, p)
    tx = gt.inject_hyperparams(custom, static_args=static_args)(0.1, mask_fn)
    out, state = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    assert set(state.hyperparams) == {"learning_rate"}
    chex.assert_trees_all_close(out, {"w": -0.1 * GRADS["w"], "b": GRADS["b"]})


def test_inject_hyperparams_static_args_errors():
    for bad in ("lr", ["lr"]):  # optax's ValueError: not a parameter
        with pytest.raises(ValueError, match="lr"):
            gt.inject_hyperparams(gt.scale, static_args=bad)
    with pytest.raises(TypeError, match="static_args"):
        gt.inject_hyperparams(gt.scale, static_args=[1])
    # A factory taking **kwargs may receive any name.
    registry_like = lambda max_norm, **kw: gt.chain(
        gt.clip_by_global_norm(max_norm), gt.sgd(**kw)
    )
    tx = gt.inject_hyperparams(registry_like, static_args=("nesterov",))(
        1.0, learning_rate=0.1, momentum=0.5, nesterov=True
    )
    assert set(tx.init(PARAMS).hyperparams) == {"max_norm", "learning_rate", "momentum"}


class _Total(NamedTuple):
    total: jax.Array


class _SumOfAddenda:
    """A stateful schedule (optax's protocol): the sum of the `addendum`s seen."""

    def init(self):
        return _Total(jnp.zeros([], jnp.float32))

    def update(self, state, **extra_args):
        return _Total(state.total + extra_args["addendum"])

    def __call__(self, state, **extra_args):
        return state.total


def test_inject_hyperparams_runs_stateful_schedules_as_optax():
    assert isinstance(_SumOfAddenda(), optax.schedules.StatefulSchedule)
    extra = {"addendum": jnp.asarray(0.3, jnp.float32)}
    ours = gt.inject_hyperparams(gt.scale)(step_size=_SumOfAddenda())
    theirs = optax.inject_hyperparams(optax.scale)(step_size=_SumOfAddenda())
    (out_ours, s_ours), (out_theirs, s_theirs) = (
        _optax_run(tx, **extra) for tx in (ours, theirs)
    )
    chex.assert_trees_all_close(out_ours, out_theirs)
    chex.assert_trees_all_close(s_ours.hyperparams, s_theirs.hyperparams)
    chex.assert_trees_all_close(s_ours.hyperparams_states, s_theirs.hyperparams_states)
    np.testing.assert_allclose(s_ours.hyperparams_states["step_size"].total, 0.9)
    assert int(s_ours.count) == 3


def test_inject_hyperparams_accepts_optax_wrapped_schedules():
    schedule = gt.linear_decay_schedule(0.1, 0.0, 4)
    wrapped = optax.schedules.WrappedSchedule(schedule)
    plain_outs, _ = _optax_run(gt.inject_hyperparams(gt.sgd)(schedule), steps=5)
    outs, state = _optax_run(gt.inject_hyperparams(gt.sgd)(wrapped), steps=5)
    chex.assert_trees_all_close(outs, plain_outs)
    assert int(state.hyperparams_states["learning_rate"].count) == 5


def test_inject_hyperparams_starts_the_count_at_zero():
    tx = gt.inject_hyperparams(gt.scale)(lambda count: count)
    state = tx.init(PARAMS)
    first, state = jax.jit(tx.update)(GRADS, state)
    second, _ = jax.jit(tx.update)(GRADS, state)
    chex.assert_trees_all_equal(first, jax.tree.map(jnp.zeros_like, GRADS))
    chex.assert_trees_all_equal(second, GRADS)


def test_inject_hyperparams_accepts_a_warm_up_from_zero_as_the_plain_optimizer():
    warm_up = gt.linear_decay_schedule(0.0, 1e-2, 3)
    injected, _ = _optax_run(gt.inject_hyperparams(gt.adam)(learning_rate=warm_up))
    plain, _ = _optax_run(gt.adam(warm_up))
    chex.assert_trees_all_close(injected, plain)
    chex.assert_trees_all_equal(injected[0], jax.tree.map(jnp.zeros_like, GRADS))
    with pytest.raises(ValueError, match="learning_rate"):  # a constant 0 is not
        gt.inject_hyperparams(gt.adam)(learning_rate=0.0)


def test_inject_hyperparams_passes_prng_keys_and_objects_through():
    def noisy(key, scale, inner):
        def init(params):
            return key, inner.init(params)

        def update(updates, state, params=None):
            key, inner_state = state
            key, sub = jax.random.split(key)
            updates, inner_state = inner.update(updates, inner_state, params)
            noise = jax.random.normal(sub, updates["w"].shape)
            return {**updates, "w": updates["w"] + scale * noise}, (key, inner_state)

        return gt.GradientTransformation(init, update)

    args = (jax.random.key(17), 1e-3, gt.sgd(0.1))
    tx = gt.inject_hyperparams(noisy)(*args)
    state = jax.jit(tx.init)(PARAMS)
    assert set(state.hyperparams) == {"scale"}
    out, _ = jax.jit(tx.update)(GRADS, state)
    plain = noisy(*args)
    expected, _ = plain.update(GRADS, plain.init(PARAMS))
    chex.assert_trees_all_close(out, expected, rtol=1e-6)


@pytest.mark.parametrize("param_dtype", [jnp.bfloat16, jnp.float32])
def test_inject_hyperparams_dtypes_follow_optax(param_dtype):
    params = {"w": jnp.ones(2, param_dtype)}
    values = {
        "b1": 0.9,  # a Python float: the parameters' dtype
        "b2": jnp.asarray(0.95),  # weakly typed: the parameters' dtype
        "eps": jnp.asarray(1e-8, jnp.float32),  # strongly typed: kept
    }
    for dtype in (None, jnp.bfloat16, jnp.float32):
        ours = gt.inject_hyperparams(gt.scale_by_adam, hyperparam_dtype=dtype)
        theirs = optax.inject_hyperparams(optax.scale_by_adam, hyperparam_dtype=dtype)
        got = jax.jit(ours(**values).init)(params).hyperparams
        want = jax.jit(theirs(**values).init)(params).hyperparams
        assert {k: got[k].dtype for k in values} == {k: want[k].dtype for k in values}
        if dtype is not None:  # the defaults too
            assert got["eps_root"].dtype == want["eps_root"].dtype == dtype
    assert got["b1"].dtype == jnp.float32  # hyperparam_dtype=float32


def test_inject_hyperparams_keeps_defaults_in_float32_for_16_bit_params():
    """In bfloat16, Adam's default b2 = 0.999 would round to 1 (and give NaN)."""
    params = {"w": jnp.array([1.0, -2.0, 0.5], jnp.bfloat16)}
    grads = {"w": jnp.array([0.5, 0.25, -1.0], jnp.bfloat16)}
    tx = gt.inject_hyperparams(gt.adam)(1e-3)
    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == jnp.bfloat16  # passed
    assert state.hyperparams["b2"].dtype == jnp.float32  # a default
    assert float(state.hyperparams["b2"]) == pytest.approx(0.999)
    plain = gt.adam(1e-3)
    plain_state = plain.init(params)
    for _ in range(3):
        out, state = tx.update(grads, state, params)
        expected, plain_state = plain.update(grads, plain_state, params)
        chex.assert_trees_all_close(out, expected, rtol=1e-2)


def test_inject_hyperparams_default_dtype_is_the_widest_float_of_the_params(x64):
    mixed = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    tx = gt.inject_hyperparams(gt.sgd)(0.1)
    assert tx.init(mixed).hyperparams["learning_rate"].dtype == jnp.float32
    complex_params = {"z": jnp.ones(2, jnp.complex128)}
    assert tx.init(complex_params).hyperparams["learning_rate"].dtype == jnp.float64


def test_inject_hyperparams_update_without_params_keeps_the_dtypes():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    tx = gt.inject_hyperparams(gt.sgd)(gt.linear_decay_schedule(0.1, 0.0, 4), 0.5)
    state = tx.init(params)
    kinds = jax.tree.map(lambda x: (x.shape, x.dtype), state)

    def step(state, _):
        return tx.update(params, state)[1], None  # params not given

    final, _ = jax.lax.scan(step, state, length=3)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), final) == kinds


def test_inject_hyperparams_takes_numeric_arrays_of_any_shape():
    step_size = jnp.array([1.0, 2.0])
    ours = gt.inject_hyperparams(gt.scale)(step_size)
    theirs = optax.inject_hyperparams(optax.scale)(step_size)
    out, state = ours.update(GRADS, ours.init(PARAMS))
    chex.assert_trees_all_close(out, theirs.update(GRADS, theirs.init(PARAMS))[0])
    chex.assert_trees_all_equal(state.hyperparams["step_size"], step_size)


def test_inject_hyperparams_says_when_a_callable_is_not_a_schedule():
    mask_fn = lambda p: jax.tree.map(lambda x: x.ndim > 0, p)
    with pytest.raises(TypeError, match="static_args"):
        gt.inject_hyperparams(gt.adamw)(learning_rate=0.1, mask=mask_fn)


def test_optax_inject_hyperparams_with_a_warm_up_from_zero():
    """optax builds the optimizer eagerly with the schedule's value at step 0,
    a concrete JAX array 0.0: accepted (a JAX array may be 0), and the steps
    follow optax's own Adam."""
    warm_up = optax.linear_schedule(0.0, 1e-2, 10)
    ours = optax.inject_hyperparams(gt.adam)(learning_rate=warm_up)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=warm_up)
    params = {"w": jnp.array([1.0, -2.0])}
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = ours.update(params, s_ours, params)
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it
            u_theirs, s_theirs = theirs.update(params, s_theirs, params)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-5)  # float32 rounding
    with pytest.raises(ValueError, match="learning_rate must be"):
        gt.adam(jnp.asarray(-1.0))
    with pytest.raises(ValueError, match="learning_rate must be"):
        gt.adam(0.0)  # a number must be > 0
