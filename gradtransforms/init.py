"""Parameter initialisation (textbook §8.4): initialisers, gains, data-driven scaling.

Every initialiser has the `jax.nn.initializers` signature
`init(key, shape, dtype=jnp.float32)` and Flax's kernel layout: a dense kernel
is `(in, out)`, a convolution kernel `(..., in, out)`. The fan-in of a kernel is
$m$ = `prod(shape[:-1])` (input features times the receptive field), its fan-out
$n$ = `prod(shape[:-2]) * shape[-1]`.

The methods `jax.nn.initializers` already has are re-exported, args checked:
`glorot_uniform` ($U(-\\sqrt{6/(m+n)}, \\sqrt{6/(m+n)})$, variance $2/(m+n)$),
`glorot_normal`, `he_uniform`, `he_normal` (standard deviation $\\sqrt{2/m}$),
`lecun_uniform`, `lecun_normal`, `variance_scaling`, `zeros`, `ones`, `normal`,
`uniform`, `constant`, `truncated_normal`, `delta_orthogonal` and the
`xavier_*`/`kaiming_*` aliases. Note that jax's `*_normal` initialisers draw from
a normal truncated at two standard deviations and rescaled so that the variance
is still the nominal one ($2/m$ for He); use `variance_scaling(2.0, "fan_in",
"normal")` for an untruncated Gaussian.

Added here: `fan_in_uniform` and `fan_in_bias_uniform` (from
`gradtransforms.fan_in`: with both, PyTorch's default Linear/Conv
initialisation), `sparse` (Martens, 2010), `orthogonal` with a gain given as a
number or a nonlinearity's name (Saxe et al., 2013), `calculate_gain`,
`output_bias_from_marginals`, and `lsuv`, the data-driven layer-sequential
unit-variance scaling of Mishkin & Matas (2015).

Examples:
  >>> import jax
  >>> import gradtransforms.init as gi
  >>> w = gi.orthogonal("relu")(jax.random.key(0), (64, 32))
  >>> w.shape
  (64, 32)
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn.initializers import Initializer, ones, zeros

from gradtransforms.fan_in import fan_in_bias_uniform, fan_in_uniform
from gradtransforms.nnx import LSUVLayer, lsuv
from gradtransforms.validation import (
    check_choice,
    check_finite,
    check_float_dtype,
    check_fraction,
    check_int,
    check_non_negative,
    check_positive,
    check_positive_int,
)

__all__ = [
    "Initializer",
    "LSUVLayer",
    "calculate_gain",
    "constant",
    "delta_orthogonal",
    "fan_in_bias_uniform",
    "fan_in_uniform",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "lsuv",
    "normal",
    "ones",
    "orthogonal",
    "output_bias_from_marginals",
    "sparse",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]


def _checked(fn: Any, *whole: Any, **checks: Any) -> Any:
    """`fn`, checking each argument given (`check(name, value)`), then all."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments  # defaults are valid
        for name in checks.keys() & given.keys():
            checks[name](name, given[name])
        for check in whole:
            check(**given)
        return fn(*args, **kwargs)

    return checked


def _axes(name: str, value: Any) -> None:
    for axis in value if isinstance(value, tuple | list) else [value]:
        check_int(name, axis)


def _bounds(lower: Any = -2.0, upper: Any = 2.0, **_: Any) -> None:
    if not np.all(np.asarray(lower) < np.asarray(upper)):
        raise ValueError(f"lower ({lower!r}) must be below upper ({upper!r}).")


