# nf_conntrack's tuple hash, every form it has had. The hash is computed over the memory
# image of struct nf_conntrack_tuple (or a struct built from it), so this module first packs
# that image exactly as the C compiler lays it out (host-order fields in the host's byte
# order, __be16/__be32 fields as network-order bytes, zero padding), then applies the era's
# function. The bucket is reciprocal_scale(hash, nf_conntrack_htable_size) -- the table
# model (sidkit.conntrack) does that part. Which form is in force is data in sidkit.kernel.
"""nf_conntrack ``hash_conntrack_raw()`` in all its forms, and the tuple's memory image."""

from __future__ import annotations

from struct import Struct

from sidkit._errors import InputValueError
from sidkit._validate import check_byteorder, check_key, check_uint
from sidkit.hashing._inet import parse_ip
from sidkit.hashing._jhash import WORD_HASHES, WordHashes
from sidkit.hashing._siphash import siphash, siphash_4u64

__all__ = [
    "AF_INET",
    "AF_INET6",
    "hash_conntrack_raw",
    "hash_conntrack_raw_combined",
    "hash_conntrack_raw_jhash2",
    "hash_conntrack_raw_jhash2_netmix",
    "hash_conntrack_raw_jhash2_zone",
    "hash_conntrack_raw_siphash_4u64",
    "pack_nf_conntrack_tuple",
]

AF_INET = 2
AF_INET6 = 10
M32 = 0xFFFFFFFF
_HASH_END = 39
"""``offsetofend(struct nf_conntrack_tuple, dst.__nfct_hash_offsetend)``: src (20) + dst.u3
(16) + dst.u (2) + dst.protonum (1). ``dst.dir`` (byte 39) is left out on purpose."""


def _addr16(addr: object, name: str) -> tuple[bytes, int]:
    """``union nf_inet_addr`` image (16 bytes, IPv4 in the first 4, rest zero) and family."""
    ip = parse_ip(addr, name)
    if ip.version == 4:
        return ip.packed + bytes(12), AF_INET
    return ip.packed, AF_INET6


def _addrs(src: object, dst: object) -> tuple[bytes, bytes, int]:
    s, fs = _addr16(src, "src")
    d, fd = _addr16(dst, "dst")
    if fs != fd:
        raise InputValueError("src and dst must be of the same address family", code="bad-address")
    return s, d, fs


def pack_nf_conntrack_tuple(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    *,
    dir: int = 0,
    byteorder: str = "little",
) -> bytes:
    """The 40-byte memory image of ``struct nf_conntrack_tuple`` for a TCP/UDP-style tuple.

    Layout (``include/net/netfilter/nf_conntrack_tuple.h``, unchanged since v2.6.15 apart
    from the zero-size ``__nfct_hash_offsetend`` marker of v6.5): ``src.u3`` 16 bytes,
    ``src.u.all`` __be16, ``src.l3num`` u16 (host order), ``dst.u3`` 16, ``dst.u.all``
    __be16, ``dst.protonum`` u8, ``dst.dir`` u8. Ports are given in host order.
    """
    s, d, family = _addrs(src, dst)
    bo = "<" if check_byteorder(byteorder) == "little" else ">"
    return (
        s
        + check_uint(sport, 16, "sport").to_bytes(2, "big")
        + Struct(bo + "H").pack(family)
        + d
        + check_uint(dport, 16, "dport").to_bytes(2, "big")
        + bytes([check_uint(protonum, 8, "protonum"), check_uint(dir, 1, "dir")])
    )


def hash_conntrack_raw(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: bytes,
    *,
    byteorder: str = "little",
) -> int:
    """``hash_conntrack_raw(tuple, zoneid, net)`` in its current form (a u32).

    Kernel source: ``net/netfilter/nf_conntrack_core.c``, v6.5 to current (checked against
    the 6.12 source by the harness): the 16-byte ``nf_conntrack_hash_rnd`` key with
    ``key[0] ^= zoneid`` and ``key[1] ^= net_hash_mix(net)``, then
    ``siphash(tuple, offsetofend(..., dst.__nfct_hash_offsetend))`` -- 39 bytes, the
    direction byte excluded -- truncated to u32. *zone_id* is ``nf_ct_zone_id(zone, dir)``.
    """
    key = check_key(secret, 16, "secret")
    bo = check_byteorder(byteorder)
    k0 = int.from_bytes(key[:8], bo) ^ check_uint(zone_id, 16, "zone_id")
    k1 = int.from_bytes(key[8:], bo) ^ check_uint(net_mix, 32, "net_mix")
    tkey = k0.to_bytes(8, bo) + k1.to_bytes(8, bo)
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=bo)
    return siphash(image[:_HASH_END], tkey) & M32


def hash_conntrack_raw_combined(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: bytes,
    *,
    byteorder: str = "little",
) -> int:
    """``hash_conntrack_raw()`` as siphash over a 48-byte ``combined`` struct (a u32).

    Kernel source: ``net/netfilter/nf_conntrack_core.c`` (checked against the 6.1 source by
    the harness; see sidkit.kernel for the release range): ``struct { nf_conntrack_man src;
    nf_inet_addr dst_addr; unsigned int zone; u32 net_mix; u16 dport; u16 proto; }
    __aligned(8)``, zeroed, filled from the tuple (``dport`` keeps the __be16 bytes),
    hashed with the unmodified ``nf_conntrack_hash_rnd``.
    """
    key = check_key(secret, 16, "secret")
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=byteorder)
    bo = "<" if byteorder == "little" else ">"
    combined = (
        image[:36]  # src (nf_conntrack_man, 20 bytes) and dst.u3 (16)
        + Struct(bo + "II").pack(
            check_uint(zone_id, 32, "zone_id"), check_uint(net_mix, 32, "net_mix")
        )
        + image[36:38]
        + Struct(bo + "H").pack(protonum)
    )
    return siphash(combined, key) & M32


