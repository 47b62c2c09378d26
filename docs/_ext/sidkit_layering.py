# Strategy: the one declaration of sidkit's layering and the import graph read from the code,
# kept free of Sphinx and docutils so that the test suite (tests/test_layers.py) runs with the
# test extras alone. LAYERS is sidkit's layering (top to bottom); import_graph() reads every
# import of src/sidkit with the ast module (lazy and TYPE_CHECKING imports included: they are
# dependencies too); dot() writes the picture the ``.. sidkit-layers::`` directive
# (sidkit_layers.py) renders: the families as boxes in their layers, each listing its modules,
# the import arrows between families (grey, computed) and the data flow (blue, DATA_FLOW).
"""sidkit's package layers and import graph (no Sphinx needed; the docs draw them)."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DATA_FLOW",
    "LAYERS",
    "SRC",
    "dot",
    "family_graph",
    "family_of",
    "import_graph",
    "layer_of",
    "modules",
]

SRC = Path(__file__).resolve().parents[2] / "src"

#: sidkit's families from the top layer to the bottom. A family is a subpackage (or a single
#: module) of sidkit; ``base`` is the error hierarchy and input validation every family uses.
#: An import between two families must point to a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("demo", "testbench"),
    ("flows", "conntrack", "conformance", "sessions"),
    ("reuseport", "quiclb", "extract"),
    ("kernel", "steering", "keys"),
    ("hashing",),
    ("bpf",),
    ("base",),
)

#: Where data goes, as (from, to, label); "input" and "live kernel" are the world outside.
DATA_FLOW: tuple[tuple[str, str, str], ...] = (
    ("input", "flows", "pcap / pcapng bytes"),
    ("flows", "extract", "UDP payload + 5-tuple"),
    ("extract", "keys", "SessionId"),
    ("keys", "conntrack", "FlowKey"),
    ("extract", "steering", "SidLocation"),
    ("quiclb", "steering", "server-ID policy"),
    ("steering", "reuseport", "policy / program"),
    ("kernel", "reuseport", "era's selection form"),
    ("hashing", "kernel", "hash forms"),
    ("steering", "bpf", "cBPF / eBPF"),
    ("bpf", "live kernel", "bpf(2), setsockopt"),
    ("conformance", "kernel", "oracle vectors"),
)

_BASE = {"sidkit", "sidkit._errors", "sidkit._validate"}
_FACES = {
    "sidkit.plugin": "extract",  # a public face that sits outside its family's folder
    "sidkit._plot": "demo",  # the demo's picture, apart only so matplotlib loads on request
}


def modules(src: Path = SRC) -> Iterator[tuple[str, Path]]:
    """Every module of the sidkit package as (dotted name, file)."""
    root = src / "sidkit"
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def family_of(module: str) -> str:
    """The family a dotted sidkit module belongs to (``sidkit.steering._ir`` -> ``steering``)."""
    if module in _BASE:
        return "base"
    if module in _FACES:
        return _FACES[module]
    return module.split(".")[1]


def layer_of(family: str) -> int:
    """The index of *family*'s layer in :data:`LAYERS` (0 = top)."""
    for i, layer in enumerate(LAYERS):
        if family in layer:
            return i
    raise KeyError(f"family {family!r} is in no layer of LAYERS (docs/_ext/sidkit_layers.py)")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "sidkit")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "sidkit":
                continue
            # "from sidkit.bpf import cbpf" imports the submodule sidkit.bpf.cbpf; the package
            # itself counts only when a name is taken from it. (A package is always initialised
            # before its submodules, so that edge says nothing about the design.)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            yield from subs
            if len(subs) < len(node.names):
                yield base


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Each sidkit module's imports of other sidkit modules (names that are not modules are
    dropped, so ``from sidkit.kernel import profile`` counts as importing ``sidkit.kernel``)."""
    known = dict(modules(src))
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found = _imports(tree, name, path.name == "__init__.py", set(known))
        graph[name] = {m for m in found if m in known and m != name}
    return graph


def _family_modules() -> dict[str, list[str]]:
    """The files of each family, as the folder tree shows them (``__init__.py`` left out)."""
    out: dict[str, list[str]] = {}
    for name, path in modules():
        if path.name != "__init__.py":
            out.setdefault(family_of(name), []).append(path.name)
    return out


def family_graph() -> set[tuple[str, str]]:
    """The imports between families, as (importer, imported) pairs."""
    return {
        (family_of(a), family_of(b))
        for a, targets in import_graph().items()
        for b in targets
        if family_of(a) != family_of(b)
    }


def _reduced(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """*edges* without those implied by a longer path (a transitive reduction), and without the
    imports of the base layer, which every family has: what is left is readable as a picture."""
    edges = {(a, b) for a, b in edges if b != "base"}

    def reachable(start: str, skip: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            node = todo.pop()
            for a, b in edges:
                if a == node and (a, b) != skip and b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    return {(a, b) for a, b in edges if b not in reachable(a, (a, b))}


def dot() -> str:
    """The Graphviz text of the layers picture."""
    edges = _reduced(family_graph())
    members = _family_modules()
    lines = [
        "digraph sidkit {",
        '  graph [rankdir=TB, nodesep=0.25, ranksep=0.55, fontname="Helvetica", fontsize=14];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f7f7f7", color="#888888",'
        ' fontname="Helvetica", fontsize=14, margin="0.12,0.06"];',
        '  edge [fontname="Helvetica", fontsize=12];',
        '  input [label="captures, sockets, tests", shape=ellipse, fillcolor="#ffffff"];',
        '  "live kernel" [shape=ellipse, fillcolor="#fff4d6"];',
    ]
    for i, layer in enumerate(LAYERS):
        lines.append(f"  subgraph layer{i} {{ rank=same;")
        for family in layer:
            files = members.get(family, [])
            folder = "sidkit/" if family == "base" else f"sidkit.{family}"
            body = "\\l".join(" ".join(files[j : j + 2]) for j in range(0, len(files), 2))
            lines.append(f'    "{family}" [label="{folder}\\n{body}\\l"];')
        lines.append("  }")
    lines += ["  { rank=min; input; }", '  { rank=same; "live kernel"; bpf; }']
    # Invisible edges from each layer to the next keep the layers in their declared order.
    for upper, lower in itertools.pairwise(LAYERS):
        lines.append(f'  "{upper[0]}" -> "{lower[0]}" [style=invis];')
    for a, b in sorted(edges):
        lines.append(f'  "{a}" -> "{b}" [color="#c8c8c8", arrowsize=0.5];')
    for a, b, label in DATA_FLOW:
        lines.append(
            f'  "{a}" -> "{b}" [color="#1f5fbf", fontcolor="#1f5fbf", penwidth=1.6,'
            f' label=" {label}", constraint=false];'
        )
    lines.append("}")
    return "\n".join(lines)
