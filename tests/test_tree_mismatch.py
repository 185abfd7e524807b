"""Every optimizer names the first differing path when its trees do not match.

Gradients for other parameters, a state built by `init` for other parameters,
a missing `params` for the solvers that need them: each is an error at the
call, naming the path and both leaves' shapes and dtypes (or the missing
argument), under `jit` and without it, never a broadcasting error from deep
inside JAX or a silently broadcast update.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

import gradtransforms as gt
from tests.registry import REGISTRY

PARAMS = {"a": jnp.ones(3), "b": jnp.ones((2, 2))}
WIDER = {"a": jnp.ones(4), "b": jnp.ones((2, 2))}  # 'a' has another shape
FEWER = {"a": jnp.ones(3)}  # 'b' is missing


def _loss(params):
    return sum(jnp.sum(x**2) for x in jax.tree.leaves(params))


SOLVERS = {
    "lbfgs": gt.lbfgs,
    "bfgs": gt.bfgs,
    "conjugate_gradient": gt.conjugate_gradient,
    "newton": gt.newton,
    "newton_cg": gt.newton_cg,
    "backtracking": gt.scale_by_backtracking_linesearch,
    "zoom": gt.scale_by_zoom_linesearch,
    "quadratic": gt.scale_by_quadratic_linesearch,
}
OTHERS = {
    "polyak_average": gt.polyak_average,
    "ema_average": lambda: gt.ema_average(0.9),
    "trace": lambda: gt.trace(0.9),
    "ema": lambda: gt.ema(0.9),
    "scale_by_adam": gt.scale_by_adam,
    "scale_by_rms": gt.scale_by_rms,
    "scale_by_rss": gt.scale_by_rss,
    "inject_adam": lambda: gt.inject_hyperparams(gt.adam)(learning_rate=0.1),
    "masked_adam": lambda: gt.masked(gt.adam(0.1), {"a": True, "b": False}),
    "guarded_adam": lambda: gt.apply_if_finite(gt.adam(0.1), 3),
    "add_decayed_weights": lambda: gt.add_decayed_weights(1e-4),
}
FACTORIES = {
    **{e.name: e.build for e in REGISTRY},
    **SOLVERS,
    **OTHERS,
}


def _update(tx, grads, state, params, jit):
    def step(grads, state, params):
        if isinstance(tx, gt.GradientTransformationExtraArgs):
            return tx.update(
                grads, state, params, value=_loss(params), grad=grads, value_fn=_loss
            )
        return tx.update(grads, state, params)

    return (jax.jit(step) if jit else step)(grads, state, params)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_gradients_of_another_shape_name_the_leaf_and_both_shapes(name, jit):
    tx = FACTORIES[name]()
    with pytest.raises(ValueError, match=r"\['a'\].*\(4,\) float32.*\(3,\)|"
                       r"\['a'\].*\(3,\) float32.*\(4,\)"):  # fmt: skip
        _update(tx, WIDER, tx.init(PARAMS), PARAMS, jit)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_gradients_of_another_structure_name_the_first_difference(name):
    tx = FACTORIES[name]()
    with pytest.raises(ValueError, match=re.escape("['b']")):
        _update(tx, FEWER, tx.init(PARAMS), PARAMS, jit=False)


# Transformations whose state holds nothing shaped like the parameters (only
# scalars): a state from `init` on other parameters is a valid state for these.
SHAPELESS_STATE = {
    "sgd",
    "sgd_linear_decay",
    "backtracking",  # likewise, without store_grad
    "quadratic",
    "add_decayed_weights",
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(set(FACTORIES) - SHAPELESS_STATE))
def test_a_state_built_for_other_parameters_is_named(name, jit):
    tx = FACTORIES[name]()
    with pytest.raises(ValueError, match=r"\['a'\]|elements but the state"):
        _update(tx, PARAMS, tx.init(WIDER), PARAMS, jit)


def test_shapeless_states_do_fit_other_parameters():
    """The exemption above is true: these states have no parameter-shaped leaf."""
    for name in SHAPELESS_STATE:
        leaves = jax.tree.leaves(FACTORIES[name]().init(PARAMS))
        assert all(jnp.ndim(x) == 0 for x in leaves), name


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_solvers_called_without_params_say_what_they_need(name):
    tx = SOLVERS[name]()
    with pytest.raises(TypeError, match=r"\.update needs params.*value_fn=f"):
        tx.update(PARAMS, tx.init(PARAMS))


def test_a_solver_given_a_grad_of_another_shape_names_it():
    tx = gt.scale_by_zoom_linesearch()
    with pytest.raises(ValueError, match=r"params and grad differ at \['a'\]"):
        tx.update(
            PARAMS, tx.init(PARAMS), PARAMS,
            value=_loss(PARAMS), grad=WIDER, value_fn=_loss,
        )  # fmt: skip


def test_a_broadcastable_update_is_refused_not_broadcast():
    """optax would broadcast a (1,) update onto a (3,) parameter; we refuse it."""
    with pytest.raises(ValueError, match=r"\['a'\]: \(1,\) float32 in updates"):
        gt.apply_updates({"a": jnp.ones(3)}, {"a": jnp.ones(1)})
    tx = gt.sgd(0.1)
    params = {"a": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"\['a'\]"):
        tx.update({"a": jnp.ones(1)}, tx.init(params), params)


def test_a_complex_update_for_a_real_parameter_is_refused():
    with pytest.raises(ValueError, match="imaginary part"):
        gt.apply_updates({"a": jnp.ones(2)}, {"a": jnp.ones(2, jnp.complex64)})


def test_mismatched_dtypes_of_the_same_shape_are_allowed():
    """Mixed precision: bfloat16 gradients for float32 parameters still apply."""
    params = {"a": jnp.ones(3), "b": jnp.ones(2, jnp.bfloat16)}
    grads = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    tx = gt.adam(0.1)
    updates, _ = tx.update(grads, tx.init(params), params)
    out = gt.apply_updates(params, updates)
    assert out["a"].dtype == jnp.float32 and out["b"].dtype == jnp.bfloat16


def test_none_leaves_still_pass_through():
    params = {"a": jnp.ones(3), "n": None}
    tx = gt.chain(gt.clip_by_global_norm(1.0), gt.adam(0.1))
    updates, _ = tx.update({"a": jnp.ones(3), "n": None}, tx.init(params), params)
    assert updates["n"] is None
    assert gt.apply_updates(params, updates)["n"] is None


def test_add_decayed_weights_passes_none_updates_through():
    """optax's rule: a `None` update (the whole tree or one leaf) stays `None`."""
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    tx = gt.add_decayed_weights(0.1)
    assert tx.update(None, tx.init(params), params)[0] is None
    out, _ = tx.update({"a": None, "b": jnp.zeros(2)}, tx.init(params), params)
    assert out["a"] is None
    assert jnp.allclose(out["b"], 0.1)
    with pytest.raises(ValueError, match=r"updates and params differ at \['b'\]"):
        tx.update({"a": None, "b": jnp.zeros(3)}, tx.init(params), params)
