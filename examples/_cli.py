"""Command-line plumbing shared by the examples: one-line errors, exit status 2."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable


class UsageError(Exception):
    """Bad command-line input: the example reports it in one line and exits 2."""


def exit_status(prog: str, body: Callable[[], object]) -> int:
    """Run `body`; 0 when it returns, 2 with a one-line error on `UsageError`."""
    try:
        body()
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that raises `UsageError` instead of printing usage."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (a learning rate, a scale)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value
