"""What the benchmarks share: how they time, and how they describe the machine.

* `timed` and `time_calls`: the wall time of one call (a first call that
  compiles, say) and of repeated calls;
* `time_in_turn`, `median_min_max` and `paired_ratio`: several
  implementations of one step timed in turn, so that background load hits
  them alike, and their ratios from timings taken back to back;
* `machine_description`: the CPU, the backend, the package versions and the
  load average, the first line of every benchmark's report.

The timers wait for nothing: a function that returns JAX arrays must block on
them (`jax.block_until_ready`) for its time to be the time of its work.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`(fn(), seconds it took)`."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def time_calls(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """The seconds of each of `runs` calls of `fn`, and what the last returned."""
    times, result = [], None
    for _ in range(runs):
        result, seconds = timed(fn)
        times.append(seconds)
    return times, result


def time_in_turn(
    impls: Mapping[str, tuple[Callable[[], None], Callable[[], None]]],
    repeats: int,
    seconds: float = 0.2,
) -> dict[str, list[float]]:
    """Seconds per step of each implementation: `repeats` timings, taken in turn.

    Each timing is a run of consecutive steps lasting about `seconds`, after
    an untimed lead-in of a quarter as many of the same steps (against what
    ran before, another library's worker threads say, slowing the first
    steps timed); the r-th timings of all implementations are taken one
    after another, the first of them rotating from one r to the next.

    Args:
      impls: name -> `(run, block)`: `run()` starts one step, `block()` waits
        for the steps started.
      repeats: the timings per implementation.
      seconds: the length of one timing.

    Returns:
      name -> the `repeats` timings, in seconds per step.
    """
    counts = {}
    for name, (run, block) in impls.items():
        run(), block()  # warm up
        start = time.perf_counter()
        for _ in range(3):
            run()
        block()
        per_step = (time.perf_counter() - start) / 3
        counts[name] = int(min(200, max(3, seconds / max(per_step, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(repeats):
        # Rotate who goes first, so no implementation always follows another.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, block = impls[name]
            for _ in range(max(1, counts[name] // 4)):  # untimed lead-in
                run()
            block()
            start = time.perf_counter()
            for _ in range(counts[name]):
                run()
            block()
            samples[name].append((time.perf_counter() - start) / counts[name])
    return samples


def median_min_max(samples: list[float]) -> tuple[float, float, float]:
    """Median, min and max of one implementation's timings."""
    return statistics.median(samples), min(samples), max(samples)


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over timings of a / b, each pair measured back to back.

    Load that comes and goes during the run hits both members of a pair alike,
    so this is steadier than the ratio of the two medians.
    """
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def machine_description(*packages: ModuleType | str) -> str:
    """The machine, the JAX backend, the versions and the load, in one line.

    Args:
      *packages: modules, shown as `name version`, or descriptions to show as
        they are (`"torch 2.13.0 (4 threads)"`).

    Returns:
      E.g. `"x86_64, 2 CPUs, cpu backend; jax 0.10.2, numpy 2.4.6; load
      average 0.3"` (the load average over the last minute, when the system
      has one).
    """
    import jax

    versions = ", ".join(
        p if isinstance(p, str) else f"{p.__name__} {p.__version__}" for p in packages
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{jax.default_backend()} backend; {versions}; load average {load:.1f}"
    )
