"""Stateful test: sidkit.conntrack.Table against a plain-dict model, driven by Hypothesis.

The model keeps entries in a dict and decides everything by brute force from the kernel's
rules as the module docstrings cite them: a node's chain is reciprocal_scale of the era's
hash_conntrack_raw (the function the kernel-C vectors pin; the SID hash by its definition in
Table.raw_hash), chains are walked newest first by an insertion counter, lookups reap the
expired entries they pass, early_drop scans eight chains from the new entry's, the UDP
tracker moves timeouts and ASSURED, migrations follow the table's policy. After every step
the model and the table must agree on every entry, every flag, every timeout, and the exact
order of every chain. The table is small (8 chains, 6 entries) so that collisions, early
drops and full-table drops happen often; a clock rule moves time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sidkit import hashing
from sidkit.conntrack import Ctinfo, Entry, MigrationPolicy, Table, TableFullError, Verdict
from sidkit.kernel import profile
from sidkit.keys import NF_CT_ZONE_DIR_ORIG, FiveTuple, SessionId, SidZoneConfig, Zone

SIZE = 8
MAX = 6
SECRET = bytes(range(16))
RAW = profile("6.12").function("hash_conntrack_raw")
CLIENTS = [FiveTuple(f"192.0.2.{i + 1}", 40000 + i, "198.51.100.7", 443) for i in range(5)]
SERVERS = [("198.51.100.7", 443), ("198.51.100.8", 4433)]
CFG = SidZoneConfig("quic", 0, 4)
ZONES = [Zone(), Zone(5, NF_CT_ZONE_DIR_ORIG), Zone(9, NF_CT_ZONE_DIR_ORIG, sid=CFG)]
SIDS = [bytes([0xC0, 0, 0, i]) for i in range(4)]


@functools.lru_cache(maxsize=4096)
def model_raw(key: FiveTuple | SessionId, zid: int) -> int:
    if isinstance(key, FiveTuple):
        raw: int = RAW(key.src, key.sport, key.dst, key.dport, key.protocol, zid, 0, SECRET)
        return raw
    k0 = int.from_bytes(SECRET[:8], "little") ^ zid
    k1 = int.from_bytes(SECRET[8:], "little")
    key16 = k0.to_bytes(8, "little") + k1.to_bytes(8, "little")
    h: int = hashing.siphash(key.value, key16)
    return h & 0xFFFFFFFF


def bucket(key: FiveTuple | SessionId, zid: int) -> int:
    return (model_raw(key, zid) * SIZE) >> 32


def zid_of(zone: Zone, d: int) -> int:
    return zone.id if zone.dir & (1 << d) else 0


@dataclass
class M:
    orig: FiveTuple
    reply: FiveTuple
    zone: Zone
    sid: SessionId | None
    timeout: float
    stream_ts: float = 0.0
    seen_reply: bool = False
    assured: bool = False
    seq: list[int] = field(default_factory=lambda: [0, 0])
    nat_clash: bool = False  # kept by its REPLY node only (nf_ct_resolve_clash_harder)
    entry: Entry | None = None  # the table's object, for comparison only

    def sid_keyed(self, d: int) -> bool:
        return self.sid is not None and self.zone.sid is not None and bool(self.zone.dir >> d & 1)

    def key(self, d: int) -> FiveTuple | SessionId:
        if self.sid_keyed(d):
            assert self.sid is not None
            return self.sid
        return self.reply if d else self.orig

    def bucket(self, d: int) -> int:
        return bucket(self.key(d), zid_of(self.zone, d))


class ConntrackMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy = MigrationPolicy.PURE_SID
        self.table: Table | None = None
        self.model: list[M] = []
        self.pending: list[M] = []
        self.now = 0.0
        self.seq = 0

    # --- model helpers ----------------------------------------------------------------------

    def nodes(self, b: int) -> list[tuple[int, M, int]]:
        out = [
            (m.seq[d], m, d)
            for m in self.model
            for d in (0, 1)
            if m.bucket(d) == b and not (d == 0 and m.nat_clash)
        ]
        return sorted(out, key=lambda x: -x[0])

    def remove(self, m: M) -> None:
        self.model.remove(m)

    def key_equal(self, m: M, d: int, key: FiveTuple | SessionId, zone: Zone) -> bool:
        if m.sid_keyed(d):
            if not isinstance(key, SessionId) or key != m.sid:
                return False
        elif isinstance(key, SessionId) or key != (m.reply if d else m.orig):
            return False
        return zid_of(m.zone, d) == zid_of(zone, d)

    def find(self, key: FiveTuple | SessionId, zone: Zone, zid: int) -> tuple[M, int] | None:
        for _, m, d in self.nodes(bucket(key, zid)):
            if m not in self.model:
                continue
            if m.timeout <= self.now:
                self.remove(m)
                continue
            if self.key_equal(m, d, key, zone):
                return m, d
        return None

    def lookup_model(
        self, k0: FiveTuple | SessionId, zone: Zone, k1: FiveTuple | SessionId | None = None
    ) -> tuple[M, int] | None:
        hit = self.find(k0, zone, zid_of(zone, 0))
        if hit is None and zid_of(zone, 1) != zid_of(zone, 0):
            hit = self.find(k0 if k1 is None else k1, zone, zid_of(zone, 1))
        return hit

    def early_drop(self, key0: FiveTuple | SessionId, zone: Zone) -> bool:
        b = bucket(key0, zid_of(zone, 0))
        for i in range(8):
            bb = (b + i) % SIZE
            drops = 0
            for _, m, _d in self.nodes(bb):
                if m not in self.model:
                    continue
                if m.timeout <= self.now:
                    self.remove(m)
                elif not m.assured:
                    self.remove(m)
                    drops += 1
            if drops:
                return True
        return False

    def count(self) -> int:
        return len(self.model) + len(self.pending)

    def udp(self, m: M, confirmed: bool) -> None:
        if m.nat_clash:  # IPS_FIXED_TIMEOUT: no refresh; IPS_NAT_CLASH: never ASSURED
            return
        # timeouts are relative until confirmation (__nf_ct_refresh_acct)
        base = self.now if confirmed else 0.0
        if not confirmed:
            m.stream_ts = self.now + 2.0
        if m.seen_reply:
            extra = 30.0
            if self.now > m.stream_ts:
                extra = 120.0
                m.assured = True
            m.timeout = base + extra
        else:
            m.timeout = base + 30.0

    def confirm(self, m: M) -> tuple[str, M | None]:
        """__nf_conntrack_confirm (6.12): a node equal to either of ours (expired or not) is
        a clash; the same flow merges (nf_ct_match / _reverse); otherwise
        nf_ct_resolve_clash_harder: a REPLY-chain twin merges or drops, no twin keeps the
        entry by its REPLY node alone for 1 s (NAT_CLASH, FIXED_TIMEOUT)."""

        def merges(o: M) -> bool:
            same = (
                o.orig == m.orig
                and o.reply == m.reply
                and all(zid_of(o.zone, x) == zid_of(m.zone, x) for x in (0, 1))
            )
            rev = (
                o.orig == m.reply
                and o.reply == m.orig
                and all(zid_of(o.zone, x) == zid_of(m.zone, 1 - x) for x in (0, 1))
            )
            return same or rev

        for d in (0, 1):
            for _, o, od in self.nodes(m.bucket(d)):
                if self.key_equal(o, od, m.key(d), m.zone):
                    if merges(o):
                        return "created_merged", o
                    for _, o2, od2 in self.nodes(m.bucket(1)):
                        if self.key_equal(o2, od2, m.key(1), m.zone):
                            return ("created_merged", o2) if merges(o2) else ("drop", None)
                    m.timeout = self.now + 1.0
                    m.nat_clash = True
                    self.seq += 2
                    m.seq = [self.seq - 1, self.seq]
                    self.model.append(m)
                    return "created", m
        m.timeout += self.now
        self.seq += 2
        m.seq = [self.seq - 1, self.seq]
        self.model.append(m)
        return "created", m

    def model_packet(
        self, t: FiveTuple, zone: Zone, sid: SessionId | None
    ) -> tuple[str, M | None, int | None, Ctinfo | None, bool]:
        k0: FiveTuple | SessionId = sid if sid is not None and zone.dir & 1 else t
        k1: FiveTuple | SessionId = sid if sid is not None and zone.dir & 2 else t
        hit = self.lookup_model(k0, zone, k1)
        if hit is None:
            m = M(t, t.reversed(), zone, sid, 0.0)
            if self.count() + 1 > MAX and not self.early_drop(m.key(0), zone):
                return "drop", None, None, None, False
            self.udp(m, confirmed=False)
            kind, winner = self.confirm(m)
            if kind == "drop":
                return "drop", None, None, Ctinfo.NEW, True
            return kind, winner, 0, Ctinfo.NEW, False
        m, d = hit
        if m.sid_keyed(d) and t != (m.reply if d else m.orig):
            if self.policy is MigrationPolicy.STRICT:
                return "refused", m, d, None, False
            if self.policy is MigrationPolicy.VALIDATED:
                if CLIENTS.index(t) % 2 if t in CLIENTS else True:
                    return "refused", m, d, None, False
                new_reply = t.reversed()
                taken = self.find(new_reply, m.zone, zid_of(m.zone, 1))
                if taken is not None and taken[0] is not m:
                    return "refused", m, d, None, False
                m.orig, m.reply = t, new_reply
                self.seq += 1
                m.seq[1] = self.seq
        ctinfo = (
            Ctinfo.ESTABLISHED_REPLY if d else (Ctinfo.ESTABLISHED if m.seen_reply else Ctinfo.NEW)
        )
        self.udp(m, confirmed=True)
        if d:
            m.seen_reply = True
        return "hit", m, d, ctinfo, False

    # --- rules ----------------------------------------------------------------------------

    @initialize(policy=st.sampled_from(list(MigrationPolicy)))
    def start(self, policy: MigrationPolicy) -> None:
        self.policy = policy
        self.table = Table(
            kernel="6.12",
            htable_size=SIZE,
            max_entries=MAX,
            secret=SECRET,
            net_mix=0,
            migration=policy,
            validate=lambda e, new, now: CLIENTS.index(new) % 2 == 0,
        )

    def check_packet(self, t: FiveTuple, zone: Zone, sid: SessionId | None) -> None:
        assert self.table is not None
        kind, m, d, ctinfo, _failed = self.model_packet(t, zone, sid)
        event(f"packet: {kind}")
        payload = sid.value + b"\x00" if sid is not None else None
        r = self.table.packet(t, now=self.now, zone=zone, payload=payload)
        if kind == "drop":
            assert r.verdict is Verdict.DROP and r.entry is None
            return
        if kind == "refused":
            assert r.verdict is Verdict.DROP and r.migration is not None
            assert r.entry is m.entry  # type: ignore[union-attr]
            return
        assert r.verdict is Verdict.ACCEPT
        assert m is not None
        if kind == "created":
            assert r.created
            m.entry = r.entry
        else:  # a hit, or a new entry that merged into the one already there
            assert not r.created and r.entry is m.entry
        assert r.direction == d and r.ctinfo == ctinfo

    @rule(c=st.integers(0, 4), s=st.integers(0, 1), z=st.integers(0, 1))
    def client_packet(self, c: int, s: int, z: int) -> None:
        base = CLIENTS[c]
        t = FiveTuple(base.src, base.sport, *SERVERS[s])
        self.check_packet(t, ZONES[z], None)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def reply_packet(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from(self.model))
        self.check_packet(m.reply, Zone(), None)

    @rule(c=st.integers(0, 4), k=st.integers(0, 3))
    def sid_packet(self, c: int, k: int) -> None:
        self.check_packet(CLIENTS[c], ZONES[2], SessionId("quic", SIDS[k]))

    @rule(c=st.integers(0, 4), s=st.integers(0, 1), z=st.integers(0, 1))
    def create_unconfirmed(self, c: int, s: int, z: int) -> None:
        assert self.table is not None
        base = CLIENTS[c]
        t = FiveTuple(base.src, base.sport, *SERVERS[s])
        zone = ZONES[z]
        m = M(t, t.reversed(), zone, None, 0.0)
        full = self.count() + 1 > MAX and not self.early_drop(m.key(0), zone)
        try:
            e = self.table.create(t, zone, now=self.now)
        except TableFullError:
            assert full
            event("create: table full")
            return
        assert not full
        self.udp(m, confirmed=False)
        m.entry = e
        self.pending.append(m)
        assert not e.confirmed and e.timeout == m.timeout

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def confirm_pending(self, data: st.DataObject) -> None:
        assert self.table is not None
        m = data.draw(st.sampled_from(self.pending))
        self.pending.remove(m)
        kind, winner = self.confirm(m)
        event(f"confirm: {kind}")
        assert m.entry is not None
        r = self.table.confirm(m.entry, now=self.now)
        if kind == "drop":
            assert r is None
        elif kind == "created":
            assert r is m.entry and r.confirmed
        else:
            assert winner is not None and r is winner.entry and m.entry.dying

    @rule(c=st.integers(0, 4), s=st.integers(0, 1), z=st.integers(0, 2), reply=st.booleans())
    def lookup(self, c: int, s: int, z: int, reply: bool) -> None:
        assert self.table is not None
        base = CLIENTS[c]
        key: FiveTuple | SessionId = FiveTuple(base.src, base.sport, *SERVERS[s])
        zone = ZONES[z]
        if z == 2:
            key = SessionId("quic", SIDS[c % len(SIDS)])
        elif reply:
            key, zone = key.reversed(), Zone()
        hit = self.lookup_model(key, zone)
        event(f"lookup: {'hit' if hit else 'miss'} {type(key).__name__}")
        res = self.table.lookup(key, zone, now=self.now)
        if hit is None:
            assert res is None
        else:
            assert res is not None and res[0] is hit[0].entry and int(res[1]) == hit[1]

    @rule(dt=st.sampled_from([0.5, 1.0, 2.5, 10.0, 31.0, 125.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def gc(self) -> None:
        assert self.table is not None
        removed = self.table.gc(self.now)
        before = len(self.model)
        self.model = [m for m in self.model if m.timeout > self.now]
        assert removed == before - len(self.model)

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def agree(self) -> None:
        t = self.table
        if t is None:
            return
        assert t.count == self.count() <= MAX and len(t) == len(self.model)
        live = {id(m.entry): m for m in self.model}
        assert len(live) == len(self.model)
        for e in t:
            m = live[id(e)]
            assert (e.original, e.reply, e.zone, e.sid) == (m.orig, m.reply, m.zone, m.sid)
            assert (e.seen_reply, e.assured, e.timeout) == (m.seen_reply, m.assured, m.timeout)
        # every chain, in order
        for b in range(SIZE):
            table_chain = [(id(e), int(d)) for bb, e, d in t.nodes() if bb == b]
            model_chain = [(id(m.entry), d) for _, m, d in self.nodes(b)]
            assert table_chain == model_chain


TestConntrackModel = ConntrackMachine.TestCase
TestConntrackModel.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
