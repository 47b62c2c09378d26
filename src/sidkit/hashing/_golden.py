# Multiplicative hashes and the small integer helpers the socket tables use.
# hash_32/hash_64 changed constants and method in v4.7 (George Spelvin's "hash.h: Add
# hash_64 ... golden ratio" rework); both forms are here, the era is chosen by
# sidkit.kernel. reciprocal_scale maps a u32 hash onto [0, n) without a division -- it is
# how SO_REUSEPORT (4.5+) turns the flow hash into a socket index, so it is exact here.
"""hash_32, hash_64 (both eras), reciprocal_scale, next_pseudo_random32."""

from __future__ import annotations

from sidkit._errors import InputValueError
from sidkit._validate import check_uint, show

__all__ = [
    "GOLDEN_RATIO_32",
    "GOLDEN_RATIO_64",
    "GOLDEN_RATIO_PRIME_32",
    "GOLDEN_RATIO_PRIME_64",
    "hash_32",
    "hash_32_legacy",
    "hash_64",
    "hash_64_legacy",
    "hash_64_v46",
    "next_pseudo_random32",
    "reciprocal_scale",
]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN_RATIO_32 = 0x61C88647
"""``GOLDEN_RATIO_32`` in include/linux/hash.h, v4.7+."""
GOLDEN_RATIO_64 = 0x61C8864680B583EB
"""``GOLDEN_RATIO_64`` in include/linux/hash.h, v4.7+."""
GOLDEN_RATIO_PRIME_32 = 0x9E370001
"""``GOLDEN_RATIO_PRIME_32`` in include/linux/hash.h before v4.7."""
GOLDEN_RATIO_PRIME_64 = 0x9E37FFFFFFFC0001
"""``GOLDEN_RATIO_PRIME_64`` in include/linux/hash.h before v4.7."""


def _bits(bits: object, limit: int) -> int:
    b = check_uint(bits, 8, "bits")
    if not 1 <= b <= limit:
        # bits == 0 is undefined behaviour in C (a shift by the full width); refuse it.
        raise InputValueError(f"bits must be in 1..{limit}, got {b}", code="out-of-range")
    return b


def hash_32(val: int, bits: int) -> int:
    """The kernel's ``hash_32(val, bits)``: ``(val * GOLDEN_RATIO_32) >> (32 - bits)``.

    Kernel source: ``include/linux/hash.h`` ``hash_32()`` / ``__hash_32_generic()``,
    v4.7 to current (no architecture overrides it on x86-64 or arm64).
    """
    return ((check_uint(val, 32, "val") * GOLDEN_RATIO_32) & M32) >> (32 - _bits(bits, 32))


def hash_64(val: int, bits: int, *, bits_per_long: int = 64) -> int:
    """The kernel's ``hash_64(val, bits)`` (v4.7 to current), a **u32**.

    Kernel source: ``include/linux/hash.h`` ``hash_64_generic()``, which is declared to
    return ``u32``: on 64-bit kernels ``(val * GOLDEN_RATIO_64) >> (64 - bits)`` truncated
    to 32 bits, so ``bits`` above 32 keep only the low 32 bits of the shifted product (the
    kernel harness showed this; every in-tree caller uses ``bits <= 32``). On 32-bit kernels
    it folds to 32 bits first: ``hash_32((u32)val ^ __hash_32(val >> 32), bits)``.
    """
    v = check_uint(val, 64, "val")
    if bits_per_long == 64:
        return (((v * GOLDEN_RATIO_64) & M64) >> (64 - _bits(bits, 64))) & M32
    if bits_per_long == 32:
        folded = (v & M32) ^ (((v >> 32) * GOLDEN_RATIO_32) & M32)
        return hash_32(folded, bits)
    raise InputValueError(f"bits_per_long must be 32 or 64, got {show(bits_per_long)}")


