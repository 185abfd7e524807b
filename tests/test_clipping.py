"""Clipping and non-finite safety, against NumPy and closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt


class ClipByGlobalNormTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_clips_onto_the_ball_and_keeps_the_norm(self):
        g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([[12.0]])}  # ‖g‖ = 13
        tx = gt.clip_by_global_norm(6.5)
        out, state = self.variant(tx.update)(g, tx.init(g))
        # h g / ‖g‖ with h = 6.5: exactly half.
        chex.assert_trees_all_close(out, jax.tree.map(lambda x: 0.5 * x, g))
        np.testing.assert_allclose(state.global_norm, 13.0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_inside_the_ball_is_untouched(self):
        g = {"a": jnp.array([0.3, -0.4])}
        tx = gt.clip_by_global_norm(1.0)
        out, state = self.variant(tx.update)(g, tx.init(g))
        chex.assert_trees_all_close(out, g)
        np.testing.assert_allclose(state.global_norm, 0.5, rtol=1e-6)


def test_zero_gradient_gives_zero_not_nan():
    g = {"a": jnp.zeros(3)}
    for tx in (gt.clip_by_global_norm(1.0), gt.clip_by_norm(1.0)):
        out, _ = tx.update(g, tx.init(g))
        chex.assert_trees_all_equal(out, g)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_finite_gradient_whose_squares_overflow_is_clipped_not_zeroed(jit):
    # 3e20² overflows float32; the norm (5e20) does not. optax gives zeros here.
    g = {"a": jnp.array([3e20, -4e20]), "b": jnp.zeros(2, jnp.bfloat16)}
    for tx, expected in (
        (gt.clip_by_global_norm(1.0), [0.6, -0.8]),
        (gt.clip_by_norm(2.0), [1.2, -1.6]),
    ):
        update = jax.jit(tx.update) if jit else tx.update
        out, state = update(g, tx.init(g))
        np.testing.assert_allclose(out["a"], expected, rtol=1e-6)
        chex.assert_tree_all_finite((out, state))
        if isinstance(state, gt.ClipByGlobalNormState):
            np.testing.assert_allclose(state.global_norm, 5e20, rtol=1e-6)


def test_float64_norms_do_not_overflow_either(x64):
    g = {"a": jnp.array([3e200, 4e200], jnp.float64)}
    out, state = gt.clip_by_global_norm(1.0).update(
        g, gt.clip_by_global_norm(1.0).init(g)
    )
    np.testing.assert_allclose(out["a"], [0.6, 0.8], rtol=1e-12)
    np.testing.assert_allclose(state.global_norm, 5e200, rtol=1e-12)


def test_a_non_finite_gradient_comes_out_nan_as_in_optax():
    """inf / inf: documented, and what `apply_if_finite` outside is for."""
    import optax

    g = {"a": jnp.array([np.inf, 1.0]), "b": jnp.array([np.nan])}
    out, state = gt.clip_by_global_norm(1.0).update(
        g, gt.clip_by_global_norm(1.0).init(g)
    )
    with jax.numpy_dtype_promotion("standard"):
        ref, _ = optax.clip_by_global_norm(1.0).update(g, optax.EmptyState())
    chex.assert_trees_all_equal(out, ref)
    assert np.isnan(float(state.global_norm))


def test_clip_by_norm_is_per_leaf():
    g = {"small": jnp.array([0.3, 0.4]), "big": jnp.array([6.0, 8.0])}
    out, _ = gt.clip_by_norm(1.0).update(g, gt.clip_by_norm(1.0).init(g))
    chex.assert_trees_all_close(out["small"], g["small"])
    chex.assert_trees_all_close(out["big"], jnp.array([0.6, 0.8]), rtol=1e-6)


def test_clip_by_value():
    g = {"a": jnp.array([-3.0, -0.2, 0.0, 0.7, 5.0])}
    out, _ = gt.clip(0.5).update(g, gt.clip(0.5).init(g))
    np.testing.assert_array_equal(out["a"], np.clip(np.asarray(g["a"]), -0.5, 0.5))


def test_global_norm_of_bfloat16_accumulates_in_float32():
    g = {"a": jnp.full((4096,), 0.01, jnp.bfloat16)}
    tx = gt.clip_by_global_norm(1e6)
    _, state = tx.update(g, tx.init(g))
    assert state.global_norm.dtype == jnp.float32
    exact = np.sqrt(4096) * float(jnp.asarray(0.01, jnp.bfloat16))
    np.testing.assert_allclose(state.global_norm, exact, rtol=1e-5)


BAD = [jnp.nan, jnp.inf, -jnp.inf]


@pytest.mark.parametrize("bad", BAD, ids=["nan", "+inf", "-inf"])
def test_apply_if_finite_never_lets_a_bad_step_through(bad):
    inner = gt.adam(0.1)
    tx = gt.apply_if_finite(inner, max_consecutive_errors=2)
    params = {"w": jnp.array([1.0, 2.0])}
    state = tx.init(params)
    step = jax.jit(tx.update)
    good = {"w": jnp.array([0.5, -0.5])}
    updates, state = step(good, state, params)
    params = gt.apply_updates(params, updates)
    before_params, before_inner = params, state.inner_state
    # Many more bad steps in a row than max_consecutive_errors.
    for i in range(7):
        poisoned = {"w": jnp.array([bad, 0.1])}
        updates, state = step(poisoned, state, params)
        params = gt.apply_updates(params, updates)
        chex.assert_trees_all_equal(params, before_params)
        chex.assert_trees_all_equal(state.inner_state, before_inner)
        assert int(state.notfinite_count) == i + 1
        assert not bool(state.last_finite)
    assert int(state.total_notfinite) == 7
    updates, state = step(good, state, params)
    assert int(state.notfinite_count) == 0 and bool(state.last_finite)
    assert int(state.total_notfinite) == 7
    chex.assert_tree_all_finite(gt.apply_updates(params, updates))
    # The good step after the bad ones equals the second step of a clean run.
    clean = inner.init({"w": jnp.array([1.0, 2.0])})
    _, clean = inner.update(good, clean)
    expected, _ = inner.update(good, clean)
    chex.assert_trees_all_close(updates, expected)


def test_zero_nans_replaces_nans_and_records_them():
    g = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.array([jnp.inf])}
    tx = gt.zero_nans()
    out, state = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(out["a"], [1.0, 0.0])
    np.testing.assert_array_equal(out["b"], [np.inf])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: gt.clip(0.0), "max_delta"),
        (lambda: gt.clip(-1.0), "max_delta"),
        (lambda: gt.clip_by_norm(0.0), "max_norm"),
        (lambda: gt.clip_by_global_norm(-2.0), "max_norm"),
        (lambda: gt.clip_by_global_norm(float("inf")), "max_norm"),
        (lambda: gt.apply_if_finite(gt.sgd(0.1), 0), "max_consecutive_errors"),
        (lambda: gt.apply_if_finite(gt.sgd(0.1), 1.5), "max_consecutive_errors"),
    ],
)
def test_bad_arguments_name_themselves(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


@pytest.mark.parametrize(
    "scale", [1e-3, 1.0, 1e20], ids=["small", "unit", "squares_overflow"]
)
@pytest.mark.parametrize("name", ["clip_by_global_norm", "clip_by_norm"])
def test_clipping_is_differentiable_like_optax(name, scale):
    """Differentiating through a clipped update (meta-learning): the gradient
    is optax's, finite, also where the overflow-safe norm rescales."""
    grads = {"w": jnp.array([1.0, 2.0]) * scale, "b": jnp.array([-3.0]) * scale}

    def total(tx, per_leaf=False):
        def clipped(g):
            if per_leaf:  # optax has no per-leaf clip: its global one, leaf by leaf
                return [tx.update(x, tx.init(x))[0] for x in jax.tree.leaves(g)]
            return tx.update(g, tx.init(g))[0]

        return lambda g: sum(jnp.sum(u) for u in jax.tree.leaves(clipped(g)))

    got = jax.grad(total(getattr(gt, name)(1.0)))(grads)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(got))
    if scale < 1e19:  # optax's plain norm overflows beyond
        per_leaf = name == "clip_by_norm"
        want = jax.grad(total(optax.clip_by_global_norm(1.0), per_leaf))(grads)
        chex.assert_trees_all_close(got, want, rtol=1e-5)
