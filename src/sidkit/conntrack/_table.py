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
# monotonic clock the caller likes). Hashes are cached on the key objects (FiveTuple and
# SessionId carry a private slot), keyed by a per-table, per-zone-id token, so a caller
# that keeps its key objects pays the pure-Python siphash once per key.
"""A conntrack-style flow table with kernel-identical bucket placement, and SID zones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import check_key, check_uint
from sidkit.conntrack._rules import (
    migration_work,
    moved_tuples,
    nat_translate,
    nf_ct_match,
    nf_ct_match_reverse,
    reply_outcome,
    tracker_packet,
)
from sidkit.conntrack._types import (
    GENERIC_TIMEOUT,
    Ctinfo,
    Entry,
    MigrationCost,
    MigrationPolicy,
    MigrationWork,
    Nat,
    PacketResult,
    Stats,
    Status,
    TableFullError,
    UdpTimeouts,
    UnsupportedProtocolError,
    Verdict,
    _ReplyNode,
)
from sidkit.kernel import KernelProfile, KernelVersion, profile
from sidkit.keys import (
    IPPROTO_UDP,
    IPPROTO_UDPLITE,
    Direction,
    FiveTuple,
    FlowKey,
    SessionId,
    SidTooShortError,
    Zone,
    flow_key,
)

__all__ = [
    "DEFAULT_HTABLE_SIZE",
    "DEFAULT_ZONE",
    "GENERIC_TIMEOUT",
    "MIN_CHAINLEN",
    "NF_CT_EVICTION_RANGE",
    "Ctinfo",
    "Entry",
    "MigrationCost",
    "MigrationPolicy",
    "MigrationWork",
    "Nat",
    "PacketResult",
    "Stats",
    "Status",
    "Table",
    "TableFullError",
    "UdpTimeouts",
    "UnsupportedProtocolError",
    "Validator",
    "Verdict",
]

DEFAULT_ZONE: Final = Zone()
"""``nf_ct_zone_dflt``: id 0, both directions, no mark."""
DEFAULT_HTABLE_SIZE: Final = 65536
"""``nf_conntrack_init_start`` (v6.12) on a 64-bit machine with 1-4 GiB of RAM; 262144 above
4 GiB. ``nf_conntrack_max`` defaults to the same number (``max_factor = 1``)."""
NF_CT_EVICTION_RANGE: Final = 8
"""Buckets ``early_drop`` scans, starting at the new entry's own (as read in 6.1.192 and
6.12.117)."""
MIN_CHAINLEN: Final = 50
"""``__nf_conntrack_confirm`` refuses to grow a chain past ``MIN_CHAINLEN +
get_random_u32_below(MAX_CHAINLEN)``, i.e. 50..79 (as read in 6.12.117; 6.1.192 draws it with
``prandom_u32_max``); the model uses the lower bound, deterministically."""

_ASSURED: Final = int(Status.ASSURED)
_CONFIRMED: Final = int(Status.CONFIRMED)
_SEEN_REPLY: Final = int(Status.SEEN_REPLY)
_DYING: Final = int(Status.DYING)
_NAT_CLASH: Final = int(Status.NAT_CLASH)
_FIXED_TIMEOUT: Final = int(Status.FIXED_TIMEOUT)
_M32: Final = 0xFFFFFFFF
_DIRS: Final = (Direction.ORIGINAL, Direction.REPLY)

# Protocols with their own kernel tracker that this model does not implement.
_UNSUPPORTED: Final = {1: "ICMP", 6: "TCP", 33: "DCCP", 47: "GRE", 58: "ICMPv6", 132: "SCTP"}

Validator = Callable[[Entry, FiveTuple, float], bool]
"""``validate(entry, new_tuple, now) -> bool``: the VALIDATED policy's path check."""


def _entry_of(node: Entry | _ReplyNode) -> Entry:
    return node.ct if isinstance(node, _ReplyNode) else node


def _check_now(now: object) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise InputTypeError(f"now must be a number of seconds, not {type(now).__name__}")
    return float(now)


