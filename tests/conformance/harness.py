"""Run optax's own tests with gradtransforms in place of optax, name for name.

optax ships its unit tests in the installed package (`optax/_src/*_test.py`,
`optax/transforms/`, `optax/schedules/`, `optax/tree_utils/`). `load` reads
one of them and executes it as a new module in which every optax module it
imports is seen through `Substituted`: an attribute that *is* one of optax's
public objects shared with gradtransforms (the same name in `optax` and in
`gradtransforms.__all__`, or in `optax.tree` and `gradtransforms.tree`)
reads as gradtransforms' object instead. Everything else stays optax's, so
a test exercises gradtransforms exactly where optax's test exercised the
shared name. The substitution is applied right after each import of the
test module (the source is rewritten at the syntax-tree level), so names
captured at import time, such as the parameter lists of `parameterized`,
are substituted too.

`used` records which shared names each test reached; a test that reaches
none is reported as not applicable by `conftest.py`.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import types
from collections.abc import Callable
from typing import Any

import optax

import gradtransforms as gt

__all__ = [
    "OPTAX_TEST_MODULES",
    "OVERRIDDEN",
    "SUBSTITUTES",
    "Substituted",
    "load",
    "used",
]

# optax's test modules that exercise a name gradtransforms shares with optax.
OPTAX_TEST_MODULES = (
    "optax._src.alias_test",
    "optax._src.base_test",
    "optax._src.combine_test",
    "optax._src.float64_test",
    "optax._src.linesearch_test",
    "optax._src.transform_test",
    "optax._src.update_test",
    "optax.schedules._inject_test",
    "optax.schedules._join_test",
    "optax.schedules._schedule_test",
    "optax.transforms._accumulation_test",
    "optax.transforms._adding_test",
    "optax.transforms._clipping_test",
    "optax.transforms._combining_test",
    "optax.transforms._conditionality_test",
    "optax.transforms._constraining_test",
    "optax.transforms._masking_test",
    "optax.tree_utils._tree_math_test",
)


# The names whose optax object is replaced by gradtransforms' namesake: every
# public name of both libraries (`tree.*` for `optax.tree`) except optax's
# protocol types, which gradtransforms re-exports unchanged. `_substitutes`
# checks that this list is exactly the shared names, so a name newly shared
# (or no longer shared) fails the conformance run until it is listed here.
OVERRIDDEN = (
    *("AddNoiseState", "ApplyIfFiniteState", "EmaState", "InjectHyperparamsState"),
    *("ScaleByAdamState", "ScaleByBacktrackingLinesearchState", "ScaleByRmsState"),
    *("ScaleByRssState", "ScaleByScheduleState", "ScaleByZoomLinesearchState"),
    *("TraceState", "ZeroNansState", "ZoomLinesearchInfo"),
    *("adagrad", "adam", "adamw", "add_decayed_weights", "add_noise"),
    *("apply_if_finite", "apply_updates", "chain", "clip", "clip_by_global_norm"),
    *("constant_schedule", "cosine_decay_schedule", "ema", "exponential_decay"),
    *("identity", "inject_hyperparams", "join_schedules", "lbfgs", "masked"),
    *("partition", "piecewise_constant_schedule", "rmsprop", "scale"),
    *("scale_by_adam", "scale_by_backtracking_linesearch", "scale_by_lbfgs"),
    *("scale_by_learning_rate", "scale_by_rms", "scale_by_rss", "scale_by_schedule"),
    *("scale_by_zoom_linesearch", "set_to_zero", "sgd", "trace"),
    *("warmup_cosine_decay_schedule", "zero_nans"),
    *("tree.add_scale", "tree.bias_correction", "tree.cast_like", "tree.full_like"),
    *("tree.scale", "tree.update_moment", "tree.update_moment_per_elem_norm"),
    *("tree.vdot", "tree.zeros_like"),
)


def _substitutes() -> dict[int, tuple[str, Any]]:
    """`id(optax object) -> (name, gradtransforms object)` for every shared name."""
    out: dict[int, tuple[str, Any]] = {}
    shared = sorted(set(gt.__all__) & set(dir(optax)))
    # optax's own protocol types, which gradtransforms re-exports unchanged;
    # optax also exports some of them under state names (its
    # `ClipByGlobalNormState` *is* `EmptyState`), which stay optax's.
    protocol = {
        id(getattr(optax, n)) for n in shared if getattr(gt, n) is getattr(optax, n)
    }
    for name in shared:
        ours, theirs = getattr(gt, name), getattr(optax, name)
        if isinstance(theirs, types.ModuleType) or id(theirs) in protocol:
            continue  # modules are handled below; protocol types are optax's
        if callable(theirs):
            out[id(theirs)] = (name, ours)
    for name in sorted(set(gt.tree.__all__) & set(dir(optax.tree))):
        ours, theirs = getattr(gt.tree, name), getattr(optax.tree, name)
        if theirs is not ours:
            out[id(theirs)] = (f"tree.{name}", ours)
    found = sorted(name for name, _ in out.values())
    if found != sorted(OVERRIDDEN):
        raise AssertionError(
            "the names shared with optax changed; update OVERRIDDEN: "
            f"new {sorted(set(found) - set(OVERRIDDEN))}, "
            f"gone {sorted(set(OVERRIDDEN) - set(found))}"
        )
    return out


# GT_CONFORMANCE_PLAIN=1 runs optax's tests on optax itself, to tell which
# fail in this environment whatever the implementation.
SUBSTITUTES = {} if os.environ.get("GT_CONFORMANCE_PLAIN") else _substitutes()
"""The substitutions: optax's object (by id) to gradtransforms' namesake."""

used: set[str] = set()
"""The shared names reached since the set was last cleared (by `conftest.py`)."""


class Substituted(types.ModuleType):
    """An optax module whose shared objects read as gradtransforms' namesakes."""

    def __init__(self, original: types.ModuleType) -> None:
        super().__init__(original.__name__, original.__doc__)
        self.__original = original

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self.__original, attribute)
        found = SUBSTITUTES.get(id(value))
        if found is None:
            if isinstance(value, types.ModuleType) and _is_optax(value):
                return Substituted(value)
            return value
        name, ours = found
        used.add(name)
        return ours


