"""The second-order transformations, used step by step in a user's own loop.

References are independent of the code under test: closed forms (the
minimiser of a quadratic, of the saddle function, of the pseudo-Huber
function), literal NumPy transcriptions of textbook Algorithms 8.8 and 8.9,
and SciPy. `tests/test_minimize.py` covers the compiled solver loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import gradtransforms as gt
from gradtransforms import second_order as so
from gradtransforms.combine import chain
from gradtransforms.scaling import scale

# --------------------------------------------------------------------------
# Helpers


def _run(tx, fun, params, steps, value_fn=None, **fn_kwargs):
    """`steps` updates in one jitted scan; returns every iterate and the state.

    `fun` gives the value and gradient; `value_fn` (default `fun`) is what the
    transformation receives.
    """

    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(fun)(params, **fn_kwargs)
        updates, state = tx.update(
            grad,
            state,
            params,
            value=value,
            grad=grad,
            value_fn=value_fn or fun,
            **fn_kwargs,
        )
        params = optax.apply_updates(params, updates)
        return (params, state), params

    @jax.jit
    def run(params):
        return jax.lax.scan(step, (params, tx.init(params)), length=steps)

    (params, state), trajectory = run(params)
    return params, state, trajectory


def _quadratic_problem(n=6, seed=0):
    """f = ½xᵀAx − bᵀx, A positive definite with eigenvalues 1..100."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0.0, 2.0, n)) @ q.T
    a = 0.5 * (a + a.T)
    b = rng.normal(size=n)
    return a, b


def _cg_numpy(a, b, x0, steps, variant):
    """Textbook Algorithm 8.9, literally, with the closed-form ε* (§8.6.2)."""
    x, g_prev, rho = x0.copy(), None, np.zeros_like(x0)
    iterates = []
    for t in range(steps):
        g = a @ x - b
        if t == 0:
            beta = 0.0
        elif variant == "polak_ribiere":
            beta = (g - g_prev) @ g / (g_prev @ g_prev)
        elif variant == "fletcher_reeves":
            beta = g @ g / (g_prev @ g_prev)
        else:  # Hestenes–Stiefel
            beta = (g - g_prev) @ g / ((g - g_prev) @ rho)
        rho = -g + beta * rho
        eps = -(g @ rho) / (rho @ a @ rho)
        x = x + eps * rho
        g_prev = g
        iterates.append(x.copy())
    return np.array(iterates)


# --------------------------------------------------------------------------
# Positive-definite quadratic: CG in at most n steps, Newton in one


@pytest.mark.parametrize(
    "variant", ["polak_ribiere", "fletcher_reeves", "hestenes_stiefel"]
)
def test_cg_with_exact_steps_solves_a_quadratic_in_n_iterations(variant, x64):
    a, b = _quadratic_problem()
    n = b.size
    x_star = np.linalg.solve(a, b)  # closed form
    aj, bj = jnp.asarray(a), jnp.asarray(b)

    def f(x):
        return 0.5 * x @ (aj @ x) - bj @ x

    tx = so.conjugate_gradient(variant, linesearch=so.scale_by_quadratic_linesearch())
    x0 = np.zeros(n)
    x_n, _, trajectory = _run(tx, f, jnp.asarray(x0), n)

    np.testing.assert_allclose(x_n, x_star, rtol=1e-9, atol=1e-9)
    # Not by accident: one step short, it is still far from the minimum.
    assert np.linalg.norm(trajectory[n - 2] - x_star) > 1e-3 * np.linalg.norm(x_star)
    # And it is the textbook's algorithm, iterate by iterate.
    reference = _cg_numpy(a, b, x0, n, variant)
    np.testing.assert_allclose(trajectory, reference, rtol=1e-8, atol=1e-10)


