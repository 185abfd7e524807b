"""The conformance lists match what docs/migrating.md tells users."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conformance.differences import DIFFERENCES, TO_FIX

MIGRATING = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


def _documented_tests() -> list[str]:
    """The first column of the "Intended differences from optax" table."""
    text = MIGRATING.read_text(encoding="utf-8")
    section = text.split("## Intended differences from optax", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"^\| `([\w:]+)` \|", section, flags=re.MULTILINE)


def test_every_intended_difference_is_documented_once():
    documented = _documented_tests()
    assert len(documented) == len(set(documented)), "a test is listed twice"
    assert sorted(documented) == sorted(DIFFERENCES)


def test_no_failure_is_left_to_fix():
    assert not TO_FIX
