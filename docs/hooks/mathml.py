"""MkDocs hook: typeset every formula as MathML when the site is built.

`pymdownx.arithmatex` (in its "generic" mode) finds the maths of the Markdown
pages and of the docstrings that mkdocstrings renders, and wraps each formula
in `<span class="arithmatex">\\(...\\)</span>` (inline) or
`<div class="arithmatex">\\[...\\]</div>` (display). This hook replaces the TeX
inside those wrappers with MathML Core produced by `math_core` (the `math-core`
package of the `docs` extra), which current browsers draw natively. A page
therefore needs no script, font or stylesheet from anywhere to show its
formulas, and it shows them without JavaScript too.

A formula that `math_core` cannot convert (a misspelt or unsupported command)
is reported as a warning naming the page, so `mkdocs build --strict` fails on
it instead of publishing raw TeX.
"""

from __future__ import annotations

import html
import logging
import re

from math_core import LatexError, LatexToMathML

log = logging.getLogger("mkdocs.hooks.mathml")

_CONVERTER = LatexToMathML(fancy_error=False)

# The exact markup of arithmatex's generic mode; the TeX in it is HTML-escaped.
_ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">'
    r"(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<display>.*?)\\\])"
    r"</(?P=tag)>",
    flags=re.S,
)


def tex_to_mathml(tex: str, *, display: bool) -> str:
    """The MathML of one formula; raises `math_core.LatexError` if invalid."""
    return _CONVERTER.convert_with_local_state(tex.strip(), displaystyle=display)


def _typeset(escaped_tex: str, display: bool, where: str) -> str | None:
    """MathML for HTML-escaped TeX, or None (and a warning) if it is invalid."""
    tex = html.unescape(escaped_tex)
    try:
        return tex_to_mathml(tex, display=display)
    except LatexError as error:
        log.warning("%s: cannot typeset the formula %r: %s", where, tex, error)
        return None


def convert_html(text: str, where: str = "") -> str:
    """`text` with every arithmatex formula replaced by its MathML."""

    def replace(match: re.Match[str]) -> str:
        display = match["display"] is not None
        tex = match["display"] if display else match["inline"]
        mathml = _typeset(tex, display, where)
        if mathml is None:
            return match[0]
        return f'<{match["tag"]} class="arithmatex">{mathml}</{match["tag"]}>'

    return _ARITHMATEX.sub(replace, text)


# A heading's entry in the table of contents keeps arithmatex's delimiters
# (and its HTML escaping) but not its wrapper.
_TOC_TEX = re.compile(r"\\\((.*?)\\\)", flags=re.S)


def _convert_toc(items, where: str) -> None:
    for item in items:
        item.title = _TOC_TEX.sub(
            lambda m: _typeset(m[1], False, f"{where} (contents)") or m[0], item.title
        )
        _convert_toc(item.children, where)


def on_page_content(content: str, page, config, files) -> str:
    """Typeset the page's formulas, docstrings and table of contents included."""
    _convert_toc(page.toc, page.file.src_uri)
    return convert_html(content, page.file.src_uri)
