# Strategy: route on what RFC 8999 (the version-independent properties of QUIC) promises and
# nothing more for unknown versions; add RFC 9000 / RFC 9369 packet-type knowledge for v1 and
# v2. The session ID is the Destination Connection ID of the FIRST packet in the datagram
# (RFC 9000 section 12.2: coalesced packets share it, and a receiver ignores later packets
# with another DCID) -- so extraction never walks the whole datagram; split_datagram() does,
# for callers that want every packet (and for the tshark comparison). A long header whose
# DCID is empty (sent to an endpoint that chose zero-length CIDs, RFC 9000 section 5.2)
# gives its SCID instead, the sender's CID and the only ID it names (details "field":
# "scid"); with cid_length, a location at offset 7 steers it where the SCID has that length.
#
# Short headers do not say how long the DCID is (RFC 8999 section 5.2): the length comes from
# a set of known CIDs, QUIC-LB length self-description, or the configured cid_length, tried
# in that order. Without any of them a short header yields None rather than a guess.
#
# What counts as QUIC (the plugin's claim, as opposed to what the pure parsers can read): a
# long header of version 0 (Version Negotiation, whatever its 7 low bits, RFC 8999 section
# 6) or of a KNOWN version (KNOWN_VERSIONS: v1, v2, drafts, reserved and vendor versions),
# with or without the fixed bit (RFC 9287 greasing); a long header of any other version only
# with unknown_versions=True, since 4 random bytes after a first byte >= 0x80 are no
# evidence (IKE SPIs, DNS IDs); a short header with its fixed bit set, and with it clear
# only when its DCID is a known CID (known_cids) or grease_quic_bit=True.
# This package is a sidkit plugin written as any third-party plugin would be: it imports only
# sidkit's public plugin API and is found through the "sidkit" entry-point group.
"""QUIC connection IDs (RFC 8999, RFC 9000, RFC 9369) as sidkit session IDs."""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

import attrs

from sidkit import InputTypeError, InputValueError
from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId, trusted_session_id
from sidkit.plugin import DETAIL_VALIDATED, Option, ProtocolSpec, hookimpl

__all__ = [
    "KNOWN_VERSIONS",
    "NAME",
    "QUIC_V1",
    "QUIC_V2",
    "QuicHeader",
    "known_version",
    "long_header_ids",
    "parse_header",
    "split_datagram",
]

NAME: Final = "quic"
QUIC_V1: Final = 0x00000001
"""RFC 9000 section 15."""
QUIC_V2: Final = 0x6B3343CF
"""RFC 9369 section 3.1."""

KNOWN_VERSIONS: Final = {
    QUIC_V1: "v1 (RFC 9000 section 15)",
    QUIC_V2: "v2 (RFC 9369 section 3.1)",
    0x709A50C4: "v2 drafts (draft-ietf-quic-v2-01..10 section 3.1)",
    0xFACEB001: "mvfst, draft-22 based (Wireshark packet-quic.c quic_draft_version)",
    0xFACEB002: "mvfst, draft-27 based (Wireshark packet-quic.c; mvfst QuicConstants.h)",
    0xFACEB00E: "mvfst experimental (Wireshark packet-quic.c; mvfst QuicConstants.h)",
    0x51303530: "Google Q050, IETF invariant header (Wireshark packet-quic.c)",
    0x54303530: "Google T050 (Wireshark packet-quic.c)",
    0x54303531: "Google T051 (Wireshark packet-quic.c)",
}
"""Versions other than the IETF drafts and the reserved pattern whose long headers are QUIC
without ``unknown_versions``, with the source that names each. The IETF drafts
(``0xff0000xx``, Wireshark's ``quic_draft_version``: ``(version >> 8) == 0xff0000``) and the
versions reserved to force Version Negotiation (``0x?a?a?a?a``, RFC 9000 section 15) are
known by pattern (:func:`known_version`). Only v1 and v2 are parsed past the RFC 8999
invariants."""

