"""The spread of results over seeds: mean and Student-t confidence interval."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradtransforms.validation import check_fraction, check_int, check_positive_int

__all__ = ["mean_ci", "student_t_quantile"]


def _two_sided_cdf(t: float, df: int) -> float:
    """$P(|T| \\le t)$ for Student's $T$ with integer `df` (A&S 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + ...))
        term, total = 1.0, 0.0
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return 2 / math.pi * (theta + s * math.cos(theta) * total)
    term, total = 1.0, 0.0  # even: sin (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ...)
    for k in range(1, df // 2 + 1):
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return s * total


def student_t_quantile(confidence: float, df: int) -> float:
    """$t$ with $P(|T| \\le t) =$ `confidence` for Student's $T$ on `df` degrees.

    The half-width factor of a two-sided confidence interval, e.g. 2.776 for
    95% and 4 degrees of freedom. The distribution function is the exact
    finite series for integer degrees of freedom (Abramowitz & Stegun
    26.7.3-4), inverted by bisection to double precision.
    """
    check_positive_int("df", df)
    check_fraction("confidence", confidence)
    low, high = 0.0, 1.0
    while _two_sided_cdf(high, df) < confidence:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _two_sided_cdf(mid, df) < confidence:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * high:
            break
    return 0.5 * (low + high)


def mean_ci(
    values: Any, axis: int = -1, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over `axis` and the half-width of its Student-t confidence interval.

    For $k$ results $x_1, \\dots, x_k$ (one per seed) the interval is
    $\\bar x \\pm t_{k-1}\\, s / \\sqrt k$, with $s$ the sample standard
    deviation (divisor $k - 1$) and $t_{k-1}$ the two-sided `confidence`
    quantile of Student's $t$ on $k - 1$ degrees of freedom. A NaN result
    makes its mean and interval NaN.

    Args:
      values: the results, the repeats along `axis` (at least 2 of them).
      axis: the repeats' axis.
      confidence: the interval's coverage, in (0, 1).

    Returns:
      `(mean, half_width)`, arrays with `axis` removed.

    Examples:
      >>> import gradtransforms as gt
      >>> mean, half = gt.tuning.mean_ci([0.90, 0.92, 0.91, 0.93, 0.89])
      >>> round(float(mean), 3), round(float(half), 4)
      (0.91, 0.0196)
    """
    check_int("axis", axis)
    x = np.asarray(values, np.float64)
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for values of shape {x.shape}.")
    k = x.shape[axis]
    if k < 2:
        raise ValueError(
            f"a confidence interval needs at least 2 repeats along axis {axis}; "
            f"got {k}."
        )
    t = student_t_quantile(confidence, k - 1)
    return x.mean(axis), t * x.std(axis, ddof=1) / math.sqrt(k)
