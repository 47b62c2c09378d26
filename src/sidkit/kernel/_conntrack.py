# Strategy: the per-era behaviours of nf_conntrack that sidkit.conntrack's Table models,
# as plain values behind small functions the eras table can name. The eras table sits below
# the conntrack model, so the rules it selects must sit below it too: each function here
# returns data (timeouts, a chain limit drawn from a caller's generator, the GC cap for a
# given HZ), and the model above interprets it. Nothing here reads a clock or a global
# random source; the model passes its own generator in.
"""Per-era conntrack behaviours as data (private; selected through the eras table)."""

from __future__ import annotations

import random
from typing import Final

__all__ = [
    "CT_HZ_CHOICES",
    "CT_HZ_DEFAULT",
    "GC_SCAN_EXPIRED_NUMERATOR",
    "MAX_CHAINLEN",
    "MIN_CHAINLEN",
    "NAT_DONE_MASK",
    "NF_CT_EVICTION_RANGE",
    "PORT_PROTOCOLS",
    "chain_limit_random",
    "clash_generic_udp",
    "clash_merge_match_or_reverse",
    "clash_merge_unnated_or_match",
    "early_drop_buckets",
    "gc_scan_expired_max",
    "insert_in_check_insert",
    "nat_clash_timeout",
    "ports_parsed",
    "udp_timeouts_180",
    "udp_timeouts_stream_ts",
]

CT_HZ_DEFAULT: Final = 250
"""``CONFIG_HZ`` of the kernel's default configuration: ``kernel/Kconfig.hz:8`` ``default
HZ_250`` (6.12.117; the same in 6.1.192)."""
CT_HZ_CHOICES: Final = (100, 250, 300, 1000)
"""The ``CONFIG_HZ`` values ``kernel/Kconfig.hz`` offers (HZ_100, HZ_250, HZ_300, HZ_1000)."""
GC_SCAN_EXPIRED_NUMERATOR: Final = 64000
"""``#define GC_SCAN_EXPIRED_MAX (64000u / HZ)`` (nf_conntrack_core.c: 6.12.117 line 97,
6.1.192 likewise)."""
MIN_CHAINLEN: Final = 50
"""``#define MIN_CHAINLEN 50u`` (nf_conntrack_core.c line 99 in 6.1.192 and 6.12.117)."""
MAX_CHAINLEN: Final = 80 - MIN_CHAINLEN
"""``#define MAX_CHAINLEN (80u - MIN_CHAINLEN)`` (line 100 in both)."""
NF_CT_EVICTION_RANGE: Final = 8
"""``#define NF_CT_EVICTION_RANGE 8`` (6.12.117 line 1374, 6.1.192 line 1398)."""
PORT_PROTOCOLS: Final = frozenset({6, 17, 33, 132, 136})
"""Protocols whose tuple carries ports: ``nf_ct_get_tuple`` calls ``nf_ct_get_tuple_ports``
for TCP, UDP, UDP-Lite, SCTP and DCCP (6.12.117 lines 324-336, after ``memset(tuple, 0,
...)`` at line 279; 6.1.192 line 289; ICMP and GRE have their own
parsers, which sidkit refuses); every other protocol keeps the zeroed ports of
``memset(tuple, 0, ...)``."""


def udp_timeouts_180() -> tuple[float, float, float | None]:
    """(unreplied, replied, stream delay): ``nf_ct_udp_timeout = 30*HZ``,
    ``nf_ct_udp_timeout_stream = 180*HZ``, ASSURED on the first packet after a reply (no
    stream delay: None)."""
    return 30.0, 180.0, None


def udp_timeouts_stream_ts() -> tuple[float, float, float | None]:
    """(unreplied, replied, stream delay): ``udp_timeouts[] = { [UDP_CT_UNREPLIED] = 30*HZ,
    [UDP_CT_REPLIED] = 120*HZ }`` and ``stream_ts = 2 * HZ + jiffies`` (nf_conntrack_proto_udp.c
    of 6.1.192 and 6.12.117)."""
    return 30.0, 120.0, 2.0


