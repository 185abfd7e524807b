"""How optax's tests run here: optax's numerical settings, and the known differences.

* optax's tests are written for JAX's default dtype and rank promotion and
  with warnings as warnings; the strict settings of `tests/conftest.py` and
  pyproject.toml apply to our tests only, so each optax test runs under
  JAX's defaults, warnings shown but not raised.
* Each test's use of the shared names is recorded (`harness.used`); at the
  end of the session the terminal summary gives the counts of optax's tests
  (a test's subtests are part of it): run, reached a shared name
  (applicable), passed, documented differences, and those that skip
  themselves.
* The documented differences (`differences.py`) are marked `xfail(strict=True)`:
  a difference that disappears fails the run, so the list stays true.
  Where optax asserts inside a `subTest` (`IN_SUBTEST`), the subtest fails
  and the test itself passes, so the mark is not strict; instead the run
  fails at the end unless each such test had a subtest that failed.
"""

from __future__ import annotations

from collections import Counter

import jax
import pytest

from tests.conformance import harness
from tests.conformance.differences import (
    DIFFERENCES,
    IN_SUBTEST,
    OPTAX_FAILS_HERE,
    TO_FIX,
)

_SUITE = "tests/conformance/test_optax_suite.py"
_counts: Counter[str] = Counter()
_subtests_ran: set[str] = set()
_subtests_failed: set[str] = set()


def _key(nodeid: str) -> str:
    return nodeid.split("test_optax_suite.py::", 1)[-1]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _SUITE not in item.nodeid:
            continue
        # Warnings are not errors in optax's own runs (they are in ours).
        item.add_marker(pytest.mark.filterwarnings("default"))
        key = _key(item.nodeid)
        if key in OPTAX_FAILS_HERE:
            item.add_marker(pytest.mark.skip(reason=OPTAX_FAILS_HERE[key]))
        elif key in DIFFERENCES:
            strict = key not in IN_SUBTEST  # checked in pytest_sessionfinish
            item.add_marker(pytest.mark.xfail(strict=strict, reason=DIFFERENCES[key]))
        elif key in TO_FIX:
            item.add_marker(pytest.mark.xfail(strict=True, reason="not fixed yet"))


@pytest.fixture(autouse=True)
def optax_settings():
    """optax's promotion rules, and a fresh record of the shared names reached."""
    harness.used.clear()
    with (
        jax.numpy_dtype_promotion("standard"),
        jax.numpy_rank_promotion("allow"),
    ):
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and _SUITE in item.nodeid:
        # In the report, so that it reaches the controller under xdist too.
        report.user_properties.append(("shared_names", sorted(harness.used)))
    return report


def pytest_runtest_logreport(report):
    key = _key(report.nodeid)
    if key in IN_SUBTEST and report.when == "call":
        _subtests_ran.add(key)
        if hasattr(report, "context") and hasattr(report, "wasxfail"):
            _subtests_failed.add(key)  # a subtest report, failed as listed
    shared = dict(report.user_properties).get("shared_names")
    if report.when != "call" or shared is None or hasattr(report, "context"):
        return  # a subtest's report is counted with its test's
    _counts["run"] += 1
    if shared:
        _counts["applicable"] += 1
        if hasattr(report, "wasxfail"):  # IN_SUBTEST ones report "passed"
            _counts["documented"] += 1
        elif report.passed:
            _counts["passed"] += 1
        elif report.skipped:  # optax's test skips itself (skipTest in its body)
            _counts["skipped"] += 1


def pytest_sessionfinish(session):
    passed = sorted(_subtests_ran - _subtests_failed)
    if passed:
        session.config.get_terminal_writer().line(
            f"optax conformance: listed differences that no longer differ: {passed}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _counts["run"]:
        terminalreporter.write_line(
            "optax conformance: {run} optax tests run, {applicable} reach a name "
            "shared with gradtransforms: {passed} passed, {documented} are "
            "documented differences ({listed} listed), {skipped} skip "
            "themselves".format(
                listed=len(DIFFERENCES),
                **{
                    k: _counts[k]
                    for k in ("run", "applicable", "passed", "documented", "skipped")
                },
            )
        )