def test_newton_solves_a_quadratic_in_one_step(x64):
    a, b = _quadratic_problem(n=5, seed=1)
    x_star = np.linalg.solve(a, b)
    aj, bj = jnp.asarray(a), jnp.asarray(b)
    params = {"u": jnp.zeros(2), "v": jnp.zeros(3)}  # a pytree, raveled inside

    def f(p):
        x = jnp.concatenate([p["u"], p["v"]])
        return 0.5 * x @ (aj @ x) - bj @ x

    params, (state, _), _ = _run(so.newton(damping=0.0), f, params, 1)

    np.testing.assert_allclose(params["u"], x_star[:2], rtol=1e-10)
    np.testing.assert_allclose(params["v"], x_star[2:], rtol=1e-10)
    assert int(state.num_hessian_evals) == 1 and int(state.num_fun_evals) == 1
    # The state holds f and ∇f at the new point, for the next iteration.
    np.testing.assert_allclose(state.value, f(params), rtol=1e-12)


# --------------------------------------------------------------------------
# Saddle point: damped Newton escapes where Algorithm 8.8 converges to it


def _saddle(p):
    """x² − y² + (x⁴ + y⁴)/4: a saddle at 0, minima at (0, ±√2), f = −1."""
    x, y = p[0], p[1]
    return x**2 - y**2 + 0.25 * (x**4 + y**4)


def _newton_numpy(x, steps):
    """Textbook Algorithm 8.8, literally: θ ← θ − H⁻¹g."""
    for _ in range(steps):
        g = np.array([2 * x[0] + x[0] ** 3, -2 * x[1] + x[1] ** 3])
        h = np.diag([2 + 3 * x[0] ** 2, -2 + 3 * x[1] ** 2])
        x = x - np.linalg.solve(h, g)
    return x


def test_damped_newton_moves_away_from_a_saddle(x64):
    start = np.array([0.5, 1e-2])
    # The undamped method of Algorithm 8.8 is attracted by the saddle.
    np.testing.assert_allclose(_newton_numpy(start, 10), [0.0, 0.0], atol=1e-8)

    params, (state, _), trajectory = _run(
        so.newton(damping=0.0), _saddle, jnp.asarray(start), 15
    )
    values = [float(_saddle(p)) for p in trajectory]
    ys = np.abs(np.asarray(trajectory)[:, 1])
    assert ys[0] > start[1]  # the first step already moves away in y
    assert np.all(np.diff(values) <= 0) and values[0] < _saddle(start)
    # It ends at a minimum (closed form), not at the saddle.
    np.testing.assert_allclose(
        np.abs(np.asarray(params)), [0.0, np.sqrt(2.0)], atol=1e-8
    )
    np.testing.assert_allclose(values[-1], -1.0, atol=1e-12)
    assert np.isfinite(float(state.damping))


# --------------------------------------------------------------------------
# Non-finite trial values: the step shrinks, parameters stay finite


def _barrier(x, bad=jnp.nan):
    """Σ (x − c)² − Σ log(1 − x²) on |x_i| < 1; `bad` (nan or inf) outside."""
    c = jnp.asarray([0.5, -0.3], x.dtype)
    inside = jnp.all(jnp.abs(x) < 1)
    safe = jnp.where(inside, x, jnp.zeros_like(x))
    value = jnp.sum((safe - c) ** 2) - jnp.sum(jnp.log1p(-(safe**2)))
    return jnp.where(inside, value, jnp.asarray(bad, x.dtype))


def _barrier_minimum():
    def f(x):
        return np.sum((x - np.array([0.5, -0.3])) ** 2) - np.sum(np.log1p(-(x**2)))

    result = scipy.optimize.minimize(
        f, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14}
    )
    return result.x


