"""sidkit.conntrack.Table: the kernel behaviours it models, one at a time.

Every expectation here is derived from the kernel's text (net/netfilter/nf_conntrack_core.c,
nf_conntrack_proto_udp.c, nf_nat_core.c of Debian's 6.1.192/6.12.117), not from running
sidkit: timeouts are parsed out of the fetched source, eviction sets are computed from the
placement rule the vector tests pin to the kernel's C, and NAT results follow
nf_nat_packet's manip rule by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import oracle_unavailable
from hypothesis import given
from hypothesis import strategies as st

import sidkit
from sidkit import conntrack
from sidkit.conntrack import (
    GENERIC_TIMEOUT,
    Ctinfo,
    Entry,
    Nat,
    Status,
    Table,
    TableFullError,
    UdpTimeouts,
    UnsupportedProtocolError,
    Verdict,
)
from sidkit.keys import (
    NF_CT_ZONE_DIR_ORIG,
    NF_CT_ZONE_DIR_REPL,
    Direction,
    FiveTuple,
    SessionId,
    SidZoneConfig,
    Zone,
)

KSRC = Path(__file__).resolve().parents[2] / "conformance" / "kernel" / "_work"
CLIENT = FiveTuple("192.0.2.1", 50000, "198.51.100.7", 443)


def flow(i: int, port: int = 443) -> FiveTuple:
    return FiveTuple(
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000, "198.51.100.7", port
    )


# --- the UDP tracker's numbers, from the kernel text -------------------------------------------


def _kernel_file(series: str, path: str) -> str:
    p = KSRC / f"linux-source-{series}" / path
    if not p.is_file():
        oracle_unavailable(f"{p} (bash conformance/kernel/fetch-kernel-source.sh extracts it)")
    return p.read_text()


@pytest.mark.oracle
@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_udp_timeouts_are_the_kernels(series: str) -> None:
    text = _kernel_file(series, "net/netfilter/nf_conntrack_proto_udp.c")
    unrep = re.search(r"\[UDP_CT_UNREPLIED\]\s*=\s*(\d+)\s*\*\s*HZ", text)
    rep = re.search(r"\[UDP_CT_REPLIED\]\s*=\s*(\d+)\s*\*\s*HZ", text)
    stream = re.search(r"stream_ts\s*=\s*(\d+)\s*\*\s*HZ\s*\+\s*jiffies", text)
    assert unrep and rep and stream
    d = UdpTimeouts()
    assert (d.unreplied, d.replied, d.stream_delay) == (
        float(unrep[1]),
        float(rep[1]),
        float(stream[1]),
    )
    gen = _kernel_file(series, "net/netfilter/nf_conntrack_proto_generic.c")
    m = re.search(r"nf_ct_generic_timeout\s*=\s*(\d+)\s*\*\s*HZ", gen)
    assert m and float(m[1]) == GENERIC_TIMEOUT


@pytest.mark.oracle
@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_eviction_constants_are_the_kernels(series: str) -> None:
    text = _kernel_file(series, "net/netfilter/nf_conntrack_core.c")
    m = re.search(r"#define NF_CT_EVICTION_RANGE\s+(\d+)", text)
    assert m and int(m[1]) == conntrack.NF_CT_EVICTION_RANGE
    m = re.search(r"#define MIN_CHAINLEN\s+(\d+)u", text)
    assert m and int(m[1]) == conntrack.MIN_CHAINLEN
    # max_factor = 1 when the size is computed: nf_conntrack_max = htable_size
    assert (
        "max_factor = 1;" in text
        and "nf_conntrack_max = max_factor * nf_conntrack_htable_size" in text
    )
    assert Table(htable_size=1234).max_entries == 1234


def test_udp_state_machine_follows_nf_conntrack_udp_packet() -> None:
    t = Table(htable_size=64)
    r = t.packet(CLIENT, now=100.0)
    e = r.entry
    assert r.verdict is Verdict.ACCEPT and r.created and r.ctinfo is Ctinfo.NEW
    assert e is not None and e.confirmed and not e.seen_reply and not e.assured
    assert e.timeout == 130.0  # unreplied: 30 s, made absolute at confirmation
    # stream_ts = first packet + 2 s
    r = t.packet(CLIENT.reversed(), now=100.5)
    assert r.entry is e and r.ctinfo is Ctinfo.ESTABLISHED_REPLY and r.direction is Direction.REPLY
    # the tracker ran before SEEN_REPLY was set: still the unreplied timeout
    assert e.seen_reply and not e.assured and e.timeout == 130.5
    r = t.packet(CLIENT, now=101.9)  # reply seen but within 2 s: 30 s, not assured
    assert r.ctinfo is Ctinfo.ESTABLISHED and e.timeout == 131.9 and not e.assured
    r = t.packet(CLIENT, now=102.0)  # time_after is strict: at exactly +2 s still not a stream
    assert not e.assured and e.timeout == 132.0
    r = t.packet(CLIENT, now=102.5)
    assert e.assured and e.timeout == 222.5  # stream: 120 s
    assert len(t) == 1 and t.count == 1


def test_expiry_is_timeout_le_now_and_lookups_reap() -> None:
    t = Table(htable_size=8)
    e = t.packet(CLIENT, now=0.0).entry
    assert e is not None
    assert t.lookup(CLIENT, now=29.999) is not None
    # nf_ct_is_expired: (s32)(timeout - now) <= 0
    assert t.lookup(CLIENT, now=30.0) is None
    assert e.dying and len(t) == 0 and t.count == 0 and t.stats.expired == 1
    r = t.packet(CLIENT, now=31.0)
    assert r.created and r.entry is not e


def test_legacy_timeouts_shape() -> None:
    t = Table(htable_size=8, udp_timeouts=UdpTimeouts(replied=180.0, stream_delay=0.0))
    t.packet(CLIENT, now=0.0)
    t.packet(CLIENT.reversed(), now=0.1)
    e = t.packet(CLIENT, now=0.2).entry
    assert e is not None and e.assured and e.timeout == pytest.approx(180.2)


def test_generic_tracker_for_other_protocols() -> None:
    t = Table(htable_size=8)
    gre_like = FiveTuple("192.0.2.1", 0, "192.0.2.2", 0, 253)
    e = t.packet(gre_like, now=0.0).entry
    assert e is not None and e.timeout == GENERIC_TIMEOUT


@pytest.mark.parametrize("proto", [1, 6, 33, 47, 58, 132])
def test_unmodelled_trackers_are_refused(proto: int) -> None:
    t = Table(htable_size=8)
    with pytest.raises(UnsupportedProtocolError) as info:
        t.packet(FiveTuple("192.0.2.1", 1, "192.0.2.2", 2, proto), now=0.0)
    assert isinstance(info.value, sidkit.InputValueError)


# --- zones and the double lookup ------------------------------------------------------------------


def test_same_tuple_in_two_zones_is_two_entries() -> None:
    t = Table(htable_size=256)
    a = t.packet(CLIENT, now=0.0, zone=Zone(7)).entry
    b = t.packet(CLIENT, now=0.0, zone=Zone(8)).entry
    assert a is not None and b is not None and a is not b and len(t) == 2
    assert t.lookup(CLIENT, Zone(7), now=1.0) == (a, Direction.ORIGINAL)
    assert t.lookup(CLIENT, Zone(8), now=1.0) == (b, Direction.ORIGINAL)
    assert t.lookup(CLIENT, now=1.0) is None


def test_directional_zone_reply_lives_in_default_zone() -> None:
    # CT --zone-orig 7: the REPLY node is hashed and compared with NF_CT_DEFAULT_ZONE_ID, so
    # an unzoned reply finds it.
    t = Table(htable_size=4096)
    z = Zone(7, NF_CT_ZONE_DIR_ORIG)
    e = t.packet(CLIENT, now=0.0, zone=z).entry
    assert e is not None
    assert t.lookup(CLIENT.reversed(), now=0.1) == (e, Direction.REPLY)
    assert t.lookup(CLIENT, now=0.1) is None  # the ORIGINAL node is in zone 7
    assert t.node_bucket(e, 0) == t.bucket_of(CLIENT, 7)
    assert t.node_bucket(e, 1) == t.bucket_of(CLIENT.reversed(), 0)


def test_double_lookup_finds_reply_node_of_a_reply_only_zone() -> None:
    # CT --zone-reply 7 on both directions: the reply packet's first lookup uses
    # nf_ct_zone_id(zone, ORIGINAL) = 0 and misses; the second uses the REPLY id 7.
    t = Table(htable_size=1 << 20)
    z = Zone(7, NF_CT_ZONE_DIR_REPL)
    e = t.packet(CLIENT, now=0.0, zone=z).entry
    assert e is not None
    rep = CLIENT.reversed()
    assert t.bucket_of(rep, 0) != t.node_bucket(e, 1)  # the first hash cannot reach it
    before = t.stats.searched
    assert t.lookup(rep, z, now=0.1) == (e, Direction.REPLY)
    assert t.stats.searched == before + 1
    r = t.packet(rep, now=0.2, zone=z)
    assert r.entry is e and r.ctinfo is Ctinfo.ESTABLISHED_REPLY


def test_directional_zones_collide_on_the_shared_reply_zone() -> None:
    # Two --zone-orig zones with the same tuple both put their REPLY node in zone 0: the
    # second confirmation finds the first's reply node, cannot merge (ORIGINAL zone ids
    # differ: nf_ct_match), and is dropped as insert_failed.
    t = Table(htable_size=256)
    a = t.packet(CLIENT, now=0.0, zone=Zone(7, NF_CT_ZONE_DIR_ORIG))
    b = t.packet(CLIENT, now=0.0, zone=Zone(8, NF_CT_ZONE_DIR_ORIG))
    assert a.verdict is Verdict.ACCEPT
    assert b.verdict is Verdict.DROP and b.reason == "insert failed"
    assert t.stats.insert_failed == 1 and t.stats.drop == 1 and t.count == 1


def test_mark_zone_takes_id_from_mark() -> None:
    t = Table(htable_size=64)
    z = Zone(0, flags=1)
    e = t.packet(CLIENT, now=0.0, zone=z, mark=42).entry
    assert e is not None and e.zone.id == 42 and e.zone.flags == 0
    assert t.lookup(CLIENT, Zone(42), now=1.0) == (e, Direction.ORIGINAL)


# --- NAT ----------------------------------------------------------------------------------------


def test_snat_and_dnat_rewrite_reply_tuple_and_packets() -> None:
    t = Table(htable_size=1024)
    nat = Nat(snat=("203.0.113.1", 61000), dnat=("10.0.0.5", 8443))
    r = t.packet(CLIENT, now=0.0, nat=nat)
    e = r.entry
    assert e is not None
    assert e.reply == FiveTuple("10.0.0.5", 8443, "203.0.113.1", 61000)
    assert e.status & Status.SRC_NAT and e.status & Status.DST_NAT
    # ORIGINAL: source -> SNAT address, destination -> DNAT backend
    assert r.translated == FiveTuple("203.0.113.1", 61000, "10.0.0.5", 8443)
    back = t.packet(e.reply, now=0.1)
    assert back.entry is e and back.direction is Direction.REPLY
    # REPLY: un-DNAT the source, un-SNAT the destination
    assert back.translated == CLIENT.reversed()
    # the reply tuple is what is hashed for the REPLY node
    assert t.node_bucket(e, 1) == t.bucket_of(e.reply, 0)


def test_nat_only_before_confirmation() -> None:
    t = Table(htable_size=8)
    e = t.create(CLIENT, now=0.0)
    t.set_nat(e, Nat(dnat=("10.0.0.5", 80)))
    assert e.reply.src == FiveTuple("10.0.0.5", 80, "192.0.2.1", 50000).src
    assert t.confirm(e, now=0.0) is e
    with pytest.raises(sidkit.InputValueError, match="before confirmation"):
        t.set_nat(e, Nat(dnat=("10.0.0.6", 80)))
    with pytest.raises(sidkit.InputValueError):
        Nat(snat=("10.0.0.1",))


# --- confirmation: unconfirmed entries, clashes, chain length -----------------------------------


def test_unconfirmed_entries_count_but_are_not_found() -> None:
    t = Table(htable_size=8, max_entries=2)
    e = t.create(CLIENT, now=0.0)
    assert t.count == 1 and len(t) == 0 and not e.confirmed
    assert t.lookup(CLIENT, now=0.0) is None
    assert e.timeout == 30.0  # relative: the first packet's unreplied timeout
    assert t.confirm(e, now=5.0) is e and e.timeout == 35.0  # made absolute at confirmation
    with pytest.raises(sidkit.InputValueError):
        t.confirm(e, now=5.0)


def test_clash_of_the_same_flow_merges() -> None:
    t = Table(htable_size=8)
    a = t.create(CLIENT, now=0.0)
    b = t.create(CLIENT, now=0.0)
    assert t.count == 2
    assert t.confirm(a, now=0.0) is a
    assert t.confirm(b, now=0.0) is a  # __nf_ct_resolve_clash: nf_ct_match -> merge
    assert t.stats.clash_resolve == 1 and t.count == 1 and b.dying


def test_clash_that_cannot_merge_fails() -> None:
    # Two clients NATed to the same binding: b's ORIGINAL tuple is unique but its REPLY
    # tuple is a's. nf_ct_resolve_clash_harder finds the REPLY twin (6.12.117
    # nf_conntrack_core.c:1069-1073), __nf_ct_resolve_clash cannot merge: NF_DROP with
    # drop and insert_failed (1164-1166).
    t = Table(htable_size=8)
    other = FiveTuple("192.0.2.2", 50000, CLIENT.dst, CLIENT.dport, CLIENT.protocol)
    a = t.create(CLIENT, now=0.0, nat=Nat(snat=("203.0.113.1", 1000)))
    b = t.create(other, now=0.0, nat=Nat(snat=("203.0.113.1", 1000)))
    assert t.confirm(a, now=0.0) is a
    assert t.confirm(b, now=0.0) is None
    assert (t.stats.insert_failed, t.stats.drop, t.count) == (1, 1, 1)


def test_chain_too_long() -> None:
    # One bucket: every node shares the chain. __nf_conntrack_confirm gives up on the node
    # for which "chainlen++ > max_chainlen" holds: the (max_chainlen + 2)-th node walked.
    t = Table(htable_size=1, max_entries=0, max_chainlen=3)
    ok = [t.packet(flow(i), now=0.0) for i in range(3)]  # walks 0, 2 and 4 nodes
    assert all(r.verdict is Verdict.ACCEPT for r in ok)
    r = t.packet(flow(3), now=0.0)  # walks 6 nodes: the 5th trips it
    assert r.verdict is Verdict.DROP
    assert t.stats.chaintoolong == 1 and t.stats.insert_failed == 1 and t.count == 3


# --- the bound, early drop and GC -----------------------------------------------------------


def _window(t: Table, key: FiveTuple) -> list[int]:
    first = t.bucket_of(key, 0)
    return [(first + i) % t.htable_size for i in range(8)]


def _eviction_expected(t: Table, new: FiveTuple, now: float) -> set[int] | None:
    """early_drop(): the first bucket of the window holding a live non-assured entry's node;
    all such entries with a node there go. None when no bucket of the window has one."""
    by_bucket: dict[int, set[int]] = {}
    for b, e, _d in t.nodes():
        if not e.assured and e.timeout > now:
            by_bucket.setdefault(b, set()).add(id(e))
    for b in _window(t, new):
        if b in by_bucket:
            return by_bucket[b]
    return None


@given(st.lists(st.booleans(), min_size=6, max_size=6), st.integers(0, 10_000))
def test_early_drop_evicts_per_kernel_rule(assured: list[bool], salt: int) -> None:
    t = Table(htable_size=16, max_entries=6)
    entries = []
    for i, a in enumerate(assured):
        f = flow(salt + i)
        e = t.packet(f, now=0.0).entry
        assert e is not None
        if a:
            t.packet(f.reversed(), now=0.5)
            t.packet(f, now=3.0)
            assert e.assured
        entries.append(e)
    assert t.count == 6
    new = flow(salt + 100)
    expect = _eviction_expected(t, new, 3.0)
    r = t.packet(new, now=3.0)
    if expect is None:
        assert r.verdict is Verdict.DROP and r.reason == "table full"
        assert t.count == 6 and t.stats.drop == 1 and t.stats.early_drop == 0
        assert all(not e.dying for e in entries)
    else:
        assert r.verdict is Verdict.ACCEPT
        gone = {id(e) for e in entries if e.dying}
        assert gone == expect
        assert t.stats.early_drop == len(expect)
        assert t.count == 7 - len(expect)
    assert all(not e.dying for e in entries if e.assured)


def test_table_full_of_assured_entries_drops_and_gc_cannot_help() -> None:
    t = Table(htable_size=4, max_entries=3)
    for i in range(3):
        f = flow(i)
        t.packet(f, now=0.0)
        t.packet(f.reversed(), now=0.1)
        t.packet(f, now=2.5)
    with pytest.raises(TableFullError):
        t.create(flow(99), now=3.0)
    r = t.packet(flow(98), now=3.0)
    assert r.verdict is Verdict.DROP and t.stats.drop == 1
    assert t.gc(3.0) == 0 and t.count == 3  # GC early drop spares assured entries


def test_gc_reaps_expired() -> None:
    t = Table(htable_size=8, max_entries=0)
    for i in range(20):
        t.packet(flow(i), now=float(i))
    assert t.gc(25.0) == 0
    assert t.gc(31.0) == 2  # flows 0 and 1 expire at 30 and 31 (timeout <= now)
    assert t.count == 18 and t.stats.expired == 2


def _make_assured(t: Table, f: FiveTuple, now: float) -> Entry:
    e = t.packet(f, now=now).entry
    t.packet(f.reversed(), now=now + 0.5)
    t.packet(f, now=now + 3.0)
    assert e is not None and e.assured
    return e


def _fill_and_fail(t: Table, assured: int, plain: int) -> None:
    for i in range(assured):
        _make_assured(t, flow(i), 0.0)
    for i in range(assured, assured + plain):
        t.packet(flow(i), now=3.0)
    assert t.count == t.max_entries
    # a new flow whose eight-bucket window holds no non-assured entry: allocation fails
    j = next(j for j in range(10**5, 10**6) if _eviction_expected(t, flow(j), 3.0) is None)
    assert t.packet(flow(j), now=3.0).verdict is Verdict.DROP


def test_gc_early_drops_non_assured_after_a_failed_allocation() -> None:
    t = Table(htable_size=4096, max_entries=200)
    _fill_and_fail(t, 100, 100)
    # gc_worker: nf_conntrack_max / 100 * 95 = 190; it evicts non-assured entries while
    # the count is at least 190 -- eleven of them -- and never an assured one
    assert t.gc(3.0) == 11
    assert t.count == 189 and t.stats.gc_early_drop == 11
    assert sum(e.assured for e in t) == 100
    # the flag cleared with the completed scan
    assert t.gc(3.0) == 0


def test_gc_early_drop_is_off_below_100_entries() -> None:
    # nf_conntrack_max / 100u * 95u is 0 for a bound under 100: the kernel's GC never
    # early-drops then ("if (nf_conntrack_max95 == 0) continue;")
    t = Table(htable_size=256, max_entries=20)
    _fill_and_fail(t, 10, 10)
    assert t.gc(3.0) == 0 and t.count == 20


def test_resize_keeps_every_node_at_its_kernel_bucket() -> None:
    t = Table(htable_size=16, max_entries=0)
    for i in range(40):
        t.packet(flow(i), now=0.0)
    t.resize(1000)
    assert t.htable_size == 1000
    for b, e, d in t.nodes():
        assert b == t.bucket_of(e.tuple(d), 0)
    assert len(t) == 40 and sum(t.chain_lengths()) == 80


# --- inspection -------------------------------------------------------------------------------


def test_iteration_is_bucket_order_newest_first() -> None:
    t = Table(htable_size=4, max_entries=0)
    made: list[Entry] = []
    for i in range(12):
        e = t.packet(flow(i), now=float(i)).entry
        assert e is not None
        made.append(e)
    expected = sorted(made, key=lambda e: (t.node_bucket(e, 0), -made.index(e)))
    assert list(t) == expected
    lengths = t.chain_lengths()
    assert sum(lengths) == 24 and len(lengths) == 4
    assert t.chain_histogram() == {n: lengths.count(n) for n in sorted(set(lengths))}
    nodes = list(t.nodes())
    assert [b for b, _, _ in nodes] == sorted(b for b, _, _ in nodes)
    assert sum(1 for _, _, d in nodes if d is Direction.REPLY) == 12


def test_stats_string_has_conntrack_s_fields() -> None:
    t = Table(htable_size=8)
    t.packet(CLIENT, now=0.0)
    s = str(t.stats)
    for k in (
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
    ):
        assert re.search(rf"\b{k}=\d+", s)
    # 6.1/6.12 count insert only in nf_conntrack_hash_check_insert (6.12.117
    # nf_conntrack_core.c:906, 6.1.192:960); sidkit's own counter counts the confirmation.
    assert t.stats.as_dict()["insert"] == 0 and t.stats.confirmed == 1


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"htable_size": 0}, sidkit.InputValueError),
        ({"secret": b"short"}, sidkit.InputValueError),
        ({"kernel": "4.10", "secret": b"\x00" * 16}, sidkit.InputTypeError),
        ({"kernel": "2.6.20"}, sidkit.UnknownKernelError),
        ({"net_mix": -1}, sidkit.InputValueError),
        ({"migration": "strict"}, sidkit.InputTypeError),
        ({"validate": 5}, sidkit.InputTypeError),
    ],
)
def test_bad_table_arguments(kwargs: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Table(**kwargs)  # type: ignore[arg-type]


def test_bad_packet_arguments() -> None:
    t = Table(htable_size=8)
    with pytest.raises(sidkit.InputTypeError):
        t.packet(CLIENT, now="0")  # type: ignore[arg-type]
    with pytest.raises(sidkit.InputTypeError):
        t.packet(("192.0.2.1", 1, "192.0.2.2", 2), now=0.0)  # type: ignore[arg-type]
    with pytest.raises(sidkit.InputTypeError):
        t.lookup(b"key", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(sidkit.InputValueError, match="not a SID zone"):
        t.create(CLIENT, now=0.0, sid=SessionId("quic", b"\x01"))


def test_older_eras_place_by_their_own_hash() -> None:
    # jhash2 eras take a u32 secret; placement follows that era's function
    t = Table(kernel="4.9", htable_size=1024, secret=0x1234, net_mix=0)
    e = t.packet(CLIENT, now=0.0).entry
    assert e is not None and t.node_bucket(e, 0) == t.bucket_of(CLIENT, 0)
    fn = t.profile.function("hash_conntrack_raw")
    raw = fn(CLIENT.src, CLIENT.sport, CLIENT.dst, CLIENT.dport, 17, 0, 0, 0x1234)
    assert t.node_bucket(e, 0) == (raw * 1024) >> 32


@given(st.binary(max_size=48), st.integers(0, 3), st.sampled_from([1, 2, 3]))
def test_fuzz_sid_zone_packets_accept_or_raise_sidkit_errors(
    payload: bytes, off: int, zdir: int
) -> None:
    t = Table(htable_size=16, max_entries=4)
    z = Zone(3, zdir, sid=SidZoneConfig("quic", off, 4))
    try:
        r = t.packet(CLIENT, now=0.0, zone=z, payload=payload)
    except sidkit.SidkitError:
        return
    assert r.verdict in (Verdict.ACCEPT, Verdict.DROP)
    assert r.sid_fallback is (len(payload) < off + 4)
