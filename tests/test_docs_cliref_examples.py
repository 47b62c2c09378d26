# Issue 18 leftover: the CLI reference (docs/_ext/sidkit_cliref.py) used to join every
# description and epilog into one escaped line, so the example paragraphs of `sidkit --help`
# (indented, aligned into columns) became one run-on sentence on the docs page. They are
# literal blocks now; prose paragraphs stay escaped text.
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from fixtures.modules import load_file

from sidkit.cli._main import _parser

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _cliref() -> ModuleType:
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("the CLI reference is a Sphinx extension: pip install -e '.[docs]'")
    return load_file("sidkit_cliref_examples", DOCS / "_ext" / "sidkit_cliref.py")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out += _parsers(sub)
    return out


def test_every_indented_example_line_is_a_literal_line_of_the_page() -> None:
    rst = list(_cliref().render_parser(_parser()))
    examples = [
        line
        for p in _parsers(_parser())
        for text in (p.description, p.epilog)
        if text
        for line in text.splitlines()
        if line[:1].isspace() and line.strip()
    ]
    assert len(examples) > 10  # the parsers do carry examples
    literal = {line.strip() for line in rst if line.startswith("   ")}
    missing = [e for e in examples if e.strip() not in literal]
    assert not missing, missing[:3]


def test_example_columns_survive_and_prose_is_escaped() -> None:
    blocks = _cliref()._blocks(
        "Some *prose*\nacross lines.\n\nexamples:\n  sidkit eras        every row\n"
        "  sidkit eras 6.13   one release"
    )
    assert blocks[0] == r"Some \*prose\* across lines\."
    at = blocks.index(".. code-block:: text")
    assert blocks[at - 2] == r"examples\:"
    assert blocks[at + 2 : at + 4] == [
        "   sidkit eras        every row",
        "   sidkit eras 6.13   one release",
    ]
