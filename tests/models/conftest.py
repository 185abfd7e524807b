"""Fixtures of the model tests: scikit-learn's digits, loaded once per module."""

from __future__ import annotations

import pytest

from gradtransforms.models import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()
