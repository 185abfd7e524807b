"""`apply_if_finite` checks what it is about to emit (issue 18, item 4).

A step is skipped when the gradient, the wrapped transformation's update, a
buffer of its new state, or the parameters after the update would be
non-finite. Every case runs several steps, with and without jit, and checks
that the parameters stay finite, that a skipped step changes nothing, the
counters and the recorded `SkipReason`, and that the steps after a skip equal
a run of the inner transformation that never saw the bad steps.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtransforms as gt

R = gt.SkipReason
F16_MAX = float(jnp.finfo(jnp.float16).max)  # 65504


def _amplified(exponent=30):
    """Momentum SGD computed in units of $10^{k}$: $g \\cdot 10^{k}$ overflows
    float32 for $|g| > 3.4 \\cdot 10^{38-k}$ (the trace between the two scales
    keeps XLA from folding them into one)."""
    return gt.chain(
        gt.scale(10.0**exponent), gt.trace(0.5), gt.scale(-(10.0**-exponent))
    )


def _run(tx, params, grads, update=None):
    """Apply `grads` in turn; check the parameters are finite after each step.

    `update` defaults to `jax.jit(tx.update)`. Returns the final parameters,
    state, and per step whether it was applied, the reason recorded and the
    two counters.
    """
    update = update or jax.jit(tx.update)
    state, log = tx.init(params), []
    for g in grads:
        updates, state = update(g, state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
        params = gt.apply_updates(params, updates)
        chex.assert_tree_all_finite(params)
        log.append(
            (
                bool(state.last_finite),
                int(state.last_skip_reason),
                int(state.notfinite_count),
                int(state.total_notfinite),
            )
        )
    return params, state, log


def _reference(inner, params, grads):
    """The inner transformation alone, fed only the steps that are applied."""
    state = inner.init(params)
    for g in grads:
        updates, state = inner.update(g, state, params)
        params = gt.apply_updates(params, updates)
    return params, state


def _check_skips(tx, inner, params, grads, expected_reasons, update=None):
    """Run guarded; compare the log and the end with the inner run on good steps."""
    p, state, log = _run(tx, params, grads, update)
    in_a_row, total, last_reason = 0, 0, 0
    for (applied, reason, row, all_), expected in zip(
        log, expected_reasons, strict=True
    ):
        assert applied == (expected == R.NONE)
        if expected != R.NONE:
            in_a_row, total, last_reason = in_a_row + 1, total + 1, expected
        else:
            in_a_row = 0
        assert (reason, row, all_) == (last_reason, in_a_row, total)
    good = [g for g, r in zip(grads, expected_reasons, strict=True) if r == R.NONE]
    p_ref, s_ref = _reference(inner, params, good)
    chex.assert_trees_all_close(p, p_ref, rtol=1e-6)
    chex.assert_trees_all_close(state.inner_state, s_ref, rtol=1e-6)
    assert state.last_skip_reason.dtype == jnp.int32
    return p, state


class OverflowInsideTheGuardTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_an_update_that_overflows_from_a_finite_gradient_is_skipped(self):
        inner = _amplified()
        params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}

        def g(x):
            return {"w": jnp.array([x, 0.1]), "b": jnp.array(0.2)}

        grads = [g(0.3), g(1e9), g(1e9), g(-0.4), g(4e8), g(0.1)]
        reasons = [0, R.NON_FINITE_UPDATE, R.NON_FINITE_UPDATE, 0, 2, 0]
        tx = gt.apply_if_finite(inner, max_consecutive_errors=1)
        _check_skips(tx, inner, params, grads, reasons, self.variant(tx.update))

    @chex.variants(with_jit=True, without_jit=True)
    def test_a_float16_state_that_overflows_is_skipped(self):
        # The trace overflows float16 (0.9·4e4 + 4e4 > 65504) while the
        # clipped update stays finite: only the state check sees it.
        inner = gt.chain(gt.trace(0.9), gt.clip(1.0), gt.scale(-0.01))
        params = {"h": jnp.array([1.0, 2.0], jnp.float16)}
        grads = [
            {"h": jnp.array([x, 1.0], jnp.float16)} for x in (4e4, 4e4, 4e4, 1.0, 2.0)
        ]
        reasons = [0, R.NON_FINITE_INNER_STATE, 3, 0, 0]
        tx = gt.apply_if_finite(inner)
        update = self.variant(tx.update)
        _, state = _check_skips(tx, inner, params, grads, reasons, update)
        chex.assert_tree_all_finite(state.inner_state)

    @chex.variants(with_jit=True, without_jit=True)
    def test_parameters_that_would_overflow_float16_are_not_moved(self):
        inner = gt.sgd(1.0)
        params = {"h": jnp.array([6e4, 0.0], jnp.float16), "w": jnp.ones(2)}

        def g(x):
            return {"h": jnp.array([x, 1.0], jnp.float16), "w": jnp.ones(2)}

        # 6e4 + 1e4 overflows float16; 6e4 - 1e4 does not.
        grads = [g(-1e4), g(-1e4), g(1e4), g(-1e4), g(-6e3)]
        reasons = [R.NON_FINITE_PARAMS, 4, 0, 0, 4]
        tx = gt.apply_if_finite(inner)
        update = self.variant(tx.update)
        p, _ = _check_skips(tx, inner, params, grads, reasons, update)
        assert float(p["h"][0]) <= F16_MAX

    @chex.variants(with_jit=True, without_jit=True)
    def test_a_non_finite_gradient_is_skipped_first(self):
        inner = gt.adam(0.1)
        params = {"w": jnp.array([1.0, -1.0]), "v": jnp.zeros(3, jnp.bfloat16)}

        def g(x):
            return {"w": jnp.array([x, 0.5]), "v": jnp.full(3, 0.25, jnp.bfloat16)}

        grads = [g(0.1), g(np.nan), g(np.inf), g(-np.inf), g(0.2), g(np.nan)]
        reasons = [0, R.NON_FINITE_GRADIENT, 1, 1, 0, 1]
        tx = gt.apply_if_finite(inner, max_consecutive_errors=2)
        _check_skips(tx, inner, params, grads, reasons, self.variant(tx.update))


def test_mixed_dtypes_skip_the_whole_step():
    """bfloat16, float16 and float32 leaves together; each kind of bad step
    comes from a different leaf and skips every leaf."""
    params = {
        "b": jnp.array([3e38, 1.0], jnp.bfloat16),
        "h": jnp.array([1.0, -1.0], jnp.float16),
        "w": jnp.array([0.5, 0.25]),
    }
    inner = gt.chain(
        gt.masked(_amplified(), {"b": False, "h": False, "w": True}), gt.sgd(1.0)
    )

    def g(b=0.5, h=0.5, w=0.5):
        return {
            "b": jnp.array([b, 0.5], jnp.bfloat16),
            "h": jnp.array([h, 0.5], jnp.float16),
            "w": jnp.array([w, 0.5]),
        }

    grads = [g(), g(h=np.nan), g(w=1e9), g(b=-1e38), g(b=2e38), g(), g(w=np.inf)]
    reasons = [0, R.NON_FINITE_GRADIENT, 2, R.NON_FINITE_PARAMS, 0, 0, 1]
    tx = gt.apply_if_finite(inner)
    p, _ = _check_skips(tx, inner, params, grads, reasons)
    for name in params:
        assert p[name].dtype == params[name].dtype


def test_recovery_equals_optax_without_the_bad_steps():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    bad = {"w": jnp.array([np.nan, 1.0, 1.0])}
    grads = [{"w": jnp.array([0.1 * k, -0.2, 0.3])} for k in range(1, 4)]
    tx = gt.apply_if_finite(gt.adam(0.05))
    p, state, _ = _run(tx, params, [grads[0], bad, bad, grads[1], grads[2]])
    ref = optax.adam(0.05)
    p_ref, s_ref = params, ref.init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction needs it
        for gr in grads:
            u, s_ref = ref.update(gr, s_ref, p_ref)
            p_ref = optax.apply_updates(p_ref, u)
    chex.assert_trees_all_close(p, p_ref, rtol=1e-5)  # optax's rounding
    chex.assert_trees_all_close(state.inner_state[0].nu, s_ref[0].nu, rtol=1e-6)
    assert int(state.last_skip_reason) == R.NON_FINITE_GRADIENT  # kept after it
    assert bool(state.last_finite) and int(state.total_notfinite) == 2


def test_a_long_compiled_run_never_has_a_non_finite_parameter():
    """One `lax.scan`: gradients that overflow float16 moments, parameters
    and updates, and non-finite ones, at random; every step's parameters
    finite."""
    params = {
        "h": jnp.full((4,), 6e4, jnp.float16),
        "b": jnp.ones((4,), jnp.bfloat16),
        "w": jnp.ones((4,)),
    }
    mask = {"h": False, "b": False, "w": True}  # inf for |w| > 3.4e18
    tx = gt.apply_if_finite(
        gt.chain(gt.masked(_amplified(20), mask), gt.trace(0.9), gt.scale(-1.0))
    )
    rng = np.random.default_rng(0)
    choices = [1e-3, 1.0, 1e4, -3e4, 1e19, np.inf, np.nan]
    scales = rng.choice(choices, (64, 3), p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.05, 0.05])

    def step(carry, s):
        p, state = carry
        g = {k: jnp.full(4, s[i], p[k].dtype) for i, k in enumerate(("h", "b", "w"))}
        u, state = tx.update(g, state, p)
        p = gt.apply_updates(p, u)
        return (p, state), (p, state.last_skip_reason)

    (_, state), (ps, reasons) = jax.jit(
        lambda c: jax.lax.scan(step, c, jnp.asarray(scales, jnp.float32))
    )((params, tx.init(params)))
    chex.assert_tree_all_finite((ps, state.inner_state))
    assert set(np.unique(reasons)) >= {1, 2, 4}
    assert 0 < int(state.total_notfinite) < 64


def test_line_search_records_holding_inf_are_not_skips():
    """L-BFGS keeps `inf` in its line-search state by design: guarding it
    changes nothing on a normal run (only parameter-like buffers are checked)."""

    def f(x):
        return (1 - x["a"]) ** 2 + 100 * (x["b"] - x["a"] ** 2) ** 2

    for params in ({"a": jnp.array(-1.2), "b": jnp.array(1.0)}, jnp.array(3.0)):
        loss = f if isinstance(params, dict) else (lambda x: (x - 1.0) ** 2)
        runs = []
        for tx in (gt.lbfgs(), gt.apply_if_finite(gt.lbfgs())):
            x, state = params, tx.init(params)
            for _ in range(5):
                v, g = jax.value_and_grad(loss)(x)
                u, state = tx.update(g, state, x, value=v, grad=g, value_fn=loss)
                x = gt.apply_updates(x, u)
            runs.append((x, state))
        chex.assert_trees_all_equal(runs[0][0], runs[1][0])
        assert int(runs[1][1].total_notfinite) == 0


def test_buffers_inside_masked_and_partition_are_checked():
    params = {"h": jnp.array([1.0], jnp.float16), "w": jnp.array([1.0])}
    labels = {"h": "mom", "w": "plain"}
    inner = gt.partition(
        {"mom": gt.chain(gt.trace(0.9), gt.clip(1.0)), "plain": gt.sgd(0.1)}, labels
    )
    tx = gt.apply_if_finite(inner)
    g = {"h": jnp.array([4e4], jnp.float16), "w": jnp.array([1.0])}
    *_, log = _run(tx, params, [g, g])
    assert [entry[1] for entry in log] == [0, R.NON_FINITE_INNER_STATE]


def test_none_leaves_and_abstract_init():
    params = {"w": jnp.array([6e4], jnp.float16), "frozen": None}
    tx = gt.apply_if_finite(gt.sgd(1.0))
    abstract = jax.eval_shape(
        tx.init, {"w": jax.ShapeDtypeStruct((1,), jnp.float16), "frozen": None}
    )
    assert (
        abstract.last_skip_reason.shape == ()
        and abstract.last_skip_reason.dtype == jnp.int32
    )
    grads = [{"w": jnp.array([x], jnp.float16), "frozen": None} for x in (-1e4, 1e3)]
    for update in (tx.update, jax.jit(tx.update)):
        p, _, log = _run(tx, params, grads, update)
        assert p["frozen"] is None
        assert [entry[1] for entry in log] == [R.NON_FINITE_PARAMS, 4]
        assert log[1][0]  # the second step was applied


def test_the_reason_reads_as_a_sentence():
    assert [int(r) for r in R] == [0, 1, 2, 3, 4]
    sentences = {r.describe() for r in R}
    assert len(sentences) == 5 and all(s and s[0].islower() for s in sentences)
    assert "infinity" in R.NON_FINITE_GRADIENT.describe()
    assert "params + updates" in R(4).describe()
    # The codes compare with the traced field under jit.
    state = gt.apply_if_finite(gt.sgd(0.1)).init({"w": jnp.ones(1)})
    assert bool(jax.jit(lambda s: s.last_skip_reason == R.NONE)(state))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_without_params_the_other_checks_still_run(bad):
    tx = gt.apply_if_finite(_amplified())
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    updates, state = tx.update({"w": jnp.array([1e9, 1.0])}, state)
    assert int(state.last_skip_reason) == R.NON_FINITE_UPDATE
    updates, state = tx.update({"w": jnp.array([bad, 1.0])}, state)
    assert int(state.last_skip_reason) == R.NON_FINITE_GRADIENT
    chex.assert_trees_all_equal(updates, {"w": jnp.zeros(2)})
    assert int(state.notfinite_count) == 2
