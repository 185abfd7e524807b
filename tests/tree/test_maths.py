"""tree/maths.py: norms, inner products and scalar factors, against NumPy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from gradtransforms import tree


def test_global_norm_and_vdot_of_bfloat16_leaves_accumulate_in_float32():
    x = np.random.default_rng(0).normal(size=(300,)).astype(np.float32)
    leaves = {"a": jnp.asarray(x[:200], jnp.bfloat16), "b": jnp.asarray(x[200:])}
    wide = np.concatenate(
        [np.asarray(leaves["a"], np.float64), np.asarray(leaves["b"], np.float64)]
    )
    norm = tree.global_norm(leaves)
    assert norm.dtype == jnp.float32
    np.testing.assert_allclose(float(norm), np.sqrt(wide @ wide), rtol=1e-6)
    np.testing.assert_allclose(float(tree.vdot(leaves, leaves)), wide @ wide, rtol=1e-6)
    assert float(tree.global_norm({})) == 0.0


def test_one_minus_power_is_accurate_near_one():
    # 1 - 0.999 ** 1 = 1e-3 exactly; float32's literal 1 - 0.999**t is not.
    for t, exact in [(1, 1e-3), (2, 1 - 0.999**2), (1000, 1 - 0.999**1000)]:
        value = tree.one_minus_power(0.999, jnp.asarray(t), jnp.float32)
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(float(value), exact, rtol=2e-7)


def test_overflow_safe_global_norm_is_finite_where_the_squares_overflow():
    big = {"a": jnp.full(3, 3e20, jnp.float32), "b": jnp.asarray(-4e20, jnp.float32)}
    assert not np.isfinite(float(tree.global_norm(big)))  # 9e40 > float32 max
    expected = np.linalg.norm([3e20, 3e20, 3e20, 4e20])  # NumPy, float64
    np.testing.assert_allclose(
        float(tree.overflow_safe_global_norm(big)), expected, rtol=1e-6
    )
    small = {"a": jnp.arange(3.0)}
    assert float(tree.overflow_safe_global_norm(small)) == float(
        tree.global_norm(small)
    )
    assert np.isnan(float(tree.overflow_safe_global_norm({"a": jnp.asarray(jnp.nan)})))
