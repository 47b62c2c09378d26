# Strategy: the committed vector files must be stable and diff-friendly, so they are rendered
# by hand rather than by json.dumps(indent=...): the top-level keys in the order given, then
# one test per line. This is the only place that decides the byte layout of the files.
"""Render a vector document as the committed files are laid out (one test per line)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render"]


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def render(doc: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON: one test per line."""
    out = ["{"]
    keys = [k for k in doc if k != "testGroups"]
    for k in keys:
        v = doc[k]
        if k == "header":
            out.append('  "header": [')
            out.append(",\n".join(f"    {_dump(line)}" for line in v))
            out.append("  ],")
        else:
            out.append(f"  {_dump(k)}: {_dump(v)},")
    out.append('  "testGroups": [')
    groups = []
    for g in doc["testGroups"]:
        lines = ["    {"]
        for k, v in g.items():
            if k != "tests":
                lines.append(f"      {_dump(k)}: {_dump(v)},")
        lines.append('      "tests": [')
        lines.append(",\n".join(f"        {_dump(t)}" for t in g["tests"]))
        lines.append("      ]")
        lines.append("    }")
        groups.append("\n".join(lines))
    out.append(",\n".join(groups))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"
