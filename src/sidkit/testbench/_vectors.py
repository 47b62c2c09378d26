# Strategy: steering vectors are conformance vectors for programs rather than functions: a
# group names the group size and the policy (offset, length, method, n, as a
# sidkit.steering.SteeringPolicy states it) and each case a payload, an optional source port
# and the socket it must reach (an index in bind order, or "default" for the kernel's own
# selection, or "drop"). They live in conformance/vectors/steering/ -- a folder of their own,
# so the function-vector loader (sidkit.conformance) never sees a schema it does not know.
# Running them through a third-party program is a bench run whose model is the vector table.
"""Steering conformance vectors, run through any program on the bench (private)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from sidkit.steering import FixedOffset, SteeringError, SteeringPolicy
from sidkit.testbench._bench import Fill, Probe
from sidkit.testbench._check import DROP, ModelContext, Outcome, Report, check
from sidkit.testbench._program import Program, TestbenchError

__all__ = ["SteeringGroup", "load_steering_vectors", "run_steering_group"]

MAX_VECTOR_FILE = 8 << 20


@attrs.frozen
class SteeringGroup:
    """One group of steering cases: payload/sport -> expected outcome on *sockets* sockets."""

    file: str
    source: str
    sockets: int
    policy: SteeringPolicy
    cases: tuple[tuple[int, bytes, int, Outcome], ...]  # (tcId, payload, sport, outcome)
    defines: tuple[tuple[str, int], ...] = ()


def _outcome(value: object, where: str) -> Outcome:
    if value == "default":
        return None
    if value == "drop":
        return DROP
    if type(value) is int and value >= 0:
        return value
    raise TestbenchError(f"{where}: result must be a socket index, 'default' or 'drop'")


def load_steering_vectors(root: str | Path) -> Iterator[SteeringGroup]:
    """Every group of every ``*.json`` steering vector file in *root*."""
    for path in sorted(Path(root).glob("*.json")):
        if path.stat().st_size > MAX_VECTOR_FILE:
            raise TestbenchError(f"{path}: larger than {MAX_VECTOR_FILE} bytes")
        try:
            doc: Any = json.loads(path.read_text())
            if doc.get("algorithm") != "steering":
                raise TestbenchError(f"{path}: not a steering vector file")
            for gi, g in enumerate(doc["testGroups"]):
                where = f"{path.name} group {gi}"
                p = g["policy"]
                policy = SteeringPolicy(
                    FixedOffset(int(p["offset"]), int(p["length"])),
                    p["method"],
                    int(p["n"]),
                    int(p.get("seed", 0)),
                )
                cases = tuple(
                    (
                        int(t["tcId"]),
                        bytes.fromhex(t["payload"]),
                        int(t.get("sport", 0)),
                        _outcome(t["result"], f"{where} tcId {t['tcId']}"),
                    )
                    for t in g["tests"]
                )
                source = g["source"]
                yield SteeringGroup(
                    path.name,
                    f"{source['name']} {source.get('version', '')}".strip(),
                    int(g["sockets"]),
                    policy,
                    cases,
                    tuple((str(k), int(v)) for k, v in g.get("defines", {}).items()),
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, TestbenchError | SteeringError):
                raise TestbenchError(str(exc)) from None
            raise TestbenchError(f"{path}: malformed steering vector file ({exc!r})") from None


def run_steering_group(
    group: SteeringGroup, program: Program, maps: dict[str, Fill] | None = None
) -> Report:
    """Send *group*'s payloads through *program* on a live group; the vectors are the model.
    A payload must have one outcome throughout a group (the model sees payloads only)."""
    by_payload: dict[bytes, Outcome] = {}
    for tc, payload, _sport, outcome in group.cases:
        if by_payload.setdefault(payload, outcome) != outcome:
            raise TestbenchError(f"{group.file} tcId {tc}: one payload, two expected outcomes")

    def from_table(payload: bytes, ctx: ModelContext) -> Outcome:
        return by_payload[payload]

    feed = [Probe(payload, sport=sport) for _, payload, sport, _ in group.cases]
    return check(program, group.sockets, feed, from_table, maps=maps)
