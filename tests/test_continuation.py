"""Continuation by smoothing and annealed gradient noise, against closed forms.

The references are independent of the code under test: the Gaussian blur of
a cosine, J(θ) = Σ cos ωθ_i, is exp(−ω²σ²/2) J(θ), so the gradient the
Monte-Carlo estimate must average to is known exactly; statistical checks
use several standard errors of the draws themselves (the keys are fixed, so
the tests are deterministic). `optax.add_noise` is the reference for the
noise's random stream and variance.
"""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

OMEGA = 2.0
THETA = jnp.array([0.3, -1.2, 2.0, 0.9])


def cosines(theta, omega=OMEGA):
    return jnp.sum(jnp.cos(omega * theta))


def blurred_cosines_grad(theta, sigma, omega=OMEGA):
    """∇ of E cos(ω(θ + σε)) = exp(−ω²σ²/2) cos ωθ, summed over entries."""
    theta = np.asarray(theta, np.float64)
    return -omega * np.sin(omega * theta) * np.exp(-0.5 * (omega * sigma) ** 2)


def draws(tx, params, value_fn, num, seed=0):
    """`num` independent first updates of `tx`, one per key, stacked."""

    def one(key):
        state = gt.SmoothGradientState(count=jnp.zeros([], jnp.int32), rng_key=key)
        return tx.update(params, state, params, value_fn=value_fn)[0]

    keys = jax.random.split(jax.random.key(seed), num)
    return np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)


def mean_and_standard_error(samples):
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) / math.sqrt(len(samples))


# --------------------------------------------------------------------------
# The estimate of ∇J_σ (eq. 8.40)


@pytest.mark.parametrize("antithetic", [True, False])
def test_mean_matches_the_closed_form_blurred_gradient(antithetic):
    sigma = 0.4
    tx = gt.smooth_gradient(sigma, num_samples=4, antithetic=antithetic)
    samples = draws(tx, THETA, cosines, 2000)
    mean, se = mean_and_standard_error(samples)
    exact = blurred_cosines_grad(THETA, sigma)
    # Unbiased: within 5 standard errors in every coordinate ...
    np.testing.assert_array_less(np.abs(mean - exact), 5 * se)
    # ... and the test can tell ∇J_σ from ∇J: they differ by > 10 SE.
    plain = blurred_cosines_grad(THETA, 0.0)
    np.testing.assert_array_less(10 * se, np.abs(plain - exact))


def test_quadratic_blur_keeps_the_gradient():
    # J_σ = J + σ² tr(A)/2 for a quadratic: the same gradient.
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    b = jnp.array([0.5, -1.0, 2.0])
    theta = jnp.array([1.0, -2.0, 0.5])

    def quadratic(t):
        return 0.5 * t @ a @ t + b @ t

    exact = np.asarray(a @ theta + b, np.float64)
    # Antithetic pairs cancel σAε exactly: every draw is the gradient.
    anti = draws(gt.smooth_gradient(0.7, 4), theta, quadratic, 50)
    np.testing.assert_allclose(anti, np.broadcast_to(exact, anti.shape), atol=2e-5)
    # Plain sampling: noisy draws, unbiased mean.
    plain = draws(gt.smooth_gradient(0.7, 4, antithetic=False), theta, quadratic, 2000)
    mean, se = mean_and_standard_error(plain)
    assert np.all(plain.std(axis=0) > 0.1)
    np.testing.assert_array_less(np.abs(mean - exact), 5 * se)


def test_error_shrinks_with_sigma_and_vanishes_at_zero():
    plain = jax.grad(cosines)(THETA)
    errors = []
    for sigma in (0.3, 0.1, 0.03, 0.01):
        tx = gt.smooth_gradient(sigma, num_samples=4, key=3)
        out, _ = tx.update(THETA, tx.init(THETA), THETA, value_fn=cosines)
        errors.append(float(jnp.max(jnp.abs(out - plain))))
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors)), errors
    # Antithetic pairs cancel the O(σ) term: the error is O(σ²).
    assert errors[-1] < 1e-3, errors
    tx = gt.smooth_gradient(0.0, num_samples=4)
    out, _ = tx.update(THETA, tx.init(THETA), THETA, value_fn=cosines)
    np.testing.assert_array_equal(out, plain)
    out, _ = jax.jit(lambda s: tx.update(THETA, s, THETA, value_fn=cosines))(
        tx.init(THETA)
    )
    np.testing.assert_array_equal(out, jax.jit(jax.grad(cosines))(THETA))


