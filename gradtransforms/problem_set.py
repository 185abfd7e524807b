"""The Moré–Garbow–Hillstrom test set for unconstrained minimisation.

J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained
optimization software", ACM Trans. Math. Software 7(1), 17–41 (1981),
https://doi.org/10.1145/355934.355936: its problems 1–32 and 35 (Watson
twice), each $f(x) = \\sum_{i=1}^m r_i(x)^2$ with the paper's residuals,
starting point `x0` (NumPy float64: solve in float64) and minimum value
`f_star` (6 digits); `local_minima`: the values of other minima the paper
lists (some at infinity), which a local method may reach instead; `x_star`:
a minimiser where the paper gives one exactly. `fun` takes a 1-D JAX array
and is twice differentiable. Free sizes: Jennrich–Sampson, Box $m = 10$;
Gulf $m = 99$; Brown–Dennis $m = 20$; Biggs $m = 13$; Watson $n = 6, 9$;
$n = 10$ (extended Powell 12) for the scalable ones; linear full rank
$m = 20$; Chebyquad $n = m = 8$. Gulf's "$y_i m i x_2$" is a misprint for
$y_i - x_2$. Trigonometric's local minimum $2.79506 \\cdot 10^{-5}$ is not
in the paper: local methods from $x_0$ end there for $n = 10$.

Examples:
  >>> from gradtransforms.problem_set import PROBLEMS, problem
  >>> len(PROBLEMS), problem("wood").f_star
  (34, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["PROBLEMS", "SolverProblem", "problem"]

Residuals = Callable[[jax.Array], jax.Array]


class SolverProblem(NamedTuple):
    """One test problem: $f = \\sum_i r_i^2$, its start and its known minima."""

    name: str
    fun: Callable[[jax.Array], jax.Array]
    x0: np.ndarray
    f_star: float
    local_minima: tuple[float, ...]
    source: str
    x_star: np.ndarray | None = None
    residuals: Residuals | None = None


_REGISTRY: list[tuple[int, SolverProblem]] = []
_PAPER = "Moré, Garbow & Hillstrom (1981), problem"


def _problem(
    name: str, number: int, x0: Any, f_star: float, local=(), x_star=None, note=""
) -> Callable[[Residuals], Residuals]:
    """Register the decorated residual function as problem `number` of MGH."""

    def register(residuals: Residuals) -> Residuals:
        fun = lambda x: jnp.sum(residuals(x) ** 2)
        source = f"{_PAPER} {number}" + (f"; {note}" if note else "")
        minimiser = None if x_star is None else np.asarray(x_star, np.float64)
        start = np.asarray(x0, np.float64)
        entry = (name, fun, start, f_star, tuple(local), source, minimiser, residuals)
        _REGISTRY.append((number, SolverProblem(*entry)))
        return residuals

    return register


def _c(values: Any, x: jax.Array) -> jax.Array:
    """Data as an array of `x`'s dtype."""
    return jnp.asarray(values, dtype=x.dtype)


def _index(m: int, x: jax.Array) -> jax.Array:
    """`1, 2, ..., m` in `x`'s dtype."""
    return jnp.arange(1, m + 1, dtype=x.dtype)


# The data of the data-fitting problems (the paper's tables)
_BARD_Y = [0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96]
_BARD_Y += [1.34, 2.10, 4.39]
_GAUSS_Y = [0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989]
_GAUSS_Y += _GAUSS_Y[-2::-1]  # symmetric about i = 8
_MEYER_Y = [34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030]
_MEYER_Y += [6005, 5147, 4427, 3820, 3307, 2872]
_KOWALIK_Y = [0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342]
_KOWALIK_Y += [0.0323, 0.0235, 0.0246]
_KOWALIK_U = [4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625]
# fmt: off
_OSBORNE1_Y = [
    0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751,
    0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490,
    0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406,
]
_OSBORNE2_Y = [
    1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746,
    0.679, 0.608, 0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649,
    0.694, 0.644, 0.624, 0.661, 0.612, 0.558, 0.533, 0.495, 0.500, 0.423, 0.395,
    0.375, 0.372, 0.391, 0.396, 0.405, 0.428, 0.429, 0.523, 0.562, 0.607, 0.653,
    0.672, 0.708, 0.633, 0.668, 0.645, 0.632, 0.591, 0.559, 0.597, 0.625, 0.739,
    0.710, 0.729, 0.720, 0.636, 0.581, 0.428, 0.292, 0.162, 0.098, 0.054,
]
# fmt: on


