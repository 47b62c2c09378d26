"""sidkit.reuseport.Port without a live kernel: its input checks, the eras it refuses, and
its consistency with Group where the two must agree.

Port's claim of identity with the kernel is held by tests/reuseport/test_live_port.py (the
running kernel generates the scenarios); this file checks what needs no kernel.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError, UnknownKernelError
from sidkit.hashing import reciprocal_scale
from sidkit.reuseport import DROP, Group, Member, Port
from sidkit.steering import FixedOffset, SteeringPolicy

IV = 0x1234ABCD


def _name(m: object) -> object:
    return m.name if isinstance(m, Member) else m


@pytest.mark.parametrize("release", ["3.10", "4.4", "4.19", "4.19.136"])
def test_releases_before_the_two_pass_lookup_are_refused(release: str) -> None:
    with pytest.raises(UnknownKernelError, match="does not model the UDP lookup"):
        Port(release)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.bind("a", ("0.0.0.0", 4433)), "already bound"),
        (lambda p: p.bind("b", ("nonsense", 4433)), "not an IPv4 or IPv6 address"),
        (lambda p: p.bind("b", ("0.0.0.0", 0)), "port must be 1..65535"),
        (lambda p: p.bind("b", ("0.0.0.0", 70000)), "port must be 1..65535"),
        (lambda p: p.bind("b", "0.0.0.0:4433"), r"\(address, port\) pair"),
        (lambda p: p.bind("b", ("0.0.0.0", 4433), v6only=True), "IPv6 sockets only"),
        (lambda p: p.bind("b", ("::ffff:1.2.3.4", 4433), v6only=True), "IPv4-mapped"),
        (lambda p: p.close("zz"), "no socket named"),
        (lambda p: p.connect("a", ("::1", 5)), "peer ::1 is not"),
        (lambda p: p.connect("a", ("192.0.2.1", 5)), "pass local="),
        (lambda p: p.connect("a", ("192.0.2.1", 5), local="::1"), "not of the peer's family"),
        (lambda p: p.set_incoming_cpu("a", -2), "cpu must be"),
        (lambda p: p.set_incoming_cpu("a", True), "cpu must be"),
        # no initval means the port's own, random one (issue 18); a bad one is refused
        (lambda p: p.deliver(("127.0.0.1", 1), ("127.0.0.1", 4433), initval=2**32), "initval"),
        (lambda p: p.deliver(("::1", 1), ("127.0.0.1", 4433), initval=1), "different families"),
        (lambda p: p.deliver(("::1", 1), ("::ffff:127.0.0.1", 4433), initval=1), "IPv4-mapped"),
        (lambda p: p.deliver(("127.0.0.1", 1), ("127.0.0.1", 4433), initval=1, cpu=-1), "cpu"),
        (lambda p: p.flow_hash("::1", 4433, "::1", 1, IV, -1), "ipv6_hash_secret"),
        (lambda p: Port(addr_secret=2**32), "addr_secret"),
        (lambda p: Port(family="ipx"), "family must be"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_a_clear_sidkit_error(call: object, message: str) -> None:
    port = Port("6.18")
    port.bind("a", ("0.0.0.0", 4433))
    with pytest.raises(SidkitError, match=message) as info:
        call(port)  # type: ignore[operator]
    assert isinstance(info.value, ValueError)


def test_attach_needs_a_group() -> None:
    """SO_ATTACH_REUSEPORT_* on a bound socket in no group is EINVAL in the kernel."""
    port = Port("6.18")
    port.bind("a", ("127.0.0.1", 4433))
    port.connect("a", ("127.0.0.9", 5))  # v6.13+: a connected socket leaves its group
    with pytest.raises(SidkitError, match="in no reuseport group"):
        port.attach("a", SteeringPolicy(FixedOffset(0, 4), "modulo", 2))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 8),
    closes=st.lists(st.integers(0, 7), max_size=5),
    src=st.tuples(st.sampled_from(["127.0.0.5", "10.1.2.3", "192.0.2.77"]), st.integers(1, 65535)),
    wildcard=st.booleans(),
    release=st.sampled_from(["5.0", "5.4", "5.8", "6.1.192", "6.12.117", "6.18"]),
)
def test_one_group_without_connections_selects_as_group_does(
    n: int, closes: list[int], src: tuple[str, int], wildcard: bool, release: str
) -> None:
    """A port with one group and nothing connected is the group: the receiving member is
    ``socks[reciprocal_scale(hash, n)]`` with the hash taken at the pass's address (the
    wildcard for a wildcard group -- the mistake sidkit once made was the destination)."""
    addr = "0.0.0.0" if wildcard else "127.0.0.1"
    port, group = Port(release), Group(release)
    for i in range(n):
        port.bind(i, (addr, 4433))
        group.join(i)
    for c in closes:
        if c < n and c in [m.name for m in group.socks]:
            port.close(c)
            group.close(c)
    if not group.socks:
        return
    got = port.deliver(src, ("127.0.0.1", 4433), initval=IV)
    h = port.flow_hash(addr, 4433, src[0], src[1], IV)
    assert _name(got) == group.socks[reciprocal_scale(h, len(group.socks))].name
    assert [m.name for m in port.group(group.socks[0].name).socks] == [  # type: ignore[union-attr]
        m.name for m in group.socks
    ]


def test_specific_bind_wins_over_the_wildcard_and_v4_over_dual_stack() -> None:
    port = Port("6.18")
    port.bind("dual", ("::", 4433))
    port.bind("wild", ("0.0.0.0", 4433))
    port.bind("v6only", ("::", 4433), v6only=True)
    port.bind("spec", ("127.0.0.2", 4433))

    def to(dst: str) -> object:
        return _name(port.deliver(("127.0.0.9", 1000), (dst, 4433), initval=IV))

    assert to("127.0.0.2") == "spec"
    assert to("127.0.0.1") == "wild"  # IPv4 scores 2, dual-stack 1
    port.close("wild")
    assert to("127.0.0.1") == "dual"  # the v6-only socket never sees IPv4
    assert _name(port.deliver(("::1", 1000), ("::1", 4433), initval=IV, addr_secret=7)) in (
        "dual",
        "v6only",
    )


def test_the_disconnected_socket_takes_the_port() -> None:
    """6.18, measured (docs/sharp-edges.rst): the newest member connects and disconnects;
    no group, found first on the chain, it receives every datagram."""
    port = Port("6.18")
    for n in "abc":
        port.bind(n, ("127.0.0.1", 4433))
    port.connect("c", ("127.0.0.9", 5))
    port.disconnect("c")
    got = {
        _name(port.deliver(("10.0.0.1", p), ("127.0.0.1", 4433), initval=IV)) for p in range(1, 200)
    }
    assert got == {"c"}
    assert port.group("c") is None


def test_a_program_that_drops_ends_the_lookup() -> None:
    port = Port("6.18")
    port.bind("a", ("127.0.0.1", 4433))
    port.bind("w", ("0.0.0.0", 4433))
    port.attach(
        "a", SteeringPolicy(FixedOffset(0, 4), "modulo", 2), backend="ebpf", on_no_sid="drop"
    )
    assert port.deliver(("10.0.0.1", 9), ("127.0.0.1", 4433), initval=IV, payload=b"") is DROP


OPS = st.lists(
    st.tuples(
        st.sampled_from(["bind", "close", "connect", "disconnect", "cpu", "deliver"]),
        st.integers(0, 5),
        st.sampled_from(["0.0.0.0", "127.0.0.1", "::", "::1", "127.0.0.2"]),
        st.integers(-3, 70000),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, release=st.sampled_from(["5.0", "5.4", "5.5", "5.8", "6.1.192", "6.18"]))
def test_any_sequence_of_operations_works_or_raises_a_sidkit_error(
    ops: list[tuple[str, int, str, int]], release: str
) -> None:
    """Fuzz: arbitrary operations on arbitrary names either work or raise sidkit's own
    error -- never an exception from deep inside."""
    port = Port(release)
    for op, n, addr, num in ops:
        try:
            if op == "bind":
                port.bind(n, (addr, num), v6only=(num % 2 == 0) if ":" in addr else None)
            elif op == "close":
                port.close(n)
            elif op == "connect":
                port.connect(n, ("127.0.0.9" if ":" not in addr else "::1", num))
            elif op == "disconnect":
                port.disconnect(n)
            elif op == "cpu":
                port.set_incoming_cpu(n, num)
            else:
                v6 = ":" in addr
                dst = ("::1" if v6 else "127.0.0.1", abs(num) % 65535 + 1)
                src = ("::1" if v6 else "127.0.0.9", 7)
                port.deliver(src, dst, initval=IV, addr_secret=5, cpu=abs(num) % 2)
        except SidkitError:
            pass
