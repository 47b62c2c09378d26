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

from sidkit import InputValueError
from sidkit.extract import SidLocation
from sidkit.keys import SessionId, trusted_session_id
from sidkit.plugin import Option, ProtocolSpec, hookimpl

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

#: The smallest tunnel MTU assumed by default: every IPv4 host accepts 576-byte datagrams
#: (RFC 791), and a WireGuard device below that is not met in practice.
MIN_MTU: Final = 576


def _check_min_mtu(value: object) -> object:
    if not isinstance(value, int) or not 68 <= value <= 65535:
        raise InputValueError(f"min_mtu={value!r} must be 68..65535", code="bad-min-mtu")
    return value


def transport_size_ok(n: int, min_mtu: int = MIN_MTU) -> bool:
    """Whether *n* bytes can be a transport data message: Linux pads the plaintext to a
    multiple of 16 (``calculate_skb_padding()``, drivers/net/wireguard/send.c) unless the
    padding would pass the device MTU -- so a size that is not 32 + 16k is a packet within 15
    bytes of an MTU of at least *min_mtu*. (Zoom's 81- and 109-byte datagrams that start
    04 00 00 00 are not WireGuard; the capture corpus found them.)"""
    return n >= 32 and ((n - 32) % 16 == 0 or n - 32 > min_mtu - 16)


SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="WireGuard receiver index (sender index in a handshake initiation)",
    first_bytes=frozenset(MESSAGES),
    options=(
        Option(
            "min_mtu",
            int,
            MIN_MTU,
            "smallest tunnel MTU to expect: a transport data message whose size is not "
            "32 + 16k must be an MTU-sized packet",
            _check_min_mtu,
        ),
    ),
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
    mtu = options.get("min_mtu", MIN_MTU)
    if size is None and not transport_size_ok(n, mtu if isinstance(mtu, int) else MIN_MTU):
        return None
    # Checked above: four bytes of a bytes payload under a valid name, so the ID is built
    # without the public constructor's checks, its details made when first read.
    value = payload[offset : offset + 4]
    if value.__class__ is not bytes:
        value = bytes(value)
    return trusted_session_id(NAME, value, (_details, name, field))


def _details(name: str, field: str) -> dict[str, object]:
    return {"message_type": name, "field": field}


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """One location per message type: the type byte and three zero bytes as guards.

    None is ``exact``: the parser also wants the handshake messages' exact sizes and the
    transport data's padded size (:func:`transport_size_ok`), which byte tests and a minimum
    length cannot express. A steering program on a WireGuard port reads the index from the
    location alone -- there every datagram is WireGuard."""
    if protocol != NAME:
        return None
    return tuple(
        SidLocation(
            offset,
            4,
            ((0, 0xFF, mtype), (1, 0xFF, 0), (2, 0xFF, 0), (3, 0xFF, 0)),
            minimum,
            NAME,
            exact=False,
        )
        for mtype, (_name, _field, offset, size, minimum) in MESSAGES.items()
    )
