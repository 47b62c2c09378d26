"""Port's UDP lookup checked against the kernel's own lookup code (6.1 and 6.12).

conformance/kernel/generate.py builds, per Debian linux-source tree, a program from the
kernel's text: the group code of net/core/sock_reuseport.c (as for test_reuseport_kernel.py)
plus ``compute_score``, ``udp4_lib_lookup1``, ``udp4_lib_lookup2`` and ``__udp4_lib_lookup``
from net/ipv4/udp.c, their IPv6 twins from net/ipv6/udp.c, and ``inet_lookup_reuseport`` /
``inet6_lookup_reuseport`` calling the compiled ``reuseport_select_sock``. Its driver
(conformance/kernel/udp_lookup_main.c) lays out sockets, reuseport groups and hash chains as
a script says and prints the socket the kernel's lookup returns; the flow hash is the
script's (``udp_ehashfn`` ends in a shim returning it), as Port's hash functions are checked
against the kernel elsewhere.

Hypothesis writes scenarios of Port operations -- bind, connect, disconnect, close,
SO_INCOMING_CPU on 127.0.0.1, 127.0.0.2, 0.0.0.0, ::1, :: and ::ffff:127.0.0.1 -- for
Port('6.1.192') and Port('6.12.117'). Before each datagram the test writes Port's state as a
script: every socket with the fields compute_score() reads, every group in ``socks[]`` order
with its ``incoming_cpu`` count and ``has_conns``, every secondary chain in walk order and the
primary chain; then it asks the kernel and ``Port.deliver(..., flow_hash=lambda *a: H)`` the
same question. Port's public API gives the chains, groups and members; the address fields (family,
v6only, inet_rcv_saddr, sk_v6_rcv_saddr, sk_v6_daddr) are read from its private ``_Sock``
records, as nothing public says them. A planted walk (v5.8's keep-the-pick, without the
rescore of the pick) must be caught in a scenario that sets SO_INCOMING_CPU.

Finding (now a regression test, and modelled as the eras row ``udp_lookup1``): both trees
end __udp4_lib_lookup() with udp4_lib_lookup1(), a walk of the primary chain when neither
pass found a socket. A dual-stack socket connected to [::1] has inet_rcv_saddr 127.0.0.6
(LOOPBACK4_IPV6) but sits on ::1's chain, so it receives IPv4 datagrams to 127.0.0.6 through
that fallback; Port had no fallback and said nobody does. The scenarios send to 127.0.0.6 too.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from fixtures.kernel_programs import RELEASES, release_program
from hypothesis import find, given, settings
from hypothesis import strategies as st

from sidkit.kernel import _udp_lookup
from sidkit.reuseport import Member, Port

ROOT = Path(__file__).resolve().parents[2]
PORT = 7000
#: Every secondary chain a scenario's sockets can sit on (:: shares 0.0.0.0's chain).
CHAIN_ADDRS = ("0.0.0.0", "127.0.0.1", "127.0.0.2", "127.0.0.6", "::1")
#: sk_incoming_cpu no socket has: a datagram Port.deliver is asked about with cpu=None.
NO_CPU = 4095


def _hex(addr: str) -> str:
    return ipaddress.ip_address(addr).packed.hex()


PROBE = [
    f"sock 0 4 0 {PORT} {_hex('127.0.0.1')} {_hex('::')} {_hex('0.0.0.0')} 0 {_hex('::')} close -1",
    f"chain {_hex('127.0.0.1')} {PORT} 0",
    f"primary {PORT} 0",
    f"lookup {_hex('127.0.0.2')} 1000 {_hex('127.0.0.1')} {PORT} 0 0",
    f"lookup {_hex('127.0.0.2')} 1000 {_hex('127.0.0.2')} {PORT} 0 0",
    *(f"slot {_hex(a)} {PORT}" for a in CHAIN_ADDRS),
]


def _probe(exe: Path) -> bool:
    if not exe.is_file():
        return False
    proc = subprocess.run(
        [str(exe)], input="\n".join(PROBE) + "\n", capture_output=True, text=True, check=False
    )
    out = proc.stdout.splitlines()
    # the chains of CHAIN_ADDRS must lie in distinct hslot2s (Port models no collisions)
    return proc.returncode == 0 and out[:2] == ["0", "-"] and len(set(out[2:])) == len(CHAIN_ADDRS)


def kernel_program(release: str) -> Path:
    return release_program("udp_lookup", release, _probe)


# --- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: Literal["bind", "connect", "disconnect", "close", "cpu", "send"]
    pick: int = 0  # which open socket (modulo their number), in bind order
    addr: str = ""  # bind: the address; connect: the peer; send: the destination
    port: int = 0  # connect: the peer's port; send: the source port
    src: str = ""  # send: the source address; connect: the local address (wildcard binds)
    value: int = 0  # cpu: SO_INCOMING_CPU; send: the flow hash
    cpu: int | None = None  # send: the receiving CPU
    v6only: bool = False  # bind

    def __repr__(self) -> str:
        if self.kind == "bind":
            return f"bind({self.addr!r}{', v6only' if self.v6only else ''})"
        if self.kind == "connect":
            local = f", local={self.src!r}" if self.src else ""
            return f"connect(#{self.pick}, ({self.addr!r}, {self.port}){local})"
        if self.kind == "cpu":
            return f"cpu(#{self.pick}, {self.value})"
        if self.kind == "send":
            return (
                f"send(({self.src!r}, {self.port}) -> {self.addr!r}, cpu={self.cpu}, "
                f"hash={self.value:#x})"
            )
        return f"{self.kind}(#{self.pick})"


pick = st.integers(0, 63)
hashes = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**31, 2**32 - 1]))
cpus = st.one_of(st.integers(0, 3), st.none())
sports = st.sampled_from([1000, 1001, 2000])
#: An IPv6 socket bound to an IPv4-mapped address sits on the IPv4 address's chain (and is
#: never connected here: Port does not model IPv4-mapped peers).
MAPPED = "::ffff:127.0.0.1"
binds = st.one_of(
    st.builds(Op, st.just("bind"), addr=st.sampled_from(["127.0.0.1", "127.0.0.2", "0.0.0.0"])),
    st.builds(Op, st.just("bind"), addr=st.sampled_from(["::1", "::", MAPPED])),
    st.builds(Op, st.just("bind"), addr=st.just("::"), v6only=st.just(True)),
)
sends = st.one_of(
    st.builds(
        Op,
        st.just("send"),
        addr=st.sampled_from(["127.0.0.1", "127.0.0.2", "127.0.0.6"]),
        port=sports,
        src=st.sampled_from(["127.0.0.1", "127.0.0.2"]),
        value=hashes,
        cpu=cpus,
    ),
    st.builds(
        Op,
        st.just("send"),
        addr=st.just("::1"),
        port=sports,
        src=st.just("::1"),
        value=hashes,
        cpu=cpus,
    ),
)
operations = st.one_of(
    binds,
    binds,
    sends,
    st.builds(
        Op,
        st.just("connect"),
        pick,
        addr=st.sampled_from(["127.0.0.1", "127.0.0.2"]),  # ::1 for an IPv6 socket
        port=st.sampled_from([1000, 1001]),
        src=st.sampled_from(["", "127.0.0.2"]),  # the route's source for a wildcard bind
    ),
    st.builds(Op, st.just("disconnect"), pick),
    st.builds(Op, st.just("close"), pick),
    st.builds(Op, st.just("cpu"), pick, value=st.integers(-1, 3)),
)


def scenarios() -> st.SearchStrategy[list[Op]]:
    """A few binds, then up to 30 operations and datagrams, then a few more datagrams."""
    return st.tuples(
        st.lists(binds, min_size=1, max_size=4),
        st.lists(operations, max_size=30),
        st.lists(sends, min_size=1, max_size=6),
    ).map(lambda parts: [op for part in parts for op in part])


# --- Port's state as a script -----------------------------------------------------------------


def _sock_line(port: Port, name: Hashable) -> str:
    """The fields compute_score() and the lookup read, as Port keeps them. inet_daddr is the
    IPv4 peer of an IPv4 socket and 0 for an IPv6 one (Port's reading of the kernel: an IPv6
    peer leaves it 0)."""
    s = port._socks[name]  # private: family, v6only and addresses are not public
    m = port[name]
    v4 = s.family == "ipv4"
    peer_addr = m.peer[0] if m.peer is not None and v4 else "0.0.0.0"
    fields = [
        "4" if v4 else "6",
        str(int(s.v6only)),
        str(s.port),
        _hex(str(s.rcv4) if s.rcv4 is not None else "0.0.0.0"),
        _hex(str(s.rcv6) if s.rcv6 is not None else "::"),
        _hex(peer_addr),
        str(m.peer[1] if m.peer is not None else 0),
        _hex(str(s.v6_daddr) if s.v6_daddr is not None else "::"),
        "est" if m.connected else "close",
        str(m.incoming_cpu),
    ]
    return f"sock {name} " + " ".join(fields)


def state_script(port: Port) -> list[str]:
    names = [m.name for m in port]  # the primary chain, in walk order
    lines = ["reset", *(_sock_line(port, n) for n in names)]
    seen: set[int] = set()
    for n in names:
        g = port.group(n)
        if g is None or id(g) in seen:
            continue
        seen.add(id(g))
        members = [str(m.name) for m in g.socks]
        assert not g.closed and not g.outside, "6.1/6.12 UDP groups have neither"
        lines.append("group " + " ".join(members))
        lines.append(f"gstate {members[0]} {g.cpu_members} {int(g.has_conns)}")
    on_chains = 0
    for a in CHAIN_ADDRS:
        chain = port.chain(a, PORT)
        if chain:
            on_chains += len(chain)
            lines.append(f"chain {_hex(a)} {PORT} " + " ".join(map(str, chain)))
    assert on_chains == len(names), "a socket sits on a chain CHAIN_ADDRS does not list"
    lines.append(f"primary {PORT} " + " ".join(map(str, names)))
    return lines


# --- replay -------------------------------------------------------------------------------------


@dataclass
class Replay:
    """One scenario through Port and, datagram by datagram, through the kernel's lookup."""

    release: str
    ops: list[Op]
    lines: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    kernel: list[str] = field(default_factory=list)
    model: list[str] = field(default_factory=list)

    def disagreements(self) -> list[str]:
        return [
            f"{label}: kernel {k!r}, Port {m!r}"
            for label, k, m in zip(self.labels, self.kernel, self.model, strict=True)
            if k != m
        ]

    def report(self) -> str:
        first = next(
            i for i, (k, m) in enumerate(zip(self.kernel, self.model, strict=True)) if k != m
        )
        blocks = "\n".join(self.lines).split("reset\n")[1:]
        return (
            f"{self.release} scenario:\n  "
            + "\n  ".join(map(repr, self.ops))
            + "\ndisagreements:\n  "
            + "\n  ".join(self.disagreements())
            + "\nfirst disagreeing script:\n  reset\n  "
            + blocks[first].replace("\n", "\n  ")
        )


