# Strategy: OpenVPN's first byte is opcode (high 5 bits) and key id (low 3). Control-channel
# packets carry the sender's 64-bit session ID right after it; P_DATA_V2 data packets carry
# the 24-bit peer-id the server assigned. The two are different identifiers of the same
# client (a control packet names the client's session, a data packet the server's slot for
# the client), so details["field"] says which one a SessionId holds. P_DATA_V1 carries no
# ID. Opcodes follow src/openvpn/ssl_pkt.h (OpenVPN 2.4 and later; 10 and 11 since 2.6). A
# sidkit plugin written as a third-party one would be.
"""OpenVPN session IDs and P_DATA_V2 peer-ids as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sidkit.extract import MalformedPacketError, SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

__all__ = ["CONTROL_OPCODES", "NAME", "P_DATA_V1", "P_DATA_V2"]

NAME: Final = "openvpn"
P_DATA_V1: Final = 6
P_DATA_V2: Final = 9
CONTROL_OPCODES: Final[Mapping[int, str]] = {
    1: "P_CONTROL_HARD_RESET_CLIENT_V1",
    2: "P_CONTROL_HARD_RESET_SERVER_V1",
    3: "P_CONTROL_SOFT_RESET_V1",
    4: "P_CONTROL_V1",
    5: "P_ACK_V1",
    7: "P_CONTROL_HARD_RESET_CLIENT_V2",
    8: "P_CONTROL_HARD_RESET_SERVER_V2",
    10: "P_CONTROL_HARD_RESET_CLIENT_V3",
    11: "P_CONTROL_WKC_V1",
}

_OPCODES: Final = frozenset(CONTROL_OPCODES) | {P_DATA_V1, P_DATA_V2}

SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="OpenVPN control-channel session ID, or the P_DATA_V2 peer-id",
    first_bytes=frozenset(b for b in range(256) if b >> 3 in _OPCODES),
    ports=(1194,),
    references=("OpenVPN src/openvpn/ssl_pkt.h (opcodes, key id)",),
)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``openvpn`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """Control: opcode|key_id(1) session_id(8). P_DATA_V2: opcode|key_id(1) peer_id(3)."""
    if protocol != NAME or not payload:
        return None
    opcode, key_id = payload[0] >> 3, payload[0] & 0x07
    if opcode == P_DATA_V2:
        if len(payload) < 4:
            raise MalformedPacketError("P_DATA_V2 shorter than 4 bytes", protocol=NAME)
        return SessionId(
            NAME, payload[1:4], {"opcode": "P_DATA_V2", "key_id": key_id, "field": "peer_id"}
        )
    name = CONTROL_OPCODES.get(opcode)
    if name is None:
        return None  # P_DATA_V1 (no ID) or not OpenVPN
    if len(payload) < 9:
        raise MalformedPacketError(f"{name} shorter than 9 bytes", protocol=NAME)
    return SessionId(NAME, payload[1:9], {"opcode": name, "key_id": key_id, "field": "session_id"})


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """The peer-id behind the P_DATA_V2 opcode; the session ID behind each control opcode."""
    if protocol != NAME:
        return None
    # exact: the parser checks the opcode and the length, nothing else
    locations = [SidLocation(1, 3, ((0, 0xF8, P_DATA_V2 << 3),), 4, NAME, exact=True)]
    for opcode in CONTROL_OPCODES:
        locations.append(SidLocation(1, 8, ((0, 0xF8, opcode << 3),), 9, NAME, exact=True))
    return tuple(locations)