def _jhash2_tuple(image: bytes, seed: int, byteorder: str, word_hashes: WordHashes) -> int:
    bo = check_byteorder(byteorder)
    # n = (sizeof(tuple->src) + sizeof(tuple->dst.u3)) / sizeof(u32) = 9 words, host order;
    # the dst port and protocol go into the seed because dst.dir must stay out of the hash.
    tuple_words = list(Struct(("<" if bo == "little" else ">") + "9I").unpack(image[:36]))
    dport_raw = int.from_bytes(image[36:38], bo)
    return word_hashes.jhash2(tuple_words, (seed ^ ((dport_raw << 16) | image[38])) & M32)


def hash_conntrack_raw_jhash2_netmix(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """``hash_conntrack_raw(tuple, net)``: jhash2 of the tuple's first 9 words, seeded with
    ``nf_conntrack_hash_rnd ^ net_hash_mix(net) ^ (dport << 16 | protonum)``.

    Kernel source: ``net/netfilter/nf_conntrack_core.c``; the zone is not part of the hash
    in this era (*zone_id* is accepted and ignored so that every form has one signature).
    *secret* is the u32 ``nf_conntrack_hash_rnd``. See sidkit.kernel for the releases.
    """
    check_uint(zone_id, 16, "zone_id")
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=byteorder)
    seed = check_uint(secret, 32, "secret") ^ check_uint(net_mix, 32, "net_mix")
    return _jhash2_tuple(image, seed, byteorder, word_hashes)


def hash_conntrack_raw_jhash2_zone(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """``hash_conntrack_raw(tuple, zone)``: jhash2 of the tuple's first 9 words, seeded with
    ``zone ^ nf_conntrack_hash_rnd ^ (dport << 16 | protonum)``.

    Kernel source: ``net/netfilter/nf_conntrack_core.c``; the network namespace is not part
    of the hash in this era (*net_mix* is accepted and ignored). See sidkit.kernel.
    """
    check_uint(net_mix, 32, "net_mix")
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=byteorder)
    seed = check_uint(zone_id, 16, "zone_id") ^ check_uint(secret, 32, "secret")
    return _jhash2_tuple(image, seed, byteorder, word_hashes)


def hash_conntrack_raw_siphash_4u64(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: bytes,
    *,
    byteorder: str = "little",
) -> int:
    """``hash_conntrack_raw()`` as ``siphash_4u64`` over folded tuple words (a u32).

    Kernel source: ``net/netfilter/nf_conntrack_core.c``, v6.2 to v6.4 (commit d2c806abcf0b
    "netfilter: conntrack: use siphash_4u64"; replaced in v6.5 by eaf9e7192ec9 "don't fold
    port numbers into addresses before hashing"). With ``all[]`` the address words and
    ``u.all`` the raw ports: ``a = src[0] << 32 | src[3]``, ``b = dst[0] << 32 | dst[3]``,
    ``c = (sport << 32 | dport << 16 | protonum) ^ (src[1] << 32 | src[2])``,
    ``d = (zone << 32 | net_mix) + (dst[1] << 32 | dst[2])``. Read from the patch text;
    no compiled oracle (no Debian source of 6.2-6.4 is reachable).
    """
    key = check_key(secret, 16, "secret")
    bo = check_byteorder(byteorder)
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=bo)
    fmt = Struct(("<" if bo == "little" else ">") + "4I")
    s0, s1, s2, s3 = fmt.unpack(image[0:16])
    d0, d1, d2, d3 = fmt.unpack(image[20:36])
    sp = int.from_bytes(image[16:18], bo)
    dp = int.from_bytes(image[36:38], bo)
    m64 = (1 << 64) - 1
    a = s0 << 32 | s3
    b = d0 << 32 | d3
    c = ((sp << 32) | (dp << 16) | image[38]) ^ (s1 << 32 | s2)
    d = (
        (check_uint(zone_id, 16, "zone_id") << 32 | check_uint(net_mix, 32, "net_mix"))
        + (d1 << 32 | d2)
    ) & m64
    return siphash_4u64(a, b, c, d, key) & M32


def hash_conntrack_raw_jhash2(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    protonum: int,
    zone_id: int,
    net_mix: int,
    secret: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """``hash_conntrack_raw(tuple)``: jhash2 of the tuple's first 9 words seeded with
    ``nf_conntrack_hash_rnd ^ (dport << 16 | protonum)`` -- neither zone nor namespace.

    Kernel source: ``net/netfilter/nf_conntrack_core.c``, v4.3 to v4.6: commit deedb59039f1
    ("netfilter: nf_conntrack: add direction support for zones") took the zone out of the
    seed; the namespace mix came in v4.7. *zone_id* and *net_mix* are accepted and ignored.
    From the kernel history; no compiled oracle.
    """
    check_uint(zone_id, 16, "zone_id")
    check_uint(net_mix, 32, "net_mix")
    image = pack_nf_conntrack_tuple(src, sport, dst, dport, protonum, byteorder=byteorder)
    return _jhash2_tuple(image, check_uint(secret, 32, "secret"), byteorder, word_hashes)
