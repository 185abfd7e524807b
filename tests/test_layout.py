"""The layout rules of docs/architecture.md, checked by reading the source.

* no module over 400 lines;
* no function over 80 lines of code (blank lines, comments and docstrings
  not counted; a nested function counts towards its enclosing one too);
* no private name (`_x`) imported from another module;
* the library and the benchmarks never import `examples`;
* the library's layers import one way (docs/architecture.md): a module
  imports only from its own layer or the layers below.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gradtransforms", "models", "examples", "benchmarks", "tests")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# The layers of docs/architecture.md, by module (dotted, without the package).
LAYERS = {
    "tree": 0,
    "validation": 0,
    "objective": 0,
    "base": 1,
    **dict.fromkeys(
        (
            "combine injection schedules scaling momentum adaptive clipping averaging "
            "accumulation precision coordinate continuation diagnostics packing "
            "sharding checkpoint second_order"
        ).split(),
        2,
    ),
    "optimizers": 3,
    **dict.fromkeys(
        "training tuning nnx init fan_in models problems problem_set".split(), 4
    ),
    "": 4,  # the package's __init__
}


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _code_lines(source: str) -> set[int]:
    """Line numbers holding code: not blank, not only a comment or a docstring."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            or isinstance(node, ast.AsyncFunctionDef)
        ) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    end = first.end_lineno or first.lineno
                    docstrings.update(range(first.lineno, end + 1))
    return lines - docstrings


def _long_functions(path: Path) -> list[str]:
    source = path.read_text()
    code = _code_lines(source)
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            n = sum(1 for line in span if line in code)
            if n > MAX_FUNCTION_LINES:
                out.append(f"{_rel(path)}:{node.lineno} {node.name} ({n} lines)")
    return out


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """`(module, name, line)` for every `from module import name` and `import m`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.extend((node.module, a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.extend(("." * node.level, a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.Import):
            out.extend((a.name, "", node.lineno) for a in node.names)
    return out


def test_no_module_is_over_400_lines():
    long = [
        f"{_rel(p)} ({n} lines)"
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, long


def test_no_function_is_over_80_lines_of_code():
    long = [f for p in _sources() for f in _long_functions(p)]
    assert not long, long


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_from_another_module():
    crossing = [
        f"{_rel(p)}:{line} from {module} import {name}"
        for p in _sources()
        for module, name, line in _imports(p)
        if _is_private(name) or any(map(_is_private, module.split(".")))
    ]
    assert not crossing, crossing


@pytest.mark.parametrize("package", ["gradtransforms", "models", "benchmarks"])
def test_only_tests_import_the_examples(package):
    found = [
        f"{_rel(p)}:{line} {module}"
        for p in (ROOT / package).rglob("*.py")
        for module, _, line in _imports(p)
        if module == "examples" or module.startswith("examples.")
    ]
    assert not found, found


def _layer(module: str) -> int:
    """The layer of `gradtransforms.<module>` (its first component decides)."""
    parts = module.removeprefix("gradtransforms").lstrip(".").split(".")
    return LAYERS[parts[0]]


def _library_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted((ROOT / "gradtransforms").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        out.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return out


def test_every_library_module_has_a_layer():
    missing = []
    for module, _ in _library_modules():
        try:
            _layer(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"add to LAYERS (and docs/architecture.md): {missing}"


def test_layers_import_downwards():
    upward = []
    for module, path in _library_modules():
        for imported, name, line in _imports(path):
            if imported == "gradtransforms":  # from gradtransforms import tree
                imported = f"gradtransforms.{name}"
            if not imported.startswith("gradtransforms"):
                continue
            if _layer(imported) > _layer(module):
                upward.append(f"{_rel(path)}:{line} imports {imported}")
    assert not upward, upward
