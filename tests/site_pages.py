"""Reading the pages of a built documentation site (tests/test_docs_site.py).

`read_page` parses one HTML page with the standard library's parser: what the
page makes a browser fetch, the text of its prose (outside code and maths),
and Material's configuration and repository link.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "CSS_URL",
    "TEX",
    "PageReader",
    "is_remote",
    "read_page",
]


# Tags that make a browser fetch something when the page is shown, with the
# attributes that name it. Plain links (<a href>) are fetched only on a click.
LOADING = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
}
# <link> relations that only describe the page.
DESCRIPTIVE_LINKS = {"canonical", "alternate", "prev", "next", "author", "license"}
# Elements whose text is code, maths or not text at all.
NOT_PROSE = {"code", "pre", "math", "script", "style", "textarea", "kbd", "samp"}
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")
TEX = re.compile(r"\$[^$\n]*\$|\\[()\[\]]|\\[A-Za-z]+")


def is_remote(url: str) -> bool:
    url = url.strip()
    return url.startswith("//") or urlsplit(url).scheme in ("http", "https", "ftp")


class PageReader(HTMLParser):
    """What a page loads, its prose text, and Material's configuration."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []
        self.styles: list[str] = []
        self.prose: list[str] = []
        self.config: dict | None = None
        self.source_links: list[str] = []
        self._skip: list[str] = []
        self._in_config = False
        self._in_style = False
        self._in_repository = False
        self.repositories: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and DESCRIPTIVE_LINKS & set((attrs.get("rel") or "").split()):
            pass
        else:
            for attr in LOADING.get(tag, ()):
                value = attrs.get(attr)
                if value:
                    # A srcset lists "url width" pairs.
                    self.loads += [u.split()[0] for u in value.split(",") if u.strip()]
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        if tag == "style":
            self._in_style = True
        if tag == "script" and attrs.get("id") == "__config":
            self._in_config = True
        if tag == "a" and "md-source" in (attrs.get("class") or "").split():
            self.source_links.append(attrs.get("href") or "")
        if tag == "div" and "md-source__repository" in (attrs.get("class") or ""):
            self._in_repository = True
            self.repositories.append("")
        if tag in NOT_PROSE:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._in_config = False
        if tag == "div":
            self._in_repository = False

    def handle_data(self, data):
        if self._in_config:
            self.config = json.loads(data)
        if self._in_style:
            self.styles.append(data)
        if self._in_repository:
            self.repositories[-1] += data
        if not self._skip:
            self.prose.append(data)


def read_page(page: Path) -> PageReader:
    parser = PageReader()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser
