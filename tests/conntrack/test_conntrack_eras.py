"""Issue 19: the table's per-era behaviours -- the GC eviction cap, clashes of the generic
tracker, nf_ct_resolve_clash_harder, the random chain limit, port-less protocols, the
``insert`` statistic and kernel= selecting all of it through the eras table.

Expectations come from the kernel's text (Debian's 6.1.192 and 6.12.117 sources,
conformance/kernel/_work; line numbers in the comments) and the oracle tests below read the
constants and the shape of the code from those files."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from conftest import oracle_unavailable

import sidkit
from sidkit.conntrack import Nat, Status, Table, UdpTimeouts, Verdict
from sidkit.kernel import profile
from sidkit.kernel._conntrack import (
    CT_HZ_CHOICES,
    CT_HZ_DEFAULT,
    MIN_CHAINLEN,
    chain_limit_random,
    gc_scan_expired_max,
)
from sidkit.keys import Direction, FiveTuple

KSRC = Path(__file__).resolve().parents[2] / "conformance" / "kernel" / "_work"
CLIENT = FiveTuple("192.0.2.1", 50000, "198.51.100.7", 53)
SERIES = ("6.1", "6.12")


def flow(i: int, protocol: int = 17) -> FiveTuple:
    return FiveTuple(
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        1024 + i % 60000,
        "198.51.100.7",
        443,
        protocol,
    )


def _kernel_file(series: str, path: str) -> str:
    p = KSRC / f"linux-source-{series}" / path
    if not p.is_file():
        oracle_unavailable(f"{p} (bash conformance/kernel/fetch-kernel-source.sh extracts it)")
    return p.read_text()


def _function(text: str, head: str) -> str:
    """The body of the C function whose definition starts with *head* (up to the next
    line that is a lone closing brace)."""
    i = text.index(head)
    j = text.index("\n}\n", i)
    return text[i:j]


# --- 1. the GC worker's eviction cap ------------------------------------------------------------


def _full_table(max_entries: int, hz: int, kernel: str = "6.12") -> tuple[Table, FiveTuple]:
    """A table at its bound with non-assured entries, and a tuple whose eight early-drop
    buckets are empty (so its allocation fails and sets the GC's early_drop flag)."""
    t = Table(kernel=kernel, htable_size=65536, max_entries=max_entries, hz=hz, seed=1)
    for i in range(max_entries):
        assert t.packet(flow(i), now=0.0).verdict is Verdict.ACCEPT
    lengths = t.chain_lengths()
    size = t.htable_size
    for j in range(max_entries, max_entries + 100000):
        cand = flow(j)
        b = t.bucket_of(cand)
        if not any(lengths[(b + k) % size] for k in range(8)):
            return t, cand
    raise AssertionError("no empty early-drop window found")


@pytest.mark.parametrize(("hz", "kernel"), [(hz, "6.12") for hz in CT_HZ_CHOICES] + [(100, "6.1")])
def test_gc_early_drop_is_capped_per_run(hz: int, kernel: str) -> None:
    # gc_worker (6.12.117 nf_conntrack_core.c:1495; 6.1.192:1521): before each node,
    # "if (expired_count > GC_SCAN_EXPIRED_MAX)" (1543 / 1574) leaves the run with
    # next_run = delta_time < GC_SCAN_INTERVAL_MAX, i.e. 1, so "if (next_run)
    # gc_work->early_drop = false" (1633-1634 / 1664-1665) clears the flag. The evictions
    # (1592-1596 / 1623-1627) count in expired_count: one failed allocation buys at most
    # 64000/HZ + 1 of them. The case: 13000 entries, 95 % = 12350, 651 above it.
    t, cand = _full_table(13000, hz, kernel)
    r = t.packet(cand, now=1.0)
    assert r.verdict is Verdict.DROP and r.reason == "table full"
    first = t.gc(now=1.0)
    second = t.gc(now=2.0)
    cap = 64000 // hz + 1
    assert first == min(651, cap) and second == 0
    assert t.stats.gc_early_drop == min(651, cap)
    assert t.count == 13000 - min(651, cap)


def test_gc_cap_counts_reaped_entries_and_resumes_in_the_bucket() -> None:
    # Expired entries count in expired_count too (nf_ct_gc_expired; expired_count++,
    # 6.12.117:1557-1560): with HZ=1000 (cap 64) a run reaps 65 and stops; the next run
    # starts at next_bucket = i, the bucket of the node that found the cap exceeded.
    t = Table(htable_size=16, max_entries=0, hz=1000, seed=1)
    for i in range(200):
        t.packet(flow(i), now=0.0)
    assert t.gc(now=100.0) == 65
    assert t.gc(now=100.0) == 65
    assert t.gc(now=100.0) == 65
    assert t.gc(now=100.0) == 5 and len(t) == 0


def test_gc_time_exit_keeps_the_flag_and_a_late_cycle_too() -> None:
    # A run cut short by time (next_run = 0, 6.12.117:1616-1621) keeps the flag -- the
    # model's buckets= -- and so does the cap exit of a cycle older than
    # GC_SCAN_INTERVAL_MAX (next_run = delta_time < 60 s is 0).
    t, cand = _full_table(13000, 1000)
    t.packet(cand, now=1.0)
    assert t.gc(now=1.0, buckets=1) <= 65
    # the cycle started at now=1.0 (i == 0); 61 s later the cap exit keeps the flag
    t.gc(now=62.0)
    assert t.gc(now=62.5) > 0


def test_hz_is_validated_and_defaults_to_kconfig() -> None:
    assert Table().hz == CT_HZ_DEFAULT == 250
    assert gc_scan_expired_max(250) == 256 and gc_scan_expired_max(100) == 640
    for bad in (0, -1, 2.5, True, "250"):
        with pytest.raises(sidkit.InputValueError):
            Table(hz=bad)  # type: ignore[arg-type]


# --- 2. the generic tracker allows clashes ----------------------------------------------------


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_generic_tracker_clash_merges(kernel: str) -> None:
    # nf_conntrack_proto_generic.c:70 ".allow_clash = true" (6.1.192 and 6.12.117):
    # nf_ct_resolve_clash -> __nf_ct_resolve_clash merges two racing ESP entries.
    esp = FiveTuple("192.0.2.1", 0, "198.51.100.7", 0, 50)
    t = Table(kernel=kernel, htable_size=8)
    a = t.create(esp, now=0.0)
    b = t.create(esp, now=0.0)
    assert t.confirm(a, now=0.0) is a
    assert t.confirm(b, now=0.0) is a
    assert (t.stats.clash_resolve, t.stats.insert_failed, t.count) == (1, 0, 1)


# --- 3. nf_ct_resolve_clash_harder -------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
@pytest.mark.parametrize("hz", [100, 1000])
def test_nat_clash_keeps_the_loser_by_its_reply_node(kernel: str, hz: int) -> None:
    # Two packets of one flow race through SNAT to different bindings (the DNS A/AAAA
    # race): the ORIGINAL tuples clash, the REPLY tuples differ, nf_ct_can_merge fails.
    # nf_ct_resolve_clash_harder (6.12.117:1055-1105, 6.1.192:1063-1113): no REPLY twin,
    # so timeout = nfct_time_stamp + HZ (1 s), IPS_FIXED_TIMEOUT | IPS_NAT_CLASH, a fake
    # add of the ORIGINAL node, the REPLY node at its chain's head, CONFIRMED, and
    # clash_resolve counted; the packet is accepted.
    t = Table(kernel=kernel, htable_size=64, hz=hz)
    a = t.create(CLIENT, now=10.0, nat=Nat(snat=("203.0.113.1", 1000)))
    b = t.create(CLIENT, now=10.0, nat=Nat(snat=("203.0.113.2", 1000)))
    assert t.confirm(a, now=10.0) is a
    assert t.confirm(b, now=10.0) is b
    assert b.status & Status.NAT_CLASH and b.status & Status.FIXED_TIMEOUT and b.confirmed
    assert b.timeout == 11.0
    assert (t.stats.clash_resolve, t.stats.insert_failed, t.stats.drop) == (1, 0, 0)
    # ORIGINAL lookups find only the winner; the loser is in the hash by its REPLY node
    assert t.lookup(CLIENT, now=10.5) == (a, Direction.ORIGINAL)
    assert t.lookup(b.reply, now=10.5) == (b, Direction.REPLY)
    assert [(e, d) for _, e, d in t.nodes() if e is b] == [(b, Direction.REPLY)]
    assert b not in list(t)  # conntrack -L skips it (hlist_nulls_add_fake)
    # a reply refreshes nothing (FIXED_TIMEOUT) and never assures it (proto_udp.c:119-121)
    r = t.packet(b.reply, now=10.9)
    assert r.entry is b and b.timeout == 11.0 and not b.status & Status.ASSURED
    assert t.lookup(b.reply, now=11.0) is None  # expired after one second, reaped
    assert t.count == 1


def test_nat_clash_through_packet() -> None:
    # The same race through Table.packet: the second packet's entry wins nothing in the
    # ORIGINAL direction but is accepted with its own binding.
    t = Table(htable_size=64)
    a = t.create(CLIENT, now=0.0, nat=Nat(snat=("203.0.113.1", 1000)))
    b = t.create(CLIENT, now=0.0, nat=Nat(snat=("203.0.113.2", 1000)))
    t.confirm(a, now=0.0)
    assert t.confirm(b, now=0.0) is b
    out = t.translate(b, Direction.ORIGINAL, CLIENT)
    assert (str(out.src), out.sport) == ("203.0.113.2", 1000)


def test_generic_nat_clash_is_resolved_too() -> None:
    # clash_harder is reached for every allow_clash tracker, the generic one included.
    gre_like = FiveTuple("192.0.2.1", 0, "198.51.100.7", 0, 50)
    t = Table(htable_size=64)
    a = t.create(gre_like, now=0.0, nat=Nat(snat=("203.0.113.1", 0)))
    b = t.create(gre_like, now=0.0, nat=Nat(snat=("203.0.113.2", 0)))
    assert t.confirm(a, now=0.0) is a and t.confirm(b, now=0.0) is b
    assert b.status & Status.NAT_CLASH and b.timeout == 1.0


# --- 4. the chain limit, drawn per insert -------------------------------------------------------


def test_chain_limit_draw_is_uniform_over_50_to_79() -> None:
    # max_chainlen = MIN_CHAINLEN + get_random_u32_below(MAX_CHAINLEN) (6.12.117:1238,
    # 6.1.192:1252 prandom_u32_max): 50 + [0, 30).
    rng = random.Random(7)
    draws = [chain_limit_random(rng) for _ in range(30000)]
    assert min(draws) == 50 and max(draws) == 79 and len(set(draws)) == 30
    assert all(800 < draws.count(v) < 1200 for v in range(50, 80))


def _one_bucket_table(seed: int | random.Random | None, entries: int) -> Table:
    # built under a fixed, generous limit (no draws), then handed to the era's draw
    t = Table(htable_size=1, max_entries=0, seed=seed, max_chainlen=1000)
    for i in range(entries):
        assert t.packet(flow(i), now=0.0).verdict is Verdict.ACCEPT
    t.max_chainlen = None
    return t


def test_a_52_node_chain_fails_when_the_draw_is_50() -> None:
    # One bucket with 26 entries = 52 nodes: "if (chainlen++ > max_chainlen)" trips on the
    # 52nd node (chainlen 51) only when max_chainlen = 50: 1 insert in 30 (the old fixed
    # limit refused every one).
    seed = 1234
    t = _one_bucket_table(seed, 26)
    replay = random.Random(seed)
    fails = 0
    expected = 0
    for j in range(3000):
        e = t.create(flow(10000 + j), now=0.0)
        expected += chain_limit_random(replay) == 50
        if t.confirm(e, now=0.0) is None:
            fails += 1
        else:
            assert t.delete(e)
    assert fails == expected == t.stats.chaintoolong
    assert 60 < fails < 140  # 3000 / 30 = 100


def test_chain_limit_is_seedable_and_random_by_default() -> None:
    def outcomes(seed: int | None) -> list[bool]:
        t = _one_bucket_table(seed, 30)  # 60 nodes: fails when the draw is below 59
        out = []
        for j in range(200):
            e = t.create(flow(10000 + j), now=0.0)
            ok = t.confirm(e, now=0.0) is not None
            out.append(ok)
            if ok:
                t.delete(e)
        return out

    assert outcomes(5) == outcomes(5)
    assert 0 < sum(outcomes(5)) < 200  # 1 - 29/30 of inserts pass: some, not all
    runs = {tuple(outcomes(None)) for _ in range(3)}
    assert len(runs) > 1  # default: seeded from the OS, not fixed
    # a fixed limit is still accepted and is deterministic
    t = Table(htable_size=1, max_entries=0, max_chainlen=MIN_CHAINLEN)
    assert t.max_chainlen == 50
    with pytest.raises(sidkit.InputTypeError):
        Table(seed="x")  # type: ignore[arg-type]


# --- 5. port-less protocols --------------------------------------------------------------------


@pytest.mark.parametrize("proto", [50, 51, 4, 41, 115])
def test_portless_protocols_have_zero_ports(proto: int) -> None:
    # nf_ct_get_tuple: memset(tuple, 0, ...) (6.12.117:279, 6.1.192:289) and ports only
    # through nf_ct_get_tuple_ports for TCP/UDP/UDP-Lite/SCTP/DCCP (6.12.117:313-336).
    t = Table(htable_size=64)
    a = t.packet(FiveTuple("192.0.2.1", 1111, "198.51.100.7", 2222, proto), now=0.0)
    b = t.packet(FiveTuple("192.0.2.1", 3333, "198.51.100.7", 4444, proto), now=0.0)
    assert a.entry is b.entry and len(t) == 1 and not b.created
    assert a.entry is not None and (a.entry.original.sport, a.entry.original.dport) == (0, 0)
    assert t.lookup(FiveTuple("192.0.2.1", 9, "198.51.100.7", 9, proto), now=0.0) is not None
    e = t.create(FiveTuple("192.0.2.9", 5, "198.51.100.7", 6, proto), now=0.0)
    assert (e.original.sport, e.original.dport, e.reply.sport, e.reply.dport) == (0, 0, 0, 0)


def test_udp_keeps_its_ports() -> None:
    t = Table(htable_size=64)
    t.packet(FiveTuple("192.0.2.1", 1111, "198.51.100.7", 2222), now=0.0)
    t.packet(FiveTuple("192.0.2.1", 3333, "198.51.100.7", 4444), now=0.0)
    assert len(t) == 2


# --- 6. kernel= selects every behaviour --------------------------------------------------------


def test_old_kernels_get_the_180_s_stream_timeout() -> None:
    # 2.6.x/3.x nf_conntrack_proto_udp.c: nf_ct_udp_timeout_stream = 180*HZ, ASSURED on the
    # first packet after a reply (no stream_ts).
    for k in ("3.10", "4.19", "5.10"):
        assert Table(kernel=k).udp_timeouts == UdpTimeouts(30.0, 180.0, None)
    for k in SERIES:
        assert Table(kernel=k).udp_timeouts == UdpTimeouts(30.0, 120.0, 2.0)
    t = Table(kernel="3.10", htable_size=64)
    e = t.packet(CLIENT, now=0.0).entry
    assert e is not None
    t.packet(CLIENT.reversed(), now=0.0)  # the reply: still unreplied, SEEN_REPLY after
    t.packet(CLIENT, now=0.0)  # same instant: stream at once, no 2 s wait
    assert e.status & Status.ASSURED and e.timeout == 180.0


def test_unmodelled_eras_say_so() -> None:
    t = Table(kernel="4.19", htable_size=1, max_entries=2)
    assert set(t.unmodelled) == {
        "ct_chain_limit",
        "ct_early_drop",
        "ct_gc_worker",
        "ct_clash",
        "ct_stat_insert",
    }
    assert Table(kernel="6.1").unmodelled == () == Table(kernel="6.12").unmodelled
    # placement and tracking still work; the first operation whose outcome depends on an
    # unmodelled behaviour raises
    t.packet(flow(1), now=0.0)
    t.packet(flow(2), now=0.0)
    with pytest.raises(sidkit.UnknownKernelError, match="ct_gc_worker"):
        t.gc(now=0.0)
    with pytest.raises(sidkit.UnknownKernelError, match="ct_early_drop"):
        t.packet(flow(3), now=0.0)
    c = Table(kernel="4.19", htable_size=8)
    a, b = c.create(CLIENT, now=0.0), c.create(CLIENT, now=0.0)
    c.confirm(a, now=0.0)
    with pytest.raises(sidkit.UnknownKernelError, match="ct_clash"):
        c.confirm(b, now=0.0)
    long = Table(kernel="4.19", htable_size=1, max_entries=0)
    for i in range(26):
        long.packet(flow(i), now=0.0)  # 52 nodes: the next walk needs the limit
    with pytest.raises(sidkit.UnknownKernelError, match="ct_chain_limit"):
        long.packet(flow(99), now=0.0)


def test_every_behaviour_has_an_eras_row_for_the_harness_releases() -> None:
    for k in ("6.1.192", "6.12.117"):
        p = profile(k)
        for fn in (
            "ct_udp_timeouts",
            "ct_chain_limit",
            "ct_early_drop",
            "ct_gc_worker",
            "ct_clash",
            "ct_stat_insert",
            "ct_tuple_ports",
        ):
            era = p.era(fn)
            assert era.impl is not None and era.evidence, fn
            assert "6.1.192" in era.evidence or "6.12.117" in era.evidence, fn


# --- 7. the insert counter ---------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_insert_counts_only_in_check_insert(kernel: str) -> None:
    # NF_CT_STAT_INC(net, insert) appears once, in nf_conntrack_hash_check_insert
    # (6.12.117:906, 6.1.192:960): a packet-driven table keeps insert at 0.
    t = Table(kernel=kernel, htable_size=64)
    for i in range(10):
        t.packet(flow(i), now=0.0)
    assert t.stats.insert == 0 and t.stats.confirmed == 10


# --- the kernel text the expectations above quote ---------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("series", SERIES)
def test_kernel_text_gc_cap(series: str) -> None:
    text = _kernel_file(series, "net/netfilter/nf_conntrack_core.c")
    m = re.search(r"#define GC_SCAN_EXPIRED_MAX\s+\((\d+)u / HZ\)", text)
    assert m and int(m[1]) == 64000
    m = re.search(r"#define GC_SCAN_INTERVAL_MAX\s+\((\d+)ul \* HZ\)", text)
    assert m and float(m[1]) == 60.0
    body = _function(text, "static void gc_worker(struct work_struct *work)")
    # the cap is tested before each node; evictions count in expired_count; any exit
    # with a next run clears the flag
    assert "if (expired_count > GC_SCAN_EXPIRED_MAX) {" in body
    assert body.index("expired_count > GC_SCAN_EXPIRED_MAX") < body.index("nf_ct_is_expired(tmp)")
    assert re.search(
        r"gc_worker_can_early_drop\(tmp\)\) \{\s*nf_ct_kill\(tmp\);\s*"
        r"expired_count\+\+;",
        body,
    )
    assert "next_run = delta_time < (s32)GC_SCAN_INTERVAL_MAX;" in body
    assert re.search(r"if \(next_run\)\s*gc_work->early_drop = false;", body)
    assert "nf_conntrack_max95 = nf_conntrack_max / 100u * 95u;" in body


@pytest.mark.oracle
@pytest.mark.parametrize("series", SERIES)
def test_kernel_text_clash_and_insert(series: str) -> None:
    gen = _kernel_file(series, "net/netfilter/nf_conntrack_proto_generic.c")
    assert re.search(r"\.allow_clash\s*=\s*true,", gen)
    text = _kernel_file(series, "net/netfilter/nf_conntrack_core.c")
    harder = _function(text, "static int nf_ct_resolve_clash_harder(")
    assert "WRITE_ONCE(loser_ct->timeout, nfct_time_stamp + HZ);" in harder
    assert "loser_ct->status |= IPS_FIXED_TIMEOUT | IPS_NAT_CLASH;" in harder
    assert "hlist_nulls_add_fake(&loser_ct->tuplehash[IP_CT_DIR_ORIGINAL].hnnode);" in harder
    assert "NF_CT_STAT_INC(net, clash_resolve);" in harder
    resolve = text[text.index("nf_ct_resolve_clash(struct sk_buff *skb, struct nf_conntrack_t") :]
    resolve = resolve[: resolve.index("\n}\n")]
    assert resolve.index("__nf_ct_resolve_clash(skb, h)") < resolve.index(
        "nf_ct_resolve_clash_harder(skb, reply_hash)"
    )
    # the insert statistic: once, inside nf_conntrack_hash_check_insert
    assert text.count("NF_CT_STAT_INC(net, insert);") == 1
    check = _function(text, "\nnf_conntrack_hash_check_insert(struct nf_conn *ct)")
    assert "NF_CT_STAT_INC(net, insert);" in check


@pytest.mark.oracle
@pytest.mark.parametrize("series", SERIES)
def test_kernel_text_chain_limit_and_ports(series: str) -> None:
    text = _kernel_file(series, "net/netfilter/nf_conntrack_core.c")
    draw = "get_random_u32_below" if series == "6.12" else "prandom_u32_max"
    assert text.count(f"max_chainlen = MIN_CHAINLEN + {draw}(MAX_CHAINLEN);") == 2
    assert re.search(r"#define MAX_CHAINLEN\s+\(80u - MIN_CHAINLEN\)", text)
    get_tuple = text[text.index("nf_ct_get_tuple(const struct sk_buff *skb,") :]
    get_tuple = get_tuple[: get_tuple.index("\n}\n")]
    assert "memset(tuple, 0, sizeof(*tuple));" in get_tuple
    ported = re.findall(r"case (IPPROTO_\w+):", get_tuple[get_tuple.index("case IPPROTO_TCP") :])
    assert ported == [
        "IPPROTO_TCP",
        "IPPROTO_UDP",
        "IPPROTO_UDPLITE",
        "IPPROTO_SCTP",
        "IPPROTO_DCCP",
    ]
    assert "return nf_ct_get_tuple_ports(skb, dataoff, tuple);" in get_tuple
