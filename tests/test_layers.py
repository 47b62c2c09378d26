"""The package layout is the architecture: imports between families point down the declared
layers (docs/_ext/sidkit_layering.py, the same declaration the architecture page draws), no two
modules import each other through any chain, and every public face keeps its names."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import sidkit_layering as layers

GRAPH = layers.import_graph()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of *graph* (as the modules along it), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_sees_real_imports() -> None:
    """A reader that found nothing would pass every rule below; these edges exist."""
    assert "sidkit.bpf.cbpf" in GRAPH["sidkit.kernel._eras"]  # from sidkit.bpf import cbpf
    assert "sidkit.hashing._jhash" in GRAPH["sidkit.kernel._profile"]
    assert "sidkit.extract._location" in GRAPH["sidkit.extract._contract"]
    assert "sidkit.demo" in GRAPH["sidkit.cli._main"]  # a lazy import inside a function
    assert len(GRAPH) > 40


def test_no_module_imports_itself_through_a_chain() -> None:
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_cycle_finder_finds_a_planted_cycle() -> None:
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["sidkit.hashing._jhash"].add("sidkit.kernel._profile")
    found = _cycle(planted)
    assert found is not None and found[0] == found[-1]


def test_every_family_is_in_one_layer() -> None:
    declared = [f for layer in layers.LAYERS for f in layer]
    assert len(declared) == len(set(declared))
    for module in GRAPH:
        layers.layer_of(layers.family_of(module))  # KeyError names an undeclared family


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports of *graph* between families that do not point to a lower layer."""
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if layers.family_of(a) != layers.family_of(b)
        and layers.layer_of(layers.family_of(b)) <= layers.layer_of(layers.family_of(a))
    )


def test_imports_between_families_point_down() -> None:
    upward = _upward(GRAPH)
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_upward_finder_finds_planted_imports() -> None:
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["sidkit.hashing._jhash"].add("sidkit.kernel")  # up
    planted["sidkit.steering._ir"].add("sidkit.keys")  # sideways, same layer
    assert _upward(planted) == [
        "sidkit.hashing._jhash -> sidkit.kernel",
        "sidkit.steering._ir -> sidkit.keys",
    ]


@pytest.mark.parametrize(
    ("face", "names"),
    [
        ("sidkit.kernel", ["ABSENT", "ERAS", "LATEST", "NOT_MODELLED", "Era", "KernelProfile"]),
        ("sidkit.steering", ["SteeringPolicy", "attach", "compile_cbpf", "SocketLike", "Guard"]),
        ("sidkit.extract", ["Extractor", "SidLocation", "Guard", "MalformedPacketError"]),
        ("sidkit.plugin", ["hookimpl", "ProtocolSpec", "PluginHost", "parse_option_assignments"]),
        ("sidkit.reuseport", ["DROP", "Group", "HashRecorder", "Member", "SeedPatch"]),
        ("sidkit.conformance", ["LIVE_ORACLES", "run_group_live", "load_vector_file"]),
        ("sidkit.flows", ["analyze", "FlowAnalyzer", "format_ns", "iter_rows", "sid_key"]),
        ("sidkit.conntrack", ["Table", "DEFAULT_ZONE", "Validator", "TableFullError"]),
        ("sidkit.bpf.cbpf", ["Assembler", "SockFilter", "run"]),
        ("sidkit.bpf.ebpf", ["Assembler", "run_sk_reuseport"]),
        ("sidkit.bpf.netns", ["Lab", "run_isolated", "netns_available"]),
        ("sidkit.cli", ["main"]),
    ],
)
def test_public_faces_export_their_names(face: str, names: list[str]) -> None:
    module = importlib.import_module(face)
    exported = set(getattr(module, "__all__", ()))
    missing = [n for n in names if n not in exported or not hasattr(module, n)]
    assert not missing, f"{face} lost {missing}"
