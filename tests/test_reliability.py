"""Reliability over the whole registry: non-finite gradients and property tests.

Non-finite safety: every registry optimizer wrapped in `gt.apply_if_finite`
is fed NaN, +Inf and -Inf gradients, many steps in a row; the parameters and
the optimizer's moments must come out bit-identical to what they were before
the bad steps, the skip counters must count them, and the next finite step
must equal the step of a run that never saw a bad gradient.

Property tests (hypothesis): random small pytrees (nested dicts and lists,
`None` leaves, scalar and size-0 leaves, float32/bfloat16/float64) and random
gradients. The number of examples comes from a hypothesis profile: `dev` (the
default, a few per test, so the suite stays fast) or `ci`
(`GT_HYPOTHESIS_PROFILE=ci`, over 1,000 examples in total).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradtransforms as gt
from tests.registry import IDS, REGISTRY

registry = pytest.mark.parametrize("entry", REGISTRY, ids=IDS)

settings.register_profile(
    "dev",
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # CI must be reproducible: the same examples every run
)
# CI (which sets CI=true) runs the large profile; local runs the quick one.
PROFILE = os.environ.get(
    "GT_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"
)
settings.load_profile(PROFILE)

BAD_STEPS = 10


# --------------------------------------------------------------------------
# Non-finite safety


def _bitwise_equal(a, b):
    """Same structure, and every leaf equal bit for bit (dtype included)."""
    chex.assert_trees_all_equal_structs(a, b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), (x, y)


def _guarded(entry):
    return gt.apply_if_finite(entry.build(), max_consecutive_errors=BAD_STEPS + 1)


GOOD, SKIP, ALL_BAD = 0, -1, 4  # kinds of step; 1, 2, 3 poison one element
POISON = np.array([0.0, np.nan, np.inf, -np.inf])


def _schedule():
    """3 good steps, then 10 NaN, 10 +Inf, 10 -Inf, 3 all-leaves-poisoned in a
    row (one good step between the runs, one at the end)."""
    kinds = [GOOD] * 3
    for kind in (1, 2, 3, ALL_BAD):
        kinds += [kind] * (BAD_STEPS if kind != ALL_BAD else 3) + [GOOD]
    return np.array(kinds)


def _run_with_kinds(tx, params, kinds):
    """One `lax.scan`: each step's gradient is good, poisoned, or skipped.

    A `SKIP` step leaves everything as it was without calling the optimizer:
    the run that never saw the bad gradients, compiled once with the same code.
    """

    def body(carry, kind):
        p, s = carry
        g = jax.grad(
            lambda q: sum(
                jnp.sum(x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(q)
            )
        )(p)
        g = jax.tree.map(lambda x: x + 0.05 * jnp.ones_like(x), g)
        value = jnp.asarray(POISON, jnp.float32)[jnp.clip(kind, 0, 3)]
        w = g["w"].astype(jnp.float32)
        w = jnp.where(kind > 0, w.at[0].set(value), w).astype(g["w"].dtype)
        g = {**g, "w": w}
        g = jax.tree.map(
            lambda x: jnp.where(kind == ALL_BAD, jnp.full_like(x, jnp.nan), x), g
        )
        u, s_new = tx.update(g, s, p)
        p_new = gt.apply_updates(p, u)
        skip = kind == SKIP
        p, s = jax.tree.map(
            lambda new, old: jnp.where(skip, old, new), (p_new, s_new), (p, s)
        )
        return (p, s), (p, s.inner_state, s.notfinite_count, s.total_notfinite)

    (p, s), trace = jax.lax.scan(body, (params, tx.init(params)), kinds)
    return p, s, trace


@registry
def test_non_finite_gradients_never_reach_params_or_moments(entry):
    tx = _guarded(entry)
    params = {
        "w": jnp.array([1.0, -2.0, 3.0]),
        "b": jnp.array(0.5),
        "h": jnp.linspace(-1.0, 1.0, 4).astype(jnp.bfloat16),
    }
    kinds = _schedule()
    run = jax.jit(functools.partial(_run_with_kinds, tx, params))
    p_bad, s_bad, (ps, inner, in_a_row, total) = run(kinds)
    p_ref, s_ref, _ = run(np.where(kinds == GOOD, GOOD, SKIP))
    # Bit-identical to the run that never saw the bad gradients.
    _bitwise_equal(p_bad, p_ref)
    _bitwise_equal(s_bad.inner_state, s_ref.inner_state)
    # At every step: parameters and moments finite, and unchanged by bad steps.
    chex.assert_tree_all_finite((ps, inner))
    bad = kinds != GOOD
    idx = np.flatnonzero(bad)
    for path, leaf in jax.tree_util.tree_leaves_with_path((ps, inner)):
        leaf = np.asarray(leaf)
        assert leaf[idx].tobytes() == leaf[idx - 1].tobytes(), (
            f"a bad step changed {jax.tree_util.keystr(path)}"
        )
    # The counters: in a row (reset by a good step) and in all.
    expected_row, run_length = [], 0
    for k in kinds:
        run_length = run_length + 1 if k != GOOD else 0
        expected_row.append(run_length)
    np.testing.assert_array_equal(in_a_row, expected_row)
    np.testing.assert_array_equal(total, np.cumsum(bad))
    assert int(s_bad.total_notfinite) == 3 * BAD_STEPS + 3
    assert in_a_row.dtype == total.dtype == jnp.int32


def test_the_skip_counter_is_exposed_through_chains_and_optax():
    tx = gt.chain(gt.clip_by_global_norm(1.0), gt.apply_if_finite(gt.adam(0.1)))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for _ in range(4):
        _, state = tx.update({"w": jnp.array([np.nan, 1.0])}, state, params)
    guard = state[1]
    assert isinstance(guard, gt.ApplyIfFiniteState)
    assert int(guard.notfinite_count) == 4 and int(guard.total_notfinite) == 4
    assert guard.notfinite_count.dtype == jnp.int32
    # optax's tree utilities find it by field name, as for optax.apply_if_finite.
    import optax

    found = optax.tree_utils.tree_get(state, "total_notfinite")
    assert int(found) == 4


# --------------------------------------------------------------------------
# Property-based tests


@dataclasses.dataclass(frozen=True)
class _Leaf:
    shape: tuple[int, ...]
    dtype: str


_DTYPES = ("float32", "bfloat16", "float64")
_leaf = st.builds(
    _Leaf,
    shape=st.lists(st.integers(0, 3), max_size=2).map(tuple),
    dtype=st.sampled_from(_DTYPES),
)
_key = st.sampled_from(("a", "b", "c", "kernel", "bias"))
_spec = st.recursive(
    st.none() | _leaf,
    lambda inner: (
        st.dictionaries(_key, inner, max_size=3) | st.lists(inner, max_size=2)
    ),
    max_leaves=5,
)
_tree_spec = st.dictionaries(_key, _spec, min_size=1, max_size=3)


def _materialise(spec, rng, scale=1.0):
    if isinstance(spec, _Leaf):
        x = scale * rng.standard_normal(spec.shape)
        return jnp.asarray(x, dtype=jnp.dtype(spec.dtype))
    if isinstance(spec, dict):
        return {k: _materialise(v, rng, scale) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_materialise(v, rng, scale) for v in spec]
    return None


def _dtype_tolerance(dtype):
    return {"bfloat16": 2e-2, "float32": 1e-5, "float64": 1e-12}[jnp.dtype(dtype).name]


def _assert_close_by_dtype(a, b):
    chex.assert_trees_all_equal_structs(a, b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        if jnp.issubdtype(x.dtype, jnp.floating):
            tol = _dtype_tolerance(x.dtype)
            np.testing.assert_allclose(
                np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol
            )
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _signature(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.asarray(x).dtype) for x in jax.tree.leaves(tree)
    ]


@registry
@given(spec=_tree_spec, seed=st.integers(0, 2**31 - 1))
def test_property_jit_equals_no_jit_and_trees_are_preserved(entry, spec, seed):
    """jit == no-jit; structures, shapes and dtypes preserved; finite outputs;
    and, since every registry method starts from zero state, zero gradients
    give zero updates (AdamW's decay term, which moves θ without a gradient,
    is switched off for that check)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        params = _materialise(spec, rng)
        tx = entry.build()
        state = tx.init(params)
        _assert_close_by_dtype(jax.jit(tx.init)(params), state)
        first = _signature(state)
        jit_update = jax.jit(tx.update)
        zeros = jax.tree.map(jnp.zeros_like, params)
        if "weight_decay" not in entry.kwargs:
            s_zero = state
            for _ in range(2):
                u_zero, s_zero = jit_update(zeros, s_zero, params)
                for u in jax.tree.leaves(u_zero):
                    assert not np.any(np.asarray(u, np.float64)), entry.name
        p_eager, s_eager, p_jit, s_jit = params, state, params, state
        for _ in range(2):
            grads = _materialise(spec, rng)
            u_eager, s_eager = tx.update(grads, s_eager, p_eager)
            u_jit, s_jit = jit_update(grads, s_jit, p_jit)
            _assert_close_by_dtype(u_eager, u_jit)
            chex.assert_trees_all_equal_structs(u_jit, params)
            chex.assert_trees_all_equal_shapes_and_dtypes(u_jit, params)
            chex.assert_tree_all_finite(u_jit)
            p_eager = gt.apply_updates(p_eager, u_eager)
            p_jit = gt.apply_updates(p_jit, u_jit)
            assert _signature(s_jit) == first
        _assert_close_by_dtype(s_eager, s_jit)
        chex.assert_trees_all_equal_shapes_and_dtypes(p_jit, params)
        chex.assert_tree_all_finite((p_jit, s_jit))