def replay(release: str, ops: list[Op], make: Callable[[str], Port] = Port) -> Replay:
    port = make(release)
    assert not port._hash4, "6.1 and 6.12 have no 4-tuple hash"
    r = Replay(release, ops)
    open_names: list[int] = []
    bound: dict[int, str] = {}
    for i, op in enumerate(ops):
        if op.kind == "bind":
            name = len(bound)
            port.bind(name, (op.addr, PORT), v6only=True if op.v6only else None)
            open_names.append(name)
            bound[name] = op.addr
            continue
        if op.kind == "send":
            r.lines += state_script(port)
            r.lines.append(
                f"lookup {_hex(op.src)} {op.port} {_hex(op.addr)} {PORT} "
                f"{NO_CPU if op.cpu is None else op.cpu} {op.value}"
            )
            got = port.deliver(
                (op.src, op.port), (op.addr, PORT), cpu=op.cpu, flow_hash=lambda *a, h=op.value: h
            )
            assert got is None or isinstance(got, Member)
            r.model.append("-" if got is None else str(got.name))
            r.labels.append(f"op {i} {op!r}")
            continue
        if not open_names:
            continue
        name = open_names[op.pick % len(open_names)]
        if op.kind == "close":
            port.close(name)
            open_names.remove(name)
        elif op.kind == "disconnect":
            port.disconnect(name)
        elif op.kind == "cpu":
            port.set_incoming_cpu(name, op.value)
        elif bound[name] != MAPPED:
            v4 = ":" not in bound[name]
            peer = (op.addr, op.port) if v4 else ("::1", op.port)
            port.connect(name, peer, local=op.src if v4 and op.src else None)
    if r.model:
        proc = subprocess.run(
            [str(kernel_program(release))],
            input="\n".join(r.lines) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
        r.kernel = proc.stdout.splitlines()
        assert len(r.kernel) == len(r.model), (r.lines, r.kernel)
    return r


# --- the checks ---------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
@settings(max_examples=400, deadline=None, derandomize=True)
@given(ops=scenarios())
def test_port_delivers_as_the_kernel_lookup(release: str, ops: list[Op]) -> None:
    kernel_program(release)
    r = replay(release, ops)
    assert not r.disagreements(), r.report()


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_walk_is_one_pass(release: str) -> None:
    """The driver's one-pass query: udp4_lib_lookup2() over 127.0.0.1's chain finds nothing
    for a socket bound elsewhere, and the whole lookup falls back to the wildcard pass."""
    exe = kernel_program(release)
    a1, a0, a2 = _hex("127.0.0.1"), _hex("0.0.0.0"), _hex("127.0.0.2")
    lines = [
        f"sock 0 4 0 {PORT} {a0} {_hex('::')} {a0} 0 {_hex('::')} close -1",
        f"chain {a0} {PORT} 0",
        f"primary {PORT} 0",
        f"walk {a2} 1000 {a1} {PORT} 0 0",
        f"lookup {a2} 1000 {a1} {PORT} 0 0",
    ]
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["-", "0"]


# --- pinned cases -------------------------------------------------------------------------------

#: Three sockets on [::1] in one group; #2 connects, sets SO_INCOMING_CPU 0 and disconnects
#: (keeping sk_v6_daddr, so it still scores one for [::1]); #1 connects to [::1]:1000. A
#: datagram from [::1]:1000 on CPU 0: the walk starts at #0 (score 0), the group picks #2 (the
#: member on CPU 0) and, the group having connections, rescores it: 2 (kept peer address +
#: CPU). #1 scores 2 as well (peer port and address), does not beat it, and #2 receives a
#: datagram from #1's own peer. v5.8's walk, which keeps the pick at #0's score, gives it to #1.
STALE_PEER_CPU = [
    Op("bind", addr="::1"),
    Op("bind", addr="::1"),
    Op("bind", addr="::1"),
    Op("connect", 2, addr="::1", port=1000),
    Op("cpu", 2, value=0),
    Op("disconnect", 2),
    Op("connect", 1, addr="::1", port=1000),
    Op("send", addr="::1", port=1000, src="::1", value=0, cpu=0),
]


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_rescored_pick_keeps_a_datagram_from_a_members_peer(release: str) -> None:
    kernel_program(release)
    r = replay(release, STALE_PEER_CPU)
    assert r.kernel == r.model == ["2"], (r.kernel, r.model)
    assert replay(release, STALE_PEER_CPU, _keep_pick_port).model == ["1"]


LOOPBACK4_IPV6_SEND = [
    Op("bind", addr="::"),
    Op("connect", 0, addr="::1", port=1000),
    Op("send", addr="127.0.0.6", port=1000, src="127.0.0.1", value=0, cpu=0),
]


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_kernel_falls_back_to_the_primary_chain(release: str) -> None:
    """The kernel side of the finding below: socket 0 receives through udp4_lib_lookup1()."""
    kernel_program(release)
    assert replay(release, LOOPBACK4_IPV6_SEND).kernel == ["0"]


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_primary_chain_fallback_reaches_loopback4_ipv6(release: str) -> None:
    """Regression (this harness's finding, now modelled: eras row udp_lookup1)."""
    kernel_program(release)
    r = replay(release, LOOPBACK4_IPV6_SEND)
    assert not r.disagreements(), r.report()


# --- a planted broken walk must be caught -------------------------------------------------------


def _keep_pick_port(release: str) -> Port:
    """Port with v5.8's walk: the group's pick kept at the chain socket's score."""
    p = Port(release)
    p._walk = _udp_lookup.walk_keep_pick
    return p


def _caught(release: str, ops: list[Op]) -> bool:
    return bool(replay(release, ops, _keep_pick_port).disagreements()) and not (
        replay(release, ops).disagreements()
    )


def ipv6_group_scenarios() -> st.SearchStrategy[list[Op]]:
    """Sockets on [::1] only, a few members picked often. v5.8's walk and the rescoring walk
    part only where the group's pick outscores the chain socket that asked (SO_INCOMING_CPU,
    a disconnected IPv6 member's kept peer address) and a later socket scores in between and
    answers otherwise. Without a program that takes a connected member of a group with
    connections on IPv6: an IPv4 peer field is worth 4, never in between, and a lone or
    foreign-group socket never sits between two members of one group on a chain."""
    member = st.integers(0, 3)
    bind = st.builds(Op, st.just("bind"), addr=st.just("::1"))
    send = st.builds(
        Op,
        st.just("send"),
        addr=st.just("::1"),
        port=st.sampled_from([1000, 1001]),
        src=st.just("::1"),
        value=hashes,
        cpu=st.sampled_from([0, 1]),
    )
    ops = st.one_of(
        bind,
        send,
        st.builds(
            Op, st.just("connect"), member, addr=st.just("::1"), port=st.sampled_from([1000, 1001])
        ),
        st.builds(Op, st.just("disconnect"), member),
        st.builds(Op, st.just("cpu"), member, value=st.sampled_from([0, 1])),
    )
    return st.tuples(
        st.lists(bind, min_size=2, max_size=4),
        st.lists(ops, max_size=12),
        st.lists(send, min_size=1, max_size=4),
    ).map(lambda parts: [op for part in parts for op in part])


@pytest.mark.oracle
def test_planted_keep_pick_walk_is_caught() -> None:
    """The random scenarios above rarely reach a layout where the two walks part; this search
    aims at them (and finds STALE_PEER_CPU's shape)."""
    release = "6.12.117"
    kernel_program(release)
    ops = find(
        ipv6_group_scenarios(),
        lambda ops: _caught(release, ops),
        settings=settings(max_examples=3000, deadline=None, derandomize=True, database=None),
    )
    assert any(op.kind == "cpu" for op in ops), ops