def chain_limit_random(rng: random.Random) -> int:
    """``max_chainlen = MIN_CHAINLEN + get_random_u32_below(MAX_CHAINLEN)`` (6.12.117
    nf_conntrack_core.c:1238; 6.1.192:1252 with ``prandom_u32_max``): 50..79, uniform, drawn
    on every ``__nf_conntrack_confirm``."""
    return MIN_CHAINLEN + rng.randrange(MAX_CHAINLEN)


def gc_scan_expired_max(hz: int) -> int:
    """``GC_SCAN_EXPIRED_MAX`` for *hz*: ``gc_worker`` leaves a run once more than this many
    entries were reaped or evicted (``if (expired_count > GC_SCAN_EXPIRED_MAX)`` before each
    node, 6.12.117 nf_conntrack_core.c:1543, 6.1.192:1574)."""
    return GC_SCAN_EXPIRED_NUMERATOR // hz


def early_drop_buckets() -> int:
    """``early_drop``: from the new entry's bucket, up to NF_CT_EVICTION_RANGE buckets; stop at
    the first where ``early_drop_list`` evicted something (every non-assured entry of that
    chain). 6.12.117 nf_conntrack_core.c:1423-1449, 6.1.192:1450."""
    return NF_CT_EVICTION_RANGE


def clash_generic_udp(protocol: int) -> bool:
    """``l4proto->allow_clash`` for the trackers sidkit models: true for UDP and UDP-Lite
    (nf_conntrack_proto_udp.c:285/307 in 6.12.117, 283/305 in 6.1.192) and for the generic
    tracker (nf_conntrack_proto_generic.c:70 in both)."""
    del protocol
    return True


NAT_DONE_MASK: Final = (1 << 7) | (1 << 8)
"""``IPS_NAT_DONE_MASK = (IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE)``
(include/uapi/linux/netfilter/nf_conntrack_common.h:82, 6.1.192)."""


def clash_merge_unnated_or_match(status: int, dying: bool, match: bool, reverse: bool) -> bool:
    """6.1.192's ``__nf_ct_resolve_clash`` (nf_conntrack_core.c:1018-1046): the winner
    (status *status*) absorbs the loser unless it is dying, when it has no NAT done
    (``(ct->status & IPS_NAT_DONE_MASK) == 0``) or ``nf_ct_match`` holds (*match*); a
    reverse match (*reverse*) does not count."""
    del reverse
    return not dying and (not status & NAT_DONE_MASK or match)


def clash_merge_match_or_reverse(status: int, dying: bool, match: bool, reverse: bool) -> bool:
    """6.12.117's ``__nf_ct_resolve_clash`` through ``nf_ct_can_merge``
    (nf_conntrack_core.c:1006-1037): ``nf_ct_match || nf_ct_match_reverse``, NAT or not,
    no dying test."""
    del status, dying
    return match or reverse


def nat_clash_timeout() -> float:
    """``nf_ct_resolve_clash_harder``'s ``loser_ct->timeout = nfct_time_stamp + HZ``: one
    second whatever HZ is (6.12.117 nf_conntrack_core.c:1077, 6.1.192:1085)."""
    return 1.0


def insert_in_check_insert() -> bool:
    """Where ``NF_CT_STAT_INC(net, insert)`` is: only in ``nf_conntrack_hash_check_insert``
    (ctnetlink's path; 6.12.117 nf_conntrack_core.c:906, 6.1.192:960), not in
    ``__nf_conntrack_confirm``. Returns whether a packet's confirmation counts: False."""
    return False


def ports_parsed(protocol: int) -> bool:
    """Whether ``nf_ct_get_tuple`` fills the ports of a *protocol* tuple (PORT_PROTOCOLS)."""
    return protocol in PORT_PROTOCOLS