# Problems 1-19: fixed dimensions


@_problem("freudenstein_roth", 2, (0.5, -2.0), 0.0, local=(48.9842,), x_star=(5.0, 4.0),
          note="local minimum 48.9842 at (11.41..., -0.8968...)")  # fmt: skip
def _freudenstein_roth(x):
    """$r_1 = -13 + x_1 + ((5 - x_2)x_2 - 2)x_2$, $r_2 = -29 + x_1 + ((x_2 + 1)x_2 - 14)x_2$."""  # noqa: E501
    a, b = x[0], x[1]
    return jnp.stack([a - 13 + ((5 - b) * b - 2) * b, a - 29 + ((b + 1) * b - 14) * b])


@_problem("powell_badly_scaled", 3, (0.0, 1.0), 0.0, note="x* = (1.098e-5, 9.106)")
def _powell_badly_scaled(x):
    """$r = (10^4 x_1 x_2 - 1,\\ e^{-x_1} + e^{-x_2} - 1.0001)$."""
    return jnp.stack([1e4 * x[0] * x[1] - 1, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])


@_problem("brown_badly_scaled", 4, (1.0, 1.0), 0.0, x_star=(1e6, 2e-6))
def _brown_badly_scaled(x):
    """$r = (x_1 - 10^6,\\ x_2 - 2 \\cdot 10^{-6},\\ x_1 x_2 - 2)$."""
    return jnp.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2])


@_problem("beale", 5, (1.0, 1.0), 0.0, x_star=(3.0, 0.5))
def _beale(x):
    """$r_i = y_i - x_1(1 - x_2^i)$, $y = (1.5, 2.25, 2.625)$."""
    return _c([1.5, 2.25, 2.625], x) - x[0] * (1 - x[1] ** _index(3, x))


@_problem("jennrich_sampson", 6, (0.3, 0.4), 124.362, note="m = 10; x* = 0.2578 (both)")
def _jennrich_sampson(x):
    """$r_i = 2 + 2i - (e^{i x_1} + e^{i x_2})$, $i = 1..10$."""
    i = _index(10, x)
    return 2 + 2 * i - (jnp.exp(i * x[0]) + jnp.exp(i * x[1]))


@_problem("helical_valley", 7, (-1.0, 0.0, 0.0), 0.0, x_star=(1.0, 0.0, 0.0))
def _helical_valley(x):
    """$r = (10(x_3 - 10\\theta), 10(\\sqrt{x_1^2 + x_2^2} - 1), x_3)$, $2\\pi\\theta = \\arctan(x_2/x_1) + (\\pi \\text{ if } x_1 < 0)$."""  # noqa: E501
    theta = jnp.arctan(x[1] / x[0]) / (2 * math.pi) + jnp.where(x[0] < 0, 0.5, 0.0)
    radius = jnp.sqrt(x[0] ** 2 + x[1] ** 2)
    return jnp.stack([10 * (x[2] - 10 * theta), 10 * (radius - 1), x[2]])


@_problem("bard", 8, (1.0, 1.0, 1.0), 8.21487e-3, local=(17.4286,),
          note="local minimum 17.4286 at (0.8406..., -inf, -inf)")  # fmt: skip
