"""examples/polyak_averaging.py: it runs, prints its table, writes a PNG.

Small settings keep it under a few seconds; the full run is
`python -m examples.polyak_averaging`.
"""

from __future__ import annotations

import pytest

from examples import polyak_averaging
from tests.examples.command_line import assert_exits_2_with_one_line


def test_polyak_averaging_example(tmp_path, capsys):
    paths = polyak_averaging.main(["--out", str(tmp_path), "--epochs", "2"])
    printed = capsys.readouterr().out
    assert (tmp_path / "polyak_averaging.png").stat().st_size > 0
    for method in ("SGD iterate", "Polyak average", "EMA average"):
        assert method in printed
    assert "raw iterates identical with either average: True" in printed
    assert all(p.shape == (64, 2) for p in paths.values())


@pytest.mark.parametrize(
    ("module", "argv"),
    [(polyak_averaging, ["--epochs", "0"]), (polyak_averaging, ["--decay", "1.0"])],
)
def test_bad_arguments_exit_2_with_one_line(module, argv, tmp_path, capsys):
    assert_exits_2_with_one_line(module, ["--out", str(tmp_path), *argv], capsys)
