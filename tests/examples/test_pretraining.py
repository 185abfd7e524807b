"""examples/pretraining.py: it prints its table, and rejects bad input."""

from __future__ import annotations

import pytest

from examples import pretraining as pretraining_example


def test_pretraining_example_runs(tmp_path, capsys):
    argv = ["--hidden", "2", "--width", "8", "--stage-steps", "10"]
    argv += ["--finetune-steps", "10", "--seeds", "2", "--out", str(tmp_path)]
    assert pretraining_example.main(argv) == 0
    assert (tmp_path / "pretraining.png").stat().st_size > 10_000
    rows = [
        line.strip("|").split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "method" not in line
    ]
    assert [r[0].strip() for r in rows] == [
        "scratch",
        "greedy (frozen), before fine-tuning",
        "greedy (frozen)",
        "greedy (joint), before fine-tuning",
        "greedy (joint)",
    ]
    for row in rows:
        loss, accuracy = (float(cell.split()[0]) for cell in row[1:])
        assert 0 < loss < 3 and 0 <= accuracy <= 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--hidden", "0"],
        ["--finetune-steps", "-1"],
        ["--lr", "nan"],
        ["--batch-size", "5000"],
        ["--bogus"],
    ],
)
def test_pretraining_example_bad_input_exits_2(argv, capsys, tmp_path):
    assert pretraining_example.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pretraining: error:")
