# Strategy: the Table is the public face of the model and the one place that validates what
# callers pass; it assembles the pieces below it and keeps the per-packet path (lookup,
# packet) flat, because that is what the rate target measures. Hashing lives in _hash,
# chains in _chains, an entry's life in _lifecycle, SID zones in _sidzone, per-entry kernel
# rules in _rules; each gets its state explicitly (the table passes its bound and counters
# on every call, so a caller who changes them is obeyed at once). The hot path reaches the
# chain walk as self._chains.find and the token cache as self._tokens: no more attribute
# hops or calls per packet than when all of this was one class.
#
# A model of nf_conntrack's table, faithful where placement and eviction are decided, and the
# seed's SID zones on top of it. What it keeps from the kernel (net/netfilter/
# nf_conntrack_core.c, read in Debian's 6.1.192 and 6.12.117 sources): one array of
# htable_size hash chains; every entry linked twice, by its ORIGINAL and its REPLY tuple, at
# reciprocal_scale(hash_conntrack_raw(tuple, nf_ct_zone_id(zone, dir), net), htable_size),
# newest first; the double lookup of directional zones; unconfirmed entries that count
# against nf_conntrack_max but are not in the hash until confirmed; early_drop over eight
# buckets; the GC worker; expired entries reaped by whoever walks past them. The hash itself
# is the era's (sidkit.kernel profile), so the same model places entries as 4.7's jhash2 or
# 6.12's siphash would. What it leaves out: concurrency (no search_restart, no per-CPU
# lists), helpers and expectations, TCP/ICMP trackers, nf_nat's port search, and the
# NAT-clash "resolve harder" path.
#
# Time is never read: every operation that can expire something takes now= (seconds on any
# monotonic clock the caller likes).
"""A conntrack-style flow table with kernel-identical bucket placement, and SID zones."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Final, NoReturn

from sidkit._errors import InputTypeError, InputValueError, UnknownKernelError
from sidkit._validate import check_uint
from sidkit.conntrack import _lifecycle
from sidkit.conntrack._chains import Chains
from sidkit.conntrack._hash import TableHash
from sidkit.conntrack._lifecycle import ClashRules, GcWork
from sidkit.conntrack._rules import check_protocol, nat_setup, nat_translate, tracker_packet
from sidkit.conntrack._sidzone import Validator, migrate, packet_keys
from sidkit.conntrack._types import (
    Ctinfo,
    Entry,
    MigrationCost,
    MigrationPolicy,
    Nat,
    PacketResult,
    Stats,
    Status,
    TableFullError,
    UdpTimeouts,
    Verdict,
)
from sidkit.kernel import NOT_MODELLED, KernelProfile, KernelVersion, profile
from sidkit.kernel._conntrack import (
    CT_HZ_CHOICES,
    CT_HZ_DEFAULT,
    MIN_CHAINLEN,
    clash_generic_udp,
)
from sidkit.kernel._secrets import secret_source
from sidkit.keys import Direction, FiveTuple, FlowKey, SessionId, Zone, flow_key

__all__ = ["DEFAULT_HTABLE_SIZE", "DEFAULT_ZONE", "Table"]

DEFAULT_ZONE: Final = Zone()
"""``nf_ct_zone_dflt``: id 0, both directions, no mark."""
DEFAULT_HTABLE_SIZE: Final = 65536
"""``nf_conntrack_init_start`` (v6.12) on a 64-bit machine with 1-4 GiB of RAM; 262144 above
4 GiB. ``nf_conntrack_max`` defaults to the same number (``max_factor = 1``)."""

_CONFIRMED: Final = int(Status.CONFIRMED)
_SEEN_REPLY: Final = int(Status.SEEN_REPLY)
_DYING: Final = int(Status.DYING)
_EXPECTED: Final = int(Status.EXPECTED)
_M32: Final = 0xFFFFFFFF
_DIRS: Final = (Direction.ORIGINAL, Direction.REPLY)
_BEHAVIOURS: Final = (
    "ct_udp_timeouts",
    "ct_chain_limit",
    "ct_early_drop",
    "ct_gc_worker",
    "ct_clash",
    "ct_stat_insert",
    "ct_tuple_ports",
)
"""The eras-table functions that hold the table's per-era behaviours."""


_INF: Final = float("inf")


