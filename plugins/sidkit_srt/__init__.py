# Strategy: every SRT packet, data or control, has a 16-byte header whose last field is the
# Destination SRT Socket ID: the receiver's own socket, i.e. the session as the receiver
# knows it. A caller's first handshake (induction) does not know the peer's socket yet and
# sends 0 there; that packet yields None. A sidkit plugin written as a third-party one would
# be.
"""SRT destination socket IDs (draft-sharabayko-srt) as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["CONTROL_TYPES", "NAME"]

NAME: Final = "srt"

CONTROL_TYPES: Final[Mapping[int, str]] = {
    # draft-sharabayko-srt-01 section 3.2, Table 1.
    0x0000: "handshake",
    0x0001: "keepalive",
    0x0002: "ack",
    0x0003: "nak",
    0x0004: "congestion_warning",
    0x0005: "shutdown",
    0x0006: "ackack",
    0x0007: "dropreq",
    0x0008: "peer_error",
    0x7FFF: "user_defined",
}

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="SRT destination socket ID (data and control packets)",
    references=("draft-sharabayko-srt-01 sections 3, 3.1, 3.2",),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``srt`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """draft-sharabayko-srt-01 section 3, Figure 2: F(1) + 31 bits, 32 bits, Timestamp(32),
    Destination SRT Socket ID(32) at offset 12. ID 0 yields ``None``."""
    if protocol != NAME or not payload:
        return None
    if len(payload) < 16:
        raise MalformedPacketError(f"{len(payload)} bytes, header needs 16", protocol=NAME)
    socket_id = payload[12:16]
    if socket_id == b"\x00\x00\x00\x00":
        return None
    if payload[0] & 0x80:
        ctype = int.from_bytes(payload[0:2], "big") & 0x7FFF
        details: dict[str, object] = {
            "packet": "control",
            "control_type": CONTROL_TYPES.get(ctype, str(ctype)),
        }
    else:
        details = {"packet": "data", "sequence": int.from_bytes(payload[0:4], "big")}
    details["field"] = "destination_socket_id"
    return SessionId(NAME, socket_id, details)


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """The destination socket ID at offset 12 of every packet."""
    if protocol != NAME:
        return None
    return (SidLocation(12, 4, (), 16, NAME),)
