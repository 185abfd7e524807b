"""optax's own unit tests, run with gradtransforms in place of optax.

For every optax test module in `harness.OPTAX_TEST_MODULES`, its test cases
are loaded here with every name gradtransforms shares with optax substituted
(`harness.load`), and pytest runs them as it runs optax's. The tests that
fail on purpose (a textbook default that differs from optax's, a stricter
check) are listed in `differences.py`, each with its reason, and in
docs/migrating.md; `conftest.py` marks them.
"""

from __future__ import annotations

import unittest

from tests.conformance.harness import OPTAX_TEST_MODULES, load


def _test_cases() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in OPTAX_TEST_MODULES:
        short = name.rsplit(".", 1)[1].removesuffix("_test").lstrip("_")
        for attr, value in vars(load(name)).items():
            if isinstance(value, type) and issubclass(value, unittest.TestCase):
                if value.__module__.startswith("conformance."):
                    found[f"{short}__{attr}"] = value
    return found


globals().update(_test_cases())