def hash_32_legacy(val: int, bits: int) -> int:
    """``hash_32(val, bits)`` before v4.7: ``(val * GOLDEN_RATIO_PRIME_32) >> (32 - bits)``.

    Kernel source: ``include/linux/hash.h`` before v4.7.
    """
    return ((check_uint(val, 32, "val") * GOLDEN_RATIO_PRIME_32) & M32) >> (32 - _bits(bits, 32))


def hash_64_legacy(val: int, bits: int) -> int:
    """``hash_64(val, bits)`` before v4.6 (a u64), 64-bit kernels.

    Kernel source: ``include/linux/hash.h`` v2.6.12 to v4.5: the shift-and-add sequence
    ``n <<= 18; h -= n; n <<= 33; h -= n; n <<= 3; h += n; n <<= 3; h -= n; n <<= 4;
    h += n; n <<= 2; h += n`` (a multiplication by ``GOLDEN_RATIO_PRIME_64`` written out
    for CPUs with slow multipliers), then ``>> (64 - bits)``. Written here as the same
    sequence, not as the product, so a reader can hold it against the C. (From about v3.17
    64-bit kernels with a fast multiplier multiply instead; the value is the same.) In v4.6
    commit 689de1d6ca95 ("Minimal fix-up of bad hashing behavior of hash_64()") switched
    64-bit kernels to ``val * GOLDEN_RATIO_64 >> (64 - bits)`` still returning u64
    (:func:`hash_64_v46`); v4.7 made the result u32 (:func:`hash_64`). No compiled oracle
    reaches this era.
    """
    h = check_uint(val, 64, "val")
    b = _bits(bits, 64)
    n = h
    n = (n << 18) & M64
    h = (h - n) & M64
    n = (n << 33) & M64
    h = (h - n) & M64
    n = (n << 3) & M64
    h = (h + n) & M64
    n = (n << 3) & M64
    h = (h - n) & M64
    n = (n << 4) & M64
    h = (h + n) & M64
    n = (n << 2) & M64
    h = (h + n) & M64
    return h >> (64 - b)


def hash_64_v46(val: int, bits: int) -> int:
    """``hash_64(val, bits)`` of v4.6 on 64-bit kernels: ``val * GOLDEN_RATIO_64 >> (64 -
    bits)`` as a u64.

    Kernel source: ``include/linux/hash.h`` after commit 689de1d6ca95 (v4.6, Cc: stable);
    the v4.7 rework made the return type u32 (:func:`hash_64`). From the commit text; no
    compiled oracle.
    """
    return ((check_uint(val, 64, "val") * GOLDEN_RATIO_64) & M64) >> (64 - _bits(bits, 64))


def reciprocal_scale(val: int, ep_ro: int) -> int:
    """The kernel's ``reciprocal_scale(val, ep_ro)``: ``(u32)(((u64)val * ep_ro) >> 32)``.

    Kernel source: ``include/linux/kernel.h`` (v3.18 to v5.x) and ``include/linux/math.h``
    (later). Maps a uniformly distributed u32 onto ``[0, ep_ro)``; SO_REUSEPORT groups
    (v4.5+) pick socket ``reciprocal_scale(hash, num_socks)``.
    """
    if type(val) is int and type(ep_ro) is int and 0 <= val <= M32 and 0 <= ep_ro <= M32:
        return (val * ep_ro) >> 32
    return (check_uint(val, 32, "val") * check_uint(ep_ro, 32, "ep_ro")) >> 32


def next_pseudo_random32(seed: int) -> int:
    """The kernel's ``next_pseudo_random32(seed)``: ``seed * 1664525 + 1013904223`` (mod 2**32).

    Kernel source: ``include/linux/random.h``, later ``include/linux/prandom.h`` (about
    v5.9); removed by commit 3c0c81de525d ("prandom: remove next_pseudo_random32"), which went
    to mainline with the random-6.19-rc1 pull (v6.19; unverified, see ``sidkit eras -v``).
    The 3.9-4.4 SO_REUSEPORT score loop re-seeds with it to pick among equally scored
    sockets (and kept it as a fallback after v4.5).
    """
    return (check_uint(seed, 32, "seed") * 1664525 + 1013904223) & M32
