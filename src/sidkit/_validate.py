# Small argument checks shared by the pure functions. They exist so that a wrong argument
# fails at the boundary with a sidkit error that names the argument, instead of deep inside
# an arithmetic loop (or, worse, silently masked to 32 bits). Hot paths call them once per
# call; they are deliberately tiny.
"""Argument validation helpers (private)."""

from __future__ import annotations

import math
from typing import Any, Literal

from sidkit._errors import InputTypeError, InputValueError, SidkitError

BytesLike = bytes | bytearray | memoryview

#: Longest rendering of a caller's value that an error message quotes.
_SHOW_LIMIT = 60


def show(value: object, limit: int = _SHOW_LIMIT) -> str:
    """*value* as an error message may quote it: short, and never raising itself.

    ``f"{value!r}"`` is not safe in an error path. Python refuses to print an ``int`` of more
    than 4300 decimal digits (``sys.get_int_max_str_digits``, CVE-2020-10735), so the message
    for ``jhash_1word(16**5000)`` would raise a foreign ``ValueError`` instead of the sidkit
    error that describes it; a caller's own ``__repr__`` may raise or return a megabyte. Big
    ints are shown by size and their leading hex digits (hex has no digit limit), everything
    else by a ``repr`` cut to *limit* characters.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        sign = "-" if value < 0 else ""
        digits = f"{abs(value):x}"
        return f"{sign}0x{digits[:8]}... (an int of {value.bit_length()} bits)"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


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
            f"{name}={show(value)} does not fit in u{bits} (0..{(1 << bits) - 1})",
            code="out-of-range",
        )
    return value


def check_int(value: object, low: int, high: int, name: str, *, code: str = "out-of-range") -> int:
    """Return *value* if it is an ``int`` (not ``bool``) in ``[low, high]``, else raise.

    The message quotes the value through :func:`show`, so a huge int is reported, not
    re-raised as Python's int-to-str limit error.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputTypeError(
            f"{name} must be an int in {low}..{high}, not {type(value).__name__}", code="not-int"
        )
    if not low <= value <= high:
        raise InputValueError(f"{name}={show(value)} must be in {low}..{high}", code=code)
    return value


def check_finite(value: object, name: str) -> float:
    """Return *value* as a ``float`` if it is a finite real number (not ``bool``), else raise.

    NaN compares false with everything, so a NaN that slipped into a clock or a timeout
    would silently switch a comparison off; infinity and numbers beyond ``float`` likewise.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputTypeError(
            f"{name} must be a number, not {type(value).__name__}", code="not-number"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InputValueError(f"{name}={show(value)} is not a finite number", code="not-finite")
    return number


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
        f"byteorder must be 'little' or 'big', got {show(value)}", code="bad-byteorder"
    )


def as_list(value: object, name: str, what: str = "a sequence") -> list[Any]:
    """*value* as a list of its items, refusing what is not a collection.

    ``str``/``bytes`` are refused although they iterate: a path or a name given where a
    list of them belongs would otherwise be read character by character. A generator is
    consumed here, once, so the caller can walk the list as often as it needs.
    """
    if isinstance(value, str | bytes | bytearray | memoryview) or not hasattr(value, "__iter__"):
        raise InputTypeError(
            f"{name} must be {what}, not {type(value).__name__}", code="not-a-sequence"
        )
    try:
        return list(value)  # type: ignore[call-overload,unused-ignore]
    except SidkitError:
        raise
    except Exception as exc:
        raise InputTypeError(
            f"{name} could not be read as {what}: {type(exc).__name__}", code="not-a-sequence"
        ) from exc


def check_choice(value: object, choices: tuple[str, ...], name: str) -> str:
    """Return *value* if it is one of the strings *choices*, else a sidkit error quoting it
    through :func:`show` (an unhashable or huge value must not break the check itself)."""
    if isinstance(value, str) and value in choices:
        return value
    raise InputValueError(
        f"{name} must be one of {', '.join(map(repr, choices))}, got {show(value)}",
        code="bad-choice",
    )


def check_callable(value: object, name: str, *, optional: bool = False) -> None:
    """Refuse a *value* that cannot be called (None passes when *optional*)."""
    if (optional and value is None) or callable(value):
        return
    raise InputTypeError(
        f"{name} must be callable{' or None' if optional else ''}, not {type(value).__name__}",
        code="not-callable",
    )
