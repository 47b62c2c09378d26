# Strategy: the values sidkit.conntrack hands out and takes in: the entry (nf_conn), its
# status bits, the UDP timeout policy, NAT mappings, the counters (conntrack -S), and the
# result records of a packet and of a migration. Entries are mutable on purpose -- the kernel
# mutates nf_conn in place, and a model that copied on every packet could not reach the
# issue's memory target -- but only the table mutates them; callers read.
"""Value types of the conntrack model (private; re-exported by sidkit.conntrack)."""

from __future__ import annotations

import enum
from typing import Final

import attrs

from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit._validate import check_uint
from sidkit.hashing._inet import IPAddress, parse_ip
from sidkit.keys import Direction, FiveTuple, FlowKey, SessionId, Zone

__all__ = [
    "Ctinfo",
    "Entry",
    "MigrationCost",
    "MigrationPolicy",
    "MigrationWork",
    "Nat",
    "PacketResult",
    "Stats",
    "Status",
    "TableFullError",
    "UdpTimeouts",
    "UnsupportedProtocolError",
    "Verdict",
]


class TableFullError(SidkitError):
    """``__nf_conntrack_alloc`` returned ``-ENOMEM``: the table is at ``nf_conntrack_max``
    and ``early_drop`` found nothing to evict ("nf_conntrack: table full, dropping packet").
    :meth:`Table.packet` turns this into a dropped packet; :meth:`Table.create` raises it."""

    code = "table-full"


class UnsupportedProtocolError(InputValueError):
    """A transport protocol whose kernel tracker the model does not implement (TCP, ICMP,
    SCTP, DCCP, GRE): sidkit refuses rather than give them the generic tracker's 600 s,
    which the kernel never does."""

    code = "unsupported-protocol"


class Status(enum.IntFlag):
    """``enum ip_conntrack_status`` bits (``include/uapi/linux/netfilter/nf_conntrack_common.h``,
    v6.12; the bits used here are unchanged since v2.6.x apart from NAT_CLASH, v5.5)."""

    EXPECTED = 1 << 0
    SEEN_REPLY = 1 << 1
    ASSURED = 1 << 2
    CONFIRMED = 1 << 3
    SRC_NAT = 1 << 4
    DST_NAT = 1 << 5
    SRC_NAT_DONE = 1 << 7
    DST_NAT_DONE = 1 << 8
    DYING = 1 << 9
    FIXED_TIMEOUT = 1 << 10
    NAT_CLASH = 1 << 12


class Ctinfo(enum.IntEnum):
    """``enum ip_conntrack_info`` as ``resolve_normal_ct`` assigns it."""

    ESTABLISHED = 0
    RELATED = 1
    NEW = 2
    ESTABLISHED_REPLY = 3


class Verdict(enum.Enum):
    """What the model does with the packet."""

    ACCEPT = "accept"
    DROP = "drop"


class MigrationPolicy(enum.Enum):
    """What a SID zone does when a known SID arrives from a new tuple.

    ``PURE_SID``
        The seed design: the SID finds the entry and the packet joins it; the entry's tuples
        (and so its NAT state and its reply node) keep the old client address.
    ``VALIDATED``
        The SID finds the entry; the tuple is moved to the new address only when the table's
        ``validate`` callback says so (as QUIC path validation, RFC 9000 section 9, confirms
        a new path before the server commits to it); refused packets are dropped.
    ``STRICT``
        A SID seen from a second tuple is refused (dropped) and counted.
    """

    PURE_SID = "pure-sid"
    VALIDATED = "validated"
    STRICT = "strict"


MAX_TIMEOUT: Final = 2_147_483.0
"""The longest timeout a UDP sysctl takes, in seconds: ``proc_dointvec_jiffies`` refuses
values above ``INT_MAX / HZ`` (``kernel/sysctl.c``), 2,147,483 s at HZ = 1000, the largest
HZ the model offers; the model refuses longer ones (and NaN and infinities) rather than keep
entries that never expire."""


