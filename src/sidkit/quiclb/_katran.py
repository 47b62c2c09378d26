# Katran, Meta's XDP load balancer: the server ID its QUIC servers (mvfst) write into the first
# octets of their CIDs, in three versions named by the CID's top two bits, and the UDP
# stable-routing header (first octet 0x52, a 24-bit server ID) that gives any UDP protocol the
# same stickiness. Each function transcribes facebookincubator/katran's katran/lib/bpf code
# (cited per function, read at 19f08fec82fb). The per-packet functions model the XDP
# program's parse, quirks included, and never raise on packet content: where Katran falls back
# to its LRU and consistent hashing they return None. The per-CID function raises CidError;
# the encoder takes the caller's octets and draws none of its own.
"""Katran's CID server IDs and UDP stable routing (private; public in sidkit.quiclb)."""

from __future__ import annotations

import attrs

from sidkit._errors import InputValueError
from sidkit._validate import as_bytes, show
from sidkit.quiclb._core import CidError
from sidkit.steering import AnyOf, FixedOffset, IndexField, SteeringError, SteeringPolicy

__all__ = [
    "KATRAN_MIN_CID_LENGTH",
    "KATRAN_STABLE_ROUTING_HEADER",
    "KATRAN_STABLE_ROUTING_LENGTH",
    "KatranServerId",
    "katran_packet_server_id",
    "katran_server_id",
    "katran_stable_routing_header",
    "katran_stable_routing_server_id",
    "katran_stable_routing_steering_policy",
]

LONG_HEADER = 0x80
# katran/lib/bpf/balancer_consts.h
KATRAN_MIN_CID_LENGTH = 8
"""``QUIC_MIN_CONNID_LEN``: Katran reads (and requires) 8 DCID octets."""
_KATRAN_PACKET_TYPE_MASK = 0x30
_KATRAN_HANDSHAKE = 0x20
KATRAN_STABLE_ROUTING_HEADER = 0x52
"""``STABLE_ROUTING_HEADER``: the first octet of a Katran UDP stable-routing datagram."""
KATRAN_STABLE_ROUTING_LENGTH = 8
"""``STABLE_RT_LEN``: Katran reads (and requires) 8 payload octets of a stable-routing header."""
_KATRAN_STABLE_ID_MAX = (1 << 24) - 1


@attrs.frozen
class KatranServerId:
    """A Katran CID's version (top two bits of the first octet) and server ID."""

    version: int
    server_id: int

    @property
    def routed_by_katran(self) -> bool:
        """Whether Katran would look the ID up at all.

        ``parse_quic`` returns the ID in an ``int`` and the XDP program routes by it only
        ``if (qpr.server_id > 0)`` (katran/lib/bpf/balancer.bpf.c): ID 0 and version-3 IDs with
        the top bit set (negative as a 32-bit int) go to consistent hashing instead.
        """
        return 0 < self.server_id < 2**31


def katran_server_id(cid: bytes | bytearray | memoryview) -> KatranServerId | None:
    """The server ID of a Katran CID, or None for version 0 (not server-encoded).

    Source: facebookincubator/katran ``katran/lib/bpf/pckt_parsing.h`` ``parse_quic()``; the
    version is ``connId[0] >> 6``:

    * v1: 16 bits, ``((c[0] & 0x3F) << 10) | (c[1] << 2) | (c[2] >> 6)`` (mvfst's
      ``DefaultConnectionIdAlgo`` writes the same bits, then an 8-bit worker ID and a process
      bit);
    * v2: 24 bits, octets 1-3 (mvfst: then worker ID in octet 4);
    * v3: 32 bits, octets 1-4.

    Katran reads 8 DCID octets whatever the version (``QUIC_MIN_CONNID_LEN``), so a shorter
    CID raises :class:`CidError` (``cid-too-short``).
    """
    data = as_bytes(cid, "cid")
    if len(data) < KATRAN_MIN_CID_LENGTH:
        raise CidError(
            f"Katran reads {KATRAN_MIN_CID_LENGTH} DCID octets, got {len(data)}",
            code="cid-too-short",
        )
    version = data[0] >> 6
    if version == 0:
        return None
    if version == 1:
        sid = ((data[0] & 0x3F) << 10) | (data[1] << 2) | (data[2] >> 6)
    elif version == 2:
        sid = int.from_bytes(data[1:4], "big")
    else:
        sid = int.from_bytes(data[1:5], "big")
    return KatranServerId(version, sid)


def katran_packet_server_id(udp_payload: bytes | bytearray | memoryview) -> KatranServerId | None:
    """What Katran's ``parse_quic()`` extracts from a QUIC datagram, or None where it falls
    back to consistent hashing before decoding.

    Long header (bit 0x80): the packet must hold the fixed ``quic_long_header`` (flags,
    version, DCID length, 8 DCID octets = 14 octets); types below Handshake (``type & 0x30 <
    0x20``: QUIC v1 Initial and 0-RTT, whose DCID the client chose) are not decoded; a DCID
    length below 8 is not decoded. The type test uses QUIC v1's bits: a QUIC v2 (RFC 9369)
    0-RTT packet (type bits 0b10) passes it and is decoded, a v2 Retry (0b00) does not. Short
    header: the 8 octets after the first. Never raises on the payload's content.
    """
    data = as_bytes(udp_payload, "udp_payload")
    if not data:
        return None
    if data[0] & LONG_HEADER:
        if len(data) < 6 + KATRAN_MIN_CID_LENGTH:
            return None
        if data[0] & _KATRAN_PACKET_TYPE_MASK < _KATRAN_HANDSHAKE:
            return None
        if data[5] < KATRAN_MIN_CID_LENGTH:
            return None
        cid = data[6 : 6 + KATRAN_MIN_CID_LENGTH]
    else:
        if len(data) < 1 + KATRAN_MIN_CID_LENGTH:
            return None
        cid = data[1 : 1 + KATRAN_MIN_CID_LENGTH]
    return katran_server_id(cid)


