"""``Table.packet_many`` is a loop of ``Table.packet``: the same results, chains and counters.

The bulk path hashes every tuple and its inverse in one numpy batch and hands the hashes to
the per-packet path; a wrong batch hash (a different era, byte order, zone id or direction)
would put an entry in another chain, which these properties compare node by node against a
second table fed one packet at a time with fresh key objects.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numpy", reason="the bulk path hashes with numpy (sidkit[bulk])")

from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError, UnknownKernelError
from sidkit.conntrack import PacketResult, Table
from sidkit.keys import (
    NF_CT_ZONE_DIR_ORIG,
    NF_CT_ZONE_DIR_REPL,
    FiveTuple,
    SidZoneConfig,
    Zone,
)

V4 = [f"192.0.2.{i}" for i in range(1, 5)] + ["198.51.100.7"]
V6 = ["2001:db8::1", "2001:db8::2", "::ffff:192.0.2.1", "2001:db8::7"]


@st.composite
def tuples(draw: st.DrawFn) -> FiveTuple:
    pool = draw(st.sampled_from([V4, V6]))
    return FiveTuple(
        draw(st.sampled_from(pool)),
        draw(st.integers(0, 5)),
        draw(st.sampled_from(pool)),
        draw(st.sampled_from([443, 53, 0])),
        draw(st.sampled_from([17, 17, 136, 50, 0])),
    )


ZONES = [
    Zone(),
    Zone(7),
    Zone(7, NF_CT_ZONE_DIR_ORIG),
    Zone(9, NF_CT_ZONE_DIR_REPL),
]


def _fresh(t: FiveTuple) -> FiveTuple:
    return FiveTuple(t.src, t.sport, t.dst, t.dport, t.protocol)


def _result(r: PacketResult) -> tuple[object, ...]:
    e = r.entry
    return (
        r.verdict,
        r.direction,
        r.ctinfo,
        r.key,
        r.translated,
        r.created,
        r.reason,
        None if e is None else (e.original, e.reply, e.status, e.timeout, e.zone),
    )


def _layout(t: Table) -> list[tuple[int, FiveTuple, int]]:
    return [(b, e.original, int(d)) for b, e, d in t.nodes()]


@settings(max_examples=40, deadline=None)
@given(
    kernel=st.sampled_from(["6.12", "6.3", "5.15", "4.9"]),
    size=st.sampled_from([1, 2, 8, 64]),
    bound=st.sampled_from([0, 3, 10]),
    batches=st.lists(
        st.tuples(st.lists(tuples(), max_size=25), st.sampled_from(ZONES), st.integers(0, 40)),
        min_size=1,
        max_size=4,
    ),
    seed=st.integers(0, 2**16),
)
def test_packet_many_is_a_loop_of_packet(
    kernel: str,
    size: int,
    bound: int,
    batches: list[tuple[list[FiveTuple], Zone, int]],
    seed: int,
) -> None:
    if kernel == "4.9":
        bound = 0  # early drop is not modelled before 6.1: no bound, no eviction
    bulk = Table(kernel=kernel, htable_size=size, max_entries=bound, seed=seed)
    one = Table(kernel=kernel, htable_size=size, max_entries=bound, seed=seed)
    assert (bulk.secret, bulk.net_mix) == (one.secret, one.net_mix)
    for drawn, zone, now in batches:
        keys = drawn + drawn[:3]  # the same objects twice in one batch
        try:
            got = [_result(r) for r in bulk.packet_many(keys, now=float(now), zone=zone)]
            bulk_error = None
        except UnknownKernelError as exc:  # an era's unmodelled behaviour, met mid-batch
            got, bulk_error = [], str(exc)
        results = []
        one_error = None
        for k in keys:
            try:
                results.append(one.packet(_fresh(k), now=float(now), zone=zone))
            except UnknownKernelError as exc:
                one_error = str(exc)
                break
        # entries are mutable: both sides are read after their last packet
        want = [_result(r) for r in results]
        assert bulk_error == one_error
        if bulk_error is None:
            assert got == want
        assert _layout(bulk) == _layout(one)
        assert bulk.stats == one.stats
        if bulk_error is not None:
            return


def test_packet_many_refuses_what_packet_refuses() -> None:
    t = Table(htable_size=8)
    k = FiveTuple("192.0.2.1", 1, "198.51.100.7", 443)
    with pytest.raises(SidkitError):
        t.packet_many([k, "x"], now=0.0)  # type: ignore[list-item]
    with pytest.raises(SidkitError):
        t.packet_many(k, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(SidkitError):
        t.packet_many([FiveTuple("192.0.2.1", 1, "198.51.100.7", 443, 6)], now=0.0)  # TCP
    with pytest.raises(SidkitError, match="SID zone"):
        t.packet_many([k], now=0.0, zone=Zone(3, sid=SidZoneConfig("quic", 1, 8)))
    assert len(t) == 0 and t.count == 0  # nothing was inserted by a refused batch