MAX_CID_V1: Final = 20
"""RFC 9000 section 17.2: "In QUIC version 1, this value MUST NOT exceed 20 bytes"; RFC 9369
keeps the v1 invariants-based header. RFC 8999 section 5.1 allows up to 255 in general."""

# Long packet types by the two type bits (0x30) of the first byte.
# RFC 9000 section 17.2, Table 5 (v1) and RFC 9369 section 3.2 (v2).
_V1_TYPES: Final = ("initial", "0rtt", "handshake", "retry")
_V2_TYPES: Final = ("retry", "initial", "0rtt", "handshake")
_U32: Final = struct.Struct("!I").unpack_from


@attrs.frozen
class QuicHeader:
    """The routing-relevant fields of one QUIC packet header.

    ``end`` is the offset just past the packet in the datagram (for coalesced packets);
    ``packet_type`` is ``"initial"``, ``"0rtt"``, ``"handshake"``, ``"retry"``,
    ``"version_negotiation"``, ``"1rtt"`` (short header) or ``"unknown"`` (a long header
    of a version sidkit does not know: only the RFC 8999 fields are read). ``scid`` is
    ``None`` for short headers. ``ignored`` marks a coalesced packet whose DCID differs from
    the first packet's (RFC 9000 section 12.2: "Receivers SHOULD ignore any subsequent
    packets with a different Destination Connection ID than the first packet").
    """

    long_header: bool
    version: int | None
    packet_type: str
    dcid: bytes
    scid: bytes | None
    offset: int
    end: int
    ignored: bool = False


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """RFC 9000 section 16: a variable-length integer at *pos*; returns (value, next)."""
    if pos >= len(data):
        raise MalformedPacketError("varint past the end of the datagram", protocol=NAME)
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > len(data):
        raise MalformedPacketError("varint past the end of the datagram", protocol=NAME)
    value = first & 0x3F
    for i in range(1, size):
        value = (value << 8) | data[pos + i]
    return value, pos + size


def known_version(version: int) -> bool:
    """Whether a long header of *version* is QUIC without ``unknown_versions``: 0 (Version
    Negotiation, RFC 8999 section 6), :data:`KNOWN_VERSIONS`, an IETF draft
    (``0xff0000xx``) or a reserved version (``0x?a?a?a?a``, RFC 9000 section 15)."""
    return (
        version == 0
        or version in KNOWN_VERSIONS
        or version >> 8 == 0xFF0000
        or version & 0x0F0F0F0F == 0x0A0A0A0A
    )


def _version_list_ok(data: bytes, start: int) -> bool:
    """RFC 8999 section 6: a Version Negotiation packet ends in a list of 32-bit versions."""
    rest = len(data) - start
    return rest > 0 and rest % 4 == 0


def _quiet_version_negotiation(data: bytes, pos: int) -> QuicHeader | None:
    """A Version Negotiation packet at *pos* whose fields all fit and whose version list is
    a non-empty multiple of 4 bytes, else ``None`` (no error)."""
    if len(data) - pos < 7:
        return None
    dcid_end = pos + 6 + data[pos + 5]
    if dcid_end >= len(data):
        return None
    scid_end = dcid_end + 1 + data[dcid_end]
    if scid_end > len(data) or not _version_list_ok(data, scid_end):
        return None
    dcid = data[pos + 6 : dcid_end]
    scid = data[dcid_end + 1 : scid_end]
    return QuicHeader(True, 0, "version_negotiation", dcid, scid, pos, len(data))


def _validated(data: bytes, ptype: str, dcid: bytes, scid: bytes, offset: int) -> bool:
    """Whether the first packet's structure checked out beyond the invariants: a Version
    Negotiation list of 32-bit versions (RFC 8999 section 6), a v1/v2 Length field within
    the datagram (RFC 9000 section 17.2; the parser refused it otherwise) or a Retry with
    room for its 16-byte integrity tag (RFC 9001 section 5.8)."""
    after_ids = offset + 7 + len(dcid) + len(scid)
    if ptype == "version_negotiation":
        return _version_list_ok(data, after_ids)
    if ptype == "retry":
        return len(data) - after_ids >= 16
    return ptype != "unknown"


