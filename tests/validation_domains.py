"""The allowed domain of each argument of every public constructor (issue 18).

Written from the docstrings, the guides and DESIGN.md ("hyperparameters that
are Python numbers are validated when the optimizer is built"), not from the
checks in `gradtransforms.validation`. `tests/test_validation_fuzz.py` crosses
each domain with many kinds of values: a value outside it must be rejected
when the constructor is called, a value inside it accepted. Conventions the
docstrings leave implicit, taken from DESIGN.md and `gradtransforms.validation`:
a number may be a Python or NumPy scalar or a concrete array (checked element
by element); an int (a count, a size) is a Python or NumPy int, never a bool,
float or array, and at most 2**31 - 1, the int32 step counter, unless the
docstring says more; a flag is a bool; a dtype argument is floating.
"""

from __future__ import annotations

import ast
import math
import numbers
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

INF = math.inf
I32 = 2**31 - 1
I64 = 2**63 - 1


def _floats(v: Any, shape: str) -> list[float] | None:
    """The values of a real number or numeric array; None for anything else.

    `shape` is "any" (a number or an array of any shape), "0d" (a number or a
    0-d array) or "python" (a Python or NumPy number, or a 0-d NumPy array).
    """
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, numbers.Real):
        try:
            return [float(v)]
        except OverflowError:  # 10**400 is no float
            return None
    if not isinstance(v, np.ndarray | jax.Array) or (shape != "any" and v.ndim):
        return None
    if isinstance(v, jax.Array) and shape == "python":
        return None
    if not any(jnp.issubdtype(v.dtype, t) for t in (jnp.integer, jnp.floating)):
        return None
    return [float(x) for x in np.asarray(v, np.float64).ravel()]


class Real(NamedTuple):
    """A number in (low, high), `closed` at either end, or one of `also`."""

    low: float = -INF
    high: float = INF
    closed: tuple[bool, bool] = (False, False)
    also: tuple[float, ...] = ()
    none: bool = False  # None allowed
    schedule: bool = False  # a callable of the step count allowed
    shape: str = "any"  # see _floats
    judged: Callable[[Any], bool] = lambda v: True  # values not judged: False

    def _inside(self, x: float) -> bool:
        lo = x >= self.low if self.closed[0] else x > self.low
        hi = x <= self.high if self.closed[1] else x < self.high
        return (lo and hi) or x in self.also

    def allows(self, v: Any) -> bool | None:
        if v is None:
            return self.none
        if callable(v):  # a class (a dtype such as jnp.float32) is no schedule
            return self.schedule and not isinstance(v, type)
        if not self.judged(v):
            return None
        xs = _floats(v, self.shape)
        return xs is not None and all(self._inside(x) for x in xs)


class LearningRate(NamedTuple):
    """A number > 0 or a schedule; a JAX array may be 0, as a warm-up's start
    (`optax.inject_hyperparams` builds the optimizer with one)."""

    number: Real = Real(0.0, schedule=True)
    array: Real = Real(0.0, closed=(True, False))

    def allows(self, v: Any) -> bool | None:
        return (self.array if isinstance(v, jax.Array) else self.number).allows(v)


class Int(NamedTuple):
    """A Python or NumPy int in [low, high] (a multiple of `step`)."""

    low: int = 1
    high: int = I32
    none: bool = False
    step: int = 1

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.none
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
            return False
        return self.low <= int(v) <= self.high and int(v) % self.step == 0


class Flag(NamedTuple):
    """A bool; the values not in `judged` are not judged (None)."""

    judged: tuple[bool, ...] = (False, True)

    def allows(self, v: Any) -> bool | None:
        if not isinstance(v, bool | np.bool_):
            return False
        return True if bool(v) in self.judged else None


class Dtype(NamedTuple):
    """A floating dtype (complex too if `inexact`); None if `optional`."""

    optional: bool = True
    inexact: bool = False

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.optional
        if isinstance(v, np.ndarray | np.generic | jax.Array | numbers.Number):
            return False
        kind = jnp.inexact if self.inexact else jnp.floating
        try:
            return bool(jnp.issubdtype(jnp.dtype(v), kind))
        except (TypeError, ValueError):
            return False


class Choice(NamedTuple):
    options: tuple[str, ...]

    def allows(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.options


class Func(NamedTuple):
    """A callable: `sample` is one that fits; whether another fits (an
    initialiser's signature) shows only when it is called: not judged."""

    sample: Any = None

    def allows(self, v: Any) -> bool | None:
        if v is self.sample:
            return True
        return None if callable(v) else False


class Anything(NamedTuple):
    def allows(self, v: Any) -> bool:
        return True


class Tx(NamedTuple):
    """A gradient transformation (an object with `init` and `update`); with
    `judged=False`, whether a transformation fits (a line search) is not judged."""

    none: bool = False
    judged: bool = True

    def allows(self, v: Any) -> bool | None:
        if v is None:
            return self.none
        if not all(callable(getattr(v, f, None)) for f in ("init", "update")):
            return False
        return True if self.judged else None


class Key(NamedTuple):
    """A single PRNG key, or an int seed in [-2**63, 2**63 - 1] if `seed`."""

    seed: bool = False

    def allows(self, v: Any) -> bool:
        if self.seed and Int(-I64 - 1, I64).allows(v):
            return True
        if isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jax.dtypes.prng_key):
            return v.shape == ()
        return isinstance(v, jax.Array) and v.dtype == jnp.uint32 and v.shape == (2,)