_jax = jax.nn.initializers  # its initialisers, re-exported with checks
_one_of = lambda *choices: lambda name, v: check_choice(name, v, choices)
_dtype = functools.partial(check_float_dtype, optional=True, inexact=True)
_FAN = dict(in_axis=_axes, out_axis=_axes, batch_axis=_axes, dtype=_dtype)
glorot_normal = xavier_normal = _checked(_jax.glorot_normal, **_FAN)
glorot_uniform = xavier_uniform = _checked(_jax.glorot_uniform, **_FAN)
he_normal = kaiming_normal = _checked(_jax.he_normal, **_FAN)
he_uniform = kaiming_uniform = _checked(_jax.he_uniform, **_FAN)
lecun_normal = _checked(_jax.lecun_normal, **_FAN)
lecun_uniform = _checked(_jax.lecun_uniform, **_FAN)
_SCALING = dict(mode=_one_of("fan_in", "fan_out", "fan_avg", "fan_geo_avg"), **_FAN)
_SCALING |= dict(distribution=_one_of("truncated_normal", "normal", "uniform"))
variance_scaling = _checked(_jax.variance_scaling, scale=check_positive, **_SCALING)
normal = _checked(_jax.normal, stddev=check_non_negative, dtype=_dtype)
uniform = _checked(_jax.uniform, scale=check_non_negative, dtype=_dtype)
constant = _checked(_jax.constant, value=check_finite, dtype=_dtype)
_TRUNCATED = dict(stddev=check_non_negative, lower=check_finite, upper=check_finite)
truncated_normal = _checked(_jax.truncated_normal, _bounds, dtype=_dtype, **_TRUNCATED)
_ORTHOGONAL = dict(scale=check_non_negative, column_axis=check_int, dtype=_dtype)
delta_orthogonal = _checked(_jax.delta_orthogonal, **_ORTHOGONAL)


def _kernel_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            "shape must have at least 2 dimensions, (..., in, out), to define a "
            f"fan-in; got {shape!r}."
        )
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0:
            raise ValueError(f"shape must hold non-negative ints; got {shape!r}.")
    return shape


def sparse(
    num_nonzero: int, stddev: float = 1.0, dtype: Any = jnp.float32
) -> Initializer:
    """Sparse initialiser (Martens, 2010): exactly k Gaussian weights into each unit.

    For a kernel of shape `(..., in, out)` every output unit $j$ (every column of
    the kernel reshaped to `(m, out)`, $m$ the fan-in) gets exactly
    $k$ = `num_nonzero` non-zero incoming weights at distinct positions chosen
    uniformly at random, each drawn from $N(0, \\sigma^2)$; the other $m - k$
    incoming weights are 0. Each unit's pre-activation variance is then
    $k \\sigma^2$ times the input variance, independent of the layer width.

    This is the textbook's scheme, counted per *output* unit. PyTorch's
    `torch.nn.init.sparse_` instead zeroes a fraction of the entries of each
    column of its `(out, in)` weight, i.e. counts per *input* unit.

    Args:
      num_nonzero: $k \\ge 1$, the number of non-zero incoming weights per unit
        (Martens used 15); must not exceed the fan-in.
      stddev: $\\sigma > 0$ of the non-zero weights (Martens used 1).
      dtype: default dtype of the weights.

    Returns:
      An initialiser `init(key, shape, dtype=dtype)`.

    Examples:
      >>> import jax
      >>> w = sparse(3)(jax.random.key(0), (20, 5))
      >>> [int(c) for c in (w != 0).sum(axis=0)]
      [3, 3, 3, 3, 3]
    """
    check_positive_int("num_nonzero", num_nonzero)
    check_positive("stddev", stddev)
    check_float_dtype("dtype", dtype)

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = dtype,
        out_sharding: Any = None,
    ) -> jax.Array:
        if out_sharding is not None:
            raise NotImplementedError("sparse does not support out_sharding.")
        dtype = jnp.float32 if dtype is None else dtype
        check_float_dtype("dtype", dtype)
        shape = _kernel_shape(shape)
        fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
        if num_nonzero > fan_in:
            raise ValueError(
                f"num_nonzero must not exceed the fan-in {fan_in} of shape "
                f"{shape!r}; got {num_nonzero}."
            )
        w = _sparse_matrix(key, fan_in, fan_out, num_nonzero, float(stddev), dtype)
        return w.reshape(shape)

    return init


