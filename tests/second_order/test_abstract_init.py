"""Every transformation of `second_order` initialises on abstract parameters.

`init` takes `jax.ShapeDtypeStruct` leaves, directly and under
`jax.eval_shape`, and gives the state that `init` on concrete parameters of
those shapes and dtypes gives (the reference: the concrete state's shapes and
dtypes). With a complex leaf too for the methods that take complex
parameters (the others reject them: `test_complex_params.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from gradtransforms import second_order as so

TRANSFORMATIONS = [
    "lbfgs",
    "bfgs",
    "newton",
    "newton_cg",
    "conjugate_gradient",
    "scale_by_lbfgs",
    "scale_by_bfgs",
    "scale_by_damped_newton",
    "scale_by_newton_cg",
    "scale_by_conjugate_gradient",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "scale_by_quadratic_linesearch",
]
COMPLEX = {
    "lbfgs",
    "conjugate_gradient",
    "scale_by_lbfgs",
    "scale_by_conjugate_gradient",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "scale_by_quadratic_linesearch",
}


def _params(complex_leaf: bool):
    params = {"w": jnp.ones((3, 2)), "h": jnp.ones(4, jnp.bfloat16)}
    if complex_leaf:
        params["z"] = jnp.ones(2, jnp.complex64)
    return params


def _shapes(tree):
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)


CASES = [(name, False) for name in TRANSFORMATIONS] + [
    (name, True) for name in TRANSFORMATIONS if name in COMPLEX
]


@pytest.mark.parametrize(("name", "complex_leaf"), CASES)
def test_init_takes_abstract_parameters(name, complex_leaf):
    tx = getattr(so, name)()
    params = _params(complex_leaf)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    expected = _shapes(tx.init(params))
    assert _shapes(tx.init(abstract)) == expected
    assert _shapes(jax.eval_shape(tx.init, abstract)) == expected
    assert _shapes(jax.eval_shape(tx.init, params)) == expected