def _bard(x):
    """$r_i = y_i - (x_1 + u_i / (v_i x_2 + w_i x_3))$, $u_i = i$, $v_i = 16 - i$, $w_i = \\min(u_i, v_i)$."""  # noqa: E501
    u = _index(15, x)
    v = 16 - u
    return _c(_BARD_Y, x) - (x[0] + u / (v * x[1] + jnp.minimum(u, v) * x[2]))


@_problem("gaussian", 9, (0.4, 1.0, 0.0), 1.12793e-8)
def _gaussian(x):
    """$r_i = x_1 \\exp(-x_2 (t_i - x_3)^2 / 2) - y_i$, $t_i = (8 - i)/2$."""
    t = (8 - _index(15, x)) / 2
    return x[0] * jnp.exp(-x[1] * (t - x[2]) ** 2 / 2) - _c(_GAUSS_Y, x)


@_problem("meyer", 10, (0.02, 4000.0, 250.0), 87.9458)
def _meyer(x):
    """$r_i = x_1 \\exp(x_2 / (t_i + x_3)) - y_i$, $t_i = 45 + 5i$."""
    t = 45 + 5 * _index(16, x)
    return x[0] * jnp.exp(x[1] / (t + x[2])) - _c(_MEYER_Y, x)


@_problem("gulf", 11, (5.0, 2.5, 0.15), 0.0, x_star=(50.0, 25.0, 1.5), note="m = 99")
def _gulf(x):
    """$r_i = \\exp(-|y_i - x_2|^{x_3} / x_1) - t_i$, $t_i = i/100$, $y_i = 25 + (-50 \\ln t_i)^{2/3}$."""  # noqa: E501
    t = np.arange(1, 100) / 100
    y = _c(25 + (-50 * np.log(t)) ** (2 / 3), x)
    return jnp.exp(-(jnp.abs(y - x[1]) ** x[2]) / x[0]) - _c(t, x)


@_problem("box_3d", 12, (0.0, 10.0, 20.0), 0.0, x_star=(1.0, 10.0, 1.0), note="m = 10")
def _box_3d(x):
    """$r_i = e^{-t_i x_1} - e^{-t_i x_2} - x_3 (e^{-t_i} - e^{-10 t_i})$, $t_i = i/10$."""  # noqa: E501
    t = _index(10, x) / 10
    e = jnp.exp
    return e(-t * x[0]) - e(-t * x[1]) - x[2] * (e(-t) - e(-10 * t))


@_problem("wood", 14, (-3.0, -1.0, -3.0, -1.0), 0.0, x_star=(1.0,) * 4)
def _wood(x):
    """Rosenbrock in $(x_1, x_2)$ and in $(x_3, x_4)$ (weight 90), coupled."""
    first = [10 * (x[1] - x[0] ** 2), 1 - x[0]]
    second = [math.sqrt(90) * (x[3] - x[2] ** 2), 1 - x[2]]
    coupling = [math.sqrt(10) * (x[1] + x[3] - 2), (x[1] - x[3]) / math.sqrt(10)]
    return jnp.stack(first + second + coupling)


@_problem("kowalik_osborne", 15, (0.25, 0.39, 0.415, 0.39), 3.07505e-4,
          local=(1.02734e-3,), note="local minimum 1.02734e-3 at (+inf, -14.07..., -inf, -inf)")  # fmt: skip  # noqa: E501
def _kowalik_osborne(x):
    """$r_i = y_i - x_1 (u_i^2 + u_i x_2) / (u_i^2 + u_i x_3 + x_4)$."""
    u = _c(_KOWALIK_U, x)
    return _c(_KOWALIK_Y, x) - x[0] * (u**2 + u * x[1]) / (u**2 + u * x[2] + x[3])


