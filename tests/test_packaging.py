"""The wheel: `gradtransforms.models` inside the package, no top-level `models`.

The repository keeps the models in its top-level `models/` folder, reached
from the package through the link `gradtransforms/models`. These tests build
the wheel with pip (in an isolated build environment, as a user's pip does),
read its file list, then install it without dependencies into a fresh folder
and import from there in a separate interpreter whose path holds no
checkout of the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (found,) = out.glob("gradtransforms-*.whl")
    return found


def _top_level(names: list[str]) -> set[str]:
    return {n.split("/", 1)[0] for n in names}


def test_wheel_holds_one_package_with_its_models(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = _top_level(names) - {n for n in _top_level(names) if ".dist-info" in n}
    assert tops == {"gradtransforms"}, f"top-level entries: {sorted(tops)}"
    models = {n for n in names if n.startswith("gradtransforms/models/")}
    shipped = {
        f"gradtransforms/models/{p.name}" for p in (ROOT / "models").glob("*.py")
    }
    assert shipped <= models, f"missing: {sorted(shipped - models)}"
    assert "gradtransforms/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_every_package_folder_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (ROOT / "gradtransforms").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} is not in the wheel"


def test_installed_wheel_imports_the_models(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "-t",
            target,
            wheel,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    code = (
        "import importlib.util, gradtransforms, gradtransforms.models as m; "
        "print(gradtransforms.__file__); print(m.MLP.__module__); "
        "print(importlib.util.find_spec('models'))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(target), out[0]
    assert out[1] == "gradtransforms.models.mlp"
    assert out[2] == "None", "a top-level `models` package is importable"
