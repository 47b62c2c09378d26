"""Whole-table placement checked live against the kernel's C.

conformance/kernel/generate.py --build-only compiles the kernel-C harness (6.1.192 and
6.12.117 sources) and prints where the binaries are. Its ``conntrack_bucket`` command fills
a ``struct nf_conntrack_tuple`` and a ``struct nf_conntrack_zone`` and returns
``__hash_conntrack(net, tuple, nf_ct_zone_id(&zone, dir), size)`` -- the kernel's own
functions. Hypothesis builds tables from random traffic (zones in one or both directions,
SNAT/DNAT, replies, migrations in SID zones) and every tuple-keyed node of every entry must
sit in the chain the kernel computes for it.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures.kernel_programs import release_program
from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit.conntrack import DEFAULT_ZONE, MigrationPolicy, Nat, Table
from sidkit.keys import FiveTuple, SidZoneConfig, Zone

PROBE = "conntrack_bucket 2 c0000201 1 c6336407 2 17 7 1 0 1 0 " + "00" * 16 + " 1024"


def _understands_buckets(exe: Path) -> bool:
    """The harness is new enough to answer conntrack_bucket."""
    probe = subprocess.run(
        [str(exe)], input=PROBE + "\n", capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def _exe(release: str) -> Path:
    return release_program("harness", release, _understands_buckets)


def kernel_buckets(release: str, lines: list[str]) -> list[int]:
    proc = subprocess.run(
        [str(_exe(release))],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(x) for x in proc.stdout.split()]


def line(t: FiveTuple, zone: Zone, d: int, net_mix: int, secret: bytes, size: int) -> str:
    fam = 2 if t.family == 4 else 10
    return (
        f"conntrack_bucket {fam} {t.src.packed.hex()} {t.sport} {t.dst.packed.hex()} {t.dport} "
        f"{t.protocol} {zone.id} {zone.dir} {zone.flags} {d} {net_mix} {secret.hex()} {size}"
    )


v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)
zones = st.sampled_from(
    [
        Zone(),
        Zone(7),
        Zone(7, 1),
        Zone(7, 2),
        Zone(65535, 1),
        Zone(300, 3, 1),
        Zone(11, 1, sid=SidZoneConfig("quic", 0, 4)),
    ]
)


@dataclass(frozen=True)
class Event:
    kind: str  # "new", "reply" (to the i-th entry in table order) or "sid"
    tuple: FiveTuple
    zone: Zone = DEFAULT_ZONE
    nat: str | None = None
    index: int = 0
    sid: bytes = b""


@st.composite
def traffic(draw: st.DrawFn) -> list[Event]:
    v6_flow = draw(st.booleans())
    addr = v6 if v6_flow else v4
    events: list[Event] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["new", "new", "reply", "sid"]))
        t = FiveTuple(draw(addr), draw(ports), draw(addr), draw(ports))
        if kind == "new":
            nats = [None, "snat6", "dnat6"] if v6_flow else [None, "snat", "dnat"]
            events.append(Event("new", t, draw(zones), draw(st.sampled_from(nats))))
        elif kind == "reply":
            events.append(Event("reply", t, index=draw(st.integers(0, 20))))
        else:
            events.append(Event("sid", t, sid=draw(st.binary(min_size=4, max_size=4))))
    return events


NATS = {
    None: None,
    "snat": Nat(snat=("203.0.113.1", 61000)),
    "dnat": Nat(dnat=("10.0.0.5", 8443)),
    "snat6": Nat(snat=("2001:db8:ffff::1", 61000)),
    "dnat6": Nat(dnat=("2001:db8:eeee::5", 8443)),
}


@pytest.mark.oracle
@pytest.mark.parametrize("release", ["6.12.117", "6.1.192"])
@settings(max_examples=20, deadline=None)
@given(
    events=traffic(),
    secret=st.binary(min_size=16, max_size=16),
    net_mix=st.integers(0, 2**32 - 1),
    size=st.sampled_from([1, 5, 1024, 16384, 262144]),
)
def test_every_node_sits_where_the_kernel_hashes_it(
    release: str, events: list[Event], secret: bytes, net_mix: int, size: int
) -> None:
    _exe(release)
    table = Table(
        kernel=release,
        htable_size=size,
        max_entries=0,
        secret=secret,
        net_mix=net_mix,
        migration=MigrationPolicy.VALIDATED,
        validate=lambda e, new, now: True,
    )
    now = 0.0
    sid_zone = Zone(11, 1, sid=SidZoneConfig("quic", 0, 4))
    for ev in events:
        now += 1.0
        if ev.kind == "new":
            table.packet(ev.tuple, now=now, zone=ev.zone, nat=NATS[ev.nat], payload=b"1234")
        elif ev.kind == "reply":
            entries = list(table)
            if entries:
                table.packet(entries[ev.index % len(entries)].reply, now=now)
        else:
            # a SID we may have seen, from a new tuple: a migration when it matches
            table.packet(ev.tuple, now=now, zone=sid_zone, payload=ev.sid)
    nodes = [
        (b, e, int(d))
        for b, e, d in table.nodes()
        if not (e.sid is not None and e.zone.sid_keyed(d))
    ]
    if not nodes:
        return
    lines = [line(e.tuple(d), e.zone, d, net_mix, secret, size) for _, e, d in nodes]
    assert [b for b, _, _ in nodes] == kernel_buckets(release, lines)


@pytest.mark.oracle
def test_harness_agrees_on_a_known_ipv6_reply_node() -> None:
    # a fixed case for the record: the reply node of an IPv6 flow in a reply-only zone
    t = FiveTuple(ipaddress.ip_address("2001:db8::1"), 443, "2001:db8::2", 50000)
    table = Table(kernel="6.12.117", htable_size=16384, secret=bytes(range(16)), net_mix=7)
    e = table.packet(t.reversed(), now=0.0, zone=Zone(9, 2)).entry
    assert e is not None and e.reply == t
    [kb] = kernel_buckets("6.12.117", [line(t, Zone(9, 2), 1, 7, bytes(range(16)), 16384)])
    assert table.node_bucket(e, 1) == kb
