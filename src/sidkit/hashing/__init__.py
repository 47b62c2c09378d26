# The public face of sidkit's kernel arithmetic. Every name here is the modern (v6.18,
# little-endian, 64-bit) form of a kernel function, under the kernel's own name and with
# the kernel's argument order; older forms are reached through sidkit.kernel
# (``profile("3.10").function("jhash")``), which is where the eras live. The code sits in
# private modules by family (_jhash, _golden, _siphash, _toeplitz, _inet, _nfct, _flow).
"""Kernel-identical hash functions (modern forms).

Each function's docstring names its kernel source file and the release range in which the
kernel computes exactly this; ``conformance/`` holds the oracle vectors that prove it.
:mod:`sidkit.hashing.batch` has the same functions over numpy arrays (the ``bulk`` extra),
equal to these element for element; it is imported on its own, so that sidkit does not need
numpy.
"""

from __future__ import annotations

from sidkit.hashing._flow import flow_hash_from_keys, pack_flow_keys
from sidkit.hashing._golden import (
    GOLDEN_RATIO_32,
    GOLDEN_RATIO_64,
    hash_32,
    hash_32_legacy,
    hash_64,
    hash_64_legacy,
    hash_64_v46,
    next_pseudo_random32,
    reciprocal_scale,
)
from sidkit.hashing._inet import (
    inet6_ehashfn,
    inet6_ehashfn_pre615,
    inet_ehashfn,
    inet_ehashfn_pre615,
    ipv4_portaddr_hash,
    ipv6_addr_jhash,
    ipv6_addr_jhash_xorfold,
    ipv6_portaddr_hash,
    udp6_ehash_initval,
    udp6_ehash_initval_typo,
    udp6_ehashfn,
    udp_ehashfn,
)
from sidkit.hashing._jhash import (
    JHASH_GOLDEN_RATIO,
    JHASH_INITVAL,
    jhash,
    jhash2,
    jhash2_lookup2,
    jhash_1word,
    jhash_1word_lookup2,
    jhash_1word_pre41,
    jhash_2words,
    jhash_2words_lookup2,
    jhash_2words_pre41,
    jhash_3words,
    jhash_3words_lookup2,
    jhash_3words_pre41,
    jhash_lookup2,
)
from sidkit.hashing._nfct import (
    hash_conntrack_raw,
    hash_conntrack_raw_combined,
    hash_conntrack_raw_jhash2,
    hash_conntrack_raw_jhash2_netmix,
    hash_conntrack_raw_jhash2_zone,
    hash_conntrack_raw_siphash_4u64,
    pack_nf_conntrack_tuple,
)
from sidkit.hashing._siphash import (
    hsiphash,
    siphash,
    siphash_1u32,
    siphash_1u64,
    siphash_2u64,
    siphash_3u32,
    siphash_3u64,
    siphash_4u64,
)
from sidkit.hashing._toeplitz import MICROSOFT_RSS_KEY, crc32, crc32c, toeplitz

__all__ = [
    "GOLDEN_RATIO_32",
    "GOLDEN_RATIO_64",
    "JHASH_GOLDEN_RATIO",
    "JHASH_INITVAL",
    "MICROSOFT_RSS_KEY",
    "crc32",
    "crc32c",
    "flow_hash_from_keys",
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
    "pack_flow_keys",
    "pack_nf_conntrack_tuple",
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
]
