"""Nonlinear conjugate gradients (textbook Algorithm 8.9) in a user's own loop.

The references are independent of the code under test: the closed-form
minimiser of a quadratic and a literal NumPy transcription of Algorithm 8.9
(`tests/second_order/reference.py`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import problems
from gradtransforms import second_order as so
from tests.second_order.loop import run
from tests.second_order.reference import cg_numpy


@pytest.mark.parametrize(
    "variant", ["polak_ribiere", "fletcher_reeves", "hestenes_stiefel"]
)
def test_cg_with_exact_steps_solves_a_quadratic_in_n_iterations(variant, x64):
    a, b = problems.random_quadratic(6, seed=0, condition=100.0)
    n = b.size
    x_star = np.linalg.solve(a, b)  # closed form
    f = problems.quadratic(a, b)

    tx = so.conjugate_gradient(variant, linesearch=so.scale_by_quadratic_linesearch())
    x0 = np.zeros(n)
    x_n, _, trajectory = run(tx, f, jnp.asarray(x0), n)

    np.testing.assert_allclose(x_n, x_star, rtol=1e-9, atol=1e-9)
    # Not by accident: one step short, it is still far from the minimum.
    assert np.linalg.norm(trajectory[n - 2] - x_star) > 1e-3 * np.linalg.norm(x_star)
    # And it is the textbook's algorithm, iterate by iterate.
    reference = cg_numpy(a, b, x0, n, variant)
    np.testing.assert_allclose(trajectory, reference, rtol=1e-8, atol=1e-10)
