"""Sphinx configuration for sidkit's documentation."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

project = "sidkit"
author = "sidkit developers"
copyright = "2026, the sidkit developers"  # noqa: A001
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
html_theme = "furo"
html_title = "sidkit"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = True
# Type aliases and private-module classes that autodoc names but cannot link.
nitpick_ignore_regex = [
    (r"py:class", r"(sidkit\._.*|BytesLike|Address|attrs\..*|collections\.abc\..*|Callable.*)"),
    (r"py:class", r"(bytes|bytearray|memoryview|int|str|object|ipaddress\..*|pathlib\..*)"),
    (r"py:class", r"(Any|Path|Mapping.*|Sequence.*|Iterator.*|KernelVersion|Era)"),
    (r"py:.*", r"Literal.*"),
]
exclude_patterns = ["_build"]


def _eras_table() -> None:
    """Render sidkit.kernel.ERAS into an included reST file, so the docs show the data."""
    from sidkit.kernel import ERAS

    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 18 8 16 58",
        "",
        "   * - function",
        "     - from",
        "     - variant",
        "     - source and evidence",
    ]
    for e in ERAS:
        back = ""
        if e.backports:
            back = " Backported to: " + ", ".join(str(b) for b in e.backports) + "."
        lines += [
            f"   * - ``{e.function}``",
            f"     - {e.since}",
            f"     - {e.variant}",
            f"     - ``{e.source}`` -- {e.evidence}.{back}",
        ]
    (out / "eras_table.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


_eras_table()