# (version, packet type, DCID, SCID, end): a long header's fields as a plain tuple, which
# extraction (one per datagram) makes instead of a QuicHeader.
_LongFields = tuple[int, str, bytes, bytes, int]


def _parse_long(data: bytes, pos: int, unknown_versions: bool = True) -> QuicHeader | None:
    """RFC 8999 section 5.1 long header at *pos*, plus the v1/v2 packet length (see
    :func:`_long_fields`)."""
    found = _long_fields(data, pos, unknown_versions)
    if found is None:
        return None
    version, ptype, dcid, scid, end = found
    return QuicHeader(True, version, ptype, dcid, scid, pos, end)


def _long_fields(data: bytes, pos: int, unknown_versions: bool = True) -> _LongFields | None:
    """RFC 8999 section 5.1 long header at *pos*, plus the v1/v2 packet length.

    ``None`` for a version that is not :func:`known_version` unless *unknown_versions*, and
    for a first byte 0x80..0xBF (fixed bit clear: RFC 9443 gives that range to RTP) that is
    not a well-formed Version Negotiation packet or a known version. The fixed bit of a known
    version may be clear (RFC 9287: a peer that negotiated greasing sends either value; RFC
    9000 section 17.2 makes a receiver that did not discard it, which is its decision, not a
    router's).

    Written for the common case, every handshake's first packets: v1 and v2 are tested
    before the other versions, the length is read once, and the one- and two-byte varints
    of a token length and a Length field are read in line (larger ones through
    :func:`_varint`)."""
    size = len(data)
    if size - pos < 5:
        return None  # no version to claim by (a NAT-T keep-alive is the byte 0xff)
    first = data[pos]
    version = _U32(data, pos + 1)[0]
    v1_or_v2 = version in (QUIC_V1, QUIC_V2)
    if not v1_or_v2 and not unknown_versions and not known_version(version):
        return None
    if not first & 0x40 and version == 0:
        # RFC 8999 section 6 leaves the 7 low bits of a Version Negotiation packet arbitrary,
        # and about half of real ones have 0x40 clear. In RTP's range, claim only a packet
        # whose every field checks out, and never call it malformed.
        quiet = _quiet_version_negotiation(data, pos)
        if quiet is None:
            return None
        assert quiet.scid is not None
        return 0, quiet.packet_type, quiet.dcid, quiet.scid, quiet.end
    if size - pos < 7:
        raise MalformedPacketError("long header shorter than 7 bytes", protocol=NAME)
    dcil = data[pos + 5]
    dcid_end = pos + 6 + dcil
    if dcid_end >= size:
        raise MalformedPacketError(
            f"destination connection ID of {dcil} bytes runs past the datagram", protocol=NAME
        )
    scil = data[dcid_end]
    scid_end = dcid_end + 1 + scil
    if scid_end > size:
        raise MalformedPacketError(
            f"source connection ID of {scil} bytes runs past the datagram", protocol=NAME
        )
    dcid = data[pos + 6 : dcid_end]
    scid = data[dcid_end + 1 : scid_end]
    if not v1_or_v2:
        if version == 0:
            # RFC 8999 section 6: Version Negotiation; the rest is a list of 32-bit versions.
            return 0, "version_negotiation", dcid, scid, size
        # Another version: only the invariants are read; the packet runs to the end.
        return version, "unknown", dcid, scid, size
    if dcil > MAX_CID_V1 or scil > MAX_CID_V1:
        raise MalformedPacketError(
            f"version {version:#x} connection IDs are at most {MAX_CID_V1} bytes, "
            f"got {dcil}/{scil}",
            protocol=NAME,
        )
    ptype = (_V1_TYPES if version == QUIC_V1 else _V2_TYPES)[(first >> 4) & 0x03]
    if ptype == "retry":
        # RFC 9000 section 17.2.5: no Length field; a Retry is the rest of the datagram.
        return version, ptype, dcid, scid, size
    cursor = scid_end
    if ptype == "initial":
        # RFC 9000 section 17.2.2: Token Length (a varint), then the token
        b = data[cursor] if cursor < size else 0xFF
        if b < 0x40:
            cursor += 1 + b
        else:
            token_length, cursor = _varint(data, cursor)
            cursor += token_length
    # Length (a varint) covers the packet number and the payload
    b = data[cursor] if cursor < size else 0xFF
    if b < 0x40:
        length, cursor = b, cursor + 1
    elif b < 0x80 and cursor + 1 < size:
        length, cursor = ((b & 0x3F) << 8) | data[cursor + 1], cursor + 2
    else:
        length, cursor = _varint(data, cursor)
    end = cursor + length
    if end > size:
        raise MalformedPacketError(
            f"{ptype} packet Length {length} runs past the datagram", protocol=NAME
        )
    return version, ptype, dcid, scid, end


