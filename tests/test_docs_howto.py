"""The documentation's executable parts: the steering how-to and the generated CLI reference.

docs/howto-steering.rst shows its code as Sphinx ``testcode``/``testoutput`` and ``doctest``
blocks, which the docs' doctest builder runs in CI. These tests run the same blocks -- read
from the page, never copied -- in the ordinary test suite, where a change to sidkit that
breaks the recipe shows up first. The live blocks' oracle is the kernel itself: which socket
of a real SO_REUSEPORT group received each datagram, in a private network namespace.

The CLI reference (docs/_ext/sidkit_cliref.py) is generated from sidkit.cli's parser. Its
tests take the set of subcommands from argparse's own ``--help`` output, not from the
extension's walk, and check that no help text can turn into reST markup.
"""

from __future__ import annotations

import argparse
import contextlib
import doctest
import functools
import importlib
import importlib.util
import io
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import oracle_unavailable
from fixtures.modules import load_file
from hypothesis import example, given
from hypothesis import strategies as st

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.cli._main import _parser

DOCS = Path(__file__).resolve().parent.parent / "docs"
_DIRECTIVE = re.compile(r"^\.\. (testcode|testoutput|doctest)::\s*$")
_OPTION = re.compile(r"^:[\w-]+:")
_FLAGS = doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL | doctest.DONT_ACCEPT_TRUE_FOR_1


def _blocks(page: Path) -> list[tuple[str, bool, str]]:
    """(kind, needs the live kernel, body) of every doctest-builder block of *page*, in order.

    Blocks may sit indented inside other constructs (a definition list); the body is
    everything more indented than the directive, dedented.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[tuple[str, bool, str]] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        m = _DIRECTIVE.match(stripped)
        if not m:
            i += 1
            continue
        indent = len(lines[i]) - len(stripped)
        live = False
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            text = lines[i].strip()
            if not body and _OPTION.match(text):  # directive options precede the body
                live = live or text.startswith(":skipif:")
            else:
                body.append(lines[i])
            i += 1
        out.append((m[1], live, _dedent(body)))
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _dedent(body: list[str]) -> str:
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    width = min((_indent(b) for b in body if b.strip()), default=0)
    return "\n".join(b[width:] for b in body) + "\n"


def _run_page(page: Path, *, live: bool) -> None:
    """Run the page's blocks in one namespace, as sphinx.ext.doctest does, and compare."""
    namespace: dict[str, Any] = {"__name__": "howto"}
    checker = doctest.OutputChecker()
    blocks = _blocks(page)
    assert blocks, f"no doctest blocks in {page}"
    pending: str | None = None  # output of the last testcode, waiting for its testoutput
    for kind, needs_live, body in blocks:
        if needs_live and not live:
            pending = None
            continue
        if kind == "doctest":
            test = doctest.DocTestParser().get_doctest(body, namespace, page.name, str(page), 0)
            runner = doctest.DocTestRunner(optionflags=_FLAGS)
            report = io.StringIO()
            runner.run(test, out=report.write, clear_globs=False)
            assert runner.failures == 0, report.getvalue()
        elif kind == "testcode":
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                exec(compile(body, str(page), "exec"), namespace)
            pending = stdout.getvalue()
        else:
            assert pending is not None, f"testoutput without testcode in {page}:\n{body}"
            assert checker.check_output(body, pending, _FLAGS), (
                f"expected:\n{body}\ngot:\n{pending}"
            )
            pending = None


def test_howto_steering_model_blocks() -> None:
    """Everything on the how-to page that needs no kernel: policy, mint, index growth."""
    _run_page(DOCS / "howto-steering.rst", live=False)


@pytest.mark.oracle
def test_howto_steering_rehearsal_on_the_live_kernel() -> None:
    """The whole page, including the asyncio rehearsal with both backends in a namespace."""
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    _run_page(DOCS / "howto-steering.rst", live=True)


def test_block_reader_finds_the_live_blocks() -> None:
    kinds = [(kind, live) for kind, live, _ in _blocks(DOCS / "howto-steering.rst")]
    assert ("testcode", True) in kinds and ("testcode", False) in kinds
    assert ("doctest", False) in kinds


# --- the CLI reference ---------------------------------------------------------------------


@functools.cache
def _cliref() -> ModuleType:
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("the CLI reference is a Sphinx extension: pip install -e '.[docs]'")
    return load_file("sidkit_cliref", DOCS / "_ext" / "sidkit_cliref.py")


def _help_of(path: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        _parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    return out.getvalue()


def _commands(path: list[str]) -> list[list[str]]:
    """Every command path below *path*, from argparse's own help ("{a,b,c} ..." in usage)."""
    usage = _help_of(path).split("\n\n")[0]
    m = re.search(r"\{([^{}]+)\} \.\.\.", usage)
    if not m:
        return [path]
    found = [path]
    for name in m[1].split(","):
        found += _commands([*path, name])
    return found


def test_cli_reference_has_a_section_for_every_subcommand() -> None:
    rst = "\n".join(_cliref().render_parser(_parser()))
    commands = _commands([])
    assert len(commands) > 5
    for path in commands[1:]:
        assert f".. _cli-sidkit-{'-'.join(path)}:" in rst, path
        assert f".. program:: sidkit {' '.join(path)}" in rst or "code-block" in rst


def test_cli_reference_renders_aliases_once_and_hides_suppressed() -> None:
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="cmd")
    alpha = sub.add_parser("alpha", aliases=["a"], help="first * command", description="Do `x`.")
    alpha.add_argument("--level", type=int, default=3, help="how deep")
    alpha.add_argument("items", nargs="*", help="things")
    sub.add_parser("hidden", help=argparse.SUPPRESS)
    rst = "\n".join(_cliref().render_parser(parser))
    assert rst.count(".. _cli-tool-alpha:") == 1
    assert "Aliases: ``a``." in rst
    assert "cli-tool-hidden" not in rst  # (argparse's own usage line still names it)
    assert ".. option:: --level LEVEL" in rst and "default: ``3``" in rst
    assert ".. option:: items" in rst and "(optional)" in rst
    assert r"first \* command" in rst and r"Do \`x\`\." in rst


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
@example("calls sidkit_check_<fn>() per table")  # a trailing "_" word is a reST reference
@example("see name_ and `x`_")
def test_help_text_never_becomes_markup(text: str) -> None:
    """Whatever a help string says, the reference shows exactly it: as a paragraph, and as the
    emphasised one-line summary of a subcommand."""
    _cliref()  # skips without the docs extra
    core = importlib.import_module("docutils.core")
    nodes = importlib.import_module("docutils.nodes")
    escaped = _cliref()._text(text)
    shown = " ".join(text.split())
    for source, kind in ((escaped, nodes.paragraph), (f"*{escaped}*", nodes.emphasis)):
        if kind is nodes.emphasis and not shown:
            continue  # an empty summary is never emphasised (render_parser skips it)
        doctree = core.publish_doctree(
            source, settings_overrides={"report_level": 5, "halt_level": 5}
        )
        problems = [m for m in doctree.findall(nodes.system_message) if m["level"] >= 2]
        assert not problems, (text, source)
        found = list(doctree.findall(kind))
        assert [n.astext() for n in found] == ([shown] if shown else []), (text, source)
