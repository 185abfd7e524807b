"""Curriculum learning (textbook §8.7.6): stochastic curriculum minibatches.

Bengio et al. (2009) train first on easy examples and admit harder ones as
training goes on; Zaremba & Sutskever (2014) mix examples from the whole data
set into every batch. Everything here is pure and runs under `jit` and
`lax.scan`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from gradtransforms.validation import (
    check_fraction,
    check_key,
    check_positive_int,
    is_concrete_number,
)

__all__ = [
    "CurriculumSampler",
    "curriculum_indices",
    "curriculum_sampler",
    "draw",
    "words_per_draw",
]


def _check_level(name: str, value: Any, *, allow_schedule: bool) -> None:
    """A number in [0, 1], a scalar array (checked if concrete) or a schedule."""
    allowed = "a number in [0, 1]" + (
        " or a schedule (a callable of the step count)" if allow_schedule else ""
    )
    if allow_schedule and callable(value) and not isinstance(value, type):
        return
    if is_concrete_number(value):
        number: Any = value
        if not 0.0 <= number <= 1.0:  # no float(): 10**400 is no float
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")
        return
    dtype = getattr(value, "dtype", None)
    if (
        isinstance(value, type)
        or dtype is None
        or not (
            jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
        )
    ):
        raise TypeError(f"{name} must be {allowed}; got {value!r}.")
    if np.ndim(value) != 0:
        raise ValueError(
            f"{name} must be a scalar; got an array of shape {np.shape(value)}."
        )
    if not isinstance(value, jax.core.Tracer) and not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def _difficulty_order(difficulty: Any) -> jax.Array:
    """Example indices from easiest to hardest, ties in index order (int32)."""
    if not (hasattr(difficulty, "dtype") and hasattr(difficulty, "shape")):
        try:
            difficulty = np.asarray(difficulty)
        except (TypeError, ValueError):
            raise TypeError(
                f"difficulty must be a 1-D array of real numbers; got {difficulty!r}."
            ) from None
    dtype, shape = difficulty.dtype, tuple(difficulty.shape)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(
            f"difficulty must be a 1-D array of real numbers; got dtype {dtype}."
        )
    if len(shape) != 1:
        raise ValueError(
            f"difficulty must be a 1-D array, one score per example; got shape {shape}."
        )
    if shape[0] == 0:
        raise ValueError("difficulty must score at least one example; got none.")
    if isinstance(difficulty, jax.core.Tracer):
        return jnp.argsort(difficulty, stable=True).astype(jnp.int32)
    host = np.asarray(difficulty)  # sorted on the host: float64 stays float64
    finite = np.isfinite(host.astype(np.float64))
    if not finite.all():
        raise ValueError(
            f"difficulty must be finite; got {int((~finite).sum())} non-finite "
            f"value(s), the first at index {int(np.argmin(finite))}."
        )
    return jnp.asarray(np.argsort(host, kind="stable").astype(np.int32))


def _num_admitted(level: Any, num_examples: int) -> jax.Array:
    """$k = \\max(1, \\lceil \\lambda N \\rceil)$ as an int32 scalar."""
    dtype = jnp.result_type(float)
    level = jnp.asarray(level).astype(dtype)
    level = jnp.where(jnp.isnan(level), 1.0, jnp.clip(level, 0.0, 1.0))
    # λN is rounded down by a few ulps first, so that e.g. 0.3·10 admits 3,
    # not 4, although 0.3·10 is 3.0000000000000004 in floating point.
    exact = level * num_examples * (1.0 - 4.0 * float(jnp.finfo(dtype).eps))
    return jnp.clip(jnp.ceil(exact).astype(jnp.int32), 1, num_examples)


def _uniform_below(hi: jax.Array, lo: jax.Array, bound: jax.Array) -> jax.Array:
    """Integers uniform in `[0, bound)` from two random uint32 words each.

    As `jax.random.randint` does it: `(hi·2^32 + lo) mod bound` for bounds up to
    2^16, the lower word alone beyond (a bias below `bound / 2^32`).
    """
    bound = bound.astype(jnp.uint32)
    multiplier = jnp.uint32(1 << 16) % bound
    multiplier = (multiplier * multiplier) % bound  # 2^32 mod bound, or 0
    return ((hi % bound) * multiplier + lo % bound) % bound


def words_per_draw(size: int) -> int:
    return 3 * size + 1 if size else 0


def draw(words: jax.Array, num_admitted: Any, size: int) -> jax.Array:
    """`size` integers from `range(k)`, `k = num_admitted >= 1`, in random order.

    Distinct while `k >= size` (a uniformly random subset); otherwise each of
    `range(k)` appears `size // k` or one more times. Robert Floyd's algorithm
    for a random `size`-subset of `range(K)`, `K = max(k, size)`: for
    `s = 0, 1, ...`, with `j_s = K - size + s`, draw `t_s` uniform in
    `[0, j_s]` and take `t_s`, or `j_s` if `t_s` was taken before. Whether
    `t_s` was taken is computed for all `s` at once: it was if an earlier
    `t_r` equals it, or if `t_s = j_r` for an `r < s` that itself collided, a
    chain followed by pointer doubling. Then a random permutation, and a
    random rotation modulo `k` (which only matters when `K > k`, where it
    spreads the extra repeats). `words` are `3·size + 1` random uint32s.
    Work is $O(\\mathrm{size} \\log \\mathrm{size})$, independent of the data
    set's size.
    """
    if size == 0:
        return jnp.zeros((0,), jnp.int32)
    k = jnp.asarray(num_admitted, jnp.int32)
    s = jnp.arange(size, dtype=jnp.int32)
    base = jnp.maximum(k, size) - size
    j = base + s
    t = _uniform_below(words[:size], words[size : 2 * size], j + 1).astype(jnp.int32)
    by_value = jnp.argsort(t, stable=True)  # equal t_s: the first is not a repeat
    sorted_t = t[by_value]
    repeat = jnp.concatenate([jnp.zeros((1,), bool), sorted_t[1:] == sorted_t[:-1]])
    taken = jnp.zeros((size + 1,), bool).at[by_value].set(repeat)  # [size]: False
    r = t - base
    chain = jnp.where((r >= 0) & (r < s), r, size)
    chain = jnp.concatenate([chain, jnp.full((1,), size, jnp.int32)])
    for _ in range((size - 1).bit_length()):  # chains are at most `size` long
        taken = taken | taken[chain]
        chain = chain[chain]
    chosen = jnp.where(taken[:size], j, t)
    chosen = chosen[jnp.argsort(words[2 * size : 3 * size], stable=True)]
    shift = (words[3 * size] % k.astype(jnp.uint32)).astype(jnp.int32)
    return (chosen + shift) % k


_num_admitted_jit = jax.jit(_num_admitted, static_argnums=1)


@functools.partial(jax.jit, static_argnames=("batch_size", "num_hard"))
def _curriculum_batch(
    key: jax.Array, order: jax.Array, level: Any, batch_size: int, num_hard: int
) -> jax.Array:
    """One batch: `batch_size - num_hard` admitted indices, then `num_hard` any.

    Jitted so that calls outside `jit` compile once, not op by op.
    """
    n = order.shape[0]
    num_easy = batch_size - num_hard
    split = words_per_draw(num_easy)
    words = jax.random.bits(key, (split + words_per_draw(num_hard),), jnp.uint32)
    easy = draw(words[:split], _num_admitted(level, n), num_easy)
    hard = draw(words[split:], n, num_hard)
    return jnp.concatenate([order[easy], hard])


def _num_hard(hard_fraction: Any, batch_size: int) -> int:
    check_fraction("hard_fraction", hard_fraction, closed=True, concrete=True)
    return math.floor(float(hard_fraction) * batch_size + 0.5)


def curriculum_indices(
    key: jax.Array,
    difficulty: Any,
    batch_size: int,
    *,
    level: Any,
    hard_fraction: float = 0.1,
) -> jax.Array:
    """One minibatch of a stochastic curriculum: easy examples plus a uniform mix.

    Curriculum learning (Bengio et al., 2009; textbook §8.7.6) trains first on
    easy examples and admits harder ones as training goes on, a continuation
    method whose early objectives weight simpler examples more. Zaremba &
    Sutskever (2014) found that it helps when it is *stochastic*: every batch
    also mixes in examples drawn from the whole data set. Here, with the
    $N$ examples sorted by `difficulty` (a stable sort: ties keep index order),
    the easiest

    $$k = \\max\\bigl(1, \\lceil \\lambda N \\rceil\\bigr), \\qquad
    \\lambda = \\mathrm{clip}(\\texttt{level}, 0, 1),$$

    are *admitted*. A batch of $B$ is $c = B - h$ indices drawn uniformly
    from the admitted set, followed by $h = \\lfloor \\texttt{hard\\_fraction}
    \\cdot B + \\tfrac12 \\rfloor$ indices drawn uniformly from all $N$
    examples. Each part is drawn *without replacement*, in random order: its
    indices are distinct while the set it draws from is large enough
    ($c \\le k$, $h \\le N$); otherwise every member of that set appears
    $\\lfloor c/k \\rfloor$ or $\\lceil c/k \\rceil$ times (likewise $h$
    over $N$). The two parts are independent and may share indices. So only
    the last $h$ entries can lie outside the admitted set. `level` 0 admits
    the single easiest example; `level` 1 is uniform sampling (and so is a
    NaN `level`, which switches the curriculum off).

    Runs under `jit` and `lax.scan`: `level` may be a traced scalar, such as
    `pacing(step)` of a schedule. Each call sorts `difficulty` (and a traced
    one cannot be checked); in a long loop, build a `curriculum_sampler`,
    which sorts once. Drawing costs $O(B \\log B)$ work (Floyd's algorithm,
    vectorised), independent of $N$.

    Args:
      key: a PRNG key.
      difficulty: a 1-D array of $N \\ge 1$ finite scores, one per example;
        larger is harder.
      batch_size: $B \\ge 1$ (may exceed $k$ or $N$, see above).
      level: the admitted fraction $\\lambda \\in [0, 1]$ of the examples,
        easiest first: a number, or a scalar array (traced values are
        clipped to [0, 1]).
      hard_fraction: the share of each batch drawn from the whole data set,
        in [0, 1]; a Python number (it fixes the shapes). The default 0.1 is
        our choice, not a value from either paper.

    Returns:
      int32 example indices of shape `(batch_size,)`: the curriculum part,
      then the mixed-in part.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> difficulty = jnp.arange(100.0)  # example i has difficulty i
      >>> idx = gt.training.curriculum_indices(
      ...     jax.random.key(0), difficulty, 10, level=0.2, hard_fraction=0.0
      ... )
      >>> bool((idx < 20).all()), len(set(idx.tolist()))
      (True, 10)

    References:
      Bengio, Louradour, Collobert & Weston, *Curriculum Learning*, ICML 2009.
      Zaremba & Sutskever, *Learning to Execute* (2014), arXiv:1410.4615.
    """
    check_key("key", key)
    check_positive_int("batch_size", batch_size)
    batch_size = int(batch_size)  # a NumPy int has no bit_length
    num_hard = _num_hard(hard_fraction, batch_size)
    _check_level("level", level, allow_schedule=False)
    order = _difficulty_order(difficulty)
    return _curriculum_batch(key, order, level, batch_size, num_hard)


class CurriculumSampler(NamedTuple):
    """The pure sampler returned by `curriculum_sampler`."""

    order: jax.Array
    """int32 `(N,)`: example indices from easiest to hardest, ties by index."""
    num_admitted: Callable[[Any], jax.Array]
    """`num_admitted(step) -> k`: the int32 size of the admitted set."""
    indices: Callable[[jax.Array, Any], jax.Array]
    """`indices(key, step) -> (batch_size,)` int32: one batch at `step`."""
    epoch_indices: Callable[[jax.Array, Any, int], jax.Array]
    """`epoch_indices(key, step, num_batches) -> (num_batches, batch_size)`:
    row `j` is `indices(jax.random.fold_in(key, step + j), step + j)`."""


def curriculum_sampler(
    difficulty: Any,
    batch_size: int,
    *,
    pacing: Any,
    hard_fraction: float = 0.1,
) -> CurriculumSampler:
    """A stochastic curriculum sampler with a pacing function, sorted once.

    The minibatches of `curriculum_indices` (Bengio et al., 2009; Zaremba &
    Sutskever, 2014; textbook §8.7.6), with the admitted fraction at step
    $t$ (0 for the first) given by a *pacing function* $\\lambda(t)$: a
    number, or a schedule such as
    `gt.linear_decay_schedule(0.2, 1.0, transition_steps=T)`, which admits
    the easiest 20% first and grows linearly to the whole data set after $T$
    steps. `difficulty` is sorted here, once, on the host when it is concrete
    (so float64 scores keep their order), and validated.

    `indices(key, step)` draws one batch at `step`; `epoch_indices(key,
    step, num_batches)` draws `num_batches` consecutive steps at once for a
    `lax.scan`, row $j$ being `indices(jax.random.fold_in(key, step + j),
    step + j)`, so chunked and step-by-step draws with the same key agree.
    Both run under `jit` and `lax.scan` with a traced `step`.

    Args:
      difficulty: a 1-D array of $N \\ge 1$ finite scores, one per example;
        larger is harder.
      batch_size: $B \\ge 1$.
      pacing: the admitted fraction, a number in [0, 1] or a schedule
        `step -> fraction` (values outside [0, 1] are clipped, NaN admits all).
      hard_fraction: the share of each batch drawn uniformly from the whole
        data set, in [0, 1]; default 0.1 (our choice).

    Returns:
      A `CurriculumSampler(order, num_admitted, indices, epoch_indices)`.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtransforms as gt
      >>> sampler = gt.training.curriculum_sampler(
      ...     jnp.arange(100.0), 8, pacing=gt.linear_decay_schedule(0.1, 1.0, 50)
      ... )
      >>> [int(sampler.num_admitted(t)) for t in (0, 25, 50, 99)]
      [10, 55, 100, 100]
      >>> sampler.epoch_indices(jax.random.key(0), 0, 5).shape
      (5, 8)

    References:
      Bengio, Louradour, Collobert & Weston, *Curriculum Learning*, ICML 2009.
      Zaremba & Sutskever, *Learning to Execute* (2014), arXiv:1410.4615.
    """
    check_positive_int("batch_size", batch_size)
    batch_size = int(batch_size)
    num_hard = _num_hard(hard_fraction, batch_size)
    _check_level("pacing", pacing, allow_schedule=True)
    order = _difficulty_order(difficulty)
    n = order.shape[0]

    def level_at(step: Any) -> Any:
        return pacing(step) if callable(pacing) else pacing

    def num_admitted(step: Any) -> jax.Array:
        return _num_admitted_jit(level_at(step), n)

    def indices(key: jax.Array, step: Any) -> jax.Array:
        return _curriculum_batch(key, order, level_at(step), batch_size, num_hard)

    def epoch_indices(key: jax.Array, step: Any, num_batches: int) -> jax.Array:
        check_positive_int("num_batches", num_batches)
        steps = jnp.asarray(step, jnp.int32) + jnp.arange(num_batches, dtype=jnp.int32)
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, steps)
        return jax.vmap(indices)(keys, steps)

    return CurriculumSampler(order, num_admitted, indices, epoch_indices)
