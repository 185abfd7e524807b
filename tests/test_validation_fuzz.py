"""Every public constructor rejects a bad argument when it is called (issue 18).

The domain of each argument of each public constructor is written in
tests/validation_table.py, from the docstrings (not from the checks). Each is
crossed here with many kinds of values: Python numbers and NumPy scalars of
several dtypes, 0-d and 1-element NumPy arrays, concrete JAX arrays, bools,
huge ints (2**40, 2**63, 10**400), NaN, ±inf, strings, `np.str_`, None,
lists, complex numbers, dtypes, keys and callables. A value outside its
domain must raise ValueError or TypeError naming the argument at once; a value
inside it must be accepted; a sample of values inside it must also give
finite numbers through `init` and one `update` (or a call) on a small tree.
A public callable with neither an entry nor a reason in NOT_CONSTRUCTORS, or
an argument with no domain, fails.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradtransforms as gt
import gradtransforms.models
from tests.validation_domains import Int, Seq
from tests.validation_table import KEY, NOT_CONSTRUCTORS, SCHEDULE, SGD, TABLE

NUMBERS = [-(2**40), -1, -0.5, -1e-8, 0, 1e-8, 0.5, 0.999, 1, 1.5, 2, 3, 10]
NUMBERS += [1e6, 2**31 - 1, 2**31, 2**40, 2**63, 10**400, math.nan, math.inf]
NUMBERS += [-math.inf]
INTS = (np.int64, np.int32, np.uint8, np.uint64)
FLOATS = (np.float64, np.float32, np.float16)
OTHERS: list[Any] = [True, False, np.bool_(True), np.array([True]), None]
OTHERS += ["abc", "0.5", np.str_("abc"), np.str_("1"), [0.5], (0.5,), [], {}]
OTHERS += [1j, np.complex64(1), np.array([1j]), object(), SCHEDULE, jnp.float32]
OTHERS += [np.dtype("float32"), "float32", "bfloat16", "complex64", jnp.int32]
OTHERS += ["int32", "not_a_dtype", KEY, jax.random.PRNGKey(0), SGD]


def _forms(x: float | int) -> Iterator[Any]:
    """`x` as a Python number, NumPy scalars, 0-d and 1-element arrays."""
    yield x
    if isinstance(x, int):
        for t in INTS:
            if np.iinfo(t).min <= x <= np.iinfo(t).max:
                yield t(x)
        if abs(x) <= 2**62:
            yield from (np.array(x, np.int64), np.array([x], np.int64))
        if abs(x) <= 2**31 - 1:
            yield jnp.asarray(x, jnp.int32)
    if isinstance(x, float) or abs(x) <= 2**1000:  # 10**400 is no float
        yield from (t(x) for t in FLOATS)
        yield from (np.array(x, np.float64), np.array([x], np.float32))
        yield jnp.asarray(x, jnp.float32)


with warnings.catch_warnings(), np.errstate(over="ignore"):
    warnings.simplefilter("ignore")  # float16(1e6) is inf: a value like another
    POOL = [v for x in NUMBERS for v in _forms(x)] + OTHERS


def cases(domain: Any) -> Iterator[tuple[Any, bool]]:
    """`(value, allowed)` for every value of the pool, wrapped if a container."""
    wrap = getattr(domain, "wrap", lambda v: [v])
    for value in POOL:
        for wrapped in wrap(value):
            allowed = domain.allows(wrapped)
            if allowed is not None:  # None: not judged at construction
                yield wrapped, allowed


RNGS = nnx.Rngs(0)


def build(name: str, arg: str, value: Any) -> Any:
    """Call the constructor with its base arguments and `arg=value`."""
    entry = TABLE[name]
    kwargs = dict(entry.base)
    if "rngs" in entry.skip:
        kwargs["rngs"] = RNGS  # shared: a model built here is never trained
    if arg.startswith("*"):
        return entry.fn(value, **kwargs)
    return entry.fn(**{**kwargs, arg: value})


EAGER_BUILDS = 1  # values inside a domain built per argument of an eager call


def small(value: Any) -> bool:
    """No number above 1000 in the value (an eager call builds small ones only)."""
    for leaf in jax.tree.leaves(value):
        if isinstance(leaf, int | float | np.number | np.ndarray):
            if np.asarray(leaf).dtype.kind in "iuf" and np.any(np.abs(leaf) > 1000):
                return False
    return True


def _check_rejected(name: str, arg: str, value: Any) -> str | None:
    """None if `value` is refused at once, naming the argument; else why not."""
    mentioned = "chain argument" if arg == "*transforms" else arg.lstrip("*")
    try:
        built = build(name, arg, value)
    except (ValueError, TypeError) as error:
        if mentioned in str(error):
            return None
        return f"message does not name {mentioned!r}: {error}"
    except Exception as error:
        return f"{type(error).__name__} instead of ValueError/TypeError: {error}"
    del built
    return "accepted"


def _check_accepted(name: str, arg: str, value: Any) -> str | None:
    try:
        build(name, arg, value)
    except Exception as error:
        return f"rejected: {type(error).__name__}: {error}"
    return None


def fuzz(name: str) -> Iterator[tuple[str, Any, bool, str | None]]:
    """`(argument, value, allowed, problem)` for every case of a constructor."""
    eager = TABLE[name].eager  # builds a model, draws indices, runs a solver
    for arg, domain in TABLE[name].domains.items():
        built = 0
        for value, allowed in cases(domain):
            if not allowed:
                yield arg, value, allowed, _check_rejected(name, arg, value)
            elif not eager or (small(value) and built < EAGER_BUILDS):
                built += 1
                yield arg, value, allowed, _check_accepted(name, arg, value)


def _short(value: Any) -> str:
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) < 70 else text[:60] + "..."


@pytest.mark.parametrize("name", sorted(TABLE))
def test_bad_values_raise_at_construction_and_good_ones_build(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float64 dtypes without x64, and the like
        problems = [
            f"{arg}={_short(value)}: {problem}"
            for arg, value, _, problem in fuzz(name)
            if problem is not None
        ]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:25])


# --------------------------------------------------------------------------
# Good values also work: init + one update, a schedule's values, an
# initialiser's draw, a model's forward pass


PROBES = 2  # init + update (or a call) per constructor
PARAMS = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
PROBE_POOL = [0.5, 1, 2, 0.1, 1e-8, 0.999, 0, 3, None, True, False, jnp.float32]
PROBE_POOL += [SCHEDULE, KEY, SGD]  # no bfloat16: jax's initialisers promote


def _objective(params: Any) -> jax.Array:
    return sum(jnp.sum((x - 1.0) ** 2) for x in jax.tree.leaves(params))


def _use_tx(tx: Any) -> Any:
    tx = optax.with_extra_args_support(tx)
    grads = jax.grad(_objective)(PARAMS)
    state = tx.init(PARAMS)
    extra = {"value": _objective(PARAMS), "grad": grads, "value_fn": _objective}
    updates, _ = tx.update(grads, state, PARAMS, **extra)
    return updates


USES: dict[str, Callable[[Any], Any]] = {
    "tx": _use_tx,
    "factory": lambda build_tx: _use_tx(build_tx(learning_rate=0.1)),
    "schedule": lambda s: [s(jnp.asarray(k, jnp.int32)) for k in (0, 3)],
    "init": lambda init: init(KEY, (4, 3)),
    "value": lambda value: value,
    "dim": lambda dim: gt.tuning.random({"x": dim}, 3, KEY),
    "model": lambda model: model(jnp.ones((2, 3))),
    "cnn": lambda model: model(jnp.ones((2, 6, 6, 1))),
}


def _probe_values(arg: str, domain: Any) -> list[Any]:
    """Up to 2 allowed values of Python kinds to exercise an argument with.

    Not containers, axes (which fit a shape or not) nor has_aux=True (which
    needs an objective returning aux).
    """
    if hasattr(domain, "wrap") or arg == "has_aux" or arg.endswith("axis"):
        return []
    return [v for v in PROBE_POOL if domain.allows(v)][:2]


def _finite(tree: Any) -> bool:
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "dtype") or x]
    return all(bool(jnp.all(jnp.isfinite(jnp.asarray(x, float)))) for x in leaves)


USED = sorted(name for name, entry in TABLE.items() if entry.use is not None)


@pytest.mark.parametrize("name", USED)
def test_good_values_give_finite_numbers(name):
    entry = TABLE[name]
    use = USES[entry.use]
    values = {
        arg: _probe_values(arg, domain)
        for arg, domain in entry.domains.items()
        if not (name.startswith("gt.models.") and isinstance(domain, Int | Seq))
    }  # (a model's size is the input's)
    probes = [(a, vs[i]) for i in range(2) for a, vs in values.items() if i < len(vs)]
    if not probes:  # nothing to vary: the base call
        assert _finite(use(_base(name)))
    for arg, value in probes[:PROBES]:  # each argument's first value first
        out = use(build(name, arg, value))
        assert _finite(out), f"{name}({arg}={value!r}) gave {out}"


def _base(name: str) -> Any:
    entry = TABLE[name]
    kwargs = dict(entry.base) | ({"rngs": nnx.Rngs(0)} if "rngs" in entry.skip else {})
    return entry.fn(**kwargs)


# --------------------------------------------------------------------------
# Every public constructor, and every argument, has an entry


NAMESPACES = {
    "gt": gt,
    "gt.training": gt.training,
    "gt.init": gt.init,
    "gt.tuning": gt.tuning,
    "gt.models": gradtransforms.models,
    "gt.diagnostics": gt.diagnostics,
}


def public_callables() -> set[str]:
    """The public functions and models of the namespaces users import."""
    found = set()
    for prefix, module in NAMESPACES.items():
        for name in module.__all__:
            obj = getattr(module, name)
            model = inspect.isclass(obj) and issubclass(obj, nnx.Module)
            if inspect.isfunction(obj) or model:
                found.add(f"{prefix}.{name}")
    return found


def test_every_public_constructor_has_an_entry():
    public = public_callables()
    missing = public - set(TABLE) - set(NOT_CONSTRUCTORS)
    assert not missing, f"add to tests/validation_table.py: {sorted(missing)}"
    stale = (set(TABLE) | set(NOT_CONSTRUCTORS)) - public
    assert not stale, f"no longer public: {sorted(stale)}"
    assert not set(TABLE) & set(NOT_CONSTRUCTORS)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_argument_has_a_domain(name):
    entry = TABLE[name]
    model = inspect.isclass(entry.fn)
    signature = inspect.signature(entry.fn.__init__ if model else entry.fn)
    fuzzed = {a.lstrip("*") for a in entry.domains} | set(entry.skip)
    params = set(signature.parameters) - {"self"}
    assert params - fuzzed == set(), f"{name}: no domain for {params - fuzzed}"
    assert fuzzed - params == set(), f"{name}: not parameters: {fuzzed - params}"


# --------------------------------------------------------------------------
# max_learning_rate=inf, documented as allowed, takes steps


INF = math.inf


@pytest.mark.parametrize(
    "linesearch",
    [
        gt.scale_by_backtracking_linesearch(max_learning_rate=INF),
        gt.scale_by_backtracking_linesearch(increase_factor=1, max_learning_rate=INF),
        gt.scale_by_zoom_linesearch(max_learning_rate=INF),
    ],
    ids=["backtracking", "backtracking-keep", "zoom"],
)
def test_an_unbounded_line_search_takes_steps(linesearch):
    tx = gt.chain(gt.scale(-1.0), linesearch)
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(3):
        value, grad = jax.value_and_grad(_objective)(params)
        extra = {"value": value, "grad": grad, "value_fn": _objective}
        updates, state = tx.update(grad, state, params, **extra)
        params = gt.apply_updates(params, updates)
    assert float(_objective(params)) < 0.5 * float(_objective(PARAMS))  # it moves


def test_an_infinite_first_trial_is_refused():
    # increase_factor=inf starts each search at max_learning_rate: inf too,
    # every trial would be an infinite step and none would ever pass.
    with pytest.raises(ValueError, match=r"increase_factor=inf.*max_learning_rate"):
        gt.scale_by_backtracking_linesearch(
            increase_factor=math.inf, max_learning_rate=math.inf
        )
