# Strategy: the generator never rewrites a kernel function; it copies the text out of the
# fetched source. This module finds a top-level function definition, struct/union/enum,
# typedef, #define or single line in a kernel file (skipping comments and literals while
# matching brackets) and returns it as a Snippet that carries a #line naming the file and line
# it came from. If the text is not there, it raises HarnessError naming what is missing -- no
# fallback.
"""Read one fetched kernel tree and copy functions, aggregates and macros out of it verbatim."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import WORK, HarnessError

__all__ = ["NETNS_HASH", "ZONES_COMMON", "ZONES_H", "KernelTree", "Snippet"]

# Kernel files named both by the harness build (copied from) and by the vector groups (cited).
NETNS_HASH = "include/net/netns/hash.h"
ZONES_COMMON = "include/linux/netfilter/nf_conntrack_zones_common.h"
ZONES_H = "include/net/netfilter/nf_conntrack_zones.h"


@dataclass(frozen=True)
class Snippet:
    path: str  # relative to the top of the kernel tree
    line: int  # 1-based line of the first copied line
    text: str

    def as_c(self) -> str:
        return f'#line {self.line} "{self.path}"\n{self.text}\n'


def _match_close(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing text[start] (== open_ch), skipping comments and literals."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                break
            i = end + 2
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise HarnessError(f"unbalanced {open_ch}{close_ch} from offset {start}")


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _lineno(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _declaration_start(text: str, pos: int) -> int:
    """Walk back from the line holding pos over the lines that belong to the same declaration."""
    start = _line_start(text, pos)
    while start > 0:
        prev_start = _line_start(text, start - 1)
        prev = text[prev_start : start - 1].rstrip()
        if (
            not prev
            or prev.endswith((";", "}", "*/", "{"))
            or prev.lstrip().startswith(("#", "//", "*"))
        ):
            break
        start = prev_start
    return start


class KernelTree:
    """Read access to one extracted kernel tree, with a record of the files used."""

    def __init__(self, series: str) -> None:
        self.series = series
        self.root = WORK / f"linux-source-{series}"
        self.version = (WORK / f"linux-source-{series}.version").read_text().strip()
        self._cache: dict[str, str] = {}

    @property
    def upstream(self) -> str:
        """The kernel release the Debian package carries (``6.1.192-2`` -> ``6.1.192``).

        Vector groups are labelled with it, not with the series: a longterm branch carries
        stable backports (6.1.192 hashes IPv6 addresses as mainline 6.5 does), and
        sidkit.kernel resolves eras down to the stable release.
        """
        return self.version.split("-")[0].split("+")[0]

    def has(self, path: str) -> bool:
        return (self.root / path).is_file()

    def read(self, path: str) -> str:
        if path not in self._cache:
            self._cache[path] = (self.root / path).read_text(encoding="utf-8", errors="replace")
        return self._cache[path]

    def function(self, path: str, name: str) -> Snippet:
        text = self.read(path)
        for m in re.finditer(rf"\b{re.escape(name)}\s*\(", text):
            line_start = _line_start(text, m.start())
            if text[line_start] in " \t":  # definitions start in column 0 (kernel style)
                continue
            close = _match_close(text, m.end() - 1, "(", ")")
            j = close + 1
            while j < len(text) and text[j] in " \t\n":
                j += 1
            if j >= len(text) or text[j] != "{":
                continue  # a prototype or a macro use
            end = _match_close(text, j, "{", "}")
            start = _declaration_start(text, m.start())
            return Snippet(path, _lineno(text, start), text[start : _line_end(text, end)])
        raise HarnessError(f"linux-source-{self.series}: no definition of {name}() in {path}")

    def aggregate(self, path: str, kind_name: str) -> Snippet:
        """A top-level ``struct X {...};``, ``union X {...};`` or ``enum X {...};``."""
        text = self.read(path)
        m = re.search(rf"^{re.escape(kind_name)}\s*\{{", text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no {kind_name} in {path}")
        end = _match_close(text, m.end() - 1, "{", "}")
        semi = text.index(";", end)
        return Snippet(path, _lineno(text, m.start()), text[m.start() : _line_end(text, semi)])

    def typedef(self, path: str, name: str) -> Snippet:
        """A top-level ``typedef ... name ...;`` (it may span lines)."""
        text = self.read(path)
        m = re.search(rf"^typedef\b[^;{{}}]*\b{re.escape(name)}\b[^;{{}}]*;", text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no typedef {name} in {path}")
        return Snippet(path, _lineno(text, m.start()), m.group(0))

    def define(self, path: str, name: str) -> Snippet:
        text = self.read(path)
        m = re.search(rf"^#define\s+{re.escape(name)}\b", text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no #define {name} in {path}")
        end = _line_end(text, m.start())
        while text[end - 1] == "\\":
            end = _line_end(text, end + 1)
        return Snippet(path, _lineno(text, m.start()), text[m.start() : end])

    def line(self, path: str, pattern: str) -> Snippet:
        text = self.read(path)
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no /{pattern}/ in {path}")
        start = _line_start(text, m.start())
        return Snippet(path, _lineno(text, start), text[start : _line_end(text, m.start())])
