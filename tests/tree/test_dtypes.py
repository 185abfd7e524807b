"""tree/dtypes.py: widening to the accumulation dtype and back, casts.

References are NumPy computations in float32 (the accumulation dtype of a
bfloat16 leaf) rounded once to bfloat16; never the code under test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import tree


def _bf16(x) -> np.ndarray:
    """Round a float32 NumPy array once to bfloat16 (returned as float32)."""
    rounded = jnp.asarray(np.asarray(x, np.float32)).astype(jnp.bfloat16)
    return np.asarray(rounded, np.float32)


def test_map_widened_computes_a_bfloat16_leaf_in_float32():
    x = jnp.ones(300, jnp.bfloat16)
    y = jnp.full(300, 0.5, jnp.bfloat16)
    seen = []

    def fn(a, b):
        seen.append((a.dtype, b.dtype))
        return jnp.cumsum(a) + b

    out = tree.map_widened(fn, {"x": x}, {"x": y})["x"]
    assert seen == [(jnp.float32, jnp.float32)]
    assert out.dtype == jnp.bfloat16
    xf, yf = np.asarray(x, np.float32), np.asarray(y, np.float32)
    np.testing.assert_array_equal(
        np.asarray(out, np.float32), _bf16(np.cumsum(xf) + yf)
    )
    # In bfloat16 arithmetic the running sum would stall at 256 (256 + 1
    # rounds back to 256); widened, it reaches 300 and is rounded once.
    assert float(out[-1]) == 300.0


def test_map_widened_rounds_to_out_like_and_passes_none_through():
    params = {"w": jnp.ones(2, jnp.bfloat16), "skip": None}
    updates = {"w": jnp.full(2, 0.1, jnp.float32), "skip": None}
    out = tree.map_widened(lambda u, p: u + p, updates, params, out_like=params)
    assert out["skip"] is None and out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(out["w"], np.float32), _bf16(np.float32(0.1) + np.float32(1.0))
    )


def test_accumulation_dtypes():
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
        assert tree.accumulation_dtype(dtype) == jnp.float32
    assert tree.accumulation_dtype(np.float64) == np.float64


def test_cast_like_takes_the_other_trees_dtypes(x64):
    values = {"h": jnp.array([1.5, 2.25]), "d": jnp.array([0.1]), "i": jnp.ones(2)}
    like = {
        "h": jnp.zeros(2, jnp.bfloat16),
        "d": jnp.zeros(1, jnp.float64),
        "i": jnp.zeros(2, jnp.int32),
    }
    out = tree.cast_like(values, like)
    assert {k: v.dtype for k, v in out.items()} == {
        "h": jnp.bfloat16,
        "d": jnp.float64,
        "i": jnp.int32,
    }
    np.testing.assert_array_equal(np.asarray(out["h"], np.float32), [1.5, 2.25])
    assert out["i"].tolist() == [1, 1]


def test_accumulator_like_widens_16_bit_leaves_and_takes_an_override(x64):
    params = {
        "h": jnp.ones(2, jnp.float16),
        "b": jax.ShapeDtypeStruct((3,), jnp.bfloat16),
        "f": jnp.ones((), jnp.float32),
        "d": jnp.ones(1, jnp.float64),
        "z": jnp.ones(1, jnp.complex64),
        "n": None,
    }
    acc = tree.accumulator_like(params, 0.5)
    dtypes = {k: v.dtype for k, v in acc.items() if v is not None}
    assert dtypes == {
        "h": jnp.float32,
        "b": jnp.float32,
        "f": jnp.float32,
        "d": jnp.float64,
        "z": jnp.complex64,
    }
    assert acc["n"] is None and acc["b"].shape == (3,)
    np.testing.assert_array_equal(acc["h"], np.full(2, 0.5, np.float32))
    forced = tree.accumulator_like({"h": jnp.ones(2, jnp.float16)}, 0, jnp.bfloat16)
    assert forced["h"].dtype == jnp.bfloat16
    with pytest.raises(TypeError, match=r"\['i'\].*int32"):
        tree.accumulator_like({"i": jnp.zeros(2, jnp.int32)})
