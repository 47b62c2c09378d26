"""``sidkit flows`` learns each DTLS endpoint's connection ID length from the handshake.

RFC 9146 section 3: the connection_id extension of a ClientHello/ServerHello carries the
CID its sender wants to receive, so tls12_cid records sent *to* that endpoint carry a CID of
that length, whatever ``dtls.cid_length`` says. Oracles: tshark's DTLS dissector, which
learns the lengths from the same hellos (``dtls.record.connection_id``), on the generated
mbedTLS trace (conformance/captures/generate.py: client/server CIDs of 17/4 bytes, then
0/8, and a client that rebinds to 127.0.0.3); and hand-built records (RFC 6347 section 4.1
and 4.2, RFC 9146 section 4) whose CIDs are known by construction.
"""

from __future__ import annotations

import struct
from pathlib import Path

import conftest
import dpkt
import pytest
from fixtures.tshark import fields

from sidkit.flows._analyzer import FlowAnalyzer, analyze
from sidkit.flows._capture import Capture
from sidkit.flows._decode import Fragment, decode_frame

TRACE = Path(__file__).parents[2] / "conformance" / "captures" / "_work" / "gen" / "dtls12-cid.pcap"
SERVER_PORT = 4433


def _trace() -> Path:
    if not TRACE.exists():
        conftest.oracle_unavailable(
            f"{TRACE} is missing (conformance/captures/generate.py gen/dtls12-cid.pcap makes it)"
        )
    return TRACE


def _per_datagram(
    path: Path, options: dict[str, object]
) -> list[tuple[int, int, bytes, str | None]]:
    """(source port, destination port, payload, SID hex) of every datagram, fed one by one."""
    analyzer = FlowAnalyzer(options=options)
    rows: list[tuple[int, int, bytes, str | None]] = []
    with path.open("rb") as fh:
        for ts, linktype, frame, _w in Capture(fh):
            d = decode_frame(linktype, frame)
            assert not isinstance(d, str | Fragment)
            sid = analyzer.add(ts, d[0], d[1], d[2], d[3], d[4], d[5])
            rows.append((d[1], d[3], d[4], None if sid is None else sid.hex()))
    return rows


