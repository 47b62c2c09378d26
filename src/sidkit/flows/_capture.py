# Strategy: read capture files as a stream of records, never holding more than one read
# buffer. Each record's frame is decoded by _decode; this module only finds the records.
#
# Classic pcap is read by a record loop of our own (one struct unpack per record over 1 MiB
# reads): dpkt.pcap.Reader builds a header object per record and is the bottleneck of
# `sidkit flows`. The tests hold this reader to dpkt's on the same files (both byte orders,
# micro- and nanosecond resolution, snaplen-truncated records). A bulk consumer that cannot
# afford even one generator step and one tuple per record (sidkit.flows) walks the same
# buffers itself: Capture.pcap_buffers() hands out the 1 MiB buffers and PcapLayout says
# how to read their record headers, and ETHER_IPV4_UDP (in _decode) is the one unpack that
# recognises the common frame (untagged Ethernet, IPv4 without options, not a fragment, UDP).
# pcapng is walked block by block over the same kind of 1 MiB reads, with a struct unpack
# for each Enhanced Packet Block and an option walker of our own for the interface headers
# (if_tsresol, if_tsoffset: one pass over the options by offset, never a copy of the rest of
# the block per option -- dpkt's block class did that, quadratic in a block packed with
# 4-byte options); unlike dpkt.pcapng.Reader (which applies the first interface's link
# type to every packet) each packet is decoded by the link type of *its* interface, and a new
# section resets the interfaces. Both formats share the reads, the error messages and the
# record counting, so they stay one class.
#
# A bad packet is the decoder's business (a reason string); the capture itself is different:
# a file that is not a capture raises NotACaptureError at once, while a capture that turns
# corrupt or ends mid-record stops the iteration and leaves a message in ``Capture.errors``
# -- the records before it stand.
"""Streaming pcap/pcapng reading (private)."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO, Final, TypeAlias

import attrs

from sidkit.flows._decode import DECODERS, linktype_message
from sidkit.flows._errors import CaptureError, NotACaptureError, UnsupportedLinkTypeError

__all__ = ["CHUNK", "MAX_BLOCK", "MAX_CAPLEN", "Capture", "PcapLayout", "Record"]


Record: TypeAlias = tuple[int, int, bytes, int]
"""(timestamp in ns since the epoch, link type, captured bytes, original length)."""

CHUNK: Final = 1 << 20
# libpcap (sf-pcap.c, pcap_next_packet) refuses a record whose captured length exceeds
# max_snaplen_for_dlt() -- 256 KiB for every link type sidkit decodes -- as "invalid packet
# capture length", whatever snaplen the file header claims; so do we. A larger bound would
# let one corrupt or hostile record header (caplen 0xFFFFFFF0) make the reader wait for, and
# hold, gigabytes before it could tell. (libpcap salvages a record between the header's
# snaplen and that maximum by truncating it to the snaplen; sidkit keeps the whole record.)
MAX_CAPLEN: Final = 262144
# pcapng blocks: libpcap (sf-pcapng.c) starts with a 16 MiB maximum block size
# (INITIAL_MAX_BLOCKSIZE) and refuses bigger blocks as corrupt; Wireshark's bound
# (wiretap/pcapng.c) is the largest packet plus 128 KiB of options, well under that. We take
# libpcap's: a legitimate block is never near it, and a block is sliced out of one buffer,
# so this bounds the memory one block can make the reader hold.
MAX_BLOCK: Final = 16 * 1024 * 1024
_PCAP_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # microseconds, little-endian writer
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"
_BT_IDB: Final = 1
_BT_PB: Final = 2
_BT_SPB: Final = 3
_BT_EPB: Final = 6
_OPT_IF_TSRESOL: Final = 9  # pcapng section 4.2
_OPT_IF_TSOFFSET: Final = 14
_EMPTY_OPTIONS: Final = re.compile(rb"(?:(?!\x00\x00)[\x00-\xff]{2}\x00\x00)*")
_BOM_LE: Final = b"\x4d\x3c\x2b\x1a"
_BOM_BE: Final = b"\x1a\x2b\x3c\x4d"
_Unpack: TypeAlias = Callable[[bytes, int], tuple[int, ...]]
# Per byte order: block type + length, one u32, the Enhanced and the (obsolete) Packet
# Block's fixed fields (pcapng sections 4.3, Appendix A).
_NG_STRUCTS: Final[dict[str, tuple[_Unpack, _Unpack, _Unpack, _Unpack]]] = {
    e: (
        struct.Struct(e + "II").unpack_from,
        struct.Struct(e + "I").unpack_from,
        struct.Struct(e + "5I").unpack_from,
        struct.Struct(e + "HHIIII").unpack_from,
    )
    for e in "<>"
}


def open_capture(path: str | os.PathLike[str]) -> BinaryIO:
    """*path* opened for reading as a capture, or sidkit's one-line error naming it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CaptureError(
            f"{os.fspath(path)}: cannot open: {exc.strerror or exc}", code="unreadable"
        ) from None