@jax.jit(static_argnums=(1, 2, 3, 4, 5))
def _sparse_matrix(
    key: jax.Array, fan_in: int, fan_out: int, k: int, stddev: float, dtype: Any
) -> jax.Array:
    key_pos, key_val = jax.random.split(key)
    # Each column's ranks are a uniformly random permutation of 0..m-1; the
    # positions with rank < k hold its k non-zero incoming weights.
    order = jnp.argsort(jax.random.uniform(key_pos, (fan_in, fan_out)), axis=0)
    ranks = jnp.argsort(order, axis=0)
    values = stddev * jax.random.normal(key_val, (fan_in, fan_out), dtype)
    return jnp.where(ranks < k, values, jnp.zeros((), dtype))


# Gains for `calculate_gain`; see its docstring for the sources.
_GELU_GAIN = 1.0 / math.sqrt(1.0 / 3.0 + 1.0 / (2.0 * math.pi * math.sqrt(3.0)))
_GAINS: dict[str, float] = {
    "linear": 1.0,
    "identity": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
    "gelu": _GELU_GAIN,
}
_NONLINEARITIES = (*_GAINS, "leaky_relu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain $g$ of a nonlinearity, to scale a unit-variance initialiser.

    A layer $h = f(W^\\top x)$ keeps its pre-activation variance from layer to
    layer when $\\mathrm{Var}(W_{ij}) = g^2 / m$ with
    $g^2 = 1 / \\mathbb{E}[f(z)^2]$, $z \\sim N(0, 1)$ (He et al., 2015: the
    variance of a sum of $m$ products of zero-mean weights and activations is
    $m \\mathrm{Var}(W) \\mathbb{E}[f(z)^2]$). The values, and where they come
    from:

    | nonlinearity | $g$ | source |
    |---|---|---|
    | `linear`, `identity` | 1 | $f(z) = z$ |
    | `sigmoid` | 1 | PyTorch's table (convention) |
    | `tanh` | 5/3 | PyTorch's table (empirical; the formula gives 1.593) |
    | `relu` | $\\sqrt{2}$ | $\\mathbb{E}[\\max(z,0)^2] = 1/2$ (He et al., 2015) |
    | `leaky_relu` | $\\sqrt{2/(1+a^2)}$ | $\\mathbb{E}[f(z)^2] = (1+a^2)/2$ |
    | `selu` | 3/4 | PyTorch's table |
    | `gelu` | 1.5335 | derived below |

    GELU, $f(z) = z\\Phi(z)$, is not in PyTorch's table; the gain follows from
    the same definition. By Stein's lemma
    $\\mathbb{E}[z^2\\Phi(z)^2] = \\mathbb{E}[\\Phi(z)^2] + 2\\mathbb{E}[z\\Phi(z)
    \\varphi(z)] = 1/3 + 1/(2\\pi\\sqrt{3}) \\approx 0.42522$, so
    $g = 1/\\sqrt{1/3 + 1/(2\\pi\\sqrt3)} \\approx 1.5335$. GELU is not
    homogeneous, so this gain is exact for unit pre-activation variance only.
    (Some code uses $\\sqrt2$, treating GELU as ReLU; that overshoots by 8%.)

    For self-normalising networks (Klambauer et al., 2017) use `"linear"` with
    `lecun_normal`, not the `selu` gain.

    Args:
      nonlinearity: one of `linear`, `identity`, `sigmoid`, `tanh`, `relu`,
        `leaky_relu`, `selu`, `gelu`.
      param: the negative slope $a$ of `leaky_relu` (default 0.01); must be
        `None` for every other nonlinearity.

    Returns:
      The gain $g$ as a Python float.
    """
    if not isinstance(nonlinearity, str):
        raise TypeError(f"nonlinearity must be a str; got {nonlinearity!r}.")
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        try:
            check_finite("param (the leaky_relu negative slope)", slope, concrete=True)
        except ValueError as error:  # a TypeError, as before: not a usable slope
            raise TypeError(str(error)) from None
        return math.sqrt(2.0) / math.hypot(1.0, float(slope))  # no overflow
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"nonlinearity must be one of {', '.join(_NONLINEARITIES)}; "
            f"got {nonlinearity!r}."
        )
    if param is not None:
        raise ValueError(
            f"param is only used by leaky_relu; got param={param!r} for "
            f"{nonlinearity!r}."
        )
    return _GAINS[nonlinearity]


def orthogonal(
    gain: float | str = 1.0, column_axis: int = -1, dtype: Any = jnp.float32
) -> Initializer:
    """Orthogonal initialiser with a gain (Saxe et al., 2013): $W = g Q$.

    $Q$ is drawn uniformly (Haar) from the matrices with orthonormal columns
    when the kernel, reshaped to `(m, n)`, has $m \\ge n$ (then
    $W^\\top W = g^2 I_n$), or orthonormal rows when $m < n$
    ($W W^\\top = g^2 I_m$). The sampling is `jax.nn.initializers.orthogonal`.

    Args:
      gain: $g > 0$, or the name of a nonlinearity whose `calculate_gain` to use
        (`"relu"` gives $\\sqrt2$). For a `leaky_relu` slope other than 0.01 pass
        `calculate_gain("leaky_relu", slope)`.
      column_axis: the axis holding the columns (the output units); -1 for
        Flax's `(in, out)` kernels.
      dtype: default dtype of the weights.

    Returns:
      An initialiser `init(key, shape, dtype=dtype)`.
    """
    if isinstance(gain, str):
        check_choice("gain (a nonlinearity)", gain, _NONLINEARITIES)
    g = calculate_gain(gain) if isinstance(gain, str) else gain
    check_fraction("gain", g, 0.0, math.inf, concrete=True)
    check_float_dtype("dtype", dtype)
    check_int("column_axis", column_axis)
    return jax.nn.initializers.orthogonal(
        scale=float(g), column_axis=column_axis, dtype=dtype
    )


def output_bias_from_marginals(
    class_frequencies: Any, dtype: Any = jnp.float32
) -> jax.Array:
    """Output-layer bias whose softmax is the class marginals, $b = \\log c$ + const.

    With zero weights the network then predicts the training marginals
    (textbook §8.4): $\\mathrm{softmax}(b)_i = c_i / \\sum_j c_j = c_i$.
    Frequencies are normalised to sum to 1 first, so counts work too; the
    softmax is invariant to adding a constant, and the returned bias has mean
    0: $b_i = \\log c_i - \\frac{1}{K} \\sum_j \\log c_j$.

    Use it as Flax's `bias_init=constant(b)` or assign it to the bias.

    Args:
      class_frequencies: $K \\ge 1$ positive, finite class frequencies or counts
        (a 1-D sequence or array of concrete numbers).
      dtype: dtype of the result (floating).

    Returns:
      The bias $b$, shape `(K,)`.

    Examples:
      >>> import jax
      >>> b = output_bias_from_marginals([30, 60, 10])
      >>> [round(float(p), 3) for p in jax.nn.softmax(b)]
      [0.3, 0.6, 0.1]
    """
    check_float_dtype("dtype", dtype)
    try:
        c = np.asarray(class_frequencies)
    except (TypeError, ValueError) as e:
        msg = "must be a 1-D array of concrete numbers (not traced)"
        raise TypeError(f"class_frequencies {msg}; got {class_frequencies!r}.") from e
    given = np.asarray(class_frequencies, dtype=object).ravel()  # bools stay bools
    if c.dtype.kind not in "iuf" or any(isinstance(x, bool | np.bool_) for x in given):
        raise TypeError(
            f"class_frequencies must be a 1-D array of numbers; got dtype {c.dtype}."
        )
    if c.ndim != 1 or c.size == 0:
        raise ValueError(
            f"class_frequencies must be a non-empty 1-D array; got shape {c.shape}."
        )
    c = c.astype(np.float64)
    if not np.all(np.isfinite(c)) or not np.all(c > 0):
        raise ValueError(
            f"class_frequencies must all be finite and > 0; got {class_frequencies!r}."
        )
    log_c = np.log(c / c.sum())
    return jnp.asarray(log_c - log_c.mean(), dtype=dtype)