def test_antithetic_pairs_have_lower_variance():
    # For small σ the gradient's variation is mostly its linear part, σ H ε,
    # which the pairs ±ε cancel; plain sampling keeps it. (For σ comparable to
    # the scale of J's ripples antithetic pairs need not help in every
    # coordinate; the total variance is the quantity compared.)
    sigma, n = 0.1, 1000
    anti = draws(gt.smooth_gradient(sigma, 4), THETA, cosines, n, seed=1)
    tx_plain = gt.smooth_gradient(sigma, 4, antithetic=False)
    plain = draws(tx_plain, THETA, cosines, n, seed=1)
    # The same expectation (the closed form), a fraction of the variance.
    exact = blurred_cosines_grad(THETA, sigma)
    for samples in (anti, plain):
        mean, se = mean_and_standard_error(samples)
        np.testing.assert_array_less(np.abs(mean - exact), 5 * se)
    total_anti = anti.var(axis=0, ddof=1).sum()
    total_plain = plain.var(axis=0, ddof=1).sum()
    assert total_anti < 0.25 * total_plain, (total_anti, total_plain)


# --------------------------------------------------------------------------
# Schedules, state, jit


class ScheduleTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_sigma_follows_the_schedule_down_to_the_exact_gradient(self):
        schedule = gt.linear_decay_schedule(0.6, 0.0, transition_steps=3)
        tx = gt.smooth_gradient(schedule, num_samples=2, key=7)
        update = self.variant(lambda g, s, p: tx.update(g, s, p, value_fn=cosines))
        state = tx.init(THETA)
        plain = jax.grad(cosines)(THETA)
        for k in range(5):
            out, new_state = update(plain, state, THETA)
            assert int(new_state.count) == k + 1
            sigma_k = float(schedule(k))  # 0.6, 0.4, 0.2, 0, 0
            if sigma_k > 0:
                # The same draw as a constant-σ transformation from this state.
                fixed = gt.smooth_gradient(sigma_k, num_samples=2)
                expected, _ = fixed.update(plain, state, THETA, value_fn=cosines)
                chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-6)
                assert float(jnp.max(jnp.abs(out - plain))) > 1e-3
            else:
                np.testing.assert_array_equal(out, plain)
            state = new_state

    @chex.variants(with_jit=True, without_jit=True)
    def test_mixed_tree_keeps_structure_and_dtypes(self):
        params = {
            "w": jnp.array([0.3, -1.2, 2.0]),
            "scalar": jnp.asarray(0.5),
            "half": jnp.array([0.25, 1.5], jnp.bfloat16),
            "frozen": None,
        }

        def f(p):
            half = p["half"].astype(jnp.float32)
            return cosines(p["w"]) + jnp.cos(p["scalar"]) + jnp.sum(jnp.cos(half))

        tx = gt.smooth_gradient(gt.linear_decay_schedule(0.3, 0.0, 10), key=1)
        state = tx.init(params)
        out, new_state = self.variant(lambda g, s, p: tx.update(g, s, p, value_fn=f))(
            params, state, params
        )
        reference, _ = tx.update(params, state, params, value_fn=f)  # eager
        assert jax.tree.structure(out) == jax.tree.structure(params)
        assert out["frozen"] is None
        for name in ("w", "scalar", "half"):
            assert out[name].dtype == params[name].dtype
            assert out[name].shape == params[name].shape
        chex.assert_trees_all_close(out, reference, rtol=1e-2)
        chex.assert_trees_all_close(out["w"], reference["w"], rtol=1e-5)
        assert int(new_state.count) == 1

    @chex.variants(with_jit=True, without_jit=True)
    def test_empty_tree(self):
        smooth = gt.smooth_gradient(0.5)
        out, state = self.variant(
            lambda s: smooth.update({}, s, {}, value_fn=lambda p: 0.0)
        )(smooth.init({}))
        assert out == {} and int(state.count) == 1
        noise = gt.add_noise(0.1, 0.55)
        out, state = self.variant(noise.update)({}, noise.init({}))
        assert out == {} and int(state.count) == 1


