"""Checks that keep the documentation honest, without building it.

mkdocs is not installed in the test environment, so these tests read the
Markdown sources directly:

* every public name (`gradtransforms.__all__`) has a docstring whose first
  line is a one-line summary; optax's protocol types, re-exported unchanged,
  only need to exist and be optax's;
* every public name appears in the API reference, docs/api.md, and the
  reference documents nothing that is not public;
* every relative link in docs/**/*.md and README.md points to a file that
  exists.

The strict `mkdocs build` (broken anchors, docstring parsing) runs separately.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import optax
import pytest

import gradtransforms as gt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_PAGE = DOCS / "api.md"

# Re-exported from optax unchanged: their documentation is optax's.
PROTOCOL_TYPES = frozenset(
    {
        "EmptyState",
        "GradientTransformation",
        "GradientTransformationExtraArgs",
        "OptState",
        "Params",
        "Schedule",
        "Updates",
    }
)

# Docstrings whose summary runs onto a second line. Each is expected to fail
# the one-line-summary check; `strict=True` makes the test fail as soon as one
# is fixed, so that it is removed from this set.
KNOWN_MULTILINE_SUMMARIES: frozenset[str] = frozenset()

PUBLIC = sorted(gt.__all__)
WRITTEN_HERE = [name for name in PUBLIC if name not in PROTOCOL_TYPES]


def _summary_param(name: str):
    if name in KNOWN_MULTILINE_SUMMARIES:
        return pytest.param(
            name,
            marks=pytest.mark.xfail(
                strict=True, reason="summary line continues onto a second line"
            ),
        )
    return name


# --------------------------------------------------------------------------
# (a) docstrings


def test_all_names_exist_and_are_unique():
    assert len(gt.__all__) == len(set(gt.__all__)), "duplicate names in __all__"
    missing = [name for name in gt.__all__ if not hasattr(gt, name)]
    assert not missing, f"in __all__ but not defined: {missing}"


@pytest.mark.parametrize("name", sorted(PROTOCOL_TYPES))
def test_protocol_types_are_optax_types(name):
    assert name in gt.__all__, f"{name} is not exported"
    assert getattr(gt, name) is getattr(optax, name), (
        f"gt.{name} must be optax.{name} itself, not a look-alike"
    )


@pytest.mark.parametrize("name", [_summary_param(n) for n in WRITTEN_HERE])
def test_docstring_has_one_line_summary(name):
    obj = getattr(gt, name)
    home = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", "")
    assert home.startswith("gradtransforms"), (
        f"gt.{name} is defined in {home}; only the protocol types "
        "may come from elsewhere"
    )
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"gt.{name} has no docstring"
    lines = doc.splitlines()
    summary = lines[0].strip()
    assert summary, f"gt.{name}: the docstring starts with a blank line"
    assert len(lines) == 1 or not lines[1].strip(), (
        f"gt.{name}: the summary must be one line, followed by a blank line; "
        f"got {lines[0]!r} / {lines[1]!r}"
    )
    assert summary.endswith("."), f"gt.{name}: the summary should end with '.'"


# --------------------------------------------------------------------------
# (b) the API reference


def _api_text() -> str:
    return API_PAGE.read_text(encoding="utf-8")


def _documented_objects(text: str) -> set[str]:
    return set(re.findall(r"^:::\s*gradtransforms\.(\w+)\s*$", text, flags=re.M))


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_in_api_reference(name):
    text = _api_text()
    if name in PROTOCOL_TYPES:
        assert f"`{name}`" in text, f"{name} is not mentioned in docs/api.md"
    else:
        assert name in _documented_objects(text), (
            f"docs/api.md has no '::: gradtransforms.{name}' block"
        )


def test_api_reference_documents_only_public_names():
    stale = _documented_objects(_api_text()) - set(gt.__all__)
    assert not stale, f"docs/api.md documents names not in __all__: {stale}"


# --------------------------------------------------------------------------
# (c) relative links

_FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", flags=re.M)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", flags=re.I)


def _markdown_files() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def _relative_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = _INLINE_LINK.findall(text) + _REFERENCE_DEF.findall(text)
    return [t for t in targets if not _EXTERNAL.match(t)]


def test_link_checker_finds_links():
    # Guard against a regex that silently matches nothing.
    assert "docs/api.md" in _relative_links(ROOT / "README.md")


@pytest.mark.parametrize(
    "path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_relative_links_point_to_existing_files(path):
    broken = []
    for target in _relative_links(path):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not file_part:
            continue
        if not (path.parent / file_part).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_getting_started_repeats_the_quick_start_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [c.strip() for c in re.findall(r"```bash\n(.*?)```", quick_start, re.S)]
    assert len(commands) == 2
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    for command in commands:
        assert command in page, f"docs/getting-started.md lacks {command!r}"
