# Strategy: the numpy half of sidkit.hashing.batch -- argument conversion at the entry and the
# arithmetic cores. Every argument becomes a 1-D (or, for keys, 2-D) numpy array here, checked
# once for type, shape and range with sidkit's errors, so the cores below never see a value the
# scalar function would have refused. The cores run the kernel's C arithmetic column-wise: one
# numpy operation per C statement over all n inputs at once, uint32 / uint64 arithmetic
# wrapping exactly where the C types wrap. They are written for keys of one length per call
# (the loop over 12- or 8-byte blocks is a Python loop of length/12 steps, not n steps).
# Numpy is imported here and only here: a missing numpy is one sidkit error at import.
"""Input conversion and numpy cores of the batch hashes (private; see sidkit.hashing.batch)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from typing import Any

from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit._validate import check_uint
from sidkit.hashing._inet import parse_ip

__all__ = [
    "U8",
    "U32",
    "U64",
    "BulkUnavailableError",
    "as_addresses",
    "as_keys",
    "as_u32",
    "as_uints",
    "as_words",
    "be16",
    "broadcast",
    "final3",
    "halfsip13",
    "host_words",
    "le_words",
    "length_of",
    "mix2",
    "mix3",
    "np",
    "rol32",
    "sip",
    "sip_bytes",
]


class BulkUnavailableError(SidkitError, ImportError):
    """sidkit.hashing.batch needs numpy, which is not installed (``pip install 'sidkit[bulk]'``)."""

    code = "missing-numpy"


try:
    import numpy as np
    import numpy.typing as npt
except ImportError:  # pragma: no cover - exercised by a subprocess test without numpy
    raise BulkUnavailableError(
        "sidkit.hashing.batch needs numpy: install it with pip install 'sidkit[bulk]'"
    ) from None

# The aliases name the dtype a value holds; numpy's stubs widen uint arithmetic with Python
# ints to signed types, so they are all NDArray[Any] to mypy.
U8 = npt.NDArray[Any]
U32 = npt.NDArray[Any]
U64 = npt.NDArray[Any]

M32 = 0xFFFFFFFF
_BYTES = (bytes, bytearray, memoryview)


# --- argument conversion -------------------------------------------------------------------


def as_keys(keys: object, name: str = "keys") -> U8:
    """*keys* as a C-contiguous ``(n, length)`` uint8 array: a 2-D uint8 array as it is, or a
    sequence of equal-length bytes-like objects joined."""
    if isinstance(keys, np.ndarray):
        if keys.dtype != np.uint8:
            raise InputTypeError(
                f"{name} must be a uint8 array, not dtype {keys.dtype}", code="bad-dtype"
            )
        if keys.ndim != 2:
            raise InputValueError(
                f"{name} must be 2-D (n keys x length), got {keys.ndim}-D", code="bad-shape"
            )
        return np.ascontiguousarray(keys)
    if isinstance(keys, str | bytes | bytearray | memoryview) or not isinstance(keys, Sequence):
        raise InputTypeError(
            f"{name} must be a 2-D uint8 array or a sequence of equal-length bytes, "
            f"not {type(keys).__name__}",
            code="not-keys",
        )
    n = len(keys)
    if n == 0:
        return np.zeros((0, 0), np.uint8)
    try:
        joined = b"".join(keys)
    except TypeError:
        for i, k in enumerate(keys):
            if not isinstance(k, _BYTES):
                raise InputTypeError(
                    f"{name}[{i}] must be bytes, bytearray or memoryview, not {type(k).__name__}",
                    code="not-bytes",
                ) from None
        raise
    lengths = set(map(len, keys))
    if len(lengths) != 1:
        first = len(keys[0])
        i = next(i for i, k in enumerate(keys) if len(k) != first)
        raise InputValueError(
            f"{name} must all have one length: {name}[0] has {first} bytes, "
            f"{name}[{i}] has {len(keys[i])}",
            code="bad-length",
        )
    length = lengths.pop()
    if len(joined) != n * length:
        raise InputValueError(
            f"{name}: memoryviews must have a byte format (len() must count bytes)",
            code="bad-length",
        )
    return np.frombuffer(joined, np.uint8).reshape(n, length)


def as_uints(value: object, bits: int, name: str) -> U64:
    """*value* (an int, a sequence of ints, or a 1-D integer array) as a 1-D uint64 array of
    values in ``[0, 2**bits)``; a lone int becomes one element (it broadcasts)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return np.array([check_uint(value, bits, name)], np.uint64)
    if isinstance(value, np.ndarray):
        arr: np.ndarray[Any, Any] = value
        if arr.dtype.kind not in "ui":
            raise InputTypeError(
                f"{name} must hold integers (u{bits}), not dtype {arr.dtype}", code="not-int"
            )
    elif isinstance(value, str | bytes | bytearray | memoryview) or not isinstance(value, Sequence):
        raise InputTypeError(
            f"{name} must be an int, a sequence of ints or an integer array (u{bits}), "
            f"not {type(value).__name__}",
            code="not-int",
        )
    elif len(value) == 0:
        return np.zeros(0, np.uint64)
    else:
        if bool in set(map(type, value)):
            i = next(i for i, v in enumerate(value) if isinstance(v, bool))
            check_uint(value[i], bits, f"{name}[{i}]")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError):
            arr = np.asarray(value, dtype=object)
        if arr.dtype.kind not in "ui" or arr.ndim != 1:
            for i, v in enumerate(value):  # the first element the scalar check refuses
                check_uint(v, bits, f"{name}[{i}]")
            arr = np.array(value, dtype=np.uint64)  # all ints in range; some >= 2**63
    if arr.ndim != 1:
        raise InputValueError(f"{name} must be 1-D, got {arr.ndim}-D", code="bad-shape")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >> bits:
            bad = int(np.argmax(arr < 0)) if lo < 0 else int(np.argmax(arr == hi))
            check_uint(int(arr[bad]), bits, f"{name}[{bad}]")
    return arr.astype(np.uint64)


