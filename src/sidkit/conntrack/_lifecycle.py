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

from collections.abc import Callable
from typing import Final

from sidkit.conntrack._chains import Chains, entry_of
from sidkit.conntrack._hash import TableHash
from sidkit.conntrack._rules import nat_setup, nf_ct_match, nf_ct_match_reverse
from sidkit.conntrack._types import Entry, Nat, Stats, Status, TableFullError
from sidkit.kernel._conntrack import MIN_CHAINLEN, NF_CT_EVICTION_RANGE
from sidkit.keys import FiveTuple, FlowKey, SessionId, Zone

__all__ = [
    "GC_SCAN_INTERVAL_MAX",
    "MIN_CHAINLEN",
    "NF_CT_EVICTION_RANGE",
    "ClashRules",
    "GcWork",
    "confirm",
    "discard",
    "early_drop",
    "new_entry",
]

GC_SCAN_INTERVAL_MAX: Final = 60.0
"""``GC_SCAN_INTERVAL_MAX (60ul * HZ)`` (nf_conntrack_core.c:83 in 6.1.192 and 6.12.117):
a GC cycle older than this re-schedules at once (``next_run = 0``), keeping the flag."""

_ASSURED: Final = int(Status.ASSURED)
_CONFIRMED: Final = int(Status.CONFIRMED)
_DYING: Final = int(Status.DYING)
_FIXED_TIMEOUT: Final = int(Status.FIXED_TIMEOUT)
_NAT_CLASH: Final = int(Status.NAT_CLASH)


class GcWork:
    """``struct conntrack_gc_work``: where the next run starts, the ``early_drop`` flag an
    allocation failure sets, and when the current full-table cycle started."""

    __slots__ = ("early_drop", "next", "start_time")

    def __init__(self) -> None:
        self.next = 0
        self.early_drop = False  # conntrack_gc_work.early_drop
        self.start_time = 0.0  # conntrack_gc_work.start_time (set when a run starts at 0)

    def run(
        self,
        chains: Chains,
        now: float,
        n: int,
        max_entries: int,
        stats: Stats,
        expired_max: int,
    ) -> int:
        """One run of ``gc_worker`` over at most *n* chains from where the last one stopped
        (see :meth:`Table.gc`); returns the number of entries removed.

        As read in 6.1.192 and 6.12.117 (``gc_worker``, nf_conntrack_core.c:1521 and :1495):
        ``gc_worker_can_early_drop`` above ``nf_conntrack_max / 100 * 95`` while the flag is
        set; before each node, ``expired_count > GC_SCAN_EXPIRED_MAX`` (*expired_max*)
        ends the run at that node's bucket, and that exit schedules a next run unless the
        cycle has taken ``GC_SCAN_INTERVAL_MAX`` (60 s) or more, so it clears the flag; a
        run that completes the table clears it too. A run that stops after *n* chains is
        the kernel's 10 ms exit (``next_run = 0``), which keeps the flag."""
        max95 = max_entries // 100 * 95 if self.early_drop else 0
        removed = 0
        i = self.next
        if i == 0:
            self.start_time = now
        size = chains.size
        for _ in range(n):
            chain = chains.buckets[i]
            if chain:
                for node in list(reversed(chain)):
                    e = entry_of(node)
                    if e.status & _DYING:
                        continue
                    if removed > expired_max:  # the early exit, next_bucket = i
                        self.next = i
                        if now - self.start_time < GC_SCAN_INTERVAL_MAX:
                            self.early_drop = False
                        return removed
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
            if i >= size:
                i = 0
                self.early_drop = False
                break
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