@_problem("brown_dennis", 16, (25.0, 5.0, -5.0, -1.0), 85822.2, note="m = 20")
def _brown_dennis(x):
    """$r_i = (x_1 + t_i x_2 - e^{t_i})^2 + (x_3 + x_4 \\sin t_i - \\cos t_i)^2$, $t_i = i/5$."""  # noqa: E501
    t = _index(20, x) / 5
    a = x[0] + t * x[1] - jnp.exp(t)
    b = x[2] + x[3] * jnp.sin(t) - jnp.cos(t)
    return a**2 + b**2


@_problem("osborne_1", 17, (0.5, 1.5, -1.0, 0.01, 0.02), 5.46489e-5)
def _osborne_1(x):
    """$r_i = y_i - (x_1 + x_2 e^{-t_i x_4} + x_3 e^{-t_i x_5})$, $t_i = 10(i - 1)$."""
    t = 10 * (_index(33, x) - 1)
    model = x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4])
    return _c(_OSBORNE1_Y, x) - model


@_problem("biggs_exp6", 18, (1.0, 2.0, 1.0, 1.0, 1.0, 1.0), 0.0, local=(5.65565e-3,),
          x_star=(1.0, 10.0, 1.0, 5.0, 4.0, 3.0), note="m = 13")  # fmt: skip
def _biggs_exp6(x):
    """$r_i = x_3 e^{-t_i x_1} - x_4 e^{-t_i x_2} + x_6 e^{-t_i x_5} - y_i$, $t_i = i/10$."""  # noqa: E501
    t = _index(13, x) / 10
    y = jnp.exp(-t) - 5 * jnp.exp(-10 * t) + 3 * jnp.exp(-4 * t)
    e = jnp.exp
    return x[2] * e(-t * x[0]) - x[3] * e(-t * x[1]) + x[5] * e(-t * x[4]) - y


@_problem("osborne_2", 19, (1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5),
          4.01377e-2)  # fmt: skip
def _osborne_2(x):
    """$r_i = y_i - (x_1 e^{-t_i x_5} + \\sum_{k=2}^4 x_k e^{-(t_i - x_{k+7})^2 x_{k+4}})$, $t_i = (i - 1)/10$."""  # noqa: E501
    t = (_index(65, x) - 1) / 10
    model = x[0] * jnp.exp(-t * x[4])
    for k in (1, 2, 3):
        model = model + x[k] * jnp.exp(-((t - x[k + 7]) ** 2) * x[k + 4])
    return _c(_OSBORNE2_Y, x) - model


# Problems 20-35: the dimension n is x's length


def _watson(x):
    """$r_i = \\sum_{j \\ge 2} (j-1) x_j t_i^{j-2} - (\\sum_j x_j t_i^{j-1})^2 - 1$, $t_i = i/29$; $r_{30} = x_1$, $r_{31} = x_2 - x_1^2 - 1$."""  # noqa: E501
    n = x.shape[0]
    k = np.arange(n)
    powers = _c((np.arange(1, 30) / 29)[:, None] ** k[None, :], x)  # t_i^k
    slope = powers[:, : n - 1] @ (_c(k[1:], x) * x[1:])
    ends = jnp.stack([x[0], x[1] - x[0] ** 2 - 1])
    return jnp.concatenate([slope - (powers @ x) ** 2 - 1, ends])


_problem("watson_6", 20, np.zeros(6), 2.28767e-3)(_watson)
_problem("watson_9", 20, np.zeros(9), 1.39976e-6)(_watson)


@_problem("extended_rosenbrock_10", 21, [-1.2, 1.0] * 5, 0.0, x_star=np.ones(10))
def _extended_rosenbrock(x):
    """$r_{2i-1} = 10(x_{2i} - x_{2i-1}^2)$, $r_{2i} = 1 - x_{2i-1}$ (Rosenbrock: $n = 2$)."""  # noqa: E501
    odd, even = x[0::2], x[1::2]
    return jnp.stack([10 * (even - odd**2), 1 - odd], axis=1).ravel()


