"""The flow limit (issue 18): past ``max_flows`` a datagram that would start a flow joins
none and is counted in ``over_limit``; existing flows keep counting; memory per flow stays
under a stated bound."""

from __future__ import annotations

import gc
import json
import struct
import tracemalloc
from pathlib import Path

import pytest
from fixtures.modules import bench_flows

import sidkit.cli
from sidkit import SidkitError
from sidkit.flows._analyzer import FlowAnalyzer, analyze
from sidkit.flows._many import analyze_many
from sidkit.flows._read import read_into

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


def _frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    ulen = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, src, dst)
    return _ETH + ip + struct.pack("!HHHH", sport, dport, ulen, 0) + payload


def _one_datagram_flows(path: Path, flows: int, repeat_first: int = 0) -> int:
    """*flows* one-datagram flows without a session ID (DNS-like, distinct client ports),
    then *repeat_first* more datagrams on the first flow's tuple. Returns datagrams."""
    recs = []
    server = bytes([10, 0, 0, 1])
    ts = 1_700_000_000
    tuples = [(bytes([10, 1, i >> 8 & 0xFF, i & 0xFF]), 1024 + i % 60000) for i in range(flows)]
    order = tuples + [tuples[0]] * repeat_first
    for i, (client, port) in enumerate(order):
        f = _frame(client, port, server, 53, b"\x12\x34" + bytes(20))
        recs.append(struct.pack("<IIII", ts + i, 0, len(f), len(f)) + f)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(recs))
    return len(order)


@pytest.mark.parametrize("fast", [True, False])
def test_more_flows_than_the_limit_gives_the_documented_counts(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "many.pcap"
    n = _one_datagram_flows(path, 50, repeat_first=5)
    report = analyze(path, max_flows=20, fast=fast)
    s = report.summary
    # the first 20 flows are kept whole (the first one also got its 5 later datagrams);
    # the 30 datagrams that would have started flows 21..50 joined none
    assert s.tuple_flows == 20 and s.sid_flows == 0
    assert s.over_limit == 30
    assert s.max_flows == 20
    assert s.udp == n and s.without_sid == n
    assert sum(f.datagrams for f in report.flows) + s.over_limit == s.udp
    assert report.flows[0].datagrams == 6
    assert report.summary.to_json()["over_limit"] == 30


def test_sid_flows_past_the_limit_fast_equals_reference(tmp_path: Path) -> None:
    bench_flows = _bench()
    path = tmp_path / "hs.pcap"
    bench_flows.make_capture(path, 3000, connections=50, lifetime=10)  # type: ignore[attr-defined]
    fast = analyze(path, max_flows=100)
    slow = analyze(path, max_flows=100, fast=False)
    assert fast == slow
    s = fast.summary
    assert s.sid_flows + s.tuple_flows <= 100
    assert s.over_limit > 0
    assert sum(f.datagrams for f in fast.flows) + s.over_limit == s.udp
    unlimited = analyze(path)
    assert unlimited.summary.over_limit == 0
    assert unlimited.summary.sid_flows + unlimited.summary.tuple_flows > 100


def test_many_captures_share_one_limit_in_one_pass(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _one_datagram_flows(a, 15)
    _one_datagram_flows(b, 15)  # the same tuples: they join the flows of a
    report = analyze_many([a, b], max_flows=10)
    s = report.summary
    assert s.tuple_flows == 10 and s.over_limit == 10 and s.max_flows == 10
    assert sum(f.datagrams for f in report.flows) == 20


@pytest.mark.parametrize("bad", [0, -1, 2**32, "10", 1.5])
def test_max_flows_is_checked(bad: object) -> None:
    with pytest.raises(SidkitError):
        FlowAnalyzer(max_flows=bad)  # type: ignore[arg-type]


def test_cli_max_flows_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.pcap"
    _one_datagram_flows(path, 12)
    assert sidkit.cli.main(["flows", str(path), "--max-flows", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["max_flows"] == 5 and summary["over_limit"] == 7
    assert sidkit.cli.main(["flows", str(path), "--max-flows", "5"]) == 0
    out = capsys.readouterr().out
    assert "7 datagrams over the flow limit (--max-flows 5)" in out


# Per-flow memory bounds (CPython 3.11, tracemalloc, the growth from 1,000 to 5,000 flows
# divided by 4,000). A one-datagram tuple flow (issue 18's worst case: every datagram a new
# flow) costs its FlowState, one TupleCounter, the tuple key and two index entries: about
# 770 bytes measured, bound 1,000. A QUIC flow of one client Initial also costs the CIDs and
# per-endpoint lengths learned from it: about 1,370 measured, bound 1,700 -- what
# DEFAULT_MAX_FLOWS (500,000 flows, well under a gigabyte) is sized by.
TUPLE_FLOW_BOUND = 1000
QUIC_FLOW_BOUND = 1700


def _bench() -> object:
    return bench_flows()


def _held(path: Path, **kwargs: int) -> tuple[int, FlowAnalyzer]:
    """Bytes the analyzer holds after reading *path* (tracemalloc's current size)."""
    a = FlowAnalyzer(**kwargs)  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            read_into(a, fh, str(path), None, None)
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current, a


def test_per_flow_memory_stays_under_the_bound(tmp_path: Path) -> None:
    small, big = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _one_datagram_flows(small, 1000)
    _one_datagram_flows(big, 5000)
    (s0, a0), (s1, a1) = _held(small), _held(big)
    assert (a0.report().summary.tuple_flows, a1.report().summary.tuple_flows) == (1000, 5000)
    per_flow = (s1 - s0) / 4000
    assert per_flow < TUPLE_FLOW_BOUND, per_flow
    bench = _bench()
    q0, q1 = tmp_path / "q0.pcap", tmp_path / "q1.pcap"
    # one datagram per connection: every datagram a client Initial, a new SID flow
    bench.make_capture(q0, 1000, connections=1000)  # type: ignore[attr-defined]
    bench.make_capture(q1, 5000, connections=5000)  # type: ignore[attr-defined]
    (s0, a0), (s1, a1) = _held(q0), _held(q1)
    assert (a0.report().summary.sid_flows, a1.report().summary.sid_flows) >= (900, 4500)
    per_flow = (s1 - s0) / (a1._live - a0._live)
    assert per_flow < QUIC_FLOW_BOUND, per_flow


def test_memory_is_flat_past_the_limit(tmp_path: Path) -> None:
    # past max_flows nothing more is held: neither flows nor what their long headers teach
    bench = _bench()
    q0, q1 = tmp_path / "q0.pcap", tmp_path / "q1.pcap"
    bench.make_capture(q0, 1000, connections=1000)  # type: ignore[attr-defined]
    bench.make_capture(q1, 5000, connections=5000)  # type: ignore[attr-defined]
    (s0, a0), (s1, a1) = _held(q0, max_flows=500), _held(q1, max_flows=500)
    assert a0._live == a1._live == 500
    assert a1.over_limit - a0.over_limit == 4000
    assert abs(s1 - s0) < 4000 * 16, (s0, s1)  # < 16 bytes per refused flow
