"""Capture and decoding edges: UDP headers cut short or with a bad Length, pcapng Simple
Packet Blocks, and decimal/binary ``if_tsresol``.

Sources: RFC 768 (the UDP Length counts the 8-byte header, so its minimum is 8); the pcapng
specification (draft-ietf-opsawg-pcapng, section 4.2 ``if_tsresol``: the most significant
bit clear means a negative power of 10, set means a negative power of 2, default 10^-6;
section 4.4 Simple Packet Block: type 3, Original Packet Length, then the packet, captured
length = min(Original Packet Length, the snaplen of interface 0), no timestamp). tshark reads
the same files as a second oracle for the pcapng cases.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from fixtures.tshark import fields

from sidkit.flows._capture import Capture
from sidkit.flows._decode import decode_frame

LINKTYPE_RAW = 101  # raw IPv4/IPv6 (tcpdump.org link-layer header types)


def _ipv4_udp(udp: bytes, *, total: int | None = None) -> bytes:
    total = 20 + len(udp) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    )
    return header + udp


def _udp(payload: bytes, *, length: int | None = None) -> bytes:
    length = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", 1234, 4433, length, 0) + payload


def test_udp_length_below_eight_is_bad_udp_length() -> None:
    # 0 too: RFC 2675's jumbogram marker exists only in IPv6 (tshark: "Bad length value 0 < 8")
    for length in range(8):
        assert (
            decode_frame(LINKTYPE_RAW, _ipv4_udp(_udp(b"abcd", length=length))) == "bad-udp-length"
        )
    ok = decode_frame(LINKTYPE_RAW, _ipv4_udp(_udp(b"abcd", length=12)))
    assert not isinstance(ok, str)


def test_udp_header_cut_short_is_truncated() -> None:
    udp = _udp(b"abcd")
    for keep in range(8):  # fewer than 8 bytes of UDP header captured
        frame = _ipv4_udp(udp[:keep], total=20 + len(udp))
        assert decode_frame(LINKTYPE_RAW, frame) == "truncated", keep
    # the IP Total Length, not the captured bytes, can also end the header early
    assert decode_frame(LINKTYPE_RAW, _ipv4_udp(udp, total=20 + 7)) == "truncated"
    # and an IPv4 header itself cut short
    assert decode_frame(LINKTYPE_RAW, _ipv4_udp(udp)[:19]) == "truncated"
    assert not isinstance(decode_frame(LINKTYPE_RAW, _ipv4_udp(udp, total=20 + 8)), str)


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(snaplen: int, tsresol: int | None = None) -> bytes:
    body = struct.pack("<HHI", LINKTYPE_RAW, 0, snaplen)
    if tsresol is not None:
        body += struct.pack("<HH", 9, 1) + bytes([tsresol]) + bytes(3) + struct.pack("<HH", 0, 0)
    return _block(1, body)


def _epb(ticks: int, packet: bytes) -> bytes:
    head = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(packet), len(packet))
    return _block(6, head + packet)


def _spb(packet: bytes, original: int | None = None) -> bytes:
    return _block(3, struct.pack("<I", len(packet) if original is None else original) + packet)


def _read(data: bytes) -> tuple[list[tuple[int, int, bytes, int]], list[str]]:
    cap = Capture(io.BytesIO(data))
    return list(cap), cap.errors


def _packets() -> list[bytes]:
    return [_ipv4_udp(_udp(bytes([i]) * (10 + 7 * i))) for i in range(3)]


@pytest.mark.oracle
def test_simple_packet_blocks(tmp_path: Path) -> None:
    packets = _packets()
    data = _shb() + _idb(0) + b"".join(_spb(p) for p in packets)
    records, errors = _read(data)
    assert errors == []
    assert [(r[1], r[2], r[3]) for r in records] == [(LINKTYPE_RAW, p, len(p)) for p in packets]
    decoded = decode_frame(LINKTYPE_RAW, records[1][2])
    assert not isinstance(decoded, str)
    assert decoded[4] == bytes([1]) * 17
    # snaplen of interface 0 caps the captured bytes; the original length stays the wire length
    snapped = _shb() + _idb(30) + _spb(packets[2][:30], original=len(packets[2]))
    records, errors = _read(snapped)
    assert errors == []
    assert [(r[2], r[3]) for r in records] == [(packets[2][:30], len(packets[2]))]
    path = tmp_path / "spb.pcapng"
    path.write_bytes(snapped)
    got = fields(path, ["frame.len", "frame.cap_len"])
    assert [(int(g["frame.len"][0]), int(g["frame.cap_len"][0])) for g in got] == [
        (len(packets[2]), 30)
    ]


def test_simple_packet_block_needs_an_interface() -> None:
    _, errors = _read(_shb() + _spb(_packets()[0]))
    assert errors and "simple packet block" in errors[0]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("tsresol", "ticks", "ns"),
    [
        (None, 1_500_000, 1_500_000_000),  # default 10^-6
        (3, 1_500, 1_500_000_000),  # 10^-3
        (9, 1_500_000_001, 1_500_000_001),  # 10^-9
        (6, 7, 7_000),
        (0, 2, 2_000_000_000),  # 10^0: whole seconds
        (0x80 | 10, 1536, 1_500_000_000),  # 2^-10: 1536/1024 s
        (0x80 | 1, 3, 1_500_000_000),  # 2^-1
    ],
)
def test_if_tsresol(tmp_path: Path, tsresol: int | None, ticks: int, ns: int) -> None:
    data = _shb() + _idb(0, tsresol) + _epb(ticks, _packets()[0])
    records, errors = _read(data)
    assert errors == []
    assert [r[0] for r in records] == [ns]
    path = tmp_path / "tsresol.pcapng"
    path.write_bytes(data)
    epochs = [r["frame.time_epoch"][0] for r in fields(path, ["frame.time_epoch"])]
    assert [f"{ns // 10**9}.{ns % 10**9:09d}"] == epochs
