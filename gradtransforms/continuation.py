"""Continuation by smoothing, and annealed gradient noise (textbook §8.7.6).

A continuation method minimises a series of objectives $J^{(0)}, \\dots,
J^{(n)} = J$, each easier than the next, starting each from the solution of
the one before. The traditional series blurs $J$ (eq. 8.40):

$$J^{(i)}(\\theta) = J_{\\sigma_i}(\\theta) = \\mathbb{E}_{\\theta' \\sim
\\mathcal{N}(\\theta, \\sigma_i^2 I)} J(\\theta'),
\\qquad \\sigma_0 > \\sigma_1 > \\dots > \\sigma_n = 0,$$

which wipes out ripples narrower than about $\\sigma$ while keeping the
broad shape of $J$. `smooth_gradient` replaces the gradient of $J$ by a
Monte-Carlo estimate of $\\nabla J_\\sigma$, with $\\sigma$ a number or a
schedule that shrinks to 0. `add_noise` is its simulated-annealing relative
(the textbook's pointer to Kirkpatrick et al., 1983): Gaussian noise added to
the gradient, with a variance that decays as training goes on.

Both keep a PRNG key in their state and split it at every update, as
`optax.add_noise` does, so a run is reproducible from `key`. For example::

    import jax.numpy as jnp, gradtransforms as gt

    loss = lambda p: jnp.sum(0.25 * (p - 0.8) ** 2 + 1 - jnp.cos(jnp.pi * p))
    sigma = gt.linear_decay_schedule(1.5, 0.0, transition_steps=400)
    tx = gt.chain(gt.smooth_gradient(sigma, num_samples=8), gt.sgd(0.05))
    params = jnp.array([2.0, -4.0])
    state = tx.init(params)
    updates, state = tx.update(params, state, params, value_fn=loss)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.base import GradientTransformation, GradientTransformationExtraArgs
from gradtransforms.objective import objective
from gradtransforms.validation import (
    check_bool,
    check_key,
    check_non_negative,
    check_positive_int,
    is_concrete_number,
)

__all__ = [
    "AddNoiseState",
    "SmoothGradientState",
    "add_noise",
    "smooth_gradient",
]


# --------------------------------------------------------------------------
# PRNG keys and noise


def _as_key(key: Any) -> jax.Array:
    """An int seed or a PRNG key as a typed PRNG key."""
    if isinstance(key, numbers.Integral):
        return jax.random.key(int(key))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def _normal_like(key: jax.Array, tree: Any, num: int | None = None) -> Any:
    """Standard normal noise like each leaf of `tree`, in the leaf's dtype.

    Leaf $i$ (in `jax.tree.leaves` order) draws from the $i$-th key of
    `jax.random.split(key, num_leaves)`, the stream of `optax.tree.random_like`.
    With `num`, each leaf gets a leading axis of `num` independent draws.
    """
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        return tree
    lead = () if num is None else (num,)
    keys = jax.random.split(key, len(leaves))
    noise = [
        jax.random.normal(k, (*lead, *jnp.shape(x)), jnp.asarray(x).dtype)
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, noise)


# --------------------------------------------------------------------------
# Continuation by smoothing (eq. 8.40)


class SmoothGradientState(NamedTuple):
    """State of `smooth_gradient`."""

    count: jax.Array  # int32 scalar: number of updates so far (the schedule's step)
    rng_key: jax.Array  # PRNG key scalar: split at every update (optax's name)


def _check_sigma(sigma: Any) -> None:
    if not callable(sigma) or isinstance(sigma, type):  # a dtype is no schedule
        check_non_negative("sigma", sigma)


def smooth_gradient(
    sigma: float | Callable[[jax.Array], Any],
    num_samples: int = 4,
    *,
    key: int | jax.Array = 0,
    antithetic: bool = True,
) -> GradientTransformationExtraArgs:
    """Replace the gradient by a Monte-Carlo gradient of the blurred objective.

    Continuation by smoothing (textbook §8.7.6, eq. 8.40): the objective $J$
    is replaced by its Gaussian blur
    $J_\\sigma(\\theta) = \\mathbb{E}_{\\theta' \\sim \\mathcal{N}(\\theta,
    \\sigma^2 I)} J(\\theta')$, whose gradient is an average of gradients of
    $J$ at perturbed parameters,

    $$\\nabla J_\\sigma(\\theta) = \\mathbb{E}_{\\epsilon \\sim
    \\mathcal{N}(0, I)}\\, \\nabla J(\\theta + \\sigma\\epsilon) \\approx
    \\frac{1}{n} \\sum_{i=1}^{n} \\nabla J(\\theta + \\sigma \\epsilon_i).$$

    The estimate is unbiased for every $n$. With `antithetic=True` the
    perturbations come in pairs $\\pm\\epsilon_i$ ($n/2$ draws), so the odd
    terms of the Taylor expansion of $\\nabla J$ cancel exactly: for a
    quadratic $J$ the estimate *is* $\\nabla J(\\theta)$, and when $\\sigma$
    is small next to the scale on which $\\nabla J$ bends, the variance drops
    from $O(\\sigma^2)$ to $O(\\sigma^4)$ (for large $\\sigma$ the pairs can
    help less than independent draws).

    $\\sigma$ may follow a schedule of the update count (0 for the first
    update) that decreases to 0: then the last updates see the gradient of
    $J$ itself, exactly (at $\\sigma = 0$ the result is
    `jax.grad(value_fn)(params)`, not an average of copies of it).

    The incoming `updates` are *replaced*, not used (only their dtypes are
    kept), so put this transformation first in a chain. The $n$ gradients are
    evaluated together under `jax.vmap`: memory grows like $n$ copies of the
    parameters and of `value_fn`'s intermediates.

    Args:
      sigma: the blur $\\sigma \\ge 0$ (a number) or a schedule
        `count -> sigma` (e.g. `gt.linear_decay_schedule(1.0, 0.0, 1000)`;
        its values are used as $|\\sigma|$).
      num_samples: $n$, gradient evaluations per update (an int > 0; even
        when `antithetic=True`).
      key: an int seed or a PRNG key; the state keeps it and splits it at
        every update (the first half is kept, the second half drawn from).
      antithetic: draw the perturbations as pairs $\\pm\\epsilon$.

    Returns:
      A `GradientTransformationExtraArgs` with `SmoothGradientState`, called as
      `tx.update(grads, state, params, value_fn=f, **fn_kwargs)`;
      `f(params, **fn_kwargs)` returns the scalar objective $J$. Keyword
      arguments `value` and `grad` (the line-search convention) are ignored.

    Raises:
      TypeError: from `update`, when `value_fn` is missing or not callable.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> def f(p):  # a bowl with ripples: local minima near ±2 and ±4
      ...     return jnp.sum(0.25 * (p - 0.8) ** 2 + 1 - jnp.cos(jnp.pi * p))
      >>> sigma = gt.linear_decay_schedule(1.5, 0.0, transition_steps=400)
      >>> tx = gt.chain(gt.smooth_gradient(sigma, num_samples=8), gt.sgd(0.05))
      >>> @jax.jit
      ... def step(params, state):
      ...     grads = jax.grad(f)(params)
      ...     updates, state = tx.update(grads, state, params, value_fn=f)
      ...     return gt.apply_updates(params, updates), state
      >>> params = jnp.array([2.0, -4.0])
      >>> state = tx.init(params)
      >>> for _ in range(600):
      ...     params, state = step(params, state)
      >>> print(params.round(3))  # the global minimum (plain GD: [1.942 -3.743])
      [0.039 0.039]
    """
    _check_sigma(sigma)
    check_positive_int("num_samples", num_samples)
    check_bool("antithetic", antithetic)
    if antithetic and num_samples % 2:
        raise ValueError(
            "num_samples must be an even int > 0 when antithetic=True "
            f"(the perturbations come in pairs ±ε); got {num_samples}."
        )
    check_key("key", key, allow_seed=True)
    num_draws = num_samples // 2 if antithetic else num_samples
    static_zero = is_concrete_number(sigma) and float(sigma) == 0
    static_positive = is_concrete_number(sigma) and float(sigma) > 0

    def smoothed(grad_fn, params, sigma_k, sample_key):
        eps = _normal_like(sample_key, params, num_draws)
        if antithetic:
            eps = jax.tree.map(lambda e: jnp.concatenate([e, -e]), eps)
        grads = jax.vmap(lambda e: grad_fn(tu.add_scale(params, sigma_k, e)))(eps)
        return tu.map_widened(lambda g: jnp.mean(g, axis=0), grads)

    def init_fn(params):
        del params
        return SmoothGradientState(count=jnp.zeros([], jnp.int32), rng_key=_as_key(key))

    def update_fn(
        updates, state, params=None, *, value_fn=None, value=None, grad=None, **extra
    ):
        del value, grad  # the line-search convention's; not needed here
        f = objective(value_fn, extra, False, "smooth_gradient")
        if params is None:
            raise ValueError(
                "smooth_gradient.update needs params: the gradient of value_fn "
                "is estimated around them."
            )
        tu.assert_updates_match(updates, params)
        next_key, sample_key = jax.random.split(state.rng_key)
        new_state = SmoothGradientState(tu.safe_increment(state.count), next_key)
        if not jax.tree.leaves(params):
            return updates, new_state

        def plain(params):
            return tu.cast_like(jax.grad(f)(params), params)

        def blurred(params, sigma_k):
            return tu.cast_like(
                smoothed(jax.grad(f), params, sigma_k, sample_key), params
            )

        if static_zero:
            grads = plain(params)
        elif static_positive:
            grads = blurred(params, sigma)
        else:  # a schedule or a traced value: decided at run time
            sigma_k = jnp.abs(
                jnp.asarray(sigma(state.count) if callable(sigma) else sigma)
            )
            grads = jax.lax.cond(
                sigma_k > 0, blurred, lambda p, _: plain(p), params, sigma_k
            )
        return tu.cast_like(grads, updates), new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


# --------------------------------------------------------------------------
# Annealed gradient noise


class AddNoiseState(NamedTuple):
    """State of `add_noise`."""

    count: jax.Array  # int32 scalar: number of updates so far
    rng_key: jax.Array  # PRNG key scalar: split at every update (optax's name)


def add_noise(
    eta: float, gamma: float, key: int | jax.Array = 0
) -> GradientTransformation:
    """Add Gaussian noise with an annealed variance to the updates.

    Gradient noise (Neelakantan et al., 2015), a simulated-annealing relative
    of the continuation methods of textbook §8.7.6:

    $$u = g + \\mathcal{N}\\!\\left(0, \\sigma_k^2 I\\right), \\qquad
    \\sigma_k^2 = \\frac{\\eta}{(1 + k)^{\\gamma}},$$

    where $k$ is the number of earlier updates (0 for the first update, whose
    variance is $\\eta$). This is `optax.add_noise(eta, gamma, key)`: the same
    arguments, the same variance (optax writes it $\\eta / t^\\gamma$ with
    $t = k + 1$) and, for the same key, the same random stream. The noise is
    drawn in each leaf's dtype and added in float32 or wider; each leaf keeps
    its dtype.

    Args:
      eta: $\\eta \\ge 0$, the variance (not the standard deviation) of the
        noise at the first update.
      gamma: $\\gamma \\ge 0$, the decay exponent (0.55 in the paper).
      key: an int seed or a PRNG key, split at every update.

    Returns:
      A `GradientTransformation` with `AddNoiseState`.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> tx = gt.chain(gt.add_noise(0.01, 0.55, key=0), gt.sgd(0.1))
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = tx.update(2 * params, tx.init(params), params)

    References:
      Neelakantan et al., *Adding Gradient Noise Improves Learning for Very
      Deep Networks* (2015), arXiv:1511.06807.
    """
    check_non_negative("eta", eta)
    check_non_negative("gamma", gamma)
    check_key("key", key, allow_seed=True)

    def init_fn(params):
        del params
        return AddNoiseState(count=jnp.zeros([], jnp.int32), rng_key=_as_key(key))

    def update_fn(updates, state, params=None):
        del params
        count = tu.safe_increment(state.count)  # k + 1
        dtype = tu.scalar_dtype(updates)
        variance = jnp.asarray(eta, dtype) / count.astype(dtype) ** jnp.asarray(
            gamma, dtype
        )
        next_key, sample_key = jax.random.split(state.rng_key)
        noise = _normal_like(sample_key, updates)
        updates = tu.add_scale(updates, jnp.sqrt(variance), noise)
        return updates, AddNoiseState(count=count, rng_key=next_key)

    return GradientTransformation(init_fn, update_fn)
