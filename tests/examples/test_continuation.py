"""examples/continuation.py: smoothing beats gradient descent; bad arguments."""

from __future__ import annotations

from examples import continuation as example


def test_example_continuation_beats_gradient_descent(tmp_path, capsys):
    assert example.main(["--out", str(tmp_path), "--starts", "12"]) == 0
    rows = [
        line.strip("|").split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "---" not in line and "success" not in line
    ]
    hits = {m.strip(): int(rate.split("/")[0]) for m, rate, _ in rows}
    assert set(hits) == set(example.METHODS)
    plain, smoothed = hits[example.METHODS[0]], hits[example.METHODS[1]]
    assert plain <= 4 and smoothed >= 11, hits
    assert (tmp_path / "continuation.png").stat().st_size > 20_000


def test_example_bad_argument_exits_2(capsys):
    assert example.main(["--samples", "3"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
