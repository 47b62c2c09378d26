"""QUIC: sidkit's headers and session IDs against Wireshark's QUIC dissector (tshark).

Two sources of packets: captures of a real implementation (aioquic client and server, v1 with
a NAT rebinding and a migration to a new connection ID, v2, Retry and Version Negotiation;
see tests/data/README.md) and packets built here from RFC 9000/9369/8999 layouts (random
connection-ID lengths 0..20, coalesced packets, padding, greased fixed bits, unknown
versions). For every packet of every datagram, tshark's quic.dcid, quic.scid, version and
packet type must equal sidkit's.
"""

from __future__ import annotations

import random
from pathlib import Path

import dpkt
import pytest
import sidkit_quic
from fixtures import packets as pk
from fixtures.tshark import fields, write_pcap

from sidkit.extract import Extractor

DATA = Path(__file__).parents[1] / "data"
QUIC_FIELDS = [
    "quic.header_form",
    "quic.version",
    "quic.long.packet_type",
    "quic.long.packet_type_v2",
    "quic.dcid",
    "quic.scid",
    "quic.nci.connection_id",
]
TYPE_BITS = pk.QUIC_TYPE_BITS


def _payloads(pcap: Path) -> list[bytes]:
    with pcap.open("rb") as fh:
        return [
            bytes(dpkt.ethernet.Ethernet(frame).data.data.data)
            for _ts, frame in dpkt.pcap.Reader(fh)
        ]


def _expected(headers: list[sidkit_quic.QuicHeader]) -> dict[str, list[str]]:
    """sidkit's packets in the shape of tshark's occurrence lists: one entry per packet for
    the header form and a non-empty DCID, per long-header packet for the rest."""
    out: dict[str, list[str]] = {name: [] for name in QUIC_FIELDS}
    for h in headers:
        out["quic.header_form"].append("1" if h.long_header else "0")
        if h.dcid:
            out["quic.dcid"].append(h.dcid.hex())
        if not h.long_header:
            continue
        assert h.version is not None
        out["quic.version"].append(f"0x{h.version:08x}")
        if h.scid:
            out["quic.scid"].append(h.scid.hex())
        if h.version in TYPE_BITS:
            key = "quic.long.packet_type" if h.version == pk.QUIC_V1 else "quic.long.packet_type_v2"
            out[key].append(str(TYPE_BITS[h.version][h.packet_type]))
    return out


def _compare(rows: list[dict[str, list[str]]], payloads: list[bytes], **options: object) -> int:
    checked = 0
    for number, (row, payload) in enumerate(zip(rows, payloads, strict=True), start=1):
        headers = sidkit_quic.split_datagram(payload, **options)  # type: ignore[arg-type]
        expected = _expected(headers)
        if headers and headers[-1].end < len(payload) and row["quic.header_form"][-1:] == ["0"]:
            # Zero padding after the last packet: sidkit ends the walk there; tshark
            # sometimes shows it as one more short-header "packet" (without a connection ID,
            # so the ID lists below must still agree exactly).
            assert not any(payload[headers[-1].end :])
            if len(row["quic.header_form"]) == len(headers) + 1:
                expected["quic.header_form"].append("0")
        for name in QUIC_FIELDS[:-1]:
            assert row[name] == expected[name], (number, name, payload[:64].hex())
        checked += len(headers)
    return checked


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["quic-v1-migration", "quic-v2"])
def test_real_aioquic_capture_matches_tshark(name: str) -> None:
    pcap = DATA / f"{name}.pcap"
    keylog = DATA / f"{name}.keylog"
    rows = fields(
        pcap,
        QUIC_FIELDS,
        decode_as=["udp.port==4433,quic"],
        prefs={"tls.keylog_file": str(keylog)},
    )
    payloads = _payloads(pcap)
    assert len(rows) == len(payloads) >= 10
    assert _compare(rows, payloads, cid_length=8) >= len(payloads)

    extractor = Extractor(["quic"], {"cid_length": 8})
    for row, payload in zip(rows, payloads, strict=True):
        sid = extractor.extract(payload)
        assert sid is not None
        assert sid.value.hex() == row["quic.dcid"][0]
        assert sid.details["header_form"] == (
            "long" if row["quic.header_form"][0] == "1" else "short"
        )

    # The connection IDs the endpoints issued: long-header SCIDs and, decrypted with the key
    # log, NEW_CONNECTION_ID frames. As known_cids they replace the configured length, and
    # the migrated DCIDs (new CIDs from NEW_CONNECTION_ID) are found too.
    issued = {
        bytes.fromhex(c) for row in rows for c in row["quic.scid"] + row["quic.nci.connection_id"]
    }
    assert len(issued) > 4
    by_known = Extractor(["quic"], {"known_cids": issued})
    handshake_cids = {bytes.fromhex(c) for row in rows for c in row["quic.scid"]}
    new_cids = issued - handshake_cids  # issued in NEW_CONNECTION_ID frames only
    migrated = 0
    for row, payload in zip(rows, payloads, strict=True):
        sid = by_known.extract(payload)
        assert sid is not None and sid.value.hex() == row["quic.dcid"][0]
        migrated += sid.value in new_cids
    assert migrated == 3  # the packets after change_connection_id(), both directions


