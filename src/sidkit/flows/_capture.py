# Strategy: read capture files as a stream of records and decode each record down to a UDP
# datagram, as fast as CPython allows and never holding more than one read buffer.
#
# Classic pcap is read by a record loop of our own (one struct unpack per record over 1 MiB
# reads): dpkt.pcap.Reader builds a header object per record and is the bottleneck of
# `sidkit flows`. The tests hold this reader to dpkt's on the same files (both byte orders,
# micro- and nanosecond resolution, snaplen-truncated records). A bulk consumer that cannot
# afford even one generator step and one tuple per record (sidkit.flows) walks the same
# buffers itself: Capture.pcap_buffers() hands out the 1 MiB buffers and PcapLayout says
# how to read their record headers, and ETHER_IPV4_UDP is the one unpack that recognises the
# common frame (untagged Ethernet, IPv4 without options, not a fragment, UDP). pcapng is
# walked block by block over the same kind of 1 MiB reads, with dpkt's block class for the
# interface headers (options such as if_tsresol) and a struct unpack for each Enhanced
# Packet Block; unlike dpkt.pcapng.Reader (which applies the first interface's link type to
# every packet) each packet is decoded by the link type of *its* interface, and a new
# section resets the interfaces.
#
# Decoding is a chain of small functions over bytes with fixed offsets: link layer ->
# IPv4/IPv6 -> UDP. Anything that is not a complete-enough UDP datagram becomes a short
# reason string ("not-ip", "ipv4-fragment", ...) that the caller counts; nothing raises for
# a bad packet. The capture itself is different: a file that is not a capture raises
# NotACaptureError at once, while a capture that turns corrupt or ends mid-record stops the
# iteration and leaves a message in ``Capture.errors`` -- the records before it stand.
"""Streaming pcap/pcapng reading and link-layer -> IP -> UDP decoding (private)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO, Final, TypeAlias

import attrs
import dpkt

from sidkit._errors import InputValueError

__all__ = [
    "ETHER_IPV4_UDP",
    "LINKTYPES",
    "Capture",
    "CaptureError",
    "Datagram",
    "NotACaptureError",
    "PcapLayout",
    "UnsupportedLinkTypeError",
    "decode_frame",
    "split_tuple_key",
    "tuple_key",
]


class CaptureError(InputValueError):
    """A capture file sidkit cannot read (see the subclasses), or cannot read any further."""

    code = "bad-capture"


class NotACaptureError(CaptureError):
    """The bytes do not start with a pcap or pcapng header."""

    code = "not-a-capture"


class UnsupportedLinkTypeError(CaptureError):
    """The capture's (or an interface's) link type is not one sidkit decodes."""

    code = "unsupported-linktype"


# --------------------------------------------------------------------------------------------
# Link types (https://www.tcpdump.org/linktypes.html; libpcap pcap/dlt.h)
# --------------------------------------------------------------------------------------------

LINKTYPE_NULL: Final = 0  # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW_DLT12: Final = 12  # DLT_RAW on most platforms (libpcap maps it to 101)
LINKTYPE_RAW_DLT14: Final = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

LINKTYPES: Final = {
    LINKTYPE_NULL: "null (BSD loopback)",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW_DLT12: "raw IP (DLT 12)",
    LINKTYPE_RAW_DLT14: "raw IP (DLT 14)",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "loop (OpenBSD loopback)",
    LINKTYPE_LINUX_SLL: "linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "linux cooked v2 (SLL2)",
}
"""Link types :func:`decode_frame` understands, with a readable name."""

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_VLAN: Final = frozenset((0x8100, 0x88A8, 0x9100))  # 802.1Q, 802.1ad, old QinQ
_IPPROTO_UDP: Final = 17
# IPv6 extension headers sidkit walks (RFC 8200 section 4): hop-by-hop, routing, destination
# options use (8-octet units - 1); AH (RFC 4302 section 2.2) uses (4-octet units - 2).
_IPV6_EXT: Final = frozenset((0, 43, 60))
_IPV6_FRAGMENT: Final = 44
_IPV6_AH: Final = 51
# Address families in NULL/LOOP headers: AF_INET is 2 everywhere; AF_INET6 is 10 (Linux),
# 24 (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD), 30 (macOS) -- libpcap's pcap-common.c lists
# the same set for LINKTYPE_NULL.
_AF_INET6: Final = frozenset((10, 24, 28, 30))

Datagram: TypeAlias = tuple[bytes, int, bytes, int, bytes, int]
"""A decoded UDP datagram: (src address bytes, sport, dst address bytes, dport, the
captured payload, the payload's length on the wire from the UDP Length field)."""

_H: Final = struct.Struct("!H")
_HHH: Final = struct.Struct("!HHH")
_PORTS: Final = struct.Struct("!HH")
_unpack_h = _H.unpack_from
_unpack_hhh = _HHH.unpack_from

ETHER_IPV4_UDP: Final = struct.Struct("!12xHBxH2xHxB2x12sH2xB")
"""The fields of an Ethernet frame that decide, in one unpack, whether it is the common
case -- untagged (IEEE 802.3 EtherType at 12), IPv4 without options (RFC 791: version/IHL
0x45 at 14, Total Length at 16, flags/fragment offset at 20, protocol at 23), UDP (RFC 768:
Length at 38) -- plus what that case needs: the 12 bytes of addresses and ports at 26..38
(a :func:`tuple_key`) and the first payload byte at 42. Values: (ethertype, version_ihl,
total_length, flags_fragment, protocol, tuple_key, udp_length, first_payload_byte); the
frame must be at least 43 bytes. A frame is the common case when ethertype is 0x0800,
version_ihl 0x45, protocol 17, ``flags_fragment & 0x1FFF`` 0, udp_length >= 8 and
``42 <= 14 + total_length <= len(frame)``; its payload is then
``frame[42 : min(34 + udp_length, 14 + total_length)]`` -- what :func:`decode_frame` gives."""


def tuple_key(src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    """The 5-tuple of a UDP datagram as one ``bytes`` key, laid out as in an IPv4 packet:
    source address, destination address (4 or 16 bytes each), source port, destination port
    (network order). For IPv4 it is the packet's bytes 12..24 as they are, so a bulk reader
    takes it with one slice."""
    return src + dst + _PORTS.pack(sport, dport)


def split_tuple_key(key: bytes) -> tuple[bytes, int, bytes, int]:
    """:func:`tuple_key` undone: (src, sport, dst, dport)."""
    a = (len(key) - 4) >> 1
    sport, dport = _PORTS.unpack_from(key, a + a)
    return key[:a], sport, key[a : a + a], dport


def _udp(frame: bytes, off: int, end: int, src: bytes, dst: bytes) -> Datagram | str:
    """RFC 768 header at *off*; *end* is where the IP payload ends in the captured bytes."""
    if off + 8 > end:
        return "truncated"
    sport, dport, ulen = _unpack_hhh(frame, off)
    if ulen == 0:  # RFC 2675 jumbogram: the length is the IPv6 payload's
        ulen = end - off
    if ulen < 8:
        return "bad-udp-length"
    # Captured bytes may stop short of the UDP Length (snaplen): take what is there; the
    # SID sits at the start of the payload, and byte counts use the wire length.
    return src, sport, dst, dport, frame[off + 8 : min(off + ulen, end)], ulen - 8


def _ipv4(frame: bytes, off: int) -> Datagram | str:
    """RFC 791: options skipped by IHL; a non-first fragment (offset != 0) has no UDP header."""
    if off + 20 > len(frame):
        return "truncated"
    vihl = frame[off]
    ihl = (vihl & 0x0F) << 2
    if vihl >> 4 != 4 or ihl < 20:
        return "bad-ip-header"
    if frame[off + 9] != _IPPROTO_UDP:
        return "not-udp"
    if (frame[off + 6] & 0x1F) or frame[off + 7]:
        return "ip-fragment"
    total = _unpack_h(frame, off + 2)[0]
    if total < ihl:
        return "bad-ip-header"
    # The IP Total Length cuts off link-layer padding (Ethernet pads frames to 60 bytes).
    end = min(off + total, len(frame))
    return _udp(frame, off + ihl, end, frame[off + 12 : off + 16], frame[off + 16 : off + 20])


def _ipv6(frame: bytes, off: int) -> Datagram | str:
    """RFC 8200: walk hop-by-hop, routing, destination options (and AH) to UDP; a fragment
    header with a non-zero offset means no UDP header in this packet."""
    if off + 40 > len(frame):
        return "truncated"
    if frame[off] >> 4 != 6:
        return "bad-ip-header"
    plen = _unpack_h(frame, off + 4)[0]
    end = min(off + 40 + plen, len(frame)) if plen else len(frame)
    nxt = frame[off + 6]
    src = frame[off + 8 : off + 24]
    dst = frame[off + 24 : off + 40]
    pos = off + 40
    while nxt != _IPPROTO_UDP:
        if pos + 8 > end:
            return "truncated" if end == len(frame) else "bad-ip-header"
        if nxt in _IPV6_EXT:
            nxt, pos = frame[pos], pos + ((frame[pos + 1] + 1) << 3)
        elif nxt == _IPV6_FRAGMENT:
            if _unpack_h(frame, pos + 2)[0] & 0xFFF8:
                return "ip-fragment"
            nxt, pos = frame[pos], pos + 8
        elif nxt == _IPV6_AH:
            nxt, pos = frame[pos], pos + ((frame[pos + 1] + 2) << 2)
        else:
            return "not-udp"
    return _udp(frame, pos, end, src, dst)


def _ip(frame: bytes, off: int) -> Datagram | str:
    if off >= len(frame):
        return "truncated"
    version = frame[off] >> 4
    if version == 4:
        return _ipv4(frame, off)
    if version == 6:
        return _ipv6(frame, off)
    return "not-ip"


def _by_ethertype(frame: bytes, ethertype: int, off: int) -> Datagram | str:
    if ethertype == _ETH_IPV4:
        return _ipv4(frame, off)
    if ethertype == _ETH_IPV6:
        return _ipv6(frame, off)
    return "not-ip"


def _ethernet(frame: bytes) -> Datagram | str:
    """IEEE 802.3 with any number of 802.1Q/802.1ad tags.

    The common frame (untagged IPv4 without options, not a fragment, UDP) is decoded inline
    here; everything else takes the general path, which gives the same answer for it."""
    n = len(frame)
    if (
        n >= 42
        and frame[12] == 8
        and frame[13] == 0
        and frame[14] == 0x45
        and frame[23] == _IPPROTO_UDP
        and not (frame[20] & 0x1F or frame[21])
    ):
        end = 14 + ((frame[16] << 8) | frame[17])
        sport, dport, ulen = _unpack_hhh(frame, 34)
        if 42 <= end <= n and ulen >= 8:
            stop = 34 + ulen
            return frame[26:30], sport, frame[30:34], dport, frame[42 : min(stop, end)], ulen - 8
    return _ethernet_general(frame)


def _ethernet_general(frame: bytes) -> Datagram | str:
    if len(frame) < 14:
        return "truncated"
    ethertype = (frame[12] << 8) | frame[13]
    off = 14
    if ethertype == _ETH_IPV4:  # the common case first
        return _ipv4(frame, 14)
    while ethertype in _ETH_VLAN:
        if off + 4 > len(frame):
            return "truncated"
        ethertype = (frame[off + 2] << 8) | frame[off + 3]
        off += 4
    return _by_ethertype(frame, ethertype, off)


def _sll(frame: bytes) -> Datagram | str:
    """LINKTYPE_LINUX_SLL: 16-byte header, protocol (an EtherType) at 14."""
    if len(frame) < 16:
        return "truncated"
    return _by_ethertype(frame, (frame[14] << 8) | frame[15], 16)


def _sll2(frame: bytes) -> Datagram | str:
    """LINKTYPE_LINUX_SLL2: 20-byte header, protocol (an EtherType) at 0."""
    if len(frame) < 20:
        return "truncated"
    return _by_ethertype(frame, (frame[0] << 8) | frame[1], 20)


def _af(frame: bytes, family: int) -> Datagram | str:
    if family == 2:
        return _ipv4(frame, 4)
    if family in _AF_INET6:
        return _ipv6(frame, 4)
    return "not-ip"


def _null(frame: bytes) -> Datagram | str:
    """LINKTYPE_NULL: the family is in the byte order of the machine that wrote the file,
    which the file does not record; a family is < 256, so the non-zero end tells."""
    if len(frame) < 4:
        return "truncated"
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(frame[:4], "big")
    return _af(frame, family)


def _loop(frame: bytes) -> Datagram | str:
    """LINKTYPE_LOOP: the family in network byte order."""
    if len(frame) < 4:
        return "truncated"
    return _af(frame, int.from_bytes(frame[:4], "big"))


def _raw(frame: bytes) -> Datagram | str:
    return _ip(frame, 0)


def _raw4(frame: bytes) -> Datagram | str:
    return _ipv4(frame, 0)


def _raw6(frame: bytes) -> Datagram | str:
    return _ipv6(frame, 0)


Decoder: TypeAlias = Callable[[bytes], "Datagram | str"]

DECODERS: Final[dict[int, Decoder]] = {
    LINKTYPE_NULL: _null,
    LINKTYPE_ETHERNET: _ethernet,
    LINKTYPE_RAW_DLT12: _raw,
    LINKTYPE_RAW_DLT14: _raw,
    LINKTYPE_RAW: _raw,
    LINKTYPE_LOOP: _loop,
    LINKTYPE_LINUX_SLL: _sll,
    LINKTYPE_IPV4: _raw4,
    LINKTYPE_IPV6: _raw6,
    LINKTYPE_LINUX_SLL2: _sll2,
}


def decode_frame(linktype: int, frame: bytes) -> Datagram | str:
    """Decode one captured frame of *linktype* down to UDP.

    Returns a :data:`Datagram`, or a reason string for a frame that is not a usable UDP
    datagram: ``not-ip``, ``not-udp``, ``ip-fragment`` (a non-first fragment: no UDP header,
    cannot be attributed), ``truncated`` (captured bytes end inside a header),
    ``bad-ip-header``, ``bad-udp-length``. Never raises for any bytes; an unknown link type
    is :class:`UnsupportedLinkTypeError`.
    """
    decoder = DECODERS.get(linktype)
    if decoder is None:
        raise UnsupportedLinkTypeError(_linktype_message(linktype))
    return decoder(bytes(frame))


def _linktype_message(linktype: int) -> str:
    known = ", ".join(f"{k} {v}" for k, v in LINKTYPES.items())
    return f"link type {linktype} is not supported (supported: {known})"


# --------------------------------------------------------------------------------------------
# Capture files
# --------------------------------------------------------------------------------------------

Record: TypeAlias = tuple[int, int, bytes, int]
"""(timestamp in ns since the epoch, link type, captured bytes, original length)."""

CHUNK: Final = 1 << 20
# libpcap refuses records longer than max_snaplen_for_dlt() (256 KiB for most link types) as
# "bogus"; so do we, unless the file's own snaplen is larger.
_MAX_CAPLEN: Final = 262144
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
            raise UnsupportedLinkTypeError(f"{self.name}: {_linktype_message(linktype)}")
        self.linktypes[linktype] = 0
        return PcapLayout(struct.Struct(endian + "IIII"), mul, linktype, max(snaplen, _MAX_CAPLEN))

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
            if blen < 12 or blen % 4 or blen > (1 << 28):
                if first:
                    raise NotACaptureError(f"{self.name}: bad pcapng block length {blen}")
                self._stop(f"corrupt block (type {btype:#x}, length {blen})")
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
        """An Interface Description Block (pcapng section 4.2), parsed by dpkt's block class
        for its options (if_tsresol, if_tsoffset)."""
        try:
            cls = (
                dpkt.pcapng.InterfaceDescriptionBlockLE
                if endian == "<"
                else dpkt.pcapng.InterfaceDescriptionBlock
            )
            idb = cls(block)
            units = 1_000_000
            offset = 0
            for opt in idb.opts:
                if opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
                    value = opt.data[0]
                    units = 2 ** (value & 0x7F) if value & 0x80 else 10 ** (value & 0x7F)
                elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) == 8:
                    offset = struct.unpack(endian + "q", opt.data)[0]
            linktype, snaplen = int(idb.linktype), int(idb.snaplen)
        except (dpkt.Error, struct.error, ValueError, IndexError, TypeError) as exc:
            self._stop(f"corrupt interface description block ({exc!r})")
            return None
        if units == 0 or units > 10**18:
            self._stop(f"interface time resolution {units} per second is not usable")
            return None
        # An interface of a link type sidkit does not decode is kept: its packets come out
        # with that link type and the caller counts them as skipped (a capture of only such
        # packets is then refused as a whole by the caller).
        self.linktypes.setdefault(linktype, 0)
        return _Interface(linktype, snaplen, units, offset)
