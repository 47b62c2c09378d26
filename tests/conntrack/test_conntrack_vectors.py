"""Bucket placement of sidkit.conntrack.Table against the kernel's own C, per era.

kernel-conntrack.json and kernel-conntrack-zones.json hold hash_conntrack_raw() results
computed by the kernel's C (6.1.192: the siphash-over-a-combined-struct form; 6.12.117: the
siphash-with-keyed-zone form), for IPv4 and IPv6 tuples, zones, and -- in the zones file --
the ORIGINAL and REPLY nodes of directional zones, with the zone id the compiled
nf_ct_zone_id() chose. The kernel places a node at reciprocal_scale(raw, htable_size) =
(raw * htable_size) >> 32 (__hash_conntrack; the generator checks that identity against the
compiled function). Here a Table built for the group's kernel, secret and namespace mix must
put each tuple, and each entry's node, in exactly that chain.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sidkit import conformance as conf
from sidkit.conntrack import Table
from sidkit.keys import FiveTuple, Zone

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors"
FILES = ("kernel-conntrack.json", "kernel-conntrack-zones.json")
SIZES = (1, 7, 1024, 16384, 65536, 262144)


def _cases() -> list[tuple[str, str, conf.TestCase, dict[str, str]]]:
    out = []
    for name in FILES:
        path = VECTORS / name
        if not path.is_file():
            continue
        for g in conf.load_vector_file(path).groups:
            if g.function != "hash_conntrack_raw":
                continue
            assert g.kernel is not None
            for t in g.tests:
                out.append((name, g.kernel, t, dict(g.arg_types)))
    return out


CASES = _cases()


def test_both_eras_and_families_are_covered() -> None:
    assert {k for _, k, _, _ in CASES} >= {"6.1.192", "6.12.117"}
    fams = {":" in str(t.args["src"]) for _, _, t, _ in CASES}
    assert fams == {False, True}
    zones = [t for n, _, t, _ in CASES if n == "kernel-conntrack-zones.json"]
    assert any("REPLY node" in t.comment for t in zones)
    assert any("dir ORIG flags" in t.comment for t in zones)


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("name", "kernel", "case", "types"),
    CASES,
    ids=[f"{n.split('.')[0]}-{k}-{c.tc_id}" for n, k, c, _ in CASES],
)
def test_table_places_tuples_where_the_kernel_does(
    name: str, kernel: str, case: conf.TestCase, types: dict[str, str]
) -> None:
    a = conf.decode_args(types, case.args)
    t = FiveTuple(a["src"], a["sport"], a["dst"], a["dport"], a["protonum"])
    for size in SIZES:
        table = Table(
            kernel=kernel,
            htable_size=size,
            secret=a["secret"],
            net_mix=a["net_mix"],
            max_entries=0,
        )
        expected = (case.result * size) >> 32
        assert table.raw_hash(t, a["zone_id"]) == case.result
        assert table.bucket_of(t, a["zone_id"]) == expected


ZONE_CASES = [c for c in CASES if c[0] == "kernel-conntrack-zones.json"]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("name", "kernel", "case", "types"),
    ZONE_CASES,
    ids=[f"{k}-{c.tc_id}" for _, k, c, _ in ZONE_CASES],
)
def test_entry_nodes_land_in_the_kernels_chain(
    name: str, kernel: str, case: conf.TestCase, types: dict[str, str]
) -> None:
    # The comment names the zone struct and the node's direction the harness hashed with.
    m = re.search(r"zone id (\d+) dir (\S+) flags (\d+), (ORIGINAL|REPLY) node", case.comment)
    assert m is not None, case.comment
    zid, zflags = int(m[1]), int(m[3])
    zdir = {"ORIG": 1, "REPL": 2, "ORIG|REPL": 3}[m[2]]
    reply_node = m[4] == "REPLY"
    a = conf.decode_args(types, case.args)
    t = FiveTuple(a["src"], a["sport"], a["dst"], a["dport"], a["protonum"])
    zone = Zone(zid, zdir)
    assert zflags in (0, 1)
    for size in (7, 16384):
        table = Table(kernel=kernel, htable_size=size, secret=a["secret"], net_mix=a["net_mix"])
        # An entry whose node of that direction carries this tuple: for a REPLY node, the
        # flow that the tuple answers.
        orig = t.reversed() if reply_node else t
        res = table.packet(orig, now=0.0, zone=zone)
        assert res.entry is not None
        d = 1 if reply_node else 0
        assert res.entry.tuple(d) == t
        assert table.node_bucket(res.entry, d) == (case.result * size) >> 32
        placed = [b for b, e, dd in table.nodes() if e is res.entry and dd == d]
        assert placed == [(case.result * size) >> 32]
