"""Checks of the built documentation site; they need the `docs` extra.

The site is built once per test session, with `mkdocs build --strict`, into a
temporary folder, and every test reads that build. In an environment without
the `docs` extra (the `test` extra alone) the whole file is skipped, so CI
runs it after installing that extra (.ci/run).

* No page loads a script, stylesheet, font, image or frame from another host,
  and no stylesheet imports one (Material's Google Fonts included).
* Every formula, of the pages and of the docstrings, is MathML written at
  build time; no TeX is left in the text (docs/hooks/mathml.py), and a
  formula that cannot be converted is reported.
* The header shows the version of pyproject.toml and links to the copy of
  the package's source inside the site (docs/hooks/source.py).
* The models' page documents `gradtransforms.models`.
* The search index and the search worker are in the site; where a Chromium
  is installed, a headless browser types a query into the search box, sees
  results, and is checked to have requested nothing from another host.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import threading
import tomllib
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.headless_chromium import Browser, QuietHandler, chromium_binary
from tests.site_pages import CSS_URL, TEX, is_remote, read_page

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "gradtransforms"

_MISSING = [
    name
    for name in ("mkdocs", "material", "mkdocstrings", "math_core")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=(
        f"the docs extra is not installed (no {', '.join(_MISSING)}): "
        "pip install -e '.[docs]'"
    ),
)


def _project_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built once with `mkdocs build --strict`."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    )
    return out


def _pages(site: Path, *, with_source: bool = True) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    if not with_source:
        pages = [p for p in pages if p.relative_to(site).parts[0] != "source"]
    return pages


def _name(site: Path, page: Path) -> str:
    return page.relative_to(site).as_posix()


# --------------------------------------------------------------------------
# Nothing from another host


def test_site_has_the_expected_pages(site):
    for page in ("index.html", "models/index.html", "source/index.html"):
        assert (site / page).is_file(), f"the build has no {page}"
    assert not (site / "hooks").exists(), "docs/hooks/ was published"


def test_no_page_loads_anything_from_another_host(site):
    offenders = []
    for page in _pages(site):
        parsed = read_page(page)
        offenders += [(_name(site, page), u) for u in parsed.loads if is_remote(u)]
        for style in parsed.styles:
            offenders += [
                (_name(site, page), u) for u in CSS_URL.findall(style) if is_remote(u)
            ]
    assert not offenders, f"pages load from other hosts: {offenders[:20]}"


def test_no_stylesheet_loads_anything_from_another_host(site):
    offenders = []
    for sheet in sorted(site.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8")
        offenders += [(_name(site, sheet), u) for u in CSS_URL.findall(text)]
    offenders = [(name, url) for name, url in offenders if is_remote(url)]
    assert not offenders, f"stylesheets load from other hosts: {offenders[:20]}"


def test_no_web_fonts(site):
    for path in [*_pages(site), *site.rglob("*.css")]:
        text = path.read_text(encoding="utf-8")
        for host in ("fonts.googleapis.com", "fonts.gstatic.com"):
            assert host not in text, f"{_name(site, path)} refers to {host}"


# --------------------------------------------------------------------------
# Maths


def test_formulas_are_mathml(site):
    counts = {}
    for page in _pages(site, with_source=False):
        text = page.read_text(encoding="utf-8")
        wrapped = re.findall(r'class="arithmatex">(.{0,6})', text)
        raw = [w for w in wrapped if not w.startswith("<math")]
        assert not raw, f"{_name(site, page)} has formulas left as TeX"
        counts[_name(site, page)] = text.count("<math")
    assert counts["textbook/index.html"] > 50
    # Docstrings: the API reference and the models' entries.
    assert counts["api/index.html"] > 100
    models = (site / "models/index.html").read_text(encoding="utf-8")
    reference = models.split('id="api-reference"', 1)[1]
    assert reference.count("<math") > 10, "the models' docstrings have no maths"


def test_no_tex_left_in_the_text(site):
    found = set()
    for page in _pages(site, with_source=False):
        prose = " ".join(read_page(page).prose)
        found |= {(_name(site, page), m) for m in TEX.findall(prose)}
    assert not found, f"TeX left in the text of pages: {sorted(found)}"


def _mathml_hook():
    spec = importlib.util.spec_from_file_location(
        "docs_hook_mathml", ROOT / "docs" / "hooks" / "mathml.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mathml_hook_converts_and_reports_invalid_tex(caplog):
    hook = _mathml_hook()
    out = hook.convert_html(
        '<p><span class="arithmatex">\\(a &lt; b\\)</span> and '
        '<div class="arithmatex">\\[\\frac{1}{2}\\]</div></p>'
    )
    assert '<span class="arithmatex"><math><mi>a</mi><mo>&lt;</mo>' in out
    assert '<div class="arithmatex"><math display="block"><mfrac>' in out
    bad = '<span class="arithmatex">\\(\\nosuchcommand x\\)</span>'
    with caplog.at_level(logging.WARNING, logger="mkdocs.hooks.mathml"):
        assert hook.convert_html(bad, "page.md") == bad
    assert "page.md" in caplog.text and "nosuchcommand" in caplog.text


# --------------------------------------------------------------------------
# The header: version and source


def _file_for_url(site: Path, page: Path, href: str) -> Path:
    base = "http://site/" + page.relative_to(site).as_posix()
    path = urlsplit(urljoin(base, href)).path.lstrip("/")
    return site / (path + "index.html" if path.endswith("/") or not path else path)


@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "guides/schedules/index.html",
        "api/index.html",
        "source/gradtransforms/base.py/index.html",
        "404.html",
    ],
)
def test_header_shows_the_version_and_links_to_the_source(site, page):
    # Material shows the link twice: in the header and in the drawer.
    parsed = read_page(site / page)
    version = _project_version()
    assert [" ".join(r.split()) for r in parsed.repositories] == [
        f"{PACKAGE} {version}"
    ] * 2
    assert len(parsed.source_links) == 2
    for href in parsed.source_links:
        assert href and not is_remote(href), f"{page}: the source link is {href!r}"
        target = _file_for_url(site, site / page, href)
        assert target == site / "source" / "index.html", f"{page}: {href} -> {target}"


def _package_files() -> list[str]:
    found = []
    for folder, dirs, names in os.walk(ROOT / PACKAGE, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        found += [
            Path(folder, n).relative_to(ROOT).as_posix()
            for n in names
            if n.endswith(".py")
        ]
    return sorted(found)


def test_every_module_has_a_source_page(site):
    files = _package_files()
    assert f"{PACKAGE}/models/mlp.py" in files, "the models were not followed"
    index = (site / "source" / "index.html").read_text(encoding="utf-8")
    for rel in files:
        page = site / "source" / rel / "index.html"
        assert page.is_file(), f"no source page for {rel}"
        assert f'href="{rel}/"' in index, f"source/index.html does not link {rel}"
    on_disk = {
        p.parent.relative_to(site / "source").as_posix()
        for p in (site / "source").rglob("*.py/index.html")
    }
    assert on_disk == set(files), "source pages of files that do not exist"


# --------------------------------------------------------------------------
# The models' page


def test_models_page_documents_the_models_package(site):
    import gradtransforms.models as models

    page = (site / "models/index.html").read_text(encoding="utf-8")
    other = (site / "initialization/index.html").read_text(encoding="utf-8")
    for name in models.__all__:
        anchor = f'id="{PACKAGE}.models.{name}"'
        assert anchor in page, f"models/ has no API entry for {name}"
        assert anchor not in other, f"{name} is still documented in initialization/"


# --------------------------------------------------------------------------
# Search


def test_search_index_and_worker_are_local(site):
    index = json.loads((site / "search" / "search_index.json").read_text("utf-8"))
    locations = [doc["location"] for doc in index["docs"]]
    for page in ("", "models/", "textbook/", "api/", "guides/schedules/"):
        assert page in locations, f"the search index has no {page!r}"
    assert not [loc for loc in locations if loc.startswith("source/")], (
        "the copies of the source should stay out of the search index"
    )
    assert any("nesterov" in doc["text"].lower() for doc in index["docs"])
    for page in ("index.html", "guides/schedules/index.html"):
        worker = read_page(site / page).config["search"]
        assert not is_remote(worker), f"{page}: search worker at {worker}"
        assert _file_for_url(site, site / page, worker).is_file()


@pytest.fixture
def served(site):
    """The site on an HTTP server on 127.0.0.1; yields its address."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None or os.name != "posix":
        pytest.skip("no Chromium to run the browser check (apt-get install chromium)")
    try:
        browser = Browser(binary, tmp_path / "profile")
    except (OSError, RuntimeError) as error:
        pytest.skip(f"{binary} did not start headless: {error!r}")
    try:
        yield browser
    finally:
        browser.close()


