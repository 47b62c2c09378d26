"""The partial report is a mergeable value: its merge is associative and commutative
(Hypothesis, over generated reports whose flows share session IDs and 5-tuples), and
merging the per-file partials of generated traffic split at random places gives the
sequential pass's report (for traffic without the cross-file QUIC state docs/flows-many.rst
lists)."""

from __future__ import annotations

import itertools
import struct
import tempfile
from pathlib import Path
from typing import Literal

import pytest
from fixtures.packets import dtls12_cid, wireguard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit.flows import (
    Flow,
    FlowReport,
    PartialReport,
    Summary,
    TupleStats,
    analyze,
    analyze_many,
    merge_partials,
)

ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


@st.composite
def tuple_stats(draw: st.DrawFn) -> TupleStats:
    first = draw(st.integers(0, 50))
    return TupleStats(
        draw(st.sampled_from(ADDRS)),
        draw(st.sampled_from([1, 2])),
        draw(st.sampled_from(ADDRS)),
        draw(st.sampled_from([1, 2])),
        first,
        first + draw(st.integers(0, 50)),
        draw(st.integers(1, 5)),
        draw(st.integers(0, 500)),
    )


@st.composite
def flows(draw: st.DrawFn, by: str) -> Flow:
    tuples = draw(st.lists(tuple_stats(), min_size=1, max_size=3))
    kind: Literal["sid", "tuple"] = draw(st.sampled_from(["sid", "tuple"]))
    if kind == "tuple":
        # a tuple flow's tuples are the two directions of one 5-tuple
        t = tuples[0]
        tuples = [t] + (
            [TupleStats(t.dst, t.dport, t.src, t.sport, t.first_ns, t.last_ns, 1, 1)]
            if draw(st.booleans()) and (t.src, t.sport) != (t.dst, t.dport)
            else []
        )
    tuples = list({(t.src, t.sport, t.dst, t.dport): t for t in tuples}.values())
    sids = tuple(
        dict.fromkeys(draw(st.lists(st.sampled_from(["aa", "bb", "cc", "dd"]), max_size=3)))
    )
    if kind == "sid" and not sids:
        sids = ("ee",)
    if kind == "tuple" and by == "sid":
        sids = ()
    protocol = draw(st.sampled_from(["quic", "wireguard"])) if kind == "sid" or sids else None
    return Flow(
        kind=kind,
        protocol=protocol,
        sid=sids[0] if kind == "sid" else None,
        sids=sids,
        first_ns=min(t.first_ns for t in tuples),
        last_ns=max(t.last_ns for t in tuples),
        datagrams=sum(t.datagrams for t in tuples),
        bytes=sum(t.bytes for t in tuples),
        tuples=tuple(tuples),
    )


@st.composite
def reports(draw: st.DrawFn, by: str) -> FlowReport:
    fs = tuple(draw(st.lists(flows(by), max_size=4)))
    counts = st.dictionaries(st.sampled_from(["none", "malformed:quic"]), st.integers(0, 9))
    udp = sum(f.datagrams for f in fs)
    return FlowReport(
        fs,
        Summary(
            capture=draw(st.sampled_from(["a.pcap", "b.pcap"])),
            format=draw(st.sampled_from(["pcap", "pcapng"])),
            linktypes={"ethernet": draw(st.integers(0, 9))},
            protocols=("quic", "wireguard"),
            by=by,
            frames=udp + draw(st.integers(0, 3)),
            udp=udp,
            with_sid=draw(st.integers(0, udp)),
            without_sid=0,
            skipped=draw(counts),
            no_sid=draw(counts),
            errors=tuple(draw(st.lists(st.sampled_from(["cut short", "corrupt"]), max_size=1))),
            sid_flows=0,
            tuple_flows=0,
            no_sid_by_protocol={"quic": draw(counts)},
            reassembly=draw(counts),
            max_flows=draw(st.integers(1, 9)),
            over_limit=draw(st.integers(0, 9)),
        ),
    )


@st.composite
def partials(draw: st.DrawFn, n: int) -> list[PartialReport]:
    by = draw(st.sampled_from(["sid", "tuple"]))
    ranks = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n, unique=True))
    return [PartialReport.from_report(draw(reports(by)), r) for r in ranks]


