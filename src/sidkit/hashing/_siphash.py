# SipHash as lib/siphash.c computes it. The kernel's siphash() is SipHash-2-4 over the
# bytes, keyed by siphash_key_t {u64 key[2]}; on a little-endian host the 16 key bytes
# are the reference implementation's key bytes. hsiphash() is the kernel's "half" SipHash:
# on 64-bit kernels it is really SipHash-1-3 with the result folded to 32 bits (lib/
# siphash.c says so: "on 64-bit, we make HalfSipHash1-3 actually be SipHash1-3"); on
# 32-bit kernels it is HalfSipHash-1-3 with an 8-byte key. The fixed-width helpers
# (siphash_1u64 ... siphash_3u32) are the same function over the words' memory image.
# Strategy: one loop per word size, the round function written out inline (function calls
# per round would double the cost); keys are checked for size, never truncated or padded.
"""SipHash-2-4, the kernel's hsiphash (SipHash-1-3 / HalfSipHash-1-3) and word helpers."""

from __future__ import annotations

from struct import Struct, iter_unpack

from sidkit._errors import InputValueError
from sidkit._validate import BytesLike, as_bytes, check_key, check_uint, show

__all__ = [
    "hsiphash",
    "siphash",
    "siphash_1u32",
    "siphash_1u64",
    "siphash_2u64",
    "siphash_3u32",
    "siphash_3u64",
    "siphash_4u64",
]

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF
_KEY = Struct("<2Q")
_HKEY32 = Struct("<2I")


# The round function is written out (not looped) because SipHash is on the hot path of
# every conntrack and flow-dissector model; a loop over rounds costs ~40% more here.


