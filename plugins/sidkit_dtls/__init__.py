# Strategy: DTLS carries a connection ID only in two record forms: the DTLS 1.2 "tls12_cid"
# record (RFC 9146, content type 25, CID right after the 11 bytes of type, version, epoch and
# sequence number) and the DTLS 1.3 unified header with its C bit set (RFC 9147 section 4).
# Neither says how long the CID is -- the length was agreed in the handshake -- so the
# length is an option the caller must give. Every other record (plaintext handshake, alert,
# change_cipher_spec, application data without CID) carries no CID and yields None.
#
# For callers that want to learn the CID a peer asked for, hello_connection_id() reads the
# "connection_id" extension (RFC 9146 section 3: type 54; the draft codepoint 53 and
# mbedTLS's pre-standard 254 are recognised as legacy) from an unfragmented ClientHello or
# ServerHello. A sidkit plugin written as a third-party one would be.
"""DTLS 1.2 (RFC 9146) and DTLS 1.3 (RFC 9147) connection IDs as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit import InputTypeError, InputValueError
from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import Option, ProtocolSpec, hookimpl

__all__ = [
    "CONTENT_TLS12_CID",
    "EXT_CONNECTION_ID",
    "LEGACY_EXT_CONNECTION_ID",
    "NAME",
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
    return SessionId(
        NAME,
        data[11 : 11 + cid_length],
        {"version": "1.2", "content_type": CONTENT_TLS12_CID, "epoch": epoch, "field": "cid"},
    )


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
    return SessionId(
        NAME,
        data[1 : 1 + cid_length],
        {"version": "1.3", "content_type": "unified", "epoch_bits": first & 0x03, "field": "cid"},
    )


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
    assert isinstance(value, int)
    if not 0 <= value <= 255:
        raise InputValueError(
            f"cid_length={value} must be 0..255 (RFC 9146: opaque cid<0..2^8-1>)",
            code="bad-cid-length",
        )
    return value


SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="DTLS connection ID: RFC 9146 tls12_cid records and RFC 9147 unified headers",
    first_bytes=range(20, 64),  # RFC 9443 section 3: 20..63 is DTLS
    options=(
        Option(
            "cid_length",
            int,
            None,
            "length of the connection ID this endpoint asked to receive (not on the wire)",
            _check_cid_length,
            required=True,
        ),
    ),
    references=("RFC 9146 sections 3, 4", "RFC 9147 section 4", "RFC 6347 section 4.1"),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``dtls`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    five_tuple: FiveTuple | None,
    options: Mapping[str, object],
) -> SessionId | None:
    """The CID of a tls12_cid record or a unified header with C set; else ``None``."""
    if protocol != NAME or not payload:
        return None
    cid_length = options["cid_length"]
    assert isinstance(cid_length, int)
    first = payload[0]
    if first == CONTENT_TLS12_CID:
        return _tls12_cid(payload, cid_length)
    if first & 0xE0 == 0x20:
        return _unified(payload, cid_length)
    return None  # 20..24: change_cipher_spec, alert, handshake, application_data, heartbeat


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """tls12_cid at offset 11 and the unified header's CID at offset 1, all ``exact``.

    The unified header has one location per combination of its S and L bits (RFC 9147
    section 4: a 16- or 8-bit sequence number, a length field or none), each with the
    minimum size of that header, so that a location applies exactly where the parser
    finds the CID and never to a header it rejects as cut short."""
    if protocol != NAME:
        return None
    cid_length = options["cid_length"]
    assert isinstance(cid_length, int)
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
