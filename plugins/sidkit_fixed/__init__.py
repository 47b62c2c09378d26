# Strategy: the seed design's SID zone reads ``offlen`` bytes at ``offset`` of the UDP payload,
# whatever the protocol. This plugin is that rule, plus optional byte guards (the same
# (offset, mask, value) tests a SidLocation carries) so that one port can hold the fixed-offset
# protocol beside others, and a ``label`` so the SessionId's protocol matches the zone's
# ``l7``. It is its own SidLocation, so what Python extracts and what a kernel program steers
# by are the same by construction. A sidkit plugin written as a third-party one would be.
"""A session ID at a fixed offset of the UDP payload (the seed's offset/offlen)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

from sidkit import InputTypeError, InputValueError
from sidkit.extract import Guard, SidLocation
from sidkit.keys import MAX_IDLEN, SessionId
from sidkit.plugin import Option, ProtocolSpec, hookimpl

__all__ = ["NAME", "location"]

NAME: Final = "fixed"
_LABEL: Final = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


def show(value: object) -> str:
    """*value* for an error message, short and never raising: Python refuses to print an int
    of more than 4300 digits, so ``offset=16**5000`` must be described, not printed."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_offset(value: object) -> object:
    assert isinstance(value, int)
    if not 0 <= value <= 0xFFFF:
        raise InputValueError(f"offset={show(value)} must be 0..65535", code="bad-offset")
    return value


def _check_offlen(value: object) -> object:
    assert isinstance(value, int)
    if not 1 <= value <= MAX_IDLEN:
        raise InputValueError(
            f"offlen={show(value)} must be 1..MAX_IDLEN={MAX_IDLEN}", code="bad-offlen"
        )
    return value


def _check_guards(value: object) -> object:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"guards must be a sequence of (offset, mask, value), not {show(value)}",
            code="bad-guard",
        )
    guards: list[Guard] = []
    for item in value:
        if isinstance(item, Guard):
            guards.append(item)
        elif isinstance(item, tuple | list) and len(item) == 3:
            guards.append(Guard(*item))
        else:
            raise InputTypeError(
                f"a guard is an (offset, mask, value), not {show(item)}", code="bad-guard"
            )
    return tuple(guards)


def _check_label(value: object) -> object:
    assert isinstance(value, str)
    if not _LABEL.fullmatch(value):
        raise InputValueError(f"label {show(value)} is not a protocol name", code="bad-label")
    return value


SPEC: Final = ProtocolSpec(
    name=NAME,
    summary="offlen bytes at a fixed offset of the payload, behind optional byte guards",
    options=(
        Option(
            "offset",
            int,
            None,
            "where the ID starts (0 = first payload byte)",
            _check_offset,
            required=True,
        ),
        Option("offlen", int, None, f"ID length, 1..{MAX_IDLEN}", _check_offlen, required=True),
        Option(
            "guards",
            (tuple, list),
            (),
            "(offset, mask, value) byte tests that must pass",
            _check_guards,
        ),
        Option(
            "label", str, NAME, "protocol name put in the SessionId (the zone's l7)", _check_label
        ),
    ),
    references=("sidkit design: SID zone offset/offlen",),
)


def location(options: Mapping[str, object]) -> SidLocation:
    """The one :class:`~sidkit.extract.SidLocation` these options describe."""
    offset, offlen, guards = options["offset"], options["offlen"], options["guards"]
    assert isinstance(offset, int) and isinstance(offlen, int) and isinstance(guards, tuple)
    return SidLocation(offset, offlen, guards, 0, NAME)


@hookimpl
def sidkit_protocols() -> Sequence[ProtocolSpec]:
    """Declare the ``fixed`` protocol."""
    return (SPEC,)


@hookimpl
def sidkit_first_bytes(protocol: str, options: Mapping[str, object]) -> Collection[int] | None:
    """The first bytes that pass every guard on offset 0 (all 256 without such a guard)."""
    if protocol != NAME:
        return None
    guards = options["guards"]
    assert isinstance(guards, tuple)
    first = [g for g in guards if g.offset == 0]
    return [b for b in range(256) if all(b & g.mask == g.value for g in first)]


@hookimpl
def sidkit_extract(
    protocol: str,
    payload: bytes,
    options: Mapping[str, object],
) -> SessionId | None:
    """The bytes at offset..offset+offlen when the guards pass and the payload is long
    enough; ``None`` otherwise (as the kernel program would fall back to the tuple)."""
    if protocol != NAME:
        return None
    offset, offlen, guards = options["offset"], options["offlen"], options["guards"]
    assert isinstance(offset, int) and isinstance(offlen, int) and isinstance(guards, tuple)
    end = offset + offlen
    if len(payload) < end:
        return None
    for guard in guards:
        if len(payload) <= guard.offset or payload[guard.offset] & guard.mask != guard.value:
            return None
    label = options["label"]
    assert isinstance(label, str)
    return SessionId(label, payload[offset:end], {"offset": offset, "field": "fixed"})


@hookimpl
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """Exactly the extraction rule."""
    if protocol != NAME:
        return None
    return (location(options),)
