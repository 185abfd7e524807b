"""examples/trajectories.py: the paths figure, and its honest outcomes."""

from __future__ import annotations

from examples import trajectories


def test_writes_the_figure_and_second_order_methods_converge(tmp_path, capsys):
    assert trajectories.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "trajectories.png").stat().st_size > 20_000
    rows = [
        line.strip("|").split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "---" not in line and "method" not in line
    ]
    table = {(m.strip(), p.strip()): float(d) for m, p, _, d in rows}
    assert len(table) == 18
    # BFGS and Newton reach the minimum of both problems within the budget.
    for method in ("BFGS", "Newton"):
        for problem in ("ravine", "rosenbrock"):
            assert table[method, problem] < 1e-4


def test_bad_argument_exits_2(capsys):
    assert trajectories.main(["--bogus"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
