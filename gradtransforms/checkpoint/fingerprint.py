"""A description of what built an optimizer, to tell configurations apart.

Two optimizers whose states have the same layout (Polyak and EMA averaging,
heavy-ball and Nesterov momentum, Adam and NAdam) differ only in the code of
their `update` function and in the values it closed over. `fingerprint`
records both, recursively: the function's qualified name, then each closure
variable (`fn.__code__.co_freevars` with `fn.__closure__`) and default
argument, by name. Numbers, bools, strings and dtypes are recorded by value,
small arrays by value too, functions (inner transformations, schedules,
masks given as callables) by their own fingerprint, containers element by
element; any other object by its type. The result is plain JSON, stored in
the checkpoint and compared by `first_difference` when restoring.
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Mapping
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

__all__ = ["fingerprint", "first_difference"]

MAX_DEPTH = 24  # nesting beyond this is recorded by type only
MAX_ARRAY_VALUES = 64  # arrays up to this size are recorded by value


def fingerprint(tx: Any) -> dict[str, Any]:
    """The JSON description of transformation `tx` (see the module docstring).

    Args:
      tx: a `GradientTransformation`: its `update` and `init` functions are
        described.

    Returns:
      A JSON-serialisable dict; equal for optimizers built by the same calls
      with the same arguments, in this process or another.

    Examples:
      >>> import gradtransforms as gt
      >>> fp = fingerprint(gt.sgd(0.1, momentum=0.9, nesterov=True))
      >>> first_difference(fp, fingerprint(gt.sgd(0.1, momentum=0.9)))[:36]
      'nesterov: saved True, restoring into'
    """
    parts = {"update": tx.update, "init": tx.init}
    return {k: _describe(v, 0, set()) for k, v in parts.items()}


def _function_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"


def _describe_function(fn: types.FunctionType, depth: int, seen: set[int]) -> Any:
    out: dict[str, Any] = {"fn": _function_name(fn)}
    if id(fn) in seen:
        return {**out, "recursive": True}
    seen = seen | {id(fn)}
    names = fn.__code__.co_freevars
    cells = fn.__closure__ or ()
    variables: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=True):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            value = None
        variables[name] = _describe(value, depth + 1, seen)
    for i, value in enumerate(fn.__defaults__ or ()):
        variables[f"<default {i}>"] = _describe(value, depth + 1, seen)
    for name, value in sorted((fn.__kwdefaults__ or {}).items()):
        variables[f"<default {name}>"] = _describe(value, depth + 1, seen)
    if variables:
        out["vars"] = variables
    return out


def _describe_array(x: Any) -> Any:
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
        kind = "key"
    else:
        kind = "array"
    x = np.asarray(x)
    out: dict[str, Any] = {kind: f"{x.dtype.name}{list(x.shape)}"}
    if x.size <= MAX_ARRAY_VALUES:
        out["values"] = [_number(v) for v in x.ravel().tolist()]
    return out


def _number(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return {"float": repr(x)}
    if isinstance(x, complex):
        return {"complex": repr(x)}
    return x


def _describe(x: Any, depth: int, seen: set[int]) -> Any:
    if x is None or isinstance(x, bool | int | str):
        return x
    if isinstance(x, float | complex):
        return _number(x)
    if isinstance(x, np.generic):
        return {"scalar": x.dtype.name, "value": _number(x.item())}
    if depth > MAX_DEPTH:
        return {"object": type(x).__qualname__}
    if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
        return {"dtype": np.dtype(x).name}
    if isinstance(x, type):
        return {"type": _function_name(x)}
    if isinstance(x, jax.core.Tracer):
        return {"traced": str(x.aval)}
    if isinstance(x, jax.Array | np.ndarray):
        return _describe_array(x)
    if isinstance(x, types.FunctionType):
        return _describe_function(x, depth, seen)
    if isinstance(x, functools.partial):
        return {
            "partial": _describe(x.func, depth + 1, seen),
            "args": [_describe(a, depth + 1, seen) for a in x.args],
            "keywords": {
                k: _describe(v, depth + 1, seen) for k, v in sorted(x.keywords.items())
            },
        }
    if isinstance(x, types.MethodType):
        return {"method": _function_name(x), "self": type(x.__self__).__qualname__}
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        names: tuple[str, ...] = type(x)._fields  # pyright: ignore[reportAttributeAccessIssue]
        fields = sorted(names, key=lambda f: (f != "update", f))  # update first
        return {
            "tuple": type(x).__qualname__,
            "fields": {f: _describe(getattr(x, f), depth + 1, seen) for f in fields},
        }
    if isinstance(x, list | tuple):
        return {"list": [_describe(v, depth + 1, seen) for v in x]}
    if isinstance(x, Mapping):
        items = sorted(x.items(), key=lambda kv: str(kv[0]))
        return {"dict": {str(k): _describe(v, depth + 1, seen) for k, v in items}}
    wrapped = getattr(x, "__wrapped__", None)  # jax.jit, functools.wraps
    if wrapped is not None:
        return {"wrapper": type(x).__qualname__, "of": _describe(wrapped, depth, seen)}
    return {"object": type(x).__qualname__}


_OWN_FUNCTIONS = ("update_fn", "init_fn")


def _short(fn_name: str) -> str:
    """`'gradtransforms.momentum:trace.<locals>.update_fn'` -> `'trace'`."""
    qualname = fn_name.rsplit(":", 1)[-1]
    head = qualname.split(".<locals>.")
    return head[0] if len(head) > 1 and head[-1] in _OWN_FUNCTIONS else qualname


def _show(x: Any) -> str:
    if x is _ABSENT:
        return "nothing"
    if isinstance(x, dict):
        if "fn" in x:
            return _short(x["fn"])
        for key in ("dtype", "type", "object", "tuple", "array", "key", "scalar"):
            if key in x:
                return f"{key} {x[key]}"
        if "list" in x:
            return f"{len(x['list'])} items"
        if "dict" in x:
            return f"keys {sorted(x['dict'])}"
        if "float" in x:
            return x["float"]
    return repr(x)


_ABSENT = {"absent": True}  # a key on one side only


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _child_path(path: list[str], node: dict, key: str, sub: str) -> list[str]:
    if key == "vars":
        return [*path, f"{_short(node['fn'])}.{sub}"]
    if not path:
        return [sub]
    return [*path[:-1], path[-1] + sub]


def _walk(a: Any, b: Any, path: list[str]) -> tuple[list[str], Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("fn") != b.get("fn") or set(a) != set(b):
            return path, a, b
        for key in a:
            x, y = a[key], b[key]
            if key in ("vars", "dict", "fields", "keywords"):
                for sub in [*x, *(k for k in y if k not in x)]:
                    label = sub if key == "vars" else f"[{sub!r}]"
                    if key == "fields":
                        label = f".{sub}"
                    found = _walk(
                        x.get(sub, _ABSENT),
                        y.get(sub, _ABSENT),
                        _child_path(path, a, key, label),
                    )
                    if found:
                        return found
            else:
                found = _walk(x, y, path)
                if found:
                    return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _walk(x, y, [*path[:-1], f"{path[-1] if path else ''}[{i}]"])
            if found:
                return found
        return (path, a, b) if len(a) != len(b) else None
    if isinstance(a, dict) or isinstance(b, dict) or not _same_scalar(a, b):
        return path, a, b
    return None


# Wrappers that only pass a transformation on (`chain`'s parameter check,
# optax's extra-arguments adapter): left out of the path shown.
_PLUMBING = re.compile(r"\.tx\.(update|init)$")


def first_difference(saved: Any, wanted: Any) -> str | None:
    """The first place where two fingerprints differ, in words; `None` if equal.

    Reads `"<name>: saved <value>, restoring into <value> (at <path>)"`,
    where the path runs from the outermost transformation through the
    closure variables (`chain.tx / chain.update_fns[0] / trace.nesterov`).
    """
    found = _walk(saved, wanted, [])
    if found is None:
        return None
    path, a, b = found
    shown = [seg for seg in path if not _PLUMBING.search(seg)] or path
    where = " / ".join(shown) or "<the transformation>"
    name = path[-1].rsplit(".", 1)[-1] if path else _show(a)
    if isinstance(a, dict) and isinstance(b, dict) and a.get("fn") != b.get("fn"):
        name = "transformation" if not path else name
        return (
            f"{name}: saved {_show(a)}, restoring into {_show(b)} (at {where})"
            if path
            else f"transformation: saved {_show(a)}, restoring into {_show(b)}"
        )
    return f"{name}: saved {_show(a)}, restoring into {_show(b)} (at {where})"
