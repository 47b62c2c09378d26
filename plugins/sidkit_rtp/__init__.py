# Strategy: RTP and RTCP share a port when multiplexed (RFC 5761) and both start with version
# 2 (first byte 128..191, RFC 9443's RTP range). RFC 5761 section 4 tells them apart by the
# second byte: RTCP packet types 192..223 are never RTP (payload types 64..95 with either
# marker value are avoided). The session ID is the sender's SSRC, RFC 3550's identifier of
# a synchronization source -- at offset 8 in RTP, offset 4 in RTCP. A sidkit plugin written
# as a third-party one would be.
"""RTP/RTCP synchronization sources (RFC 3550, RFC 5761) as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["NAME"]

NAME: Final = "rtp"

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="RTP SSRC (RTCP: the sender's SSRC), RTP and RTCP multiplexed",
    first_bytes=range(128, 192),  # V=2; RFC 9443 section 3: 128..191 is RTP/RTCP
    references=("RFC 3550 sections 5.1, 6.4", "RFC 5761 section 4"),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``rtp`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """RTP: V(2) P X CC | M PT | sequence(16) | timestamp(32) | SSRC(32) at offset 8
    (RFC 3550 section 5.1). RTCP: V(2) P count | PT(8) | length(16) | SSRC(32) at offset 4
    (RFC 3550 section 6.4.1)."""
    if protocol != NAME or not payload or payload[0] & 0xC0 != 0x80:
        return None
    if len(payload) < 8:
        raise MalformedPacketError(f"{len(payload)} bytes, too short for RTP/RTCP", protocol=NAME)
    second = payload[1]
    if 192 <= second <= 223:
        return SessionId(
            NAME, payload[4:8], {"kind": "rtcp", "packet_type": second, "field": "ssrc"}
        )
    if len(payload) < 12:
        raise MalformedPacketError(f"{len(payload)} bytes, RTP header needs 12", protocol=NAME)
    return SessionId(
        NAME,
        payload[8:12],
        {"kind": "rtp", "payload_type": second & 0x7F, "field": "ssrc"},
    )


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """RTCP first (second byte 0b110xxxxx), then RTP.

    The RTCP location is ``exact``; the RTP one is not, because it also applies to RTCP
    packets of 12 bytes or more, whose SSRC the parser takes from offset 4."""
    if protocol != NAME:
        return None
    return (
        SidLocation(4, 4, ((0, 0xC0, 0x80), (1, 0xE0, 0xC0)), 8, NAME, exact=True),
        SidLocation(8, 4, ((0, 0xC0, 0x80),), 12, NAME),
    )