def early_drop(chains: Chains, raw: int, now: float, stats: Stats, buckets: int) -> bool:
    """``early_drop(net, hash)`` as read in 6.1.192 and 6.12.117 (6.1 also skips
    offloaded entries, which the model has none of): from the new entry's bucket, scan up to
    NF_CT_EVICTION_RANGE buckets and stop at the first in which at least one entry was
    evicted -- evicting *every* non-assured entry of that chain. Expired entries met are
    reaped but do not count, so a scan that frees only expired entries still fails.
    *buckets* is the era's range (NF_CT_EVICTION_RANGE)."""
    size = chains.size
    b = (raw * size) >> 32
    for i in range(buckets):
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
    eviction: Callable[[], int],
) -> Entry:
    """``init_conntrack`` up to the tracker: an unconfirmed entry for *t*, hashed by its
    ORIGINAL key, counted against *max_entries* (``__nf_conntrack_alloc``), NATed by
    *nat*. Raises :class:`TableFullError` when early drop finds nothing to evict;
    *eviction* gives the era's early-drop range (and raises where the era's early drop is
    not modelled)."""
    e = Entry(t, zone, sid if zone.sid is not None else None)
    key0 = e.key(0)
    raw = hasher.hash(key0, zone.id if zone.dir & 1 else 0)
    # __nf_conntrack_alloc: count first, then check the bound.
    chains.count += 1
    if (
        max_entries
        and chains.count > max_entries
        and not early_drop(chains, raw, now, stats, eviction())
    ):
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
    chain_limit: Callable[[], int],
    floor: int,
    stats: Stats,
    rules: ClashRules,
) -> Entry | None:
    """``__nf_conntrack_confirm`` for a live, unconfirmed *entry* (see :meth:`Table.confirm`):
    walk both chains for a node equal to one of its keys, counting the chain length against
    the era's limit; link it, resolve the clash (``nf_ct_resolve_clash``), or drop it.

    The kernel draws ``max_chainlen`` on every confirmation; ``chainlen++ > max_chainlen``
    can hold only once ``chainlen`` exceeds the least limit *floor* (MIN_CHAINLEN = 50 for
    the kernel's draw; the limit itself when the table fixes one), so the model calls
    *chain_limit* only then, once per confirmation -- the same distribution per insert,
    and no draw (nor a refusal of an unmodelled era) for short chains."""
    zone = entry.zone
    key0 = entry.key(0)
    raw0 = entry._hashes >> 32
    rid = zone.id if zone.dir & 2 else 0
    # The REPLY key is built only when it is hashed or compared: a batch (Table.packet_many)
    # may have hashed the plain inverse ahead, and an empty chain compares nothing.
    key1: FlowKey | None = None
    raw1 = None
    plain = entry._reply is None and not entry._skm & 2
    if plain:
        raw1 = hasher.pending_reply(entry.original, rid)
    if raw1 is None:
        key1 = entry.key(1)
        raw1 = hasher.hash(key1, rid, cache=False)
    size = chains.size
    clash: Entry | None = None
    limit = -1
    original = entry.original
    for raw, d in ((raw0, 0), (raw1, 1)):
        chain = chains.buckets[(raw * size) >> 32]
        if not chain:
            continue
        for chainlen, node in enumerate(reversed(chain)):
            if (
                chains.inverse_equal_node(node, original, zone)
                if d and plain
                else chains.key_equal_node(node, key1 if d else key0, zone)  # type: ignore[arg-type]
            ):
                clash = entry_of(node)
                break
            if chainlen > floor:
                if limit < 0:
                    limit = chain_limit()
                if chainlen > limit:  # "if (chainlen++ > max_chainlen)"
                    stats.chaintoolong += 1
                    stats.insert_failed += 1
                    discard(chains, entry)
                    return None
        if clash is not None:
            break
    if clash is not None:
        return _resolve_clash(chains, hasher, entry, clash, raw0, raw1, now, stats, rules)
    entry.timeout += now
    entry._hashes = raw0 << 32 | raw1
    chains.link(entry)
    entry.status |= _CONFIRMED
    chains.confirmed += 1
    stats.confirmed += 1
    if rules.count_insert:
        stats.insert += 1
    return entry


class ClashRules:
    """The era's confirmation rules, resolved once by the table: which protocols may clash
    (``l4proto->allow_clash``), when ``__nf_ct_resolve_clash`` merges (*merge*: winner
    status, winner dying, ``nf_ct_match``, ``nf_ct_match_reverse``), the NAT-clash timeout of
    ``nf_ct_resolve_clash_harder``, and whether a confirmation counts ``insert``."""

    __slots__ = ("allow", "count_insert", "merge", "nat_clash_timeout")

    def __init__(
        self,
        allow: Callable[[int], object],
        merge: Callable[[int, bool, bool, bool], object],
        nat_clash_timeout: float,
        count_insert: bool,
    ) -> None:
        self.allow = allow
        self.merge = merge
        self.nat_clash_timeout = nat_clash_timeout
        self.count_insert = count_insert


def _can_merge(rules: ClashRules, winner: Entry, loser: Entry) -> bool:
    st = winner.status
    return bool(
        rules.merge(
            st, bool(st & _DYING), nf_ct_match(winner, loser), nf_ct_match_reverse(winner, loser)
        )
    )


def _resolve_clash(
    chains: Chains,
    hasher: TableHash,
    entry: Entry,
    clash: Entry,
    raw0: int,
    raw1: int,
    now: float,
    stats: Stats,
    rules: ClashRules,
) -> Entry | None:
    """``nf_ct_resolve_clash`` (6.12.117 nf_conntrack_core.c:1141, 6.1.192:1149): with
    ``allow_clash``, merge into the winner when the era's ``__nf_ct_resolve_clash`` says so
    (6.12: ``nf_ct_can_merge``, same tuples either way round; 6.1: a winner without NAT
    done, or ``nf_ct_match``); else ``nf_ct_resolve_clash_harder`` (6.12.117:1055,
    6.1.192:1063): when no node of the REPLY chain equals the loser's REPLY tuple, link the
    loser by its REPLY node only, with ``IPS_FIXED_TIMEOUT | IPS_NAT_CLASH`` and
    ``timeout = now + HZ`` (1 s), counting ``clash_resolve``; a REPLY-direction twin that
    cannot merge drops the packet (``drop``, ``insert_failed``)."""
    if rules.allow(entry.original.protocol):
        if _can_merge(rules, clash, entry):
            stats.clash_resolve += 1
            discard(chains, entry)
            return clash
        zone = entry.zone
        key1 = entry.key(1)
        reply_chain = chains.buckets[(raw1 * chains.size) >> 32]
        twin = None
        if reply_chain:
            for node in reversed(reply_chain):
                if chains.key_equal_node(node, key1, zone):
                    twin = entry_of(node)
                    break
        if twin is None:
            entry.timeout = now + rules.nat_clash_timeout
            entry.status |= _FIXED_TIMEOUT | _NAT_CLASH
            entry._hashes = raw0 << 32 | raw1
            chains.link_node(entry, 1)
            entry.status |= _CONFIRMED
            chains.confirmed += 1
            stats.confirmed += 1
            stats.clash_resolve += 1
            return entry
        if _can_merge(rules, twin, entry):
            stats.clash_resolve += 1
            discard(chains, entry)
            return twin
    stats.drop += 1
    stats.insert_failed += 1
    discard(chains, entry)
    return None
