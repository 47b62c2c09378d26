"""The table's secrets are the kernel's (random, seedable) and its limits are checked at entry.

Issue 18: ``conntrack.Table`` hashed with a zero secret by default, so a flood of crafted
tuples filled one chain; ``now=NaN`` made entries immortal; ``htable_size=2**32-1`` tried to
allocate; bad ``UdpTimeouts`` and ``raw_hash`` arguments raised foreign exceptions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from sidkit import SidkitError
from sidkit.conntrack import Table, UdpTimeouts
from sidkit.keys import FiveTuple

SERVER = ("198.51.100.7", 443)


def test_default_secrets_are_random_like_the_kernels() -> None:
    a, b = Table(), Table()
    assert isinstance(a.secret, bytes) and len(a.secret) == 16
    assert a.secret != b.secret and a.secret != bytes(16)
    assert (a.net_mix, a.secret) != (b.net_mix, b.secret)
    old = Table(kernel="4.9")  # a jhash2 era: a u32 nf_conntrack_hash_rnd
    assert isinstance(old.secret, int) and 0 <= old.secret < 2**32


def test_a_seed_makes_the_secrets_reproducible() -> None:
    assert Table(seed=5).secret == Table(seed=5).secret
    assert Table(seed=5).net_mix == Table(seed=5).net_mix
    assert Table(seed=5).secret != Table(seed=6).secret
    r1, r2 = random.Random(9), random.Random(9)
    assert Table(seed=r1).secret == Table(seed=r2).secret
    # explicit values win over the seed
    t = Table(seed=5, secret=bytes(range(16)), net_mix=3)
    assert (t.secret, t.net_mix) == (bytes(range(16)), 3)
    # placement follows the drawn secret: the same tuple, the same bucket, run after run
    k = FiveTuple("192.0.2.1", 5000, *SERVER)
    assert Table(seed=11).bucket_of(k) == Table(seed=11).bucket_of(k)


def _crafted(n: int, size: int) -> list[FiveTuple]:
    """*n* tuples whose ORIGINAL node lands in bucket 0 of a *size*-chain table whose
    secret and net_mix are zero (what an attacker can aim at when the secret is known)."""
    zero = Table(htable_size=size, secret=bytes(16), net_mix=0, max_entries=0)
    out: list[FiveTuple] = []
    port = 1024
    while len(out) < n:
        k = FiveTuple("203.0.113.9", port, *SERVER)
        if zero.bucket_of(k) == 0:
            out.append(k)
        port += 1
    return out


def test_a_known_secret_lets_a_flood_fill_one_chain_a_random_one_does_not() -> None:
    flood = _crafted(90, 64)
    known = Table(htable_size=64, max_entries=0, secret=bytes(16), net_mix=0, seed=1)
    for k in flood:
        known.packet(k, now=0.0)
    assert known.stats.chaintoolong > 0  # the chain passed the 50..79 limit
    drawn = Table(htable_size=64, max_entries=0, seed=1)  # random secret, from the seed
    for k in flood:
        drawn.packet(k, now=0.0)
    assert drawn.stats.chaintoolong == 0 and len(drawn) == len(flood)


NOW_BAD = [math.nan, math.inf, -math.inf, 10**400]


@pytest.mark.parametrize("now", NOW_BAD, ids=["nan", "inf", "-inf", "huge-int"])
def test_now_must_be_finite_everywhere(now: float) -> None:
    t = Table(htable_size=16)
    k = FiveTuple("192.0.2.1", 5000, *SERVER)
    e = t.packet(k, now=0.0).entry
    assert e is not None
    calls: list[Callable[[], object]] = [
        lambda: t.packet(k, now=now),
        lambda: t.lookup(k, now=now),
        lambda: t.create(FiveTuple("192.0.2.2", 1, *SERVER), now=now),
        lambda: t.gc(now),
        lambda: t.packet_many([k], now=now),
    ]
    for call in calls:
        with pytest.raises(SidkitError, match="finite"):
            call()
    fresh = t.create(FiveTuple("192.0.2.3", 1, *SERVER), now=0.0)
    with pytest.raises(SidkitError, match="finite"):
        t.confirm(fresh, now=now)
    assert t.lookup(k, now=1.0) == (e, 0)  # nothing was changed by the refused calls


def test_htable_size_is_bounded_as_nf_ct_alloc_hashtable_bounds_it() -> None:
    limit = 0x7FFFFFFF // 8
    for size in (2**32 - 1, limit + 1, 0):
        with pytest.raises(SidkitError, match="htable_size"):
            Table(htable_size=size)
        with pytest.raises(SidkitError, match="htable_size"):
            Table(htable_size=16).resize(size)
    with pytest.raises(SidkitError, match="htable_size"):
        Table(kernel="6.12", htable_size=0x7FFFFFFF // 4 + 1)


def test_gc_with_more_buckets_than_chains_is_one_pass() -> None:
    t = Table(htable_size=64, max_entries=0, seed=2)
    for i in range(40):
        t.packet(FiveTuple(f"192.0.2.{i}", 1000 + i, *SERVER), now=0.0)
    assert t.gc(100.0, buckets=2**31) == 40
    assert len(t) == 0
    with pytest.raises(SidkitError):
        t.gc(100.0, buckets=2**32)


BAD_SECONDS = ["abc", None, 1e400, math.nan, -1.0, 16**5000, True, [30]]


@pytest.mark.parametrize(
    "value", BAD_SECONDS, ids=["str", "none", "inf", "nan", "negative", "huge", "bool", "list"]
)
def test_udp_timeouts_refuse_what_is_no_number_of_seconds(value: object) -> None:
    with pytest.raises(SidkitError):
        UdpTimeouts(unreplied=value)
    with pytest.raises(SidkitError):
        UdpTimeouts(replied=value)
    if value is not None:
        with pytest.raises(SidkitError):
            UdpTimeouts(stream_delay=value)


def test_udp_timeouts_still_take_ints_floats_and_no_delay() -> None:
    assert UdpTimeouts(30, 180, None) == UdpTimeouts(30.0, 180.0, None)
    assert UdpTimeouts(unreplied=2_147_483).unreplied == 2_147_483.0


@pytest.mark.parametrize("key", ["str", b"bytes", 5, None, ("1.1.1.1", 1, "2.2.2.2", 2)])
def test_raw_hash_and_bucket_of_refuse_what_is_no_flow_key(key: object) -> None:
    t = Table(htable_size=16)
    with pytest.raises(SidkitError, match="flow key"):
        t.raw_hash(key)  # type: ignore[arg-type]
    with pytest.raises(SidkitError, match="flow key"):
        t.bucket_of(key)  # type: ignore[arg-type]
