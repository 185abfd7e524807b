"""What the example tests check of a command line that argparse rejects."""

from __future__ import annotations

import pytest


def assert_exits_2_with_one_line(module, argv, capsys):
    """`module.main(argv)` exits with status 2 and a one-line error message."""
    with pytest.raises(SystemExit) as exc:
        module.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "error:" in err