@pytest.mark.oracle
def test_real_retry_and_version_negotiation_match_tshark() -> None:
    pcap = DATA / "quic-retry-vn.pcap"
    rows = fields(pcap, QUIC_FIELDS, decode_as=["udp.port==4433,quic"])
    payloads = _payloads(pcap)
    assert _compare(rows, payloads) == 3
    kinds = [sidkit_quic.parse_header(p) for p in payloads]
    assert [(h.version, h.packet_type) for h in kinds if h] == [
        (pk.QUIC_V1, "retry"),
        (pk.QUIC_V2, "retry"),
        (0, "version_negotiation"),
    ]


def _generated(rng: random.Random) -> list[bytes]:
    def rb(n: int) -> bytes:
        return rng.randbytes(n)

    out: list[bytes] = []
    for _ in range(120):
        version = rng.choice([pk.QUIC_V1, pk.QUIC_V2])
        ptype = rng.choice(["initial", "0rtt", "handshake", "retry"])
        dcid, scid = rb(rng.randint(0, 20)), rb(rng.randint(0, 20))
        body = rb(rng.randint(20, 80)) if ptype != "retry" else rb(16)
        packet = pk.quic_long(
            version,
            ptype,
            dcid,
            scid,
            body,
            token=rb(rng.choice([0, 0, 5, 40])),
            low_bits=rng.randint(0, 15),
        )
        if ptype in ("initial", "0rtt") and rng.random() < 0.5:
            # RFC 9000 section 12.2: coalesce a Handshake packet with the same DCID, then
            # zero padding. (A coalesced 1-RTT packet is in the real captures: tshark needs
            # the connection's history to find its DCID.)
            packet += pk.quic_long(version, "handshake", dcid, scid, rb(rng.randint(20, 60)))
            packet += bytes(rng.choice([0, 0, 7, 100]))
        out.append(packet)
    for _ in range(20):  # RFC 8999 section 6: Version Negotiation, any first-byte bits
        versions = [rng.getrandbits(32) for _ in range(rng.randint(1, 4))]
        out.append(
            pk.quic_version_negotiation(
                rb(rng.randint(0, 20)), rb(rng.randint(0, 20)), versions, rng.getrandbits(7)
            )
        )
    return out