def test_float64_stays_float64(x64):
    theta = jnp.array([0.3, -1.2], jnp.float64)
    tx = gt.smooth_gradient(0.2)
    out, _ = tx.update(theta, tx.init(theta), theta, value_fn=cosines)
    assert out.dtype == jnp.float64
    noisy, _ = gt.add_noise(0.1, 0.55).update(
        theta, gt.add_noise(0.1, 0.55).init(theta)
    )
    assert noisy.dtype == jnp.float64


def test_key_is_split_each_step_and_seeds_reproduce():
    tx = gt.smooth_gradient(0.5, key=4)
    state = tx.init(THETA)
    first, state = tx.update(THETA, state, THETA, value_fn=cosines)
    second, _ = tx.update(THETA, state, THETA, value_fn=cosines)
    assert not np.allclose(first, second)
    for key in (4, jax.random.key(4), jax.random.PRNGKey(4)):
        same = gt.smooth_gradient(0.5, key=key)
        again, _ = same.update(THETA, same.init(THETA), THETA, value_fn=cosines)
        np.testing.assert_array_equal(again, first)


def test_sigma_injected_as_a_hyperparameter():
    factory = gt.inject_hyperparams(
        gt.smooth_gradient, static_args=("num_samples", "key")
    )
    tx = factory(sigma=0.0, num_samples=2, key=0)
    state = tx.init(THETA)
    step = jax.jit(lambda s: tx.update(THETA, s, THETA, value_fn=cosines))
    out, _ = step(state)
    np.testing.assert_array_equal(out, jax.jit(jax.grad(cosines))(THETA))
    state = state._replace(hyperparams={"sigma": jnp.asarray(0.5)})
    out, _ = step(state)
    assert float(jnp.max(jnp.abs(out - jax.grad(cosines)(THETA)))) > 1e-3


# --------------------------------------------------------------------------
# Calling convention and chains


def test_inside_chains_with_value_fn_and_extra_kwargs():
    lr = 0.1
    smooth = gt.smooth_gradient(0.3, key=5)
    expected, _ = smooth.update(THETA, smooth.init(THETA), THETA, value_fn=cosines)
    for tx in (
        gt.chain(gt.smooth_gradient(0.3, key=5), gt.sgd(lr)),
        optax.chain(gt.smooth_gradient(0.3, key=5), optax.sgd(lr)),
    ):
        out, _ = tx.update(THETA, tx.init(THETA), THETA, value_fn=cosines)
        chex.assert_trees_all_close(out, -lr * expected, rtol=1e-6)
    # The line-search keywords are accepted and ignored; others reach value_fn.
    tx = gt.chain(gt.smooth_gradient(0.0), gt.sgd(lr))

    def shifted(theta, shift):
        return cosines(theta - shift)

    out, _ = tx.update(
        THETA,
        tx.init(THETA),
        THETA,
        value=shifted(THETA, 1.0),
        grad=THETA,
        value_fn=shifted,
        shift=1.0,
    )
    chex.assert_trees_all_close(out, -lr * jax.grad(shifted)(THETA, 1.0), rtol=1e-6)


def test_missing_value_fn_or_params_is_a_clear_error():
    tx = gt.smooth_gradient(0.1)
    state = tx.init(THETA)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(THETA, state, THETA)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(THETA, state, THETA, value_fn="cos")
    with pytest.raises(TypeError, match="value_fn"):
        gt.chain(tx, gt.sgd(0.1)).update(THETA, (state, optax.EmptyState()), THETA)
    with pytest.raises(ValueError, match="params"):
        tx.update(THETA, state, value_fn=cosines)


