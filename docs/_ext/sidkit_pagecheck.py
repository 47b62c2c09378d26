# Strategy: some mistakes never reach Sphinx's warning stream -- the theme draws them into the
# page. Furo paints a red "ERROR: Adding a table of contents ..." box over every ``.. contents::``
# from its stylesheet alone, docutils leaves ``problematic`` spans and ``system-message`` blocks
# when a page is built past an error, and a page without a title is listed as "<no title>" in
# search. ``-W`` passes over all of them. This extension reads what the reader gets -- the built
# HTML pages, the stylesheets they link and the search index -- after every HTML build and turns
# each such mark into a warning, so ``-W`` fails the build.
#
# The theme's marks are not hard-coded: any stylesheet rule that paints an element in the
# theme's "problematic" colour or writes a generated ``content: "ERROR..."``/``"WARNING..."``
# is taken as a mark, and its selectors are matched against the pages. The matcher understands
# the selector forms such rules use (classes, tags and ``:not(.class)`` in one compound; for a
# descendant selector only its last compound is matched, which can only flag more).
"""Sphinx extension: fail the build on errors the theme or docutils draw into a page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

__all__ = ["Mark", "page_problems", "setup", "stylesheet_marks"]

logger = logging.getLogger(__name__)

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
# A declaration that draws a mark: the theme's problematic colour used as a value (not a
# variable definition, which starts with "--"), or generated text that shouts ERROR/WARNING.
_DRAWS = re.compile(
    r"(?:^|;)\s*(?!--)[\w-]+\s*:\s*var\(--color-problematic\)|content\s*:\s*[\"'](?:ERROR|WARNING)",
    re.I,
)
_COMPOUND = re.compile(r"^(?P<tag>[a-z][\w-]*)?(?P<rest>(?:\.[\w-]+|:not\(\.[\w-]+\))*)$", re.I)

#: A stylesheet rule that draws a mark: (tag or "", classes required, classes excluded).
Mark = tuple[str, frozenset[str], frozenset[str], str]


def stylesheet_marks(css: str) -> list[Mark]:
    """The selectors of every rule in *css* that draws an error mark, as matchable parts.

    Rules inside ``@media`` blocks are found too (the block's own braces are skipped over by
    matching innermost rules only). Selectors this matcher cannot read are skipped.
    """
    marks: list[Mark] = []
    for selectors, body in _RULE.findall(_COMMENT.sub("", css)):
        if not _DRAWS.search(body):
            continue
        for selector in selectors.split(","):
            last = selector.strip().split()[-1] if selector.strip() else ""
            last = re.sub(r"::?(before|after)$", "", last.split(">")[-1])
            m = _COMPOUND.match(last)
            if not m or not (m["tag"] or m["rest"]):
                continue
            need = frozenset(re.findall(r"(?<!\()\.([\w-]+)", m["rest"]))
            avoid = frozenset(re.findall(r":not\(\.([\w-]+)\)", m["rest"]))
            marks.append(((m["tag"] or "").lower(), need, avoid, selector.strip()))
    return marks


class _Page(HTMLParser):
    """Collects each element's tag and classes, the stylesheets linked and the <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, frozenset[str], int]] = []
        self.stylesheets: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, frozenset((a.get("class") or "").split()), self.getpos()[0]))
        if tag == "link" and "stylesheet" in (a.get("rel") or "").split() and a.get("href"):
            self.stylesheets.append(str(a["href"]).split("?")[0])
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def page_problems(outdir: Path) -> list[str]:
    """Every error mark a reader would see in the HTML build at *outdir*, one line each."""
    problems: list[str] = []
    css_cache: dict[Path, list[Mark]] = {}
    for page in sorted(outdir.rglob("*.html")):
        rel = page.relative_to(outdir)
        if rel.parts[0] in ("_static", "_sources", "_images"):
            continue
        parser = _Page()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        if "<no title>" in parser.title:
            problems.append(f"{rel}: the page has no title (search lists it as '<no title>')")
        marks: list[Mark] = []
        for href in parser.stylesheets:
            path = (page.parent / href).resolve()
            if path not in css_cache:
                css_cache[path] = (
                    stylesheet_marks(path.read_text(encoding="utf-8", errors="replace"))
                    if path.is_file()
                    else []
                )
            marks += css_cache[path]
        for tag, classes, line in parser.elements:
            if classes & {"system-message", "problematic"}:
                kind = "system-message" if "system-message" in classes else "problematic"
                problems.append(f"{rel}:{line}: docutils left a '{kind}' element in the page")
                continue
            for mtag, need, avoid, selector in marks:
                if (not mtag or mtag == tag) and need <= classes and not (avoid & classes):
                    problems.append(
                        f"{rel}:{line}: the theme draws an error over <{tag} class="
                        f"'{' '.join(sorted(classes))}'> (stylesheet rule {selector!r})"
                    )
                    break
    index = outdir / "searchindex.js"
    if index.is_file():
        text = index.read_text(encoding="utf-8")
        data = json.loads(text[text.index("(") + 1 : text.rindex(")")])
        for doc, title in zip(data.get("docnames", []), data.get("titles", []), strict=False):
            if not title or "<no title>" in title:
                problems.append(f"searchindex.js: {doc} is listed as '<no title>'")
    return problems


def _check(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for problem in page_problems(Path(app.outdir)):
        logger.warning(problem, type="sidkit", subtype="pagecheck")


def setup(app: Sphinx) -> dict[str, Any]:
    """Check every HTML build for error marks drawn into its pages."""
    app.connect("build-finished", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
