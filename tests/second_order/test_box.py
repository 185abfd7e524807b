"""Box constraints: `make_box`, `project`, `projected_gradient`, `find_box`.

The references are NumPy's `np.clip` and broadcasting, and the projected
gradient $P(\\theta - g) - \\theta$ written out in NumPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtransforms import second_order as so
from gradtransforms.combine import chain
from gradtransforms.scaling import scale
from gradtransforms.second_order.box import (
    Box,
    find_box,
    make_box,
    project,
    projected_gradient,
)
from gradtransforms.second_order.lbfgs_b import lbfgs_b


def _params():
    return {"w": jnp.zeros((2, 3)), "b": jnp.zeros((), jnp.float32)}


def test_none_means_infinite_bounds_like_the_params():
    box = make_box(_params())
    for leaf, lo, up in zip(
        jax.tree.leaves(_params()),
        jax.tree.leaves(box.lower),
        jax.tree.leaves(box.upper),
        strict=True,
    ):
        assert lo.shape == leaf.shape and lo.dtype == leaf.dtype
        assert np.all(np.isneginf(lo)) and np.all(np.isposinf(up))


@pytest.mark.parametrize("number", [0.5, 2, np.float64(0.5), jnp.asarray(0.5)])
def test_a_number_bounds_every_element(number):
    box = make_box(_params(), lower=-1.0, upper=number)
    for leaf, up in zip(
        jax.tree.leaves(_params()), jax.tree.leaves(box.upper), strict=True
    ):
        np.testing.assert_array_equal(up, np.full(leaf.shape, float(number)))
        assert up.dtype == leaf.dtype


def test_tree_bounds_broadcast_leaf_by_leaf():
    lower = {"w": np.array([-1.0, 0.0, -np.inf]), "b": 0.25}  # (3,) -> (2, 3)
    upper = {"w": np.array([[1.0], [2.0]]), "b": np.inf}  # (2, 1) -> (2, 3)
    box = make_box(_params(), lower, upper)
    np.testing.assert_array_equal(box.lower["w"], np.broadcast_to(lower["w"], (2, 3)))
    np.testing.assert_array_equal(box.upper["w"], np.broadcast_to(upper["w"], (2, 3)))
    assert box.lower["b"] == 0.25 and box.upper["b"] == np.inf
    assert box.lower["w"].dtype == jnp.float32  # the params' dtype


def test_abstract_params_give_the_concrete_box():
    params = _params()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    box, reference = make_box(abstract, 0.0, 1.0), make_box(params, 0.0, 1.0)
    jax.tree.map(np.testing.assert_array_equal, box, reference)


def _random_box(seed):
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-1.0, 0.0, 20)
    upper = lower + rng.uniform(0.0, 1.0, 20)
    lower[:3], upper[3:6] = -np.inf, np.inf
    upper[6] = lower[6]  # a fixed variable
    return rng, lower, upper


def test_project_is_numpy_clip(x64):
    rng, lower, upper = _random_box(0)
    x = rng.normal(size=20) * 2
    projected = project(jnp.asarray(x), make_box(jnp.asarray(x), lower, upper))
    np.testing.assert_array_equal(projected, np.clip(x, lower, upper))


def test_projected_gradient_matches_numpy(x64):
    rng, lower, upper = _random_box(1)
    x = np.clip(rng.normal(size=20), lower, upper)
    x[7], x[8] = lower[7], upper[8]  # at a bound, pushed inwards or outwards
    g = rng.normal(size=20) * 3
    box = make_box(jnp.asarray(x), lower, upper)
    expected = np.clip(x - g, lower, upper) - x
    np.testing.assert_allclose(
        projected_gradient(jnp.asarray(x), jnp.asarray(g), box), expected, rtol=1e-15
    )


def test_projected_gradient_vanishes_at_a_kkt_point(x64):
    # f = ½‖x - c‖²: the minimiser in the box is clip(c), ∇f = x - c.
    c = np.array([2.0, -3.0, 0.25])
    x = np.clip(c, -1.0, 1.0)
    box = make_box(jnp.asarray(x), -1.0, 1.0)
    pg = projected_gradient(jnp.asarray(x), jnp.asarray(x - c), box)
    np.testing.assert_array_equal(pg, np.zeros(3))


def test_find_box_looks_through_chains():
    params = _params()
    state = lbfgs_b(0.0, 1.0).init(params)
    assert find_box(state) is state.box
    chained = chain(lbfgs_b(0.0, 1.0), scale(1.0)).init(params)
    box = find_box(chained)
    assert isinstance(box, Box)
    np.testing.assert_array_equal(box.upper["w"], np.ones((2, 3)))
    assert find_box(so.lbfgs().init(params)) is None
    with pytest.raises(ValueError, match="more than one Box"):
        find_box((state, state))


@pytest.mark.parametrize(
    ("lower", "upper", "error", "match"),
    [
        (1.0, 0.0, ValueError, "lower must be <= upper"),
        ({"w": np.full(3, 2.0), "b": 0.0}, 1.0, ValueError, "lower must be <= upper"),
        (np.nan, None, ValueError, "lower must not contain NaN"),
        (None, {"w": np.array([1.0, np.nan, 1.0]), "b": 1.0}, ValueError, "upper"),
        ({"w": 0.0}, None, ValueError, "lower must be None, a number, or a tree"),
        ({"w": np.zeros(2), "b": 0.0}, None, ValueError, "does not broadcast"),
        ("0", None, TypeError, "lower must be a real number"),
        (None, True, TypeError, "upper must be a real number"),
        (None, 1 + 2j, TypeError, "upper must be a real number"),
        ({"w": np.zeros(3, complex), "b": 0.0}, None, TypeError, "lower must be real"),
    ],
)
def test_bad_bounds_raise_naming_the_argument(lower, upper, error, match):
    with pytest.raises(error, match=match):
        make_box(_params(), lower, upper)
    with pytest.raises(error, match=match):  # also when the params are traced
        jax.jit(lambda p: make_box(p, lower, upper))(_params())
