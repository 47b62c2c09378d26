# Strategy: the CLI reference is generated from the parser the ``sidkit`` command runs, at build
# time, so it cannot drift from the code. The directive imports the parser factory, walks the
# argparse tree (``parser._actions``; ``_SubParsersAction.choices`` for subcommands, any depth),
# and emits reST: one section per command with its usage, description, arguments as Sphinx
# ``option`` objects (so :option:`sidkit hash jhash --initval` links) and its epilog.
#
# argparse has no public introspection API. Only three long-stable internals are read --
# ``ArgumentParser._actions``, ``_SubParsersAction.choices`` and ``_choices_actions`` (the
# one-line help of each subcommand), all unchanged from Python 3.2 to 3.13 -- and argparse's
# own formatter is asked only for the usage line, at a fixed width so that the build does not
# depend on the terminal. Free text from the parser is escaped, never interpreted as reST: a
# help string cannot break the build.
"""Sphinx extension: ``.. sidkit-cli::`` renders the sidkit command line from its parser."""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

__all__ = ["SidkitCliDirective", "render_parser", "setup"]

#: Section adornments by depth below the page's title (depth 1 = ``sidkit hash``).
_ADORNMENTS = "-~^\"'`"
_USAGE_WIDTH = 88
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PUNCT = re.compile(r"([^A-Za-z0-9\s])")  # "_" too: name_ is a reference


def _text(value: str) -> str:
    """*value* as literal reST text on one line: whitespace collapsed, punctuation escaped.

    Escaping every non-word character keeps help strings from turning into markup (``*``,
    backquotes, a leading ``-`` that would start a list, ``|``, ``_`` references)."""
    return _PUNCT.sub(r"\\\1", " ".join(value.split()))


def _blocks(value: str) -> list[str]:
    """reST lines for a parser's description or epilog, paragraph by paragraph.

    The parsers use ``RawDescriptionHelpFormatter``: an indented paragraph is an example
    (``sidkit hash jhash 616263    ->  0x0e397631``) whose line breaks and columns are the
    point, so it becomes a literal block, as ``sidkit --help`` shows it; other paragraphs are
    prose, joined and escaped by :func:`_text`. A heading line just before the indented
    lines (``examples:``) stays prose."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", value.strip("\n")):
        lines = paragraph.splitlines()
        prose: list[str] = []
        code: list[str] = []
        for line in lines:
            if line[:1].isspace() or code:
                code.append(line)
            else:
                prose.append(line)
        if prose:
            out += [_text(" ".join(prose)), ""]
        if code:
            width = min(len(c) - len(c.lstrip()) for c in code if c.strip())
            out += [".. code-block:: text", ""]
            out += [f"   {_ANSI.sub('', c[width:])}".rstrip() for c in code]
            out += [""]
    return out


def _label(prog: str) -> str:
    return "cli-" + "-".join(prog.split())


def _usage(parser: argparse.ArgumentParser) -> list[str]:
    formatter = argparse.HelpFormatter(prog=parser.prog, width=_USAGE_WIDTH)
    groups = getattr(parser, "_mutually_exclusive_groups", [])
    formatter.add_usage(parser.usage, parser._actions, groups)
    text = _ANSI.sub("", formatter.format_help()).strip()
    return text.splitlines()


def _metavar(action: argparse.Action) -> str:
    """The placeholder argparse shows for *action*'s value(s)."""
    if action.metavar is not None:
        meta: str | tuple[str, ...] = action.metavar
    elif action.choices is not None:
        meta = "{" + ",".join(str(c) for c in action.choices) + "}"
    elif action.option_strings:
        meta = action.dest.upper()
    else:
        meta = action.dest
    nargs = action.nargs
    if isinstance(meta, tuple):
        return " ".join(meta)
    if nargs is None:
        return meta
    if nargs == argparse.OPTIONAL:
        return f"[{meta}]"
    if nargs == argparse.ZERO_OR_MORE:
        return f"[{meta} ...]"
    if nargs == argparse.ONE_OR_MORE:
        return f"{meta} [{meta} ...]"
    if isinstance(nargs, int):
        return " ".join([meta] * nargs)
    return meta


def _help(action: argparse.Action, prog: str) -> str:
    """The help string with argparse's ``%(default)s``-style fields expanded, as argparse does."""
    text = action.help or ""
    if "%" not in text:
        return text
    params: dict[str, Any] = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = prog
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    try:
        return text % params
    except (KeyError, TypeError, ValueError):
        return text


def _default_note(action: argparse.Action, help_text: str) -> str | None:
    default = action.default
    if action.nargs == 0 or default is None or default is argparse.SUPPRESS:
        return None
    if isinstance(default, bool) or not isinstance(default, str | int | float):
        return None
    if "default" in help_text.lower():
        return None  # the help already says it
    return f"default: ``{default}``"