def _check_now(now: object) -> float:
    """A clock reading: a finite number of seconds. NaN would compare false with every
    timeout (entries that never expire), infinity would expire everything at once."""
    if type(now) is float and -_INF < now < _INF:  # the common case, first
        return now
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise InputTypeError(
            f"now must be a number of seconds, not {type(now).__name__}", code="bad-time"
        )
    try:
        value = float(now)
    except OverflowError:
        value = _INF
    if not -_INF < value < _INF:
        raise InputValueError(
            "now must be a finite number of seconds, got "
            + ("an int too large for a float" if isinstance(now, int) else repr(value)),
            code="bad-time",
        )
    return value


def _check_htable_size(size: object, bits_per_long: int) -> int:
    """``nf_conntrack_htable_size`` as ``nf_ct_alloc_hashtable()`` accepts it: at least 1 and
    at most ``INT_MAX / sizeof(struct hlist_nulls_head)`` (a pointer: 8 bytes on 64-bit
    kernels, 4 on 32-bit), else -ENOMEM (net/netfilter/nf_conntrack_core.c, as read in
    6.1.192 and 6.12.117). The kernel also rounds the size up to a page of heads (512 on
    4 KiB pages); the model keeps the size it is given so that small tables stay small."""
    n = check_uint(size, 32, "htable_size")
    limit = 0x7FFFFFFF // (8 if bits_per_long == 64 else 4)
    if not 1 <= n <= limit:
        raise InputValueError(
            f"htable_size must be 1..{limit} (INT_MAX / sizeof(struct hlist_nulls_head), "
            f"nf_ct_alloc_hashtable), got {n}",
            code="bad-size",
        )
    return n


