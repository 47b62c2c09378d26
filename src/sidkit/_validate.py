# Small argument checks shared by the pure functions. They exist so that a wrong argument
# fails at the boundary with a sidkit error that names the argument, instead of deep inside
# an arithmetic loop (or, worse, silently masked to 32 bits). Hot paths call them once per
# call; they are deliberately tiny.
"""Argument validation helpers (private)."""

from __future__ import annotations

from typing import Literal

from sidkit._errors import InputTypeError, InputValueError

BytesLike = bytes | bytearray | memoryview


def as_bytes(value: object, name: str) -> bytes:
    """Return *value* as ``bytes``; accept bytes, bytearray and memoryview only."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InputTypeError(
        f"{name} must be bytes, bytearray or memoryview, not {type(value).__name__}",
        code="not-bytes",
    )


def check_uint(value: object, bits: int, name: str) -> int:
    """Return *value* if it is an ``int`` in ``[0, 2**bits)``, else raise a sidkit error.

    ``bool`` is refused: ``True`` as a hash seed is always a mistake.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputTypeError(
            f"{name} must be an int (u{bits}), not {type(value).__name__}", code="not-int"
        )
    if value < 0 or value >> bits:
        raise InputValueError(
            f"{name}={value} does not fit in u{bits} (0..{(1 << bits) - 1})", code="out-of-range"
        )
    return value


def check_key(value: object, size: int, name: str = "key") -> bytes:
    """Return *value* as bytes of exactly *size* bytes."""
    key = as_bytes(value, name)
    if len(key) != size:
        raise InputValueError(f"{name} must be {size} bytes, got {len(key)}", code="bad-key-size")
    return key


ByteOrder = Literal["little", "big"]


def check_byteorder(value: object) -> ByteOrder:
    """Return *value* as a byte-order literal, or raise: a typo must not pick an order."""
    if value == "little":
        return "little"
    if value == "big":
        return "big"
    raise InputValueError(
        f"byteorder must be 'little' or 'big', got {value!r}", code="bad-byteorder"
    )