def test_search_and_maths_work_in_a_browser(served, browser):
    browser.open(served + "textbook/")
    assert browser.evaluate("document.querySelectorAll('math').length") > 50
    # The browser lays the formulas out as MathML, not as unknown elements.
    display = "getComputedStyle(document.querySelector('div.arithmatex math')).display"
    assert browser.evaluate(display) == "block math"
    assert browser.evaluate(
        "document.querySelector('msub').getBoundingClientRect().width"
    )

    browser.open(served)
    meta = "document.querySelector('.md-search-result__meta').textContent.trim()"
    ready = browser.wait_for(f"{meta} !== 'Initializing search' && {meta}")
    assert ready and ready != "Initializing search", "the search never started"
    browser.evaluate("document.querySelector('.md-search__input').focus()")
    browser.type("nesterov")
    links = "[...document.querySelectorAll('.md-search-result__item a')]"
    hits = browser.wait_for(f"{links}.map(a => a.getAttribute('href'))")
    assert hits, (
        f"no results for 'nesterov'; the search says {browser.evaluate(meta)!r}"
    )
    assert any("textbook/" in hit for hit in hits), hits
    assert "matching document" in browser.evaluate(meta)

    remote = [
        url
        for url in browser.requested()
        if not url.startswith((served, "data:", "blob:"))
    ]
    assert not remote, f"the pages requested from other hosts: {remote}"
