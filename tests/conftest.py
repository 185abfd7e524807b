"""Test configuration: strict dtype promotion, rank promotion raises.

Silent up-casts and broadcasting bugs surface here rather than in users' runs.
(Warnings-as-errors is set in pyproject.toml's pytest options.)
"""

from __future__ import annotations

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    with jax.enable_x64(True):
        yield
