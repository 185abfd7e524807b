"""tuning/space.py: the dimensions, and the argument errors of the search tools.

The table of bad arguments covers the dimensions' constructors and the
functions that read a space (`grid`, `random`, `decode`, `encode`,
`best_so_far`): each error names the argument.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

import gradtransforms.tuning as tu
from tests.tuning.common import SPACE


def test_dimensions_are_validated_and_stored():
    assert tu.uniform(0, 1) == tu.Uniform(0.0, 1.0)
    assert tu.log_uniform(1e-3, 1) == tu.LogUniform(1e-3, 1.0)
    assert tu.integer(1, 3) == tu.Integer(1, 3)
    assert tu.choice([None, True, 1, 0.5, "a"]).values == (None, True, 1, 0.5, "a")


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: tu.uniform(1.0, 1.0), ValueError, "high must be > low"),
        (lambda: tu.uniform("0", 1.0), TypeError, "low"),
        (lambda: tu.uniform(0.0, math.inf), ValueError, "high"),
        (lambda: tu.log_uniform(0.0, 1.0), ValueError, "low must be > 0"),
        (lambda: tu.log_uniform(1.0, 0.1), ValueError, "high must be > low"),
        (lambda: tu.integer(1.5, 3), TypeError, "low must be an int"),
        (lambda: tu.integer(3, 3), ValueError, "high must be > low"),
        (lambda: tu.choice([]), ValueError, "empty"),
        (lambda: tu.choice("ab"), TypeError, "sequence"),
        (lambda: tu.choice([1, 1]), ValueError, "distinct"),
        (lambda: tu.choice([[1]]), TypeError, "values"),
        (lambda: tu.grid({}, 2), TypeError, "space"),
        (lambda: tu.grid({"a": (0, 1)}, 2), TypeError, r"space\['a'\]"),
        (lambda: tu.grid(SPACE, 0), ValueError, "num"),
        (lambda: tu.grid(SPACE, {"lr": 2, "b2": 2}), ValueError, "'width'"),
        (
            lambda: tu.grid(SPACE, {"lr": 2, "b2": 2, "width": 2, "act": 2}),
            ValueError,
            "'act'",
        ),
        (lambda: tu.random(SPACE, 0, jax.random.key(0)), ValueError, "n"),
        (lambda: tu.random(SPACE, 3, 0), TypeError, "key"),
        (lambda: tu.decode(SPACE, {"lr": jnp.ones(2)}), ValueError, "missing"),
        (lambda: tu.encode(SPACE, [{"lr": 0.1}]), ValueError, r"trials\[0\]"),
        (
            lambda: tu.encode({"a": tu.choice([1, 2])}, [{"a": 3}]),
            ValueError,
            "not one of",
        ),
        (lambda: tu.best_so_far([1.0], direction="down"), ValueError, "direction"),
    ],
)
def test_bad_arguments_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()
