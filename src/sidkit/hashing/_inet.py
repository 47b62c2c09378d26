# The socket-table hashes of the IPv4/IPv6 stack: the established-hash ("ehash") functions
# that also drive SO_REUSEPORT selection for UDP, the (port, address) table hashes, and
# __ipv6_addr_jhash. The kernel feeds them __be32 / struct in6_addr values reinterpreted
# as host integers ((__force u32)addr), and ports partly in host order (the local port)
# and partly in network order (the foreign port). sidkit's API takes addresses as
# strings or ipaddress objects and ports as ordinary host-order ints, and performs the
# kernel's reinterpretations itself according to the host byte order (little-endian by
# default; big-endian through a kernel profile). Era differences (the v6.15 lport change,
# the 2023 __ipv6_addr_jhash change) are separate functions; sidkit.kernel picks one.
"""inet/udp ehash functions, port-address hashes and IPv6 address hashes."""

from __future__ import annotations

import ipaddress
from struct import Struct

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import ByteOrder, check_byteorder, check_uint
from sidkit.hashing._jhash import (
    M32,
    WORD_HASHES,
    WordHashes,
    jhash2,
    jhash_1word_pre41,
    jhash_3words_pre41,
)

__all__ = [
    "Address",
    "inet6_ehashfn",
    "inet6_ehashfn_pre615",
    "inet_ehashfn",
    "inet_ehashfn_pre615",
    "ipv4_portaddr_hash",
    "ipv6_addr_jhash",
    "ipv6_addr_jhash_xorfold",
    "ipv6_portaddr_hash",
    "parse_ip",
    "parse_ipv4",
    "parse_ipv6",
    "udp6_ehash_initval",
    "udp6_ehash_initval_typo",
    "udp6_ehashfn",
    "udp_ehashfn",
]

Address = str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address
"""An address as sidkit accepts it: text, packed network-order bytes, or an ipaddress object."""

_LE4 = {"little": Struct("<4I"), "big": Struct(">4I")}


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(addr: object, name: str = "address") -> IPAddress:
    """Return *addr* (text, 4 or 16 packed network-order bytes, or an ``ipaddress`` object)
    as an ``ipaddress`` object; anything else is a sidkit error naming the argument."""
    if isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return addr
    if isinstance(addr, str) or (isinstance(addr, bytes) and len(addr) in (4, 16)):
        try:
            return ipaddress.ip_address(addr)
        except ValueError as exc:
            raise InputValueError(f"{name}: {exc}", code="bad-address") from None
    if isinstance(addr, bytes):
        raise InputValueError(
            f"{name}: packed addresses are 4 or 16 bytes, got {len(addr)}", code="bad-address"
        )
    raise InputTypeError(
        f"{name} must be an address (str, packed bytes or ipaddress object), "
        f"not {type(addr).__name__}",
        code="bad-address",
    )


def parse_ipv4(addr: object, name: str = "address") -> bytes:
    """Return the 4 network-order bytes of an IPv4 address given as text, bytes or object."""
    ip = parse_ip(addr, name)
    if ip.version != 4:
        raise InputValueError(f"{name} must be an IPv4 address, got {ip}", code="bad-address")
    return ip.packed


def parse_ipv6(addr: object, name: str = "address") -> bytes:
    """Return the 16 network-order bytes of an IPv6 address given as text, bytes or object."""
    ip = parse_ip(addr, name)
    if ip.version != 6:
        raise InputValueError(f"{name} must be an IPv6 address, got {ip}", code="bad-address")
    return ip.packed


def _v4word(addr: object, name: str, byteorder: ByteOrder) -> int:
    """``(__force u32)`` of a ``__be32`` address on a host of *byteorder*."""
    return int.from_bytes(parse_ipv4(addr, name), byteorder)


def _v6words(addr: object, name: str, byteorder: ByteOrder) -> tuple[int, int, int, int]:
    """``s6_addr32[0..3]`` of an in6_addr as host integers."""
    w: tuple[int, int, int, int] = _LE4[byteorder].unpack(parse_ipv6(addr, name))
    return w


