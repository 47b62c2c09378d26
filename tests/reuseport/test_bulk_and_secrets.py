"""The reuseport models' bulk methods equal loops of their scalar methods, and their secrets
are the kernel's: random unless given, reproducible from a seed, never silently zero.

``Group.select_many`` / ``index_many`` / ``flow_hash_many`` and ``Port.deliver_many`` compute
flow hashes and plain hash selections with :mod:`sidkit.hashing.batch`; each property below
replays random group or port histories and compares the bulk answer with the scalar one,
datagram by datagram (and the sockets' state afterwards: delivery updates SO_INCOMING_CPU).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

pytest.importorskip("numpy", reason="the bulk methods hash with numpy (sidkit[bulk])")

from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.hashing import udp6_ehashfn, udp_ehashfn
from sidkit.kernel import profile, udp_flow_hash
from sidkit.reuseport import Group, Member, Port
from sidkit.steering import FixedOffset, SteeringPolicy

u32 = st.integers(0, 2**32 - 1)
V4 = ["10.0.0.1", "192.0.2.7", "198.51.100.9", "0.0.0.0"]
V6 = ["2001:db8::1", "::1", "2001:db8::7", "::"]
KERNELS = ["3.10", "4.6", "5.10", "6.1.2", "6.18"]


def _name(m: object) -> object:
    return m.name if isinstance(m, Member) else m


@st.composite
def groups(draw: st.DrawFn) -> Group:
    kernel = draw(st.sampled_from(KERNELS))
    g = Group(kernel, initval=draw(u32), ipv6_hash_secret=draw(u32))
    names = 0
    for _ in range(draw(st.integers(0, 12))):
        op = draw(st.sampled_from(["join", "join", "join", "close", "connect", "cpu", "prog"]))
        members = list(g.socks)
        if op == "join" or not members:
            g.join(names)
            names += 1
        elif op == "close":
            g.close(draw(st.sampled_from(members)))
        elif op == "connect" and kernel != "4.6":  # 4.5-5.3 connected members: not modelled
            g.connect(draw(st.sampled_from(members)), ("192.0.2.7", draw(st.integers(1, 3))))
        elif op == "cpu":
            g.set_incoming_cpu(draw(st.sampled_from(members)), draw(st.integers(-1, 2)))
        elif op == "prog" and not g.score_loop:
            g.attach_policy(SteeringPolicy(FixedOffset(1, 4), "modulo", 4))
    return g


@settings(max_examples=80, deadline=None)
@given(g=groups(), data=st.data())
def test_select_many_is_a_loop_of_select(g: Group, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 30))
    hashes = data.draw(st.lists(u32, min_size=n, max_size=n))
    payloads = data.draw(
        st.none() | st.lists(st.binary(min_size=0, max_size=8), min_size=n, max_size=n)
    )
    peers = data.draw(
        st.none()
        | st.lists(
            st.none() | st.tuples(st.just("192.0.2.7"), st.integers(1, 3)), min_size=n, max_size=n
        )
    )
    cpu = data.draw(st.integers(-1, 2))
    got = g.select_many(hashes, payloads, peers=peers, cpu=cpu)
    want = [
        g.select(
            h,
            None if payloads is None else payloads[i],
            peer=None if peers is None else peers[i],
            cpu=cpu,
        )
        for i, h in enumerate(hashes)
    ]
    assert [_name(m) for m in got] == [_name(m) for m in want]
    assert all(a is b for a, b in zip(got, want, strict=True))
    idx = g.index_many(hashes, payloads, peers=peers, cpu=cpu)
    assert idx == [
        g.index(
            h,
            None if payloads is None else payloads[i],
            peer=None if peers is None else peers[i],
            cpu=cpu,
        )
        for i, h in enumerate(hashes)
    ]


@settings(max_examples=40, deadline=None)
@given(
    kernel=st.sampled_from(KERNELS),
    six=st.booleans(),
    rows=st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(1, 65535), st.integers(0, 3), st.integers(1, 65535)
        ),
        max_size=20,
    ),
    iv=u32,
    secret=u32,
)
def test_flow_hash_many_is_a_loop_of_flow_hash(
    kernel: str, six: bool, rows: list[tuple[int, int, int, int]], iv: int, secret: int
) -> None:
    pool = V6 if six else V4
    g = Group(kernel, initval=iv, ipv6_hash_secret=secret)
    la = [pool[r[0]] for r in rows]
    fa = [pool[r[2]] for r in rows]
    lp = [r[1] for r in rows]
    fp = [r[3] for r in rows]
    if not rows:
        return
    if six and kernel == "3.10":  # udp6_ehashfn is modelled from v3.13: both refuse
        with pytest.raises(SidkitError):
            g.flow_hash(la[0], lp[0], fa[0], fp[0])
        with pytest.raises(SidkitError):
            g.flow_hash_many(la, lp, fa, fp)
        return
    got = [int(h) for h in g.flow_hash_many(la, lp, fa, fp)]
    assert got == [g.flow_hash(*r) for r in zip(la, lp, fa, fp, strict=True)]


Op = tuple[str, int, str]
Gram = tuple[tuple[str, int], tuple[str, int]]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Op], list[Gram]]:
    """Socket operations (bind / connect / close / SO_INCOMING_CPU) and datagrams."""
    ops: list[Op] = []
    bound: dict[int, str] = {}
    names = 0
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["bind", "bind", "bind", "connect", "close", "cpu"]))
        if op == "bind" or not bound:
            addr = draw(st.sampled_from(["0.0.0.0", "10.0.0.1", "::", "2001:db8::1", "::1"]))
            ops.append(("bind", names, addr))
            bound[names] = addr
            names += 1
            continue
        name = draw(st.sampled_from(sorted(bound)))
        if op == "connect":
            ops.append(("connect", name, "::1" if ":" in bound[name] else "127.0.0.1"))
        elif op == "close":
            ops.append(("close", name, ""))
            del bound[name]
        else:
            ops.append(("cpu", name, str(draw(st.integers(-1, 1)))))
    grams: list[Gram] = []
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.booleans()):
            src = (draw(st.sampled_from(["192.0.2.7", "127.0.0.1"])), draw(st.integers(1, 9)))
            dst = (draw(st.sampled_from(["10.0.0.1", "127.0.0.1"])), 4433)
        else:
            src = (draw(st.sampled_from(["2001:db8::9", "::1"])), draw(st.integers(1, 9)))
            dst = (draw(st.sampled_from(["2001:db8::1", "::1"])), 4433)
        grams.append((src, dst))
    return ops, grams


def _replay(ops: list[Op], iv: int, secret: int) -> Port:
    port = Port("6.18", initval=iv, addr_secret=secret)
    for op, name, arg in ops:
        if op == "bind":
            port.bind(name, (arg, 4433))
        elif op == "connect":
            port.connect(name, (arg, 5000))
        elif op == "close":
            port.close(name)
        else:
            port.set_incoming_cpu(name, int(arg))
    return port


@settings(max_examples=60, deadline=None)
@given(history=histories(), cpu=st.none() | st.integers(0, 1), iv=u32, secret=u32)
def test_deliver_many_is_a_loop_of_deliver(
    history: tuple[list[Op], list[Gram]], cpu: int | None, iv: int, secret: int
) -> None:
    ops, grams = history
    bulk, one = _replay(ops, iv, secret), _replay(ops, iv, secret)
    got = bulk.deliver_many([g[0] for g in grams], [g[1] for g in grams], cpu=cpu)
    want = [one.deliver(s, d, cpu=cpu) for s, d in grams]
    assert [_name(m) for m in got] == [_name(m) for m in want]
    # delivery updates a connected socket's SO_INCOMING_CPU: the same on both sides
    assert [(m.name, m.incoming_cpu) for m in bulk] == [(m.name, m.incoming_cpu) for m in one]


def test_deliver_many_refuses_mismatched_lengths_and_bad_endpoints() -> None:
    port = Port(seed=1)
    port.bind("a", ("0.0.0.0", 4433))
    calls: list[Callable[[], object]] = [
        lambda: port.deliver_many([("127.0.0.1", 1)], []),
        lambda: port.deliver_many([("127.0.0.1", 1)], [("::1", 4433)]),
        lambda: port.deliver_many([("127.0.0.1", 0)], [("127.0.0.1", 4433)]),
        lambda: port.deliver_many("abc", [("127.0.0.1", 4433)]),  # type: ignore[arg-type]
        lambda: port.deliver_many([("127.0.0.1", 1)], [("127.0.0.1", 4433)], payloads=[]),
    ]
    for call in calls:
        with pytest.raises(SidkitError):
            call()
    g = Group()
    g.join("x")
    for bad in ([2**32], [-1], ["h"], [1.5], "abc", [[1]]):
        with pytest.raises(SidkitError):
            g.select_many(bad)


# --- secrets ----------------------------------------------------------------------------------


def test_secrets_are_random_unless_given_and_reproducible_from_a_seed() -> None:
    assert Group().initval != Group().initval or Group().initval != Group().initval
    assert (Group(seed=4).initval, Group(seed=4).ipv6_hash_secret) == (
        Group(seed=4).initval,
        Group(seed=4).ipv6_hash_secret,
    )
    assert (Port(seed=4).initval, Port(seed=4).addr_secret) == (
        Port(seed=4).initval,
        Port(seed=4).addr_secret,
    )
    assert Group(seed=4).initval != Group(seed=5).initval
    assert Group(initval=7, ipv6_hash_secret=8, seed=4).initval == 7
    r = random.Random(3)
    assert Port(seed=r).initval != Port(seed=r).initval  # drawn one after the other
    with pytest.raises(SidkitError):
        Group(initval=2**32)
    with pytest.raises(SidkitError):
        Port(seed="x")  # type: ignore[arg-type]


def test_group_and_port_hash_through_one_function_and_never_assume_a_zero_secret() -> None:
    g = Group("6.18", initval=11, ipv6_hash_secret=22)
    p = Port("6.18", initval=11, addr_secret=22)
    v6 = ("2001:db8::1", 4433, "2001:db8::9", 5000)
    v4 = ("10.0.0.1", 4433, "192.0.2.7", 5000)
    assert g.flow_hash(*v6) == p.flow_hash(*v6) == udp6_ehashfn(*v6, 11, 22)
    assert g.flow_hash(*v4) == p.flow_hash(*v4) == udp_ehashfn(*v4, 11)
    assert g.flow_hash(*v6) == udp_flow_hash(profile("6.18"), *v6, 11, 22)
    # an explicit secret wins; the group's own is used otherwise -- not 0 as before
    assert g.flow_hash(*v6, 11, 0) == udp6_ehashfn(*v6, 11, 0)
    assert g.flow_hash(*v6) != udp6_ehashfn(*v6, 11, 0)
    with pytest.raises(SidkitError, match="addr_secret"):
        udp_flow_hash(profile("6.18"), *v6, 11, None)
    # the port's groups hash with the port's secrets
    p.bind("a", ("10.0.0.1", 4433))
    group = p.group("a")
    assert group is not None and (group.initval, group.ipv6_hash_secret) == (11, 22)


def test_select_many_keeps_the_incoming_cpu_preference() -> None:
    # v6.2+: a member whose SO_INCOMING_CPU is the receiving CPU wins over the hash pick; the
    # bulk path must not take the plain reciprocal_scale shortcut then.
    g = Group("6.18", initval=1, ipv6_hash_secret=2)
    for name in "abcd":
        g.join(name)
    g.set_incoming_cpu("c", 1)
    hashes = [i * 0x10000001 for i in range(16)]
    got = g.select_many(hashes, cpu=1)
    assert [_name(m) for m in got] == [_name(g.select(h, cpu=1)) for h in hashes] == ["c"] * 16
    assert [_name(m) for m in g.select_many(hashes, cpu=0)] != ["c"] * 16