class Table:
    """A conntrack table: ``htable_size`` chains, bounded by ``max_entries``.

    *kernel* selects the era of ``hash_conntrack_raw`` (a version string, a
    :class:`~sidkit.kernel.KernelProfile`, or None for the newest); *secret* is that era's
    ``nf_conntrack_hash_rnd`` (16 bytes for the siphash forms, v5.15 on; a u32 for the jhash
    forms) and *net_mix* is ``net_hash_mix(net)``. Both are random by default, as the
    kernel's are (``get_random_bytes`` once per boot, ``get_random_u32`` per namespace): drawn
    from the operating system, or from *seed* for a reproducible run; :attr:`secret` and
    :attr:`net_mix` say what was drawn. (A known secret lets crafted tuples fill one chain.)
    *htable_size* is bounded as ``nf_ct_alloc_hashtable()`` bounds it. *max_entries* is
    ``nf_conntrack_max`` (0 = unbounded; default *htable_size*, as the kernel's
    ``max_factor = 1``). *migration* and *validate* govern
    SID zones (:class:`MigrationPolicy`).

    Every behaviour the table models comes from *kernel*'s eras-table rows (``ct_*``):
    the UDP timeouts (*udp_timeouts* overrides them), the chain limit, early drop, the GC
    worker's cap, clash resolution, the ``insert`` statistic and which protocols have
    ports. Where the era's row says "not modelled" the table still places and tracks
    entries, and raises :class:`~sidkit.UnknownKernelError` at the first operation
    whose outcome depends on that behaviour (:attr:`unmodelled` lists them).

    *hz* is ``CONFIG_HZ`` (``kernel/Kconfig.hz``: 100, 250, 300 or 1000; default 250, the
    Kconfig default): the GC worker leaves a run after ``64000 // hz`` + 1 removals.
    *max_chainlen* fixes the chain limit; by default it is drawn per confirmation from
    50..79 as the kernel does, with a generator seeded by *seed* (an int or a
    :class:`random.Random`; None seeds from the operating system, as
    :class:`random.Random` does).

    Bucket placement is ``reciprocal_scale(raw, htable_size)`` = ``(raw * htable_size) >>
    32``; kernels before v3.19 wrote the same product inline (``__hash_bucket``).
    """

    def __init__(
        self,
        *,
        kernel: str | KernelVersion | KernelProfile | None = None,
        htable_size: int = DEFAULT_HTABLE_SIZE,
        max_entries: int | None = None,
        secret: bytes | int | None = None,
        net_mix: int | None = None,
        udp_timeouts: UdpTimeouts | None = None,
        migration: MigrationPolicy = MigrationPolicy.PURE_SID,
        validate: Validator | None = None,
        max_chainlen: int | None = None,
        hz: int = CT_HZ_DEFAULT,
        seed: int | random.Random | None = None,
    ) -> None:
        self.profile = profile(kernel)
        if not (seed is None or isinstance(seed, random.Random)) and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise InputTypeError("seed must be an int, a random.Random or None", code="bad-seed")
        size = _check_htable_size(htable_size, self.profile.bits_per_long)
        draw = secret_source(seed, "nf_conntrack secrets")
        if net_mix is None:
            net_mix = draw.getrandbits(32)
        self._hasher = TableHash(self.profile, secret, net_mix, draw.getrandbits)
        self.max_entries = check_uint(
            size if max_entries is None else max_entries, 32, "max_entries"
        )
        prof = self.profile
        self.unmodelled: tuple[str, ...] = tuple(
            fn for fn in _BEHAVIOURS if prof.era(fn).variant == NOT_MODELLED
        )
        """The ``ct_*`` eras-table functions this table's kernel does not model."""
        if udp_timeouts is None:
            unreplied, replied, delay = prof.function("ct_udp_timeouts")()
            udp_timeouts = UdpTimeouts(unreplied, replied, delay)
        self.udp_timeouts = udp_timeouts
        if not isinstance(self.udp_timeouts, UdpTimeouts):
            raise InputTypeError("udp_timeouts must be a UdpTimeouts")
        if not isinstance(migration, MigrationPolicy):
            raise InputTypeError("migration must be a MigrationPolicy")
        self.migration = migration
        if validate is not None and not callable(validate):
            raise InputTypeError("validate must be callable")
        self.validate = validate
        if isinstance(hz, bool) or not isinstance(hz, int) or hz < 1:
            raise InputValueError(
                f"hz is CONFIG_HZ, a positive int (the kernel offers {CT_HZ_CHOICES})",
                code="bad-hz",
            )
        self.hz = hz
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.max_chainlen: int | None = (
            None if max_chainlen is None else check_uint(max_chainlen, 32, "max_chainlen")
        )
        ports = prof.function("ct_tuple_ports")
        self._ported = frozenset(p for p in range(256) if ports(p))
        # resolved once: the packet path calls these, not the eras table
        self._draw_limit = self._era_fn("ct_chain_limit")
        self._eviction: Callable[[], int] = self._era_fn("ct_early_drop")  # type: ignore[assignment]
        self._gc_cap = self._era_fn("ct_gc_worker")
        self._rules = ClashRules(
            clash_generic_udp,
            self._era_fn("ct_clash"),
            1.0,
            self._era_value("ct_stat_insert", False),
        )
        self._chains = Chains(size)
        self._gc = GcWork()
        self.stats = Stats()
        # The hasher's token cache (the same dict, never replaced) for lookup()'s cached-hash
        # test. Methods are not aliased so: on CPython 3.11 a bound method called from the
        # instance dict is slower than self._chains.find(...), which specializes.
        self._tokens = self._hasher.tokens

    # ------------------------------------------------------------------ the era's behaviours

    def _refuse(self, fn: str) -> NoReturn:
        era = self.profile.era(fn)
        raise UnknownKernelError(
            f"{fn} is not modelled for kernel {self.profile.version}: {era.evidence}"
        )

    def _era_fn(self, fn: str) -> Callable[..., object]:
        """The era's function, or one that refuses when called (not modelled)."""
        if self.profile.era(fn).variant == NOT_MODELLED:

            def refuse(*_args: object) -> NoReturn:
                self._refuse(fn)

            return refuse
        return self.profile.function(fn)

    def _era_value(self, fn: str, unmodelled: bool) -> bool:
        if self.profile.era(fn).variant == NOT_MODELLED:
            return unmodelled
        return bool(self.profile.function(fn)())

    def _chain_limit(self) -> int:
        """This confirmation's ``max_chainlen``: fixed, or drawn as the era draws it."""
        if self.max_chainlen is not None:
            return self.max_chainlen
        return self._draw_limit(self.rng)  # type: ignore[return-value]

    def _zero_ports(self, t: FiveTuple) -> FiveTuple:
        """``nf_ct_get_tuple``: a protocol without a port parser has zero ports."""
        if t.protocol in self._ported or not (t.sport or t.dport):
            return t
        return FiveTuple(t.src, 0, t.dst, 0, t.protocol)

    # ------------------------------------------------------------------ hashing and placement

    @property
    def secret(self) -> bytes | int:
        """``nf_conntrack_hash_rnd`` of this table: given, or drawn at construction."""
        return self._hasher.secret

    @property
    def net_mix(self) -> int:
        """``net_hash_mix(net)`` of this table's namespace: given, or drawn at construction."""
        return self._hasher.net_mix

    @property
    def htable_size(self) -> int:
        """``nf_conntrack_htable_size``."""
        return self._chains.size

    @property
    def count(self) -> int:
        """Allocated entries, confirmed or not (``nf_conntrack_count``; what the bound checks)."""
        return self._chains.count

    def __len__(self) -> int:
        """Confirmed entries in the hash (what ``conntrack -L`` lists, expired or not yet
        reaped included -- and NAT-clash entries, which ``conntrack -L`` hides: their
        ORIGINAL node is a fake add)."""
        return self._chains.confirmed

    def raw_hash(self, key: FlowKey, zone_id: int = 0) -> int:
        """``hash_conntrack_raw(tuple, zone_id, net)`` of a tuple under this table's era,
        secret and namespace; for a :class:`~sidkit.keys.SessionId`, the SID-zone hash.

        The SID-zone hash is sidkit's reading of the seed ("resolve_normal_ct hashes the
        SID"): the era's keyed hash over the SID bytes with the tuple hash's keying -- for
        siphash eras ``siphash(sid, nf_conntrack_hash_rnd with key[0] ^= zone_id,
        key[1] ^= net_mix)`` (the v6.5 keying), for jhash eras ``jhash(sid,
        rnd ^ zone_id ^ net_mix)``. No kernel computes it; no oracle checks it.
        """
        if not isinstance(key, FiveTuple | SessionId):
            raise InputTypeError(
                f"a flow key is a FiveTuple or a SessionId, not {type(key).__name__}",
                code="bad-key",
            )
        return self._hasher.hash(key, check_uint(zone_id, 16, "zone_id"))

    def bucket_of(self, key: FlowKey, zone_id: int = 0) -> int:
        """The chain *key* lives in: ``reciprocal_scale(raw_hash(key, zone_id), htable_size)``."""
        return (self.raw_hash(key, zone_id) * self._chains.size) >> 32

    def node_bucket(self, entry: Entry, direction: int) -> int:
        """The chain of *entry*'s node of *direction* (its ``tuplehash[dir]``)."""
        d = Direction(direction)
        raw = entry._hashes >> 32 if d == Direction.ORIGINAL else entry._hashes & _M32
        return (raw * self._chains.size) >> 32

    # ------------------------------------------------------------------ lookup

    def _lookup(
        self, key0: FlowKey, key1: FlowKey, zone: Zone, now: float
    ) -> tuple[Entry, int] | None:
        stats = self.stats
        stats.searched += 1
        zid = zone.id if zone.dir & 1 else 0
        hit = self._chains.find(key0, zone, self._hasher.hash(key0, zid), now, stats)
        if hit is None:
            rid = zone.id if zone.dir & 2 else 0
            if rid != zid:
                hit = self._chains.find(key1, zone, self._hasher.hash(key1, rid), now, stats)
        if hit is not None:
            stats.hits += 1
        return hit

    def lookup(
        self, key: FlowKey, zone: Zone = DEFAULT_ZONE, *, now: float
    ) -> tuple[Entry, Direction] | None:
        """``nf_conntrack_find_get``: the live entry *key* belongs to in *zone*, and the
        direction of the node that matched, or None.

        Hashes with ``nf_ct_zone_id(zone, ORIGINAL)`` first and, for a directional zone
        whose REPLY id differs, again with that id (the double lookup of
        ``resolve_normal_ct``). A SID key finds SID-keyed nodes only; a tuple key only
        tuple-keyed ones. Expired entries met on the way are reaped, as the kernel does.
        """
        if type(now) is not float or not -_INF < now < _INF:
            now = _check_now(now)
        if zone is not DEFAULT_ZONE and not isinstance(zone, Zone):
            raise InputTypeError("zone must be a Zone", code="bad-zone")
        if type(key) is not FiveTuple:
            if isinstance(key, SessionId):
                self.stats.sid_lookups += 1
            elif not isinstance(key, FiveTuple):
                raise InputTypeError(
                    f"a flow key is a FiveTuple or a SessionId, not {type(key).__name__}",
                    code="bad-key",
                )
            elif key.protocol not in self._ported:
                key = self._zero_ports(key)
        elif key.protocol not in self._ported:
            key = self._zero_ports(key)
        # _lookup() inlined, with the cached-hash fast path of TableHash.hash(): the hot path
        stats = self.stats
        stats.searched += 1
        zd = zone.dir
        zid = zone.id if zd & 1 else 0
        tok = self._tokens.get(zid)
        raw = (
            key._ct_hash if tok is not None and key._ct_ctx is tok else self._hasher.hash(key, zid)
        )
        hit = self._chains.find(key, zone, raw, now, stats)
        if hit is None:
            rid = zone.id if zd & 2 else 0
            if rid == zid:
                return None
            hit = self._chains.find(key, zone, self._hasher.hash(key, rid), now, stats)
            if hit is None:
                return None
        stats.hits += 1
        return hit[0], _DIRS[hit[1]]

    # ------------------------------------------------------------------ allocation, eviction

    def create(
        self,
        tuple: FiveTuple,
        zone: Zone = DEFAULT_ZONE,
        *,
        now: float,
        sid: SessionId | None = None,
        nat: Nat | None = None,
    ) -> Entry:
        """``init_conntrack`` and the tracker's step for the first packet: allocate an
        unconfirmed entry for *tuple* (the reply tuple is its inverse, after *nat*),
        enforcing ``max_entries`` with ``early_drop``; its timeout is the protocol's first
        one, relative until :meth:`confirm` makes it absolute.

        *sid* makes the entry SID-keyed in the directions where *zone* is a SID zone. The
        entry counts against the bound at once but is not in the hash until
        :meth:`confirm`. Raises :class:`TableFullError` when the table is full and early
        drop finds nothing to evict. :meth:`packet` does all of this and the confirmation
        in one call; these two are for interleavings a single packet cannot produce.
        """
        now = _check_now(now)
        if not isinstance(tuple, FiveTuple):
            raise InputTypeError("tuple must be a FiveTuple", code="bad-key")
        if not isinstance(zone, Zone):
            raise InputTypeError("zone must be a Zone", code="bad-zone")
        check_protocol(tuple)
        tuple = self._zero_ports(tuple)
        if sid is not None:
            if zone.sid is None:
                raise InputValueError(
                    f"zone {zone.id} is not a SID zone; a SID cannot key its entries",
                    code="not-sid-zone",
                )
            flow_key(zone, tuple, sid=sid, direction=Direction.ORIGINAL)  # validates the SID
        e = _lifecycle.new_entry(
            self._chains,
            self._hasher,
            self._gc,
            tuple,
            zone,
            sid,
            nat,
            now,
            self.max_entries,
            self.stats,
            self._eviction,
        )
        tracker_packet(e, now, self.udp_timeouts)
        return e

    def set_nat(self, entry: Entry, nat: Nat) -> None:
        """``nf_nat_setup_info`` on an unconfirmed entry: the reply tuple becomes the inverse
        of the translated original tuple, and ``IPS_SRC_NAT``/``IPS_DST_NAT`` are set."""
        if not isinstance(nat, Nat):
            raise InputTypeError("nat must be a Nat", code="bad-nat")
        if entry.status & _CONFIRMED:
            raise InputValueError(
                "NAT is set up before confirmation (nf_nat_setup_info on a confirmed "
                "conntrack is a kernel BUG)",
                code="confirmed",
            )
        nat_setup(entry, nat)

    def discard(self, entry: Entry) -> None:
        """Free an unconfirmed entry (the packet that carried it was dropped)."""
        if entry.status & (_CONFIRMED | _DYING):
            raise InputValueError("only an unconfirmed, live entry can be discarded")
        _lifecycle.discard(self._chains, entry)

    def confirm(self, entry: Entry, *, now: float) -> Entry | None:
        """``__nf_conntrack_confirm``: put *entry* in the hash, or resolve a clash.

        Returns the entry the packet now belongs to: *entry* itself; the entry already in
        the table when both are the same flow (``__nf_ct_resolve_clash``, counted as
        ``clash_resolve``; *entry* is freed); *entry* linked by its REPLY node only, when its
        ORIGINAL tuple clashes and its REPLY tuple is unique (``nf_ct_resolve_clash_harder``:
        ``NAT_CLASH | FIXED_TIMEOUT``, 1 s, ``clash_resolve``); or None when the packet is
        dropped (``insert_failed``: a clash that cannot be resolved, or a chain longer than
        the era's limit). Clashes are allowed for UDP, UDP-Lite and the generic tracker
        (``allow_clash``). Timeouts become absolute here (``ct->timeout +=
        nfct_time_stamp``). The ``insert`` counter does not move: 6.1 and 6.12 count it only
        in ``nf_conntrack_hash_check_insert`` (ctnetlink).
        """
        now = _check_now(now)
        if entry.status & _CONFIRMED:
            raise InputValueError("entry is already confirmed", code="confirmed")
        if entry.status & _DYING:
            self.stats.insert_failed += 1
            return None
        return _lifecycle.confirm(
            self._chains,
            self._hasher,
            entry,
            now,
            self._chain_limit,
            MIN_CHAINLEN if self.max_chainlen is None else self.max_chainlen,
            self.stats,
            self._rules,
        )

    def delete(self, entry: Entry) -> bool:
        """``nf_ct_delete``: remove a confirmed entry; False if it was not in the table."""
        if not isinstance(entry, Entry):
            raise InputTypeError("entry must be an Entry")
        if not entry.status & _CONFIRMED or entry.status & _DYING:
            return False
        self._chains.kill(entry)
        return True

    # ------------------------------------------------------------------ garbage collection

    def gc(self, now: float, *, buckets: int | None = None) -> int:
        """One run of ``gc_worker`` over *buckets* chains (default: all), continuing where
        the previous run stopped; returns the number of entries removed.

        Expired entries are reaped. When a recent allocation failed (the worker's
        ``early_drop`` flag) and the table holds at least 95 % of ``max_entries``
        (``nf_conntrack_max / 100 * 95``), non-assured entries are evicted too
        (``gc_worker_can_early_drop``; the UDP tracker has no ``can_early_drop``). A run ends
        before the next node once more than ``64000 // hz`` entries were removed
        (``GC_SCAN_EXPIRED_MAX``), and that exit clears the flag (unless the cycle has
        lasted 60 s), as does a run that completes the table: one failed allocation buys at
        most ``64000 // hz + 1`` GC evictions. The kernel also ends a run after 10 ms; the
        model ends it after *buckets* chains instead, keeping the flag as that exit does. A
        run never goes past the last chain (the next one starts at chain 0).
        """
        now = _check_now(now)
        size = self._chains.size
        # a run never passes the last chain, so more buckets than chains is all of them
        n = size if buckets is None else min(check_uint(buckets, 32, "buckets"), size)
        cap = self._gc_cap(self.hz)
        return self._gc.run(self._chains, now, n, self.max_entries, self.stats, cap)  # type: ignore[arg-type]

    def resize(self, htable_size: int) -> None:
        """``nf_conntrack_hash_resize``: move every node to a table of *htable_size* chains
        (old chains in order, each from its head, added at the new chains' heads)."""
        size = _check_htable_size(htable_size, self.profile.bits_per_long)
        self._chains.resize(size)
        self._gc.next = 0

    # ------------------------------------------------------------------ per-packet path

    @staticmethod
    def translate(entry: Entry, direction: int, t: FiveTuple) -> FiveTuple:
        """``nf_nat_packet``: the tuple a packet of *direction* has after NAT (a packet of
        the ORIGINAL direction has its source and/or destination rewritten to the inverse
        of the reply tuple; a reply packet is rewritten back)."""
        return nat_translate(entry, direction, t)

    def packet(
        self,
        tuple: FiveTuple,
        *,
        now: float,
        zone: Zone = DEFAULT_ZONE,
        payload: bytes | bytearray | memoryview | None = None,
        sid: SessionId | None = None,
        mark: int = 0,
        nat: Nat | None = None,
    ) -> PacketResult:
        """``nf_conntrack_in`` + ``nf_conntrack_confirm`` for one packet of *tuple*.

        *zone* is the packet's template zone (what a CT target set; the default zone
        otherwise -- typically for replies); with ``NF_CT_FLAG_MARK`` its id is *mark*. In
        a SID zone the SID is *sid* or is read from *payload* at the zone's offset; a
        payload too short for ``offset + offlen`` falls back to tuple keying and counts
        ``sid_fallback``; neither a payload nor a SID, or a SID of another protocol than the
        zone's ``l7``, is the caller's mistake and raises. *nat* binds a flow this packet
        creates (ignored otherwise).

        Resolves the entry (double lookup), creates and confirms it if new (early drop
        when full: a failure drops the packet, counted as ``drop``), runs the UDP tracker
        (timeouts, SEEN_REPLY, ASSURED), applies the migration policy when a known SID
        arrives from a new tuple, and returns what happened, including the packet's tuple
        after NAT.
        """
        now = _check_now(now)
        if not isinstance(tuple, FiveTuple):
            raise InputTypeError("tuple must be a FiveTuple", code="bad-key")
        if not isinstance(zone, Zone):
            raise InputTypeError("zone must be a Zone", code="bad-zone")
        if nat is not None and not isinstance(nat, Nat):
            raise InputTypeError("nat must be a Nat", code="bad-nat")
        check_protocol(tuple)
        tuple = self._zero_ports(tuple)
        zone = zone.for_mark(mark)
        key0, key1, sidv, fallback = packet_keys(tuple, zone, payload, sid, self.stats)
        if sidv is not None:
            self.stats.sid_lookups += 1
        hit = self._lookup(key0, key1, zone, now)
        created = False
        migration: MigrationCost | None = None
        key: FlowKey = key0
        if hit is None:
            try:
                e = _lifecycle.new_entry(
                    self._chains,
                    self._hasher,
                    self._gc,
                    tuple,
                    zone,
                    sidv,
                    nat,
                    now,
                    self.max_entries,
                    self.stats,
                    self._eviction,
                )
            except TableFullError:
                self.stats.drop += 1
                return PacketResult(
                    Verdict.DROP,
                    None,
                    None,
                    None,
                    key,
                    None,
                    reason="table full",
                    sid_fallback=fallback,
                )
            d = 0
            created = True
        else:
            e, d = hit
            if e._skm >> d & 1:
                key = sidv if sidv is not None else e.sid  # type: ignore[assignment]
                if e._skm == 3:  # both directions keyed by the SID: the tuple tells which
                    d = 1 if tuple == e.reply else 0
                if tuple != e.tuple(d):
                    migration = migrate(
                        self._chains,
                        self._hasher,
                        self.migration,
                        self.validate,
                        self.stats,
                        e,
                        d,
                        tuple,
                        now,
                    )
                    if not migration.accepted:
                        return PacketResult(
                            Verdict.DROP,
                            e,
                            Direction(d),
                            None,
                            key,
                            None,
                            migration=migration,
                            reason=migration.reply_outcome,
                            sid_fallback=fallback,
                        )
            else:
                key = tuple
        ctinfo = self._account(e, d, now)
        if created:
            winner = self.confirm(e, now=now)
            if winner is None:
                return PacketResult(
                    Verdict.DROP,
                    None,
                    None,
                    ctinfo,
                    key,
                    None,
                    created=True,
                    reason="insert failed",
                    sid_fallback=fallback,
                )
            if winner is not e:
                created = False
                e = winner
        return PacketResult(
            Verdict.ACCEPT,
            e,
            _DIRS[d],
            ctinfo,
            key,
            nat_translate(e, d, tuple),
            created=created,
            migration=migration,
            sid_fallback=fallback,
        )

    def _account(self, e: Entry, d: int, now: float) -> Ctinfo:
        """One packet seen on *e* in direction *d*: resolve_normal_ct's ctinfo (from the status
        before this packet), then the UDP tracker's timeout and, for a reply, IPS_SEEN_REPLY --
        the steps :meth:`packet` and :meth:`packet_many` share."""
        st = e.status
        if d:
            ctinfo = Ctinfo.ESTABLISHED_REPLY
        elif st & _SEEN_REPLY:
            ctinfo = Ctinfo.ESTABLISHED
        elif st & _EXPECTED:
            ctinfo = Ctinfo.RELATED
        else:
            ctinfo = Ctinfo.NEW
        tracker_packet(e, now, self.udp_timeouts)
        if d and not e.status & _SEEN_REPLY:
            e.status |= _SEEN_REPLY
        return ctinfo

    def packet_many(
        self, tuples: Sequence[FiveTuple], *, now: float, zone: Zone = DEFAULT_ZONE
    ) -> list[PacketResult]:
        """:meth:`packet` for each tuple in order, as ``[table.packet(t, now=now, zone=zone)
        for t in tuples]`` -- the same results, entries, chains and counters -- with the
        conntrack hashes of every tuple and of its inverse computed first in one numpy batch
        (:mod:`sidkit.hashing.batch`; without numpy, the hashes are computed one by one).

        This is how a table of a million flows is built in seconds instead of minutes: each
        new entry needs two hashes, which are the pure-Python floor of :meth:`packet`. The
        zone must key entries by tuple (a SID zone reads payloads: use :meth:`packet`).
        """
        now = _check_now(now)
        if not isinstance(zone, Zone):
            raise InputTypeError("zone must be a Zone", code="bad-zone")
        if zone.sid is not None:
            raise InputValueError(
                "packet_many keys entries by tuple; a SID zone needs payloads: use packet()",
                code="sid-zone",
            )
        if isinstance(tuples, FiveTuple) or not isinstance(tuples, Sequence):
            raise InputTypeError("tuples must be a sequence of FiveTuple", code="bad-key")
        keys = []
        for i, t in enumerate(tuples):
            if not isinstance(t, FiveTuple):
                raise InputTypeError(
                    f"tuples[{i}] must be a FiveTuple, not {type(t).__name__}", code="bad-key"
                )
            check_protocol(t)
            keys.append(self._zero_ports(t))
        z = zone.for_mark(0)
        zid = z.id if z.dir & 1 else 0
        rid = z.id if z.dir & 2 else 0
        try:
            raw0, raw1 = self._hasher.hash_many(keys, zid, rid)
        except ImportError:  # sidkit.hashing.batch's BulkUnavailableError: no numpy
            return [self.packet(k, now=now, zone=zone) for k in keys]
        hasher = self._hasher
        results = []
        # packet() for a tuple-keyed zone whose two ids agree, written out flat (this loop is
        # the whole cost of building a big table); a directional zone whose ids differ looks
        # up twice and goes through packet() itself. tests/conntrack/test_conntrack_bulk.py
        # holds both to a loop of packet().
        step = self._packet_tuple if zid == rid else None
        try:
            for k, h0, h1 in zip(keys, raw0, raw1, strict=True):
                hasher.prime(k, zid, h0)
                hasher.expect_reply(k, rid, h1)
                if step is None:
                    results.append(self.packet(k, now=now, zone=zone))
                else:
                    results.append(step(k, z, h0, now))
        finally:
            hasher.expect_reply(None)
        return results

    def _packet_tuple(self, t: FiveTuple, zone: Zone, raw: int, now: float) -> PacketResult:
        """:meth:`packet` of a checked, port-zeroed tuple in a tuple-keyed *zone* (mark
        applied) whose ORIGINAL and REPLY ids agree, whose raw hash is *raw*."""
        stats = self.stats
        stats.searched += 1
        hit = self._chains.find(t, zone, raw, now, stats)
        created = False
        if hit is None:
            try:
                e = _lifecycle.new_entry(
                    self._chains,
                    self._hasher,
                    self._gc,
                    t,
                    zone,
                    None,
                    None,
                    now,
                    self.max_entries,
                    stats,
                    self._eviction,
                )
            except TableFullError:
                stats.drop += 1
                return PacketResult(Verdict.DROP, None, None, None, t, None, reason="table full")
            d = 0
            created = True
        else:
            stats.hits += 1
            e, d = hit  # a tuple key never matches a SID-keyed node: no migration here
        ctinfo = self._account(e, d, now)
        if created:
            winner = _lifecycle.confirm(
                self._chains,
                self._hasher,
                e,
                now,
                self._chain_limit,
                MIN_CHAINLEN if self.max_chainlen is None else self.max_chainlen,
                stats,
                self._rules,
            )
            if winner is None:
                return PacketResult(
                    Verdict.DROP, None, None, ctinfo, t, None, created=True, reason="insert failed"
                )
            if winner is not e:
                created = False
                e = winner
        return PacketResult(
            Verdict.ACCEPT, e, _DIRS[d], ctinfo, t, nat_translate(e, d, t), created=created
        )

    # ------------------------------------------------------------------ inspection

    def __iter__(self) -> Iterator[Entry]:
        """Entries in bucket order of their ORIGINAL node, newest first within a chain --
        the order of ``/proc/net/nf_conntrack`` and ``conntrack -L``, which skip REPLY
        nodes."""
        return self._chains.entries()

    def nodes(self) -> Iterator[tuple[int, Entry, Direction]]:
        """Every node ``(bucket, entry, direction)`` in table order."""
        return self._chains.nodes()

    def chain_lengths(self) -> list[int]:
        """Nodes per bucket, bucket 0 first (each entry has two nodes)."""
        return self._chains.lengths()

    def chain_histogram(self) -> dict[int, int]:
        """``{chain length: number of buckets}``."""
        return dict(sorted(Counter(self.chain_lengths()).items()))

    def __repr__(self) -> str:
        return (
            f"<Table {self.profile} htable_size={self._chains.size} max={self.max_entries} "
            f"entries={self._chains.confirmed} count={self._chains.count}>"
        )
