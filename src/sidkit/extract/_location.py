# Strategy: where a session ID sits, said in a form a kernel program can use: a fixed offset
# and length, valid when one-byte tests (guards) pass and the datagram is long enough. The
# module is the contract between three parties that must not import each other: plugins
# return these values (sidkit_sid_locations), the Extractor checks and concatenates them,
# and the steering compilers accept anything shaped like them. It also holds the one error a
# plugin raises for a header that claims its protocol but is cut short or inconsistent.
"""Session-ID locations (fixed offsets guarded by byte tests) and malformed-packet errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_bytes, show

__all__ = ["Guard", "MalformedPacketError", "SidLocation", "locate"]


class MalformedPacketError(InputValueError):
    """A payload whose first bytes claim a protocol but whose header is cut short or
    inconsistent (a QUIC long header whose connection ID runs past the datagram, a QUIC v1
    connection ID longer than 20 bytes). Carries ``protocol``.

    A router drops such a datagram or steers it by its tuple; it must not guess an ID.
    """

    code = "malformed-packet"

    def __init__(self, message: str, *, protocol: str = "", code: str | None = None) -> None:
        super().__init__(f"{protocol}: {message}" if protocol else message, code=code)
        self.protocol = protocol


def _u8(_inst: object, attr: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
        raise InputValueError(
            f"{attr.name}={show(value)} must be an int in 0..255", code="bad-guard"
        )


def _offset(_inst: object, attr: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise InputValueError(
            f"{attr.name}={show(value)} must be an int in 0..65535", code="bad-location"
        )


@attrs.frozen
class Guard:
    """A one-byte test: ``payload[offset] & mask == value``.

    The test fails when the payload has no byte at *offset*. ``mask`` is non-zero and
    ``value`` has no bit outside ``mask`` (such a guard could never pass). Iterating a guard
    gives ``(offset, mask, value)``, so ``for off, mask, value in location.guards`` works.
    In cBPF: ``ldb [offset]; and #mask; jeq #value`` (a ``mask`` of 0xff needs no ``and``).
    """

    offset: int = attrs.field(validator=_offset)
    mask: int = attrs.field(validator=_u8)
    value: int = attrs.field(validator=_u8)

    def __attrs_post_init__(self) -> None:
        if self.mask == 0:
            raise InputValueError("a guard's mask must not be 0", code="bad-guard")
        if self.value & ~self.mask:
            raise InputValueError(
                f"guard value {self.value:#04x} has bits outside mask {self.mask:#04x}: "
                "it could never match",
                code="bad-guard",
            )

    def __iter__(self) -> Iterator[int]:
        return iter((self.offset, self.mask, self.value))

    def test(self, payload: bytes) -> bool:
        """Whether the guard passes on *payload*."""
        return len(payload) > self.offset and payload[self.offset] & self.mask == self.value


def _to_guards(value: Iterable[Guard | tuple[int, int, int]]) -> tuple[Guard, ...]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"guards must be a sequence of (offset, mask, value), not {show(value)}",
            code="bad-guard",
        )
    guards: list[Guard] = []
    for item in value:
        if isinstance(item, Guard):
            guards.append(item)
        elif isinstance(item, tuple) and len(item) == 3:
            guards.append(Guard(*item))
        else:
            raise InputTypeError(
                f"a guard is a Guard or an (offset, mask, value) tuple, not {show(item)}",
                code="bad-guard",
            )
    return tuple(guards)


def _bool(_inst: object, attr: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InputTypeError(f"{attr.name}={show(value)} must be a bool", code="not-bool")


def _length(_inst: object, attr: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 255:
        raise InputValueError(
            f"{attr.name}={show(value)} must be an int in 1..255", code="bad-location"
        )


@attrs.frozen
class SidLocation:
    """A session ID at a fixed place in the UDP payload, valid when byte tests pass.

    The ID is ``payload[offset : offset + length]``, provided that

    * every guard passes (``payload[g.offset] & g.mask == g.value``), and
    * the payload is at least ``max(offset + length, min_size)`` bytes long (so a program
      never reads past the end; cBPF ``ld len``, eBPF ``data + n > data_end``).

    A protocol gives an ordered sequence of locations; the **first** whose conditions hold
    applies, and when none holds the packet has no steerable ID (the kernel falls back to
    its tuple hash). That is exactly :func:`locate`, which a compiled program must match.

    The description may be *wider* than the Python parser, never different: where a
    location applies and the parser returns an ID, both give the same bytes; a location may
    also apply to a packet the parser rejects (a WireGuard message of the wrong size),
    because byte tests cannot express every check. Tests hold every built-in plugin to
    that contract on generated packets.

    Example, WireGuard transport data (type 4, three reserved zero bytes, receiver index at
    4..8, at least 32 bytes)::

        SidLocation(4, 4, guards=((0, 0xFF, 4), (1, 0xFF, 0), (2, 0xFF, 0), (3, 0xFF, 0)),
                    min_size=32, protocol="wireguard")

    compiles to cBPF as ``ld len; jlt #32, next; ldb [0]; jne #4, next; ...; ld [4]`` (a
    big-endian load of the four ID bytes: hash them as the bytes they are).

    ``exact`` is a stronger promise a plugin may make about one location: *wherever it
    applies* (every guard passes and the payload is at least :attr:`needed` bytes long),
    whatever else the payload holds and whatever the five-tuple, the plugin's
    ``sidkit_extract`` returns exactly ``SessionId(protocol, payload[offset:offset+length])``
    -- never ``None``, never an error, never other bytes, and on its own, whichever other
    locations of the protocol also apply. A caller that only needs the ID's bytes may then
    skip the parser for such payloads (``sidkit flows`` does, see
    :meth:`Extractor.exact_table`). A QUIC short header with a configured ``cid_length`` is
    exact (the fixed bit and ``1 + cid_length`` bytes are all the parser checks); no
    WireGuard location is (the parser also wants a handshake message's exact size and
    transport data's padded size, 32 + 16k bytes or MTU-sized, which byte tests cannot
    say), nor is a QUIC long header (its parser reads the variable-length fields behind the
    IDs). Every built-in plugin's
    claim is checked by a Hypothesis property on payloads built to match each exact location
    and on random ones (``tests/extract/test_extract_exact.py``).
    """

    offset: int = attrs.field(validator=_offset)
    length: int = attrs.field(validator=_length)
    guards: tuple[Guard, ...] = attrs.field(default=(), converter=_to_guards)
    min_size: int = attrs.field(default=0, validator=_offset)
    protocol: str = ""
    exact: bool = attrs.field(default=False, validator=_bool, kw_only=True)

    @property
    def needed(self) -> int:
        """The payload length below which this location cannot apply: the ID's end,
        ``min_size``, and one past the last guarded byte (a guard on a byte the payload does
        not have fails, as the compiled programs' length check makes it)."""
        return max(self.offset + self.length, self.min_size, *(g.offset + 1 for g in self.guards))

    def match(self, payload: bytes | bytearray | memoryview) -> bytes | None:
        """The ID bytes if this location applies to *payload*, else ``None``."""
        data = as_bytes(payload, "payload")
        if len(data) < self.needed:
            return None
        for guard in self.guards:
            if data[guard.offset] & guard.mask != guard.value:
                return None
        return data[self.offset : self.offset + self.length]


def locate(
    locations: Iterable[SidLocation], payload: bytes | bytearray | memoryview
) -> tuple[SidLocation, bytes] | None:
    """The first location that applies to *payload* and the ID bytes it gives, or ``None``.

    This is the reference semantics of a compiled steering program.
    """
    data = as_bytes(payload, "payload")
    for location in locations:
        value = location.match(data)
        if value is not None:
            return location, value
    return None
