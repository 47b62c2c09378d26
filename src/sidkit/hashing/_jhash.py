# Bob Jenkins' hashes as the Linux kernel compiles them. Two algorithms matter:
#   lookup3 (include/linux/jhash.h, v2.6.38 and later) -- the modern default;
#   lookup2 (include/linux/jhash.h, v2.6.12 .. v2.6.36) -- older kernels, reachable
#   through a kernel profile (sidkit.kernel).
# Strategy: pure functions of (bytes | ints, u32) -> u32, written out flat with local
# variables because this is the hot path of every model above it (a 16-byte jhash is one
# mix and one final: unrolled it costs ~1 microsecond in CPython; a loop of helper calls
# would cost three times that). Arguments are validated once at the top; the arithmetic
# masks every step to 32 bits exactly where the C code's u32 wraps.
"""Linux jhash: lookup3 (2.6.38+) and lookup2 (before 2.6.38)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import Struct
from typing import NamedTuple

from sidkit._errors import InputTypeError
from sidkit._validate import BytesLike, check_uint

__all__ = [
    "JHASH_GOLDEN_RATIO",
    "JHASH_INITVAL",
    "WORD_HASHES",
    "WordHashes",
    "jhash",
    "jhash2",
    "jhash2_lookup2",
    "jhash_1word",
    "jhash_1word_lookup2",
    "jhash_1word_pre41",
    "jhash_2words",
    "jhash_2words_lookup2",
    "jhash_2words_pre41",
    "jhash_3words",
    "jhash_3words_lookup2",
    "jhash_3words_pre41",
    "jhash_lookup2",
]

M32 = 0xFFFFFFFF
JHASH_INITVAL = 0xDEADBEEF
"""lookup3's arbitrary start value (``JHASH_INITVAL`` in include/linux/jhash.h)."""
JHASH_GOLDEN_RATIO = 0x9E3779B9
"""lookup2's start value (``JHASH_GOLDEN_RATIO`` in include/linux/jhash.h before 2.6.38)."""

_W3 = Struct("<3I")


def _key_bytes(key: object) -> bytes | bytearray | memoryview:
    if isinstance(key, bytes | bytearray):
        return key
    if isinstance(key, memoryview):
        return key.cast("B") if key.format != "B" or key.ndim != 1 else key
    raise InputTypeError(
        f"key must be bytes, bytearray or memoryview, not {type(key).__name__}", code="not-bytes"
    )


