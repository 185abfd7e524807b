"""`inject_hyperparams`: an optimizer's hyperparameters as arrays in its state.

Our own, with optax's arguments and state: which values are
hyperparameters, schedules or static follows an explicit rule on the values,
never a guess.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradtransforms import tree as tu
from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
)
from gradtransforms.tree.dtypes import leaf_dtype, real_dtype
from gradtransforms.validation import (
    arrays_as_traced,
    check_callable,
    check_float_dtype,
)

__all__ = ["InjectHyperparamsState", "inject_hyperparams"]


class InjectHyperparamsState(NamedTuple):
    """State of `inject_hyperparams`; the fields of optax's, in its order.

    Attributes:
      count: updates so far, an int32 scalar that saturates (0 at the first).
      hyperparams: `{name: array}`, the values of the next update after `init`,
        of the last one after an update; unscheduled ones may be replaced.
      hyperparams_states: `{name: state}` of each stateful schedule.
      inner_state: the state of the factory's transformation.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


class _Sorted(NamedTuple):
    static: dict[str, Any]  # passed through unchanged
    numeric: dict[str, Any]  # numbers and numeric arrays
    schedules: dict[str, Callable[[jax.Array], Any]]  # functions of the count
    stateful: dict[str, Any]  # optax.schedules.StatefulSchedule


def inject_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    """Make an optimizer's numeric hyperparameters arrays in its state.

    `inject_hyperparams(inner_factory)(*args, **kwargs)` builds
    `inner_factory(*args, **kwargs)` with its hyperparameters in
    `state.hyperparams`, to be read, changed between updates, scheduled or
    `vmap`-ed. It takes what optax's `inject_hyperparams` takes, with the same
    meaning. Positional arguments are named by the factory's signature; each
    value is then sorted by an explicit rule:

    * names in `static_args`, `None`, bools, strings, dtypes and classes pass
      through unchanged;
    * an `optax.schedules.StatefulSchedule` $f$ of state $z$
      (`state.hyperparams_states`): an update uses $f(z)$, then sets
      $z \\leftarrow f.\\mathrm{update}(z)$, both given its extra arguments;
    * another callable is a schedule $s$: update $k + 1$ uses $s(k)$;
    * a number or a numeric array (any shape) is a hyperparameter;
    * a pytree holding numbers, bools or arrays (a mask, values per
      parameter) is a `TypeError` unless in `static_args` (not guessed);
    * anything else (a PRNG key, a transformation) passes through.

    Defaults that are Python floats are hyperparameters too, as in optax
    (Adam's `eps`); other defaults stay the factory's. A float (Python, NumPy,
    weakly typed JAX) is stored in `hyperparam_dtype`; a strongly typed JAX
    array keeps its dtype. The factory is called once here, so a bad number
    raises now; a schedule's value at step 0 is given traced, unchecked (a
    warm-up from 0 is accepted, as by `gt.adam(schedule)`). At `init` and
    `update` the stored arrays are passed as traced values, checked only under
    `validation.debug_checks()`, whether the step is jitted or not.

    Args:
      inner_factory: a function returning a gradient transformation, such as
        `gt.adam`.
      static_args: a name, or an iterable of names, of arguments that are not
        hyperparameters (masks, callables that are not schedules, ints that
        fix shapes); parameters of the factory, unless it takes `**kwargs`.
      hyperparam_dtype: the floating dtype of stored floats; by default optax's
        rule, the widest real floating dtype of the parameters (JAX's default
        float if none; float32 at least for the defaults, so that Adam's `b2`
        does not round to 1; in an update without `params`, the value's own).

    Returns:
      A function of the factory's arguments (a schedule may replace a numeric
      one) returning a `GradientTransformationExtraArgs`; its state is an
      `InjectHyperparamsState`.

    Raises:
      ValueError: a name in `static_args` that the factory does not take.
      TypeError: `static_args` not names, or `hyperparam_dtype` not floating.

    Examples:
      >>> import jax.numpy as jnp, gradtransforms as gt
      >>> tx = gt.inject_hyperparams(gt.sgd)(0.1, momentum=0.9)
      >>> state = tx.init({"w": jnp.zeros(3)})
      >>> sorted(state.hyperparams)
      ['learning_rate', 'momentum']
    """
    check_callable("inner_factory", inner_factory)
    signature = inspect.signature(inner_factory)
    names = frozenset([static_args] if isinstance(static_args, str) else static_args)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"static_args must be names; got {static_args!r}.")
    params = signature.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()) and names - {*params}:
        raise ValueError(
            f"static_args must name parameters of inner_factory; got "
            f"{sorted(names - {*params})}, not among {list(params)}."
        )
    if hyperparam_dtype is not None:
        check_float_dtype("hyperparam_dtype", hyperparam_dtype)
        hyperparam_dtype = jnp.dtype(hyperparam_dtype)

    @functools.wraps(inner_factory)
    def build(*args: Any, **kwargs: Any) -> GradientTransformationExtraArgs:
        named = _named_arguments(signature, args, kwargs)
        arguments = _sort(named, names)
        count = jnp.zeros([], jnp.int32)  # check the values: build it once
        first = {k: _first(k, s, count) for k, s in arguments.schedules.items()}
        for k, s in arguments.stateful.items():
            first[k] = _first(k, s, s.init())

        def check(first):  # numbers checked; schedules' step-0 values traced
            inner_factory(**arguments.static, **arguments.numeric, **first)

        jax.eval_shape(check, first)
        defaults = {  # injected too, as by optax
            k: p.default
            for k, p in params.items()
            if k not in named and k not in names and isinstance(p.default, float)
        }
        arguments.numeric.update(defaults)
        return _injected(inner_factory, arguments, hyperparam_dtype, {*defaults})

    return build