def _sip24(data: bytes, key: bytes) -> int:
    """SipHash-2-4 over *data* with a 16-byte little-endian key (u64)."""
    k0: int
    k1: int
    k0, k1 = _KEY.unpack(key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    end = n & ~7
    for (m,) in iter_unpack("<Q", data[:end]):
        v3 ^= m
        v0 = (v0 + v1) & M64
        v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
        v0 = ((v0 << 32) & M64) | (v0 >> 32)
        v2 = (v2 + v3) & M64
        v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
        v0 = (v0 + v3) & M64
        v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
        v2 = (v2 + v1) & M64
        v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
        v2 = ((v2 << 32) & M64) | (v2 >> 32)
        v0 = (v0 + v1) & M64
        v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
        v0 = ((v0 << 32) & M64) | (v0 >> 32)
        v2 = (v2 + v3) & M64
        v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
        v0 = (v0 + v3) & M64
        v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
        v2 = (v2 + v1) & M64
        v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
        v2 = ((v2 << 32) & M64) | (v2 >> 32)
        v0 ^= m
    m = ((n & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v3 ^= m
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 ^= m
    v2 ^= 0xFF
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    return v0 ^ v1 ^ v2 ^ v3


def _sip13(data: bytes, key: bytes) -> int:
    """SipHash-1-3 over *data* with a 16-byte little-endian key (u64)."""
    k0: int
    k1: int
    k0, k1 = _KEY.unpack(key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    end = n & ~7
    for (m,) in iter_unpack("<Q", data[:end]):
        v3 ^= m
        v0 = (v0 + v1) & M64
        v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
        v0 = ((v0 << 32) & M64) | (v0 >> 32)
        v2 = (v2 + v3) & M64
        v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
        v0 = (v0 + v3) & M64
        v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
        v2 = (v2 + v1) & M64
        v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
        v2 = ((v2 << 32) & M64) | (v2 >> 32)
        v0 ^= m
    m = ((n & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v3 ^= m
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 ^= m
    v2 ^= 0xFF
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    v0 = (v0 + v1) & M64
    v1 = ((v1 << 13) & M64 | (v1 >> 51)) ^ v0
    v0 = ((v0 << 32) & M64) | (v0 >> 32)
    v2 = (v2 + v3) & M64
    v3 = ((v3 << 16) & M64 | (v3 >> 48)) ^ v2
    v0 = (v0 + v3) & M64
    v3 = ((v3 << 21) & M64 | (v3 >> 43)) ^ v0
    v2 = (v2 + v1) & M64
    v1 = ((v1 << 17) & M64 | (v1 >> 47)) ^ v2
    v2 = ((v2 << 32) & M64) | (v2 >> 32)
    return v0 ^ v1 ^ v2 ^ v3


def _rol32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M32


def _halfsip(data: bytes, key: bytes) -> int:
    """HalfSipHash-1-3 as lib/siphash.c builds it for BITS_PER_LONG == 32."""
    k0: int
    k1: int
    k0, k1 = _HKEY32.unpack(key)
    v0, v1, v2, v3 = k0, k1, 0x6C796765 ^ k0, 0x74656462 ^ k1
    n = len(data)
    end = n - (n & 3)
    blocks = [int.from_bytes(data[i : i + 4], "little") for i in range(0, end, 4)]
    blocks.append(((n & 0xFF) << 24) | int.from_bytes(data[end:], "little"))

    def rnd(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
        v0 = (v0 + v1) & M32
        v1 = _rol32(v1, 5) ^ v0
        v0 = _rol32(v0, 16)
        v2 = (v2 + v3) & M32
        v3 = _rol32(v3, 8) ^ v2
        v0 = (v0 + v3) & M32
        v3 = _rol32(v3, 7) ^ v0
        v2 = (v2 + v1) & M32
        v1 = _rol32(v1, 13) ^ v2
        v2 = _rol32(v2, 16)
        return v0, v1, v2, v3

    for m in blocks:
        v3 ^= m
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    return v1 ^ v3


def siphash(data: BytesLike, key: BytesLike) -> int:
    """The kernel's ``siphash(data, len, key)``: SipHash-2-4, a u64.

    Kernel source: ``lib/siphash.c`` ``__siphash_aligned()`` / ``__siphash_unaligned()``
    (both compute the same value), v4.11 to current. *key* is the 16-byte memory image of
    ``siphash_key_t`` on a little-endian host (``key[0]`` then ``key[1]``, each LE), which is
    also the reference SipHash key. The length is folded in mod 256 (``len << 56``).
    """
    return _sip24(as_bytes(data, "data"), check_key(key, 16))


def hsiphash(data: BytesLike, key: BytesLike, *, bits_per_long: int = 64) -> int:
    """The kernel's ``hsiphash(data, len, key)``, a u32.

    Kernel source: ``lib/siphash.c``, v4.11 to current. On 64-bit kernels
    (``bits_per_long=64``, the default) it is SipHash-1-3 keyed by the 16-byte
    ``hsiphash_key_t`` and returns the low 32 bits of ``v0^v1^v2^v3``. On 32-bit kernels
    (``bits_per_long=32``) it is HalfSipHash-1-3 keyed by 8 bytes, returning ``v1^v3``.
    """
    raw = as_bytes(data, "data")
    if bits_per_long == 64:
        return _sip13(raw, check_key(key, 16)) & M32
    if bits_per_long == 32:
        return _halfsip(raw, check_key(key, 8))
    raise InputValueError(f"bits_per_long must be 32 or 64, got {show(bits_per_long)}")


def siphash_1u64(first: int, key: BytesLike) -> int:
    """``siphash_1u64(first, key)`` (lib/siphash.c, v4.11+): SipHash-2-4 of one u64's LE bytes."""
    return _sip24(check_uint(first, 64, "first").to_bytes(8, "little"), check_key(key, 16))


def siphash_2u64(first: int, second: int, key: BytesLike) -> int:
    """``siphash_2u64(first, second, key)`` (lib/siphash.c, v4.11+)."""
    data = b"".join(
        check_uint(v, 64, n).to_bytes(8, "little")
        for v, n in ((first, "first"), (second, "second"))
    )
    return _sip24(data, check_key(key, 16))


def siphash_3u64(first: int, second: int, third: int, key: BytesLike) -> int:
    """``siphash_3u64(first, second, third, key)`` (lib/siphash.c, v4.11+)."""
    vals = ((first, "first"), (second, "second"), (third, "third"))
    data = b"".join(check_uint(v, 64, n).to_bytes(8, "little") for v, n in vals)
    return _sip24(data, check_key(key, 16))


def siphash_4u64(first: int, second: int, third: int, forth: int, key: BytesLike) -> int:
    """``siphash_4u64(first, second, third, forth, key)`` (lib/siphash.c, v4.11+).

    (``forth`` is the kernel's own spelling of the parameter.) nf_conntrack hashes its
    tuple with this in v6.2 to v6.4.
    """
    vals = ((first, "first"), (second, "second"), (third, "third"), (forth, "forth"))
    data = b"".join(check_uint(v, 64, n).to_bytes(8, "little") for v, n in vals)
    return _sip24(data, check_key(key, 16))


def siphash_1u32(first: int, key: BytesLike) -> int:
    """``siphash_1u32(first, key)`` (lib/siphash.c, v4.11+): SipHash-2-4 of 4 LE bytes."""
    return _sip24(check_uint(first, 32, "first").to_bytes(4, "little"), check_key(key, 16))


def siphash_3u32(first: int, second: int, third: int, key: BytesLike) -> int:
    """``siphash_3u32(first, second, third, key)`` (lib/siphash.c, v4.11+): 12 LE bytes."""
    vals = ((first, "first"), (second, "second"), (third, "third"))
    data = b"".join(check_uint(v, 32, n).to_bytes(4, "little") for v, n in vals)
    return _sip24(data, check_key(key, 16))
