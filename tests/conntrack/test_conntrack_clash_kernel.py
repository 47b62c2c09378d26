"""Table.confirm's clash handling against the kernel's own nf_ct_resolve_clash(), compiled from
Debian's 6.1.192 and 6.12.117 sources (conformance/kernel: conntrack_clash_main.c around
net/netfilter/nf_conntrack_core.c's nf_ct_key_equal, nf_ct_match(_reverse), nf_ct_can_merge
(6.12), __nf_ct_resolve_clash, nf_ct_resolve_clash_harder, nf_ct_resolve_clash,
__nf_conntrack_hash_insert, with the tuple and zone comparisons of the kernel's headers).

Each case creates racing entries through the public API -- a few clients and servers, UDP
and ESP, directional zones, SNAT/DNAT bindings from small pools, so that ORIGINAL and REPLY
tuples collide -- then confirms them in a random order in both; after every confirmation
the verdict, the entry the packet ends with, the new entry's status and timeout and the
counters agree, and at the end every chain agrees node by node. The two releases differ
(6.1 merges into any winner without NAT done; 6.12 needs nf_ct_match or its reverse) and
the eras table's ct_clash rows select the right one."""

from __future__ import annotations

import ipaddress
import random
import subprocess
from pathlib import Path

import pytest
from fixtures.kernel_programs import program

from sidkit.conntrack import Entry, Nat, Table
from sidkit.keys import NF_CT_ZONE_DIR_ORIG, NF_CT_ZONE_DIR_REPL, FiveTuple, Zone

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "conformance" / "kernel" / "_work"
SERIES = ("6.1", "6.12")
HZ = 100
NOW = 10.0

pytestmark = pytest.mark.oracle


def _exe(series: str) -> Path:
    return program("conntrack_clash", series)


def _addr(a: object) -> str:
    return f"{int(ipaddress.IPv4Address(str(a))):08x}" + "0" * 24


def _entry_line(k: int, e: Entry, t: Table) -> str:
    o, r = e.original, e.reply
    return (
        f"entry {k} {o.protocol} 4 {_addr(o.src)} {o.sport} {_addr(o.dst)} {o.dport} "
        f"{_addr(r.src)} {r.sport} {_addr(r.dst)} {r.dport} {e.zone.id} {e.zone.dir} "
        f"{round(e.timeout * HZ)} {int(e.status):x}"
    )


CLIENTS = [("192.0.2.1", 5000), ("192.0.2.2", 5000)]
SERVERS = [("198.51.100.7", 53), ("198.51.100.8", 53)]
ZONES = [Zone(), Zone(7, NF_CT_ZONE_DIR_ORIG), Zone(7, NF_CT_ZONE_DIR_REPL), Zone(5)]
NATS = [
    None,
    Nat(snat=("203.0.113.1", 1000)),
    Nat(snat=("203.0.113.2", 1000)),
    Nat(dnat=("10.0.0.5", 53)),
]


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("seed", range(60))
def test_confirm_clashes_match_the_kernel(series: str, seed: int) -> None:
    exe = _exe(series)
    rng = random.Random(seed)
    size = rng.choice([1, 2, 4, 16])
    t = Table(kernel=series, htable_size=size, max_entries=0, hz=HZ, max_chainlen=10**6, seed=seed)
    entries: list[Entry] = []
    lines = [f"hz {HZ}", f"size {size}", f"jiffies {round(NOW * HZ)}"]
    for k in range(1, rng.randrange(4, 16)):
        c, s = rng.choice(CLIENTS), rng.choice(SERVERS)
        proto = rng.choice([17, 17, 50])
        tup = FiveTuple(c[0], c[1], s[0], s[1], proto)
        nat = rng.choice(NATS)
        e = t.create(tup, rng.choice(ZONES), now=NOW, nat=nat)
        entries.append(e)
        lines.append(_entry_line(k, e, t))
    order = list(range(len(entries)))
    rng.shuffle(order)
    ids = {id(e): k + 1 for k, e in enumerate(entries)}
    expected: list[tuple[str, bool, int, int, int, Entry]] = []
    for i in order:
        e = entries[i]
        h0 = t.bucket_of(e.key(0), e.zone.id_for(0))
        h1 = t.bucket_of(e.key(1), e.zone.id_for(1))
        lines.append(f"confirm {i + 1} {h0} {h1}")
        r = t.confirm(e, now=NOW)
        st = t.stats
        head = "verdict=DROP ct=-1" if r is None else f"verdict=ACCEPT ct={ids[id(r)]}"
        expected.append((head, r is e, st.clash_resolve, st.drop, st.insert_failed, e))
    lines.append("chains")
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == len(order) + 1
    for (head, itself, cr, dr, inf, e), line in zip(expected, out, strict=False):
        assert isinstance(e, Entry)
        f = dict(item.partition("=")[::2] for item in line.split())
        assert line.startswith(head + " "), (seed, line, head)
        assert (int(f["clash_resolve"]), int(f["drop"]), int(f["insert_failed"])) == (
            cr,
            dr,
            inf,
        ), (seed, line)
        if itself:
            assert int(f["status"], 16) == int(e.status), (seed, line, e)
            assert int(f["timeout"]) == round(e.timeout * HZ), (seed, line, e)
    chains: dict[int, list[str]] = {}
    for b, e, d in t.nodes():
        chains.setdefault(b, []).append(f"{ids[id(e)]}.{int(d)}")
    want = "".join(f"{b}:{','.join(n)} " for b, n in sorted(chains.items()))
    assert out[-1] == want, seed


def test_the_releases_differ_where_the_kernel_does() -> None:
    # A winner without NAT and a loser with a different REPLY tuple (the loser went through
    # SNAT): 6.1.192's __nf_ct_resolve_clash merges ((ct->status & IPS_NAT_DONE_MASK) == 0,
    # nf_conntrack_core.c:1031); 6.12.117's nf_ct_can_merge does not, and clash_harder keeps
    # the loser by its REPLY node.
    tup = FiveTuple("192.0.2.1", 5000, "198.51.100.7", 53)
    got = {}
    for k in SERIES:
        t = Table(kernel=k, htable_size=16)
        a = t.create(tup, now=0.0)
        b = t.create(tup, now=0.0, nat=Nat(snat=("203.0.113.1", 1000)))
        t.confirm(a, now=0.0)
        got[k] = t.confirm(b, now=0.0) is a
    assert got == {"6.1": True, "6.12": False}
