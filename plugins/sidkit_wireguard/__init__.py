# Strategy: WireGuard's four message types all start with a type byte and three reserved zero
# bytes, and each has a fixed size (transport data: a 16-byte header plus a padded, tagged
# payload), so a message is recognised by type, zeros and size together -- cheap, and strict
# enough not to take a STUN message (which also starts 0x00/0x01) for WireGuard. The session
# ID is the index the *receiving* peer chose (receiver index) where the message has one, and
# the sender's index in a handshake initiation, which is the only index it carries.
# Indices are kept as the four bytes on the wire (little-endian when read as a number).
# A sidkit plugin written as a third-party one would be.
"""WireGuard session indices (whitepaper section 5.4) as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import SidLocation
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["MESSAGES", "NAME"]

NAME: Final = "wireguard"

# type -> (name, field, offset of the index, exact size or None, minimum size)
# J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel", section 5.4.2
# (initiation: type, reserved, sender, ephemeral 32, static 32+16, timestamp 12+16, mac1 16,
# mac2 16 = 148 bytes), 5.4.3 (response: type, reserved, sender, receiver, ephemeral 32,
# empty 0+16, mac1, mac2 = 92), 5.4.7 (cookie reply: type, reserved, receiver, nonce 24,
# cookie 16+16 = 64), 5.4.6 (transport data: type, reserved, receiver, counter 8, packet
# + 16 tag; >= 32; padded to 16 bytes except where the MTU cuts the padding short, so the
# size is not always a multiple of 16). Linux: drivers/net/wireguard/messages.h, send.c.
MESSAGES: Final[Mapping[int, tuple[str, str, int, int | None, int]]] = {
    1: ("handshake_initiation", "sender", 4, 148, 148),
    2: ("handshake_response", "receiver", 8, 92, 92),
    3: ("cookie_reply", "receiver", 4, 64, 64),
    4: ("transport_data", "receiver", 4, None, 32),
}

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="WireGuard receiver index (sender index in a handshake initiation)",
    first_bytes=frozenset(MESSAGES),
    ports=(51820,),
    references=("WireGuard whitepaper section 5.4", "drivers/net/wireguard/messages.h"),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``wireguard`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    five_tuple: FiveTuple | None,
    options: Mapping[str, object],
) -> SessionId | None:
    """The index a WireGuard message is addressed by; ``None`` for anything else."""
    if protocol != NAME or len(payload) < 32:
        return None
    message = MESSAGES.get(payload[0])
    if message is None or payload[1:4] != b"\x00\x00\x00":
        return None
    name, field, offset, size, minimum = message
    n = len(payload)
    if (size is not None and n != size) or n < minimum:
        return None
    return SessionId(NAME, payload[offset : offset + 4], {"message_type": name, "field": field})


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """One location per message type: the type byte and three zero bytes as guards.

    Transport data's is ``exact`` (the parser checks type, zeros and the 32-byte minimum,
    all of which the location says); the handshake messages' are not, since the parser
    also wants their exact size, which byte tests and a minimum length cannot express."""
    if protocol != NAME:
        return None
    return tuple(
        SidLocation(
            offset,
            4,
            ((0, 0xFF, mtype), (1, 0xFF, 0), (2, 0xFF, 0), (3, 0xFF, 0)),
            minimum,
            NAME,
            exact=size is None,
        )
        for mtype, (_name, _field, offset, size, minimum) in MESSAGES.items()
    )
