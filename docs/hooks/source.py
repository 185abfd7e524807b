"""MkDocs hook: the version in the header, linked to the source built into the site.

* The version is read from `pyproject.toml` when the site is built, so the
  header cannot show another one. It is shown as the header's repository
  link, "gradtransforms 0.1.0".
* The link goes to a copy of the package's source inside the site (one page
  per module, with line numbers, under `source/`), not to a hosting service:
  it works offline, always matches the version documented, and the page loads
  nothing from another host (Material fetches a repository's star count when
  the link points to GitHub or GitLab).
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import tomllib
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

PACKAGE = "gradtransforms"
INDEX = "source/index.md"

_state: dict[str, str] = {}


def project_version(root: Path) -> str:
    """The `version` of `[project]` in `root / "pyproject.toml"`."""
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def package_files(root: Path) -> list[Path]:
    """The package's `.py` files relative to `root`, sorted (links followed)."""
    found = []
    for folder, dirs, names in os.walk(root / PACKAGE, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        found += [Path(folder, n) for n in names if n.endswith(".py")]
    return sorted(p.relative_to(root) for p in found)


def _summary(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError:
        return ""
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _module_page(root: Path, rel: Path, version: str) -> str:
    text = (root / rel).read_text(encoding="utf-8")
    fence = _fence(text)
    module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
    back = posixpath.relpath(INDEX, posixpath.dirname(f"source/{rel.as_posix()}"))
    return (
        "---\nsearch:\n  exclude: true\nhide:\n  - toc\n---\n\n"
        f"# {rel.as_posix()}\n\n"
        f"The module `{module}` of {PACKAGE} {version}, as this site was built "
        f"from it. [All modules]({back})\n\n"
        f'{fence}python linenums="1"\n{text}\n{fence}\n'
    )


def _index_page(root: Path, paths: list[Path], version: str) -> str:
    lines = [
        "---\nsearch:\n  exclude: true\n---\n",
        "# Source code\n",
        f"The source of {PACKAGE} {version}, copied into this site when it was "
        "built, so it matches the documentation and can be read offline. Each "
        "page shows one file with its line numbers; the first line of the "
        "module's docstring follows each link. The repository's `tests/` and "
        "`examples/` hold the tests and the example scripts.\n",
    ]
    for rel in paths:
        summary = _summary(root / rel)
        item = f"- [`{rel.as_posix()}`]({rel.as_posix()}.md)"
        lines.append(f"{item}: {summary}" if summary else item)
    return "\n".join(lines) + "\n"


def on_config(config):
    root = Path(config.config_file_path).resolve().parent
    _state["root"] = str(root)
    _state["version"] = project_version(root)
    config.repo_name = f"{PACKAGE} {_state['version']}"
    # Set per page below, relative to it; the header shows the link if set.
    config.repo_url = "source/"
    return config


def on_files(files, config):
    root, version = Path(_state["root"]), _state["version"]
    paths = package_files(root)
    index = File.generated(config, INDEX, content=_index_page(root, paths, version))
    files.append(index)
    for rel in paths:
        files.append(
            File.generated(
                config,
                f"source/{rel.as_posix()}.md",
                content=_module_page(root, rel, version),
                inclusion=InclusionLevel.NOT_IN_NAV,
            )
        )
    _state["index_url"] = index.url
    return files


def _link_to_source(context, config) -> None:
    config.repo_url = posixpath.join(context["base_url"], _state["index_url"])


def on_page_context(context, page, config, nav):
    _link_to_source(context, config)
    return context


def on_template_context(context, template_name, config):
    _link_to_source(context, config)
    return context
