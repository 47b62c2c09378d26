# Strategy: a GTP-U datagram is one message with an 8-byte mandatory header whose TEID names
# the tunnel endpoint in the *receiving* node -- the session for a user-plane gateway. Path
# management messages (Echo) carry TEID 0 and yield None. Only GTPv1 with the PT bit set is
# GTP-U (GTP' uses PT=0). A sidkit plugin written as a third-party one would be.
"""GTP-U tunnel endpoint identifiers (3GPP TS 29.281) as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["MESSAGE_TYPES", "NAME"]

NAME: Final = "gtpu"

MESSAGE_TYPES: Final[Mapping[int, str]] = {
    # 3GPP TS 29.281 section 7.1, Table 7.1-1.
    1: "echo_request",
    2: "echo_response",
    26: "error_indication",
    31: "supported_extension_headers_notification",
    253: "tunnel_status",
    254: "end_marker",
    255: "g_pdu",
}

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="GTP-U tunnel endpoint identifier (TEID) of the receiving node",
    # TS 29.281 section 5.1: Version (3 bits) = 1, PT (1 bit) = 1 -> first byte 0x30..0x3f.
    first_bytes=range(0x30, 0x40),
    ports=(2152,),
    references=("3GPP TS 29.281 sections 5.1, 7.1",),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``gtpu`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """TS 29.281 section 5.1, Figure 5.1-1: flags(1) type(1) length(2) TEID(4); the Length
    counts the bytes after those 8. TEID 0 (path management) yields ``None``."""
    if protocol != NAME or not payload or payload[0] & 0xF0 != 0x30:
        return None
    if len(payload) < 8:
        raise MalformedPacketError(f"{len(payload)} bytes, header needs 8", protocol=NAME)
    length = int.from_bytes(payload[2:4], "big")
    if 8 + length > len(payload):
        raise MalformedPacketError(
            f"Length {length} runs past the {len(payload)}-byte datagram", protocol=NAME
        )
    teid = payload[4:8]
    if teid == b"\x00\x00\x00\x00":
        return None
    mtype = payload[1]
    return SessionId(
        NAME,
        teid,
        {"message_type": MESSAGE_TYPES.get(mtype, str(mtype)), "field": "teid"},
    )


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """The TEID at offset 4 behind the version/PT guard."""
    if protocol != NAME:
        return None
    return (SidLocation(4, 4, ((0, 0xF0, 0x30),), 8, NAME),)
