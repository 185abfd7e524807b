"""Complex parameters: each $z = x + iy$ is a point of $\\mathbb{R}^2$.

The reference is the same problem written on real parameters, the real and
imaginary parts stacked: a solver that takes complex parameters must take
the same steps on both (as optax's own complex L-BFGS test checks), and the
helpers are checked against NumPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import second_order as so
from gradtransforms.combine import chain
from gradtransforms.scaling import scale
from gradtransforms.second_order.complex_params import conj, real_vdot, reject_complex

A = np.array([[1, -2], [3, 4], [-4 + 2j, 5 - 3j], [-2 - 2j, 6]])
B = np.array([1.0, -1.0j, 2.0, 0.5 + 0.5j])


def _f_complex(z):
    r = A @ z - B
    return jnp.sum(jnp.abs(r) ** 2) + 0.1 * jnp.sum(jnp.abs(z) ** 4)


def _f_real(x):
    return _f_complex(jax.lax.complex(x[0], x[1]))


@pytest.mark.parametrize(
    "make",
    [
        so.lbfgs,
        so.conjugate_gradient,
        lambda: so.lbfgs(
            linesearch=so.scale_by_backtracking_linesearch(20, store_grad=True)
        ),
        lambda: chain(scale(-0.01), so.scale_by_zoom_linesearch()),
    ],
    ids=["lbfgs", "cg", "lbfgs-backtracking", "gradient-zoom"],
)
def test_complex_and_real_parameters_take_the_same_steps(make, x64):
    z0 = jnp.array([1.0 - 1.0j, 1.0j])
    x0 = jnp.stack([z0.real, z0.imag])
    # The first updates, before rounding dominates: the same iterates.
    complex_run = so.minimize(_f_complex, z0, make(), max_steps=6, tol=0.0)
    real_run = so.minimize(_f_real, x0, make(), max_steps=6, tol=0.0)
    x = np.asarray(real_run.params)
    np.testing.assert_allclose(complex_run.params, x[0] + 1j * x[1], atol=1e-12)
    assert int(complex_run.num_fun_evals) == int(real_run.num_fun_evals)
    # And the complex run converges.
    result = so.minimize(_f_complex, z0, make(), max_steps=500, tol=1e-7)
    assert bool(result.converged)


def test_line_search_state_keeps_jax_grad(x64):
    """The state's ∇f is what `jax.value_and_grad` returns (not conjugated)."""
    z = jnp.array([1.0 - 1.0j, 1.0j])
    tx = so.scale_by_zoom_linesearch()
    value, grad = jax.value_and_grad(_f_complex)(z)
    updates, state = tx.update(
        -jnp.conj(grad), tx.init(z), z, value=value, grad=jnp.conj(grad),
        value_fn=_f_complex,
    )  # fmt: skip
    assert float(state.value) < float(value)
    np.testing.assert_allclose(state.grad, jax.grad(_f_complex)(z + updates))


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (so.bfgs, "bfgs"),
        (so.newton, "newton"),
        (so.newton_cg, "newton_cg"),
        (so.scale_by_bfgs, "bfgs"),
        (so.scale_by_damped_newton, "newton"),
        (so.scale_by_newton_cg, "newton_cg"),
    ],
)
def test_dense_and_hessian_methods_reject_complex_parameters(make, name):
    params = {"w": jnp.zeros(2), "z": jax.ShapeDtypeStruct((3,), jnp.complex64)}
    with pytest.raises(TypeError, match=rf"^{name} does not support complex.*\['z'\]"):
        make().init(params)
    make().init({"w": jnp.zeros(2)})  # real ones are fine


def test_helpers_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=3) + 1j * rng.normal(size=3)
    y = rng.normal(size=3) + 1j * rng.normal(size=3)
    tree_x = {"a": jnp.asarray(x), "b": jnp.ones(2)}
    tree_y = {"a": jnp.asarray(y), "b": jnp.full(2, 2.0)}
    got = real_vdot(tree_x, tree_y, jnp.float32)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, np.real(np.vdot(x, y)) + 4.0, rtol=1e-6)
    conjugated = conj(tree_x)
    np.testing.assert_allclose(conjugated["a"], np.conj(x), rtol=1e-6)
    assert conjugated["b"] is tree_x["b"]  # real leaves untouched
    reject_complex(tree_x["b"], "m")
    with pytest.raises(TypeError, match=r"^m does not support.*<root>"):
        reject_complex(tree_x["a"], "m")
