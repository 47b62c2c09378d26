# Server-ID schemes of deployed balancers that are not QUIC-LB, decode side, each a transcription
# of what one source file does (cited per function, read from the upstream repository):
# Katran's CID versions 1-3 (an XDP balancer's server ID in the first five octets), Envoy's
# quic_lb worker byte (a clear octet appended after a QUIC-LB CID, read by a reuseport cBPF
# program), and nginx's socket-cookie prefix (the listening socket's SO_COOKIE in the first
# eight CID octets, looked up by an SK_REUSEPORT program). The per-packet functions model the
# program's parse, including its quirks, and never raise on packet content: where the program
# gives up (falls back to its hash), they return None. The per-CID functions raise CidError.
"""Katran, Envoy and nginx server/worker-ID decoders (private; public in sidkit.quiclb)."""

from __future__ import annotations

import attrs

from sidkit._errors import InputValueError
from sidkit._validate import as_bytes
from sidkit.quiclb._core import LENGTH_MASK, CidError

__all__ = [
    "ENVOY_MAX_CONCURRENCY",
    "KATRAN_MIN_CID_LENGTH",
    "NGINX_SERVER_CID_LENGTH",
    "KatranServerId",
    "envoy_worker",
    "envoy_worker_byte",
    "katran_packet_server_id",
    "katran_server_id",
    "nginx_cid_cookie",
    "nginx_socket_cookie",
]

LONG_HEADER = 0x80
# Katran, katran/lib/bpf/balancer_consts.h.
KATRAN_MIN_CID_LENGTH = 8
"""``QUIC_MIN_CONNID_LEN``: Katran reads (and requires) 8 DCID octets."""
_KATRAN_PACKET_TYPE_MASK = 0x30
_KATRAN_HANDSHAKE = 0x20
# Envoy, quic_lb.cc Factory::create: "concurrency() >= UINT8_MAX" is refused.
ENVOY_MAX_CONCURRENCY = 254
"""The largest ``--concurrency`` Envoy accepts with the quic_lb generator (one worker byte)."""
NGINX_SERVER_CID_LENGTH = 20
"""``NGX_QUIC_SERVER_CID_LEN``: nginx's server CIDs are 20 octets."""


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


def envoy_worker_byte(cid: bytes | bytearray | memoryview) -> int:
    """The worker ID Envoy's quic_lb generator stamps after its QUIC-LB CID.

    Source: envoyproxy/envoy
    ``source/extensions/quic/connection_id_generator/quic_lb/quic_lb.cc``
    ``QuicLbConnectionIdGenerator::appendRoutingId()``: the quiche encoder makes a QUIC-LB CID
    that self-encodes its length (``len_self_encoded = true``), and Envoy appends one clear
    octet, the worker index ("This adds a small amount of linkability"). The self-encoded
    length does not count that octet, so it sits at ``1 + (cid[0] & 0x1f)``.
    """
    data = as_bytes(cid, "cid")
    if not data:
        raise CidError("an empty CID has no worker byte", code="cid-too-short")
    at = 1 + (data[0] & LENGTH_MASK)
    if len(data) <= at:
        raise CidError(
            f"the worker byte is at octet {at}, the CID has {len(data)}", code="cid-too-short"
        )
    return data[at]