@attrs.frozen
class PcapLayout:
    """How to read the records of a classic pcap file (pcap-savefile(5)) without
    :class:`Capture`'s iterator: each record is a 16-byte header -- ``record`` unpacks it to
    (seconds, fraction, captured length, original length) -- and the captured bytes; the
    timestamp in ns is ``seconds * 1_000_000_000 + fraction * ns_per_tick``; every record
    has ``linktype``; a captured length above ``limit`` is a corrupt header."""

    record: struct.Struct
    ns_per_tick: int
    linktype: int
    limit: int


class _Interface:
    __slots__ = ("linktype", "offset_ns", "scale", "snaplen", "units")

    def __init__(self, linktype: int, snaplen: int, units: int, offset_s: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units = units  # timestamp units per second
        self.scale = 1_000_000_000 // units if 1_000_000_000 % units == 0 else 0
        self.offset_ns = offset_s * 1_000_000_000

    def ns(self, ticks: int) -> int:
        if self.scale:
            return self.offset_ns + ticks * self.scale
        return self.offset_ns + ticks * 1_000_000_000 // self.units


class Capture:
    """A pcap or pcapng capture read as a stream of records.

    Iterating yields :data:`Record` tuples. Reading stops at the end of the file or at the
    first record that is cut short or corrupt; the reason is appended to :attr:`errors` (the
    records before it were yielded). ``bytes_read`` follows the position in the file for
    progress reports. The constructor reads the file header and raises
    :class:`NotACaptureError` or :class:`UnsupportedLinkTypeError` for files that cannot be
    read at all.
    """

    def __init__(self, fh: BinaryIO, *, name: str = "capture") -> None:
        self._fh = fh
        self.name = name
        self.errors: list[str] = []
        self.bytes_read = 0
        self.records = 0
        self.linktypes: dict[int, int] = {}
        self.layout: PcapLayout | None = None
        """For classic pcap, how its records are laid out (for :meth:`pcap_buffers`)."""
        head = self._read(4)
        if not head:
            raise NotACaptureError(f"{name}: empty file, not a pcap or pcapng capture")
        if head in _PCAP_MAGIC:
            self.format = "pcap"
            self.layout = self._pcap_header(head)
            self._iter: Iterator[Record] = self._pcap(self.layout)
        elif head == _PCAPNG_SHB:
            self.format = "pcapng"
            self._iter = self._pcapng(head)
            next(self._iter, None)  # reads the section header; may raise
        else:
            modified = head in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
            hint = " (a modified/Kuznetzov pcap, which sidkit does not read)" if modified else ""
            raise NotACaptureError(
                f"{name}: not a pcap or pcapng capture{hint} (starts with {head.hex()})"
            )

    def _read(self, n: int) -> bytes:
        try:
            data = self._fh.read(n)
        except OSError as exc:
            raise CaptureError(f"{self.name}: read failed: {exc}", code="read-failed") from exc
        self.bytes_read += len(data)
        return data

    def __iter__(self) -> Iterator[Record]:
        return self._iter

    def stop(self, message: str) -> None:
        """Record why reading stopped early (the records before it stand)."""
        self.errors.append(f"{self.name}: {message} (after {self.records} records)")

    _stop = stop

    # -- classic pcap --

    def _pcap_header(self, magic: bytes) -> PcapLayout:
        endian, mul = _PCAP_MAGIC[magic]
        rest = self._read(20)
        if len(rest) < 20:
            raise NotACaptureError(f"{self.name}: pcap file header cut short")
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", rest)
        if major != 2:
            raise NotACaptureError(f"{self.name}: pcap version {major} is not 2")
        # The upper 16 bits of the link-type field carry FCS length and flags (pcap-savefile
        # (5)); the link type proper is the low 16 bits.
        linktype = network & 0xFFFF
        if linktype not in DECODERS:
            raise UnsupportedLinkTypeError(f"{self.name}: {linktype_message(linktype)}")
        self.linktypes[linktype] = 0
        del snaplen  # bounds nothing: see MAX_CAPLEN
        return PcapLayout(struct.Struct(endian + "IIII"), mul, linktype, MAX_CAPLEN)

    def pcap_buffers(self) -> Generator[bytes, int, None]:
        """The classic pcap records after the file header, as buffers of whole reads.

        The consumer walks the records of each buffer (:attr:`layout` says how), then sends
        back the offset where the first record it could not complete starts (or
        ``len(buffer)``); the next buffer begins with those bytes. An empty buffer ends the
        capture: bytes left over then are a record cut short, noted in :attr:`errors`. A
        consumer that finds a corrupt record header calls :meth:`stop` and stops. Keep
        :attr:`records` up to date for the messages. Either iterate the capture or use
        this, not both.
        """
        buf = b""
        pos = 0
        read = self._read
        while True:
            chunk = read(CHUNK)
            if not chunk:
                break
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            pos = yield buf
        if pos < len(buf):
            self.stop(f"capture ends inside a record ({len(buf) - pos} bytes left over)")
        yield b""

    def _pcap(self, layout: PcapLayout) -> Iterator[Record]:
        unpack = layout.record.unpack_from
        mul, linktype, limit = layout.ns_per_tick, layout.linktype, layout.limit
        buffers = self.pcap_buffers()
        buf = next(buffers)
        records = 0
        while buf:
            pos = 0
            end = len(buf)
            while pos + 16 <= end:
                sec, frac, caplen, wirelen = unpack(buf, pos)
                if caplen > limit:
                    self.records = records
                    self.stop(
                        f"corrupt record header at byte {self.bytes_read - end + pos}: "
                        f"captured length {caplen} exceeds {limit}"
                    )
                    return
                nxt = pos + 16 + caplen
                if nxt > end:
                    break
                records += 1
                yield sec * 1_000_000_000 + frac * mul, linktype, buf[pos + 16 : nxt], wirelen
                pos = nxt
            self.records = records
            buf = buffers.send(pos)

    # -- pcapng --

    def _pcapng(self, magic: bytes) -> Iterator[Record]:
        """pcapng (draft-ietf-opsawg-pcapng) block by block, from 1 MiB reads: a block is
        sliced out of the read buffer, never read on its own."""
        interfaces: list[_Interface] = []
        endian = "<"
        first = True
        buf = magic
        pos = 0
        read = self._read

        def fill(n: int) -> int:
            """Make *n* bytes from ``pos`` available if the file has them; how many are."""
            nonlocal buf, pos
            avail = len(buf) - pos
            if avail >= n:
                return avail
            parts = [buf[pos:]]
            while avail < n:
                chunk = read(max(CHUNK, n - avail))
                if not chunk:
                    break
                parts.append(chunk)
                avail += len(chunk)
            buf = b"".join(parts)
            pos = 0
            return avail

        ii, i1, epb, pb = _NG_STRUCTS[endian]
        while True:
            avail = len(buf) - pos
            if avail < 8:
                avail = fill(8)
            if not avail:
                return
            if avail < 8:
                self._stop("capture ends inside a block header")
                return
            if buf[pos : pos + 4] == _PCAPNG_SHB:
                fill(12)
                bom = buf[pos + 8 : pos + 12]
                if bom in (_BOM_LE, _BOM_BE):
                    endian = "<" if bom == _BOM_LE else ">"
                    ii, i1, epb, pb = _NG_STRUCTS[endian]
                elif first:
                    raise NotACaptureError(
                        f"{self.name}: pcapng section header has no byte-order mark"
                    )
                else:
                    self._stop("corrupt section header block")
                    return
            btype, blen = ii(buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                if first:
                    raise NotACaptureError(f"{self.name}: bad pcapng block length {blen}")
                why = f", over the {MAX_BLOCK}-byte maximum" if blen > MAX_BLOCK else ""
                self._stop(f"corrupt block (type {btype:#x}, length {blen}{why})")
                return
            if avail < blen and fill(blen) < blen:
                if first:
                    raise NotACaptureError(f"{self.name}: pcapng section header cut short")
                self._stop("capture ends inside a block")
                return
            start = pos
            pos += blen
            if i1(buf, pos - 4)[0] != blen:
                if first:
                    raise NotACaptureError(f"{self.name}: pcapng section header is corrupt")
                self._stop(f"corrupt block (type {btype:#x}): trailing length differs")
                return
            if btype == 0x0A0D0D0A:
                interfaces = []  # a new section: interface ids start again (pcapng 4.1)
                if first:
                    first = False
                    yield (0, 0, b"", 0)
                continue
            if first:  # pragma: no cover - the first block is always the SHB checked above
                raise NotACaptureError(f"{self.name}: pcapng file does not start with a section")
            if btype == _BT_EPB:
                if blen < 32:
                    self._stop("corrupt enhanced packet block")
                    return
                iface, hi, lo, caplen, wirelen = epb(buf, start + 8)
                if iface >= len(interfaces) or 28 + caplen > blen - 4:
                    self._stop(
                        f"enhanced packet block names interface {iface} of {len(interfaces)}"
                        if iface >= len(interfaces)
                        else "corrupt enhanced packet block (captured length past the block)"
                    )
                    return
                itf = interfaces[iface]
                self.records += 1
                ticks = (hi << 32) | lo
                yield (
                    itf.offset_ns + ticks * itf.scale if itf.scale else itf.ns(ticks),
                    itf.linktype,
                    buf[start + 28 : start + 28 + caplen],
                    wirelen,
                )
            elif btype == _BT_SPB:
                if not interfaces or blen < 16:
                    self._stop("simple packet block without an interface")
                    return
                itf = interfaces[0]
                wirelen = i1(buf, start + 8)[0]
                caplen = min(wirelen, blen - 16, itf.snaplen or wirelen)
                self.records += 1
                yield 0, itf.linktype, buf[start + 12 : start + 12 + caplen], wirelen
            elif btype == _BT_PB:
                if blen < 32:
                    self._stop("corrupt packet block")
                    return
                iface, _drops, hi, lo, caplen, wirelen = pb(buf, start + 8)
                if iface >= len(interfaces) or 28 + caplen > blen - 4:
                    self._stop("corrupt packet block")
                    return
                itf = interfaces[iface]
                self.records += 1
                yield (
                    itf.ns((hi << 32) | lo),
                    itf.linktype,
                    buf[start + 28 : start + 28 + caplen],
                    wirelen,
                )
            elif btype == _BT_IDB:
                described = self._interface(buf[start:pos], endian)
                if described is None:
                    return
                interfaces.append(described)
            # other blocks (name resolution, statistics, custom, ...) carry no packets

    def _interface(self, block: bytes, endian: str) -> _Interface | None:
        """An Interface Description Block (pcapng section 4.2): link type, snap length and
        the options sidkit uses (if_tsresol, if_tsoffset), read in one pass over the option
        list by offset -- linear in the block's size, whatever the options."""
        end = len(block) - 4  # the trailing Block Total Length
        if end < 16:
            self._stop("corrupt interface description block (shorter than 20 bytes)")
            return None
        linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", block, 8)
        units = 1_000_000
        offset = 0
        header = struct.Struct(endian + "HH").unpack_from
        pos = 16
        while pos + 4 <= end:
            # runs of empty options (any code but opt_endofopt, length 0 -- in either byte
            # order) say nothing sidkit reads: skipped by a C-level match, 64 KiB at a time
            # (one match over megabytes grows the regex engine's stack)
            window = min(end, pos + 65536)
            pos = _EMPTY_OPTIONS.match(block, pos, window).end()  # type: ignore[union-attr]
            if pos + 4 > end:
                break
            code, size = header(block, pos)
            if code == 0:  # opt_endofopt
                break
            value = pos + 4
            if value + size > end:
                self._stop(
                    f"corrupt interface description block (option {code} of {size} bytes "
                    "runs past the block)"
                )
                return None
            if code == _OPT_IF_TSRESOL and size:
                resol = block[value]
                units = 2 ** (resol & 0x7F) if resol & 0x80 else 10 ** (resol & 0x7F)
            elif code == _OPT_IF_TSOFFSET and size == 8:
                offset = struct.unpack_from(endian + "q", block, value)[0]
            pos = value + ((size + 3) & ~3)
        if units == 0 or units > 10**18:
            self._stop(f"interface time resolution {units} per second is not usable")
            return None
        # An interface of a link type sidkit does not decode is kept: its packets come out
        # with that link type and the caller counts them as skipped (a capture of only such
        # packets is then refused as a whole by the caller).
        self.linktypes.setdefault(linktype, 0)
        return _Interface(linktype, snaplen, units, offset)
