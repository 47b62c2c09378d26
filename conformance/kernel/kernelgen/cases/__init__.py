# Strategy: one module per function family (hashes, siphash, net, conntrack) over a shared
# Case and input helpers (base). Case makers are pure: a seeded random.Random in, cases out;
# results come only from the compiled harness. This face re-exports what specs.py and
# checks.py use.
"""The test cases of every kernel function, one module per family."""

from __future__ import annotations

from .base import Case
from .conntrack import (
    DIR_NAMES,
    ZONE_CONFIGS,
    cases_conntrack,
    cases_conntrack_zones,
    nf_ct_zone_id_expected,
)
from .hashes import (
    cases_hash_32,
    cases_hash_64,
    cases_hash_64_32,
    cases_jhash,
    cases_jhash2,
    cases_prandom,
    cases_reciprocal_scale,
    cases_words,
)
from .net import (
    MS_RSS_KEY,
    cases_ehash,
    cases_flow,
    cases_ipv6_addr_jhash,
    cases_portaddr,
    cases_toeplitz,
)
from .siphash import cases_siphash_bytes, cases_siphash_words

__all__ = [
    "DIR_NAMES",
    "MS_RSS_KEY",
    "ZONE_CONFIGS",
    "Case",
    "cases_conntrack",
    "cases_conntrack_zones",
    "cases_ehash",
    "cases_flow",
    "cases_hash_32",
    "cases_hash_64",
    "cases_hash_64_32",
    "cases_ipv6_addr_jhash",
    "cases_jhash",
    "cases_jhash2",
    "cases_portaddr",
    "cases_prandom",
    "cases_reciprocal_scale",
    "cases_siphash_bytes",
    "cases_siphash_words",
    "cases_toeplitz",
    "cases_words",
    "nf_ct_zone_id_expected",
]
