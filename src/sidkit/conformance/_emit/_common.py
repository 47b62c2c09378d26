# Strategy: the few names every emitter shares, below all of them: the error (an
# InputValueError, so the CLI prints one line and exits 2), the shape of a selection, --limit,
# and the label that names a group's file, kernel and oracle in the emitted text. Nothing here
# renders a format.
"""What the JSON and C emitters share: EmitError, Selection, limit_tests, group labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from sidkit._errors import InputValueError
from sidkit.conformance._vectors import TestGroup, VectorFile

__all__ = ["EmitError", "Format", "Selection", "group_label", "limit_tests"]

Format = Literal["json", "c", "kunit"]
Selection = Sequence[tuple[VectorFile, TestGroup]]


class EmitError(InputValueError):
    """The selected vectors cannot be emitted in the requested format (the message says why)."""

    code = "not-emittable"


def limit_tests(selection: Selection, limit: int | None) -> list[tuple[VectorFile, TestGroup]]:
    """The same groups with at most *limit* tests each (the first ones: edge cases first)."""
    if limit is None:
        return list(selection)
    if limit < 1:
        raise InputValueError(f"--limit must be at least 1, got {limit}", code="bad-limit")
    return [(f, attrs.evolve(g, tests=g.tests[:limit])) for f, g in selection]


def group_label(f: VectorFile, g: TestGroup) -> str:
    """How emitted text names a group: its file, function, kernel and oracle."""
    src = g.source
    version = f" {src['version']}" if src.get("version") else ""
    return (
        f"{f.path.name}: {g.function}, kernel {g.kernel or '-'}, {g.oracle} {src['name']}{version}"
    )
