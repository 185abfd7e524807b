"""examples/skip_connections.py: it prints its table, and rejects bad input."""

from __future__ import annotations

import pytest

from examples import skip_connections


def test_skip_connections_example_runs(tmp_path, capsys):
    argv = ["--depths", "3", "--width", "8", "--steps", "20", "--seeds", "2"]
    assert skip_connections.main([*argv, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "skip_connections.png").stat().st_size > 10_000
    rows = [
        line.strip("|").split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "depth" not in line
    ]
    assert [int(r[0]) for r in rows] == [3]
    for row in rows:
        plain_loss, plain_acc, res_loss, res_acc = map(float, row[1:])
        assert 0 < plain_loss < 3 and 0 < res_loss < 3
        assert 0 <= plain_acc <= 1 and 0 <= res_acc <= 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--depths", "2"],
        ["--width", "0"],
        ["--lr", "-1"],
        ["--optimizer", "lbfgs"],
        ["--seed", "-1"],
        ["--batch-size", "5000"],
    ],
)
def test_skip_connections_bad_input_exits_2(argv, capsys, tmp_path):
    assert skip_connections.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skip_connections: error:")