def _u32(v: object, name: str) -> int:
    if type(v) is int and 0 <= v <= M32:
        return v
    return check_uint(v, 32, name)


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final`` of lookup3; returns c.

    The rotated terms are not masked: their bits above 32 only reach bits above 32 of the
    difference, which the single mask per line removes; every value that is rotated next
    has been masked. (Measured: a third faster than masking each rotation.)
    """
    c = ((c ^ b) - ((b << 14) | (b >> 18))) & M32
    a = ((a ^ c) - ((c << 11) | (c >> 21))) & M32
    b = ((b ^ a) - ((a << 25) | (a >> 7))) & M32
    c = ((c ^ b) - ((b << 16) | (b >> 16))) & M32
    a = ((a ^ c) - ((c << 4) | (c >> 28))) & M32
    b = ((b ^ a) - ((a << 14) | (a >> 18))) & M32
    return ((c ^ b) - ((b << 24) | (b >> 8))) & M32


def jhash(key: BytesLike, initval: int = 0) -> int:
    """Hash *key* with the kernel's ``jhash(key, length, initval)`` (lookup3).

    Kernel source: ``include/linux/jhash.h`` ``jhash()``, v2.6.38 to current (6.18). Words are
    read with ``__get_unaligned_cpu32``, i.e. little-endian on the x86-64/arm64 hosts this
    models (lookup3's ``hashlittle``). A key of length 0 returns the start value
    ``0xdeadbeef + initval`` unmixed, exactly as the C ``case 0`` does.
    """
    k = key if type(key) is bytes else _key_bytes(key)
    if type(initval) is not int or not 0 <= initval <= M32:
        _u32(initval, "initval")
    length = len(k)
    a = b = c = (JHASH_INITVAL + length + initval) & M32
    off = 0
    unpack = _W3.unpack_from
    while length > 12:
        x, y, z = unpack(k, off)
        a = (a + x) & M32
        b = (b + y) & M32
        c = (c + z) & M32
        # __jhash_mix
        a = ((a - c) ^ ((c << 4) | (c >> 28))) & M32
        c = (c + b) & M32
        b = ((b - a) ^ ((a << 6) | (a >> 26))) & M32
        a = (a + c) & M32
        c = ((c - b) ^ ((b << 8) | (b >> 24))) & M32
        b = (b + a) & M32
        a = ((a - c) ^ ((c << 16) | (c >> 16))) & M32
        c = (c + b) & M32
        b = ((b - a) ^ ((a << 19) | (a >> 13))) & M32
        a = (a + c) & M32
        c = ((c - b) ^ ((b << 4) | (b >> 28))) & M32
        b = (b + a) & M32
        length -= 12
        off += 12
    if length == 0:
        return c
    tail = int.from_bytes(k[off:], "little")
    a = (a + (tail & M32)) & M32
    if length > 4:
        b = (b + ((tail >> 32) & M32)) & M32
        if length > 8:
            c = (c + (tail >> 64)) & M32
    # __jhash_final, inlined (see _final)
    c = ((c ^ b) - ((b << 14) | (b >> 18))) & M32
    a = ((a ^ c) - ((c << 11) | (c >> 21))) & M32
    b = ((b ^ a) - ((a << 25) | (a >> 7))) & M32
    c = ((c ^ b) - ((b << 16) | (b >> 16))) & M32
    a = ((a ^ c) - ((c << 4) | (c >> 28))) & M32
    b = ((b ^ a) - ((a << 14) | (a >> 18))) & M32
    return ((c ^ b) - ((b << 24) | (b >> 8))) & M32


def _words(words: object) -> Sequence[int]:
    if isinstance(words, bytes | bytearray | memoryview | str) or not isinstance(words, Sequence):
        raise InputTypeError(
            f"words must be a sequence of u32 ints, not {type(words).__name__}", code="not-words"
        )
    for i, w in enumerate(words):
        if type(w) is not int or not 0 <= w <= M32:
            check_uint(w, 32, f"words[{i}]")
    return words


def jhash2(words: Sequence[int], initval: int = 0) -> int:
    """Hash a sequence of u32 words with the kernel's ``jhash2(k, length, initval)`` (lookup3).

    Kernel source: ``include/linux/jhash.h`` ``jhash2()``, v2.6.38 to current. Equals
    lookup3's ``hashword``. *words* are host-order u32 values, as the C array holds them.
    """
    w = _words(words)
    iv = _u32(initval, "initval")
    length = len(w)
    a = b = c = (JHASH_INITVAL + (length << 2) + iv) & M32
    i = 0
    while length > 3:
        a = (a + w[i]) & M32
        b = (b + w[i + 1]) & M32
        c = (c + w[i + 2]) & M32
        a = ((a - c) ^ ((c << 4) | (c >> 28))) & M32
        c = (c + b) & M32
        b = ((b - a) ^ ((a << 6) | (a >> 26))) & M32
        a = (a + c) & M32
        c = ((c - b) ^ ((b << 8) | (b >> 24))) & M32
        b = (b + a) & M32
        a = ((a - c) ^ ((c << 16) | (c >> 16))) & M32
        c = (c + b) & M32
        b = ((b - a) ^ ((a << 19) | (a >> 13))) & M32
        a = (a + c) & M32
        c = ((c - b) ^ ((b << 4) | (b >> 28))) & M32
        b = (b + a) & M32
        length -= 3
        i += 3
    if length == 0:
        return c
    a = (a + w[i]) & M32
    if length > 1:
        b = (b + w[i + 1]) & M32
        if length > 2:
            c = (c + w[i + 2]) & M32
    return _final(a, b, c)


def jhash_3words(a: int, b: int, c: int, initval: int = 0) -> int:
    """The kernel's ``jhash_3words(a, b, c, initval)`` (lookup3, v4.1+ form).

    Kernel source: ``include/linux/jhash.h`` ``jhash_3words()`` / ``__jhash_nwords()``,
    v4.1 to current (Alexander Duyck's "jhash: Update jhash_[321]words functions to use
    correct initval"): ``__jhash_final`` of ``(a, b, c) + initval + JHASH_INITVAL + 12``.
    v2.6.38 to v4.0 used :func:`jhash_3words_pre41`. This is the hash behind
    ``inet_ehashfn`` and ``udp_ehashfn``, so it picks the SO_REUSEPORT socket for every UDP
    datagram on a current kernel.
    """
    if not (
        type(a) is int
        and type(b) is int
        and type(c) is int
        and type(initval) is int
        and 0 <= a <= M32
        and 0 <= b <= M32
        and 0 <= c <= M32
        and 0 <= initval <= M32
    ):
        _u32(a, "a"), _u32(b, "b"), _u32(c, "c"), _u32(initval, "initval")
    iv = initval + 0xDEADBEEF + 12
    a = (a + iv) & M32
    b = (b + iv) & M32
    c = (c + iv) & M32
    c = ((c ^ b) - ((b << 14) | (b >> 18))) & M32
    a = ((a ^ c) - ((c << 11) | (c >> 21))) & M32
    b = ((b ^ a) - ((a << 25) | (a >> 7))) & M32
    c = ((c ^ b) - ((b << 16) | (b >> 16))) & M32
    a = ((a ^ c) - ((c << 4) | (c >> 28))) & M32
    b = ((b ^ a) - ((a << 14) | (a >> 18))) & M32
    return ((c ^ b) - ((b << 24) | (b >> 8))) & M32


def jhash_2words(a: int, b: int, initval: int = 0) -> int:
    """The kernel's ``jhash_2words(a, b, initval)`` (lookup3, v4.1+): start value + 8."""
    iv = (_u32(initval, "initval") + JHASH_INITVAL + 8) & M32
    return _final((_u32(a, "a") + iv) & M32, (_u32(b, "b") + iv) & M32, iv)


def jhash_1word(a: int, initval: int = 0) -> int:
    """The kernel's ``jhash_1word(a, initval)`` (lookup3, v4.1+): start value + 4."""
    iv = (_u32(initval, "initval") + JHASH_INITVAL + 4) & M32
    return _final((_u32(a, "a") + iv) & M32, iv, iv)


def jhash_3words_pre41(a: int, b: int, c: int, initval: int = 0) -> int:
    """``jhash_3words()`` of v2.6.38 to v4.0: ``__jhash_final(a + 0xdeadbeef, b + 0xdeadbeef,
    c + initval)``.

    Kernel source: ``include/linux/jhash.h`` as introduced by "The new jhash implementation"
    (v2.6.38); replaced in v4.1 by the ``__jhash_nwords`` form (:func:`jhash_3words`).
    No compiled oracle: no Debian source of that era is reachable here; the form is read
    from the kernel history.
    """
    return _final(
        (_u32(a, "a") + JHASH_INITVAL) & M32,
        (_u32(b, "b") + JHASH_INITVAL) & M32,
        (_u32(c, "c") + _u32(initval, "initval")) & M32,
    )


def jhash_2words_pre41(a: int, b: int, initval: int = 0) -> int:
    """``jhash_2words()`` of v2.6.38 to v4.0: ``jhash_3words(a, b, 0, initval)``."""
    return jhash_3words_pre41(a, b, 0, initval)


def jhash_1word_pre41(a: int, initval: int = 0) -> int:
    """``jhash_1word()`` of v2.6.38 to v4.0: ``jhash_3words(a, 0, 0, initval)``."""
    return jhash_3words_pre41(a, 0, 0, initval)


# --- lookup2 (before v2.6.38) ------------------------------------------------------------


def _mix2(a: int, b: int, c: int) -> tuple[int, int, int]:
    """lookup2's ``__jhash_mix(a, b, c)`` (include/linux/jhash.h before v2.6.38)."""
    a = ((a - b - c) & M32) ^ (c >> 13)
    b = ((b - c - a) & M32) ^ ((a << 8) & M32)
    c = ((c - a - b) & M32) ^ (b >> 13)
    a = ((a - b - c) & M32) ^ (c >> 12)
    b = ((b - c - a) & M32) ^ ((a << 16) & M32)
    c = ((c - a - b) & M32) ^ (b >> 5)
    a = ((a - b - c) & M32) ^ (c >> 3)
    b = ((b - c - a) & M32) ^ ((a << 10) & M32)
    c = ((c - a - b) & M32) ^ (b >> 15)
    return a, b, c


def jhash_lookup2(key: BytesLike, initval: int = 0) -> int:
    """The pre-2.6.38 kernel ``jhash(key, length, initval)`` (Bob Jenkins' lookup2).

    Kernel source: ``include/linux/jhash.h``, v2.6.12 (first git tree) to v2.6.36; replaced
    by lookup3 in v2.6.38. Bytes are assembled explicitly little-endian (``k[0] +
    (k[1] << 8) ...``), so unlike lookup3 the result does not depend on host byte order.
    The length is added to ``c`` after the 12-byte blocks, and the final mix always runs.
    """
    k = bytes(_key_bytes(key))
    c = _u32(initval, "initval")
    length = len(k)
    a = b = JHASH_GOLDEN_RATIO
    off = 0
    rest = length
    while rest >= 12:
        x, y, z = _W3.unpack_from(k, off)
        a, b, c = _mix2((a + x) & M32, (b + y) & M32, (c + z) & M32)
        off += 12
        rest -= 12
    c = (c + length) & M32
    tail = k[off:]
    a = (a + int.from_bytes(tail[0:4], "little")) & M32
    b = (b + int.from_bytes(tail[4:8], "little")) & M32
    # The third word's low byte is reserved for the length: tail bytes 8..10 go to bits 8..31.
    c = (c + (int.from_bytes(tail[8:11], "little") << 8)) & M32
    return _mix2(a, b, c)[2]


def jhash2_lookup2(words: Sequence[int], initval: int = 0) -> int:
    """The pre-2.6.38 kernel ``jhash2(k, length, initval)`` (lookup2 over u32 words).

    Kernel source: ``include/linux/jhash.h``, v2.6.12 to v2.6.36. ``c`` gains ``length * 4``
    (bytes, not words) after the 3-word blocks.
    """
    w = _words(words)
    c = _u32(initval, "initval")
    a = b = JHASH_GOLDEN_RATIO
    n = len(w)
    i = 0
    while n - i >= 3:
        a, b, c = _mix2((a + w[i]) & M32, (b + w[i + 1]) & M32, (c + w[i + 2]) & M32)
        i += 3
    c = (c + len(w) * 4) & M32
    rest = n - i
    if rest >= 2:
        b = (b + w[i + 1]) & M32
    if rest >= 1:
        a = (a + w[i]) & M32
    return _mix2(a, b, c)[2]


def jhash_3words_lookup2(a: int, b: int, c: int, initval: int = 0) -> int:
    """The pre-2.6.38 kernel ``jhash_3words()``: one lookup2 mix of
    ``(a + GOLDEN_RATIO, b + GOLDEN_RATIO, c + initval)``.

    Kernel source: ``include/linux/jhash.h``, v2.6.12 to v2.6.36.
    """
    return _mix2(
        (_u32(a, "a") + JHASH_GOLDEN_RATIO) & M32,
        (_u32(b, "b") + JHASH_GOLDEN_RATIO) & M32,
        (_u32(c, "c") + _u32(initval, "initval")) & M32,
    )[2]


def jhash_2words_lookup2(a: int, b: int, initval: int = 0) -> int:
    """Pre-2.6.38 ``jhash_2words(a, b, initval)`` = ``jhash_3words(a, b, 0, initval)``."""
    return jhash_3words_lookup2(a, b, 0, initval)


def jhash_1word_lookup2(a: int, initval: int = 0) -> int:
    """Pre-2.6.38 ``jhash_1word(a, initval)`` = ``jhash_3words(a, 0, 0, initval)``."""
    return jhash_3words_lookup2(a, 0, 0, initval)


class WordHashes(NamedTuple):
    """One era's word hashes, for the composite functions built on them.

    ``inet_ehashfn``, ``udp_ehashfn``, ``__ipv6_addr_jhash``, the port-address hashes and
    ``hash_conntrack_raw`` call ``jhash2``/``jhash_3words``/``jhash_1word``, whose
    algorithm changed twice (lookup2 -> lookup3 in v2.6.38, the golden-ratio start ->
    ``JHASH_INITVAL + (n << 2)`` in v4.1). The composites take a ``word_hashes`` argument and a
    kernel profile binds the era's three functions, so each composite row of the eras table
    computes with the jhash of its own release without a second copy of its expression.
    """

    jhash2: Callable[[Sequence[int], int], int]
    jhash_3words: Callable[[int, int, int, int], int]
    jhash_1word: Callable[[int, int], int]


WORD_HASHES = WordHashes(jhash2, jhash_3words, jhash_1word)
"""The modern (v4.1+) word hashes: the default of every composite."""