def _is_help(action: argparse.Action) -> bool:
    return isinstance(action, argparse._HelpAction | argparse._VersionAction)


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, list[str], str | None, argparse.ArgumentParser]]:
    """(name, aliases, one-line help, parser) of each subcommand, in definition order."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps: dict[str, str | None] = {}
        for pseudo in getattr(action, "_choices_actions", []):
            helps[pseudo.dest] = pseudo.help
        names: dict[int, list[str]] = {}
        order: list[argparse.ArgumentParser] = []
        for name, sub in action.choices.items():
            if id(sub) not in names:
                names[id(sub)] = []
                order.append(sub)
            names[id(sub)].append(name)
        for sub in order:
            name, *aliases = names[id(sub)]
            short = helps.get(name)
            if short == argparse.SUPPRESS:
                continue
            yield name, aliases, short, sub


def _option_block(action: argparse.Action, prog: str) -> list[str]:
    if action.option_strings:
        meta = "" if action.nargs == 0 else " " + _metavar(action)
        signature = ", ".join(opt + meta for opt in action.option_strings)
    else:
        signature = action.dest
    help_text = _help(action, prog)
    notes = []
    if not action.option_strings and action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
        notes.append("optional")
    if action.option_strings and action.required:
        notes.append("required")
    default = _default_note(action, help_text)
    if default:
        notes.append(default)
    body = _text(help_text)
    if notes:
        body = f"{body} ({'; '.join(notes)})".strip()
    block = [f".. option:: {signature}", ""]
    if body:
        block += [f"   {body}", ""]
    return block


def render_parser(
    parser: argparse.ArgumentParser,
    depth: int = 0,
    short_help: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Iterator[str]:
    """reST lines for *parser* and, recursively, its subcommands.

    Depth 0 is the top-level command: no section of its own (the page has the title).
    Deeper parsers get a section titled with their full command line and a label
    ``cli-sidkit-hash-jhash`` for :ref: links.
    """
    prog = parser.prog
    if depth:
        title = f"``{prog}``"
        mark = _ADORNMENTS[min(depth, len(_ADORNMENTS)) - 1]
        yield from [f".. _{_label(prog)}:", "", title, mark * len(title), ""]
    if short_help and short_help.strip() and short_help != argparse.SUPPRESS:
        yield from [f"*{_text(short_help)}*", ""]
    if parser.description:
        yield from _blocks(parser.description)
    if aliases:
        yield from ["Aliases: " + ", ".join(f"``{a}``" for a in aliases) + ".", ""]
    yield from [".. code-block:: text", ""]
    yield from (f"   {line}" for line in _usage(parser))
    yield ""
    arguments = [
        a
        for a in parser._actions
        if not _is_help(a)
        and not isinstance(a, argparse._SubParsersAction)
        and a.help != argparse.SUPPRESS
    ]
    if arguments:
        yield from [f".. program:: {prog}", ""]
        for action in arguments:
            yield from _option_block(action, prog)
    if parser.epilog:
        yield from _blocks(parser.epilog)
    subs = list(_subcommands(parser))
    if subs:
        yield from ["Subcommands:", ""]
        for name, _aliases, short, sub in subs:
            line = f"* :ref:`{name} <{_label(sub.prog)}>`"
            yield line + (f" -- {_text(short)}" if short else "")
        yield ""
        for _name, sub_aliases, short, sub in subs:
            yield from render_parser(sub, depth + 1, short, tuple(sub_aliases))


def _load(spec: str) -> Callable[[], argparse.ArgumentParser]:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr or "_parser")
    if not callable(factory):
        raise TypeError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


class SidkitCliDirective(SphinxDirective):
    """``.. sidkit-cli:: [module:function]`` -- the whole command tree of one parser.

    The argument defaults to ``sidkit.cli._main:_parser``; the function must return an
    :class:`argparse.ArgumentParser`. The page is rebuilt when the module changes.
    """

    has_content = False
    optional_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {"depth": directives.nonnegative_int}

    def run(self) -> list[nodes.Node]:
        spec = self.arguments[0] if self.arguments else "sidkit.cli._main:_parser"
        try:
            parser = _load(spec)()
        except Exception as exc:  # any failure must name the directive, not crash the build
            raise self.error(f"sidkit-cli: cannot build the parser from {spec}: {exc!r}") from exc
        if not isinstance(parser, argparse.ArgumentParser):
            raise self.error(f"sidkit-cli: {spec} returned {type(parser).__name__}")
        module = importlib.import_module(spec.partition(":")[0])
        if getattr(module, "__file__", None):
            self.env.note_dependency(str(module.__file__))
        source, _line = self.get_source_info()
        lines = list(render_parser(parser, depth=self.options.get("depth", 0)))
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=source), container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register ``.. sidkit-cli::``."""
    app.add_directive("sidkit-cli", SidkitCliDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