@settings(max_examples=150, deadline=None)
@given(partials(3))
def test_merge_is_associative(ps: list[PartialReport]) -> None:
    a, b, c = ps
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(b).merge(c).to_report() == a.merge(b.merge(c)).to_report()


@settings(max_examples=150, deadline=None)
@given(partials(2))
def test_merge_is_commutative(ps: list[PartialReport]) -> None:
    a, b = ps
    assert a.merge(b) == b.merge(a)


@settings(max_examples=100, deadline=None)
@given(partials(4), st.randoms(use_true_random=False))
def test_merge_order_does_not_matter(ps: list[PartialReport], rng: object) -> None:
    shuffled = list(ps)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert merge_partials(ps) == merge_partials(shuffled)


@given(partials(1))
def test_a_partial_of_one_report_gives_that_report_back(ps: list[PartialReport]) -> None:
    # flows in the analyzer's order and every counter as it was (the flow and tuple counts
    # are recomputed, without_sid follows udp - with_sid)
    (p,) = ps
    back = p.to_report()
    assert len(back.flows) == len(p.flows)
    assert back.summary.frames == p.frames and dict(back.summary.no_sid) == dict(p.no_sid)
    assert (back.summary.max_flows, back.summary.over_limit) == (p.max_flows, p.over_limit)


def test_merging_a_capture_with_itself_is_refused() -> None:
    report = analyze("tests/data/quic-v1-migration.pcap")
    p = PartialReport.from_report(report, 0)
    with pytest.raises(ValueError, match="count twice"):
        p.merge(p)
    other = PartialReport.from_report(analyze("tests/data/quic-v1-migration.pcap", by="tuple"), 1)
    with pytest.raises(ValueError, match="do not merge"):
        p.merge(other)
    with pytest.raises(ValueError, match="no partial"):
        merge_partials([])


# --- per-file partials of generated traffic == the sequential pass -------------------------

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


def _frame(src: int, sport: int, dst: int, dport: int, payload: bytes) -> bytes:
    ulen = 8 + len(payload)
    a, b = bytes([10, 0, 0, src]), bytes([10, 0, 0, dst])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, a, b)
    return _ETH + ip + struct.pack("!HHHH", sport, dport, ulen, 0) + payload


def _pcap(records: list[tuple[int, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    for ts, frame in records:
        out.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(frame), len(frame)) + frame)
    return b"".join(out)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    """WireGuard handshakes (which link two indices) and data, DTLS CID records, plain
    UDP: the traffic whose flows the merge must put together exactly."""
    src, dst = draw(st.sampled_from([(1, 2), (2, 1), (1, 3), (3, 1)]))
    sport, dport = draw(st.sampled_from([(1000, 2000), (2000, 1000), (1001, 2000)]))
    idx = st.sampled_from([b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", b"\x03\x03\x03\x03"])
    kind = draw(st.sampled_from(["wg1", "wg2", "wg4", "dtls", "udp"]))
    if kind == "wg1":
        payload = wireguard(1, sender=draw(idx), receiver=b"")
    elif kind == "wg2":
        payload = wireguard(2, sender=draw(idx), receiver=draw(idx))
    elif kind == "wg4":
        payload = wireguard(4, sender=b"", receiver=draw(idx))
    elif kind == "dtls":
        payload = dtls12_cid(draw(st.sampled_from([b"\xd0" * 4, b"\xd1" * 4])), bytes(16))
    else:
        payload = b"\x07" + bytes(draw(st.integers(0, 20)))
    return _frame(src, sport, dst, dport, payload)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(datagrams(), min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=3),
    st.sampled_from(["sid", "tuple"]),
)
def test_per_file_partials_merge_into_the_sequential_report(
    frames: list[bytes], cuts: list[int], by: str
) -> None:
    records = [(1_700_000_000 * 10**9 + i * 1000, f) for i, f in enumerate(frames)]
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    options = {"dtls": {"cid_length": 4}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            path = Path(tmp) / f"part{n}.pcap"
            path.write_bytes(_pcap(records[lo:hi]))
            paths.append(path)
        sequential = analyze_many(paths, options=options, by=by)  # type: ignore[arg-type]
        merged = merge_partials(
            PartialReport.from_report(analyze(p, options=options, by=by), rank)  # type: ignore[arg-type]
            for rank, p in enumerate(paths)
        ).to_report()
    assert merged.flows == sequential.flows
    assert merged.summary.to_json() == sequential.summary.to_json()
