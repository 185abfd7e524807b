"""Curriculum sampling (§8.7.6): admitted sets, the mix, coverage, jit/scan, errors."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
from gradtransforms.training.curriculum import draw as _draw
from gradtransforms.training.curriculum import words_per_draw as _words_per_draw

N = 50
# A fixed shuffle of the difficulties, so that "easiest" is not "lowest index".
DIFFICULTY = np.random.default_rng(0).permutation(N).astype(np.float32)
EASIEST = np.argsort(DIFFICULTY, kind="stable")


def _many(level, *, batch_size=8, hard_fraction=0.0, draws=200, difficulty=None):
    """`draws` batches from independent keys, as one NumPy array."""
    difficulty = DIFFICULTY if difficulty is None else difficulty
    return np.asarray(
        _draws(jnp.asarray(difficulty), level, batch_size, hard_fraction, draws)
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _draws(difficulty, level, batch_size, hard_fraction, draws):
    # One compilation per shape: the difficulty and the level are traced.
    keys = jax.random.split(jax.random.key(0), draws)
    return jax.vmap(
        lambda key: gt.training.curriculum_indices(
            key, difficulty, batch_size, level=level, hard_fraction=hard_fraction
        )
    )(keys)


# ----------------------------------------------------------------------------
# Admitted set and the mix


@pytest.mark.parametrize(("level", "k"), [(0.0, 1), (0.1, 5), (0.3, 15), (1.0, N)])
def test_without_the_mix_every_index_is_among_the_k_easiest(level, k):
    batches = _many(level)
    admitted = set(EASIEST[:k].tolist())
    assert set(batches.ravel().tolist()) == admitted  # inside, and all of it
    if k >= 8:  # without replacement: no repeats inside a batch
        assert all(len(set(row.tolist())) == 8 for row in batches)


def test_only_the_mixed_in_part_can_lie_outside_the_admitted_set():
    batch_size, hard_fraction = 20, 0.25  # h = 5 hard, c = 15 curriculum
    batches = _many(0.3, batch_size=batch_size, hard_fraction=hard_fraction)
    admitted = np.isin(batches, EASIEST[:15])
    assert admitted[:, :15].all()  # the curriculum part never leaves it
    outside = (~admitted[:, 15:]).sum(axis=1)
    assert outside.max() <= 5 and outside.sum() > 0
    # The hard part is uniform over all N: 70% of it lies outside, on average.
    np.testing.assert_allclose(outside.mean() / 5, 0.7, atol=0.05)
    # It is drawn without replacement from the whole set, every example alike.
    hard = batches[:, 15:]
    assert all(len(set(row.tolist())) == 5 for row in hard)
    counts = np.bincount(hard.ravel(), minlength=N)
    assert counts.min() > 0 and counts.max() < 2 * counts.mean()


@pytest.mark.parametrize(
    ("hard_fraction", "num_hard"), [(0.0, 0), (0.1, 1), (0.15, 2), (0.5, 4), (1.0, 8)]
)
def test_the_hard_part_is_the_rounded_share_of_the_batch(hard_fraction, num_hard):
    batches = _many(0.0, hard_fraction=hard_fraction)  # admits one example
    only = EASIEST[0]
    assert (batches[:, : 8 - num_hard] == only).all()
    if num_hard:
        assert (batches[:, 8 - num_hard :] != only).any()


def test_the_admitted_count_is_the_ceiling_of_level_times_n():
    sampler = gt.training.curriculum_sampler(np.arange(10.0), 4, pacing=0.3)
    # 0.3 · 10 is 3.0000000000000004 in floating point: still 3 examples.
    assert int(sampler.num_admitted(0)) == 3
    for level, k in [(0.0, 1), (0.01, 1), (0.25, 3), (0.31, 4), (0.7, 7), (1.0, 10)]:
        sampler = gt.training.curriculum_sampler(np.arange(10.0), 4, pacing=level)
        assert int(sampler.num_admitted(0)) == k, level


# ----------------------------------------------------------------------------
# Coverage and without-replacement draws


def test_level_one_covers_every_example():
    batches = _many(1.0, batch_size=8, hard_fraction=0.25, draws=60)
    np.testing.assert_array_equal(np.unique(batches), np.arange(N))
    assert all(len(set(row[:6].tolist())) == 6 for row in batches)


def test_draws_are_uniform_subsets():
    # All 20 three-element subsets of range(6) come up equally often.
    keys = jax.random.split(jax.random.key(3), 6000)
    draw = jax.jit(
        jax.vmap(lambda key: _draw(jax.random.bits(key, (_words_per_draw(3),)), 6, 3))
    )
    subsets = {}
    for row in np.asarray(draw(keys)):
        assert len(set(row.tolist())) == 3
        subsets[tuple(sorted(row.tolist()))] = subsets.get(tuple(sorted(row)), 0) + 1
    assert len(subsets) == 20
    counts = np.array(list(subsets.values()))
    assert counts.min() > 0.8 * 300 and counts.max() < 1.2 * 300


def test_a_batch_larger_than_the_admitted_set_repeats_it_evenly():
    batches = _many(0.1, batch_size=12)  # k = 5: each admitted twice or thrice
    for row in batches:
        counts = np.bincount(row, minlength=N)
        assert set(np.flatnonzero(counts).tolist()) == set(EASIEST[:5].tolist())
        assert sorted(counts[counts > 0].tolist()) == [2, 2, 2, 3, 3]
    # Larger than the whole data set, too.
    idx = gt.training.curriculum_indices(
        jax.random.key(0), np.arange(3.0), 7, level=1.0, hard_fraction=0.0
    )
    assert sorted(np.bincount(np.asarray(idx)).tolist()) == [2, 2, 3]


# ----------------------------------------------------------------------------
# Ties, determinism, jit and scan


def test_ties_are_broken_by_index():
    difficulty = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # easy: 1, 3, 5
    sampler = gt.training.curriculum_sampler(difficulty, 2, pacing=0.5)
    np.testing.assert_array_equal(sampler.order, [1, 3, 5, 0, 2, 4])
    # Level 4/6 admits the three zeros and the first one: index 0.
    batches = _many(4 / 6, batch_size=4, difficulty=difficulty, draws=30)
    np.testing.assert_array_equal(np.unique(batches), [0, 1, 3, 5])
    # Integer scores and float64 scores keep their exact order.
    ints = gt.training.curriculum_sampler(np.array([3, 1, 2, 1]), 1, pacing=1.0)
    np.testing.assert_array_equal(ints.order, [1, 3, 2, 0])
    close = np.array([1.0 + 1e-12, 1.0])  # equal in float32
    f64 = gt.training.curriculum_sampler(close, 1, pacing=1.0)
    np.testing.assert_array_equal(f64.order, [1, 0])


def test_same_key_same_indices_different_keys_differ():
    def draw(key):
        return gt.training.curriculum_indices(
            key, DIFFICULTY, 8, level=0.5, hard_fraction=0.25
        )

    chex.assert_trees_all_equal(draw(jax.random.key(1)), draw(jax.random.key(1)))
    chex.assert_trees_all_equal(
        draw(jax.random.key(1)), jax.jit(draw)(jax.random.key(1))
    )
    assert not np.array_equal(draw(jax.random.key(1)), draw(jax.random.key(2)))
    # Legacy uint32 keys work too.
    assert draw(jax.random.PRNGKey(0)).shape == (8,)


def test_traced_level_and_schedule_in_a_scan():
    pacing = gt.linear_decay_schedule(0.2, 1.0, transition_steps=10)
    sampler = gt.training.curriculum_sampler(DIFFICULTY, 8, pacing=pacing)
    key = jax.random.key(4)

    @jax.jit
    def run(key):
        def step(_, t):
            idx = sampler.indices(jax.random.fold_in(key, t), t)
            return None, (idx, sampler.num_admitted(t))

        return jax.lax.scan(step, None, jnp.arange(16))[1]

    indices, admitted = run(key)
    expected_k = [int(np.ceil(min(0.2 + 0.08 * t, 1.0) * N - 1e-9)) for t in range(16)]
    np.testing.assert_array_equal(admitted, expected_k)
    rank = np.argsort(EASIEST)  # rank[i]: position of example i, easiest first
    for t in range(16):
        batch = np.asarray(indices[t])
        hard = round(0.1 * 8)  # the default hard_fraction
        assert (rank[batch[: 8 - hard]] < expected_k[t]).all()
    # The epoch helper gives the same batches as step-by-step draws.
    chex.assert_trees_all_equal(
        jax.jit(sampler.epoch_indices, static_argnums=2)(key, 0, 16), indices
    )
    chex.assert_trees_all_equal(sampler.epoch_indices(key, 5, 3), indices[5:8])

    # curriculum_indices with a traced level: the same draw as the sampler's.
    @jax.jit
    def by_level(key, level):
        return gt.training.curriculum_indices(key, DIFFICULTY, 8, level=level)

    k3 = jax.random.fold_in(key, 3)
    chex.assert_trees_all_equal(by_level(k3, pacing(3)), indices[3])


def test_traced_difficulty_and_out_of_range_traced_levels():
    @jax.jit
    def draw(difficulty, level):
        return gt.training.curriculum_indices(
            jax.random.key(0), difficulty, 6, level=level, hard_fraction=0.0
        )

    d = jnp.asarray(DIFFICULTY)
    np.testing.assert_array_equal(draw(d, -3.0), np.full(6, EASIEST[0]))
    assert len(set(np.asarray(draw(d, 7.0)).tolist())) == 6  # clipped to 1
    assert len(set(np.asarray(draw(d, jnp.nan)).tolist())) == 6  # NaN: all


def test_float64_schedules_under_x64(x64):
    pacing = gt.linear_decay_schedule(0.1, 1.0, 50)
    assert pacing(0).dtype == jnp.float64
    sampler = gt.training.curriculum_sampler(np.arange(100.0), 8, pacing=pacing)
    assert [int(sampler.num_admitted(t)) for t in (0, 25, 50)] == [10, 55, 100]
    idx = sampler.epoch_indices(jax.random.key(0), jnp.asarray(3, jnp.int64), 4)
    assert idx.dtype == jnp.int32 and idx.shape == (4, 8)
    assert (idx[0, :7] < 16).all()  # λ(3) = 0.154: k = 16, hard part = 1


# ----------------------------------------------------------------------------
# Errors name the argument


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"difficulty": np.zeros((3, 2))}, ValueError, "difficulty must be a 1-D"),
        ({"difficulty": np.zeros(0)}, ValueError, "difficulty must score"),
        ({"difficulty": np.array([0.0, np.nan])}, ValueError, "difficulty must be fin"),
        ({"difficulty": np.array([0.0, np.inf])}, ValueError, "index 1"),
        ({"difficulty": np.array([True, False])}, TypeError, "difficulty"),
        ({"difficulty": "easy"}, TypeError, "difficulty"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int > 0"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        (
            {"hard_fraction": 1.5},
            ValueError,
            r"hard_fraction must be a number in \[0, 1\]",
        ),
        ({"hard_fraction": -0.1}, ValueError, "hard_fraction"),
        ({"hard_fraction": float("nan")}, ValueError, "hard_fraction"),
        ({"hard_fraction": jnp.asarray(0.1)}, TypeError, "hard_fraction"),
        ({"level": 1.5}, ValueError, r"level must be a number in \[0, 1\]"),
        ({"level": -0.5}, ValueError, "level"),
        ({"level": jnp.asarray(2.0)}, ValueError, "level"),
        ({"level": jnp.ones(2)}, ValueError, "level must be a scalar"),
        ({"level": "all"}, TypeError, "level"),
        ({"level": lambda t: 0.5}, TypeError, "level"),
    ],
)
def test_curriculum_indices_errors(kwargs, error, match):
    args = {
        "difficulty": DIFFICULTY,
        "batch_size": 4,
        "level": 0.5,
        "hard_fraction": 0.1,
    } | kwargs
    with pytest.raises(error, match=match):
        gt.training.curriculum_indices(jax.random.key(0), **args)


def test_curriculum_sampler_errors():
    with pytest.raises(ValueError, match=r"pacing must be a number in \[0, 1\] or a"):
        gt.training.curriculum_sampler(DIFFICULTY, 4, pacing=2.0)
    with pytest.raises(TypeError, match="pacing"):
        gt.training.curriculum_sampler(DIFFICULTY, 4, pacing=None)
    with pytest.raises(ValueError, match="difficulty must be finite"):
        gt.training.curriculum_sampler(np.array([np.nan]), 4, pacing=1.0)
    sampler = gt.training.curriculum_sampler(DIFFICULTY, 4, pacing=1.0)
    with pytest.raises(ValueError, match="num_batches"):
        sampler.epoch_indices(jax.random.key(0), 0, 0)