def _short_dcid_length(
    data: bytes,
    pos: int,
    cid_length: int | None,
    quic_lb: bool,
    known: frozenset[bytes],
    known_lengths: tuple[int, ...],
) -> tuple[int, str] | None:
    """Length of a short header's DCID at *pos* and where the length came from."""
    start = pos + 1
    for length in known_lengths:
        if data[start : start + length] in known:
            return length, "known"
    if quic_lb and start < len(data) and data[start] & 0x1F < MAX_CID_V1:
        # draft-ietf-quic-load-balancers-21 section 3.3 (Length Self-Description): the low
        # five bits of the CID's first octet encode the length of the rest of the CID. A
        # value that would make the CID longer than QUIC v1 allows (section 5.2: server ID
        # and nonce sum to 19 octets or less) is no self-description; fall through.
        return (data[start] & 0x1F) + 1, "quic_lb"
    if cid_length is not None:
        return cid_length, "configured"
    return None


def parse_header(
    payload: bytes,
    *,
    cid_length: int | None = None,
    quic_lb: bool = False,
    known_cids: Collection[bytes] = (),
    grease_quic_bit: bool = False,
    unknown_versions: bool = True,
) -> QuicHeader | None:
    """The header of the first QUIC packet in *payload*, or ``None`` if it is not one.

    ``None`` for: an empty payload; a short header whose DCID length is unknown, or whose
    fixed bit is 0 and whose DCID is none of *known_cids* (unless *grease_quic_bit*); a long
    header of a version that is not :func:`known_version` when *unknown_versions* is false
    (this parser reads any version's invariants by default; the plugin claims them only
    when asked); a Version Negotiation packet with the fixed bit clear that is not
    well-formed. Raises :class:`~sidkit.extract.MalformedPacketError` for a header cut
    short.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InputTypeError("payload must be bytes-like", code="not-bytes")
    known = frozenset(known_cids)
    lengths = tuple(sorted({len(c) for c in known}, reverse=True))
    return _parse_at(
        bytes(payload), 0, cid_length, quic_lb, known, lengths, grease_quic_bit, unknown_versions
    )


def _parse_at(
    data: bytes,
    pos: int,
    cid_length: int | None,
    quic_lb: bool,
    known: frozenset[bytes],
    known_lengths: tuple[int, ...],
    grease: bool,
    unknown_versions: bool = True,
) -> QuicHeader | None:
    if pos >= len(data):
        return None
    first = data[pos]
    if first & 0x80:
        return _parse_long(data, pos, unknown_versions)
    if not first & 0x40 and not grease:
        # RFC 9287 section 3: only a peer that negotiated greasing sends a short header with
        # the fixed bit clear, so only its own connection IDs make the packet QUIC.
        cid_length, quic_lb = None, False
    found = _short_dcid_length(data, pos, cid_length, quic_lb, known, known_lengths)
    if found is None:
        return None
    length = found[0]
    if pos + 1 + length > len(data):
        raise MalformedPacketError(
            f"short header too short for a {length}-byte connection ID", protocol=NAME
        )
    dcid = data[pos + 1 : pos + 1 + length]
    return QuicHeader(False, None, "1rtt", dcid, None, pos, len(data))


def split_datagram(
    payload: bytes | bytearray | memoryview,
    *,
    cid_length: int | None = None,
    quic_lb: bool = False,
    known_cids: Collection[bytes] = (),
    grease_quic_bit: bool = False,
    unknown_versions: bool = True,
) -> list[QuicHeader]:
    """Every QUIC packet coalesced in one datagram (RFC 9000 section 12.2).

    Walks long-header packets by their Length fields; a short-header packet, a Retry, a
    Version Negotiation packet or one of an unknown version runs to the end. Trailing bytes
    that are not a packet (the zero padding some stacks append after the last packet) end
    the walk. Later packets whose DCID differs from the first's are returned with
    ``ignored=True``. The short header's DCID length comes from the same options as
    extraction; when it is unknown, the packet is compared with the first DCID's length.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InputTypeError("payload must be bytes-like", code="not-bytes")
    data = bytes(payload)
    known = frozenset(known_cids)
    lengths = tuple(sorted({len(c) for c in known}, reverse=True))
    packets: list[QuicHeader] = []
    pos = 0
    while pos < len(data):
        if packets and not any(data[pos:]):
            break  # zero padding after the last packet
        first_dcid = packets[0].dcid if packets else None
        length = cid_length
        if first_dcid is not None and not data[pos] & 0x80 and length is None and not quic_lb:
            length = len(first_dcid)
        header = _parse_at(
            data, pos, length, quic_lb, known, lengths, grease_quic_bit, unknown_versions
        )
        if header is None:
            break
        if first_dcid is not None and header.dcid != first_dcid:
            header = attrs.evolve(header, ignored=True)
        packets.append(header)
        pos = header.end
    return packets


