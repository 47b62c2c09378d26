"""Capture-reader edges found by the mutation run (conformance/mutation, issue 21).

The files are built here byte by byte from the formats' specifications, so what each one
holds is known exactly: pcap-savefile(5) (24-byte file header, 16-byte record headers, the
link type in the low 16 bits of the network field) and draft-ietf-opsawg-pcapng (sections
4.1-4.4: Section Header Block with its byte-order magic, Interface Description Block with
``if_tsresol``/``if_tsoffset``, Enhanced and Simple Packet Blocks, Appendix A's obsolete
Packet Block; every block's total length repeated at its end and a multiple of 4). Each test
pins one boundary a mutant moved without another test failing: the Enhanced Packet Block's
captured length against its block, corrupt block lengths (under 12, not a multiple of 4,
over the maximum), the trailing length, new sections resetting the interfaces, the obsolete
Packet Block, unknown blocks, big-endian sections, records across the 1 MiB reads, and the
messages a capture that ends early leaves. Where tshark reads the same file it is asked
(the obsolete Packet Block and big-endian sections).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from fixtures.tshark import fields
from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.flows._capture import CHUNK, MAX_BLOCK, MAX_CAPLEN, Capture
from sidkit.flows._errors import NotACaptureError, UnsupportedLinkTypeError

RAW = 101  # LINKTYPE_RAW
ETH = 1


def _block(btype: int, body: bytes, e: str = "<", *, trailer: int | None = None) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return (
        struct.pack(e + "II", btype, n)
        + body
        + struct.pack(e + "I", n if trailer is None else trailer)
    )


def _shb(e: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def _idb(
    linktype: int = RAW,
    snaplen: int = 0,
    e: str = "<",
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    body = struct.pack(e + "HHI", linktype, 0, snaplen)
    if tsresol is not None:
        body += struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + bytes(3)
    if tsoffset is not None:
        body += struct.pack(e + "HHq", 14, 8, tsoffset)
    if tsresol is not None or tsoffset is not None:
        body += struct.pack(e + "HH", 0, 0)
    return _block(1, body, e)


def _epb(
    ticks: int, packet: bytes, iface: int = 0, e: str = "<", *, caplen: int | None = None
) -> bytes:
    cap = len(packet) if caplen is None else caplen
    head = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, cap, len(packet))
    return _block(6, head + packet, e)


def _pb(
    ticks: int, packet: bytes, iface: int = 0, e: str = "<", *, caplen: int | None = None
) -> bytes:
    cap = len(packet) if caplen is None else caplen
    head = struct.pack(
        e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, cap, len(packet) + 3
    )
    return _block(2, head + packet, e)


def _read(data: bytes) -> tuple[list[tuple[int, int, bytes, int]], list[str], Capture]:
    cap = Capture(io.BytesIO(data))
    return list(cap), cap.errors, cap


def _pkt(i: int, size: int = 40) -> bytes:
    return bytes([0x45]) + bytes([i & 0xFF]) * (size - 1)


# --- pcapng ---------------------------------------------------------------------------------


def test_epb_captured_length_up_to_the_block_end() -> None:
    """28 bytes of EPB header, the packet, 4 bytes of trailing length: a captured length
    that reaches exactly to the trailer is read, one byte more is corrupt."""
    packet = _pkt(1, 40)  # a multiple of 4: no padding, so the packet ends at the trailer
    good = _shb() + _idb() + _epb(7, packet)
    records, errors, _ = _read(good)
    assert errors == [] and [r[2] for r in records] == [packet]
    bad = _shb() + _idb() + _epb(7, packet, caplen=41)
    records, errors, _ = _read(bad)
    assert records == [] and "captured length past the block" in errors[0]
    # with padding, the captured length may stop inside the padded body
    short = _shb() + _idb() + _epb(7, packet + b"\x01\x02", caplen=41)
    records, errors, _ = _read(short)
    assert errors == [] and records[0][2] == (packet + b"\x01")[:41]


def test_epb_timestamps_interfaces_and_lengths() -> None:
    data = (
        _shb()
        + _idb(RAW)
        + _idb(ETH, tsresol=9, tsoffset=100)
        + _epb((1 << 32) + 5, _pkt(1), 0)
        + _epb(3_000_000_007, _pkt(2), 1)
    )
    records, errors, cap = _read(data)
    assert errors == []
    assert records == [
        (((1 << 32) + 5) * 1000, RAW, _pkt(1), 40),
        (100 * 10**9 + 3_000_000_007, ETH, _pkt(2), 40),
    ]
    assert cap.records == 2 and cap.bytes_read == len(data)


def test_epb_naming_a_missing_interface_stops() -> None:
    records, errors, _ = _read(_shb() + _idb() + _epb(1, _pkt(0)) + _epb(1, _pkt(1), iface=1))
    assert len(records) == 1 and "names interface 1 of 1" in errors[0]
    assert "after 1 records" in errors[0]


def test_epb_shorter_than_its_fixed_fields_stops() -> None:
    block = _block(6, struct.pack("<IIII", 0, 0, 0, 0))  # 28 bytes: no room for the lengths
    records, errors, _ = _read(_shb() + _idb() + block)
    assert records == [] and "corrupt enhanced packet block" in errors[0]


def test_obsolete_packet_block_is_read_like_an_epb() -> None:
    data = _shb() + _idb(RAW) + _idb(ETH, tsresol=3) + _pb(12, _pkt(3), 1) + _pb(5, _pkt(4), 0)
    records, errors, _ = _read(data)
    assert errors == []
    assert records == [(12 * 10**6, ETH, _pkt(3), 43), (5000, RAW, _pkt(4), 43)]
    bad_iface = _shb() + _idb() + _pb(1, _pkt(1), 2)
    records, errors, _ = _read(bad_iface)
    assert records == [] and "corrupt packet block" in errors[0]
    tiny = _shb() + _idb() + _block(2, bytes(16))
    records, errors, _ = _read(tiny)
    assert records == [] and "corrupt packet block" in errors[0]


@pytest.mark.oracle
def test_obsolete_packet_block_and_big_endian_match_tshark(tmp_path: Path) -> None:
    frame = bytes.fromhex("4500001c000100004011f9c70a0000010a000002") + bytes(8)
    files = {
        "pb.pcapng": _shb() + _idb(RAW, tsresol=6) + _pb(1_700_000_000_123_456, frame),
        "be.pcapng": _shb(">")
        + _idb(RAW, e=">", tsresol=6)
        + _epb(1_700_000_000_123_456, frame, e=">"),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        records, errors, _ = _read(data)
        got = fields(path, ["frame.time_epoch", "frame.len", "frame.cap_len", "ip.src"])
        assert errors == [] and len(got) == len(records) == 1
        ts, linktype, captured, wirelen = records[0]
        assert linktype == RAW and captured == frame
        assert got[0]["frame.time_epoch"][0].startswith("1700000000.123456")
        assert ts == 1_700_000_000_123_456_000
        assert int(got[0]["frame.len"][0]) == wirelen
        assert int(got[0]["frame.cap_len"][0]) == len(captured)
        assert got[0]["ip.src"] == ["10.0.0.1"]


def test_big_endian_section() -> None:
    data = _shb(">") + _idb(ETH, 65535, ">") + _epb(9, _pkt(5), 0, ">")
    records, errors, _ = _read(data)
    assert errors == [] and records == [(9000, ETH, _pkt(5), 40)]


def test_a_new_section_resets_interfaces_and_byte_order() -> None:
    data = (
        _shb()
        + _idb(RAW)
        + _epb(1, _pkt(1))
        + _shb(">")
        + _idb(ETH, e=">")
        + _epb(2, _pkt(2), e=">")
    )
    records, errors, _ = _read(data)
    assert errors == [] and [(r[1], r[2]) for r in records] == [(RAW, _pkt(1)), (ETH, _pkt(2))]
    # without an IDB in the new section, interface 0 no longer exists
    data = _shb() + _idb(RAW) + _epb(1, _pkt(1)) + _shb() + _epb(2, _pkt(2))
    records, errors, _ = _read(data)
    assert len(records) == 1 and "names interface 0 of 0" in errors[0]


def test_a_later_section_without_byte_order_magic_stops() -> None:
    bad = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x11223344, 1, 0, -1))
    records, errors, _ = _read(_shb() + _idb() + _epb(1, _pkt(1)) + bad)
    assert len(records) == 1 and "corrupt section header block" in errors[0]
    with pytest.raises(NotACaptureError, match="byte-order mark"):
        Capture(io.BytesIO(bad))


def test_unknown_blocks_are_skipped() -> None:
    data = (
        _shb()
        + _block(4, bytes(8))  # name resolution
        + _idb()
        + _block(5, bytes(12))  # interface statistics
        + _epb(1, _pkt(1))
        + _block(0x00000BAD, bytes(4))  # custom
        + _epb(2, _pkt(2))
    )
    records, errors, _ = _read(data)
    assert errors == [] and [r[2] for r in records] == [_pkt(1), _pkt(2)]


@pytest.mark.parametrize("length", [0, 8, 11, 13, 14, 15, 30])
def test_corrupt_block_lengths(length: int) -> None:
    block = struct.pack("<II", 6, length) + bytes(28)
    records, errors, _ = _read(_shb() + _idb() + _epb(1, _pkt(1)) + block)
    assert len(records) == 1 and f"length {length}" in errors[0]
    first = struct.pack("<II", 0x0A0D0D0A, length) + struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    with pytest.raises(NotACaptureError, match="block length"):
        Capture(io.BytesIO(first + bytes(32)))


def test_blocks_over_the_maximum_are_corrupt_and_the_maximum_is_not() -> None:
    over = struct.pack("<II", 6, MAX_BLOCK + 4)
    records, errors, _ = _read(_shb() + _idb() + over + bytes(64))
    assert records == [] and f"over the {MAX_BLOCK}-byte maximum" in errors[0]
    # a block of exactly MAX_BLOCK bytes (an unknown type) is read and skipped
    big = _block(0x0BAD, bytes(MAX_BLOCK - 12))
    records, errors, _ = _read(_shb() + _idb() + big + _epb(3, _pkt(3)))
    assert errors == [] and [r[2] for r in records] == [_pkt(3)]


def test_trailing_length_must_repeat_the_block_length() -> None:
    block = _block(6, struct.pack("<IIIII", 0, 0, 1, 4, 4) + b"abcd", trailer=99)
    records, errors, _ = _read(_shb() + _idb() + block)
    assert records == [] and "trailing length differs" in errors[0]
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), trailer=12)
    with pytest.raises(NotACaptureError, match="corrupt"):
        Capture(io.BytesIO(shb))


def test_captures_that_end_early() -> None:
    whole = _shb() + _idb() + _epb(1, _pkt(1)) + _epb(2, _pkt(2))
    end_of_first = len(_shb() + _idb() + _epb(1, _pkt(1)))
    for cut, message in (
        (end_of_first + 3, "capture ends inside a block header"),
        (end_of_first + 7, "capture ends inside a block header"),
        (end_of_first + 8, "capture ends inside a block"),
        (len(whole) - 1, "capture ends inside a block"),
    ):
        records, errors, _ = _read(whole[:cut])
        assert len(records) == 1 and errors and message in errors[0], cut
    records, errors, _ = _read(whole[:end_of_first])
    assert len(records) == 1 and errors == []
    with pytest.raises(NotACaptureError, match="cut short"):
        Capture(io.BytesIO(_shb()[:20]))


def test_pcapng_blocks_across_the_read_size() -> None:
    """Blocks that straddle the 1 MiB reads, and one bigger than a read."""
    packets = [_pkt(i, 1000 + (i % 7) * 4) for i in range(1200)]
    packets.insert(600, _pkt(9, CHUNK + 4000))
    data = _shb() + _idb() + b"".join(_epb(i, p) for i, p in enumerate(packets))
    records, errors, cap = _read(data)
    assert errors == [] and [r[2] for r in records] == packets
    assert [r[0] for r in records] == [i * 1000 for i in range(len(packets))]
    assert cap.bytes_read == len(data)


# --- classic pcap -----------------------------------------------------------------------------


def _pcap_header(e: str = "<", nano: bool = False, network: int = RAW, major: int = 2) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(e + "IHHiIII", magic, major, 4, 0, 0, 65535, network)


def _record(sec: int, frac: int, packet: bytes, e: str = "<", wirelen: int | None = None) -> bytes:
    wl = len(packet) if wirelen is None else wirelen
    return struct.pack(e + "IIII", sec, frac, len(packet), wl) + packet


@pytest.mark.parametrize("e", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_timestamps_and_lengths(e: str, nano: bool) -> None:
    data = _pcap_header(e, nano) + _record(7, 999, _pkt(1), e, 1500) + _record(8, 0, b"", e)
    records, errors, cap = _read(data)
    mul = 1 if nano else 1000
    assert errors == [] and cap.format == "pcap"
    assert records == [(7 * 10**9 + 999 * mul, RAW, _pkt(1), 1500), (8 * 10**9, RAW, b"", 0)]
    assert cap.bytes_read == len(data)


def test_pcap_link_type_is_the_low_16_bits() -> None:
    records, errors, _ = _read(_pcap_header(network=0x0A00_0000 | ETH) + _record(1, 0, _pkt(1)))
    assert errors == [] and records[0][1] == ETH
    with pytest.raises(UnsupportedLinkTypeError):
        Capture(io.BytesIO(_pcap_header(network=0x0001_0000 | 147)))


def test_pcap_header_errors() -> None:
    with pytest.raises(NotACaptureError, match="cut short"):
        Capture(io.BytesIO(_pcap_header()[:23]))
    with pytest.raises(NotACaptureError, match="version 1"):
        Capture(io.BytesIO(_pcap_header(major=1)))
    with pytest.raises(NotACaptureError, match="Kuznetzov"):
        Capture(io.BytesIO(struct.pack("<I", 0xA1B2CD34) + bytes(20)))
    with pytest.raises(NotACaptureError, match="empty"):
        Capture(io.BytesIO(b""))


def test_pcap_captured_length_limit() -> None:
    at = _pcap_header() + _record(1, 0, bytes(MAX_CAPLEN))
    records, errors, _ = _read(at)
    assert errors == [] and len(records[0][2]) == MAX_CAPLEN
    over = _pcap_header() + _record(1, 0, _pkt(1)) + struct.pack("<IIII", 2, 0, MAX_CAPLEN + 1, 9)
    records, errors, _ = _read(over + bytes(64))
    assert len(records) == 1 and f"captured length {MAX_CAPLEN + 1} exceeds" in errors[0]
    assert "at byte 80" in errors[0]  # 24-byte file header + 16 + 40


def test_pcap_records_across_the_read_size_and_a_cut_last_record() -> None:
    packets = [_pkt(i, 700 + i % 13) for i in range(3100)]
    body = b"".join(_record(i, i, p) for i, p in enumerate(packets))
    data = _pcap_header() + body
    assert len(data) > 2 * CHUNK
    records, errors, cap = _read(data)
    assert errors == [] and [r[2] for r in records] == packets
    assert cap.records == len(packets)
    records, errors, _ = _read(data[:-5])
    assert [r[2] for r in records] == packets[:-1]
    assert (
        "capture ends inside a record" in errors[0]
        and f"({16 + len(packets[-1]) - 5} bytes" in errors[0]
    )


def test_link_types_of_the_capture() -> None:
    """``Capture.linktypes`` lists every link type the file declares (pcap header, each
    pcapng interface), before any packet is counted."""
    _, _, cap = _read(_pcap_header(network=ETH) + _record(1, 0, _pkt(1)))
    assert cap.linktypes == {ETH: 0}
    _, _, cap = _read(_shb() + _idb(RAW) + _idb(ETH) + _idb(RAW) + _epb(1, _pkt(1)))
    assert cap.linktypes == {RAW: 0, ETH: 0}


def test_every_packet_block_kind_counts_as_a_record() -> None:
    """``Capture.records`` counts Enhanced, Simple and obsolete Packet Blocks alike (the
    messages of a capture that stops say "after N records")."""
    spb = _block(3, struct.pack("<I", 40) + _pkt(1))
    data = _shb() + _idb() + _epb(1, _pkt(0)) + spb + spb + _pb(2, _pkt(2)) + _block(6, bytes(8))
    records, errors, cap = _read(data)
    assert len(records) == 4 and cap.records == 4
    assert errors and "after 4 records" in errors[0]


_SAMPLE_PCAPNG = (
    _shb()
    + _idb(RAW, tsresol=9)
    + _epb(5, _pkt(1, 44))
    + _block(3, struct.pack("<I", 40) + _pkt(2))
    + _idb(ETH, 64)
    + _pb(7, _pkt(3, 36), 1)
    + _epb(9, _pkt(4, 52), 1)
)
_SAMPLE_PCAP = _pcap_header() + b"".join(_record(i, i, _pkt(i, 30 + i)) for i in range(5))


@settings(database=None, max_examples=300)
@given(
    st.sampled_from([_SAMPLE_PCAPNG, _SAMPLE_PCAP]),
    st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=4)), max_size=3),
    st.integers(0, 400),
)
def test_damaged_captures_yield_only_bytes_of_the_file(
    original: bytes, patches: list[tuple[int, bytes]], cut: int
) -> None:
    """Whatever is damaged, every record's captured bytes are a slice of the file at most one
    block or MAX_CAPLEN long, its link type is one the file declared, the counters agree with
    what was yielded, and a stop leaves exactly one message -- or the file is refused with a
    sidkit error at once."""
    data = bytearray(original)
    for pos, patch in patches:
        data[pos % len(data) : pos % len(data) + len(patch)] = patch
    blob = bytes(data[: max(1, len(data) - cut % 64)])
    try:
        cap = Capture(io.BytesIO(blob))
        records = list(cap)
    except SidkitError:
        return
    assert cap.records == len(records)
    assert cap.bytes_read == len(blob)
    assert len(cap.errors) <= 1
    for ts, linktype, captured, wirelen in records:
        assert captured in blob
        assert len(captured) <= min(MAX_CAPLEN, len(blob))
        assert linktype in cap.linktypes
        assert isinstance(ts, int) and 0 <= wirelen <= 0xFFFFFFFF


def test_pb_captured_length_up_to_the_block_end() -> None:
    packet = _pkt(1, 40)
    records, errors, _ = _read(_shb() + _idb() + _pb(7, packet))
    assert errors == [] and [r[2] for r in records] == [packet]
    records, errors, _ = _read(_shb() + _idb() + _pb(7, packet, caplen=41))
    assert records == [] and "corrupt packet block" in errors[0]
    records, errors, _ = _read(_shb() + _idb() + _pb(7, packet + b"\x01\x02", caplen=41))
    assert errors == [] and records[0][2] == (packet + b"\x01")[:41]


def test_limits_are_libpcaps() -> None:
    """The bounds are libpcap's, not ours to tune: sf-pcap.c refuses a record longer than
    max_snaplen_for_dlt() (MAXIMUM_SNAPLEN, 262144, for every link type sidkit decodes);
    sf-pcapng.c starts with INITIAL_MAX_BLOCKSIZE (16 MiB) as the largest block."""
    assert MAX_CAPLEN == 262144
    assert MAX_BLOCK == 16 * 1024 * 1024


def test_an_interface_option_running_past_its_block_stops_with_a_message() -> None:
    body = struct.pack("<HHI", RAW, 0, 0) + struct.pack("<HH", 9, 12) + bytes([6, 0, 0, 0])
    records, errors, _ = _read(_shb() + _block(1, body) + _epb(1, _pkt(1)))
    assert records == []
    assert errors and "option 9 of 12 bytes runs past the block" in errors[0]