def as_u32(value: object, name: str) -> U32:
    """:func:`as_uints` for u32 arguments, as a uint32 array."""
    return as_uints(value, 32, name).astype(np.uint32)


def as_words(words: object, name: str = "words") -> U32:
    """*words* as an ``(n, length)`` uint32 array: a 2-D integer array, or a sequence of
    equal-length sequences of u32 ints."""
    if isinstance(words, np.ndarray):
        if words.dtype.kind not in "ui":
            raise InputTypeError(
                f"{name} must hold integers (u32), not dtype {words.dtype}", code="not-int"
            )
        if words.ndim != 2:
            raise InputValueError(
                f"{name} must be 2-D (n inputs x words), got {words.ndim}-D", code="bad-shape"
            )
        flat = as_uints(words.reshape(-1), 32, name)
        return np.ascontiguousarray(flat.astype(np.uint32).reshape(words.shape))
    if isinstance(words, str | bytes | bytearray | memoryview) or not isinstance(words, Sequence):
        raise InputTypeError(
            f"{name} must be a 2-D integer array or a sequence of word sequences, "
            f"not {type(words).__name__}",
            code="not-words",
        )
    n = len(words)
    if n == 0:
        return np.zeros((0, 0), np.uint32)
    rows = []
    for i, row in enumerate(words):
        if isinstance(row, str | bytes | bytearray | memoryview) or not isinstance(row, Sequence):
            raise InputTypeError(
                f"{name}[{i}] must be a sequence of u32 ints, not {type(row).__name__}",
                code="not-words",
            )
        rows.append(row)
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputValueError(
                f"{name} must all have one length: {name}[0] has {width} words, "
                f"{name}[{i}] has {len(row)}",
                code="bad-length",
            )
    flat = as_uints([w for row in rows for w in row], 32, name)
    return flat.astype(np.uint32).reshape(n, width)


def length_of(name_values: Sequence[tuple[str, int]]) -> int:
    """The common length of broadcast arguments (each 1 or n), or a sidkit error naming them."""
    n = 1
    for _name, size in name_values:
        if size != 1:
            if n not in (1, size):
                sizes = ", ".join(f"{nm} {sz}" for nm, sz in name_values)
                raise InputValueError(
                    f"arguments must have one length (or be single values): {sizes}",
                    code="bad-length",
                )
            n = size
    return n