@pytest.mark.parametrize(
    ("linesearch", "bad"),
    [
        (so.scale_by_backtracking_linesearch(decrease_factor=0.5), jnp.inf),
        (so.scale_by_zoom_linesearch(initial_guess_strategy="one"), jnp.nan),
    ],
    ids=["backtracking-inf", "zoom-nan"],
)
def test_non_finite_trial_values_shrink_the_step(linesearch, bad, x64):
    # A long gradient step (×20) leaves the domain, where f is nan or inf.
    tx = chain(scale(-20.0), linesearch)

    def f(x):
        return _barrier(x, bad)

    params, _, trajectory = _run(tx, f, jnp.zeros(2), 60)
    trajectory = np.asarray(trajectory)
    assert np.all(np.isfinite(trajectory))
    assert np.all(np.abs(trajectory) < 1)
    values = np.array([float(f(jnp.asarray(p))) for p in trajectory])
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) <= 1e-13)
    np.testing.assert_allclose(params, _barrier_minimum(), atol=1e-6)


def test_newton_rejects_non_finite_trial_points(x64):
    # Pseudo-Huber: the undamped Newton step from x overshoots to ≈ −x³ (here
    # outside |x| < 3, where f is nan). The minimiser is 0.3 (closed form).
    def f(x):
        r = x - 0.3
        value = jnp.sum(jnp.sqrt(1 + r**2))
        return jnp.where(jnp.all(jnp.abs(x) < 3), value, jnp.nan)

    params, _, trajectory = _run(so.newton(damping=0.0), f, jnp.full(2, 2.0), 25)
    assert np.all(np.isfinite(np.asarray(trajectory)))
    values = np.array([float(f(p)) for p in trajectory])
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) <= 1e-13)
    np.testing.assert_allclose(params, [0.3, 0.3], atol=1e-8)


def test_zoom_returns_a_zero_step_on_an_ascent_direction(x64):
    def f(x):
        return jnp.sum(x**2)

    tx = so.scale_by_zoom_linesearch()
    x = jnp.array([1.0, 2.0])
    g = jax.grad(f)(x)

    @jax.jit
    def update(g, x):
        return tx.update(g, tx.init(x), x, value=f(x), grad=g, value_fn=f)

    updates, state = update(g, x)
    np.testing.assert_array_equal(updates, jnp.zeros(2))
    assert int(state.num_fun_evals) == 0 and float(state.learning_rate) == 0.0


# --------------------------------------------------------------------------
# value_fn with auxiliary outputs


