"""Early stopping (§8.1.2): the best step, patience, min_delta, NaN, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt


def _overfitting_curve():
    """Validation loss that improves until step 12, then rises (overfits)."""
    steps = np.arange(40)
    return (steps - 12.0) ** 2 / 50 + 1 + 0.01 * np.sin(steps)


def test_early_stopping_returns_the_best_step_and_stops_after_patience():
    curve = _overfitting_curve()
    es = gt.training.early_stopping(patience=5, keep_best_params=True)
    state = es.init({"w": jnp.zeros(2)})
    stopped_at = None
    for k, v in enumerate(curve):
        state = es.update(state, jnp.asarray(v), {"w": jnp.full(2, float(k))})
        if bool(state.should_stop):
            stopped_at = k
            break
    best = int(np.argmin(curve))
    assert int(state.best_step) == best
    assert stopped_at == best + 5
    np.testing.assert_allclose(state.best_value, curve[best], rtol=1e-6)
    np.testing.assert_array_equal(state.best_params["w"], float(best))


def test_early_stopping_under_jit_and_scan_with_min_delta_and_max_mode():
    es = gt.training.early_stopping(patience=3, min_delta=0.05, mode="max")
    accuracy = jnp.array([0.5, 0.6, 0.62, 0.64, 0.66, 0.63, 0.6, 0.55])

    def body(state, v):
        state = es.update(state, v)
        return state, state.should_stop

    state, stops = jax.jit(lambda a: jax.lax.scan(body, es.init(), a))(accuracy)
    # Improvements need +0.05: 0.5 -> 0.6 (step 1); 0.66 is only +0.06 over 0.6
    # at step 4, which counts.
    assert int(state.best_step) == 4
    np.testing.assert_array_equal(stops, [False] * 7 + [True])


def test_early_stopping_ignores_nan():
    es = gt.training.early_stopping(patience=2)
    state = es.init()
    for v in [1.0, float("nan"), float("nan")]:
        state = es.update(state, jnp.asarray(v))
    assert int(state.best_step) == 0 and bool(state.should_stop)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"patience": 0}, "patience"),
        ({"patience": 2, "min_delta": -1.0}, "min_delta"),
        ({"patience": 2, "mode": "up"}, "mode"),
    ],
)
def test_early_stopping_bad_arguments(kwargs, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        gt.training.early_stopping(**kwargs)
