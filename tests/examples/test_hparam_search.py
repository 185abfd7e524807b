"""examples/hparam_search.py: bad arguments in one line; a small run's outputs."""

from __future__ import annotations

import pytest


def test_example_rejects_bad_arguments_in_one_line(capsys):
    from examples import hparam_search

    assert hparam_search.main(["--trials", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "square" in err


@pytest.mark.slow
def test_example_runs_small(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("optuna")
    from examples import hparam_search

    argv = ["--out", str(tmp_path), "--trials", "4", "--repeats", "2"]
    argv += ["--tpe-repeats", "1", "--epochs", "1"]
    assert hparam_search.main(argv) == 0
    printed = capsys.readouterr().out
    for method in ("| grid |", "| random |", "| TPE |"):
        assert method in printed
    assert (tmp_path / "hparam_search.png").stat().st_size > 0
    assert (tmp_path / "hparam_search.json").stat().st_size > 0
