# Strategy: on UDP 4500 (RFC 3948) one port carries three things, told apart by their first
# bytes: a single 0xFF byte is a NAT-keepalive (no session), four zero bytes are the non-ESP
# marker in front of an IKE message (RFC 7296 section 2.23), anything else is ESP, whose SPI
# can never be 0 (RFC 4303 section 2.1). ESP's session ID is its SPI, IKE's is the
# initiator's SPI (the responder's SPI is 0 in the first request, so it cannot be the key).
# On UDP 500 IKE has no marker; when the caller passes a five-tuple with port 500 the plugin
# reads IKE at offset 0. A sidkit plugin written as a third-party one would be.
"""IPsec NAT traversal: ESP-in-UDP SPIs and IKE SPIs (RFC 3948, RFC 7296)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["IKE_PORT", "NAME", "NAT_T_PORT", "NON_ESP_MARKER"]

NAME: Final = "ipsec"
IKE_PORT: Final = 500
NAT_T_PORT: Final = 4500
NON_ESP_MARKER: Final = b"\x00\x00\x00\x00"
"""RFC 3948 section 2.2 / RFC 7296 section 2.23: four zero octets before IKE on port 4500."""

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="ESP SPI (ESP-in-UDP) and IKE initiator SPI, UDP 4500 framing or IKE on UDP 500",
    ports=(NAT_T_PORT, IKE_PORT),
    references=(
        "RFC 3948 sections 2.1-2.3",
        "RFC 4303 section 2.1",
        "RFC 7296 sections 2.23, 3.1",
    ),
)


def _ike(data: bytes, start: int) -> SessionId:
    """RFC 7296 section 3.1: SPIi(8) SPIr(8) next payload(1) version(1) exchange type(1)
    flags(1) message ID(4) length(4) -- 28 bytes."""
    if len(data) - start < 28:
        raise MalformedPacketError(
            f"IKE header needs 28 bytes, {len(data) - start} left", protocol=NAME
        )
    return SessionId(
        NAME,
        data[start : start + 8],
        {
            "kind": "ike",
            "responder_spi": data[start + 8 : start + 16],
            "ike_version": data[start + 17] >> 4,
            "exchange_type": data[start + 18],
            "field": "initiator_spi",
        },
    )


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``ipsec`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    five_tuple: FiveTuple | None,
    options: Mapping[str, object],
) -> SessionId | None:
    """ESP SPI, IKE initiator SPI, or ``None`` for a NAT-keepalive."""
    if protocol != NAME or not payload:
        return None
    if five_tuple is not None and IKE_PORT in (five_tuple.sport, five_tuple.dport):
        return _ike(payload, 0)
    if payload == b"\xff":
        return None  # RFC 3948 section 2.3: NAT-keepalive
    if payload[:4] == NON_ESP_MARKER:
        return _ike(payload, 4)
    if len(payload) < 8:
        raise MalformedPacketError(
            f"ESP header needs 8 bytes (SPI, sequence number), got {len(payload)}", protocol=NAME
        )
    return SessionId(
        NAME,
        payload[0:4],
        {"kind": "esp", "sequence": int.from_bytes(payload[4:8], "big"), "field": "spi"},
    )


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """UDP 4500 framing: IKE behind the zero marker first, then ESP. (A program on a port-500
    socket group would use IKE at offset 0; byte tests cannot see the port.)"""
    if protocol != NAME:
        return None
    marker = tuple((i, 0xFF, 0) for i in range(4))
    return (
        SidLocation(4, 8, marker, 4 + 28, NAME),
        SidLocation(0, 4, (), 8, NAME),
    )
