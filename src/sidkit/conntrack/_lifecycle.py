# Strategy: an entry's life in nf_conntrack_core.c (read in Debian's 6.1.192 and 6.12.117
# sources), as functions over explicit state -- the Chains, the TableHash, the GC cursor, and
# the bound and counters passed in by the table on every call, so that a caller who changes
# Table.max_entries or Table.stats is obeyed at once. Allocation counts an entry against
# nf_conntrack_max before it is in the hash (unconfirmed entries are not hashed until
# confirmed); a full table runs early_drop over eight buckets; confirmation links both nodes
# or resolves a clash; the GC worker reaps expired entries and, under pressure, evicts
# non-assured ones. What it leaves out: nf_nat's port search and the NAT-clash "resolve
# harder" path (a NAT clash at confirmation is simply insert_failed). It validates nothing
# that a caller passes: the table's public methods do that before they get here.
"""Allocation, early drop, confirmation and garbage collection of entries (private)."""

from __future__ import annotations

from typing import Final

from sidkit.conntrack._chains import Chains, entry_of
from sidkit.conntrack._hash import TableHash
from sidkit.conntrack._rules import nat_setup, nf_ct_match, nf_ct_match_reverse
from sidkit.conntrack._types import Entry, Nat, Stats, Status, TableFullError
from sidkit.keys import IPPROTO_UDP, IPPROTO_UDPLITE, FiveTuple, SessionId, Zone

__all__ = [
    "MIN_CHAINLEN",
    "NF_CT_EVICTION_RANGE",
    "GcWork",
    "confirm",
    "discard",
    "early_drop",
    "new_entry",
]

NF_CT_EVICTION_RANGE: Final = 8
"""Buckets ``early_drop`` scans, starting at the new entry's own (as read in 6.1.192 and
6.12.117)."""
MIN_CHAINLEN: Final = 50
"""``__nf_conntrack_confirm`` refuses to grow a chain past ``MIN_CHAINLEN +
get_random_u32_below(MAX_CHAINLEN)``, i.e. 50..79 (as read in 6.12.117; 6.1.192 draws it with
``prandom_u32_max``); the model uses the lower bound, deterministically."""

_ASSURED: Final = int(Status.ASSURED)
_CONFIRMED: Final = int(Status.CONFIRMED)
_DYING: Final = int(Status.DYING)


class GcWork:
    """``struct conntrack_gc_work``: where the next run starts, and the ``early_drop`` flag
    an allocation failure sets."""

    __slots__ = ("early_drop", "next")

    def __init__(self) -> None:
        self.next = 0
        self.early_drop = False  # conntrack_gc_work.early_drop

    def run(self, chains: Chains, now: float, n: int, max_entries: int, stats: Stats) -> int:
        """One run of ``gc_worker`` over *n* chains from where the last one stopped (see
        :meth:`Table.gc`); returns the number of entries removed.

        ``gc_worker_can_early_drop`` above ``nf_conntrack_max / 100 * 95`` while the flag
        is set; the flag clears when a scan completes the table."""
        max95 = max_entries // 100 * 95 if self.early_drop else 0
        removed = 0
        i = self.next
        for _ in range(n):
            chain = chains.buckets[i]
            if chain:
                for node in list(reversed(chain)):
                    e = entry_of(node)
                    if e.status & _DYING:
                        continue
                    if e.timeout <= now:
                        chains.kill(e)
                        stats.expired += 1
                        removed += 1
                        continue
                    if not max95 or chains.count < max95:
                        continue
                    if not e.status & _ASSURED:
                        chains.kill(e)
                        stats.gc_early_drop += 1
                        removed += 1
            i += 1
            if i >= chains.size:
                i = 0
                self.early_drop = False
        self.next = i
        return removed


def _early_drop_list(chains: Chains, b: int, now: float, stats: Stats) -> int:
    """``early_drop_list``: evict every non-assured entry of chain *b*; expired entries met
    are reaped and not counted."""
    chain = chains.buckets[b]
    if not chain:
        return 0
    drops = 0
    for node in list(reversed(chain)):
        e = entry_of(node)
        if e.status & _DYING:
            continue
        if e.timeout <= now:
            chains.kill(e)
            stats.expired += 1
            continue
        if e.status & _ASSURED:
            continue
        chains.kill(e)
        drops += 1
    return drops