@given(
    spec=_tree_spec,
    seed=st.integers(0, 2**31 - 1),
    log2_scale=st.integers(-12, 12),
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.5, 0.9999),
)
@settings(max_examples=2 * settings.default.max_examples)
def test_property_adam_is_invariant_to_rescaling_the_gradient(
    spec, seed, log2_scale, b1, b2
):
    """$u(c\\,g) = u(g)$ for $c > 0$ (with $\\delta$ negligible): a power of
    two scales $s$ by $c$ and $\\sqrt{r}$ by $c$ exactly, so they agree to
    rounding of the division alone."""
    c = 2.0**log2_scale
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        params = _materialise(spec, rng)
        # |g| in [0.5, 2]: no under/overflow of g² at any scale.
        grads = [
            jax.tree.map(
                lambda p: (
                    jnp.where(p < 0, -1.0, 1.0).astype(p.dtype)
                    * (1.0 + 0.5 * jnp.tanh(p))
                ),
                params,
            )
            for _ in range(3)
        ]
        tx = gt.adam(0.1, b1=b1, b2=b2, eps=1e-30)
        update = jax.jit(tx.update)
        s1, s2 = tx.init(params), tx.init(params)
        for g in grads:
            u1, s1 = update(g, s1, params)
            u2, s2 = update(jax.tree.map(lambda x: x * c, g), s2, params)
            _assert_close_by_dtype(u1, u2)