class Either(NamedTuple):
    """Allowed by one of two domains (not judged if neither says no)."""

    first: Any
    second: Any

    def allows(self, v: Any) -> bool | None:
        verdicts = (self.first.allows(v), self.second.allows(v))
        return True if True in verdicts else None if None in verdicts else False


class Category(NamedTuple):
    """A value of a categorical choice: None, a bool, a string or a finite
    Python or NumPy number (Optuna's categorical types)."""

    def allows(self, v: Any) -> bool:
        if v is None or isinstance(v, bool | str):
            return True
        return isinstance(v, numbers.Real) and Real().allows(v)


class Seq(NamedTuple):
    """A list or tuple of at least `min_len` items of `item`; fuzzed as
    `[first, value]`, `[value]` and `value` itself."""

    item: Any
    first: Any
    min_len: int = 1
    distinct: bool = False  # no two items of the same type and value
    max_len: int = I32
    arrays: bool = False  # a 1-D NumPy or JAX array too

    def allows(self, v: Any) -> bool | None:
        if self.arrays and isinstance(v, np.ndarray | jax.Array) and v.ndim == 1:
            v = list(np.asarray(v))
        if not isinstance(v, list | tuple):
            return False
        if not self.min_len <= len(v) <= self.max_len:
            return False
        if self.distinct and len({(type(x), x) for x in v if _hashable(x)}) < len(v):
            return False
        verdicts = [self.item.allows(x) for x in v]
        return False if False in verdicts else None if None in verdicts else True

    def wrap(self, v: Any) -> list[Any]:
        return [[self.first, v], [v], v]


class Map(NamedTuple):
    """A mapping `key -> value` (or None); fuzzed as `{k: v}` pairs."""

    key: Any
    value: Any
    good_key: Any
    good_value: Any
    none: bool = False
    empty: bool = False

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.none
        if not isinstance(v, dict) or (not v and not self.empty):
            return False
        return all(self.key.allows(k) and self.value.allows(x) for k, x in v.items())

    def wrap(self, v: Any) -> list[Any]:
        keyed = [{v: self.good_value}] if _hashable(v) else []
        return [*keyed, {self.good_key: v}, v]


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return not isinstance(v, float) or not math.isnan(v)  # nan != nan as a key


# Shared domains
FINITE = Real()
POS = Real(0.0)
NONNEG = Real(0.0, closed=(True, False))
UNIT = Real(0.0, 1.0, (True, False))
OPEN01 = Real(0.0, 1.0)
LR = LearningRate()
FACTOR = Real(1.0)
POSINT, NNINT = Int(1), Int(0)
FLAG, DT = Flag(), Dtype()
AXIS = Int(-I32 - 1, I32)
AXES = Either(AXIS, Seq(AXIS, 0, min_len=0))  # an axis, or a sequence of axes
SEED = Int(-I64 - 1, I64)
LINESEARCH = Tx(none=True, judged=False)


class Entry(NamedTuple):
    """A public constructor: its valid other arguments, and each fuzzed domain.

    `use` exercises a built object on a small problem (None: build only);
    `eager` marks calls that compute or allocate at once: only small values
    inside a domain are built. `skip` lists the arguments not fuzzed here
    (pytrees, data, masks: checked by their own modules' tests).
    """

    fn: Callable[..., Any]
    base: dict[str, Any]
    domains: dict[str, Any]
    use: str | None = None
    eager: bool = False
    skip: tuple[str, ...] = ()


def _resolve(path: str, names: dict[str, Any]) -> Any:
    """`gt.tuning.uniform` -> the function (the first part a name in `names`)."""
    first, *rest = path.split(".")
    obj = names[first]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _value(text: str, names: dict[str, Any]) -> Any:
    return names[text] if text in names else ast.literal_eval(text)


def parse_table(text: str, names: dict[str, Any]) -> dict[str, Any]:
    """Entries (or groups of domains) from a table, one block per name.

    A block is `name use token...`, continued on indented lines; `use` is `-`
    for none, and `group` makes the block a dict of domains. A token is
    `arg:DOMAIN` (a name in `names`), `arg=VALUE` (a base argument: a name in
    `names` or a Python literal), `-arg` (not fuzzed), `eager`, or the name of
    a group whose arguments, domains and skips it adds.
    """
    out: dict[str, Any] = {}
    names = dict(names)  # a group may use the groups above it
    for block in re.split(r"\n(?=\S)", text.strip()):
        name, use, *tokens = block.split()
        base, domains, skip, eager = {}, {}, [], False
        for token in tokens:
            if token == "eager":
                eager = True
            elif token.startswith("-"):
                skip.append(token[1:])
            elif "=" in token:
                arg, value = token.split("=", 1)
                base[arg] = _value(value, names)
            elif ":" in token:
                arg, domain = token.split(":", 1)
                domains[arg] = names[domain]
            else:  # a group: its base arguments, domains and skips
                group = names[token]
                base, domains = {**base, **group.base}, {**domains, **group.domains}
                skip += group.skip
        if use == "group":
            out[name] = names[name] = Entry(print, base, domains, skip=tuple(skip))
            continue
        fn = _resolve(name, names)
        kind = None if use == "-" else use
        out[name] = Entry(fn, base, domains, kind, eager, tuple(skip))
    return out
