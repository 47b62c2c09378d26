"""The capture reader against hostile headers (issue 18): linear-time pcapng options,
bounded block sizes, bounded pcap record lengths.

Every malicious input is built here. Bounds: libpcap refuses a classic pcap record longer
than ``max_snaplen_for_dlt()`` (256 KiB for the link types sidkit decodes; sf-pcap.c) and a
pcapng block longer than its 16 MiB initial maximum (sf-pcapng.c). A reader that honours
them never waits for, nor holds, more than one bounded record or block, which the tests
check by feeding endless streams and counting what was read.

The option-walk test has a wall-clock bound, far (more than 10x) above what the linear
walker needs and far below what the old per-option copy took (95 s for 4 MiB, issue 18): a
regression guard, not a benchmark.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc

import pytest

from sidkit.flows import CaptureError, NotACaptureError, analyze
from sidkit.flows._capture import MAX_BLOCK, MAX_CAPLEN, Capture

LINKTYPE_RAW = 101


class Endless(io.RawIOBase):
    """A stream of *head* followed by zero bytes up to *limit*: what a reader that trusts a
    huge length would read until it had the record."""

    def __init__(self, head: bytes, limit: int = 64 << 20) -> None:
        self.head = head
        self.pos = 0
        self.limit = limit

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.limit
        n = min(n, self.limit - self.pos)
        out = bytearray(n)
        if self.pos < len(self.head):
            part = self.head[self.pos : self.pos + n]
            out[: len(part)] = part
        self.pos += n
        return bytes(out)


def _frame(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 1234, 4433, 8 + len(payload), 0) + payload
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, b"\n\0\0\1", b"\n\0\0\2"
        )
        + udp
    )


def _pcap_header(snaplen: int) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_RAW)


def _pcap_record(frame: bytes, caplen: int | None = None) -> bytes:
    n = len(frame) if caplen is None else caplen
    return struct.pack("<IIII", 1, 0, n, n) + frame


# --- classic pcap: caplen bounded by 256 KiB whatever the header's snaplen ------------------


@pytest.mark.parametrize("snaplen", [0xFFFFFFFF, 0x7FFFFFFF, 65535, 0])
def test_pcap_huge_caplen_is_refused_without_buffering(snaplen: int) -> None:
    good = _pcap_record(_frame(b"\x40" + bytes(20)))
    stream = Endless(_pcap_header(snaplen) + good + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 60))
    cap = Capture(stream, name="huge")  # type: ignore[arg-type]
    records = list(cap)
    assert len(records) == 1
    assert len(cap.errors) == 1
    assert "captured length 4294967280 exceeds 262144" in cap.errors[0]
    assert cap.bytes_read <= 2 << 20  # one read, not the 4 GiB the header claims


@pytest.mark.parametrize("fast", [True, False])
def test_pcap_huge_caplen_through_analyze_is_an_error_in_the_summary(fast: bool) -> None:
    good = _pcap_record(_frame(b"\x40" + bytes(20)))
    stream = Endless(_pcap_header(0xFFFFFFFF) + good + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 60))
    report = analyze(stream, fast=fast)  # type: ignore[arg-type]
    assert report.summary.frames == 1
    assert any("exceeds 262144" in e for e in report.summary.errors)
    assert stream.pos <= 2 << 20


@pytest.mark.parametrize("fast", [True, False])
def test_pcap_huge_caplen_first_record_raises_a_capture_error(fast: bool) -> None:
    stream = Endless(_pcap_header(0xFFFFFFFF) + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 60))
    with pytest.raises(CaptureError, match="exceeds 262144"):
        analyze(stream, fast=fast)  # type: ignore[arg-type]
    assert stream.pos <= 2 << 20


def test_pcap_caplen_at_the_bound_is_read_and_one_past_it_is_not() -> None:
    # 256 KiB exactly is a legal record (libpcap's max_snaplen_for_dlt); one more is not,
    # even when the file's snaplen says larger records exist.
    big = bytes(MAX_CAPLEN)  # the reader does not decode frames: any bytes do
    data = _pcap_header(0xFFFFFFFF) + _pcap_record(big) + _pcap_record(big + b"\0")
    cap = Capture(io.BytesIO(data))
    records = list(cap)
    assert [len(r[2]) for r in records] == [MAX_CAPLEN]
    assert len(cap.errors) == 1 and f"{MAX_CAPLEN + 1} exceeds {MAX_CAPLEN}" in cap.errors[0]


def test_pcap_reader_memory_is_bounded_by_one_read() -> None:
    # 8 MiB of records read through the iterator: the reader holds one 1 MiB read plus at
    # most one partial record, never the capture
    record = _pcap_record(_frame(bytes(1000)))
    data = _pcap_header(65535) + record * (8 * 1024 * 1024 // len(record))
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        count = sum(1 for _ in Capture(stream))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == (len(data) - 24) // len(record)
    assert peak < 4 << 20, peak


# --- pcapng: block sizes bounded, options walked in linear time ----------------------------


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _epb(ticks: int, packet: bytes) -> bytes:
    head = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(packet), len(packet))
    return _block(6, head + packet)


def _idb_with_options(size: int, tsresol: int, *, empty: bool = True) -> bytes:
    """An IDB of about *size* bytes packed with options (code 2, if_name): 4-byte empty
    ones, or 8-byte ones holding one byte (which no shortcut over empty options skips),
    ending with if_tsresol and opt_endofopt: a reader must walk them all to find the
    resolution."""
    option = struct.pack("<HH", 2, 0) if empty else struct.pack("<HH", 2, 1) + b"e\0\0\0"
    count = max(0, (size - 32) // len(option))
    body = (
        struct.pack("<HHI", LINKTYPE_RAW, 0, 0)
        + option * count
        + struct.pack("<HH", 9, 1)
        + bytes([tsresol, 0, 0, 0])
        + struct.pack("<HH", 0, 0)
    )
    return _block(1, body)


@pytest.mark.parametrize("empty", [True, False])
def test_idb_full_of_options_is_read_in_linear_time(empty: bool) -> None:
    size = 4 << 20
    data = (
        _shb()
        + _idb_with_options(size, 9, empty=empty)
        + _epb(1_500_000_000, _frame(b"\x40" + bytes(20)))
    )
    started = time.perf_counter()
    cap = Capture(io.BytesIO(data))
    records = list(cap)
    elapsed = time.perf_counter() - started
    assert cap.errors == []
    # if_tsresol 9 (ns) at the very end of the options was found: 1.5e9 ticks = 1.5 s
    assert [r[0] for r in records] == [1_500_000_000]
    assert elapsed < 5.0, f"{size} bytes of options took {elapsed:.1f} s"


@pytest.mark.parametrize("empty", [True, False])
def test_idb_full_of_options_is_read_in_bounded_memory(empty: bool) -> None:
    size = 1 << 20
    data = _shb() + _idb_with_options(size, 9, empty=empty) + _epb(7, _frame(b"\x40" * 9))
    tracemalloc.start()
    try:
        cap = Capture(io.BytesIO(data))
        records = list(cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r[0] for r in records] == [7]
    # the block, a copy of it and a read buffer -- not a copy per option
    assert peak < 4 * size + (1 << 20), peak


def test_idb_option_running_past_the_block_stops_reading() -> None:
    body = struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + struct.pack("<HH", 2, 4000) + bytes(8)
    data = _shb() + _block(1, body) + _epb(1, _frame(b"x"))
    cap = Capture(io.BytesIO(data))
    assert list(cap) == []
    assert len(cap.errors) == 1 and "option 2 of 4000 bytes runs past the block" in cap.errors[0]


def test_idb_shorter_than_its_fixed_fields_stops_reading() -> None:
    data = _shb() + _block(1, struct.pack("<HH", LINKTYPE_RAW, 0)) + _epb(1, _frame(b"x"))
    cap = Capture(io.BytesIO(data))
    assert list(cap) == []
    assert "shorter than 20 bytes" in cap.errors[0]


@pytest.mark.parametrize("blen", [MAX_BLOCK + 4, 0xFFFFFFF0])
def test_pcapng_block_beyond_the_maximum_is_refused_without_buffering(blen: int) -> None:
    good = _block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0)) + _epb(1, _frame(b"\x40" * 9))
    stream = Endless(_shb() + good + struct.pack("<II", 6, blen))
    cap = Capture(stream, name="huge")  # type: ignore[arg-type]
    records = list(cap)
    assert len(records) == 1
    assert len(cap.errors) == 1
    assert f"length {blen}, over the {MAX_BLOCK}-byte maximum" in cap.errors[0]
    assert cap.bytes_read <= 2 << 20


def test_pcapng_block_at_the_maximum_is_read() -> None:
    # a 16 MiB block of an unknown type (skipped) is legal; the packet after it is read
    big = _block(0x0BAD, bytes(MAX_BLOCK - 12))
    assert len(big) == MAX_BLOCK
    data = (
        _shb()
        + _block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0))
        + big
        + _epb(7, _frame(b"\x40" * 9))
    )
    cap = Capture(io.BytesIO(data))
    assert [r[0] for r in cap] == [7000]
    assert cap.errors == []


def test_pcapng_section_header_beyond_the_maximum_is_not_a_capture() -> None:
    stream = Endless(struct.pack("<II", 0x0A0D0D0A, 0xFFFFFFF0) + struct.pack("<I", 0x1A2B3C4D))
    with pytest.raises(NotACaptureError, match="bad pcapng block length 4294967280"):
        Capture(stream)  # type: ignore[arg-type]
    assert stream.pos <= 2 << 20