def _rosenbrock(p):
    x = p["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _rosenbrock_aux(p, offset):
    value = _rosenbrock(p) + offset
    return value, {"residual": p["x"] - 1.0, "offset": offset}


@pytest.mark.parametrize(
    "factory",
    [
        lambda aux: chain(
            scale(-1e-3), so.scale_by_backtracking_linesearch(has_aux=aux)
        ),
        lambda aux: chain(scale(-1e-3), so.scale_by_zoom_linesearch(has_aux=aux)),
    ],
    ids=["backtracking", "zoom"],
)
def test_value_fn_with_aux_gives_the_same_steps(factory, x64):
    params = {"x": jnp.array([-1.2, 1.0])}
    offset = jnp.asarray(0.25)  # an extra keyword argument, passed on to value_fn

    def plain(p, offset):
        return _rosenbrock_aux(p, offset)[0]

    outs = [
        _run(factory(has_aux), plain, params, 3, value_fn=fun, offset=offset)[0]
        for has_aux, fun in [(False, plain), (True, _rosenbrock_aux)]
    ]
    np.testing.assert_allclose(outs[0]["x"], outs[1]["x"], rtol=1e-12)
    assert float(plain(outs[1], offset)) < float(plain(params, offset))


def test_unknown_keyword_argument_names_itself():
    tx = so.scale_by_zoom_linesearch()
    x = jnp.ones(2)
    with pytest.raises(TypeError, match="batch"):
        tx.update(
            -x, tx.init(x), x, value=2.0, grad=x, value_fn=lambda p: p @ p, batch=1
        )


# --------------------------------------------------------------------------
# float32, in a jitted user loop; no float64 leaks in even with x64 enabled


@pytest.mark.parametrize(
    "make",
    [so.lbfgs, so.bfgs, so.newton, so.newton_cg, so.conjugate_gradient],
    ids=["lbfgs", "bfgs", "newton", "newton_cg", "cg"],
)
def test_float32_rosenbrock_in_a_user_loop(make, x64):
    tx = make()
    params = {"x": jnp.array([-1.2, 1.0], jnp.float32)}
    params, state, _ = _run(tx, _rosenbrock, params, 150)
    assert params["x"].dtype == jnp.float32
    float_dtypes = {
        leaf.dtype
        for leaf in jax.tree.leaves(state)
        if jnp.issubdtype(leaf.dtype, jnp.floating)
    }
    assert float_dtypes == {jnp.dtype(jnp.float32)}
    np.testing.assert_allclose(params["x"], [1.0, 1.0], atol=2e-3)


# --------------------------------------------------------------------------
# Construction-time validation: errors name the argument

_BAD_ARGUMENTS = [
    (so.scale_by_backtracking_linesearch, {"max_backtracking_steps": 0}),
    (so.scale_by_backtracking_linesearch, {"slope_rtol": 1.5}),
    (so.scale_by_backtracking_linesearch, {"decrease_factor": 1.0}),
    (so.scale_by_backtracking_linesearch, {"increase_factor": 0.5}),
    (so.scale_by_backtracking_linesearch, {"max_learning_rate": -1.0}),
    (so.scale_by_backtracking_linesearch, {"store_grad": "yes"}),
    (so.scale_by_zoom_linesearch, {"max_linesearch_steps": 2.5}),
    (so.scale_by_zoom_linesearch, {"curv_rtol": 1e-5}),
    (so.scale_by_zoom_linesearch, {"slope_rtol": 0.0}),
    (so.scale_by_zoom_linesearch, {"increase_factor": 1.0}),
    (so.scale_by_zoom_linesearch, {"max_learning_rate": 0.0}),
    (so.scale_by_zoom_linesearch, {"initial_guess_strategy": "two"}),
    (so.scale_by_zoom_linesearch, {"has_aux": 1}),
    (so.newton, {"damping": -1.0}),
    (so.newton, {"damping": float("nan")}),
    (so.newton, {"damping_increase": 1.0}),
    (so.newton, {"damping_decrease": 0.5}),
    (so.newton, {"accept_ratio": 0.0}),
    (so.newton, {"max_damping_steps": 0}),
    (so.newton_cg, {"cg_tol": 2.0}),
    (so.newton_cg, {"max_cg_steps": 0}),
    (so.conjugate_gradient, {"variant": "dai_yuan"}),
    (so.conjugate_gradient, {"restart_every": 0}),
    (so.lbfgs, {"memory_size": 0}),
    (so.lbfgs, {"scale_init_precond": 1}),
    (so.lbfgs, {"learning_rate": -1.0}),
]


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    _BAD_ARGUMENTS,
    ids=[f"{f.__name__}-{next(iter(k))}" for f, k in _BAD_ARGUMENTS],
)
def test_bad_arguments_raise_naming_the_argument(factory, kwargs):
    (name,) = kwargs
    with pytest.raises((TypeError, ValueError), match=name):
        factory(**kwargs)


def test_dense_methods_take_mixed_dtype_parameters():
    """float32 and bfloat16 leaves together: raveled in float32, cast back."""
    params = {"w": jnp.ones(3), "h": jnp.ones(2, jnp.bfloat16)}

    def f(p):
        return jnp.sum(p["w"] ** 2) + jnp.sum(p["h"].astype(jnp.float32) ** 2)

    for tx in (so.bfgs(), so.newton()):
        state = tx.init(params)
        value, grads = jax.value_and_grad(f)(params)
        updates, state = tx.update(
            grads, state, params, value=value, grad=grads, value_fn=f
        )
        assert updates["h"].dtype == jnp.bfloat16
        assert float(f(gt.apply_updates(params, updates))) < float(value)
