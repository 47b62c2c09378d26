# Strategy: what is generated, as data: one FunctionSpec per kernel function and output file
# (name, argTypes, the kernel files its vectors depend on -- cited in each group's
# source.files -- and its case maker), the -m32 specs whose results depend on BITS_PER_LONG,
# the functions the -m32 build must merely agree on, and the meaning of every flag. Adding a
# function is adding a row here (plus a harness command).
"""The table of generated functions (FunctionSpec), their cited kernel files and flag notes."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .cases import (
    Case,
    cases_conntrack,
    cases_conntrack_zones,
    cases_ehash,
    cases_flow,
    cases_hash_32,
    cases_hash_64,
    cases_hash_64_32,
    cases_ipv6_addr_jhash,
    cases_jhash,
    cases_jhash2,
    cases_portaddr,
    cases_prandom,
    cases_reciprocal_scale,
    cases_siphash_bytes,
    cases_siphash_words,
    cases_toeplitz,
    cases_words,
)
from .tree import NETNS_HASH, ZONES_COMMON, ZONES_H

__all__ = [
    "BITS32_COMMENT",
    "FLAG_NOTES",
    "JHASH_FILES",
    "SIPHASH_FILES",
    "SPECS",
    "SPECS_32",
    "T_BYTES",
    "WORD_SIZE_FREE",
    "FunctionSpec",
]


@dataclass
class FunctionSpec:
    name: str
    algorithm: str  # output file kernel-<algorithm>.json
    arg_types: dict[str, str]
    files: list[str]
    cases: Callable[[random.Random], list[Case]]
    toeplitz: bool = False
    needs_prandom: bool = False


# Files whose text the vectors of each function depend on (cited in source.files).
JHASH_FILES = ["include/linux/jhash.h", "include/linux/unaligned/packed_struct.h"]
SIPHASH_FILES = ["include/linux/siphash.h", "lib/siphash.c"]


T_BYTES = "bytes"
SPECS: list[FunctionSpec] = [
    FunctionSpec("jhash", "jhash", {"key": T_BYTES, "initval": "u32"}, JHASH_FILES, cases_jhash),
    FunctionSpec(
        "jhash2", "jhash", {"words": "u32list", "initval": "u32"}, JHASH_FILES, cases_jhash2
    ),
    FunctionSpec(
        "jhash_1word",
        "jhash",
        {"a": "u32", "initval": "u32"},
        JHASH_FILES,
        cases_words("jhash_1word", 1),
    ),
    FunctionSpec(
        "jhash_2words",
        "jhash",
        {"a": "u32", "b": "u32", "initval": "u32"},
        JHASH_FILES,
        cases_words("jhash_2words", 2),
    ),
    FunctionSpec(
        "jhash_3words",
        "jhash",
        {"a": "u32", "b": "u32", "c": "u32", "initval": "u32"},
        JHASH_FILES,
        cases_words("jhash_3words", 3),
    ),
    FunctionSpec(
        "hash_32", "hash", {"val": "u32", "bits": "int"}, ["include/linux/hash.h"], cases_hash_32
    ),
    FunctionSpec(
        "hash_64", "hash", {"val": "u64", "bits": "int"}, ["include/linux/hash.h"], cases_hash_64
    ),
    FunctionSpec(
        "reciprocal_scale",
        "reciprocal_scale",
        {"val": "u32", "ep_ro": "u32"},
        ["include/linux/math.h"],
        cases_reciprocal_scale,
    ),
    FunctionSpec(
        "next_pseudo_random32",
        "prandom",
        {"seed": "u32"},
        ["include/linux/prandom.h"],
        cases_prandom,
        needs_prandom=True,
    ),
    FunctionSpec(
        "siphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_bytes("siphash", 64),
    ),
    FunctionSpec(
        "siphash_1u64",
        "siphash",
        {"first": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_1u64", 1, 64),
    ),
    FunctionSpec(
        "siphash_2u64",
        "siphash",
        {"first": "u64", "second": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_2u64", 2, 64),
    ),
    FunctionSpec(
        "siphash_3u64",
        "siphash",
        {"first": "u64", "second": "u64", "third": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_3u64", 3, 64),
    ),
    FunctionSpec(
        "siphash_4u64",
        "siphash",
        {"first": "u64", "second": "u64", "third": "u64", "forth": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_4u64", 4, 64),
    ),
    FunctionSpec(
        "siphash_1u32",
        "siphash",
        {"first": "u32", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_1u32", 1, 32),
    ),
    FunctionSpec(
        "siphash_3u32",
        "siphash",
        {"first": "u32", "second": "u32", "third": "u32", "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_words("siphash_3u32", 3, 32),
    ),
    FunctionSpec(
        "hsiphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES},
        SIPHASH_FILES,
        cases_siphash_bytes("hsiphash", 64),
    ),
    FunctionSpec(
        "inet_ehashfn",
        "ehash",
        {"laddr": "ip", "lport": "u16", "faddr": "ip", "fport": "u16", "initval": "u32"},
        [
            "net/ipv4/inet_hashtables.c",
            "include/net/inet_sock.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        cases_ehash("inet_ehashfn", v6=False),
    ),
    FunctionSpec(
        "udp_ehashfn",
        "ehash",
        {"laddr": "ip", "lport": "u16", "faddr": "ip", "fport": "u16", "initval": "u32"},
        ["net/ipv4/udp.c", "include/net/inet_sock.h", NETNS_HASH, "include/linux/jhash.h"],
        cases_ehash("udp_ehashfn", v6=False),
    ),
    FunctionSpec(
        "inet6_ehashfn",
        "ehash",
        {
            "laddr": "ip",
            "lport": "u16",
            "faddr": "ip",
            "fport": "u16",
            "initval": "u32",
            "ipv6_hash_secret": "u32",
        },
        [
            "net/ipv6/inet6_hashtables.c",
            "include/net/inet6_hashtables.h",
            "include/net/ipv6.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        cases_ehash("inet6_ehashfn", v6=True),
    ),
    FunctionSpec(
        "udp6_ehashfn",
        "ehash",
        {
            "laddr": "ip",
            "lport": "u16",
            "faddr": "ip",
            "fport": "u16",
            "initval": "u32",
            "ipv6_hash_secret": "u32",
        },
        [
            "net/ipv6/udp.c",
            "include/net/inet6_hashtables.h",
            "include/net/ipv6.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        cases_ehash("udp6_ehashfn", v6=True),
    ),
    FunctionSpec(
        "ipv6_addr_jhash",
        "ehash",
        {"addr": "ip", "initval": "u32"},
        ["include/net/ipv6.h", "include/linux/jhash.h"],
        cases_ipv6_addr_jhash,
    ),
    FunctionSpec(
        "ipv4_portaddr_hash",
        "portaddr_hash",
        {"net_mix": "u32", "addr": "ip", "port": "u16"},
        ["include/net/ip.h", NETNS_HASH, "include/linux/jhash.h"],
        cases_portaddr("ipv4_portaddr_hash", v6=False),
    ),
    FunctionSpec(
        "ipv6_portaddr_hash",
        "portaddr_hash",
        {"net_mix": "u32", "addr": "ip", "port": "u16"},
        ["include/net/ipv6.h", NETNS_HASH, "include/linux/jhash.h"],
        cases_portaddr("ipv6_portaddr_hash", v6=True),
    ),
    FunctionSpec(
        "hash_conntrack_raw",
        "conntrack",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "protonum": "u8",
            "zone_id": "u16",
            "net_mix": "u32",
            "secret": T_BYTES,
        },
        [
            "net/netfilter/nf_conntrack_core.c",
            "include/net/netfilter/nf_conntrack_tuple.h",
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "include/uapi/linux/netfilter.h",
            NETNS_HASH,
            *SIPHASH_FILES,
        ],
        cases_conntrack,
    ),
    FunctionSpec(
        "hash_conntrack_raw",
        "conntrack-zones",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "protonum": "u8",
            "zone_id": "u16",
            "net_mix": "u32",
            "secret": T_BYTES,
        },
        [
            "net/netfilter/nf_conntrack_core.c",
            ZONES_H,
            ZONES_COMMON,
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "include/net/netfilter/nf_conntrack_tuple.h",
            "include/uapi/linux/netfilter.h",
            NETNS_HASH,
            *SIPHASH_FILES,
        ],
        cases_conntrack_zones,
    ),
    FunctionSpec(
        "flow_hash_from_keys",
        "flow_dissector",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "ip_proto": "u8",
            "key": T_BYTES,
        },
        ["net/core/flow_dissector.c", "include/net/flow_dissector.h", *SIPHASH_FILES],
        cases_flow,
    ),
    FunctionSpec(
        "toeplitz",
        "toeplitz",
        {"data": T_BYTES, "key": T_BYTES},
        ["tools/testing/selftests/net/toeplitz.c"],
        cases_toeplitz,
        toeplitz=True,
    ),
]


def _bits_per_long_32(
    make: Callable[[random.Random], list[Case]],
) -> Callable[[random.Random], list[Case]]:
    """The cases of *make* with ``bits_per_long = 32`` added to their args (the runner passes
    it to sidkit, overriding the 64 the kernel profile binds)."""

    def wrapped(rng: random.Random) -> list[Case]:
        return [
            Case(c.comment, c.flags, {**c.args, "bits_per_long": 32}, c.line) for c in make(rng)
        ]

    return wrapped


# Functions whose result depends on BITS_PER_LONG, run on the -m32 build (Build.exe32). Their
# groups carry "bits_per_long": 32 in every test's args and follow the 64-bit groups.
SPECS_32: list[FunctionSpec] = [
    FunctionSpec(
        "hash_64",
        "hash",
        {"val": "u64", "bits": "int", "bits_per_long": "int"},
        ["include/linux/hash.h"],
        _bits_per_long_32(cases_hash_64_32),
    ),
    FunctionSpec(
        "hsiphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES, "bits_per_long": "int"},
        SIPHASH_FILES,
        _bits_per_long_32(cases_siphash_bytes("hsiphash", 64, key_len=8)),
    ),
]
# Functions whose C does not depend on BITS_PER_LONG: the -m32 build must agree with the 64-bit
# one on all their cases (a check of the harness, nothing is written from the -m32 results).
WORD_SIZE_FREE = (
    "jhash",
    "jhash2",
    "jhash_1word",
    "jhash_2words",
    "jhash_3words",
    "hash_32",
    "reciprocal_scale",
    "siphash",
    "siphash_1u64",
    "siphash_2u64",
    "siphash_3u64",
    "siphash_4u64",
    "siphash_1u32",
    "siphash_3u32",
)
BITS32_COMMENT = (
    "BITS_PER_LONG == 32: the same kernel text compiled with gcc -m32 (i386, ILP32); "
    "hsiphash_key_t is unsigned long key[2] = 8 bytes"
)

FLAG_NOTES = {
    "EdgeValue": "an edge value: zero, all-ones, boundary ports/lengths or special addresses",
    "EmptyInput": "empty byte string or word list",
    "Random": "pseudo-random input from a fixed seed",
    "LongInput": "input longer than the exhaustive length range",
    "AnyAddress": "an all-zero address (0.0.0.0 or ::)",
    "V4Mapped": "an IPv4-mapped IPv6 address (::ffff:a.b.c.d)",
    "SelfTest": "vector from the kernel's SipHash self-test (the reference implementation's)",
    "DirectionalZone": "a conntrack zone that applies in one direction only (zone->dir)",
    "ReplyNode": "the REPLY node's tuple, hashed with nf_ct_zone_id(zone, IP_CT_DIR_REPLY)",
}
