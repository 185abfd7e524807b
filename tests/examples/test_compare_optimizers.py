"""The main job, examples/compare_optimizers.py: outputs, determinism, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from examples import compare_optimizers


def _run(tmp_path, *extra):
    argv = ["--no-progress", "--out", str(tmp_path), "--epochs", "1", *extra]
    return compare_optimizers.main(argv)


def test_writes_table_figure_and_curves(tmp_path, capsys):
    assert _run(tmp_path, "--optimizers", "adam") == 0
    out = capsys.readouterr().out
    for name in ("adam", "adam_polyak", "adam_ema"):
        assert f"| {name} |" in out
    assert (tmp_path / "compare_optimizers.png").stat().st_size > 10_000
    curves = json.loads((tmp_path / "compare_optimizers.json").read_text())["curves"]
    assert set(curves) == {"adam"}
    assert len(curves["adam"]["valid_accuracy"]) == 1
    # One epoch of Adam on the digits already beats chance (10%) by far.
    assert curves["adam"]["valid_accuracy"][-1] > 0.5


def test_is_deterministic_for_a_seed(tmp_path):
    runs = []
    for i in range(2):
        folder = tmp_path / str(i)
        assert _run(folder, "--optimizers", "momentum", "--seed", "3") == 0
        runs.append(json.loads((folder / "compare_optimizers.json").read_text()))
    assert runs[0]["curves"] == runs[1]["curves"]


def test_reads_an_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(60, 4, 4)).astype(np.uint8)
    y = (x.reshape(60, -1).mean(1) > 127).astype(np.int64)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    assert _run(tmp_path, "--optimizers", "sgd", "--dataset", str(path)) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", "adamax"], "unknown optimizer adamax"),
        (["--epochs", "0"], "must be > 0"),
        (["--epochs", "two"], "expected an integer"),
        (["--batch-size", "-4"], "must be > 0"),
        (["--dataset", "does/not/exist.npz"], "file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path):
    assert compare_optimizers.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_ill_formed_dataset_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.ones((5, 3)), labels=np.zeros(5, int))
    assert (
        compare_optimizers.main(["--dataset", str(path), "--out", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "missing array" in err and len(err.splitlines()) == 1