def _be16(port: object, name: str, byteorder: ByteOrder) -> int:
    """``(__force u32)`` of a ``__be16`` port: the host-order *port* stored big-endian."""
    p = check_uint(port, 16, name)
    return ((p & 0xFF) << 8) | (p >> 8) if byteorder == "little" else p


_PRE41 = WordHashes(jhash2, jhash_3words_pre41, jhash_1word_pre41)


def inet_ehashfn(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """TCP/IPv4 ``inet_ehashfn()`` from v6.15 on: ``lport + __inet_ehashfn(laddr, 0, ...)``.

    Kernel source: ``net/ipv4/inet_hashtables.c`` ``inet_ehashfn()``, v6.15 to current
    (commit "inet: change lport contribution to inet_ehashfn() and inet6_ehashfn()"):
    ``lport + jhash_3words(laddr, faddr, fport, initval)`` (with ``(u32)0 << 16 | fport`` as
    the third word), so that consecutive local ports land in consecutive buckets.
    *initval* is ``inet_ehash_secret + net_hash_mix(net)``; *lport* is in host order,
    *fport* is given in host order and hashed as the kernel's ``__be16``.
    """
    bo = check_byteorder(byteorder)
    h = word_hashes.jhash_3words(
        _v4word(laddr, "laddr", bo), _v4word(faddr, "faddr", bo), _be16(fport, "fport", bo), initval
    )
    return (check_uint(lport, 16, "lport") + h) & M32


def inet_ehashfn_pre615(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """TCP/IPv4 ``inet_ehashfn()`` before v6.15: ``__inet_ehashfn(laddr, lport, faddr, fport)``.

    Kernel source: ``net/ipv4/inet_hashtables.c`` (v3.13 to v6.14; before v3.13 the same
    expression lived in ``include/net/inet_sock.h`` with the single ``inet_ehash_secret``):
    ``jhash_3words(laddr, faddr, lport << 16 | fport, initval)``.
    """
    return udp_ehashfn(
        laddr, lport, faddr, fport, initval, byteorder=byteorder, word_hashes=word_hashes
    )


def udp_ehashfn(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """UDP/IPv4 ``udp_ehashfn()``: ``jhash_3words(laddr, faddr, lport << 16 | fport, initval)``.

    Kernel source: ``net/ipv4/udp.c`` ``udp_ehashfn()`` calling ``__inet_ehashfn()``
    (``include/net/inet_hashtables.h``; earlier ``include/net/inet_sock.h``), v3.13 to
    current -- not touched by the v6.15 lport change. *initval* is
    ``udp_ehash_secret + net_hash_mix(net)``. *faddr*/*fport* are the datagram's source and
    *lport* its destination port; *laddr* is the address the lookup pass was made for, which
    is the datagram's destination only for sockets bound to a specific address: a group bound
    to ``0.0.0.0`` is found by the second, wildcard pass of ``__udp4_lib_lookup()``, and that
    pass hashes with ``laddr = INADDR_ANY`` (measured on 6.18; same code in 6.1 and 6.12).
    :class:`sidkit.reuseport.Port` chooses the right *laddr*. This is the hash the SO_REUSEPORT
    group of a UDP socket uses (``ctx->hash`` in an SK_REUSEPORT program).
    """
    bo = check_byteorder(byteorder)
    word = (check_uint(lport, 16, "lport") << 16) | _be16(fport, "fport", bo)
    return word_hashes.jhash_3words(
        _v4word(laddr, "laddr", bo), _v4word(faddr, "faddr", bo), word, initval
    )


def udp_ehashfn_pre41(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    *,
    byteorder: str = "little",
) -> int:
    """:func:`udp_ehashfn` as kernels v3.9 to v4.0 computed it.

    The expression is the same, but ``jhash_3words`` still added the golden-ratio start
    value and not the word count (``JHASH_INITVAL + initval``; commit 2e7056c43321 changed
    that in v4.1). In v3.9-v3.12 the function was ``inet_ehashfn`` with
    ``inet_ehash_secret``; sidkit folds the secret into *initval* either way. Kernel source:
    ``include/net/inet_sock.h`` (v3.9-v3.12), ``net/ipv4/udp.c`` (v3.13-v4.0).
    """
    return udp_ehashfn(laddr, lport, faddr, fport, initval, byteorder=byteorder, word_hashes=_PRE41)


def ipv6_addr_jhash(
    addr: Address, initval: int, *, byteorder: str = "little", word_hashes: WordHashes = WORD_HASHES
) -> int:
    """``__ipv6_addr_jhash(a, initval)`` in its jhash2 form: ``jhash2(s6_addr32, 4, initval)``.

    Kernel source: ``include/net/ipv6.h``; see sidkit.kernel for the release that replaced
    the xor-fold (:func:`ipv6_addr_jhash_xorfold`).
    """
    return word_hashes.jhash2(_v6words(addr, "addr", check_byteorder(byteorder)), initval)


def ipv6_addr_jhash_xorfold(
    addr: Address, initval: int, *, byteorder: str = "little", word_hashes: WordHashes = WORD_HASHES
) -> int:
    """``__ipv6_addr_jhash(a, initval)`` in its older xor-fold form.

    Kernel source: ``include/net/ipv6.h``: ``jhash_3words(a[0] ^ a[1], a[2], a[3], initval)``
    over ``s6_addr32``; see sidkit.kernel for the releases.
    """
    w = _v6words(addr, "addr", check_byteorder(byteorder))
    return word_hashes.jhash_3words(w[0] ^ w[1], w[2], w[3], initval)


def _inet6(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    addr_secret: int,
    byteorder: str,
    xorfold: bool,
    lport_outside: bool,
    word_hashes: WordHashes,
) -> int:
    bo = check_byteorder(byteorder)
    lhash = _v6words(laddr, "laddr", bo)[3]
    fjh = ipv6_addr_jhash_xorfold if xorfold else ipv6_addr_jhash
    fhash = fjh(
        faddr,
        check_uint(addr_secret, 32, "ipv6_hash_secret"),
        byteorder=bo,
        word_hashes=word_hashes,
    )
    lp = check_uint(lport, 16, "lport")
    if lport_outside:
        return (
            lp + word_hashes.jhash_3words(lhash, fhash, _be16(fport, "fport", bo), initval)
        ) & M32
    return word_hashes.jhash_3words(lhash, fhash, (lp << 16) | _be16(fport, "fport", bo), initval)


def inet6_ehashfn(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    ipv6_hash_secret: int,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """TCP/IPv6 ``inet6_ehashfn()`` from v6.15 on.

    Kernel source: ``net/ipv6/inet6_hashtables.c``, v6.15 to current: ``lhash = laddr
    s6_addr32[3]``, ``fhash = __ipv6_addr_jhash(faddr, ipv6_hash_secret)``, result
    ``lport + __inet6_ehashfn(lhash, 0, fhash, fport, initval)``. *initval* is
    ``inet6_ehash_secret + net_hash_mix(net)``. *xorfold* selects the older
    ``__ipv6_addr_jhash`` (kernel profiles set it).
    """
    return _inet6(
        laddr, lport, faddr, fport, initval, ipv6_hash_secret, byteorder, xorfold, True, word_hashes
    )


def inet6_ehashfn_pre615(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    ipv6_hash_secret: int,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """TCP/IPv6 ``inet6_ehashfn()`` before v6.15: ``jhash_3words(lhash, fhash, lport << 16 |
    fport, initval)``.

    Kernel source: ``net/ipv6/inet6_hashtables.c``, v3.13 to v6.14.
    """
    addrs = (laddr, lport, faddr, fport, initval, ipv6_hash_secret)
    return _inet6(*addrs, byteorder, xorfold, False, word_hashes)


def udp6_ehashfn(
    laddr: Address,
    lport: int,
    faddr: Address,
    fport: int,
    initval: int,
    ipv6_hash_secret: int,
    *,
    byteorder: str = "little",
    xorfold: bool = False,
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """UDP/IPv6 ``udp6_ehashfn()``: ``jhash_3words(lhash, fhash, lport << 16 | fport, initval)``.

    Kernel source: ``net/ipv6/udp.c``, v3.13 to current (not touched by the v6.15 change).
    ``lhash`` is the last word of *laddr* -- the lookup pass's address, so ``::`` (lhash 0)
    for a group bound to the wildcard, as for IPv4; ``fhash = __ipv6_addr_jhash(faddr,
    ipv6_hash_secret)`` where the secret is ``udp_ipv6_hash_secret``. *initval* is
    ``udp6_ehash_secret + net_hash_mix(net)`` on fixed kernels; before the "udp6: fix
    udp6_ehashfn() typo" fix it was ``udp_ipv6_hash_secret + net_hash_mix(net)`` --
    sidkit.kernel's profile computes the right initval for an era.
    """
    addrs = (laddr, lport, faddr, fport, initval, ipv6_hash_secret)
    return _inet6(*addrs, byteorder, xorfold, False, word_hashes)


def ipv4_portaddr_hash(
    net_mix: int,
    addr: Address,
    port: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """``ipv4_portaddr_hash(net, saddr, port)``: ``jhash_1word(saddr, net_hash_mix) ^ port``.

    Kernel source: ``include/net/ip.h`` (earlier ``net/ipv4/udp.c``), v2.6.35 to current; the
    UDP secondary (hash2) table and the 4-tuple table key on it.
    """
    a = _v4word(addr, "addr", check_byteorder(byteorder))
    return word_hashes.jhash_1word(a, check_uint(net_mix, 32, "net_mix")) ^ check_uint(
        port, 16, "port"
    )


def ipv6_portaddr_hash(
    net_mix: int,
    addr: Address,
    port: int,
    *,
    byteorder: str = "little",
    word_hashes: WordHashes = WORD_HASHES,
) -> int:
    """``ipv6_portaddr_hash(net, addr6, port)``.

    Kernel source: ``include/net/ipv6.h``, v2.6.35 to current: the unspecified address hashes
    as ``jhash_1word(0, mix)``, a v4-mapped one as ``jhash_1word(s6_addr32[3], mix)``, any
    other as ``jhash2(s6_addr32, 4, mix)``; then ``^ port``.
    """
    packed = parse_ipv6(addr, "addr")
    w: tuple[int, int, int, int] = _LE4[check_byteorder(byteorder)].unpack(packed)
    mix = check_uint(net_mix, 32, "net_mix")
    if not any(packed):
        h = word_hashes.jhash_1word(0, mix)
    elif packed[:12] == b"\0" * 10 + b"\xff\xff":
        h = word_hashes.jhash_1word(w[3], mix)
    else:
        h = word_hashes.jhash2(w, mix)
    return h ^ check_uint(port, 16, "port")


def udp6_ehash_initval(udp6_ehash_secret: int, udp_ipv6_hash_secret: int, net_mix: int) -> int:
    """The *initval* that ``udp6_ehashfn()`` passes on, on fixed kernels:
    ``udp6_ehash_secret + net_hash_mix(net)``.

    Kernel source: ``net/ipv6/udp.c`` after commit 51d03e2f2203 ("udp6: fix udp6_ehashfn()
    typo", v6.5, backported to the 6.1, 5.15, 5.10, 5.4 and 4.19 stable branches).
    *udp_ipv6_hash_secret* is accepted for symmetry with the buggy form and not used.
    """
    check_uint(udp_ipv6_hash_secret, 32, "udp_ipv6_hash_secret")
    secret = check_uint(udp6_ehash_secret, 32, "udp6_ehash_secret")
    return (secret + check_uint(net_mix, 32, "net_mix")) & M32


def udp6_ehash_initval_typo(udp6_ehash_secret: int, udp_ipv6_hash_secret: int, net_mix: int) -> int:
    """The *initval* of ``udp6_ehashfn()`` from v3.13 to v6.4: ``udp_ipv6_hash_secret +
    net_hash_mix(net)`` -- the address-hash secret used twice, ``udp6_ehash_secret``
    initialised but never used (the typo fixed by commit 51d03e2f2203 in v6.5).
    """
    check_uint(udp6_ehash_secret, 32, "udp6_ehash_secret")
    secret = check_uint(udp_ipv6_hash_secret, 32, "udp_ipv6_hash_secret")
    return (secret + check_uint(net_mix, 32, "net_mix")) & M32