NAN, INF = math.nan, math.inf
BAD_KEYS = ["0", 1.5, None, True, jnp.zeros(3)]


@pytest.mark.parametrize(
    ("factory", "arg", "fixed", "bad"),
    [
        *[
            (gt.smooth_gradient, "sigma", {}, v)
            for v in (-0.1, NAN, INF, "0.1", None, True)
        ],
        *[
            (gt.smooth_gradient, "num_samples", {"sigma": 0.1}, v)
            for v in (0, -2, 2.5, "4", None, 3)
        ],
        (gt.smooth_gradient, "antithetic", {"sigma": 0.1}, "yes"),
        *[(gt.smooth_gradient, "key", {"sigma": 0.1}, v) for v in BAD_KEYS],
        *[(gt.add_noise, "eta", {"gamma": 0.55}, v) for v in (-1.0, NAN, INF, "x")],
        *[(gt.add_noise, "gamma", {"eta": 0.1}, v) for v in (-0.5, NAN, INF, None)],
        *[(gt.add_noise, "key", {"eta": 0.1, "gamma": 0.55}, v) for v in BAD_KEYS],
    ],
    ids=lambda v: getattr(v, "__name__", repr(v)),
)
def test_bad_arguments_fail_at_construction_by_name(factory, arg, fixed, bad):
    with pytest.raises((TypeError, ValueError), match=arg):
        factory(**fixed, **{arg: bad})


def test_odd_num_samples_is_fine_without_antithetic_pairs():
    tx = gt.smooth_gradient(0.1, num_samples=3, antithetic=False)
    out, _ = tx.update(THETA, tx.init(THETA), THETA, value_fn=cosines)
    assert out.shape == THETA.shape


# --------------------------------------------------------------------------
# add_noise


@pytest.mark.parametrize("key", [0, 11])
def test_add_noise_is_optax_add_noise(key):
    grads = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2))}
    ours, theirs = gt.add_noise(0.3, 0.55, key=key), optax.add_noise(0.3, 0.55, key)
    state_ours, state_theirs = ours.init(grads), theirs.init(grads)
    for _ in range(3):
        out, state_ours = ours.update(grads, state_ours)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 and float
            expected, state_theirs = theirs.update(grads, state_theirs)
        chex.assert_trees_all_close(out, expected, rtol=1e-6, atol=1e-7)
    assert int(state_ours.count) == 3


@pytest.mark.parametrize("count", [0, 9])
def test_add_noise_variance_is_eta_over_one_plus_k_to_the_gamma(count):
    eta, gamma, n = 0.5, 0.55, 4000
    g = jnp.array([1.0, -2.0, 0.5])
    tx = gt.add_noise(eta, gamma)

    def one(key):
        state = gt.AddNoiseState(jnp.asarray(count, jnp.int32), key)
        return tx.update(g, state)[0]

    keys = jax.random.split(jax.random.key(2), n)
    noisy = np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)
    noise = (noisy - np.asarray(g)).ravel()
    variance = eta / (1 + count) ** gamma
    # Mean g within 5 SE; sample variance within 5 SDs of its chi-square spread.
    assert abs(noise.mean()) < 5 * math.sqrt(variance / noise.size)
    assert abs(noise.var(ddof=1) / variance - 1) < 5 * math.sqrt(2 / (noise.size - 1))


def test_add_noise_keeps_structure_and_dtypes():
    grads = {"w": jnp.ones(3), "h": jnp.ones(2, jnp.bfloat16), "n": None}
    tx = gt.add_noise(0.1, 0.55, key=jax.random.key(1))
    out, state = jax.jit(tx.update)(grads, tx.init(grads))
    assert out["n"] is None
    assert out["w"].dtype == jnp.float32 and out["h"].dtype == jnp.bfloat16
    assert not np.allclose(out["w"], 1.0)
    assert int(state.count) == 1
