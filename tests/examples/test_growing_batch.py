"""examples/growing_batch.py: k doubles per phase, and bad arguments exit 2."""

from __future__ import annotations

import pytest


def test_growing_batch_example_prints_each_phase(capsys):
    from examples import growing_batch

    argv = ["--phases", "3", "--steps-per-phase", "2", "--microbatch", "8"]
    args = growing_batch.parse_args(argv)
    rows = growing_batch.run(args)
    assert [r["k"] for r in rows] == [1, 2, 4]
    assert [r["batch"] for r in rows] == [8, 16, 32]
    # every phase took its steps: the accumulator stepped once per k microbatches
    assert [r["steps"] for r in rows] == [2, 4, 6]
    assert all(r["train_loss"] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "phase 3: k =   4, batch    32, 2 steps (8 microbatches)" in printed
    assert growing_batch.main(argv) == 0


@pytest.mark.parametrize(
    "argv",
    [["--phases", "0"], ["--phases", "9"], ["--microbatch", "100000"], ["--bad"]],
)
def test_growing_batch_example_bad_arguments_exit_2_with_one_line(argv, capsys):
    from examples import growing_batch

    assert growing_batch.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("growing_batch: error:")
