"""Table.gc and early drop against the kernel's own gc_worker() and early_drop(), compiled
from Debian's 6.1.192 and 6.12.117 sources (conformance/kernel: conntrack_gc_main.c around
net/netfilter/nf_conntrack_core.c's gc_worker, nf_ct_gc_expired, gc_worker_skip_ct,
gc_worker_can_early_drop, the GC_SCAN_* constants, early_drop and early_drop_list, and the
nf_conn inlines of include/net/netfilter/nf_conntrack.h).

Each case builds a Table through its public API (entries created at different times, some
answered and ASSURED), writes the table's exact chains -- every node, in chain order -- into
the program, sets the early-drop flag in both, and runs gc_worker() and Table.gc() three
times with a fake jiffies = now * HZ: the entries removed, the bucket the next run starts
at and the flag must agree after every run."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from fixtures.kernel_programs import program

from sidkit.conntrack import NF_CT_EVICTION_RANGE, Entry, Table, _lifecycle
from sidkit.keys import FiveTuple

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "conformance" / "kernel" / "_work"
SERIES = ("6.1", "6.12")

pytestmark = pytest.mark.oracle


def _exe(series: str) -> Path:
    return program("conntrack_gc", series)


def _flow(i: int) -> FiveTuple:
    return FiveTuple(f"10.0.{i >> 8 & 255}.{i & 255}", 1024 + i, "198.51.100.7", 443)


def _scenario(seed: int) -> tuple[Table, list[float], int]:
    rng = random.Random(seed)
    hz = rng.choice([100, 250, 1000])
    size = rng.choice([1, 2, 3, 7, 16, 61])
    n = rng.randrange(1, 400)
    max_entries = n + rng.randrange(0, n // 10 + 2)
    t = Table(htable_size=size, max_entries=0, hz=hz, seed=seed, max_chainlen=10**6)
    for i in range(n):
        now = float(rng.randrange(0, 40))
        e = t.packet(_flow(i), now=now).entry
        assert e is not None
        if rng.random() < 0.3:  # answered, then a packet after the 2 s stream delay
            t.packet(e.reply, now=now + 1)
            t.packet(e.original, now=now + 3)
    t.max_entries = max_entries
    t._gc.early_drop = rng.random() < 0.7  # white box: the flag a failed allocation sets
    nows = sorted(float(rng.randrange(40, 200)) for _ in range(3))
    return t, nows, hz


def _script(t: Table, hz: int) -> tuple[list[str], dict[int, Entry]]:
    ids: dict[int, Entry] = {}
    lines = [f"hz {hz}", f"max {t.max_entries}", f"size {t.htable_size}"]
    for e in t:
        ids[len(ids) + 1] = e
    back = {id(e): k for k, e in ids.items()}
    for k, e in ids.items():
        lines.append(f"entry {k} {round(e.timeout * hz)} {int(e.assured)}")
    # chains head first; the program adds at the head, so link each chain tail first
    chains: dict[int, list[tuple[int, int]]] = {}
    for b, e, direction in t.nodes():
        chains.setdefault(b, []).append((back[id(e)], int(direction)))
    for b, nodes in chains.items():
        for k, d in reversed(nodes):
            lines.append(f"link {k} {d} {b}")
    lines.append(f"flag {int(t._gc.early_drop)}")
    return lines, ids


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("seed", range(40))
def test_gc_worker_matches_the_kernel(series: str, seed: int) -> None:
    exe = _exe(series)
    t, nows, hz = _scenario(seed)
    lines, ids = _script(t, hz)
    for now in nows:
        lines += [f"jiffies {round(now * hz)}", "gc"]
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == len(nows)
    alive = set(ids)
    for now, line in zip(nows, out, strict=True):
        fields = dict(item.partition("=")[::2] for item in line.split())
        removed = [int(x) for x in fields["removed"].split(",") if x]
        got = t.gc(now=now)
        alive -= set(removed)
        model_alive = {k for k, e in ids.items() if not e.dying}
        assert (got, model_alive) == (len(removed), alive), (seed, now, line)
        assert t._gc.next == int(fields["next"]), (seed, now, line)
        assert int(t._gc.early_drop) == int(fields["flag"]), (seed, now, line)
        assert t.count == int(fields["count"])


@pytest.mark.parametrize("series", SERIES)
def test_issue_case_13000_entries(series: str) -> None:
    # The issue's numbers through the compiled gc_worker: 13000 non-assured entries in
    # 65536 chains, flag set, HZ=100: 641 evictions, then none.
    exe = _exe(series)
    t = Table(htable_size=65536, max_entries=0, hz=100, seed=1)
    for i in range(13000):
        t.packet(
            FiveTuple(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024, "198.51.100.7", 443),
            now=0.0,
        )
    t.max_entries = 13000
    t._gc.early_drop = True
    lines, _ = _script(t, 100)
    lines += ["jiffies 100", "gc", "jiffies 200", "gc"]
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    counts = [len([x for x in ln.split()[0][len("removed=") :].split(",") if x]) for ln in out]
    assert counts == [641, 0]
    assert [t.gc(now=1.0), t.gc(now=2.0)] == counts


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("seed", range(40))
def test_early_drop_matches_the_kernel(series: str, seed: int) -> None:
    # early_drop(net, hash) and early_drop_list() as compiled (6.12.117
    # nf_conntrack_core.c:1378-1449, 6.1.192:1402-1480): from reciprocal_scale(hash, size),
    # up to NF_CT_EVICTION_RANGE chains, every non-assured entry of the first chain that has
    # one, expired entries reaped on the way and not counted. Ten calls in a row at rising
    # times and random hashes; after each the result, the entries gone and the drops agree.
    exe = _exe(series)
    t, _, hz = _scenario(seed)
    lines, ids = _script(t, hz)
    rng = random.Random(seed ^ 0x5EED)
    calls = [(float(rng.randrange(0, 80)), rng.getrandbits(32)) for _ in range(10)]
    calls.sort()
    for now, h in calls:
        lines += [f"jiffies {round(now * hz)}", f"early_drop {h}"]
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    alive = set(ids)
    for (now, h), line in zip(calls, out, strict=True):
        fields = dict(item.partition("=")[::2] for item in line.split())
        before = t.stats.early_drop
        ok = _lifecycle.early_drop(t._chains, h, now, t.stats, NF_CT_EVICTION_RANGE)
        alive -= {int(x) for x in fields["removed"].split(",") if x}
        assert int(ok) == int(fields["ok"]), (seed, now, h, line)
        assert {k for k, e in ids.items() if not e.dying} == alive, (seed, now, h, line)
        assert t.stats.early_drop - before == int(fields["drops"])
        assert t.count == int(fields["count"])
