"""The tests mirror the library: every library module has its test module.

A module `gradtransforms/<path>/<name>.py` is tested in
`tests/<path>/test_<name>.py` (`gradtransforms/models` is the link to the
top-level `models/`, so `models/mlp.py` is tested in `tests/models/test_mlp.py`).
The modules of a package nested two deep, such as
`gradtransforms/second_order/linesearch/`, share the test module named after
that package (`tests/second_order/test_linesearch.py`). Package `__init__.py`
files are left out: the public API has `tests/test_public_api.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "gradtransforms"
TESTS = ROOT / "tests"


def library_modules() -> list[Path]:
    """Every `.py` file of the library but `__init__.py`, through the models link."""
    found = []
    for folder, _, names in os.walk(LIBRARY, followlinks=True):
        found += [Path(folder, n) for n in names if n.endswith(".py")]
    return sorted(p for p in found if p.name != "__init__.py")


def mirrored_test_module(module: Path) -> Path:
    """Where the tests of a library module live (see the module docstring)."""
    *folders, name = module.relative_to(LIBRARY).with_suffix("").parts[:2]
    return TESTS.joinpath(*folders, f"test_{name}.py")


def test_the_mirrored_paths_are_the_documented_ones():
    cases = {
        "tree/dtypes.py": "tree/test_dtypes.py",
        "validation.py": "test_validation.py",
        "models/mlp.py": "models/test_mlp.py",
        "tuning/tpe.py": "tuning/test_tpe.py",
        "second_order/newton.py": "second_order/test_newton.py",
        "second_order/linesearch/zoom.py": "second_order/test_linesearch.py",
    }
    for module, tests in cases.items():
        assert mirrored_test_module(LIBRARY / module) == TESTS / tests
    modules = {p.relative_to(LIBRARY).as_posix() for p in library_modules()}
    assert set(cases) <= modules  # the walk reaches the models and linesearch


def test_every_library_module_has_a_test_module():
    missing = [
        f"{p.relative_to(ROOT)} -> {mirrored_test_module(p).relative_to(ROOT)}"
        for p in library_modules()
        if not mirrored_test_module(p).is_file()
    ]
    assert not missing, missing


def test_every_test_folder_is_a_package():
    """pytest's rootdir imports (`tests.second_order.loop`) need `__init__.py`."""
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    missing = [
        f.relative_to(ROOT) for f in folders if not (f / "__init__.py").is_file()
    ]
    assert not missing, missing