@pytest.mark.oracle
def test_trace_cid_lengths_per_direction_against_tshark() -> None:
    """With only the client's 17-byte length configured, the client-sent CIDs (4 bytes,
    then 8) come out whole, as tshark reads them, and so do the server-sent ones."""
    path = _trace()
    options: dict[str, object] = {"dtls.cid_length": 17}
    oracle = fields(path, ["dtls.record.connection_id"])
    rows = _per_datagram(path, options)
    assert len(rows) == len(oracle)
    checked: dict[str, set[int]] = {"client": set(), "server": set()}  # CID lengths
    for (_sport, dport, payload, sid), frame in zip(rows, oracle, strict=True):
        if not payload or payload[0] != 25:
            continue  # the plugin reads a datagram's first record only
        cids = frame.get("dtls.record.connection_id", [])
        assert cids, "tshark read no CID in a tls12_cid record"
        assert sid == cids[0].replace(":", "")
        sender = "client" if dport == SERVER_PORT else "server"
        checked[sender].add(len(cids[0].replace(":", "")) // 2)
    # both directions and both sessions of the trace were seen
    assert checked == {"client": {4, 8}, "server": {17}}
    expected = {sid for _s, _d, payload, sid in rows if payload[:1] == b"\x19"}
    for fast in (True, False):
        report = analyze(path, options=options, fast=fast)
        got = {f.sid for f in report.flows if f.sid is not None and f.protocol == "dtls"}
        assert got == expected, f"fast={fast}"


# --- hand-built records ------------------------------------------------------------------------


def _ext(cid: bytes) -> bytes:
    body = bytes([len(cid)]) + cid
    ext = struct.pack("!HH", 54, len(body)) + body  # RFC 9146 section 3: connection_id(54)
    return struct.pack("!H", len(ext)) + ext


def _hello(msg_type: int, cid: bytes) -> bytes:
    """An unfragmented ClientHello (1) or ServerHello (2) with the connection_id extension,
    in one DTLS 1.2 handshake record (RFC 6347 sections 4.1, 4.2.2, 4.2.1)."""
    if msg_type == 1:  # session_id, cookie, one cipher suite, null compression
        body = b"\xfe\xfd" + bytes(32) + b"\x00" + b"\x00" + b"\x00\x02\xc0\xae" + b"\x01\x00"
    else:  # session_id, cipher suite, compression
        body = b"\xfe\xfd" + bytes(32) + b"\x00" + b"\xc0\xae" + b"\x00"
    body += _ext(cid)
    hs = struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + b"\x00\x00"
    hs += b"\x00\x00\x00" + len(body).to_bytes(3, "big") + body
    return b"\x16\xfe\xfd" + bytes(8) + struct.pack("!H", len(hs)) + hs


def _cid_record(cid: bytes, seq: int) -> bytes:
    """A tls12_cid record (RFC 9146 section 4) with 16 bytes of ciphertext."""
    content = bytes(range(16))
    return (
        b"\x19\xfe\xfd\x00\x01"
        + seq.to_bytes(6, "big")
        + cid
        + struct.pack("!H", len(content))
        + content
    )


CLIENT_CID = b"\xc1\xc2\xc3"  # the client receives 3-byte CIDs
SERVER_CID = b"\x51\x52\x53\x54\x55"  # the server receives 5-byte CIDs


def _datagrams() -> list[tuple[bytes, int, int]]:
    """(payload, source port, destination port) from client 1111 to server 4433 and back;
    port 2222 is a client whose hello is not in the capture."""
    return [
        (_hello(1, CLIENT_CID), 1111, 4433),
        (_hello(2, SERVER_CID), 4433, 1111),
        (_cid_record(SERVER_CID, 1), 1111, 4433),
        (_cid_record(CLIENT_CID, 1), 4433, 1111),
        (_cid_record(SERVER_CID, 2), 1111, 4433),
        (_cid_record(bytes(range(8)), 1), 4433, 2222),  # nothing learned: cid_length=8
        (_cid_record(CLIENT_CID, 2), 4433, 1111),
    ]


CLIENT, SERVER = b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x02"


def _addresses(dport: int) -> tuple[bytes, bytes]:
    return (CLIENT, SERVER) if dport == SERVER_PORT else (SERVER, CLIENT)


def _write_pcap(path: Path, datagrams: list[tuple[bytes, int, int]]) -> None:
    """Ethernet/IPv4/UDP frames, client 127.0.0.1 and server 127.0.0.2 in both directions."""
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for i, (payload, sport, dport) in enumerate(datagrams):
            src, dst = _addresses(dport)
            udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
            udp.ulen = 8 + len(payload)
            ip = dpkt.ip.IP(src=src, dst=dst, p=17, ttl=64, data=udp)
            ip.len = 20 + udp.ulen
            eth = dpkt.ethernet.Ethernet(
                src=b"\x02" + bytes(5), dst=b"\x02" + bytes(4) + b"\x01", data=ip
            )
            writer.writepkt(bytes(eth), ts=1_700_000_000 + i / 1000)


def test_learned_lengths_override_the_configured_one() -> None:
    analyzer = FlowAnalyzer(options={"dtls.cid_length": 8})
    got = []
    for payload, sport, dport in _datagrams():
        src, dst = _addresses(dport)
        sid = analyzer.add(1, src, sport, dst, dport, payload)
        got.append(None if sid is None else sid.value)
    assert got == [
        None,
        None,
        SERVER_CID,
        CLIENT_CID,
        SERVER_CID,
        bytes(range(8)),
        CLIENT_CID,
    ]


def test_without_learning_the_configured_length_is_read() -> None:
    """The same records without the hellos: every CID is read with the configured 8 bytes
    (so the test above fails without learning)."""
    analyzer = FlowAnalyzer(options={"dtls.cid_length": 8})
    sid = analyzer.add(1, CLIENT, 1111, SERVER, SERVER_PORT, _cid_record(SERVER_CID, 1))
    assert sid is not None and len(sid.value) == 8


@pytest.mark.parametrize("configured", [8, frozenset({3, 5, 8}), frozenset({2, 11})])
def test_fast_path_matches_reference(tmp_path: Path, configured: object) -> None:
    """The fast path (which slices exact DTLS locations while nothing is learned) gives the
    reference path's report, and the flows are the CIDs built."""
    pcap = tmp_path / "dtls.pcap"
    _write_pcap(pcap, _datagrams())
    options = {"dtls.cid_length": configured}
    fast = analyze(pcap, options=options, fast=True)
    slow = analyze(pcap, options=options, fast=False)
    assert fast == slow
    sids = {f.sid for f in fast.flows if f.protocol == "dtls"}
    assert {SERVER_CID.hex(), CLIENT_CID.hex()} <= sids