def early_drop(chains: Chains, raw: int, now: float, stats: Stats) -> bool:
    """``early_drop(net, hash)`` as read in 6.1.192 and 6.12.117 (6.1 also skips
    offloaded entries, which the model has none of): from the new entry's bucket, scan up to
    NF_CT_EVICTION_RANGE buckets and stop at the first in which at least one entry was
    evicted -- evicting *every* non-assured entry of that chain. Expired entries met are
    reaped but do not count, so a scan that frees only expired entries still fails."""
    size = chains.size
    b = (raw * size) >> 32
    for i in range(NF_CT_EVICTION_RANGE):
        if i:
            b = (b + 1) % size
        drops = _early_drop_list(chains, b, now, stats)
        if drops:
            stats.early_drop += drops
            return True
    return False


def new_entry(
    chains: Chains,
    hasher: TableHash,
    gc: GcWork,
    t: FiveTuple,
    zone: Zone,
    sid: SessionId | None,
    nat: Nat | None,
    now: float,
    max_entries: int,
    stats: Stats,
) -> Entry:
    """``init_conntrack`` up to the tracker: an unconfirmed entry for *t*, hashed by its
    ORIGINAL key, counted against *max_entries* (``__nf_conntrack_alloc``), NATed by
    *nat*. Raises :class:`TableFullError` when early drop finds nothing to evict."""
    e = Entry(t, zone, sid if zone.sid is not None else None)
    key0 = e.key(0)
    raw = hasher.hash(key0, zone.id if zone.dir & 1 else 0)
    # __nf_conntrack_alloc: count first, then check the bound.
    chains.count += 1
    if max_entries and chains.count > max_entries and not early_drop(chains, raw, now, stats):
        gc.early_drop = True
        chains.count -= 1
        raise TableFullError(
            f"table full ({max_entries} entries) and no non-assured entry in "
            f"the {NF_CT_EVICTION_RANGE} buckets from {(raw * chains.size) >> 32}"
        )
    e._hashes = raw << 32
    if nat is not None:
        nat_setup(e, nat)
    return e


def discard(chains: Chains, entry: Entry) -> None:
    """Free an unconfirmed entry (the packet that carried it was dropped)."""
    entry.status |= _DYING
    chains.count -= 1


def confirm(
    chains: Chains,
    hasher: TableHash,
    entry: Entry,
    now: float,
    max_chainlen: int,
    stats: Stats,
) -> Entry | None:
    """``__nf_conntrack_confirm`` for a live, unconfirmed *entry* (see :meth:`Table.confirm`):
    walk both chains for a node equal to one of its keys, counting the chain length against
    *max_chainlen*; link it, merge it into the entry it clashes with
    (``nf_ct_resolve_clash``), or drop it."""
    zone = entry.zone
    key0 = entry.key(0)
    key1 = entry.key(1)
    raw0 = entry._hashes >> 32
    raw1 = hasher.hash(key1, zone.id if zone.dir & 2 else 0, cache=False)
    size = chains.size
    clash: Entry | None = None
    for raw, key in ((raw0, key0), (raw1, key1)):
        chain = chains.buckets[(raw * size) >> 32]
        if not chain:
            continue
        for chainlen, node in enumerate(reversed(chain)):
            if chains.key_equal_node(node, key, zone):
                clash = entry_of(node)
                break
            if chainlen > max_chainlen:  # "if (chainlen++ > max_chainlen)"
                stats.chaintoolong += 1
                stats.insert_failed += 1
                discard(chains, entry)
                return None
        if clash is not None:
            break
    if clash is not None:
        # nf_ct_resolve_clash: UDP allows clashes (allow_clash), the generic tracker not.
        if entry.original.protocol in (IPPROTO_UDP, IPPROTO_UDPLITE) and (
            nf_ct_match(clash, entry) or nf_ct_match_reverse(clash, entry)
        ):
            stats.clash_resolve += 1
            discard(chains, entry)
            return clash
        stats.drop += 1
        stats.insert_failed += 1
        discard(chains, entry)
        return None
    entry.timeout += now
    entry._hashes = raw0 << 32 | raw1
    chains.link(entry)
    entry.status |= _CONFIRMED
    chains.confirmed += 1
    stats.insert += 1
    return entry
