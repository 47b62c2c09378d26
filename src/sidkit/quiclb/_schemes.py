# Server-ID schemes of deployed balancers that are not QUIC-LB, each a transcription of what one
# source file does (cited per function, read from the upstream repository): Katran's CID
# versions 1-3 (an XDP balancer's server ID in the first five octets) and its UDP
# stable-routing header (0x52, a 24-bit server ID), Envoy's two connection-ID generators (the
# quic_lb worker byte appended after a QUIC-LB CID, and the default deterministic generator
# whose first four CID octets, modulo the concurrency, name the worker), and nginx's
# socket-cookie prefix (the listening socket's SO_COOKIE in the first eight CID octets, looked
# up by an SK_REUSEPORT program). The per-packet functions model the program's parse,
# including its quirks, and never raise on packet content: where the program gives up (falls
# back to its hash), they return None. The per-CID functions raise CidError. Encoders take the
# caller's random octets and never draw their own.
"""Katran, Envoy and nginx server/worker-ID schemes (private; public in sidkit.quiclb)."""

from __future__ import annotations

import attrs

from sidkit._errors import InputValueError
from sidkit._validate import as_bytes
from sidkit.quiclb._core import LENGTH_MASK, CidError
from sidkit.steering import AnyOf, FixedOffset, IndexField, SteeringError, SteeringPolicy

__all__ = [
    "ENVOY_DETERMINISTIC_CID_LENGTH",
    "ENVOY_MAX_CONCURRENCY",
    "KATRAN_MIN_CID_LENGTH",
    "KATRAN_STABLE_ROUTING_HEADER",
    "KATRAN_STABLE_ROUTING_LENGTH",
    "NGINX_SERVER_CID_LENGTH",
    "KatranServerId",
    "envoy_deterministic_cid_worker",
    "envoy_deterministic_mint",
    "envoy_deterministic_next_cid",
    "envoy_deterministic_replacement_cid",
    "envoy_deterministic_steering_policy",
    "envoy_deterministic_worker",
    "envoy_worker",
    "envoy_worker_byte",
    "katran_packet_server_id",
    "katran_server_id",
    "katran_stable_routing_header",
    "katran_stable_routing_server_id",
    "katran_stable_routing_steering_policy",
    "nginx_cid_cookie",
    "nginx_socket_cookie",
]