def katran_stable_routing_server_id(
    udp_payload: bytes | bytearray | memoryview,
) -> KatranServerId | None:
    """The server ID Katran reads from a UDP stable-routing datagram, or None where it finds no
    stable-routing header (it then routes by its LRU and consistent hashing).

    Source: facebookincubator/katran at 19f08fec82fb (2026-08-22),
    ``katran/lib/bpf/pckt_parsing.h`` ``parse_udp_stable_rt_hdr()`` (lines 418-453) with
    ``STABLE_ROUTING_HEADER`` = 0x52 and ``STABLE_RT_LEN`` = 8
    (``katran/lib/bpf/balancer_consts.h`` lines 205-222), called for VIPs flagged
    ``F_UDP_STABLE_ROUTING_VIP`` (``balancer.bpf.c`` lines 995-999). The first payload octet
    must be exactly 0x52 (line 438) and the 8-octet header must fit (line 440); the server ID is
    then octets 1-3, big-endian ("same as QUIC connId v2 schema", line 450). The header's low
    two bits are the CID version ("0x52 is 0b01010010 ... two LSB bits are used to encode
    connection id version type"), so the result is a version-2 :class:`KatranServerId`.

    ``process_udp_stable_routing()`` (``balancer.bpf.c`` lines 551-596) looks the ID up only
    ``if (usr.server_id > 0)``: ID 0 (``STABLE_RT_NO_SERVER_ID``) goes to consistent hashing,
    which ``routed_by_katran`` says. Never raises on content.
    """
    data = as_bytes(udp_payload, "udp_payload")
    if not data or data[0] != KATRAN_STABLE_ROUTING_HEADER:
        return None
    if len(data) < KATRAN_STABLE_ROUTING_LENGTH:
        return None
    return KatranServerId(2, int.from_bytes(data[1:4], "big"))


def katran_stable_routing_header(
    server_id: int, tail: bytes | bytearray | memoryview = bytes(4)
) -> bytes:
    """The 8-octet stable-routing header that Katran routes to *server_id*: 0x52, the 24-bit
    ID big-endian, then the 4 octets of *tail*, which Katran does not read (its test
    ``PacketBuilder::stableRoutingPayload()`` pads the connection ID with zeros; the
    application's payload follows the header).

    *server_id* must be 1..2**24-1: ID 0 means "no server" and is never looked up.
    """
    if not isinstance(server_id, int) or isinstance(server_id, bool):
        raise InputValueError(
            f"server_id must be an int, got {show(server_id)}", code="out-of-range"
        )
    if not 1 <= server_id <= _KATRAN_STABLE_ID_MAX:
        raise InputValueError(
            f"a stable-routing server ID is 1..{_KATRAN_STABLE_ID_MAX} (0 is never routed), "
            f"got {show(server_id)}",
            code="out-of-range",
        )
    rest = as_bytes(tail, "tail")
    if len(rest) != KATRAN_STABLE_ROUTING_LENGTH - 4:
        raise InputValueError(
            f"tail must be {KATRAN_STABLE_ROUTING_LENGTH - 4} octets, got {len(rest)}",
            code="bad-length",
        )
    return bytes([KATRAN_STABLE_ROUTING_HEADER]) + server_id.to_bytes(3, "big") + rest


def katran_stable_routing_steering_policy(n: int, first_id: int = 1) -> SteeringPolicy:
    """A steering policy for one host's *n* sockets that carry Katran stable-routing server IDs
    ``first_id .. first_id + n - 1`` (socket *i* serves ID ``first_id + i``): the choice
    :func:`katran_stable_routing_server_id` reads, compiled to cBPF or SK_REUSEPORT eBPF.

    The location is the whole 8-octet header behind a guard on the exact first octet 0x52; the
    ID is octets 1-3 minus *first_id* (``IndexField(base=first_id)``). Datagrams without the
    header, IDs below *first_id* -- so ID 0 always, as Katran never looks it up -- and IDs
    past the last socket fall back to the kernel's hash, as Katran falls back to consistent
    hashing. A server mints the header for socket *i* with
    ``katran_stable_routing_header(first_id + i, tail)``. Raises
    :class:`sidkit.steering.SteeringError` for a bad *n* or *first_id*.
    """
    if not isinstance(first_id, int) or isinstance(first_id, bool):
        raise SteeringError(f"first_id must be an int, got {first_id!r}")
    if not 1 <= first_id <= _KATRAN_STABLE_ID_MAX:
        raise SteeringError(
            f"first_id must be 1..{_KATRAN_STABLE_ID_MAX} (ID 0 is never routed), got {first_id}"
        )
    header = FixedOffset(0, KATRAN_STABLE_ROUTING_LENGTH, [(0, 0xFF, KATRAN_STABLE_ROUTING_HEADER)])
    field = IndexField(1, 3, 0, _KATRAN_STABLE_ID_MAX, base=first_id)
    return SteeringPolicy(AnyOf([header]), "index", n, field=field)
