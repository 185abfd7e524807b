"""Smoke tests of the issue-3 examples: they run, print their table, write a PNG.

Small settings keep both under a few seconds; the full runs are
`python -m examples.polyak_averaging` and `python -m examples.coordinate_descent`.
"""

from __future__ import annotations

import numpy as np
import pytest

from examples import coordinate_descent, polyak_averaging


def test_polyak_averaging_example(tmp_path, capsys):
    paths = polyak_averaging.main(["--out", str(tmp_path), "--epochs", "2"])
    printed = capsys.readouterr().out
    assert (tmp_path / "polyak_averaging.png").stat().st_size > 0
    for method in ("SGD iterate", "Polyak average", "EMA average"):
        assert method in printed
    assert "raw iterates identical with either average: True" in printed
    assert all(p.shape == (64, 2) for p in paths.values())


def test_coordinate_descent_example(tmp_path, capsys):
    results = coordinate_descent.main(
        ["--out", str(tmp_path), "--alphas", "0.1", "0.05", "--sweeps", "100"]
    )
    printed = capsys.readouterr().out
    assert (tmp_path / "coordinate_descent.png").stat().st_size > 0
    for method in ("exact CD", "block CD (sgd)", "predicted", "Newton"):
        assert method in printed
    # α = 0.1 needs 42 sweeps from the example's start (the (1 + α)^-2 rate).
    assert "42" in printed.splitlines()[2]
    np.testing.assert_allclose(results[0.1]["block"], results[0.1]["exact"], rtol=1e-4)


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (polyak_averaging, ["--epochs", "0"]),
        (polyak_averaging, ["--decay", "1.0"]),
        (coordinate_descent, ["--alphas", "-0.1"]),
        (coordinate_descent, ["--no-such-option"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(module, argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "error:" in err