def _injected(
    factory: Callable[..., GradientTransformation],
    arguments: _Sorted,
    hyperparam_dtype: jnp.dtype | None,
    defaults: set[str],
) -> GradientTransformationExtraArgs:
    """The transformation of `inject_hyperparams`, for sorted arguments."""

    def current(hyperparams, count, schedule_states, extra_args, dtype):
        out = {k: _stored(v, dtype, v) for k, v in hyperparams.items()}
        for k, s in arguments.schedules.items():
            out[k] = _stored(s(count), dtype, hyperparams.get(k))
        for k, s in arguments.stateful.items():
            value = s(schedule_states[k], **extra_args)
            out[k] = _stored(value, dtype, hyperparams.get(k))
        return out

    def init_fn(params):
        dtype = _params_dtype(params) if hyperparam_dtype is None else hyperparam_dtype
        count = jnp.zeros([], jnp.int32)
        states = {k: s.init() for k, s in arguments.stateful.items()}
        hyperparams = current(arguments.numeric, count, states, {}, dtype)
        if hyperparam_dtype is None and dtype.itemsize < 4:  # b2=0.999 is not 1
            for k in defaults:
                hyperparams[k] = jnp.asarray(arguments.numeric[k], jnp.float32)
        with arrays_as_traced():  # the values of jit, unchecked eagerly too
            inner = factory(**arguments.static, **hyperparams)
        return InjectHyperparamsState(count, hyperparams, states, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        dtype = hyperparam_dtype
        if dtype is None and params is not None:
            dtype = _params_dtype(params)
        hyperparams = current(
            state.hyperparams, state.count, state.hyperparams_states, extra_args, dtype
        )
        states = {
            k: s.update(state.hyperparams_states[k], **extra_args)
            for k, s in arguments.stateful.items()
        }
        with arrays_as_traced():
            tx = factory(**arguments.static, **hyperparams)
        inner = optax.with_extra_args_support(tx)
        updates, inner_state = inner.update(
            updates, state.inner_state, params, **extra_args
        )
        count = tu.safe_increment(state.count)
        return updates, InjectHyperparamsState(count, hyperparams, states, inner_state)

    return GradientTransformationExtraArgs(init_fn, update_fn)


def _named_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """`{name: value}` of a call, positional arguments named by the signature."""
    bound = signature.bind(*args, **kwargs)  # the factory's own TypeError
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            named[name] = value
        elif value:
            raise TypeError(f"arguments of *{name} have no names to inject them by.")
    return named


_STATIC = (type(None), bool, str, np.bool_, np.dtype, type)  # jnp.bfloat16 is a type


def _sort(named: Mapping[str, Any], static_names: frozenset[str]) -> _Sorted:
    """Sort the arguments by the rule of `inject_hyperparams`."""
    out = _Sorted({}, {}, {}, {})
    for name, value in named.items():
        leaves = jax.tree.leaves(value)
        if name in static_names or isinstance(value, _STATIC):
            out.static[name] = value
        elif isinstance(value, optax.schedules.StatefulSchedule):
            out.stateful[name] = value
        elif callable(value):
            out.schedules[name] = value
        elif _is_number(value):
            out.numeric[name] = value
        elif not (len(leaves) == 1 and leaves[0] is value) and any(
            isinstance(x, complex | float | int | np.generic) or hasattr(x, "dtype")
            for x in leaves
        ):
            raise TypeError(
                f"{name}={value!r} is a pytree of values (a mask? values to inject?): "
                f"list it in inject_hyperparams(..., static_args=({name!r},))."
            )
        else:  # an object of its own: a PRNG key, a transformation, ...
            out.static[name] = value
    return out


def _is_number(value: Any) -> bool:
    """A Python or NumPy number, or an array (or tracer) of a numeric dtype."""
    if isinstance(value, int | float | complex | np.number | np.bool_):
        return not isinstance(value, bool | np.bool_)
    dtype = getattr(value, "dtype", object)  # object: not a number
    try:
        return hasattr(value, "shape") and bool(jnp.issubdtype(dtype, jnp.number))
    except TypeError:  # not a dtype JAX knows
        return False


def _first(name: str, schedule: Callable[..., Any], state: Any) -> jax.Array:
    """A schedule's first value, as a JAX array (so not range-checked)."""
    hint = f"{name}= is callable, so a schedule; if not, list it in static_args."
    try:
        value = schedule(state)
    except Exception as error:
        error.add_note(hint)
        raise
    if not _is_number(value):
        raise TypeError(f"{name}= returned {value!r} at step 0, not a number. {hint}")
    return jnp.asarray(value)


def _stored(value: Any, dtype: Any, previous: Any) -> jax.Array:
    """`value` stored: a float not strongly typed in `dtype` (else `previous`'s)."""
    if isinstance(value, jax.Array) and not getattr(value, "weak_type", False):
        return value
    if not _is_float(value):
        return jnp.asarray(value)
    if dtype is None:  # the dtype the value has in the state
        dtype = getattr(previous, "dtype", float) if _is_float(previous) else float
    return jnp.asarray(value, jnp.result_type(dtype))


def _is_float(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return (
        isinstance(x, float) if dtype is None else jnp.isdtype(dtype, "real floating")
    )


def _params_dtype(params: Any) -> jnp.dtype:
    """The widest floating dtype of the parameters (JAX's default if none)."""
    leaves = map(leaf_dtype, jax.tree.leaves(params))
    dtypes = [real_dtype(d) for d in leaves if jnp.issubdtype(d, jnp.inexact)]
    if not dtypes:
        return jnp.dtype(jnp.result_type(float))
    with jax.numpy_dtype_promotion("standard"):  # bfloat16 and float16: float32
        return functools.reduce(jnp.promote_types, dtypes)
