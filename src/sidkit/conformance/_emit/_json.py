# Strategy: the JSON form is a vector file again (hash_vectors.schema.json), so it is built
# from the selected groups' own fields and rendered the way the committed files are (one test
# per line). Results are copied, never recomputed; tcIds are renumbered only when the
# selection would repeat one, and then every comment names the file and tcId it came from.
"""Emit the selected groups as one vector file (same schema as conformance/vectors)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sidkit import __version__
from sidkit.conformance._emit._common import EmitError, Selection

__all__ = ["emit_json"]


def emit_json(selection: Selection, *, command: str) -> str:
    """The selected groups as one vector file (valid under hash_vectors.schema.json).

    tcIds are kept when they are unique across the selection; otherwise every test is
    renumbered and its comment names the file and tcId it came from.
    """
    if not any(g.tests for _, g in selection):
        raise EmitError("no vectors selected", code="nothing-selected")
    ids = [t.tc_id for _, g in selection for t in g.tests]
    renumber = len(ids) != len(set(ids))
    files = list({f.path: f for f, _ in selection}.values())
    algorithms = sorted({f.algorithm for f in files})
    header = [
        f"Selected by `{command}` (sidkit {__version__}) from "
        f"{', '.join(f.path.name for f in files)}. Each group's source names its oracle; "
        "the results are the files' own, unchanged.",
    ]
    if renumber:
        header.append("tcIds were renumbered; each comment names the file and tcId of origin.")
    for f in files:
        header += [f"{f.path.name}: {line}" for line in f.header]
    notes: dict[str, str] = {}
    used = {flag for _, g in selection for t in g.tests for flag in t.flags}
    for f in files:
        for flag, text in f.notes.items():
            if flag in used:
                notes.setdefault(flag, text)
    groups: list[dict[str, Any]] = []
    n = 0
    for f, g in selection:
        if not g.tests:
            continue
        tests = []
        for t in g.tests:
            n += 1
            comment = t.comment
            if renumber:
                comment = f"{comment} ({f.path.name} tcId {t.tc_id})".lstrip()
            tests.append(
                {
                    "tcId": n if renumber else t.tc_id,
                    "comment": comment,
                    "flags": list(t.flags),
                    "args": dict(t.args),
                    "result": t.result,
                }
            )
        group: dict[str, Any] = {"type": "HashTest", "function": g.function, "kernel": g.kernel}
        if g.comment:
            group["comment"] = g.comment
        group |= {"source": dict(g.source), "argTypes": dict(g.arg_types), "tests": tests}
        groups.append(group)
    doc = {
        "algorithm": "+".join(algorithms),
        "schema": "hash_vectors.schema.json",
        "generator": command,
        "header": header,
        "notes": notes,
        "numberOfTests": n,
        "testGroups": groups,
    }
    return _render_json(doc)


def _render_json(doc: Mapping[str, Any]) -> str:
    """Indented JSON with one test per line, like the committed files."""
    dump = json.dumps
    lines = ["{"]
    for k, v in doc.items():
        if k == "testGroups":
            continue
        if k == "header":
            lines.append('  "header": [')
            lines.append(",\n".join(f"    {dump(x)}" for x in v))
            lines.append("  ],")
        else:
            lines.append(f"  {dump(k)}: {dump(v)},")
    lines.append('  "testGroups": [')
    rendered = []
    for g in doc["testGroups"]:
        part = ["    {"]
        part += [f"      {dump(k)}: {dump(v)}," for k, v in g.items() if k != "tests"]
        part.append('      "tests": [')
        part.append(",\n".join(f"        {dump(t)}" for t in g["tests"]))
        part.append("      ]")
        part.append("    }")
        rendered.append("\n".join(part))
    lines.append(",\n".join(rendered))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"
