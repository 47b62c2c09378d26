"""``sidkit flows`` against tshark on real QUIC captures, and the command's behaviour.

Oracles: tshark's QUIC dissector with the TLS key log (``quic.dcid`` of every datagram's
first packet, ``quic.scid``, ``quic.connection.number``), without the key log (the
connection it can follow from the headers alone, which is what sidkit can), its
``udp.stream`` (the 5-tuple view), its field list (``tshark -G fields``: every tshark-style
key sidkit prints must be a real field) and ``frame.time_epoch`` / ``udp.length``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import struct
import subprocess
import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest
from fixtures.modules import bench_flows
from fixtures.tshark import fields, tshark
from hypothesis import given
from hypothesis import strategies as st

import sidkit.cli
from sidkit import SidkitError
from sidkit.flows._analyzer import FlowAnalyzer, analyze
from sidkit.flows._capture import Capture
from sidkit.flows._decode import Fragment, decode_frame
from sidkit.flows._protocols import default_protocols
from sidkit.flows._report import format_ns

DATA = Path(__file__).parents[1] / "data"
QUIC = ["quic-v1-migration", "quic-v2"]


def _main(argv: list[str]) -> int:
    return sidkit.cli.main(argv)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = _main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _per_datagram(path: Path) -> tuple[FlowAnalyzer, list[str | None]]:
    """Feed the capture datagram by datagram; the SID (hex) each one was grouped by."""
    analyzer = FlowAnalyzer()
    sids: list[str | None] = []
    with path.open("rb") as fh:
        for ts, linktype, frame, _w in Capture(fh):
            d = decode_frame(linktype, frame)
            assert not isinstance(d, str | Fragment)
            sid = analyzer.add(ts, d[0], d[1], d[2], d[3], d[4], d[5])
            sids.append(None if sid is None else sid.hex())
    return analyzer, sids


@pytest.mark.oracle
@pytest.mark.parametrize("name", QUIC)
def test_real_quic_migration_against_tshark(name: str) -> None:
    pcap = DATA / f"{name}.pcap"
    names = ["quic.dcid", "quic.scid", "quic.connection.number"]
    keyed = fields(pcap, names, prefs={"tls.keylog_file": str(DATA / f"{name}.keylog")})
    unkeyed = fields(pcap, ["quic.connection.number"])
    analyzer, sids = _per_datagram(pcap)
    report = analyzer.report()
    # every datagram's SID is tshark's DCID of its first packet
    assert sids == [row["quic.dcid"][0] for row in keyed]
    flow_of = {sid: n for n, f in enumerate(report.flows) for sid in f.sids}
    frames_by_flow: dict[int, set[int]] = defaultdict(set)
    for number, sid in enumerate(sids, start=1):
        assert sid is not None
        frames_by_flow[flow_of[sid]].add(number)
    # no flow spans two of tshark's connections (it follows every CID with the keys) ...
    for frames in frames_by_flow.values():
        assert len({keyed[i - 1]["quic.connection.number"][0] for i in frames}) == 1
    # ... and the frames tshark links from the headers alone are exactly one flow, which has
    # moved: the NAT rebinding (same CID, new port) is a second path of the same flow
    linked = {i for i, row in enumerate(unkeyed, start=1) if row["quic.connection.number"]}
    assert linked in frames_by_flow.values()
    assert sids[0] is not None
    main = report.flows[flow_of[sids[0]]]
    assert main.protocol == "quic" and main.paths >= 2 and len(main.tuples) >= 2
    # its CIDs are every DCID and SCID tshark saw in those frames
    cids = {c for i in linked for c in keyed[i - 1]["quic.dcid"] + keyed[i - 1]["quic.scid"]}
    assert set(main.sids) == cids
    assert len(report.flows) == len(frames_by_flow)


@pytest.mark.oracle
def test_flow_tuples_and_counts_against_tshark() -> None:
    pcap = DATA / "quic-v1-migration.pcap"
    rows = fields(
        pcap,
        ["ip.src", "udp.srcport", "ip.dst", "udp.dstport", "udp.length", "frame.time_epoch"],
    )
    analyzer, sids = _per_datagram(pcap)
    report = analyzer.report()
    expected: dict[tuple[str | None, tuple[str, int, str, int]], list[str | int]] = {}
    for sid, row in zip(sids, rows, strict=True):
        flow = next(f for f in report.flows if sid in f.sids)
        key = (
            flow.sid,
            (
                row["ip.src"][0],
                int(row["udp.srcport"][0]),
                row["ip.dst"][0],
                int(row["udp.dstport"][0]),
            ),
        )
        t = row["frame.time_epoch"][0]
        size = int(row["udp.length"][0]) - 8
        if key not in expected:
            expected[key] = [t, t, 0, 0]
        e = expected[key]
        e[1] = t
        e[2] = int(e[2]) + 1
        e[3] = int(e[3]) + size
    got = {
        (f.sid, (t.src, t.sport, t.dst, t.dport)): [
            format_ns(t.first_ns),
            format_ns(t.last_ns),
            t.datagrams,
            t.bytes,
        ]
        for f in report.flows
        for t in f.tuples
    }
    assert got == expected


@pytest.mark.oracle
def test_retry_and_version_negotiation_link_into_one_flow() -> None:
    pcap = DATA / "quic-retry-vn.pcap"
    rows = fields(pcap, ["quic.dcid", "quic.scid"])
    report = analyze(pcap)
    assert [f.kind for f in report.flows] == ["sid"]
    assert set(report.flows[0].sids) == {c for r in rows for c in r["quic.dcid"] + r["quic.scid"]}


@pytest.mark.oracle
@pytest.mark.parametrize("name", [*QUIC, "quic-retry-vn"])
def test_by_tuple_matches_tshark_udp_streams(name: str) -> None:
    pcap = DATA / f"{name}.pcap"
    streams = [r["udp.stream"][0] for r in fields(pcap, ["udp.stream"])]
    report = analyze(pcap, by="tuple")
    assert all(f.kind == "tuple" for f in report.flows)
    assert len(report.flows) == len(set(streams))
    sizes: dict[str, int] = defaultdict(int)
    for s in streams:
        sizes[s] += 1
    assert sorted(f.datagrams for f in report.flows) == sorted(sizes.values())


@pytest.mark.oracle
def test_json_names_are_tshark_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["flows", str(DATA / "quic-v1-migration.pcap"), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    known = set()
    listing = subprocess.run(
        [tshark(), "-G", "fields"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) > 2 and parts[0] == "F":
            known.add(parts[2])
    dotted = {k for f in doc["flows"] for t in f["tuples"] for k in t if "." in k}
    assert dotted == {"ip.src", "ip.dst", "udp.srcport", "udp.dstport"}
    assert dotted <= known and "ipv6.src" in known


def test_cli_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    pcap = str(DATA / "quic-v1-migration.pcap")
    code, table, err = _run(["flows", pcap, "--no-progress"], capsys)
    assert code == 0 and err == ""
    assert "127.0.0.1:50001 -> 127.0.0.2:4433" in table
    code, out, _ = _run(["flows", pcap, "--json"], capsys)
    doc = json.loads(out)
    assert doc["summary"]["udp"] == 12 and doc["summary"]["with_sid"] == 12
    code, out, _ = _run(["flows", pcap, "--csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == sum(len(f["tuples"]) for f in doc["flows"])
    assert {r["sid"] for r in rows} == {f["sid"] for f in doc["flows"]}


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    for argv in (
        ["flows", str(text)],
        ["flows", str(tmp_path / "missing.pcap")],
        ["flows", str(tmp_path)],
        ["flows", str(DATA / "quic-v2.pcap"), "--protocol", "nosuch"],
        ["flows", str(DATA / "quic-v2.pcap"), "--option", "quic.cid_length=99"],
        ["flows", str(DATA / "quic-v2.pcap"), "--option", "cid_length=8"],
        ["flows", str(DATA / "quic-v2.pcap"), "--protocol", "dtls"],  # needs cid_length
    ):
        code, out, err = _run(argv, capsys)
        assert code == 2, argv
        assert err.startswith("sidkit: error: ") and err.count("\n") == 1, err
        assert out == ""
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert _run(["flows", str(empty)], capsys)[0] == 2


def test_truncated_capture_reports_what_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (DATA / "quic-v1-migration.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])
    code, out, err = _run(["flows", str(cut), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["frames"] == 11 and doc["summary"]["errors"]
    assert "warning" in err and "ends inside a record" in err
    first = tmp_path / "first.pcap"
    first.write_bytes(data[:40])  # header + a piece of the first record: nothing readable
    code, out, err = _run(["flows", str(first)], capsys)
    assert code == 2 and "sidkit: error:" in err and out == ""


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    raw = (DATA / "quic-v2.pcap").read_bytes()

    class _Stdin:
        buffer = io.BytesIO(raw)

    monkeypatch.setattr(sys, "stdin", _Stdin)
    code, out, _ = _run(["flows", "-", "--json"], capsys)
    assert code == 0 and json.loads(out)["summary"]["frames"] == 12


def test_short_headers_need_a_length_or_a_handshake() -> None:
    """Only the 1-RTT datagrams (frames 4..12) of the capture: no long header says how long
    the CIDs are, so short headers have no SID -- until the length is given."""
    data = (DATA / "quic-v1-migration.pcap").read_bytes()
    pos, records = 24, []
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        records.append(data[pos : pos + 16 + caplen])
        pos += 16 + caplen
    only_1rtt = data[:24] + b"".join(records[3:])
    report = analyze(io.BytesIO(only_1rtt))
    assert report.summary.with_sid == 0
    assert report.summary.no_sid == {"quic-cid-length-unknown": 9}
    report = analyze(io.BytesIO(only_1rtt), options={"quic.cid_length": 8})
    assert report.summary.with_sid == 9


def test_default_protocols() -> None:
    assert default_protocols()[:2] == ("quic", "wireguard")
    assert "dtls" not in default_protocols()
    assert "dtls" in default_protocols({"dtls.cid_length": 4})


def test_wireguard_handshake_links_both_indices() -> None:
    """Initiation (sender I), response (sender R, receiver I), transport data both ways
    (receiver R, receiver I): one flow (whitepaper section 5.4)."""
    i_idx, r_idx = b"\x11\x11\x11\x11", b"\x22\x22\x22\x22"
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    analyzer = FlowAnalyzer(["wireguard"])
    analyzer.add(1, a, 1000, b, 51820, b"\x01\0\0\0" + i_idx + bytes(140))
    analyzer.add(2, b, 51820, a, 1000, b"\x02\0\0\0" + r_idx + i_idx + bytes(80))
    analyzer.add(3, a, 1000, b, 51820, b"\x04\0\0\0" + r_idx + bytes(40))
    analyzer.add(4, b, 51820, a, 1000, b"\x04\0\0\0" + i_idx + bytes(40))
    analyzer.add(5, a, 2000, b, 51820, b"\x04\0\0\0" + r_idx + bytes(40))  # roamed
    flows = analyzer.report().flows
    assert len(flows) == 1 and flows[0].datagrams == 5 and flows[0].paths == 2


@given(st.binary(max_size=200), st.sampled_from([None, 8]))
def test_any_payload_is_grouped_without_errors(payload: bytes, cid_length: int | None) -> None:
    options = {"quic.cid_length": cid_length} if cid_length else None
    analyzer = FlowAnalyzer(options=options)
    analyzer.add(1, b"\x0a\0\0\x01", 1, b"\x0a\0\0\x02", 2, payload)
    analyzer.add(2, b"\x0a\0\0\x02", 2, b"\x0a\0\0\x01", 1, payload)
    summary = analyzer.report().summary
    assert summary.udp == 2 and summary.with_sid + summary.without_sid == 2


@given(st.binary(max_size=400))
def test_any_bytes_as_a_capture(data: bytes) -> None:
    with contextlib.suppress(SidkitError):
        analyze(io.BytesIO(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(12) + b"\x01\0\0\0" + data))
    with contextlib.suppress(SidkitError):
        analyze(io.BytesIO(data))


def _bench() -> object:
    return bench_flows()


def test_memory_is_flat_in_the_number_of_datagrams(tmp_path: Path) -> None:
    """The same 100 connections over N and 4N datagrams: the peak of traced allocations
    during the analysis differs by less than 64 KiB (the files: ~3 and ~12 MB, both larger
    than the reader's 1 MiB buffer)."""
    bench = _bench()
    peaks = []
    for n in (12000, 48000):
        path = tmp_path / f"m{n}.pcap"
        bench.make_capture(path, n, connections=100)  # type: ignore[attr-defined]
        tracemalloc.start()
        report = analyze(path)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.summary.udp == n
        assert report.summary.sid_flows == 100
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 64 * 1024, peaks
