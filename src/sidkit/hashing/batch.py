# Strategy: the scalar functions of sidkit.hashing over many inputs at once, for simulations
# (how 10^7 session IDs spread over 48 sockets, what a conntrack table of 10^6 flows looks
# like) that the pure-Python scalar floor makes slow. Each function here has the name,
# argument order and keyword traits (byteorder, bits_per_long, xorfold, word_hashes) of its
# scalar twin, takes arrays where the scalar takes one value, and returns a 1-D uint32 (or
# uint64) array equal element for element to a loop of the scalar function -- the tests prove
# that with Hypothesis over every era row of the eras table that binds one of them
# (tests/hashing/test_batch.py). Per-row arguments are arrays of n values; any argument may
# instead be one value, which applies to every row. Everything is checked at entry (type,
# shape, dtype, one length, value ranges) with sidkit's errors, never numpy's. numpy is an
# optional extra (sidkit[bulk]); without it importing this module is one sidkit error.
"""Vectorised (numpy) forms of the kernel hashes: many keys per call, equal to the scalars.

``import sidkit.hashing.batch`` needs numpy (``pip install 'sidkit[bulk]'``); without it the
import raises :class:`BulkUnavailableError`, a :class:`~sidkit.SidkitError` and an
``ImportError``. :func:`function` resolves a kernel function of an era to its batch form,
bound to the profile's host traits, as :meth:`sidkit.kernel.KernelProfile.function` does
for the scalar form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from sidkit._errors import InputValueError, UnknownKernelError
from sidkit._validate import as_bytes, check_byteorder, check_key
from sidkit.hashing import _flow, _golden, _inet, _jhash, _nfct, _siphash, _toeplitz
from sidkit.hashing._bulk import (
    U8,
    U32,
    U64,
    BulkUnavailableError,
    as_addresses,
    as_keys,
    as_u32,
    as_uints,
    as_words,
    be16,
    broadcast,
    final3,
    halfsip13,
    host_words,
    le_words,
    length_of,
    mix2,
    mix3,
    np,
    sip,
    sip_bytes,
)

__all__ = [
    "Array",
    "BatchWordHashes",
    "BulkUnavailableError",
    "flow_hash_from_keys",
    "function",
    "hash_32",
    "hash_32_legacy",
    "hash_64",
    "hash_64_legacy",
    "hash_64_v46",
    "hash_conntrack_raw",
    "hash_conntrack_raw_combined",
    "hash_conntrack_raw_jhash2",
    "hash_conntrack_raw_jhash2_netmix",
    "hash_conntrack_raw_jhash2_zone",
    "hash_conntrack_raw_siphash_4u64",
    "hsiphash",
    "inet6_ehashfn",
    "inet6_ehashfn_pre615",
    "inet_ehashfn",
    "inet_ehashfn_pre615",
    "ipv4_portaddr_hash",
    "ipv6_addr_jhash",
    "ipv6_addr_jhash_xorfold",
    "ipv6_portaddr_hash",
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
    "next_pseudo_random32",
    "reciprocal_scale",
    "siphash",
    "siphash_1u32",
    "siphash_1u64",
    "siphash_2u64",
    "siphash_3u32",
    "siphash_3u64",
    "siphash_4u64",
    "toeplitz",
    "udp6_ehash_initval",
    "udp6_ehash_initval_typo",
    "udp6_ehashfn",
    "udp_ehashfn",
    "udp_ehashfn_pre41",
]

Array = Any
"""What the batch functions return: a 1-D numpy array of uint32 (uint64 for the siphash
family and the pre-4.7 ``hash_64`` forms), one element per input row. (Spelled ``Any`` to the
type checker and the docs: numpy's stubs type unsigned arithmetic loosely.)"""

M32 = 0xFFFFFFFF
_JHASH_INITVAL = _jhash.JHASH_INITVAL
_GOLDEN = _jhash.JHASH_GOLDEN_RATIO


def _n(*named: tuple[str, Any]) -> int:
    return length_of([(name, len(arr)) for name, arr in named])


def _start(n: int, value: U32 | int) -> U32:
    out: U32 = np.empty(n, np.uint32)
    out[...] = value
    return out


# --- jhash, lookup3 (v2.6.38+) and lookup2 (before) --------------------------------------------


def jhash(keys: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash` (lookup3, ``include/linux/jhash.h``, v2.6.38+) of each key.

    *keys* is an ``(n, length)`` uint8 array or a sequence of equal-length bytes; *initval* one
    u32 or n of them."""
    k = as_keys(keys)
    iv = as_u32(initval, "initval")
    n = _n(("keys", k), ("initval", iv))
    length = k.shape[1]
    a = b = c = _start(n, iv + np.uint32((_JHASH_INITVAL + length) & M32))
    words = _lookup3_words(k, n)
    i = 0
    rest = length
    while rest > 12:
        a, b, c = mix3(a + words[:, i], b + words[:, i + 1], c + words[:, i + 2])
        rest -= 12
        i += 3
    if rest == 0:
        return c
    a = a + words[:, i]
    if rest > 4:
        b = b + words[:, i + 1]
    if rest > 8:
        c = c + words[:, i + 2]
    return final3(a, b, c)


def _lookup3_words(k: U8, n: int) -> U32:
    w = le_words(k, 4)
    return w if len(w) == n else np.broadcast_to(w, (n, w.shape[1]))


def jhash_lookup2(keys: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_lookup2` (lookup2, before v2.6.38) of each key."""
    k = as_keys(keys)
    iv = as_u32(initval, "initval")
    n = _n(("keys", k), ("initval", iv))
    length = k.shape[1]
    words = _lookup3_words(k, n)
    a = b = _start(n, _GOLDEN)
    c = _start(n, iv)
    i = 0
    rest = length
    while rest >= 12:
        a, b, c = mix2(a + words[:, i], b + words[:, i + 1], c + words[:, i + 2])
        rest -= 12
        i += 3
    c = c + np.uint32(length & M32)
    if rest:
        a = a + words[:, i]
    if rest > 4:
        b = b + words[:, i + 1]
    if rest > 8:
        # the third word's low byte is the length's: tail bytes 8..10 go to bits 8..31
        c = c + (words[:, i + 2] << 8)
    return mix2(a, b, c)[2]


def jhash2(words: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash2` (lookup3, v2.6.38+) of each row of u32 *words* (an
    ``(n, length)`` integer array or a sequence of equal-length word sequences)."""
    w = as_words(words)
    iv = as_u32(initval, "initval")
    n = _n(("words", w), ("initval", iv))
    w = broadcast(n, w)
    length = w.shape[1]
    a = b = c = _start(n, iv + np.uint32((_JHASH_INITVAL + (length << 2)) & M32))
    i = 0
    rest = length
    while rest > 3:
        a, b, c = mix3(a + w[:, i], b + w[:, i + 1], c + w[:, i + 2])
        rest -= 3
        i += 3
    if rest == 0:
        return c
    a = a + w[:, i]
    if rest > 1:
        b = b + w[:, i + 1]
    if rest > 2:
        c = c + w[:, i + 2]
    return final3(a, b, c)


def jhash2_lookup2(words: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash2_lookup2` (lookup2, before v2.6.38) of each row."""
    w = as_words(words)
    iv = as_u32(initval, "initval")
    n = _n(("words", w), ("initval", iv))
    w = broadcast(n, w)
    length = w.shape[1]
    a = b = _start(n, _GOLDEN)
    c = _start(n, iv)
    i = 0
    while length - i >= 3:
        a, b, c = mix2(a + w[:, i], b + w[:, i + 1], c + w[:, i + 2])
        i += 3
    c = c + np.uint32((length * 4) & M32)
    rest = length - i
    if rest >= 2:
        b = b + w[:, i + 1]
    if rest >= 1:
        a = a + w[:, i]
    return mix2(a, b, c)[2]


def _abc(**args: object) -> tuple[int, list[U32]]:
    arrs = [as_u32(v, k) for k, v in args.items()]
    n = length_of([(k, len(a)) for k, a in zip(args, arrs, strict=True)])
    return n, [np.broadcast_to(a, (n,)) for a in arrs]


def jhash_3words(a: object, b: object, c: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_3words` (v4.1+): ``__jhash_final`` of ``(a, b, c) + initval
    + JHASH_INITVAL + 12``. Each argument is one u32 or n of them."""
    _, (a_, b_, c_, iv) = _abc(a=a, b=b, c=c, initval=initval)
    s = iv + np.uint32(_JHASH_INITVAL + 12)
    return final3(a_ + s, b_ + s, c_ + s)


def jhash_2words(a: object, b: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_2words` (v4.1+)."""
    _, (a_, b_, iv) = _abc(a=a, b=b, initval=initval)
    s = iv + np.uint32(_JHASH_INITVAL + 8)
    return final3(a_ + s, b_ + s, s)


def jhash_1word(a: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_1word` (v4.1+)."""
    _, (a_, iv) = _abc(a=a, initval=initval)
    s = iv + np.uint32(_JHASH_INITVAL + 4)
    return final3(a_ + s, s, s)


def jhash_3words_pre41(a: object, b: object, c: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_3words_pre41` (v2.6.38 to v4.0)."""
    _, (a_, b_, c_, iv) = _abc(a=a, b=b, c=c, initval=initval)
    g = np.uint32(_JHASH_INITVAL)
    return final3(a_ + g, b_ + g, c_ + iv)


def jhash_2words_pre41(a: object, b: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_2words_pre41`: ``jhash_3words(a, b, 0, initval)``."""
    return jhash_3words_pre41(a, b, 0, initval)


def jhash_1word_pre41(a: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_1word_pre41`: ``jhash_3words(a, 0, 0, initval)``."""
    return jhash_3words_pre41(a, 0, 0, initval)


def jhash_3words_lookup2(a: object, b: object, c: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_3words_lookup2` (before v2.6.38)."""
    _, (a_, b_, c_, iv) = _abc(a=a, b=b, c=c, initval=initval)
    g = np.uint32(_GOLDEN)
    return mix2(a_ + g, b_ + g, c_ + iv)[2]


def jhash_2words_lookup2(a: object, b: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_2words_lookup2`."""
    return jhash_3words_lookup2(a, b, 0, initval)


def jhash_1word_lookup2(a: object, initval: object = 0) -> Array:
    """:func:`sidkit.hashing.jhash_1word_lookup2`."""
    return jhash_3words_lookup2(a, 0, 0, initval)


class BatchWordHashes(NamedTuple):
    """One era's batch word hashes (the batch twin of ``sidkit.hashing._jhash.WordHashes``):
    the composites below take it as *word_hashes*, and :func:`function` binds the era's."""

    jhash2: Callable[..., Any]
    jhash_3words: Callable[..., Any]
    jhash_1word: Callable[..., Any]


WORD_HASHES = BatchWordHashes(jhash2, jhash_3words, jhash_1word)
"""The modern (v4.1+) batch word hashes: the default of every composite."""
_PRE41 = BatchWordHashes(jhash2, jhash_3words_pre41, jhash_1word_pre41)


# --- hash.h, reciprocal_scale --------------------------------------------------------------------


def _bits(bits: object, limit: int) -> int:
    return _golden._bits(bits, limit)


def hash_32(val: object, bits: int) -> Array:
    """:func:`sidkit.hashing.hash_32` (v4.7+) of each u32."""
    b = _bits(bits, 32)
    return (as_u32(val, "val") * np.uint32(_golden.GOLDEN_RATIO_32)) >> np.uint32(32 - b)


def hash_32_legacy(val: object, bits: int) -> Array:
    """:func:`sidkit.hashing.hash_32_legacy` (before v4.7)."""
    b = _bits(bits, 32)
    return (as_u32(val, "val") * np.uint32(_golden.GOLDEN_RATIO_PRIME_32)) >> np.uint32(32 - b)


def hash_64(val: object, bits: int, *, bits_per_long: int = 64) -> Array:
    """:func:`sidkit.hashing.hash_64` (v4.7+, a u32) of each u64."""
    v = as_uints(val, 64, "val")
    if bits_per_long == 64:
        b = _bits(bits, 64)
        return ((v * np.uint64(_golden.GOLDEN_RATIO_64)) >> np.uint64(64 - b)).astype(np.uint32)
    if bits_per_long == 32:
        lo = v.astype(np.uint32)
        hi = (v >> np.uint64(32)).astype(np.uint32)
        return hash_32(lo ^ (hi * np.uint32(_golden.GOLDEN_RATIO_32)), bits)
    raise InputValueError(f"bits_per_long must be 32 or 64, got {bits_per_long!r}")


def hash_64_legacy(val: object, bits: int) -> Array:
    """:func:`sidkit.hashing.hash_64_legacy` (before v4.6, a u64): the product by
    ``GOLDEN_RATIO_PRIME_64`` that the C wrote as shifts and adds."""
    b = _bits(bits, 64)
    v = as_uints(val, 64, "val")
    return (v * np.uint64(_golden.GOLDEN_RATIO_PRIME_64)) >> np.uint64(64 - b)


def hash_64_v46(val: object, bits: int) -> Array:
    """:func:`sidkit.hashing.hash_64_v46` (v4.6, a u64)."""
    b = _bits(bits, 64)
    return (as_uints(val, 64, "val") * np.uint64(_golden.GOLDEN_RATIO_64)) >> np.uint64(64 - b)


def reciprocal_scale(val: object, ep_ro: object) -> Array:
    """:func:`sidkit.hashing.reciprocal_scale`: ``(u32)(((u64)val * ep_ro) >> 32)`` of each
    hash; *ep_ro* is one u32 or n of them."""
    v = as_uints(val, 32, "val")
    r = as_uints(ep_ro, 32, "ep_ro")
    _n(("val", v), ("ep_ro", r))
    return ((v * r) >> np.uint64(32)).astype(np.uint32)


def next_pseudo_random32(seed: object) -> Array:
    """:func:`sidkit.hashing.next_pseudo_random32` of each u32."""
    return as_u32(seed, "seed") * np.uint32(1664525) + np.uint32(1013904223)


# --- siphash -----------------------------------------------------------------------------------


def _key64(key: object, name: str = "key") -> tuple[U64, U64]:
    kb = check_key(key, 16, name)
    return (
        np.array([int.from_bytes(kb[:8], "little")], np.uint64),
        np.array([int.from_bytes(kb[8:], "little")], np.uint64),
    )


def siphash(keys: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash` (SipHash-2-4, ``lib/siphash.c``, v4.11+) of each key
    (the data); *key* is the one 16-byte ``siphash_key_t`` image."""
    data = as_keys(keys)
    k0, k1 = _key64(key)
    return sip_bytes(data, k0, k1, 2, 4)


def hsiphash(keys: object, key: object, *, bits_per_long: int = 64) -> Array:
    """:func:`sidkit.hashing.hsiphash` of each key: SipHash-1-3 folded to 32 bits on 64-bit
    kernels, HalfSipHash-1-3 with an 8-byte key on 32-bit kernels (*bits_per_long*)."""
    data = as_keys(keys)
    if bits_per_long == 64:
        k0, k1 = _key64(key)
        return sip_bytes(data, k0, k1, 1, 3).astype(np.uint32)
    if bits_per_long == 32:
        kb = check_key(key, 8)
        return halfsip13(data, int.from_bytes(kb[:4], "little"), int.from_bytes(kb[4:], "little"))
    raise InputValueError(f"bits_per_long must be 32 or 64, got {bits_per_long!r}")


def _sip_words(key: object, **words: object) -> U64:
    arrs = [as_uints(v, 64, k) for k, v in words.items()]
    n = length_of([(k, len(a)) for k, a in zip(words, arrs, strict=True)])
    k0, k1 = _key64(key)
    blocks = np.stack([np.broadcast_to(a, (n,)) for a in arrs], axis=1)
    last = np.full(n, (len(arrs) * 8 & 0xFF) << 56, np.uint64)
    return sip(blocks, last, k0, k1, 2, 4)


def siphash_1u64(first: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_1u64` of each u64."""
    return _sip_words(key, first=first)


def siphash_2u64(first: object, second: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_2u64`."""
    return _sip_words(key, first=first, second=second)


def siphash_3u64(first: object, second: object, third: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_3u64`."""
    return _sip_words(key, first=first, second=second, third=third)


def siphash_4u64(first: object, second: object, third: object, forth: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_4u64` (``forth`` is the kernel's spelling)."""
    return _sip_words(key, first=first, second=second, third=third, forth=forth)


def _u32_bytes(**words: object) -> U8:
    arrs = [as_u32(v, k) for k, v in words.items()]
    n = length_of([(k, len(a)) for k, a in zip(words, arrs, strict=True)])
    stacked = np.stack([np.broadcast_to(a, (n,)) for a in arrs], axis=1).astype("<u4")
    return np.ascontiguousarray(stacked).view(np.uint8).reshape(n, 4 * len(arrs))


def siphash_1u32(first: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_1u32` of each u32."""
    k0, k1 = _key64(key)
    return sip_bytes(_u32_bytes(first=first), k0, k1, 2, 4)


def siphash_3u32(first: object, second: object, third: object, key: object) -> Array:
    """:func:`sidkit.hashing.siphash_3u32`."""
    k0, k1 = _key64(key)
    return sip_bytes(_u32_bytes(first=first, second=second, third=third), k0, k1, 2, 4)


# --- socket-table hashes ---------------------------------------------------------------------


def _v4(addrs: object, name: str, bo: str) -> U32:
    packed, _ = as_addresses(addrs, name, 4)
    return host_words(packed, 1, bo)[:, 0]


def _v6(addrs: object, name: str, bo: str) -> U32:
    packed, _ = as_addresses(addrs, name, 6)
    return host_words(packed, 4, bo)


def udp_ehashfn(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.udp_ehashfn` (``net/ipv4/udp.c``, v3.13+ with v4.1+ jhash) over
    arrays: each of *laddr*, *lport*, *faddr*, *fport*, *initval* is one value or n of them
    (addresses as a sequence or an ``(n, 4)`` uint8 array of packed addresses)."""
    bo = check_byteorder(byteorder)
    la = _v4(laddr, "laddr", bo)
    fa = _v4(faddr, "faddr", bo)
    lp = as_u32(as_uints(lport, 16, "lport"), "lport")
    fp = as_u32(as_uints(fport, 16, "fport"), "fport")
    _n(("laddr", la), ("lport", lp), ("faddr", fa), ("fport", fp))
    return word_hashes.jhash_3words(la, fa, (lp << 16) | be16(fp, bo), initval)


def udp_ehashfn_pre41(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    *,
    byteorder: str = "little",
) -> Array:
    """:func:`udp_ehashfn` with v2.6.38-v4.0's ``jhash_3words`` (v3.9 to v4.0)."""
    return udp_ehashfn(laddr, lport, faddr, fport, initval, byteorder=byteorder, word_hashes=_PRE41)


def inet_ehashfn(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.inet_ehashfn` (v6.15+): ``lport + jhash_3words(laddr, faddr,
    fport, initval)``."""
    bo = check_byteorder(byteorder)
    la = _v4(laddr, "laddr", bo)
    fa = _v4(faddr, "faddr", bo)
    lp = as_u32(as_uints(lport, 16, "lport"), "lport")
    fp = as_u32(as_uints(fport, 16, "fport"), "fport")
    _n(("laddr", la), ("lport", lp), ("faddr", fa), ("fport", fp))
    return lp + word_hashes.jhash_3words(la, fa, be16(fp, bo), initval)


def inet_ehashfn_pre615(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.inet_ehashfn_pre615` (before v6.15)."""
    return udp_ehashfn(
        laddr, lport, faddr, fport, initval, byteorder=byteorder, word_hashes=word_hashes
    )


def ipv6_addr_jhash(
    addr: object,
    initval: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.ipv6_addr_jhash`: ``jhash2(s6_addr32, 4, initval)`` of each."""
    return word_hashes.jhash2(_v6(addr, "addr", check_byteorder(byteorder)), initval)


def ipv6_addr_jhash_xorfold(
    addr: object,
    initval: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.ipv6_addr_jhash_xorfold`: ``jhash_3words(a[0] ^ a[1], a[2],
    a[3], initval)``."""
    w = _v6(addr, "addr", check_byteorder(byteorder))
    return word_hashes.jhash_3words(w[:, 0] ^ w[:, 1], w[:, 2], w[:, 3], initval)


def _inet6(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    addr_secret: object,
    byteorder: str,
    xorfold: bool,
    lport_outside: bool,
    word_hashes: BatchWordHashes,
) -> Array:
    bo = check_byteorder(byteorder)
    lhash = _v6(laddr, "laddr", bo)[:, 3]
    secret = as_u32(addr_secret, "ipv6_hash_secret")
    fjh = ipv6_addr_jhash_xorfold if xorfold else ipv6_addr_jhash
    fhash = fjh(faddr, secret, byteorder=bo, word_hashes=word_hashes)
    lp = as_u32(as_uints(lport, 16, "lport"), "lport")
    fp = be16(as_u32(as_uints(fport, 16, "fport"), "fport"), bo)
    _n(("laddr", lhash), ("lport", lp), ("faddr", fhash), ("fport", fp))
    if lport_outside:
        return lp + word_hashes.jhash_3words(lhash, fhash, fp, initval)
    return word_hashes.jhash_3words(lhash, fhash, (lp << 16) | fp, initval)


def inet6_ehashfn(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    ipv6_hash_secret: object,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.inet6_ehashfn` (v6.15+)."""
    args = (laddr, lport, faddr, fport, initval, ipv6_hash_secret)
    return _inet6(*args, byteorder, xorfold, True, word_hashes)


def inet6_ehashfn_pre615(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    ipv6_hash_secret: object,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.inet6_ehashfn_pre615` (v3.13 to v6.14)."""
    args = (laddr, lport, faddr, fport, initval, ipv6_hash_secret)
    return _inet6(*args, byteorder, xorfold, False, word_hashes)


def udp6_ehashfn(
    laddr: object,
    lport: object,
    faddr: object,
    fport: object,
    initval: object,
    ipv6_hash_secret: object,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.udp6_ehashfn` (``net/ipv6/udp.c``, v3.13+)."""
    args = (laddr, lport, faddr, fport, initval, ipv6_hash_secret)
    return _inet6(*args, byteorder, xorfold, False, word_hashes)


def udp6_ehash_initval(
    udp6_ehash_secret: object, udp_ipv6_hash_secret: object, net_mix: object
) -> Array:
    """:func:`sidkit.hashing.udp6_ehash_initval` (fixed kernels): ``udp6_ehash_secret +
    net_mix``."""
    _, (secret, _other, mix) = _abc(
        udp6_ehash_secret=udp6_ehash_secret,
        udp_ipv6_hash_secret=udp_ipv6_hash_secret,
        net_mix=net_mix,
    )
    return secret + mix


def udp6_ehash_initval_typo(
    udp6_ehash_secret: object, udp_ipv6_hash_secret: object, net_mix: object
) -> Array:
    """:func:`sidkit.hashing.udp6_ehash_initval_typo` (v3.13 to v6.4)."""
    _, (_other, secret, mix) = _abc(
        udp6_ehash_secret=udp6_ehash_secret,
        udp_ipv6_hash_secret=udp_ipv6_hash_secret,
        net_mix=net_mix,
    )
    return secret + mix


def ipv4_portaddr_hash(
    net_mix: object,
    addr: object,
    port: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.ipv4_portaddr_hash`: ``jhash_1word(addr, net_mix) ^ port``."""
    a = _v4(addr, "addr", check_byteorder(byteorder))
    mix = as_u32(net_mix, "net_mix")
    p = as_u32(as_uints(port, 16, "port"), "port")
    _n(("addr", a), ("net_mix", mix), ("port", p))
    return word_hashes.jhash_1word(a, mix) ^ p


def ipv6_portaddr_hash(
    net_mix: object,
    addr: object,
    port: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.ipv6_portaddr_hash`: per address, the unspecified, v4-mapped or
    general form."""
    packed, _ = as_addresses(addr, "addr", 6)
    w = host_words(packed, 4, check_byteorder(byteorder))
    mix = as_u32(net_mix, "net_mix")
    p = as_u32(as_uints(port, 16, "port"), "port")
    n = _n(("addr", w), ("net_mix", mix), ("port", p))
    zero = ~packed.any(axis=1)
    mapped = (packed[:, :10] == 0).all(axis=1) & (packed[:, 10] == 0xFF) & (packed[:, 11] == 0xFF)
    h = np.where(
        zero,
        word_hashes.jhash_1word(np.zeros(len(w), np.uint32), mix),
        np.where(mapped, word_hashes.jhash_1word(w[:, 3], mix), word_hashes.jhash2(w, mix)),
    )
    return np.broadcast_to(h, (n,)).astype(np.uint32) ^ p


# --- nf_conntrack ---------------------------------------------------------------------------------


class _Tuples(NamedTuple):
    image: U8  # (n, 40) struct nf_conntrack_tuple images (dir 0)
    n: int


def _tuples(
    src: object, sport: object, dst: object, dport: object, protonum: object, bo: str
) -> _Tuples:
    s, sv = as_addresses(src, "src", None)
    d, dv = as_addresses(dst, "dst", None)
    sp = as_uints(sport, 16, "sport")
    dp = as_uints(dport, 16, "dport")
    pr = as_uints(protonum, 8, "protonum")
    n = _n(("src", s), ("sport", sp), ("dst", d), ("dport", dp), ("protonum", pr))
    sv, dv = np.broadcast_to(sv, (n,)), np.broadcast_to(dv, (n,))
    if (sv != dv).any():
        i = int(np.argmax(sv != dv))
        where = f" (row {i})" if n > 1 else ""
        raise InputValueError(
            f"src and dst must be of the same address family{where}", code="bad-address"
        )
    image = np.zeros((n, 40), np.uint8)
    image[:, 0:16] = s
    image[:, 16] = np.broadcast_to(sp >> np.uint64(8), (n,))
    image[:, 17] = np.broadcast_to(sp & np.uint64(0xFF), (n,))
    family = np.where(sv == 4, _nfct.AF_INET, _nfct.AF_INET6).astype(np.uint16)
    fam_dt = "<u2" if bo == "little" else ">u2"
    image[:, 18:20] = family.astype(fam_dt).view(np.uint8).reshape(n, 2)
    image[:, 20:36] = d
    image[:, 36] = np.broadcast_to(dp >> np.uint64(8), (n,))
    image[:, 37] = np.broadcast_to(dp & np.uint64(0xFF), (n,))
    image[:, 38] = np.broadcast_to(pr, (n,))
    return _Tuples(image, n)


def _words_of(image: U8, start: int, count: int, bo: str) -> U32:
    dt = "<u4" if bo == "little" else ">u4"
    return np.ascontiguousarray(image[:, start : start + 4 * count]).view(dt).astype(np.uint32)


def _u16_of(image: U8, start: int, bo: str) -> U32:
    dt = "<u2" if bo == "little" else ">u2"
    return np.ascontiguousarray(image[:, start : start + 2]).view(dt)[:, 0].astype(np.uint32)


def _bo_key(secret: object, zone: U64, mix: U64, bo: str) -> tuple[U64, U64]:
    """The siphash key words (as siphash reads them, little-endian) of ``secret`` with
    ``key[0] ^= zone`` and ``key[1] ^= mix``, the key words being host integers of *bo*."""
    key = check_key(secret, 16, "secret")
    k0 = np.uint64(int.from_bytes(key[:8], "little"))
    k1 = np.uint64(int.from_bytes(key[8:], "little"))
    if bo == "big":
        zone, mix = zone.byteswap(), mix.byteswap()
    return k0 ^ zone, k1 ^ mix


def hash_conntrack_raw(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw` (v6.5+) of each tuple: *src*, *dst* are
    addresses (a sequence, an ``(n, 4|16)`` uint8 array, or one address), the ports,
    *protonum*, *zone_id* and *net_mix* one value or n; *secret* the 16-byte key."""
    bo = check_byteorder(byteorder)
    t = _tuples(src, sport, dst, dport, protonum, bo)
    zone = as_uints(zone_id, 16, "zone_id")
    mix = as_uints(net_mix, 32, "net_mix")
    _n(("tuples", t.image), ("zone_id", zone), ("net_mix", mix))
    k0, k1 = _bo_key(secret, zone, mix, bo)
    return sip_bytes(np.ascontiguousarray(t.image[:, :39]), k0, k1, 2, 4).astype(np.uint32)


def hash_conntrack_raw_combined(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw_combined` (the 48-byte ``combined`` struct)."""
    key = check_key(secret, 16, "secret")
    bo = check_byteorder(byteorder)
    t = _tuples(src, sport, dst, dport, protonum, bo)
    zone = as_uints(zone_id, 32, "zone_id")
    mix = as_uints(net_mix, 32, "net_mix")
    n = _n(("tuples", t.image), ("zone_id", zone), ("net_mix", mix))
    u32 = "<u4" if bo == "little" else ">u4"
    u16 = "<u2" if bo == "little" else ">u2"
    data = np.zeros((n, 48), np.uint8)
    data[:, :36] = t.image[:, :36]
    data[:, 36:40] = np.broadcast_to(zone, (n,)).astype(u32).view(np.uint8).reshape(n, 4)
    data[:, 40:44] = np.broadcast_to(mix, (n,)).astype(u32).view(np.uint8).reshape(n, 4)
    data[:, 44:46] = t.image[:, 36:38]
    data[:, 46:48] = t.image[:, 38].astype(u16).view(np.uint8).reshape(n, 2)
    k0, k1 = _key64(key)
    return sip_bytes(data, k0, k1, 2, 4).astype(np.uint32)


def _jhash2_tuple(image: U8, seed: U32, bo: str, word_hashes: BatchWordHashes) -> Array:
    words = _words_of(image, 0, 9, bo)
    dport_raw = _u16_of(image, 36, bo)
    return word_hashes.jhash2(words, seed ^ ((dport_raw << 16) | image[:, 38].astype(np.uint32)))


def hash_conntrack_raw_jhash2_netmix(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw_jhash2_netmix` (v4.7 to v5.14)."""
    bo = check_byteorder(byteorder)
    as_uints(zone_id, 16, "zone_id")
    t = _tuples(src, sport, dst, dport, protonum, bo)
    seed = as_u32(secret, "secret") ^ as_u32(net_mix, "net_mix")
    _n(("tuples", t.image), ("seed", seed))
    return _jhash2_tuple(t.image, seed, bo, word_hashes)


def hash_conntrack_raw_jhash2_zone(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw_jhash2_zone` (v2.6.34 to v4.2)."""
    bo = check_byteorder(byteorder)
    as_uints(net_mix, 32, "net_mix")
    t = _tuples(src, sport, dst, dport, protonum, bo)
    seed = as_u32(as_uints(zone_id, 16, "zone_id"), "zone_id") ^ as_u32(secret, "secret")
    _n(("tuples", t.image), ("seed", seed))
    return _jhash2_tuple(t.image, seed, bo, word_hashes)


def hash_conntrack_raw_jhash2(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
    word_hashes: BatchWordHashes = WORD_HASHES,
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw_jhash2` (v4.3 to v4.6)."""
    bo = check_byteorder(byteorder)
    as_uints(zone_id, 16, "zone_id")
    as_uints(net_mix, 32, "net_mix")
    t = _tuples(src, sport, dst, dport, protonum, bo)
    seed = as_u32(secret, "secret")
    _n(("tuples", t.image), ("secret", seed))
    return _jhash2_tuple(t.image, seed, bo, word_hashes)


def hash_conntrack_raw_siphash_4u64(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    protonum: object,
    zone_id: object,
    net_mix: object,
    secret: object,
    *,
    byteorder: str = "little",
) -> Array:
    """:func:`sidkit.hashing.hash_conntrack_raw_siphash_4u64` (v6.2 to v6.4)."""
    key = check_key(secret, 16, "secret")
    bo = check_byteorder(byteorder)
    t = _tuples(src, sport, dst, dport, protonum, bo)
    zone = as_uints(zone_id, 16, "zone_id")
    mix = as_uints(net_mix, 32, "net_mix")
    _n(("tuples", t.image), ("zone_id", zone), ("net_mix", mix))
    s = _words_of(t.image, 0, 4, bo).astype(np.uint64)
    d = _words_of(t.image, 20, 4, bo).astype(np.uint64)
    sp = _u16_of(t.image, 16, bo).astype(np.uint64)
    dp = _u16_of(t.image, 36, bo).astype(np.uint64)
    proto = t.image[:, 38].astype(np.uint64)
    s32 = np.uint64(32)
    a = s[:, 0] << s32 | s[:, 3]
    b = d[:, 0] << s32 | d[:, 3]
    c = ((sp << s32) | (dp << np.uint64(16)) | proto) ^ (s[:, 1] << s32 | s[:, 2])
    dd = ((zone << s32) | mix) + (d[:, 1] << s32 | d[:, 2])
    return siphash_4u64(a, b, c, dd, key).astype(np.uint32)


# --- flow dissector, Toeplitz ------------------------------------------------------------------


def flow_hash_from_keys(
    src: object,
    sport: object,
    dst: object,
    dport: object,
    ip_proto: object,
    key: object,
    *,
    flow_label: object = 0,
    byteorder: str = "little",
) -> Array:
    """:func:`sidkit.hashing.flow_hash_from_keys` (siphash over ``struct flow_keys``) of each
    flow; IPv4 and IPv6 rows may be mixed."""
    k0, k1 = _key64(key)
    bo = check_byteorder(byteorder)
    s, sv = as_addresses(src, "src", None)
    d, dv = as_addresses(dst, "dst", None)
    sp = as_uints(sport, 16, "sport")
    dp = as_uints(dport, 16, "dport")
    pr = as_uints(ip_proto, 8, "ip_proto")
    fl = as_uints(flow_label, 20, "flow_label")
    n = _n(
        ("src", s), ("sport", sp), ("dst", d), ("dport", dp), ("ip_proto", pr), ("flow_label", fl)
    )
    s, d = np.broadcast_to(s, (n, 16)), np.broadcast_to(d, (n, 16))
    sv, dv = np.broadcast_to(sv, (n,)), np.broadcast_to(dv, (n,))
    if (sv != dv).any():
        raise InputValueError("src and dst must be IPv4 or IPv6 addresses of one family")
    v4 = sv == 4
    # __flow_hash_consistentify: IPv4 addresses compared as host u32, IPv6 with memcmp
    dt = "<u4" if bo == "little" else ">u4"
    s_w = np.ascontiguousarray(s[:, :4]).view(dt)[:, 0]
    d_w = np.ascontiguousarray(d[:, :4]).view(dt)[:, 0]
    be128 = ">u4"
    s_be = np.ascontiguousarray(s).view(be128).astype(np.uint64)
    d_be = np.ascontiguousarray(d).view(be128).astype(np.uint64)
    lt6 = np.zeros(n, bool)
    decided = np.zeros(n, bool)
    for j in range(4):
        lt6 |= ~decided & (d_be[:, j] < s_be[:, j])
        decided |= d_be[:, j] != s_be[:, j]
    swap_a = np.where(v4, d_w < s_w, lt6)
    sa = np.where(swap_a[:, None], d, s)
    da = np.where(swap_a[:, None], s, d)
    spb = np.broadcast_to(sp, (n,)).astype(">u2").view(np.uint8).reshape(n, 2)
    dpb = np.broadcast_to(dp, (n,)).astype(">u2").view(np.uint8).reshape(n, 2)
    pdt = "<u2" if bo == "little" else ">u2"
    sp_raw = np.ascontiguousarray(spb).view(pdt)[:, 0]
    dp_raw = np.ascontiguousarray(dpb).view(pdt)[:, 0]
    swap_p = (dp_raw < sp_raw)[:, None]
    spb, dpb = np.where(swap_p, dpb, spb), np.where(swap_p, spb, dpb)
    image = np.zeros((n, _flow.FLOW_KEYS_SIZE), np.uint8)
    u16 = "<u2" if bo == "little" else ">u2"
    addr_type = np.where(v4, _flow._ADDR_TYPE_IPV4, _flow._ADDR_TYPE_IPV6).astype(u16)
    image[:, 2:4] = addr_type.view(np.uint8).reshape(n, 2)
    n_proto = np.where(v4, 0x0800, 0x86DD).astype(">u2")
    image[:, 8:10] = n_proto.view(np.uint8).reshape(n, 2)
    image[:, 10] = np.broadcast_to(pr, (n,))
    u32 = "<u4" if bo == "little" else ">u4"
    image[:, 12:16] = np.broadcast_to(fl, (n,)).astype(u32).view(np.uint8).reshape(n, 4)
    image[:, 36:38] = spb
    image[:, 38:40] = dpb
    off = _flow._ADDRS_OFFSET
    image[v4, off : off + 4] = sa[v4, :4]
    image[v4, off + 4 : off + 8] = da[v4, :4]
    image[~v4, off : off + 16] = sa[~v4]
    image[~v4, off + 16 : off + 32] = da[~v4]
    out = np.empty(n, np.uint32)
    base = _flow.FLOW_KEYS_SIZE - _flow._HASH_OFFSET - 32
    for mask, used in ((v4, 8), (~v4, 32)):
        if mask.any():
            part = np.ascontiguousarray(
                image[mask, _flow._HASH_OFFSET : _flow._HASH_OFFSET + base + used]
            )
            out[mask] = sip_bytes(part, k0, k1, 2, 4).astype(np.uint32)
    return np.where(out == 0, np.uint32(1), out)


def toeplitz(keys: object, key: object = _toeplitz.MICROSOFT_RSS_KEY) -> Array:
    """:func:`sidkit.hashing.toeplitz` (the RSS Toeplitz hash) of each row of *keys* (the data)
    under the one *key*, which must be at least ``length + 4`` bytes."""
    data = as_keys(keys)
    k = as_bytes(key, "key")
    length = data.shape[1]
    if len(k) < length + 4:
        raise InputValueError(
            f"a Toeplitz key must be at least len(data) + 4 = {length + 4} bytes, got {len(k)}",
            code="bad-key-size",
        )
    kint = int.from_bytes(k, "big")
    shift = len(k) * 8 - 32
    out = np.zeros(data.shape[0], np.uint32)
    for i in range(length * 8):
        window = np.uint32((kint >> (shift - i)) & M32)
        bit = (data[:, i >> 3] >> np.uint8(7 - (i & 7))) & np.uint8(1)
        out ^= bit.astype(np.uint32) * window
    return out


# --- eras ---------------------------------------------------------------------------------

_BATCH: dict[Callable[..., Any], Callable[..., Any]] = {
    _jhash.jhash: jhash,
    _jhash.jhash_lookup2: jhash_lookup2,
    _jhash.jhash2: jhash2,
    _jhash.jhash2_lookup2: jhash2_lookup2,
    _jhash.jhash_3words: jhash_3words,
    _jhash.jhash_3words_pre41: jhash_3words_pre41,
    _jhash.jhash_3words_lookup2: jhash_3words_lookup2,
    _jhash.jhash_2words: jhash_2words,
    _jhash.jhash_2words_pre41: jhash_2words_pre41,
    _jhash.jhash_2words_lookup2: jhash_2words_lookup2,
    _jhash.jhash_1word: jhash_1word,
    _jhash.jhash_1word_pre41: jhash_1word_pre41,
    _jhash.jhash_1word_lookup2: jhash_1word_lookup2,
    _golden.hash_32: hash_32,
    _golden.hash_32_legacy: hash_32_legacy,
    _golden.hash_64: hash_64,
    _golden.hash_64_legacy: hash_64_legacy,
    _golden.hash_64_v46: hash_64_v46,
    _golden.reciprocal_scale: reciprocal_scale,
    _golden.next_pseudo_random32: next_pseudo_random32,
    _siphash.siphash: siphash,
    _siphash.hsiphash: hsiphash,
    _siphash.siphash_1u64: siphash_1u64,
    _siphash.siphash_2u64: siphash_2u64,
    _siphash.siphash_3u64: siphash_3u64,
    _siphash.siphash_4u64: siphash_4u64,
    _siphash.siphash_1u32: siphash_1u32,
    _siphash.siphash_3u32: siphash_3u32,
    _inet.udp_ehashfn: udp_ehashfn,
    _inet.udp_ehashfn_pre41: udp_ehashfn_pre41,
    _inet.inet_ehashfn: inet_ehashfn,
    _inet.inet_ehashfn_pre615: inet_ehashfn_pre615,
    _inet.inet6_ehashfn: inet6_ehashfn,
    _inet.inet6_ehashfn_pre615: inet6_ehashfn_pre615,
    _inet.udp6_ehashfn: udp6_ehashfn,
    _inet.udp6_ehash_initval: udp6_ehash_initval,
    _inet.udp6_ehash_initval_typo: udp6_ehash_initval_typo,
    _inet.ipv6_addr_jhash: ipv6_addr_jhash,
    _inet.ipv6_addr_jhash_xorfold: ipv6_addr_jhash_xorfold,
    _inet.ipv4_portaddr_hash: ipv4_portaddr_hash,
    _inet.ipv6_portaddr_hash: ipv6_portaddr_hash,
    _nfct.hash_conntrack_raw: hash_conntrack_raw,
    _nfct.hash_conntrack_raw_combined: hash_conntrack_raw_combined,
    _nfct.hash_conntrack_raw_jhash2: hash_conntrack_raw_jhash2,
    _nfct.hash_conntrack_raw_jhash2_netmix: hash_conntrack_raw_jhash2_netmix,
    _nfct.hash_conntrack_raw_jhash2_zone: hash_conntrack_raw_jhash2_zone,
    _nfct.hash_conntrack_raw_siphash_4u64: hash_conntrack_raw_siphash_4u64,
    _flow.flow_hash_from_keys: flow_hash_from_keys,
    _toeplitz.toeplitz: toeplitz,
}
"""Scalar implementation -> its batch form: every hash the eras table names."""


class _Profile(Protocol):
    """What :func:`function` needs of a :class:`sidkit.kernel.KernelProfile`."""

    def function(self, name: str) -> Callable[..., Any]: ...


def batch_form(scalar: Callable[..., Any]) -> Callable[..., Any] | None:
    """The batch form of a scalar implementation in sidkit.hashing, or None."""
    return _BATCH.get(scalar)


def function(kernel: _Profile, name: str) -> Callable[..., Any]:
    """The batch form of kernel function *name* in *kernel*'s era (a
    :class:`sidkit.kernel.KernelProfile`), bound to the same host traits (byte order,
    ``BITS_PER_LONG``, the IPv6 address hash, the era's word hashes) as
    ``kernel.function(name)`` binds the scalar form -- so the two agree on every input."""
    scalar = kernel.function(name)
    impl = scalar.func if isinstance(scalar, functools.partial) else scalar
    keywords = dict(scalar.keywords) if isinstance(scalar, functools.partial) else {}
    form = _BATCH.get(impl)
    if form is None:
        raise UnknownKernelError(f"{name} ({impl.__name__}) has no batch form in sidkit")
    if "word_hashes" in keywords:
        keywords["word_hashes"] = BatchWordHashes(
            function(kernel, "jhash2"),
            function(kernel, "jhash_3words"),
            function(kernel, "jhash_1word"),
        )
    return functools.partial(form, **keywords) if keywords else form