_problem("rosenbrock", 1, (-1.2, 1.0), 0.0, x_star=(1.0, 1.0))(_extended_rosenbrock)


@_problem("extended_powell_12", 22, [3.0, -1.0, 0.0, 1.0] * 3, 0.0, x_star=np.zeros(12))
def _extended_powell(x):
    """$(x_1 + 10x_2, \\sqrt5 (x_3 - x_4), (x_2 - 2x_3)^2, \\sqrt{10} (x_1 - x_4)^2)$ per quadruple."""  # noqa: E501
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    parts = [a + 10 * b, math.sqrt(5) * (c - d), (b - 2 * c) ** 2]
    return jnp.stack([*parts, math.sqrt(10) * (a - d) ** 2], axis=1).ravel()


_problem("powell_singular", 13, (3.0, -1.0, 0.0, 1.0), 0.0, x_star=np.zeros(4))(
    _extended_powell
)


@_problem("penalty_1_10", 23, np.arange(1.0, 11.0), 7.08765e-5)
def _penalty_1(x):
    """$r_i = \\sqrt{a}(x_i - 1)$, $r_{n+1} = \\sum_j x_j^2 - 1/4$, $a = 10^{-5}$."""
    return jnp.concatenate([math.sqrt(1e-5) * (x - 1), (jnp.sum(x**2) - 0.25)[None]])


@_problem("penalty_2_10", 24, np.full(10, 0.5), 2.93660e-4)
def _penalty_2(x):
    """The paper's penalty II: $2n$ residuals, $a = 10^{-5}$."""
    n, s = x.shape[0], math.sqrt(1e-5)
    i = _index(n, x)
    e, y = jnp.exp(x / 10), jnp.exp(i / 10) + jnp.exp((i - 1) / 10)
    middle = [s * (e[1:] + e[:-1] - y[1:]), s * (e[1:] - math.exp(-0.1))]
    last = jnp.sum((n + 1 - i) * x**2) - 1
    return jnp.concatenate([(x[0] - 0.2)[None], *middle, last[None]])


@_problem("variably_dimensioned_10", 25, 1 - np.arange(1, 11) / 10, 0.0,
          x_star=np.ones(10))  # fmt: skip
def _variably_dimensioned(x):
    """$r_i = x_i - 1$, $r_{n+1} = s$, $r_{n+2} = s^2$, $s = \\sum_j j(x_j - 1)$."""
    s = jnp.sum(_index(x.shape[0], x) * (x - 1))
    return jnp.concatenate([x - 1, jnp.stack([s, s**2])])


@_problem("trigonometric_10", 26, np.full(10, 0.1), 0.0, local=(2.79506e-5,),
          note="local minimum 2.79506e-5: not in the paper, found by local methods")  # fmt: skip  # noqa: E501
def _trigonometric(x):
    """$r_i = n - \\sum_j \\cos x_j + i(1 - \\cos x_i) - \\sin x_i$."""
    n = x.shape[0]
    return n - jnp.sum(jnp.cos(x)) + _index(n, x) * (1 - jnp.cos(x)) - jnp.sin(x)


@_problem("brown_almost_linear_10", 27, np.full(10, 0.5), 0.0, local=(1.0,),
          x_star=np.ones(10), note="local minimum 1 at (0, ..., 0, n + 1)")  # fmt: skip
def _brown_almost_linear(x):
    """$r_i = x_i + \\sum_j x_j - (n + 1)$ for $i < n$, $r_n = \\prod_j x_j - 1$."""
    head = x[:-1] + jnp.sum(x) - (x.shape[0] + 1)
    return jnp.concatenate([head, (jnp.prod(x) - 1)[None]])


_GRID = np.arange(1, 11) / 11  # t_i = i/(n + 1), n = 10: the x0 of problems 28, 29


