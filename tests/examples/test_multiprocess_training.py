"""Multi-process data-parallel training on localhost through `jax.distributed`.

Launches `examples/multiprocess_training.py` as 2 local processes (CPU gloo
collectives), which compares their final parameters with a single-process
run and exits non-zero if they differ. Bounded: the launcher gives up after
100 s, the test after 120 s.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.subprocesses import run_python


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    command = [
        "-m", "examples.multiprocess_training",
        "--launch", "2", "--epochs", "1", "--timeout", "100",
        "--out", str(tmp_path),
    ]  # fmt: skip
    proc = run_python(command, xla_flags=None, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "1 local / 2 global devices" in output
    assert "equal the single-process run" in output
    diffs = [float(d) for d in re.findall(r"max \|Δθ\| = ([0-9.e+-]+)", output)]
    assert len(diffs) == 2 and max(diffs) <= 1e-4, output[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["params_0_of_2.npz", "params_1_of_2.npz"]
