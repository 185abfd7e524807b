"""examples/curriculum.py: it prints its table, and rejects bad arguments."""

from __future__ import annotations

import pytest


def test_curriculum_example_prints_its_table(tmp_path, capsys):
    from examples import curriculum

    # hard_fraction 0: all four samplers share one compilation.
    argv = ["--out", str(tmp_path), "--steps", "40", "--eval-every", "20"]
    argv += ["--seeds", "2", "--difficulty", "distance", "--hard-fraction", "0"]
    assert curriculum.main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("| uniform |", "| curriculum |", "| curriculum, no mix |"):
        assert name in printed
    assert "train loss (whole set)" in printed
    assert (tmp_path / "curriculum.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--hard-fraction", "1.5"],
        ["--steps", "0"],
        ["--steps", "30", "--eval-every", "20"],
        ["--difficulty", "labels"],
        ["--batch-size", "5000"],
        ["--no-such-option"],
    ],
)
def test_curriculum_example_bad_arguments_exit_2_with_one_line(argv, capsys):
    from examples import curriculum

    assert curriculum.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("curriculum: error:")
