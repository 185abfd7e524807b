"""examples/sharded_training.py: data parallel and FSDP match one device."""

from __future__ import annotations

import pytest

from tests.subprocesses import run_python


@pytest.mark.slow
def test_sharded_training_example_matches_one_device():
    """`examples/sharded_training.py`, 1 epoch: DP and FSDP match one device."""
    args = ["-m", "examples.sharded_training", "--epochs", "1"]
    proc = run_python(args, xla_flags="", timeout=180)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "8 CPU devices" in proc.stdout
    assert "runs match the single-device run" in proc.stdout