_POOL = {
    "clip_by_global_norm": lambda: gt.clip_by_global_norm(1.0),
    "clip": lambda: gt.clip(0.5),
    "trace": lambda: gt.trace(0.9),
    "scale_by_adam": lambda: gt.scale_by_adam(),
    "scale_by_rms": lambda: gt.scale_by_rms(),
    "scale_by_rss": lambda: gt.scale_by_rss(),
    "scale": lambda: gt.scale(-0.1),
    "add_decayed_weights": lambda: gt.add_decayed_weights(1e-2),
    "ema": lambda: gt.ema(0.9),
}


@given(
    spec=_tree_spec,
    seed=st.integers(0, 2**31 - 1),
    names=st.lists(st.sampled_from(sorted(_POOL)), min_size=3, max_size=3),
)
@settings(max_examples=2 * settings.default.max_examples)
def test_property_chain_is_associative(spec, seed, names):
    a, b, c = (_POOL[n] for n in names)
    left = gt.chain(gt.chain(a(), b()), c())
    right = gt.chain(a(), gt.chain(b(), c()))
    flat = gt.chain(a(), b(), c())
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        params = _materialise(spec, rng)
        states = [tx.init(params) for tx in (left, right, flat)]
        steps = [jax.jit(tx.update) for tx in (left, right, flat)]
        for _ in range(2):
            grads = _materialise(spec, rng)
            outs = [f(grads, s, params) for f, s in zip(steps, states, strict=True)]
            states = [s for _, s in outs]
            _bitwise_equal(outs[0][0], outs[2][0])
            _bitwise_equal(outs[1][0], outs[2][0])
