"""examples/coordinate_descent.py: it runs, prints its table, writes a PNG.

Small settings keep it under a few seconds; the full run is
`python -m examples.coordinate_descent`.
"""

from __future__ import annotations

import numpy as np
import pytest

from examples import coordinate_descent
from tests.examples.command_line import assert_exits_2_with_one_line


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
        (coordinate_descent, ["--alphas", "-0.1"]),
        (coordinate_descent, ["--no-such-option"]),
    ],
    ids=["examples.coordinate_descent-argv2", "examples.coordinate_descent-argv3"],
)
def test_bad_arguments_exit_2_with_one_line(module, argv, tmp_path, capsys):
    assert_exits_2_with_one_line(module, ["--out", str(tmp_path), *argv], capsys)