def _concurrency(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputValueError(f"concurrency must be an int, got {value!r}", code="out-of-range")
    if not 1 <= value <= ENVOY_MAX_CONCURRENCY:
        raise InputValueError(
            f"concurrency {value} is outside 1..{ENVOY_MAX_CONCURRENCY} (Envoy refuses "
            "concurrency() >= UINT8_MAX for quic_lb)",
            code="out-of-range",
        )
    return value


def envoy_worker(udp_payload: bytes | bytearray | memoryview, concurrency: int) -> int | None:
    """The worker Envoy's quic_lb steering picks for a datagram, or None for its fallback
    (the kernel's rxhash modulo *concurrency* in the cBPF program, the default worker in the
    userspace selector).

    Source: envoyproxy/envoy ``.../quic_lb/quic_lb.cc`` ``bpfEquivalentFunction()`` and its
    cBPF twin ``route.bpf`` (attached with ``SO_ATTACH_REUSEPORT_CBPF``):

    * fewer than 9 octets: fallback;
    * long header: fewer than 14 octets, or a DCID running past the end: fallback; otherwise
      the DCID's last octet (``packet[5 + packet[5]]``; for an empty DCID that is the length
      octet itself, 0) modulo *concurrency*;
    * short header: the worker octet at ``2 + (packet[1] & 0x1f)``; past the end, or a value
      >= *concurrency*: fallback.

    Note the asymmetry: a long header wraps, a short header falls back. Never raises on the
    payload's content.
    """
    n = _concurrency(concurrency)
    data = as_bytes(udp_payload, "udp_payload")
    if len(data) < 9:
        return None
    if data[0] & LONG_HEADER:
        if len(data) < 14 or len(data) < 6 + data[5]:
            return None
        return data[5 + data[5]] % n
    at = 2 + (data[1] & LENGTH_MASK)
    if len(data) <= at or data[at] >= n:
        return None
    return data[at]


def nginx_cid_cookie(cid: bytes | bytearray | memoryview) -> int:
    """The socket cookie nginx wrote into one of its server CIDs.

    Source: nginx/nginx ``src/event/quic/ngx_event_quic_connid.c``
    ``ngx_quic_create_server_id()``: 20 random octets, then, with ``quic_bpf on``,
    ``ngx_quic_bpf_attach_id()`` overwrites the first 8 with the listening socket's
    ``SO_COOKIE`` through ``ngx_quic_dcid_encode_key()`` = ``ngx_quic_write_uint64()``,
    big-endian (``src/event/quic/ngx_event_quic_transport.c``).
    """
    data = as_bytes(cid, "cid")
    if len(data) < 8:
        raise CidError(f"nginx keys on 8 CID octets, got {len(data)}", code="cid-too-short")
    return int.from_bytes(data[:8], "big")


def nginx_socket_cookie(udp_payload: bytes | bytearray | memoryview) -> int | None:
    """The key nginx's SK_REUSEPORT program looks up for a datagram, or None where it returns
    ``SK_PASS`` without a lookup (the kernel's default reuseport selection).

    Source: nginx/nginx ``src/event/quic/bpf/ngx_quic_reuseport_helper.c``
    ``ngx_quic_select_socket_by_dcid()`` (unchanged since 2526632f7172, 2022; read at
    release-1.31.4-4-g3f6f7824d) and the bytecode nginx ships from it,
    ``src/event/quic/ngx_event_quic_bpf_code.c``. The program's ``advance_data(n)`` fails
    (``goto failed``, then ``SK_PASS``) as soon as the octets it skips run past the packet, and
    it skips the **whole** DCID before reading the key (lines 85-105: "we expect the packet to
    have full DCID"):

    * empty payload: no flags octet, no lookup;
    * long header (``0x80``): fewer than 6 octets (flags, version, DCID length) - no lookup;
      DCID length ``payload[5] < 8`` - no lookup ("it's useless to search for key in such
      short DCID", line 95); fewer than ``6 + payload[5]`` octets - no lookup; otherwise the
      key is ``payload[6:14]``;
    * short header: the DCID is taken to be ``NGX_QUIC_SERVER_CID_LEN`` = 20 octets (line 101),
      so fewer than 21 octets - no lookup; otherwise the key is ``payload[1:9]``.

    The key is the big-endian value of the 8 octets (``ngx_quic_parse_uint64``); a key missing
    from the socket map (``-ENOENT``) also ends in the default selection. Never raises on
    content.
    """
    data = as_bytes(udp_payload, "udp_payload")
    if not data:
        return None
    if data[0] & LONG_HEADER:
        if len(data) < 6 or data[5] < 8 or len(data) < 6 + data[5]:
            return None
        return int.from_bytes(data[6:14], "big")
    if len(data) < 1 + NGINX_SERVER_CID_LENGTH:
        return None
    return int.from_bytes(data[1:9], "big")