def _is_optax(module: types.ModuleType) -> bool:
    return module.__name__ == "optax" or module.__name__.startswith("optax.")


def _substitute(value: Any) -> Any:
    """An imported name as the test module sees it."""
    if isinstance(value, types.ModuleType) and _is_optax(value):
        return Substituted(value)
    found = SUBSTITUTES.get(id(value))
    if found is not None:  # `from optax._src.alias import adam`
        return found[1]
    return value


class _Rewriter(ast.NodeTransformer):
    """After each top-level import, rebind the imported names through `_sub`.

    And after `_OPTIMIZERS_UNDER_TEST = ...` (optax's list of optimizers run
    through the alias tests), keep only the shared ones: the others are
    optax's, not ours, and would only cost time.
    """

    def visit_Module(self, node: ast.Module) -> ast.Module:
        body: list[ast.stmt] = []
        for stmt in node.body:
            body.append(stmt)
            names: list[str] = []
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in stmt.names]
            elif _assigns(stmt, "_OPTIMIZERS_UNDER_TEST"):
                body.extend(
                    ast.parse(
                        "_OPTIMIZERS_UNDER_TEST = __keep_shared__("
                        "_OPTIMIZERS_UNDER_TEST)"
                    ).body
                )
            for name in names:
                body.extend(ast.parse(f"{name} = __substitute__({name})").body)
        node.body = body
        return node


def _assigns(stmt: ast.stmt, name: str) -> bool:
    return isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    )


def _keep_shared(optimizers: tuple[dict[str, Any], ...]) -> tuple[dict, ...]:
    return tuple(o for o in optimizers if o["opt_name"] in gt.__all__)


def load(test_module: str) -> types.ModuleType:
    """optax's `test_module`, executed with gradtransforms' shared objects."""
    spec = importlib.util.find_spec(test_module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"optax does not ship {test_module}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = _Rewriter().visit(ast.parse(f.read(), spec.origin))
    module = types.ModuleType(f"conformance.{test_module}")
    module.__file__ = spec.origin
    namespace: dict[str, Callable[..., Any] | str] = {
        "__substitute__": _substitute,
        "__keep_shared__": _keep_shared,
    }
    module.__dict__.update(namespace)
    exec(compile(ast.fix_missing_locations(tree), spec.origin, "exec"), vars(module))
    return module
