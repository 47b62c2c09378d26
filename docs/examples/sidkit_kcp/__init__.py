# Strategy: KCP (a reliable-UDP protocol popular in games) starts every segment with the
# 32-bit conversation id "conv" that both ends agreed on, so conv is the session ID. A segment
# is recognised by its command byte (81..84) and a length field that fits the datagram;
# anything else is not KCP. This file is the example of docs/plugins.rst: a complete sidkit
# plugin in one module, registered through the "sidkit" entry-point group of its own package.
"""KCP conversation ids (skywind3000/kcp, ikcp.c) as sidkit session IDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidkit.extract import SidLocation
from sidkit.keys import SessionId
from sidkit.plugin import ProtocolSpec, hookimpl

NAME = "kcp"
HEADER = 24  # IKCP_OVERHEAD: conv 4, cmd 1, frg 1, wnd 2, ts 4, sn 4, una 4, len 4
COMMANDS = {81: "push", 82: "ack", 83: "window_probe", 84: "window_size"}  # IKCP_CMD_*


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Describe the protocol: name, what it extracts, where that is specified."""
    return [
        ProtocolSpec(
            name=NAME,
            summary="KCP conversation id (conv)",
            references=["ikcp.c: ikcp_encode_seg, ikcp_input"],
        )
    ]


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """The first segment's conv, as its four bytes on the wire (little-endian)."""
    if protocol != NAME or len(payload) < HEADER:
        return None
    command = COMMANDS.get(payload[4])
    length = int.from_bytes(payload[20:24], "little")
    if command is None or HEADER + length > len(payload):
        return None  # not a KCP segment
    return SessionId(NAME, payload[0:4], {"command": command, "field": "conv"})


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """conv at offset 0 of any datagram whose fifth byte is a KCP command."""
    if protocol != NAME:
        return None
    return [SidLocation(0, 4, [(4, 0xFF, cmd)], HEADER, NAME) for cmd in COMMANDS]