@pytest.mark.oracle
def test_generated_long_headers_match_tshark(tmp_path: Path) -> None:
    datagrams = _generated(random.Random(9000))
    pcap = tmp_path / "quic.pcap"
    # One client port per datagram, so no two datagrams look like one connection.
    write_pcap(pcap, [(d, 40000 + i, 4433) for i, d in enumerate(datagrams)])
    rows = fields(pcap, QUIC_FIELDS, decode_as=["udp.port==4433,quic"])
    assert _compare(rows, datagrams) > len(datagrams)
    # The Extractor hands Version Negotiation packets to QUIC whatever their 7 low bits
    # (RFC 8999 section 6), with RTP configured after it, and finds tshark's DCID.
    extractor = Extractor(["quic", "rtp"])
    clear = 0
    for row, payload in zip(rows, datagrams, strict=True):
        if payload[1:5] != bytes(4):
            continue
        sid = extractor.extract(payload)
        assert row["quic.version"] == ["0x00000000"]
        if row["quic.dcid"]:
            assert sid is not None and sid.protocol == "quic"
            assert [sid.value.hex()] == row["quic.dcid"]
        clear += not payload[0] & 0x40
    assert clear >= 5


@pytest.mark.oracle
def test_greased_fixed_bit_matches_tshark(tmp_path: Path) -> None:
    # RFC 9287: with grease_quic_bit negotiated the fixed bit may be 0; tshark dissects such
    # packets and reports quic.fixed_bit 0.
    rng = random.Random(9287)
    datagrams = [
        pk.quic_long(
            pk.QUIC_V1,
            "handshake",
            rng.randbytes(8),
            rng.randbytes(8),
            rng.randbytes(40),
            fixed_bit=False,
        )
        for _ in range(10)
    ]
    pcap = tmp_path / "grease.pcap"
    write_pcap(pcap, [(d, 41000 + i, 4433) for i, d in enumerate(datagrams)])
    rows = fields(pcap, [*QUIC_FIELDS, "quic.fixed_bit"], decode_as=["udp.port==4433,quic"])
    assert all(row["quic.fixed_bit"] == ["0"] for row in rows)
    assert _compare(rows, datagrams, grease_quic_bit=True) == len(datagrams)
    # A long header of a known version is unambiguous with the bit clear: QUIC without the
    # option (whether the receiver negotiated greasing is the endpoint's business).
    greased = Extractor(["quic"], {"cid_length": 8, "grease_quic_bit": True})
    plain = Extractor(["quic"], {"cid_length": 8})
    for row, payload in zip(rows, datagrams, strict=True):
        for extractor in (greased, plain):
            sid = extractor.extract(payload)
            assert sid is not None and sid.value.hex() == row["quic.dcid"][0]


@pytest.mark.oracle
def test_greased_short_header_with_a_known_cid_matches_tshark(tmp_path: Path) -> None:
    # RFC 9287: a greased 1-RTT packet (first byte 0b00xxxxxx) is QUIC when its DCID is one
    # the server issued. tshark follows the connection from its Initial (same 5-tuple).
    rng = random.Random(92871)
    dcid, scid = rng.randbytes(8), rng.randbytes(8)
    initial = pk.quic_long(pk.QUIC_V1, "initial", scid, dcid, rng.randbytes(1100))
    greased = [pk.quic_short(scid, rng.randbytes(40), fixed_bit=False) for _ in range(5)]
    pcap = tmp_path / "grease-short.pcap"
    write_pcap(pcap, [(d, 42000, 4433) for d in (initial, *greased)])
    rows = fields(pcap, QUIC_FIELDS, decode_as=["udp.port==4433,quic"])
    plain = Extractor(["quic"], {"cid_length": 8})
    known = Extractor(["quic"], {"known_cids": [scid]})
    for row, payload in zip(rows[1:], greased, strict=True):
        assert plain.extract(payload) is None  # fixed bit clear, no known CID: not claimed
        sid = known.extract(payload)
        assert sid is not None and sid.details["cid_source"] == "known"
        assert row["quic.header_form"] == ["0"]
        assert row["quic.dcid"] in ([sid.value.hex()], [])  # tshark may not know the length
