"""The public API keeps its names and signatures.

`tests/public_api.json` lists every public name of the flat namespace and of
the public submodules, with its kind and, for functions and classes, the
parameters of its signature (name, kind, default). It was written before the
library was restructured; a name or signature may only change when an issue
says so, and then the file changes in the same commit. New names are allowed
(the snapshot must be a subset of what is public now).

Regenerate after an intended change with
`python -m tests.test_public_api --write`.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).with_name("public_api.json")

# The namespaces whose names users import: the flat namespace, the public
# submodules and the models.
NAMESPACES = (
    "gradtransforms",
    "gradtransforms.checkpoint",
    "gradtransforms.diagnostics",
    "gradtransforms.init",
    "gradtransforms.sharding",
    "gradtransforms.training",
    "gradtransforms.tuning",
    "gradtransforms.models",
)


def _default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "<required>"
    if callable(value):  # by name: the module that defines it may move
        return f"<callable {getattr(value, '__qualname__', type(value).__qualname__)}>"
    return repr(value)


_PREFIX = {
    inspect.Parameter.POSITIONAL_ONLY: "positional-only ",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "",
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.KEYWORD_ONLY: "keyword-only ",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def _parameters(obj: Any) -> list[str] | None:
    """`["name=default", "keyword-only name=default", "*args", ...]`."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [
        f"{_PREFIX[p.kind]}{p.name}={_default(p.default)}"
        for p in signature.parameters.values()
    ]


def _kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "namedtuple" if hasattr(obj, "_fields") else "class"
    if callable(obj):
        return "function"
    return "value"


def describe() -> dict[str, dict[str, Any]]:
    """`{namespace: {name: {"kind", "parameters"}}}` for every public name."""
    import importlib

    out: dict[str, dict[str, Any]] = {}
    for namespace in NAMESPACES:
        module = importlib.import_module(namespace)
        entries = {}
        for name in sorted(module.__all__):
            obj = getattr(module, name)
            kind = _kind(obj)
            entry: dict[str, Any] = {"kind": kind}
            if kind in ("function", "class", "namedtuple"):
                entry["parameters"] = _parameters(obj)
            entries[name] = entry
        out[namespace] = entries
    return out


def _snapshot() -> dict[str, dict[str, Any]]:
    return json.loads(SNAPSHOT.read_text())


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_public_name_is_still_public(namespace):
    missing = sorted(set(_snapshot()[namespace]) - set(describe()[namespace]))
    assert not missing, f"{namespace} no longer exports {missing}"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_signatures_are_unchanged(namespace):
    now = describe()[namespace]
    changed = {
        name: {"was": entry, "now": now[name]}
        for name, entry in _snapshot()[namespace].items()
        if name in now and now[name] != entry
    }
    assert not changed, json.dumps(changed, indent=1)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_public_api --write")
    SNAPSHOT.write_text(json.dumps(describe(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