def _seconds(value: object, name: str) -> float:
    """A timeout in seconds: an int or float, finite, at most :data:`MAX_TIMEOUT` (the sign
    is checked with the others in ``__attrs_post_init__``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputTypeError(
            f"UdpTimeouts.{name} must be a number of seconds, not {type(value).__name__}",
            code="bad-timeout",
        )
    if isinstance(value, int) and not -MAX_TIMEOUT <= value <= MAX_TIMEOUT:
        raise InputValueError(
            f"UdpTimeouts.{name} must be at most {MAX_TIMEOUT:.0f} s (INT_MAX / HZ)",
            code="bad-timeout",
        )
    seconds = float(value)
    if not -MAX_TIMEOUT <= seconds <= MAX_TIMEOUT:  # NaN fails this too
        raise InputValueError(
            f"UdpTimeouts.{name} must be a finite number of seconds up to {MAX_TIMEOUT:.0f} "
            f"(INT_MAX / HZ), got {seconds!r}",
            code="bad-timeout",
        )
    return seconds


def _unreplied(value: object) -> float:
    return _seconds(value, "unreplied")


def _replied(value: object) -> float:
    return _seconds(value, "replied")


def _stream_delay(value: object) -> float | None:
    return None if value is None else _seconds(value, "stream_delay")


@attrs.frozen
class UdpTimeouts:
    """The UDP tracker's timeouts in seconds (``net/netfilter/nf_conntrack_proto_udp.c``).

    Defaults are the kernel's as read in Debian's 6.1.192 and 6.12.117 sources:
    ``udp_timeouts[] = { [UDP_CT_UNREPLIED] = 30*HZ, [UDP_CT_REPLIED] = 120*HZ }`` (the
    ``nf_conntrack_udp_timeout`` and ``nf_conntrack_udp_timeout_stream`` sysctls), and an
    entry moves to the stream timeout and ASSURED only when a packet arrives more than
    ``stream_delay`` = 2 s (``stream_ts = 2 * HZ + jiffies`` set while unconfirmed) after
    the first one, with a reply seen. Older kernels used 180 s for the stream timeout and
    assured on the first packet after a reply, without a delay (e.g. v3.0
    ``nf_ct_udp_timeout_stream = 180*HZ``): ``stream_delay=None``,
    ``UdpTimeouts(replied=180.0, stream_delay=None)``, which a :class:`Table` of such a
    kernel gets from the eras table (``ct_udp_timeouts``).
    """

    unreplied: float = attrs.field(default=30.0, converter=_unreplied)
    replied: float = attrs.field(default=120.0, converter=_replied)
    stream_delay: float | None = attrs.field(default=2.0, converter=_stream_delay)

    def __attrs_post_init__(self) -> None:
        delay = self.stream_delay
        if not (self.unreplied > 0 and self.replied > 0 and (delay is None or delay >= 0)):
            raise InputValueError(
                "UDP timeouts must be positive (stream_delay >= 0)", code="bad-timeout"
            )


GENERIC_TIMEOUT: Final = 600.0
"""``nf_ct_generic_timeout = 600*HZ`` (``net/netfilter/nf_conntrack_proto_generic.c``, 6.12):
the tracker of protocols without their own."""


def _nat_endpoint(value: object) -> tuple[IPAddress, int] | None:
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 2:
        raise InputValueError("a NAT target is an (address, port) pair", code="bad-nat")
    return parse_ip(value[0], "NAT address"), check_uint(value[1], 16, "NAT port")


@attrs.frozen
class Nat:
    """A NAT binding for a new flow, as the nat table's first packet sets it up.

    ``snat`` rewrites the original direction's source (masquerade, CGNAT), ``dnat`` its
    destination (a load balancer's VIP to a backend). Either is an ``(address, port)``
    pair. The reply tuple becomes the inverse of the translated original tuple -- that is
    all ``nf_nat_setup_info`` does to the conntrack (``net/netfilter/nf_nat_core.c``); sidkit
    does not model the port search of ``nf_nat_used_tuple``: a caller that picks a taken
    mapping gets the clash at confirmation, counted as ``insert_failed``.
    """

    snat: tuple[IPAddress, int] | None = attrs.field(default=None, converter=_nat_endpoint)
    dnat: tuple[IPAddress, int] | None = attrs.field(default=None, converter=_nat_endpoint)

    def apply(self, t: FiveTuple) -> FiveTuple:
        """The original tuple as it leaves the NAT box."""
        src, sport, dst, dport = t.src, t.sport, t.dst, t.dport
        if self.snat is not None:
            src, sport = self.snat
        if self.dnat is not None:
            dst, dport = self.dnat
        return FiveTuple(src, sport, dst, dport, t.protocol)


@attrs.define
class Stats:
    """Counters in the shape of ``conntrack -S`` (``struct ip_conntrack_stat``,
    ``include/linux/netfilter/nf_conntrack_common.h`` v6.12) plus sidkit's own.

    Kernel-named counters follow the kernel where the model has the same event:
    ``invalid`` (packets that could not be tracked), ``drop`` (packets dropped by
    conntrack, e.g. table full), ``early_drop`` (entries evicted by ``early_drop``),
    ``insert_failed`` and ``clash_resolve`` (confirmation clashes), ``chaintoolong``,
    ``found`` (``nf_conntrack_tuple_taken`` hits, i.e. NAT clashes here). ``insert`` counts
    as the era's ``ct_stat_insert`` row says: in 6.1 and 6.12 only
    ``nf_conntrack_hash_check_insert`` (ctnetlink) increments it, so a packet-driven table
    leaves it at 0 (``conntrack -S`` on those kernels shows ``insert=0`` too); eras that do
    not model it leave it at 0 as well. ``error`` and ``search_restart`` stay 0 (no ICMP,
    no concurrent resize).

    sidkit's: ``confirmed`` (confirmations that linked an entry, NAT-clash entries
    included), ``searched``/``hits`` (lookups and their successes), ``expired`` (entries
    reaped by lookups, early drop or GC), ``gc_early_drop`` (evicted by the GC worker above
    95 % of the bound), and the SID-zone counters ``sid_lookups``, ``sid_fallback`` (payload
    too short: keyed by tuple instead), ``sid_migrated`` (a known SID from a new tuple,
    admitted), ``sid_refused`` (STRICT), ``sid_validation_failed`` (VALIDATED, callback
    said no), ``sid_migration_clash`` (the moved reply tuple was taken).
    """

    found: int = 0
    invalid: int = 0
    insert: int = 0
    insert_failed: int = 0
    drop: int = 0
    early_drop: int = 0
    error: int = 0
    search_restart: int = 0
    clash_resolve: int = 0
    chaintoolong: int = 0
    confirmed: int = 0
    searched: int = 0
    hits: int = 0
    expired: int = 0
    gc_early_drop: int = 0
    sid_lookups: int = 0
    sid_fallback: int = 0
    sid_migrated: int = 0
    sid_refused: int = 0
    sid_validation_failed: int = 0
    sid_migration_clash: int = 0

    def as_dict(self) -> dict[str, int]:
        """All counters, kernel ones first."""
        return attrs.asdict(self)

    def __str__(self) -> str:
        kernel = (
            "found",
            "invalid",
            "insert",
            "insert_failed",
            "drop",
            "early_drop",
            "error",
            "search_restart",
            "clash_resolve",
            "chaintoolong",
        )
        return " ".join(f"{k}={getattr(self, k)}" for k in kernel)


class Entry:
    """One conntrack entry (``struct nf_conn``): two tuples, a zone, status, a timeout.

    ``timeout`` is absolute (seconds on the caller's clock) once confirmed and relative
    before, as ``ct->timeout`` is in jiffies (``__nf_ct_refresh_acct`` adds
    ``nfct_time_stamp`` only to confirmed entries; confirmation adds it to the others).
    ``sid`` is the session ID in a SID zone (the seed's ``tuple.sid``), else None.
    Read-only for callers; the table mutates it.
    """

    __slots__ = (
        "_hashes",
        "_reply",
        "_reply_node",
        "_skm",
        "nat",
        "original",
        "sid",
        "status",
        "stream_ts",
        "timeout",
        "zone",
    )

    original: FiveTuple
    zone: Zone
    sid: SessionId | None
    status: int
    timeout: float
    stream_ts: float
    nat: Nat | None
    _reply: FiveTuple | None
    _hashes: int
    _skm: int
    _reply_node: _ReplyNode

    def __init__(self, original: FiveTuple, zone: Zone, sid: SessionId | None) -> None:
        self.original = original
        # The reply tuple is stored only when it is not the plain inverse of the original
        # (NAT, or a migration that moved one side): an un-NATed entry then costs one tuple
        # object, not two. The ``reply`` property hides the difference.
        self._reply = None
        self.zone = zone
        self.sid = sid
        self.status = 0
        self.timeout = 0.0
        self.stream_ts = 0.0
        self.nat = None
        self._hashes = 0  # raw u32 hash of the ORIGINAL node << 32 | of the REPLY node
        # Bit d set: the node of direction d is keyed by the SID (zone.sid_keyed(d)).
        self._skm = (
            0
            if sid is None
            else (zone.dir if zone.sid is not None else 0)  # NF_CT_ZONE_DIR_* == 1 << dir
        )
        self._reply_node = _ReplyNode(self)

    @property
    def reply(self) -> FiveTuple:
        """``ct->tuplehash[IP_CT_DIR_REPLY].tuple``: the inverse of the original tuple unless
        NAT (or a migration) made it something else."""
        r = self._reply
        return self.original.reversed() if r is None else r

    def _set_tuples(self, original: FiveTuple, reply: FiveTuple) -> None:
        self.original = original
        o = original
        plain = (
            reply.src == o.dst
            and reply.sport == o.dport
            and reply.dst == o.src
            and reply.dport == o.sport
            and reply.protocol == o.protocol
        )
        self._reply = None if plain else reply

    def tuple(self, direction: int) -> FiveTuple:
        """``ct->tuplehash[dir].tuple``."""
        return self.reply if direction else self.original

    def key(self, direction: int) -> FlowKey:
        """What the node of *direction* is hashed and compared by: the SID in a SID-keyed
        direction, else the tuple."""
        if self._skm >> direction & 1:
            assert self.sid is not None
            return self.sid
        return self.reply if direction else self.original

    @property
    def confirmed(self) -> bool:
        """In the hash table (``IPS_CONFIRMED``)."""
        return bool(self.status & Status.CONFIRMED)

    @property
    def assured(self) -> bool:
        """``IPS_ASSURED``: never evicted by early drop."""
        return bool(self.status & Status.ASSURED)

    @property
    def seen_reply(self) -> bool:
        """``IPS_SEEN_REPLY``."""
        return bool(self.status & Status.SEEN_REPLY)

    @property
    def dying(self) -> bool:
        """Removed from the table (``IPS_DYING``)."""
        return bool(self.status & Status.DYING)

    def expired(self, now: float) -> bool:
        """``nf_ct_is_expired``: ``(s32)(ct->timeout - nfct_time_stamp) <= 0``."""
        return bool(self.status & Status.CONFIRMED) and self.timeout <= now

    def expires_in(self, now: float) -> float:
        """Seconds until expiry (what ``conntrack -L`` prints), 0 when expired."""
        return max(0.0, self.timeout - now) if self.confirmed else self.timeout

    def __repr__(self) -> str:
        flags = "|".join(f.name or "" for f in Status if self.status & f) or "0"
        sid = f" sid={self.sid}" if self.sid is not None else ""
        return (
            f"<Entry {self.original} / {self.reply} zone={self.zone.id}{sid} "
            f"status={flags} timeout={self.timeout:g}>"
        )


class _ReplyNode:
    """The REPLY direction's ``nf_conntrack_tuple_hash`` in a chain (the entry object itself
    stands for the ORIGINAL one): one pointer, so a second node costs 40 bytes, not a copy."""

    __slots__ = ("ct",)

    def __init__(self, ct: Entry) -> None:
        self.ct = ct


@attrs.frozen
class MigrationWork:
    """Work on the table's state that one migration does or needs.

    ``tuples``: conntrack tuples rewritten in place (original and/or reply).
    ``rehashes``: hash-table nodes keyed by a tuple whose tuple changed, so they are hashed
    again (one ``hash_conntrack_raw`` each) and moved to their new bucket; nodes keyed by
    the SID stay where they are.
    ``nat``: NAT bindings rewritten -- the SNAT binding is found by its original source
    (``hash_by_src`` in ``net/netfilter/nf_nat_core.c``, the ``nf_nat_bysrc`` table), so a
    new client source re-keys it; a DNAT binding is undone on replies through the reply
    tuple, so a changed reply tuple under DNAT is a NAT rewrite too.
    """

    tuples: int = 0
    rehashes: int = 0
    nat: int = 0


@attrs.frozen
class MigrationCost:
    """What one migration (a known SID arriving from a new tuple) cost, as data.

    ``done`` is what the table did; ``needed`` is what keeping the entry's tuples and NAT
    state true to the new address requires (the same under every policy). Under
    ``PURE_SID`` ``done`` is empty and ``stale_nat`` is True: the packet joined the entry
    but the entry still describes the old address. ``reply_outcome`` says what a reply sent
    to the *new* address meets: ``"matched"`` (found and un-NATed to the new address),
    ``"misrouted"`` (found, but un-NATed to the old address -- SNAT under PURE_SID),
    ``"unmatched"`` (no entry: it starts a new flow, not un-NATed), or ``"refused"`` when
    the migrating packet itself was dropped.
    """

    policy: MigrationPolicy
    direction: Direction
    old: FiveTuple
    new: FiveTuple
    accepted: bool
    done: MigrationWork
    needed: MigrationWork
    stale_nat: bool
    reply_outcome: str


@attrs.frozen
class PacketResult:
    """What :meth:`Table.packet` did with one packet."""

    verdict: Verdict
    entry: Entry | None
    direction: Direction | None
    ctinfo: Ctinfo | None
    key: FlowKey
    translated: FiveTuple | None
    """The packet's tuple after NAT (``nf_nat_packet``), None when dropped."""
    created: bool = False
    migration: MigrationCost | None = None
    reason: str = ""
    sid_fallback: bool = False