# --- options --------------------------------------------------------------------------------


def _check_cid_length(value: object) -> object:
    if value is None:
        return None
    assert isinstance(value, int)
    if not 0 <= value <= MAX_CID_V1:
        raise InputValueError(
            f"cid_length={value} must be 0..{MAX_CID_V1} (RFC 9000 section 17.2)",
            code="bad-cid-length",
        )
    return value


def _check_known(value: object) -> object:
    if isinstance(value, str | bytes | bytearray | memoryview) or not isinstance(value, Iterable):
        raise InputTypeError("known_cids must be a collection of bytes", code="bad-known-cids")
    cids: set[bytes] = set()
    for cid in value:
        if not isinstance(cid, bytes | bytearray | memoryview):
            raise InputTypeError(
                f"known_cids holds {type(cid).__name__}, not bytes", code="bad-known-cids"
            )
        if not 1 <= len(cid) <= MAX_CID_V1:
            raise InputValueError(
                f"known connection IDs are 1..{MAX_CID_V1} bytes, got {len(cid)}",
                code="bad-known-cids",
            )
        cids.add(bytes(cid))
    return frozenset(cids)


def _long_location(length: int, extra: tuple[tuple[int, int, int], ...] = ()) -> SidLocation:
    """Long-header DCIDs of *length* bytes (RFC 8999 section 5.1), of any version and either
    fixed bit. Not exact, and wider than the plugin's claim: testing the version field for
    every known pattern would take one location each, and a cBPF program unrolls its hash
    per location (13 patterns made 2,346 instructions for one length, over 60,000 for the
    20 QUIC-LB lengths, past BPF_MAXINSNS)."""
    return SidLocation(6, length, ((0, 0x80, 0x80), (5, 0xFF, length), *extra), 0, NAME)


SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="QUIC destination connection ID (any version's long header; v1/v2 short header)",
    # Short headers with the fixed bit set (RFC 9000 section 17.3): 0x40..0x7f; every long
    # header (RFC 8999 section 5.1): 0x80..0xff. RFC 9443 gives 128..191 to RTP, and there
    # only Version Negotiation and known versions are claimed (module note). With
    # grease_quic_bit or known_cids, short headers with the bit clear too: all of 0..255
    # (sidkit_first_bytes).
    first_bytes=range(0x40, 0x100),
    ports=(443,),
    options=(
        Option(
            "cid_length",
            (int, type(None)),
            None,
            "length of the DCID in short headers (the length this server issues)",
            _check_cid_length,
        ),
        Option(
            "quic_lb",
            bool,
            False,
            "short-header DCIDs self-encode their length (QUIC-LB draft-21 section 3.3)",
        ),
        Option(
            "known_cids",
            object,
            frozenset(),
            "connection IDs this server issued; a short header starting with one uses it",
            _check_known,
        ),
        Option(
            "grease_quic_bit",
            bool,
            False,
            "the peer negotiated RFC 9287 greasing: a short header whose fixed bit is 0 is "
            "QUIC (with any DCID, not only a known one); claims every first byte",
        ),
        Option(
            "unknown_versions",
            bool,
            False,
            "claim long headers of any version (RFC 8999 invariants), not only version 0, "
            "v1, v2, drafts, reserved and known vendor versions",
        ),
    ),
    references=(
        "RFC 8999 section 5",
        "RFC 9000 sections 12.2, 17.2, 17.3",
        "RFC 9369 section 3",
        "RFC 9287 section 3",
        "RFC 9443 section 3",
        "draft-ietf-quic-load-balancers-21 section 3.3",
    ),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``quic`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_first_bytes(protocol: str, options: Mapping[str, object]) -> Collection[int] | None:
    """With the greased fixed bit allowed, or known CIDs that a greased short header may
    carry, QUIC may start with any byte (RFC 9287)."""
    if protocol != NAME:
        return None
    if options["grease_quic_bit"] or options["known_cids"]:
        return range(256)
    return SPEC.first_bytes


def _long_details(data: bytes, fields: _LongFields) -> dict[str, object]:
    """The details of a long header's ID (see :func:`sidkit_extract`)."""
    version, ptype, dcid, scid, _end = fields
    details: dict[str, object] = {
        "header_form": "long",
        "version": version,
        "packet_type": ptype,
        "field": "dcid" if dcid else "scid",
        "scid": scid,
    }
    if _validated(data, ptype, dcid, scid, 0):
        details[DETAIL_VALIDATED] = True
    return details


_SHORT_DETAILS: Final = {"header_form": "short", "packet_type": "1rtt", "field": "dcid"}


def _short_details(source: str) -> dict[str, object]:
    return {**_SHORT_DETAILS, "cid_source": source}


def long_header_ids(payload: bytes, options: Mapping[str, object]) -> tuple[bytes, bytes] | None:
    """The Destination and Source Connection IDs of the long header that starts *payload*,
    as :func:`sidkit_extract` reads them under *options* (the plugin's options, complete,
    as :meth:`sidkit.extract.Extractor.options` gives them): ``None`` where it returns
    ``None``, else ``(dcid, scid)`` where its ID is ``dcid or scid``; it raises
    :class:`~sidkit.extract.MalformedPacketError` where that does.

    For a caller that wants both IDs and no :class:`~sidkit.keys.SessionId`:
    :mod:`sidkit.flows` links the two IDs of every long header into one flow, and on a
    capture where connections come and go, two long headers start each of them.

    >>> long_header_ids(bytes.fromhex("c00000000104a1b2c3d40201020000"),
    ...                 {"unknown_versions": False})
    (b'\\xa1\\xb2\\xc3\\xd4', b'\\x01\\x02')
    """
    if payload.__class__ is not bytes:
        raise InputTypeError(
            f"payload must be bytes, not {type(payload).__name__}", code="not-bytes"
        )
    if not payload or not payload[0] & 0x80:
        raise InputValueError(
            "a long header starts with a byte that has 0x80 set (RFC 8999 section 5.1)",
            code="not-long-header",
        )
    fields = _naming_long_fields(payload, bool(options["unknown_versions"]))
    return None if fields is None else (fields[2], fields[3])


def _naming_long_fields(data: bytes, unknown_versions: bool) -> _LongFields | None:
    """The long header at the start of *data* (:func:`_long_fields`), ``None`` also where it
    names no ID (both CIDs empty): what :func:`sidkit_extract` and :func:`long_header_ids`
    both answer from."""
    fields = _long_fields(data, 0, unknown_versions)
    return fields if fields is not None and (fields[2] or fields[3]) else None


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """The first packet's DCID -- or, for a long header whose DCID is empty, its SCID
    (``details["field"]`` says which) -- ``None`` when the packet names no CID or a short
    header's DCID length is unknown (or zero)."""
    if protocol != NAME or not payload:
        return None
    known = options["known_cids"]
    assert isinstance(known, frozenset)
    cid_length = options["cid_length"]
    assert cid_length is None or isinstance(cid_length, int)
    data = payload if payload.__class__ is bytes else bytes(payload)
    first = data[0]
    if first & 0x80:
        fields = _naming_long_fields(data, bool(options["unknown_versions"]))
        if fields is None:
            return None
        _version, _ptype, dcid, scid, _end = fields
        # An empty DCID: the receiver chose zero-length CIDs and finds its connection by
        # address (RFC 9000 section 5.2); the sender's SCID is the one ID the packet names.
        # The details are made when first read (most callers never do): the parse above has
        # checked everything, so the ID is built without the constructor's checks.
        return trusted_session_id(NAME, dcid or scid, (_long_details, data, fields))
    quic_lb = bool(options["quic_lb"])
    if not first & 0x40 and not options["grease_quic_bit"]:
        if not known:
            return None
        cid_length, quic_lb = None, False  # RFC 9287: only a known CID makes it QUIC
    lengths = tuple(sorted({len(c) for c in known}, reverse=True)) if known else ()
    found = _short_dcid_length(data, 0, cid_length, quic_lb, known, lengths)
    if found is None or found[0] == 0:
        return None
    length, source = found
    if 1 + length > len(data):
        raise MalformedPacketError(
            f"short header too short for a {length}-byte connection ID", protocol=NAME
        )
    return trusted_session_id(NAME, data[1 : 1 + length], (_short_details, source))


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """Fixed-length DCIDs: long headers whose DCID Length byte equals the length, and short
    headers; with ``cid_length``, also the SCID of a long header whose DCID is empty and
    whose SCID has that length (what the parser returns there). Known-CID lookup cannot be
    expressed as byte tests (``None``).

    The short-header locations are ``exact``: with no known CIDs, a short header's DCID is
    the configured (or self-described) number of bytes after the first, and the parser
    checks nothing else once the datagram holds them. Long headers are not: their parser
    also reads the SCID Length and, for v1/v2, the Length field behind the IDs, and may
    refuse the packet (a field running past the datagram, a Version Negotiation packet with
    the fixed bit clear whose version list is not a multiple of 4 bytes, a version it does
    not claim without ``unknown_versions``). A kernel program built from them steers such a
    long header by the bytes where its DCID would be rather than by the 5-tuple; what it
    steers that the plugin refuses is never a QUIC packet of a known version."""
    if protocol != NAME or options["known_cids"]:
        return None
    # Short header: form bit 0, and the fixed bit 1 unless it may be greased (RFC 9287).
    short = (0, 0x80, 0x00) if options["grease_quic_bit"] else (0, 0xC0, 0x40)
    locations: list[SidLocation] = []
    cid_length = options["cid_length"]
    if options["quic_lb"]:
        # One location per self-described length: DCID first octet low bits = length - 1.
        for n in range(MAX_CID_V1):
            length = n + 1
            locations.append(_long_location(length, ((6, 0x1F, n),)))
            locations.append(SidLocation(1, length, (short, (1, 0x1F, n)), 0, NAME, exact=True))
        return locations
    if not isinstance(cid_length, int) or cid_length == 0:
        return None
    locations.append(_long_location(cid_length))
    locations.append(SidLocation(1, cid_length, (short,), 0, NAME, exact=True))
    # a long header with an empty DCID: the SCID, where its length is the configured one
    locations.append(
        SidLocation(7, cid_length, ((0, 0x80, 0x80), (5, 0xFF, 0), (6, 0xFF, cid_length)), 0, NAME)
    )
    return locations
