# Strategy: session-ID extraction is a host for plugins. The layers, from the bottom: where an
# ID sits (_location: SidLocation, Guard, the malformed-packet error plugins raise), the
# contract plugins implement (_contract: markers, hook specifications, ProtocolSpec, Option),
# loading them (_host), and the Extractor that answers "which session is this payload?"
# (_extractor). Each layer imports only those below it; sidkit.plugin is the face a plugin
# author imports, this package the face a caller of the extractor imports.
"""Session-ID extraction from UDP payloads, and its kernel-compilable description."""

from __future__ import annotations

from sidkit.extract._extractor import RFC9443_RANGES, Extractor, NotSteerableError, rfc9443_class
from sidkit.extract._location import Guard, MalformedPacketError, SidLocation, locate

__all__ = [
    "RFC9443_RANGES",
    "Extractor",
    "Guard",
    "MalformedPacketError",
    "NotSteerableError",
    "SidLocation",
    "locate",
    "rfc9443_class",
]
