# Strategy: DTLS carries a connection ID only in two record forms: the DTLS 1.2 "tls12_cid"
# record (RFC 9146, content type 25, CID right after the 11 bytes of type, version, epoch and
# sequence number) and the DTLS 1.3 unified header with its C bit set (RFC 9147 section 4).
# Neither says how long the CID is -- the length was agreed in the handshake -- so the
# length is an option the caller must give. Every other record (plaintext handshake, alert,
# change_cipher_spec, application data without CID) carries no CID and yields None.
#
# The two endpoints choose their CIDs independently (RFC 9146 section 3), so one port often
# sees two lengths (a 17-byte client CID beside an 8-byte server CID). cid_length may
# therefore be a set of lengths. With one length the record is read as before; with several,
# the record's own length field decides (RFC 9146 section 4, RFC 9147 section 4 with L
# set): a length is a candidate when the header fits and the record ends inside the
# datagram, exactly at its end or where another record may start; the one candidate wins,
# and more than one (or a 1.3 header without a length field) is None -- never a truncated
# or stretched guess.
#
# For callers that can see the handshake, hello_connection_id() reads the "connection_id"
# extension (RFC 9146 section 3: type 54; the draft codepoint 53 and mbedTLS's pre-standard
# 254 are recognised as legacy; RFC 9147 section 9 keeps it for DTLS 1.3) from an
# unfragmented ClientHello or ServerHello, and hello_cid_length() says which endpoint the
# learned length applies to: the hello's *sender* receives records with that CID. sidkit
# flows (or any caller) keeps those lengths per receiving endpoint and extracts with
# cid_length=<that endpoint's length>. A sidkit plugin written as a third-party one would
# be.
"""DTLS 1.2 (RFC 9146) and DTLS 1.3 (RFC 9147) connection IDs as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

from sidkit import InputTypeError, InputValueError
from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import DETAIL_VALIDATED, Option, ProtocolSpec, hookimpl

__all__ = [
    "CONTENT_TLS12_CID",
    "EXT_CONNECTION_ID",
    "LEGACY_EXT_CONNECTION_ID",
    "NAME",
    "hello_cid_length",
    "hello_connection_id",
]

NAME: Final = "dtls"
CONTENT_TLS12_CID: Final = 25
"""RFC 9146 section 4: ContentType tls12_cid(25)."""
EXT_CONNECTION_ID: Final = 54
"""RFC 9146 section 3: ExtensionType connection_id(54)."""
LEGACY_EXT_CONNECTION_ID: Final = frozenset({53, 254})
"""53: the codepoint of draft-ietf-tls-dtls-connection-id before RFC 9146 (which deprecated
it, section 10); 254: the private-use value mbedTLS used before IANA assigned one."""

_DTLS12: Final = b"\xfe\xfd"  # ProtocolVersion {254, 253}, RFC 6347 section 4.1
_HANDSHAKE: Final = 22
_CLIENT_HELLO: Final = 1
_SERVER_HELLO: Final = 2


def _tls12_cid(data: bytes, cid_length: int) -> SessionId | None:
    """RFC 9146 section 4, the DTLSCiphertext of tls12_cid records:
    type(1) version(2) epoch(2) sequence_number(6) cid(cid_length) length(2) enc_content."""
    if data[1:3] != _DTLS12:
        return None
    header = 11 + cid_length + 2
    if len(data) < header:
        raise MalformedPacketError(
            f"tls12_cid record of {len(data)} bytes is shorter than its {header}-byte header",
            protocol=NAME,
        )
    if cid_length == 0:
        return None
    epoch = int.from_bytes(data[3:5], "big")
    details: dict[str, object] = {
        "version": "1.2",
        "content_type": CONTENT_TLS12_CID,
        "epoch": epoch,
        "field": "cid",
    }
    if _ends_well(data, header + int.from_bytes(data[header - 2 : header], "big")):
        details[DETAIL_VALIDATED] = True
    return SessionId(NAME, data[11 : 11 + cid_length], details)


def _unified(data: bytes, cid_length: int) -> SessionId | None:
    """RFC 9147 section 4, Figure 3: the unified header's first byte is 0b001CSLEE; with C
    set the CID follows it, then a 8- or 16-bit sequence number (S), then an optional
    16-bit length (L)."""
    first = data[0]
    if not first & 0x10:
        return None  # no CID in this record
    header = 1 + cid_length + (2 if first & 0x08 else 1) + (2 if first & 0x04 else 0)
    if len(data) < header:
        raise MalformedPacketError(
            f"unified header of {len(data)} bytes is shorter than its {header}-byte header",
            protocol=NAME,
        )
    if cid_length == 0:
        return None
    details: dict[str, object] = {
        "version": "1.3",
        "content_type": "unified",
        "epoch_bits": first & 0x03,
        "field": "cid",
    }
    if first & 0x04 and _ends_well(data, header + int.from_bytes(data[header - 2 : header], "big")):
        details[DETAIL_VALIDATED] = True
    return SessionId(NAME, data[1 : 1 + cid_length], details)


def _lengths(value: object) -> tuple[int, ...]:
    """The configured CID lengths, ascending: an int or a frozenset (see _check_cid_length)."""
    if isinstance(value, int):
        return (value,)
    assert isinstance(value, frozenset)
    return tuple(sorted(value))


def _ends_well(data: bytes, end: int) -> bool:
    """A record that ends at *end* fits the datagram: it ends it, or another DTLS record may
    start there (RFC 9443 section 3: first byte 20..63; RFC 6347 section 4.1.1 and RFC 9147
    section 4: several records may share a datagram)."""
    return end == len(data) or (end < len(data) and 20 <= data[end] <= 63)


def _pick_length(data: bytes, lengths: tuple[int, ...]) -> int | None:
    """The one CID length of *lengths* under which the record's length field is consistent
    with the datagram, or ``None`` (none, several, or a 1.3 header without a length field).
    A datagram too short for every length raises, as with one length."""
    first = data[0]
    candidates: list[int] = []
    fits = False
    for n in lengths:
        if first == CONTENT_TLS12_CID:
            field = 11 + n
        elif first & 0x04:  # RFC 9147 section 4: L bit, the length follows the sequence
            field = 1 + n + (2 if first & 0x08 else 1)
        else:
            field = -1
        if field < 0:
            header = 1 + n + (2 if first & 0x08 else 1)
            fits = fits or len(data) >= header
            continue
        if len(data) < field + 2:
            continue
        fits = True
        if _ends_well(data, field + 2 + int.from_bytes(data[field : field + 2], "big")):
            candidates.append(n)
    if not fits:
        return lengths[0]  # the parser reports the datagram as cut short
    return candidates[0] if len(candidates) == 1 else None


def hello_cid_length(
    payload: bytes | bytearray | memoryview,
) -> tuple[Literal["client", "server"], int] | None:
    """Who receives records with the CID negotiated by this hello, and its length.

    RFC 9146 section 3: the connection_id extension carries the CID its sender wants to
    *receive*. So a ClientHello's CID appears in the records the server sends to the client
    (``("client", n)``: records *to* the hello's sender have ``n``-byte CIDs), and a
    ServerHello's in the records the client sends (``("server", n)``). ``None`` when the
    first record is no unfragmented hello with the extension. A length of 0 means the
    sender asked for no CID (its records carry none). A caller such as ``sidkit flows``
    keeps the length per receiving endpoint (the hello's source address and port) and
    extracts the datagrams sent to that endpoint with ``cid_length`` set to it.
    """
    found = hello_connection_id(payload)
    if found is None:
        return None
    role: Literal["client", "server"] = (
        "client" if bytes(payload)[13] == _CLIENT_HELLO else "server"
    )
    return role, len(found[1])


def hello_connection_id(payload: bytes | bytearray | memoryview) -> tuple[int, bytes] | None:
    """The ``connection_id`` extension of the ClientHello/ServerHello in the first record.

    Returns ``(extension_type, cid)`` -- the CID the sender of the hello wants to *receive*
    (RFC 9146 section 3) -- or ``None`` when the first record is not an unfragmented hello
    with that extension. Record layout: RFC 6347 section 4.1; handshake header: section
    4.2.2; hello bodies: RFC 5246 section 7.4.1.2/7.4.1.3 plus DTLS's cookie (RFC 6347
    section 4.2.1). Raises :class:`~sidkit.extract.MalformedPacketError` when a length
    field runs past the record.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InputTypeError("payload must be bytes-like", code="not-bytes")
    data = bytes(payload)
    if len(data) < 13 or data[0] != _HANDSHAKE or data[1] != 0xFE:
        return None
    record_end = 13 + int.from_bytes(data[11:13], "big")
    if record_end > len(data):
        raise MalformedPacketError("record length runs past the datagram", protocol=NAME)
    body = data[13:record_end]
    if len(body) < 12 or body[0] not in (_CLIENT_HELLO, _SERVER_HELLO):
        return None
    length = int.from_bytes(body[1:4], "big")
    fragment_offset = int.from_bytes(body[6:9], "big")
    fragment_length = int.from_bytes(body[9:12], "big")
    if fragment_offset != 0 or fragment_length != length:
        return None  # a fragment: the extensions may be elsewhere
    msg = body[12 : 12 + length]
    if len(msg) != length:
        raise MalformedPacketError("handshake message runs past the record", protocol=NAME)

    pos = 2 + 32  # version, random

    def skip(size_bytes: int) -> None:
        nonlocal pos
        if pos + size_bytes > len(msg):
            raise MalformedPacketError("hello field runs past the message", protocol=NAME)
        n = int.from_bytes(msg[pos : pos + size_bytes], "big")
        pos += size_bytes + n
        if pos > len(msg):
            raise MalformedPacketError("hello field runs past the message", protocol=NAME)

    skip(1)  # session_id
    if body[0] == _CLIENT_HELLO:
        skip(1)  # cookie
        skip(2)  # cipher_suites
        skip(1)  # compression_methods
    else:
        pos += 3  # cipher_suite, compression_method
    if pos + 2 > len(msg):
        return None  # no extensions block
    end = pos + 2 + int.from_bytes(msg[pos : pos + 2], "big")
    if end > len(msg):
        raise MalformedPacketError("extensions run past the message", protocol=NAME)
    pos += 2
    while pos + 4 <= end:
        ext_type = int.from_bytes(msg[pos : pos + 2], "big")
        ext_len = int.from_bytes(msg[pos + 2 : pos + 4], "big")
        ext = msg[pos + 4 : pos + 4 + ext_len]
        if len(ext) != ext_len or pos + 4 + ext_len > end:
            raise MalformedPacketError("extension runs past the extensions", protocol=NAME)
        if ext_type == EXT_CONNECTION_ID or ext_type in LEGACY_EXT_CONNECTION_ID:
            if not ext or ext[0] + 1 != len(ext):
                raise MalformedPacketError("connection_id extension is malformed", protocol=NAME)
            return ext_type, ext[1:]
        pos += 4 + ext_len
    return None


def _check_cid_length(value: object) -> object:
    """An int stays an int (the one length); a collection of ints becomes a frozenset."""
    items: Iterable[object] = (value,) if isinstance(value, int) else value  # type: ignore[assignment]
    lengths: set[int] = set()
    for item in items:
        if not isinstance(item, int) or isinstance(item, bool):
            raise InputValueError(
                f"cid_length holds {item!r}: lengths are integers", code="bad-cid-length"
            )
        if not 0 <= item <= 255:
            raise InputValueError(
                f"cid_length={item} must be 0..255 (RFC 9146: opaque cid<0..2^8-1>)",
                code="bad-cid-length",
            )
        lengths.add(item)
    if not lengths:
        raise InputValueError("cid_length needs at least one length", code="bad-cid-length")
    return value if isinstance(value, int) else frozenset(lengths)


SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="DTLS connection ID: RFC 9146 tls12_cid records and RFC 9147 unified headers",
    first_bytes=range(20, 64),  # RFC 9443 section 3: 20..63 is DTLS
    options=(
        Option(
            "cid_length",
            (int, set, frozenset, list, tuple),
            None,
            "length of the connection IDs in the records (not on the wire): one int, or a "
            "set of lengths (both endpoints' CIDs), told apart by the record length field",
            _check_cid_length,
            required=True,
        ),
    ),
    references=(
        "RFC 9146 sections 3, 4",
        "RFC 9147 sections 4, 9",
        "RFC 6347 section 4.1",
        "RFC 9443 section 3",
    ),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``dtls`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """The CID of a tls12_cid record or a unified header with C set; else ``None``."""
    if protocol != NAME or not payload:
        return None
    lengths = _lengths(options["cid_length"])
    first = payload[0]
    if first != CONTENT_TLS12_CID and first & 0xF0 != 0x30:
        return None  # no CID in this record
    if len(lengths) == 1:
        cid_length = lengths[0]
    else:
        picked = _pick_length(payload, lengths)
        if picked is None:
            return None
        cid_length = picked
    if first == CONTENT_TLS12_CID:
        return _tls12_cid(payload, cid_length)
    if first & 0xE0 == 0x20:
        return _unified(payload, cid_length)
    return None  # 20..24: change_cipher_spec, alert, handshake, application_data, heartbeat


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """tls12_cid at offset 11 and the unified header's CID at offset 1, all ``exact``;
    ``None`` with several lengths (no byte test can pick one).

    The unified header has one location per combination of its S and L bits (RFC 9147
    section 4: a 16- or 8-bit sequence number, a length field or none), each with the
    minimum size of that header, so that a location applies exactly where the parser
    finds the CID and never to a header it rejects as cut short."""
    if protocol != NAME:
        return None
    lengths = _lengths(options["cid_length"])
    if len(lengths) > 1:
        return None  # the length is chosen by the record's length field: no byte test
    (cid_length,) = lengths
    if cid_length == 0:
        return ()
    locations = [
        SidLocation(
            11,
            cid_length,
            ((0, 0xFF, CONTENT_TLS12_CID), (1, 0xFF, 0xFE), (2, 0xFF, 0xFD)),
            11 + cid_length + 2,
            NAME,
            exact=True,
        )
    ]
    for seq16 in (0x08, 0x00):
        for with_length in (0x04, 0x00):
            header = 1 + cid_length + (2 if seq16 else 1) + (2 if with_length else 0)
            first = (0, 0xFC, 0x30 | seq16 | with_length)  # 0 0 1 C=1 S L, any epoch bits
            locations.append(SidLocation(1, cid_length, (first,), header, NAME, exact=True))
    return tuple(locations)