LONG_HEADER = 0x80
# Katran, katran/lib/bpf/balancer_consts.h.
KATRAN_MIN_CID_LENGTH = 8
"""``QUIC_MIN_CONNID_LEN``: Katran reads (and requires) 8 DCID octets."""
_KATRAN_PACKET_TYPE_MASK = 0x30
_KATRAN_HANDSHAKE = 0x20
KATRAN_STABLE_ROUTING_HEADER = 0x52
"""``STABLE_ROUTING_HEADER``: the first octet of a Katran UDP stable-routing datagram."""
KATRAN_STABLE_ROUTING_LENGTH = 8
"""``STABLE_RT_LEN``: Katran reads (and requires) 8 payload octets of a stable-routing header."""
_KATRAN_STABLE_ID_MAX = (1 << 24) - 1
# Envoy, quic_lb.cc Factory::create: "concurrency() >= UINT8_MAX" is refused.
ENVOY_MAX_CONCURRENCY = 254
"""The largest ``--concurrency`` Envoy accepts with the quic_lb generator (one worker byte)."""
# Envoy, source/common/quic/envoy_deterministic_connection_id_generator.cc: the generator is
# built with quic::kQuicDefaultConnectionIdLength.
ENVOY_DETERMINISTIC_CID_LENGTH = 8
"""``kQuicDefaultConnectionIdLength``: the length of the CIDs Envoy's default generator mints."""
_ENVOY_DETERMINISTIC_PREFIX = 4
_U32 = 1 << 32
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
        raise InputValueError(f"server_id must be an int, got {server_id!r}", code="out-of-range")
    if not 1 <= server_id <= _KATRAN_STABLE_ID_MAX:
        raise InputValueError(
            f"a stable-routing server ID is 1..{_KATRAN_STABLE_ID_MAX} (0 is never routed), "
            f"got {server_id}",
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


# --- Envoy's deterministic generator (its default) ----------------------------------------------
# Source for all of it: envoyproxy/envoy at 001744eb7e22 (main, 2026),
# source/common/quic/envoy_deterministic_connection_id_generator.cc.


def _det_concurrency(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputValueError(f"concurrency must be an int, got {value!r}", code="out-of-range")
    if not 1 <= value < _U32:
        raise InputValueError(
            f"concurrency {value} is outside 1..{_U32 - 1} (the cBPF 'mod #k' of a u32)",
            code="out-of-range",
        )
    return value


def envoy_deterministic_worker(
    udp_payload: bytes | bytearray | memoryview, concurrency: int
) -> int | None:
    """The worker Envoy's default (deterministic) connection-ID generator steers a datagram to,
    or None where its program falls back to the packet's hash.

    Source: ``createCompatibleLinuxBpfSocketOption()`` (the cBPF program attached with
    ``SO_ATTACH_REUSEPORT_CBPF``, lines 68-84) and its userspace twin
    ``bpfEquivalentFunction()``: the first 32-bit word of the DCID, read big-endian, modulo
    *concurrency*:

    * fewer than 9 octets: fallback;
    * long header (``0x80``): fewer than 14 octets: fallback; otherwise octets 6-9, whatever
      the DCID length octet says (a DCID under 4 octets lends the word its SCID length and
      SCID);
    * short header (and gQUIC): octets 1-4.

    The fallback is ``rxhash % concurrency`` in the cBPF program and the caller's default
    worker in user space; here it is None. Never raises on content.
    """
    n = _det_concurrency(concurrency)
    data = as_bytes(udp_payload, "udp_payload")
    if len(data) < 9:
        return None
    at = 1
    if data[0] & LONG_HEADER:
        if len(data) < 14:
            return None
        at = 6
    return int.from_bytes(data[at : at + _ENVOY_DETERMINISTIC_PREFIX], "big") % n


def envoy_deterministic_cid_worker(cid: bytes | bytearray | memoryview, concurrency: int) -> int:
    """The worker a CID of Envoy's deterministic generator names: its first 4 octets,
    big-endian, modulo *concurrency* -- what :func:`envoy_deterministic_worker` reads from a
    packet carrying it. Raises :class:`CidError` for a CID under 4 octets.
    """
    n = _det_concurrency(concurrency)
    data = as_bytes(cid, "cid")
    if len(data) < _ENVOY_DETERMINISTIC_PREFIX:
        raise CidError(
            f"Envoy reads {_ENVOY_DETERMINISTIC_PREFIX} CID octets, got {len(data)}",
            code="cid-too-short",
        )
    return int.from_bytes(data[:_ENVOY_DETERMINISTIC_PREFIX], "big") % n


_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_FNV128_OFFSET = 0x6C62272E07BB014262B821756295C58D
_FNV128_PRIME = (1 << 88) + 0x13B


def _fnv1a(data: bytes, offset: int, prime: int, bits: int) -> int:
    mask = (1 << bits) - 1
    value = offset
    for octet in data:
        value = ((value ^ octet) * prime) & mask
    return value


def _quiche_deterministic_cid(original: bytes, length: int) -> bytes:
    """google/quiche ``DeterministicConnectionIdGenerator::GenerateNextConnectionId()``
    (quiche/quic/core/deterministic_connection_id_generator.cc): the FNV-1a 64-bit hash of the
    original CID (``QuicUtils::FNV1a_64_Hash``) copied from memory, then, for CIDs longer than
    8 octets, the FNV-1a 128-bit hash (``FNV1a_128_Hash``) after it, then zeros; cut to
    *length*. Memory order is the host's: little-endian on x86-64 and arm64, as here."""
    if length == 0:
        return b""
    out = _fnv1a(original, _FNV64_OFFSET, _FNV64_PRIME, 64).to_bytes(8, "little")
    if length > 8:
        out += _fnv1a(original, _FNV128_OFFSET, _FNV128_PRIME, 128).to_bytes(16, "little")
    return out.ljust(length, b"\x00")[:length]


def _cid_length(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
        raise InputValueError(f"length must be 0..255, got {value!r}", code="out-of-range")
    return value


def envoy_deterministic_next_cid(
    original: bytes | bytearray | memoryview,
    generated: bytes | bytearray | memoryview | None = None,
    *,
    length: int = ENVOY_DETERMINISTIC_CID_LENGTH,
) -> bytes | None:
    """The CID Envoy's default generator issues after *original*, or None where it issues none.

    Source: ``adjustNewConnectionIdForRouting()`` (lines 17-23: "Override the first 4 bytes of
    the new CID to the original CID's first 4 bytes") applied by
    ``GenerateNextConnectionId()`` (lines 26-34) to what quiche's
    ``DeterministicConnectionIdGenerator`` makes, and nothing when the result equals
    *original*. So every CID of a connection keeps the first CID's worker.

    *generated* is quiche's CID; by default sidkit computes it as quiche does (FNV-1a of
    *original*, *length* octets, 8 in Envoy; little-endian host). Raises :class:`CidError`
    when either CID is under 4 octets (Envoy would copy memory past a shorter one).
    """
    old = as_bytes(original, "original")
    n = _cid_length(length)
    new = (
        _quiche_deterministic_cid(old, n) if generated is None else as_bytes(generated, "generated")
    )
    for name, value in (("original", old), ("generated", new)):
        if len(value) < _ENVOY_DETERMINISTIC_PREFIX:
            raise CidError(
                f"Envoy copies {_ENVOY_DETERMINISTIC_PREFIX} octets; the {name} CID has "
                f"{len(value)}",
                code="cid-too-short",
            )
    out = old[:_ENVOY_DETERMINISTIC_PREFIX] + new[_ENVOY_DETERMINISTIC_PREFIX:]
    return None if out == old else out


def envoy_deterministic_replacement_cid(
    original: bytes | bytearray | memoryview, *, length: int = ENVOY_DETERMINISTIC_CID_LENGTH
) -> bytes | None:
    """The server CID Envoy puts in place of a client-chosen Initial DCID, or None where it
    keeps the client's.

    Source: ``MaybeReplaceConnectionId()`` (lines 36-44) over quiche's
    ``DeterministicConnectionIdGenerator::MaybeReplaceConnectionId()``: a DCID already
    *length* octets long (8 in Envoy) is kept; any other is replaced by quiche's
    deterministic CID with the client DCID's first 4 octets, so the connection stays on the
    worker the client's first datagram reached. Raises :class:`CidError` for a DCID under 4
    octets (RFC 9000 section 7.2 makes a client's first DCID at least 8).
    """
    old = as_bytes(original, "original")
    if len(old) == _cid_length(length):
        return None
    return envoy_deterministic_next_cid(old, length=length)


def envoy_deterministic_mint(
    worker: int, concurrency: int, octets: bytes | bytearray | memoryview
) -> bytes:
    """A CID that Envoy's deterministic steering sends to *worker*: *octets* (the caller's
    random CID, ``ENVOY_DETERMINISTIC_CID_LENGTH`` = 8 octets in Envoy) with its first 4
    octets moved to the nearest value below them that is ``worker`` modulo *concurrency*
    (or the next one up, where no such value lies below). Octets 4 onwards are unchanged.
    """
    n = _det_concurrency(concurrency)
    if not isinstance(worker, int) or isinstance(worker, bool) or not 0 <= worker < n:
        raise InputValueError(f"worker must be 0..{n - 1}, got {worker!r}", code="out-of-range")
    data = as_bytes(octets, "octets")
    if len(data) < _ENVOY_DETERMINISTIC_PREFIX:
        raise CidError(
            f"a CID Envoy steers by has at least {_ENVOY_DETERMINISTIC_PREFIX} octets, "
            f"got {len(data)}",
            code="cid-too-short",
        )
    value = int.from_bytes(data[:_ENVOY_DETERMINISTIC_PREFIX], "big")
    prefix = value - value % n + worker
    if prefix >= _U32:
        prefix -= n
    return prefix.to_bytes(_ENVOY_DETERMINISTIC_PREFIX, "big") + data[_ENVOY_DETERMINISTIC_PREFIX:]


def envoy_deterministic_steering_policy(concurrency: int) -> SteeringPolicy:
    """A steering policy that makes :func:`envoy_deterministic_worker`'s choice: compiled to
    cBPF or SK_REUSEPORT eBPF, it puts a server's sockets where Envoy's workers would be.

    Two locations, the header form bit as guard: a short header's 4 octets at offset 1 in a
    datagram of at least 9 octets, a long header's at offset 6 in one of at least 14; method
    ``"modulo"``. Where Envoy's program takes ``rxhash % concurrency``, the policy returns None
    and the kernel's own selection decides (``reciprocal_scale`` of the same hash): the datagrams
    that fall back are the same, the socket they land on may differ.

    Raises :class:`sidkit.steering.SteeringError` for more than 65535 workers (a reuseport
    group counts its sockets in a u16).
    """
    n = _det_concurrency(concurrency)
    if n > 0xFFFF:
        raise SteeringError(f"a reuseport group holds at most 65535 sockets, not {n}")
    width = _ENVOY_DETERMINISTIC_PREFIX
    short = FixedOffset(1, width, [(0, LONG_HEADER, 0)], min_size=9)
    long = FixedOffset(6, width, [(0, LONG_HEADER, LONG_HEADER)], min_size=14)
    return SteeringPolicy(AnyOf([short, long]), "modulo", n)


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
