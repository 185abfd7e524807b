"""Running Python in a subprocess from the repository root, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(args, *, xla_flags, timeout):
    """`python <args>` from the repository root, on the CPU, output captured.

    `xla_flags` replaces `XLA_FLAGS` in the environment (`None` removes it);
    the repository root is on `PYTHONPATH`.
    """
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