class Table:
    """A conntrack table: ``htable_size`` chains, bounded by ``max_entries``.

    *kernel* selects the era of ``hash_conntrack_raw`` (a version string, a
    :class:`~sidkit.kernel.KernelProfile`, or None for the newest); *secret* is that era's
    ``nf_conntrack_hash_rnd`` (16 bytes for the siphash forms, v5.15 on; a u32 for the jhash
    forms; zero by default -- the kernel draws it at random); *net_mix* is
    ``net_hash_mix(net)``. *max_entries* is ``nf_conntrack_max`` (0 = unbounded; default
    *htable_size*, as the kernel's ``max_factor = 1``). *migration* and *validate* govern
    SID zones (:class:`MigrationPolicy`).

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
        net_mix: int = 0,
        udp_timeouts: UdpTimeouts | None = None,
        migration: MigrationPolicy = MigrationPolicy.PURE_SID,
        validate: Validator | None = None,
        max_chainlen: int = MIN_CHAINLEN,
    ) -> None:
        self.profile = profile(kernel)
        era = self.profile.era("hash_conntrack_raw")
        assert era.impl is not None
        self._raw: Callable[..., int] = self.profile.function("hash_conntrack_raw")
        # The siphash forms take the 16-byte siphash_key_t, the jhash forms a u32: the
        # era's own signature says which.
        self._siphash_era = "bytes" in str(era.impl.__annotations__.get("secret", ""))
        self._net_mix = check_uint(net_mix, 32, "net_mix")
        if self._siphash_era:
            self._secret: bytes | int = check_key(
                bytes(16) if secret is None else secret, 16, "secret"
            )
        else:
            if isinstance(secret, bytes | bytearray | memoryview):
                raise InputTypeError(
                    f"kernel {self.profile.version} hashes conntrack with jhash2: "
                    "secret is a u32 (nf_conntrack_hash_rnd), not bytes",
                    code="bad-secret",
                )
            self._secret = check_uint(0 if secret is None else secret, 32, "secret")
        size = check_uint(htable_size, 32, "htable_size")
        if size < 1:
            raise InputValueError("htable_size must be at least 1", code="bad-size")
        self._size = size
        self.max_entries = check_uint(
            size if max_entries is None else max_entries, 32, "max_entries"
        )
        self.udp_timeouts = UdpTimeouts() if udp_timeouts is None else udp_timeouts
        if not isinstance(self.udp_timeouts, UdpTimeouts):
            raise InputTypeError("udp_timeouts must be a UdpTimeouts")
        if not isinstance(migration, MigrationPolicy):
            raise InputTypeError("migration must be a MigrationPolicy")
        self.migration = migration
        if validate is not None and not callable(validate):
            raise InputTypeError("validate must be callable")
        self.validate = validate
        self.max_chainlen = check_uint(max_chainlen, 32, "max_chainlen")
        self._buckets: list[list[Entry | _ReplyNode] | None] = [None] * size
        self._count = 0  # cnet->count: allocated entries, confirmed or not
        self._confirmed = 0
        self._tokens: dict[int, object] = {}
        self._sid_keys: dict[int, bytes] = {}
        self._gc_next = 0
        self._gc_early_drop = False  # conntrack_gc_work.early_drop
        self.stats = Stats()
        sipfn: Callable[..., int] | None = None
        jfn: Callable[..., int] | None = None
        if self._siphash_era:
            sipfn = self.profile.function("siphash")
        else:
            jfn = self.profile.function("jhash")
        self._siphash_fn = sipfn
        self._jhash_fn = jfn

    # ------------------------------------------------------------------ hashing and placement

    @property
    def htable_size(self) -> int:
        """``nf_conntrack_htable_size``."""
        return self._size

    @property
    def count(self) -> int:
        """Allocated entries, confirmed or not (``nf_conntrack_count``; what the bound checks)."""
        return self._count

    def __len__(self) -> int:
        """Confirmed entries in the hash (what ``conntrack -L`` lists, expired or not yet
        reaped included)."""
        return self._confirmed

    def _token(self, zone_id: int) -> object:
        tok = self._tokens.get(zone_id)
        if tok is None:
            tok = self._tokens[zone_id] = object()
        return tok

    def _sid_raw(self, value: bytes, zone_id: int) -> int:
        if self._siphash_fn is not None:
            key = self._sid_keys.get(zone_id)
            if key is None:
                sec = self._secret
                assert isinstance(sec, bytes)
                bo = self.profile.byteorder
                k0 = int.from_bytes(sec[:8], bo) ^ zone_id  # type: ignore[arg-type]
                k1 = int.from_bytes(sec[8:], bo) ^ self._net_mix  # type: ignore[arg-type]
                key = k0.to_bytes(8, bo) + k1.to_bytes(8, bo)  # type: ignore[arg-type]
                self._sid_keys[zone_id] = key
            return self._siphash_fn(value, key) & _M32
        assert self._jhash_fn is not None and isinstance(self._secret, int)
        return self._jhash_fn(value, (self._secret ^ zone_id ^ self._net_mix) & _M32) & _M32

    def _hash(self, key: FlowKey, zone_id: int, cache: bool = True) -> int:
        tok = self._tokens.get(zone_id)
        if tok is None:
            tok = self._token(zone_id)
        if key._ct_ctx is tok:
            return key._ct_hash
        if type(key) is FiveTuple or isinstance(key, FiveTuple):
            h = self._raw(
                key.src,
                key.sport,
                key.dst,
                key.dport,
                key.protocol,
                zone_id,
                self._net_mix,
                self._secret,
            )
        elif isinstance(key, SessionId):
            h = self._sid_raw(key.value, zone_id)
        else:
            raise InputTypeError(
                f"a flow key is a FiveTuple or a SessionId, not {type(key).__name__}",
                code="bad-key",
            )
        if cache:
            object.__setattr__(key, "_ct_ctx", tok)
            object.__setattr__(key, "_ct_hash", h)
        return h

    def raw_hash(self, key: FlowKey, zone_id: int = 0) -> int:
        """``hash_conntrack_raw(tuple, zone_id, net)`` of a tuple under this table's era,
        secret and namespace; for a :class:`~sidkit.keys.SessionId`, the SID-zone hash.

        The SID-zone hash is sidkit's reading of the seed ("resolve_normal_ct hashes the
        SID"): the era's keyed hash over the SID bytes with the tuple hash's keying -- for
        siphash eras ``siphash(sid, nf_conntrack_hash_rnd with key[0] ^= zone_id,
        key[1] ^= net_mix)`` (the v6.5 keying), for jhash eras ``jhash(sid,
        rnd ^ zone_id ^ net_mix)``. No kernel computes it; no oracle checks it.
        """
        return self._hash(key, check_uint(zone_id, 16, "zone_id"))

    def bucket_of(self, key: FlowKey, zone_id: int = 0) -> int:
        """The chain *key* lives in: ``reciprocal_scale(raw_hash(key, zone_id), htable_size)``."""
        return (self.raw_hash(key, zone_id) * self._size) >> 32

    def node_bucket(self, entry: Entry, direction: int) -> int:
        """The chain of *entry*'s node of *direction* (its ``tuplehash[dir]``)."""
        d = Direction(direction)
        raw = entry._hashes >> 32 if d == Direction.ORIGINAL else entry._hashes & _M32
        return (raw * self._size) >> 32

    # ------------------------------------------------------------------ chains

    def _link(self, e: Entry) -> None:
        # __nf_conntrack_hash_insert: ORIGINAL node at the head, then REPLY at the head.
        size = self._size
        bk = self._buckets
        b0 = ((e._hashes >> 32) * size) >> 32
        b1 = ((e._hashes & _M32) * size) >> 32
        chain = bk[b0]
        if chain is None:
            bk[b0] = [e]
        else:
            chain.append(e)
        chain = bk[b1]
        if chain is None:
            bk[b1] = [e._reply_node]
        else:
            chain.append(e._reply_node)

    def _link_node(self, e: Entry, d: int) -> None:
        raw = e._hashes >> 32 if d == 0 else e._hashes & _M32
        b = (raw * self._size) >> 32
        node = e if d == 0 else e._reply_node
        chain = self._buckets[b]
        if chain is None:
            self._buckets[b] = [node]
        else:
            chain.append(node)

    def _unlink_node(self, e: Entry, d: int) -> None:
        raw = e._hashes >> 32 if d == 0 else e._hashes & _M32
        b = (raw * self._size) >> 32
        chain = self._buckets[b]
        assert chain is not None
        node = e if d == 0 else e._reply_node
        for i in range(len(chain) - 1, -1, -1):
            if chain[i] is node:
                del chain[i]
                break
        if not chain:
            self._buckets[b] = None

    def _kill(self, e: Entry) -> None:
        """``nf_ct_delete`` of a confirmed entry: unhash, mark dying, free."""
        self._unlink_node(e, 0)
        self._unlink_node(e, 1)
        e.status |= _DYING
        self._count -= 1
        self._confirmed -= 1

    def _find(self, key: FlowKey, zone: Zone, raw: int, now: float) -> tuple[Entry, int] | None:
        """``____nf_conntrack_find``: walk the chain newest first, reap the expired entries
        met before the match, compare with ``nf_ct_key_equal``."""
        chain = self._buckets[(raw * self._size) >> 32]
        if not chain:
            return None
        is_sid = key.__class__ is SessionId
        tkey: FiveTuple = key  # type: ignore[assignment]  # used only when not is_sid
        zid = zone.id
        zdir = zone.dir
        reap: list[Entry] | None = None
        found: tuple[Entry, int] | None = None
        for node in reversed(chain):
            if node.__class__ is Entry:
                e: Entry = node
                d = 0
            else:
                e = node.ct  # type: ignore[union-attr]
                d = 1
            if e.timeout <= now:
                if e.status & _DYING:
                    continue
                if reap is None:
                    reap = [e]
                elif e not in reap:
                    reap.append(e)
                continue
            if e._skm >> d & 1:
                if not is_sid or e.sid != key:
                    continue
            else:
                if is_sid:
                    continue
                if d:
                    t = e._reply
                    if t is None:  # the plain inverse: compare without building it
                        o = e.original
                        if not (
                            tkey.sport == o.dport
                            and tkey.dport == o.sport
                            and tkey.src == o.dst
                            and tkey.dst == o.src
                            and tkey.protocol == o.protocol
                        ):
                            continue
                    elif t is not key and t != key:
                        continue
                else:
                    t = e.original
                    if t is not key and t != key:
                        continue
            ez = e.zone
            if (ez.id if ez.dir >> d & 1 else 0) != (zid if zdir >> d & 1 else 0):
                continue
            found = (e, d)
            break
        if reap is not None:
            for e in reap:
                self._kill(e)
                self.stats.expired += 1
        return found

    def _lookup(
        self, key0: FlowKey, key1: FlowKey, zone: Zone, now: float
    ) -> tuple[Entry, int] | None:
        stats = self.stats
        stats.searched += 1
        zid = zone.id if zone.dir & 1 else 0
        hit = self._find(key0, zone, self._hash(key0, zid), now)
        if hit is None:
            rid = zone.id if zone.dir & 2 else 0
            if rid != zid:
                hit = self._find(key1, zone, self._hash(key1, rid), now)
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
        if type(now) is not float:
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
        # _lookup() inlined, with the cached-hash fast path of _hash(): this is the hot path
        stats = self.stats
        stats.searched += 1
        zd = zone.dir
        zid = zone.id if zd & 1 else 0
        tok = self._tokens.get(zid)
        raw = key._ct_hash if tok is not None and key._ct_ctx is tok else self._hash(key, zid)
        hit = self._find(key, zone, raw, now)
        if hit is None:
            rid = zone.id if zd & 2 else 0
            if rid == zid:
                return None
            hit = self._find(key, zone, self._hash(key, rid), now)
            if hit is None:
                return None
        stats.hits += 1
        return hit[0], _DIRS[hit[1]]

    # ------------------------------------------------------------------ allocation, eviction

    def _early_drop_list(self, b: int, now: float) -> int:
        chain = self._buckets[b]
        if not chain:
            return 0
        drops = 0
        for node in list(reversed(chain)):
            e = _entry_of(node)
            if e.status & _DYING:
                continue
            if e.timeout <= now:
                self._kill(e)
                self.stats.expired += 1
                continue
            if e.status & _ASSURED:
                continue
            self._kill(e)
            drops += 1
        return drops

    def _early_drop(self, raw: int, now: float) -> bool:
        """``early_drop(net, hash)`` as read in 6.1.192 and 6.12.117 (6.1 also skips
        offloaded entries, which the model has none of): from the new entry's bucket, scan up to
        NF_CT_EVICTION_RANGE buckets and stop at the first in which at least one entry was
        evicted -- evicting *every* non-assured entry of that chain. Expired entries met are
        reaped but do not count, so a scan that frees only expired entries still fails."""
        size = self._size
        b = (raw * size) >> 32
        for i in range(NF_CT_EVICTION_RANGE):
            if i:
                b = (b + 1) % size
            drops = self._early_drop_list(b, now)
            if drops:
                self.stats.early_drop += drops
                return True
        return False

    def _check_protocol(self, t: FiveTuple) -> None:
        name = _UNSUPPORTED.get(t.protocol)
        if name is not None:
            raise UnsupportedProtocolError(
                f"the {name} tracker (protocol {t.protocol}) is not modelled; sidkit models "
                "UDP, UDP-Lite and the generic tracker"
            )

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
        self._check_protocol(tuple)
        if sid is not None:
            if zone.sid is None:
                raise InputValueError(
                    f"zone {zone.id} is not a SID zone; a SID cannot key its entries",
                    code="not-sid-zone",
                )
            flow_key(zone, tuple, sid=sid, direction=Direction.ORIGINAL)  # validates the SID
        e = self._create(tuple, zone, sid, nat, now)
        tracker_packet(e, now, self.udp_timeouts)
        return e

    def _create(
        self, t: FiveTuple, zone: Zone, sid: SessionId | None, nat: Nat | None, now: float
    ) -> Entry:
        e = Entry(t, zone, sid if zone.sid is not None else None)
        key0 = e.key(0)
        raw = self._hash(key0, zone.id if zone.dir & 1 else 0)
        # __nf_conntrack_alloc: count first, then check the bound.
        self._count += 1
        if self.max_entries and self._count > self.max_entries and not self._early_drop(raw, now):
            self._gc_early_drop = True
            self._count -= 1
            raise TableFullError(
                f"table full ({self.max_entries} entries) and no non-assured entry in "
                f"the {NF_CT_EVICTION_RANGE} buckets from {(raw * self._size) >> 32}"
            )
        e._hashes = raw << 32
        if nat is not None:
            self._set_nat(e, nat)
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
        self._set_nat(entry, nat)

    @staticmethod
    def _set_nat(e: Entry, nat: Nat) -> None:
        e._set_tuples(e.original, nat.apply(e.original).reversed())
        e.nat = nat
        if nat.snat is not None:
            e.status |= Status.SRC_NAT | Status.SRC_NAT_DONE
        if nat.dnat is not None:
            e.status |= Status.DST_NAT | Status.DST_NAT_DONE

    def discard(self, entry: Entry) -> None:
        """Free an unconfirmed entry (the packet that carried it was dropped)."""
        if entry.status & (_CONFIRMED | _DYING):
            raise InputValueError("only an unconfirmed, live entry can be discarded")
        entry.status |= _DYING
        self._count -= 1

    @staticmethod
    def _key_equal_node(node: Entry | _ReplyNode, key: FlowKey, zone: Zone) -> bool:
        """``nf_ct_key_equal`` without the expiry check (confirmation does not reap)."""
        e = _entry_of(node)
        d = 0 if node is e else 1
        if e._skm >> d & 1:
            if e.sid != key:
                return False
        else:
            t = e.reply if d else e.original
            if t != key:
                return False
        ez = e.zone
        return (ez.id if ez.dir >> d & 1 else 0) == (zone.id if zone.dir >> d & 1 else 0)

    def confirm(self, entry: Entry, *, now: float) -> Entry | None:
        """``__nf_conntrack_confirm``: put *entry* in the hash, or resolve a clash.

        Returns the entry the packet now belongs to: *entry* itself; the entry already in
        the table when both are the same flow (``__nf_ct_resolve_clash``, counted as
        ``clash_resolve``; *entry* is freed); or None when the packet is dropped
        (``insert_failed``: a clash that cannot merge, or a chain longer than
        ``max_chainlen``). Timeouts become absolute here (``ct->timeout +=
        nfct_time_stamp``).
        """
        now = _check_now(now)
        if entry.status & _CONFIRMED:
            raise InputValueError("entry is already confirmed", code="confirmed")
        if entry.status & _DYING:
            self.stats.insert_failed += 1
            return None
        zone = entry.zone
        key0 = entry.key(0)
        key1 = entry.key(1)
        raw0 = entry._hashes >> 32
        raw1 = self._hash(key1, zone.id if zone.dir & 2 else 0, cache=False)
        size = self._size
        clash: Entry | None = None
        for raw, key in ((raw0, key0), (raw1, key1)):
            chain = self._buckets[(raw * size) >> 32]
            if not chain:
                continue
            for chainlen, node in enumerate(reversed(chain)):
                if self._key_equal_node(node, key, zone):
                    clash = _entry_of(node)
                    break
                if chainlen > self.max_chainlen:  # "if (chainlen++ > max_chainlen)"
                    self.stats.chaintoolong += 1
                    self.stats.insert_failed += 1
                    self.discard(entry)
                    return None
            if clash is not None:
                break
        if clash is not None:
            # nf_ct_resolve_clash: UDP allows clashes (allow_clash), the generic tracker not.
            if entry.original.protocol in (IPPROTO_UDP, IPPROTO_UDPLITE) and (
                nf_ct_match(clash, entry) or nf_ct_match_reverse(clash, entry)
            ):
                self.stats.clash_resolve += 1
                self.discard(entry)
                return clash
            self.stats.drop += 1
            self.stats.insert_failed += 1
            self.discard(entry)
            return None
        entry.timeout += now
        entry._hashes = raw0 << 32 | raw1
        self._link(entry)
        entry.status |= _CONFIRMED
        self._confirmed += 1
        self.stats.insert += 1
        return entry

    def delete(self, entry: Entry) -> bool:
        """``nf_ct_delete``: remove a confirmed entry; False if it was not in the table."""
        if not isinstance(entry, Entry):
            raise InputTypeError("entry must be an Entry")
        if not entry.status & _CONFIRMED or entry.status & _DYING:
            return False
        self._kill(entry)
        return True

    # ------------------------------------------------------------------ garbage collection

    def gc(self, now: float, *, buckets: int | None = None) -> int:
        """One run of ``gc_worker`` over *buckets* chains (default: all), continuing where
        the previous run stopped; returns the number of entries removed.

        Expired entries are reaped. When a recent allocation failed (the worker's
        ``early_drop`` flag) and the table holds at least 95 % of ``max_entries``
        (``nf_conntrack_max / 100 * 95``), non-assured entries are evicted too
        (``gc_worker_can_early_drop``; the UDP tracker has no ``can_early_drop``). The flag
        clears when a scan completes the table, as the kernel clears it on every run that
        schedules a next one. The kernel bounds a run by time (10 ms) and by 64000/HZ
        expired entries; the model by bucket count.
        """
        now = _check_now(now)
        n = self._size if buckets is None else check_uint(buckets, 32, "buckets")
        max95 = self.max_entries // 100 * 95 if self._gc_early_drop else 0
        removed = 0
        i = self._gc_next
        for _ in range(n):
            chain = self._buckets[i]
            if chain:
                for node in list(reversed(chain)):
                    e = _entry_of(node)
                    if e.status & _DYING:
                        continue
                    if e.timeout <= now:
                        self._kill(e)
                        self.stats.expired += 1
                        removed += 1
                        continue
                    if not max95 or self._count < max95:
                        continue
                    if not e.status & _ASSURED:
                        self._kill(e)
                        self.stats.gc_early_drop += 1
                        removed += 1
            i += 1
            if i >= self._size:
                i = 0
                self._gc_early_drop = False
        self._gc_next = i
        return removed

    def resize(self, htable_size: int) -> None:
        """``nf_conntrack_hash_resize``: move every node to a table of *htable_size* chains
        (old chains in order, each from its head, added at the new chains' heads)."""
        size = check_uint(htable_size, 32, "htable_size")
        if size < 1:
            raise InputValueError("htable_size must be at least 1", code="bad-size")
        new: list[list[Entry | _ReplyNode] | None] = [None] * size
        for chain in self._buckets:
            if not chain:
                continue
            for node in reversed(chain):
                e = _entry_of(node)
                raw = e._hashes >> 32 if node is e else e._hashes & _M32
                b = (raw * size) >> 32
                nc = new[b]
                if nc is None:
                    new[b] = [node]
                else:
                    nc.append(node)
        self._buckets = new
        self._size = size
        self._gc_next = 0

    # ------------------------------------------------------------------ per-packet path

    @staticmethod
    def translate(entry: Entry, direction: int, t: FiveTuple) -> FiveTuple:
        """``nf_nat_packet``: the tuple a packet of *direction* has after NAT (a packet of
        the ORIGINAL direction has its source and/or destination rewritten to the inverse
        of the reply tuple; a reply packet is rewritten back)."""
        return nat_translate(entry, direction, t)

    def _keys(
        self,
        t: FiveTuple,
        zone: Zone,
        payload: bytes | bytearray | memoryview | None,
        sid: SessionId | None,
    ) -> tuple[FlowKey, FlowKey, SessionId | None, bool]:
        """The lookup keys for the ORIGINAL and REPLY id of *zone*, the SID, and whether
        the SID fell back to the tuple (payload too short)."""
        cfg = zone.sid
        if cfg is None:
            return t, t, None, False
        try:
            d = Direction.ORIGINAL if zone.dir & 1 else Direction.REPLY
            k = flow_key(zone, t, payload, direction=d, sid=sid)
        except SidTooShortError:
            self.stats.sid_fallback += 1
            return t, t, None, True
        assert isinstance(k, SessionId)
        return (
            k if zone.dir & 1 else t,
            k if zone.dir & 2 else t,
            k,
            False,
        )

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
        self._check_protocol(tuple)
        zone = zone.for_mark(mark)
        key0, key1, sidv, fallback = self._keys(tuple, zone, payload, sid)
        if sidv is not None:
            self.stats.sid_lookups += 1
        hit = self._lookup(key0, key1, zone, now)
        created = False
        migration: MigrationCost | None = None
        key: FlowKey = key0
        if hit is None:
            try:
                e = self._create(tuple, zone, sidv, nat, now)
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
                    migration = self._migrate(e, d, tuple, now)
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
        # resolve_normal_ct's ctinfo
        st = e.status
        if d:
            ctinfo = Ctinfo.ESTABLISHED_REPLY
        elif st & _SEEN_REPLY:
            ctinfo = Ctinfo.ESTABLISHED
        elif st & Status.EXPECTED:
            ctinfo = Ctinfo.RELATED
        else:
            ctinfo = Ctinfo.NEW
        tracker_packet(e, now, self.udp_timeouts)
        if d and not e.status & _SEEN_REPLY:
            e.status |= _SEEN_REPLY
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
            Direction(d),
            ctinfo,
            key,
            nat_translate(e, d, tuple),
            created=created,
            migration=migration,
            sid_fallback=fallback,
        )

    # ------------------------------------------------------------------ SID migrations

    def _migrate(self, e: Entry, d: int, new: FiveTuple, now: float) -> MigrationCost:
        """Apply the migration policy to a known SID arriving from *new* in direction *d*."""
        orig, reply = moved_tuples(e, d, new)
        needed = migration_work(e, orig, reply)
        none = MigrationWork()
        policy = self.migration

        def cost(accepted: bool, done: MigrationWork, stale: bool, outcome: str) -> MigrationCost:
            return MigrationCost(
                policy, Direction(d), e.tuple(d), new, accepted, done, needed, stale, outcome
            )

        if policy is MigrationPolicy.STRICT:
            self.stats.sid_refused += 1
            return cost(False, none, False, "refused")
        if policy is MigrationPolicy.PURE_SID:
            self.stats.sid_migrated += 1
            return cost(True, none, needed != none, reply_outcome(e, d, moved=False))
        if self.validate is None or not self.validate(e, new, now):
            self.stats.sid_validation_failed += 1
            return cost(False, none, False, "refused")
        # VALIDATED and approved: rewrite the tuples; move the tuple-keyed nodes whose
        # tuple changed (unlink, hash again, add at the head of the new chain), unless the
        # new tuple is already another entry's node (nf_conntrack_tuple_taken's question).
        zone = e.zone
        moves: list[tuple[int, int]] = []
        for dd, t in ((0, orig), (1, reply)):
            if t == e.tuple(dd) or e._skm >> dd & 1:
                continue
            raw = self._hash(t, zone.id if zone.dir >> dd & 1 else 0, cache=False)
            taken = self._find(t, zone, raw, now)
            if taken is not None and taken[0] is not e:
                self.stats.found += 1
                self.stats.sid_migration_clash += 1
                return cost(False, none, False, "refused")
            moves.append((dd, raw))
        for dd, _raw in moves:
            self._unlink_node(e, dd)
        done = cost(True, needed, False, "matched")  # e.tuple(d) still the old tuple here
        e._set_tuples(orig, reply)
        for dd, raw in moves:
            keep = e._hashes & _M32 if dd == 0 else e._hashes >> 32 << 32
            e._hashes = keep | (raw << 32 if dd == 0 else raw)
            self._link_node(e, dd)
        self.stats.sid_migrated += 1
        return done

    # ------------------------------------------------------------------ inspection

    def __iter__(self) -> Iterator[Entry]:
        """Entries in bucket order of their ORIGINAL node, newest first within a chain --
        the order of ``/proc/net/nf_conntrack`` and ``conntrack -L``, which skip REPLY
        nodes."""
        for chain in self._buckets:
            if chain:
                for node in reversed(chain):
                    if isinstance(node, Entry):
                        yield node

    def nodes(self) -> Iterator[tuple[int, Entry, Direction]]:
        """Every node ``(bucket, entry, direction)`` in table order."""
        for b, chain in enumerate(self._buckets):
            if chain:
                for node in reversed(chain):
                    if isinstance(node, Entry):
                        yield b, node, Direction.ORIGINAL
                    else:
                        yield b, node.ct, Direction.REPLY

    def chain_lengths(self) -> list[int]:
        """Nodes per bucket, bucket 0 first (each entry has two nodes)."""
        return [len(c) if c else 0 for c in self._buckets]

    def chain_histogram(self) -> dict[int, int]:
        """``{chain length: number of buckets}``."""
        return dict(sorted(Counter(self.chain_lengths()).items()))

    def __repr__(self) -> str:
        return (
            f"<Table {self.profile} htable_size={self._size} max={self.max_entries} "
            f"entries={self._confirmed} count={self._count}>"
        )