def broadcast(n: int, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """*arr* (length 1 or *n*) as length *n*."""
    return arr if len(arr) == n else np.broadcast_to(arr, (n, *arr.shape[1:]))


def _packed_one(addr: object, name: str, cache: dict[object, bytes]) -> bytes:
    try:
        hit = cache.get(addr)
    except TypeError:  # unhashable: parse_ip will say what it is
        hit = None
    if hit is None:
        hit = parse_ip(addr, name).packed
        with contextlib.suppress(TypeError):
            cache[addr] = hit
    return hit


def as_addresses(addrs: object, name: str, version: int | None) -> tuple[U8, U8]:
    """Addresses as ``(packed, versions)``: an ``(n, 16)`` uint8 array holding each address's
    network-order bytes (IPv4 in the first 4, the rest zero, as ``union nf_inet_addr``) and
    an ``(n,)`` array of 4 or 6. *addrs* is one address (text, packed bytes, an ``ipaddress``
    object; it broadcasts), a sequence of them, or an ``(n, 4)`` / ``(n, 16)`` uint8 array of
    packed addresses. *version* 4 or 6 refuses the other family."""
    if isinstance(addrs, np.ndarray):
        if addrs.dtype != np.uint8 or addrs.ndim != 2 or addrs.shape[1] not in (4, 16):
            raise InputValueError(
                f"{name} as an array must be (n, 4) or (n, 16) uint8 (packed addresses), "
                f"got shape {addrs.shape} dtype {addrs.dtype}",
                code="bad-address",
            )
        width = addrs.shape[1]
        packed = np.zeros((addrs.shape[0], 16), np.uint8)
        packed[:, :width] = addrs
        versions = np.full(addrs.shape[0], 4 if width == 4 else 6, np.uint8)
    else:
        single = isinstance(addrs, str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address)
        if single:
            items: Sequence[object] = [addrs]
        elif isinstance(addrs, Sequence) and not isinstance(addrs, bytearray | memoryview):
            items = addrs
        else:
            raise InputTypeError(
                f"{name} must be an address, a sequence of addresses or an (n, 4|16) uint8 "
                f"array, not {type(addrs).__name__}",
                code="bad-address",
            )
        cache: dict[object, bytes] = {}
        raw = [
            _packed_one(a, name if single else f"{name}[{i}]", cache) for i, a in enumerate(items)
        ]
        v4 = [len(p) == 4 for p in raw]
        joined = b"".join(p + bytes(12) if len(p) == 4 else p for p in raw)
        packed = np.frombuffer(joined, np.uint8).reshape(len(raw), 16)
        versions = np.where(np.array(v4, bool), 4, 6).astype(np.uint8)
    if version is not None and len(versions) and (versions != version).any():
        i = int(np.argmax(versions != version))
        raise InputValueError(
            f"{name}[{i}] must be an IPv{version} address"
            if len(versions) > 1
            else f"{name} must be an IPv{version} address",
            code="bad-address",
        )
    return packed, versions


def host_words(packed: U8, count: int, byteorder: str) -> U32:
    """The first *count* ``__be32`` words of packed addresses as host integers
    (``(__force u32)``) on a host of *byteorder*: an ``(n, count)`` uint32 array."""
    dt = "<u4" if byteorder == "little" else ">u4"
    words = np.ascontiguousarray(packed[:, : 4 * count]).view(dt)
    return words.astype(np.uint32)


def be16(port: U32, byteorder: str) -> U32:
    """``(__force u32)`` of a ``__be16`` port given in host order."""
    if byteorder == "little":
        return ((port & 0xFF) << 8) | (port >> 8)
    return port


# --- cores -------------------------------------------------------------------------------------


def rol32(x: U32, r: int) -> U32:
    return (x << r) | (x >> (32 - r))


def final3(a: U32, b: U32, c: U32) -> U32:
    """lookup3's ``__jhash_final(a, b, c)``; returns c."""
    c = (c ^ b) - rol32(b, 14)
    a = (a ^ c) - rol32(c, 11)
    b = (b ^ a) - rol32(a, 25)
    c = (c ^ b) - rol32(b, 16)
    a = (a ^ c) - rol32(c, 4)
    b = (b ^ a) - rol32(a, 14)
    return (c ^ b) - rol32(b, 24)


def mix3(a: U32, b: U32, c: U32) -> tuple[U32, U32, U32]:
    """lookup3's ``__jhash_mix(a, b, c)``."""
    a = (a - c) ^ rol32(c, 4)
    c = c + b
    b = (b - a) ^ rol32(a, 6)
    a = a + c
    c = (c - b) ^ rol32(b, 8)
    b = b + a
    a = (a - c) ^ rol32(c, 16)
    c = c + b
    b = (b - a) ^ rol32(a, 19)
    a = a + c
    c = (c - b) ^ rol32(b, 4)
    b = b + a
    return a, b, c


def mix2(a: U32, b: U32, c: U32) -> tuple[U32, U32, U32]:
    """lookup2's ``__jhash_mix(a, b, c)`` (before v2.6.38)."""
    a = (a - b - c) ^ (c >> 13)
    b = (b - c - a) ^ (a << 8)
    c = (c - a - b) ^ (b >> 13)
    a = (a - b - c) ^ (c >> 12)
    b = (b - c - a) ^ (a << 16)
    c = (c - a - b) ^ (b >> 5)
    a = (a - b - c) ^ (c >> 3)
    b = (b - c - a) ^ (a << 10)
    c = (c - a - b) ^ (b >> 15)
    return a, b, c


def le_words(keys: U8, width: int) -> U32 | U64:
    """Rows of *keys*, zero-padded to a multiple of *width* bytes, as little-endian words of
    *width* bytes (4 -> uint32, 8 -> uint64): the kernel's ``get_unaligned_le32/64``."""
    n, length = keys.shape
    pad = -length % width
    if pad:
        keys = np.concatenate([keys, np.zeros((n, pad), np.uint8)], axis=1)
    view = np.ascontiguousarray(keys).view("<u4" if width == 4 else "<u8")
    return view.astype(np.uint32 if width == 4 else np.uint64)


def _sipround(v0: U64, v1: U64, v2: U64, v3: U64) -> tuple[U64, U64, U64, U64]:
    v0 = v0 + v1
    v1 = ((v1 << 13) | (v1 >> 51)) ^ v0
    v0 = (v0 << 32) | (v0 >> 32)
    v2 = v2 + v3
    v3 = ((v3 << 16) | (v3 >> 48)) ^ v2
    v0 = v0 + v3
    v3 = ((v3 << 21) | (v3 >> 43)) ^ v0
    v2 = v2 + v1
    v1 = ((v1 << 17) | (v1 >> 47)) ^ v2
    v2 = (v2 << 32) | (v2 >> 32)
    return v0, v1, v2, v3


def sip(blocks: U64, last: U64, k0: U64, k1: U64, c_rounds: int, d_rounds: int) -> U64:
    """SipHash-c-d over ``(n, nb)`` full message words and the final word *last* (tail bytes
    plus ``len << 56``), keyed by *k0*/*k1* (arrays that broadcast); returns ``v0^v1^v2^v3``."""
    n = len(last)
    v0 = np.broadcast_to(k0 ^ np.uint64(0x736F6D6570736575), (n,)).copy()
    v1 = np.broadcast_to(k1 ^ np.uint64(0x646F72616E646F6D), (n,)).copy()
    v2 = np.broadcast_to(k0 ^ np.uint64(0x6C7967656E657261), (n,)).copy()
    v3 = np.broadcast_to(k1 ^ np.uint64(0x7465646279746573), (n,)).copy()
    for j in range(blocks.shape[1] + 1):
        m = blocks[:, j] if j < blocks.shape[1] else last
        v3 ^= m
        for _ in range(c_rounds):
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= np.uint64(0xFF)
    for _ in range(d_rounds):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def sip_bytes(data: U8, k0: U64, k1: U64, c_rounds: int, d_rounds: int) -> U64:
    """SipHash-c-d of each row of *data* (one length for all rows)."""
    n, length = data.shape
    full = length // 8
    words = le_words(data, 8)
    tail = words[:, full] if words.shape[1] > full else np.zeros(n, np.uint64)
    last = tail | np.uint64((length & 0xFF) << 56)
    return sip(words[:, :full], last, k0, k1, c_rounds, d_rounds)


def _halfround(v0: U32, v1: U32, v2: U32, v3: U32) -> tuple[U32, U32, U32, U32]:
    v0 = v0 + v1
    v1 = rol32(v1, 5) ^ v0
    v0 = rol32(v0, 16)
    v2 = v2 + v3
    v3 = rol32(v3, 8) ^ v2
    v0 = v0 + v3
    v3 = rol32(v3, 7) ^ v0
    v2 = v2 + v1
    v1 = rol32(v1, 13) ^ v2
    v2 = rol32(v2, 16)
    return v0, v1, v2, v3


def halfsip13(data: U8, k0: int, k1: int) -> U32:
    """HalfSipHash-1-3 of each row (lib/siphash.c, BITS_PER_LONG == 32), returning v1^v3."""
    n, length = data.shape
    full = length // 4
    words = le_words(data, 4)
    tail = words[:, full] if words.shape[1] > full else np.zeros(n, np.uint32)
    last = tail | np.uint32(((length & 0xFF) << 24) & M32)
    v0 = np.full(n, k0, np.uint32)
    v1 = np.full(n, k1, np.uint32)
    v2 = np.full(n, 0x6C796765 ^ k0, np.uint32)
    v3 = np.full(n, 0x74656462 ^ k1, np.uint32)
    for j in range(full + 1):
        m = words[:, j] if j < full else last
        v3 ^= m
        v0, v1, v2, v3 = _halfround(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= np.uint32(0xFF)
    for _ in range(3):
        v0, v1, v2, v3 = _halfround(v0, v1, v2, v3)
    return v1 ^ v3
