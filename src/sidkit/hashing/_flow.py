# The flow dissector's hash (skb_get_hash, RPS/RFS, fq, tunnels' source ports). The hash is
# siphash over part of struct flow_keys' memory image, from the 8-byte aligned ``basic``
# member to the end of the address union's used part, after the "consistentify" step that
# sorts addresses and ports so both directions of a flow hash alike. Like _nfct, this
# module packs the struct image exactly (zeroed, then filled as the dissector fills it for
# a plain IPv4/IPv6 TCP/UDP packet) and then hashes it.
"""The flow dissector's ``__flow_hash_from_keys()`` and the ``struct flow_keys`` image."""

from __future__ import annotations

import ipaddress

from sidkit._errors import InputValueError
from sidkit._validate import check_byteorder, check_key, check_uint
from sidkit.hashing._inet import parse_ip
from sidkit.hashing._siphash import siphash

__all__ = ["FLOW_KEYS_SIZE", "flow_hash_from_keys", "pack_flow_keys"]

FLOW_KEYS_SIZE = 80
"""``sizeof(struct flow_keys)`` on 64-bit kernels with the current layout (v5.12+: control 8,
basic 4 at offset 8, tags 4, vlan 8, cvlan 8, keyid 4, ports 4, icmp 4, addrs 32, padding 4)."""
_HASH_OFFSET = 8  # FLOW_KEYS_HASH_OFFSET = offsetof(struct flow_keys, basic)
_ADDRS_OFFSET = 44
_ADDR_TYPE_IPV4 = 3  # FLOW_DISSECTOR_KEY_IPV4_ADDRS
_ADDR_TYPE_IPV6 = 4  # FLOW_DISSECTOR_KEY_IPV6_ADDRS
M32 = 0xFFFFFFFF


def pack_flow_keys(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    ip_proto: int,
    *,
    flow_label: int = 0,
    byteorder: str = "little",
) -> bytes:
    """The ``struct flow_keys`` image after ``__flow_hash_consistentify()`` (80 bytes).

    Kernel source: ``include/net/flow_dissector.h`` (layout) and ``net/core/flow_dissector.c``
    (``__flow_hash_consistentify``), v5.12 to current. Addresses are swapped when
    ``dst < src`` (IPv4 compared as host-order u32s, IPv6 with ``memcmp``), ports when
    ``(u16)dst < (u16)src`` on the raw __be16 values. *flow_label* is the IPv6 flow label as
    the dissector stores it (``ntohl`` of the header word's label bits).
    """
    s = parse_ip(src, "src")
    d = parse_ip(dst, "dst")
    bo = check_byteorder(byteorder)
    sp = check_uint(sport, 16, "sport").to_bytes(2, "big")
    dp = check_uint(dport, 16, "dport").to_bytes(2, "big")
    if isinstance(s, ipaddress.IPv4Address) and isinstance(d, ipaddress.IPv4Address):
        addr_type, n_proto = _ADDR_TYPE_IPV4, 0x0800
        sa, da = s.packed, d.packed
        if int.from_bytes(da, bo) < int.from_bytes(sa, bo):
            sa, da = da, sa
    elif isinstance(s, ipaddress.IPv6Address) and isinstance(d, ipaddress.IPv6Address):
        addr_type, n_proto = _ADDR_TYPE_IPV6, 0x86DD
        sa, da = s.packed, d.packed
        if da < sa:
            sa, da = da, sa
    else:
        raise InputValueError("src and dst must be IPv4 or IPv6 addresses of one family")
    if int.from_bytes(dp, bo) < int.from_bytes(sp, bo):
        sp, dp = dp, sp
    image = bytearray(FLOW_KEYS_SIZE)
    image[2:4] = addr_type.to_bytes(2, bo)
    image[8:10] = n_proto.to_bytes(2, "big")
    image[10] = check_uint(ip_proto, 8, "ip_proto")
    image[12:16] = check_uint(flow_label, 20, "flow_label").to_bytes(4, bo)
    image[36:38] = sp
    image[38:40] = dp
    image[_ADDRS_OFFSET : _ADDRS_OFFSET + 2 * len(sa)] = sa + da
    return bytes(image)


def flow_hash_from_keys(
    src: object,
    sport: int,
    dst: object,
    dport: int,
    ip_proto: int,
    key: bytes,
    *,
    flow_label: int = 0,
    byteorder: str = "little",
) -> int:
    """``__flow_hash_from_keys(keys, keyval)`` for a plain IPv4/IPv6 TCP/UDP flow (a u32).

    Kernel source: ``net/core/flow_dissector.c``, siphash form (v5.4+; layout of v5.12+,
    checked against 6.1 and 6.12 by the harness): ``siphash(&keys->basic,
    flow_keys_hash_length(keys), keyval)`` truncated to u32, with 0 mapped to 1 (0 means
    "no hash" to the stack). The hashed length is ``sizeof(flow_keys) - 8 - sizeof(addrs)``
    plus the used address size: 48 bytes for IPv4, 72 for IPv6. *key* is the 16-byte
    ``hashrnd``.
    """
    k = check_key(key, 16, "key")
    image = pack_flow_keys(
        src, sport, dst, dport, ip_proto, flow_label=flow_label, byteorder=byteorder
    )
    used = 8 if image[2:4] == _ADDR_TYPE_IPV4.to_bytes(2, check_byteorder(byteorder)) else 32
    length = FLOW_KEYS_SIZE - _HASH_OFFSET - 32 + used
    h = siphash(image[_HASH_OFFSET : _HASH_OFFSET + length], k) & M32
    return h or 1
