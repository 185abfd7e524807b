"""Checks that keep the documentation honest, without building it.

mkdocs is not installed in the test environment, so these tests read the
Markdown sources directly:

* every public name (`gradtransforms.__all__`) has a docstring whose first
  line is a one-line summary; optax's protocol types, re-exported unchanged,
  only need to exist and be optax's;
* every public name appears in the API reference, docs/api.md, and the
  reference documents nothing that is not public;
* every relative link in docs/**/*.md and README.md points to a file that
  exists (or to a page that docs/hooks/source.py generates);
* the home page's contents list the pages of the navigation (mkdocs.yml), in
  its order and under its titles; the range of the textbook's algorithms is
  stated once on its own page, agrees with that page's sections, and is not
  repeated on the home page;
* the package's version is the one in pyproject.toml, which the site's header
  shows;
* every Python snippet of every page runs: a page's snippets in order, as one
  program (a snippet marked `raises` must raise; one marked `not run` says why).

The built site (maths as MathML, nothing loaded from another host, the
header, search) is checked by tests/test_docs_site.py, which needs the `docs`
extra.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import os
import re
import tomllib
from pathlib import Path

import jax
import optax
import pytest

import gradtransforms as gt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_PAGE = DOCS / "api.md"
# Pages that docs/hooks/source.py adds when the site is built: source/index.md
# and source/<path of a package file>.md for each file of the package.
GENERATED_SOURCE = DOCS / "source"

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


def _link_target_exists(target: Path) -> bool:
    if not target.is_relative_to(GENERATED_SOURCE):
        return target.exists()
    page = target.relative_to(GENERATED_SOURCE)
    if page == Path("index.md"):
        return True
    return page.suffix == ".md" and (ROOT / page.with_suffix("")).is_file()


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
        if not _link_target_exists(Path(os.path.normpath(path.parent / file_part))):
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


# --------------------------------------------------------------------------
# (d) the home page follows the navigation


def _nav() -> list:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads mkdocs.yml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return config["nav"]


def _flatten_nav(entries: list, depth: int = 0):
    """(depth, title, page) for each entry; page is None for a section."""
    for entry in entries:
        ((title, value),) = entry.items()
        if isinstance(value, list):
            yield depth, title, None
            yield from _flatten_nav(value, depth + 1)
        else:
            yield depth, title, value


_CONTENTS_ITEM = re.compile(
    r"^(?P<indent> *)- (?:\[(?P<title>[^\]]+)\]\((?P<page>[^)\s]+)\)"
    r"|(?P<section>[^\[\]:]+):\s*$)"
)


def _home_contents() -> list[tuple[int, str, str | None]]:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    section = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    items = []
    for line in section.splitlines():
        match = _CONTENTS_ITEM.match(line)
        if match:
            depth = len(match["indent"]) // 4
            if match["section"]:
                items.append((depth, match["section"].strip(), None))
            else:
                items.append((depth, match["title"], match["page"]))
    return items


def test_home_page_contents_follow_the_navigation():
    nav = [item for item in _flatten_nav(_nav()) if item[2] != "index.md"]
    contents = _home_contents()
    assert len(nav) > 20, "the navigation was not read"
    assert contents == nav, (
        "the Contents of docs/index.md must list the pages of mkdocs.yml's nav "
        "(Home excepted) in the same order, nesting and titles;\n"
        f"only in the nav: {[i for i in nav if i not in contents]}\n"
        f"only on the home page: {[i for i in contents if i not in nav]}"
    )


_ALGORITHM_RANGE = re.compile(r"Algorithms 8\.1\s*(?:–|-|to)\s*8\.(\d+)")


def test_textbook_range_is_stated_once_and_matches_the_textbook_page():
    textbook = (DOCS / "textbook.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## Algorithm 8\.(\d+)", textbook, flags=re.M)
    last = max(int(n) for n in sections)
    assert sorted({int(n) for n in sections}) == list(range(1, last + 1))
    assert [int(n) for n in _ALGORITHM_RANGE.findall(textbook)] == [last], (
        f"docs/textbook.md should state its range once, as Algorithms 8.1 to 8.{last}"
    )
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    assert not _ALGORITHM_RANGE.search(home), (
        "docs/index.md restates the textbook's range; link to textbook.md instead"
    )


# --------------------------------------------------------------------------
# (e) the version in the header


def test_package_version_is_the_one_in_pyproject():
    # The site's header shows pyproject's version (docs/hooks/source.py).
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert gt.__version__ == version


# --------------------------------------------------------------------------
# (f) every Python snippet of the docs runs: a page's snippets as one program

SNIPPET = re.compile(
    r"^(?:<!-- (?P<mark>not run|raises): (?P<what>[^\n]*?) -->\n)?"
    r"```python\n(?P<code>.*?)^```",
    flags=re.M | re.S,
)
"""A fenced Python block, with the comment in front of it, if any.

The comment is invisible on the site. `<!-- raises: ValueError -->` says the
block shows an error: it must raise that exception (the page runs on).
`<!-- not run: the reason -->` exempts a block that cannot run in a test (it
needs several hosts, say).
"""

PAGES = sorted(
    str(path.relative_to(DOCS))
    for path in DOCS.rglob("*.md")
    if "```python" in path.read_text(encoding="utf-8")
)


def page_snippets(page: str) -> list[tuple[str | None, str | None, str]]:
    """`(mark, what, code)` for each Python block of `docs/page` (see SNIPPET)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [(m["mark"], m["what"], m["code"]) for m in SNIPPET.finditer(text)]


def run_page(page: str) -> None:
    """Run the snippets of `docs/page` in order in one namespace, quietly.

    As a reader's session would: JAX's default promotion rules, not the
    strict ones of the test suite. For a contributor: `python -c "from
    tests.test_docs import run_page; run_page('guides/schedules.md')"` from
    the repository root (in a scratch directory if the page writes files).
    """
    namespace: dict = {"__name__": f"docs_{page.removesuffix('.md')}"}
    saved = {name: getattr(jax.config, name) for name in _CONFIG}
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            jax.numpy_dtype_promotion("standard"),
            jax.numpy_rank_promotion("allow"),
        ):
            for i, (mark, what, code) in enumerate(page_snippets(page)):
                name = f"docs/{page} (snippet {i + 1})"
                if mark is None:
                    exec(compile(code, name, "exec"), namespace)
                elif mark == "raises":
                    with pytest.raises(getattr(builtins, str(what))):
                        exec(compile(code, name, "exec"), namespace)
    finally:  # a page may switch float64 on, as a reader would
        for name, value in saved.items():
            jax.config.update(name, value)


_CONFIG = ("jax_enable_x64", "jax_numpy_dtype_promotion", "jax_numpy_rank_promotion")


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a page may write files (checkpoints, figures)
    run_page(page)


def test_snippets_found_and_exemptions_give_a_reason():
    assert len(PAGES) >= 20, PAGES
    for page in PAGES:
        snippets = page_snippets(page)
        assert snippets, f"docs/{page}: no snippet parsed"
        for mark, what, _ in snippets:
            if mark == "not run":
                assert len(str(what).strip()) >= 10, (page, what)
            elif mark == "raises":
                assert isinstance(getattr(builtins, str(what), None), type), what
