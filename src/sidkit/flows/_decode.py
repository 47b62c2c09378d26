# Strategy: decode one captured frame down to a UDP datagram, as fast as CPython allows.
# Decoding is a chain of small functions over bytes with fixed offsets: link layer ->
# IPv4/IPv6 -> UDP. Anything that is not a complete-enough UDP datagram becomes a short
# reason string ("not-ip", "ipv4-fragment", ...) that the caller counts; nothing raises for
# a bad packet (only an unknown link type, which is the caller's mistake, raises). A 5-tuple
# leaves as one bytes key (tuple_key), laid out as in an IPv4 packet, so that a bulk reader
# takes it with one slice; ETHER_IPV4_UDP is the one unpack that recognises the common frame
# (untagged Ethernet, IPv4 without options, not a fragment, UDP) for such readers. No file
# reading here (that is _capture), no session IDs (that is the analyzer).
"""Link-layer -> IP -> UDP decoding of captured frames (private)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, TypeAlias

from sidkit.flows._errors import UnsupportedLinkTypeError
from sidkit.flows._reassembly import Fragment

__all__ = [
    "DECODERS",
    "ETHER_IPV4_UDP",
    "LINKTYPES",
    "LINKTYPE_ETHERNET",
    "Datagram",
    "Decoder",
    "Fragment",
    "decode_frame",
    "linktype_message",
    "split_tuple_key",
    "tuple_key",
    "udp_datagram",
]


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
version_ihl 0x45, protocol 17, ``flags_fragment & 0x3FFF`` 0 (no More Fragments flag, no
offset), udp_length >= 8 and
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
    if ulen == 0 and len(src) == 16:  # RFC 2675 jumbogram (IPv6 only): the payload's length
        ulen = end - off
    if ulen < 8:
        return "bad-udp-length"
    # Captured bytes may stop short of the UDP Length (snaplen): take what is there; the
    # SID sits at the start of the payload, and byte counts use the wire length.
    return src, sport, dst, dport, frame[off + 8 : min(off + ulen, end)], ulen - 8


def udp_datagram(src: bytes, dst: bytes, data: bytes) -> Datagram | str:
    """The UDP datagram in a reassembled IP payload *data* (RFC 768 header first)."""
    return _udp(data, 0, len(data), src, dst)


def _ipv4(frame: bytes, off: int) -> Datagram | Fragment | str:
    """RFC 791: options skipped by IHL; a fragment (More Fragments set or an offset) of a
    UDP datagram is a :class:`Fragment` for reassembly."""
    if off + 20 > len(frame):
        return "truncated"
    vihl = frame[off]
    ihl = (vihl & 0x0F) << 2
    if vihl >> 4 != 4 or ihl < 20:
        return "bad-ip-header"
    if frame[off + 9] != _IPPROTO_UDP:
        return "not-udp"
    total = _unpack_h(frame, off + 2)[0]
    if total < ihl:
        return "bad-ip-header"
    if (frame[off + 6] & 0x3F) or frame[off + 7]:
        src, dst = frame[off + 12 : off + 16], frame[off + 16 : off + 20]
        return Fragment(
            b"\x04" + src + dst + frame[off + 4 : off + 6] + b"\x11",
            src,
            dst,
            _IPPROTO_UDP,
            (((frame[off + 6] & 0x1F) << 8) | frame[off + 7]) << 3,
            bool(frame[off + 6] & 0x20),
            frame[off + ihl : off + total],
            total - ihl,
            ihl,
        )
    # The IP Total Length cuts off link-layer padding (Ethernet pads frames to 60 bytes).
    end = min(off + total, len(frame))
    return _udp(frame, off + ihl, end, frame[off + 12 : off + 16], frame[off + 16 : off + 20])


def _ipv6(frame: bytes, off: int) -> Datagram | Fragment | str:
    """RFC 8200: walk hop-by-hop, routing, destination options (and AH) to UDP; a fragment
    header (other than an atomic fragment, RFC 6946) whose Next Header is UDP makes a
    :class:`Fragment` for reassembly; of another protocol, a non-first one is
    ``ip-fragment``."""
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
            fo = _unpack_h(frame, pos + 2)[0]
            if fo & 0xFFF9:  # an offset or More Fragments: not an atomic fragment
                if frame[pos] != _IPPROTO_UDP or not plen:
                    if fo & 0xFFF8:
                        return "ip-fragment"
                else:
                    return Fragment(
                        b"\x06" + src + dst + frame[pos + 4 : pos + 8],
                        src,
                        dst,
                        _IPPROTO_UDP,
                        fo & 0xFFF8,
                        bool(fo & 1),
                        frame[pos + 8 : end],
                        off + 40 + plen - pos - 8,
                        pos - off - 40,
                    )
            nxt, pos = frame[pos], pos + 8
        elif nxt == _IPV6_AH:
            nxt, pos = frame[pos], pos + ((frame[pos + 1] + 2) << 2)
        else:
            return "not-udp"
    return _udp(frame, pos, end, src, dst)


def _ip(frame: bytes, off: int) -> Datagram | Fragment | str:
    if off >= len(frame):
        return "truncated"
    version = frame[off] >> 4
    if version == 4:
        return _ipv4(frame, off)
    if version == 6:
        return _ipv6(frame, off)
    return "not-ip"


def _by_ethertype(frame: bytes, ethertype: int, off: int) -> Datagram | Fragment | str:
    if ethertype == _ETH_IPV4:
        return _ipv4(frame, off)
    if ethertype == _ETH_IPV6:
        return _ipv6(frame, off)
    return "not-ip"


def _ethernet(frame: bytes) -> Datagram | Fragment | str:
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
        and not (frame[20] & 0x3F or frame[21])
    ):
        end = 14 + ((frame[16] << 8) | frame[17])
        sport, dport, ulen = _unpack_hhh(frame, 34)
        if 42 <= end <= n and ulen >= 8:
            stop = 34 + ulen
            return frame[26:30], sport, frame[30:34], dport, frame[42 : min(stop, end)], ulen - 8
    return _ethernet_general(frame)


def _ethernet_general(frame: bytes) -> Datagram | Fragment | str:
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


def _sll(frame: bytes) -> Datagram | Fragment | str:
    """LINKTYPE_LINUX_SLL: 16-byte header, protocol (an EtherType) at 14."""
    if len(frame) < 16:
        return "truncated"
    return _by_ethertype(frame, (frame[14] << 8) | frame[15], 16)


def _sll2(frame: bytes) -> Datagram | Fragment | str:
    """LINKTYPE_LINUX_SLL2: 20-byte header, protocol (an EtherType) at 0."""
    if len(frame) < 20:
        return "truncated"
    return _by_ethertype(frame, (frame[0] << 8) | frame[1], 20)


def _af(frame: bytes, family: int) -> Datagram | Fragment | str:
    if family == 2:
        return _ipv4(frame, 4)
    if family in _AF_INET6:
        return _ipv6(frame, 4)
    return "not-ip"


def _null(frame: bytes) -> Datagram | Fragment | str:
    """LINKTYPE_NULL: the family is in the byte order of the machine that wrote the file,
    which the file does not record; a family is < 256, so the non-zero end tells."""
    if len(frame) < 4:
        return "truncated"
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(frame[:4], "big")
    return _af(frame, family)


def _loop(frame: bytes) -> Datagram | Fragment | str:
    """LINKTYPE_LOOP: the family in network byte order."""
    if len(frame) < 4:
        return "truncated"
    return _af(frame, int.from_bytes(frame[:4], "big"))


def _raw(frame: bytes) -> Datagram | Fragment | str:
    return _ip(frame, 0)


def _raw4(frame: bytes) -> Datagram | Fragment | str:
    return _ipv4(frame, 0)


def _raw6(frame: bytes) -> Datagram | Fragment | str:
    return _ipv6(frame, 0)


Decoder: TypeAlias = Callable[[bytes], "Datagram | Fragment | str"]

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


def decode_frame(linktype: int, frame: bytes) -> Datagram | Fragment | str:
    """Decode one captured frame of *linktype* down to UDP.

    Returns a :data:`Datagram`, a :class:`Fragment` of a UDP datagram (for
    :class:`~sidkit.flows.Reassembler`), or a reason string for a frame that is not a usable
    UDP datagram: ``not-ip``, ``not-udp``, ``ip-fragment`` (a non-first IPv6 fragment whose
    Next Header is not UDP), ``truncated`` (captured bytes end inside a header),
    ``bad-ip-header``, ``bad-udp-length``. Never raises for any bytes; an unknown link type
    is :class:`UnsupportedLinkTypeError`.
    """
    decoder = DECODERS.get(linktype)
    if decoder is None:
        raise UnsupportedLinkTypeError(linktype_message(linktype))
    return decoder(bytes(frame))


def linktype_message(linktype: int) -> str:
    known = ", ".join(f"{k} {v}" for k, v in LINKTYPES.items())
    return f"link type {linktype} is not supported (supported: {known})"
