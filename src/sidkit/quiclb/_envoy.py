# Envoy's two QUIC connection-ID generators and the worker each one's reuseport cBPF program
# picks: quic_lb (a quiche QUIC-LB CID followed by one clear worker octet) and the default
# deterministic generator (the first four CID octets, big-endian, modulo the concurrency name
# the worker; every later CID keeps the first CID's four octets). Each function transcribes
# envoyproxy/envoy (cited per function, read at 001744eb7e22) and, for the deterministic
# chain, google/quiche's DeterministicConnectionIdGenerator. The per-packet functions model
# the program's parse and never raise on packet content: where Envoy falls back to the
# packet's hash they return None. The per-CID functions raise CidError; the encoder takes the
# caller's random octets and draws none of its own.
"""Envoy's quic_lb and deterministic worker schemes (private; public in sidkit.quiclb)."""

from __future__ import annotations

from sidkit._errors import InputValueError
from sidkit._validate import as_bytes
from sidkit.quiclb._core import LENGTH_MASK, CidError
from sidkit.steering import AnyOf, FixedOffset, SteeringError, SteeringPolicy

__all__ = [
    "ENVOY_DETERMINISTIC_CID_LENGTH",
    "ENVOY_MAX_CONCURRENCY",
    "envoy_deterministic_cid_worker",
    "envoy_deterministic_mint",
    "envoy_deterministic_next_cid",
    "envoy_deterministic_replacement_cid",
    "envoy_deterministic_steering_policy",
    "envoy_deterministic_worker",
    "envoy_worker",
    "envoy_worker_byte",
]

LONG_HEADER = 0x80
# quic_lb.cc Factory::create: "concurrency() >= UINT8_MAX" is refused.
ENVOY_MAX_CONCURRENCY = 254
"""The largest ``--concurrency`` Envoy accepts with the quic_lb generator (one worker byte)."""
# source/common/quic/envoy_deterministic_connection_id_generator.cc: the generator is built
# with quic::kQuicDefaultConnectionIdLength.
ENVOY_DETERMINISTIC_CID_LENGTH = 8
"""``kQuicDefaultConnectionIdLength``: the length of the CIDs Envoy's default generator mints."""
_ENVOY_DETERMINISTIC_PREFIX = 4
_U32 = 1 << 32


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