@_problem("discrete_boundary_value_10", 28, _GRID * (_GRID - 1), 0.0)
def _discrete_boundary_value(x):
    """$r_i = 2x_i - x_{i-1} - x_{i+1} + h^2 (x_i + t_i + 1)^3 / 2$, $x_0 = x_{n+1} = 0$."""  # noqa: E501
    h = 1 / (x.shape[0] + 1)
    t = _index(x.shape[0], x) * h
    padded = jnp.pad(x, 1)
    return 2 * x - padded[:-2] - padded[2:] + h**2 * (x + t + 1) ** 3 / 2


@_problem("discrete_integral_equation_10", 29, _GRID * (_GRID - 1), 0.0)
def _discrete_integral_equation(x):
    """$r_i = x_i + h[(1 - t_i) \\sum_{j \\le i} t_j c_j + t_i \\sum_{j > i} (1 - t_j) c_j] / 2$, $c_j = (x_j + t_j + 1)^3$."""  # noqa: E501
    h = 1 / (x.shape[0] + 1)
    t = _index(x.shape[0], x) * h
    c = (x + t + 1) ** 3
    below = jnp.cumsum(t * c)
    above = jnp.sum((1 - t) * c) - jnp.cumsum((1 - t) * c)
    return x + h * ((1 - t) * below + t * above) / 2


@_problem("broyden_tridiagonal_10", 30, np.full(10, -1.0), 0.0)
def _broyden_tridiagonal(x):
    """$r_i = (3 - 2x_i) x_i - x_{i-1} - 2x_{i+1} + 1$, $x_0 = x_{n+1} = 0$."""
    padded = jnp.pad(x, 1)
    return (3 - 2 * x) * x - padded[:-2] - 2 * padded[2:] + 1


@_problem("broyden_banded_10", 31, np.full(10, -1.0), 0.0)
def _broyden_banded(x):
    """$r_i = x_i(2 + 5x_i^2) + 1 - \\sum_{j \\in J_i} x_j (1 + x_j)$, $J_i = \\{j \\ne i: i - 5 \\le j \\le i + 1\\}$."""  # noqa: E501
    n = x.shape[0]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    band = _c((j != i) & (j >= i - 5) & (j <= i + 1), x)
    return x * (2 + 5 * x**2) + 1 - band @ (x * (1 + x))


@_problem("linear_full_rank_10", 32, np.ones(10), 10.0, x_star=-np.ones(10),
          note="m = 20; f* = m - n")  # fmt: skip
def _linear_full_rank(x):
    """$r_i = x_i - 2s/m - 1$ ($i \\le n$), $r_i = -2s/m - 1$ ($i > n$), $s = \\sum_j x_j$, $m = 2n$."""  # noqa: E501
    n = x.shape[0]
    shift = 2 * jnp.sum(x) / (2 * n) + 1
    return jnp.concatenate([x - shift, jnp.broadcast_to(-shift, (n,))])


@_problem("chebyquad_8", 35, np.arange(1, 9) / 9, 3.51687e-3, note="m = n = 8")
def _chebyquad(x):
    """$r_i = \\frac1n \\sum_j T_i(x_j) - \\int_0^1 T_i$, $T_i$: Chebyshev on [0, 1]."""
    n = x.shape[0]
    y = 2 * x - 1
    previous, current = jnp.ones_like(x), y
    out = []
    for i in range(1, n + 1):
        integral = -1 / (i**2 - 1) if i % 2 == 0 else 0.0
        out.append(jnp.mean(current) - integral)
        previous, current = current, 2 * y * current - previous
    return jnp.stack(out)


PROBLEMS: tuple[SolverProblem, ...] = tuple(p for _, p in sorted(_REGISTRY))


def problem(name: str) -> SolverProblem:
    """The problem of `PROBLEMS` called `name` (e.g. `"osborne_2"`)."""
    found = [p for p in PROBLEMS if p.name == name]
    if found:
        return found[0]
    raise KeyError(f"no problem {name!r}; known: {[p.name for p in PROBLEMS]}")
