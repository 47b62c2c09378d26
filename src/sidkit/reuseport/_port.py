# Strategy: which socket receives a datagram depends on every UDP socket on its port, not on
# one group: specific and wildcard binds, lone sockets, connected ones, IPv4, IPv6 and
# dual-stack sockets, and the order of the kernel's hash chains. Port keeps exactly the state
# the lookup reads -- the primary chain (all sockets of the port), one secondary chain per
# (local address, port), the 4-tuple hash of connected sockets (v6.13+), each socket's
# reuseport group -- and changes it the way bind, connect, disconnect, close and setsockopt
# change it in the kernel (net/ipv4/udp.c udp_lib_get_port, udp_reuseport_add_sock,
# udp_lib_rehash, __udp_disconnect; net/core/sock_reuseport.c). deliver() is
# __udp4_lib_lookup / __udp6_lib_lookup: the 4-tuple hash, then the pass for the destination
# address, then the wildcard pass -- whose reuseport hash uses the wildcard address, not the
# destination. The chain walk of each era comes from the eras table (sidkit.kernel), as the
# group's selection form does through Group. tests/reuseport/test_live_port.py holds this
# model to the running kernel with scenarios Hypothesis generates from real socket operations.
"""A whole UDP port as the kernel keeps it: which socket receives each datagram."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Final, Literal

import attrs

from sidkit._errors import InputValueError, UnknownKernelError
from sidkit._validate import check_uint
from sidkit.bpf import cbpf
from sidkit.kernel import (
    LATEST,
    KernelProfile,
    KernelVersion,
    Seed,
    profile,
    secret_source,
    udp_flow_hash,
    udp_flow_hash_many,
)
from sidkit.reuseport._group import DROP, Group, Member, _Drop
from sidkit.steering import SteeringPolicy

__all__ = ["Port"]

Family = Literal["ipv4", "ipv6"]
#: The IPv4 address an IPv6 socket bound or connected to a non-mapped IPv6 address shows the
#: IPv4 lookup (include/net/ipv6.h ``LOOPBACK4_IPV6``, 127.0.0.6).
LOOPBACK4_IPV6: Final = ipaddress.IPv4Address("127.0.0.6")
_ANY4: Final = ipaddress.IPv4Address(0)
_ANY6: Final = ipaddress.IPv6Address(0)
FlowHash = Callable[[str, int, str, int], int]
#: A 4-tuple hash entry no datagram matches: udp_rehash4() moved it to the slot of a
#: disconnected wildcard socket's 4-tuple (address and peer zero), "garbage in the chain".
_STALE4: Final = (_ANY4, 0)

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.define(eq=False)
class _Sock:
    """One socket of the port: the fields compute_score() and the rehash code read."""

    member: Member
    family: Family
    port: int
    v6only: bool
    rcv4: ipaddress.IPv4Address | None  # inet_rcv_saddr; None when ipv6_only_sock()
    rcv6: ipaddress.IPv6Address | None  # sk_v6_rcv_saddr (IPv6 sockets)
    bindaddr_lock: bool  # bound to a specific address (SOCK_BINDADDR_LOCK)
    peer: tuple[_IP, int] | None = None
    group: Group | None = None
    chain: tuple[object, int] | None = None  # the secondary chain it sits on
    hash4: tuple[_IP, int] | None = None  # the peer its 4-tuple hash entry was made for
    v6_daddr: ipaddress.IPv6Address | None = None  # sk_v6_daddr: disconnect leaves it set

    @property
    def established(self) -> bool:
        return self.peer is not None

    def key(self) -> tuple[object, int]:
        """The secondary chain its local address hashes to."""
        return _chain_key(self.rcv4 if self.family == "ipv4" else self.rcv6, self.port)


def _chain_key(ip: _IP | None, port: int) -> tuple[object, int]:
    """A secondary chain: ipv6_portaddr_hash() maps ``::`` and IPv4-mapped addresses onto the
    IPv4 hash, so those IPv6 sockets share chains with IPv4 sockets."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip == _ANY6:
            return (_ANY4, port)
        if ip.ipv4_mapped is not None:
            return (ip.ipv4_mapped, port)
    return (ip, port)


def _addr(text: object, what: str) -> _IP:
    if not isinstance(text, str):
        raise InputValueError(f"{what} must be an address string, got {type(text).__name__}")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputValueError(f"{what}: {text!r} is not an IPv4 or IPv6 address") from None


def _endpoint(value: object, what: str) -> tuple[_IP, int]:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise InputValueError(f"{what} must be an (address, port) pair, got {value!r}")
    addr, port = value
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
        raise InputValueError(f"{what}: port must be 1..65535, got {port!r}")
    return _addr(addr, what), port


class Port:
    """Every UDP socket of a machine's port space, as one kernel release keeps them.

    Replay what applications do -- :meth:`bind`, :meth:`connect`, :meth:`disconnect`,
    :meth:`close`, :meth:`set_incoming_cpu`, :meth:`attach` -- and ask :meth:`deliver` which
    socket receives a datagram. All sockets have SO_REUSEPORT set (as servers that share a
    port do). *family*, when given, restricts binds to that socket family.

    Modelled: releases from v5.0 on (the two-pass secondary-hash lookup); earlier kernels
    walked the primary chain for small ports and raise :class:`~sidkit.UnknownKernelError`
    (use :class:`~sidkit.reuseport.Group` for the selection inside one group). Not modelled:
    SO_BINDTODEVICE, sk_lookup BPF programs, two addresses whose secondary hash slots collide
    (a socket that rehashes between them keeps its chain position; the chance is about one
    in ``udp_hash_entries`` per address pair and namespace).

    The namespace's secrets -- *initval* (``udp_ehash_secret`` + ``net_hash_mix``, for both
    families; give a recorded ``ctx->hash`` through ``deliver(flow_hash=...)`` where the two
    differ) and *addr_secret* (``udp_ipv6_hash_secret``) -- are random unless given, as the
    kernel's are, drawn from the operating system or from *seed*; :meth:`deliver` and
    :meth:`flow_hash` use them when a call passes none.
    """

    def __init__(
        self,
        kernel: str | KernelVersion | KernelProfile = LATEST,
        *,
        family: Literal["ipv4", "ipv6"] | None = None,
        initval: int | None = None,
        addr_secret: int | None = None,
        seed: Seed = None,
    ) -> None:
        self.profile = kernel if isinstance(kernel, KernelProfile) else profile(kernel)
        draw = secret_source(seed, "reuseport secrets")
        #: The namespace's ``udp_ehash_secret + net_hash_mix(net)``: given, or drawn.
        self.initval = check_uint(
            draw.getrandbits(32) if initval is None else initval, 32, "initval"
        )
        #: ``udp_ipv6_hash_secret``: given, or drawn.
        self.addr_secret = check_uint(
            draw.getrandbits(32) if addr_secret is None else addr_secret, 32, "addr_secret"
        )
        lookup = self.profile.era("udp_lookup2")
        if lookup.impl is None:
            raise UnknownKernelError(
                f"sidkit.reuseport.Port does not model the UDP lookup of {self.profile}: "
                f"{lookup.evidence}"
            )
        if family not in (None, "ipv4", "ipv6"):
            raise InputValueError(f"family must be 'ipv4' or 'ipv6', got {family!r}")
        self.family = family
        self._walk: Callable[..., object | None] = lookup.impl
        self._walk_primary: Callable[..., _Sock | None] | None = self.profile.era(
            "udp_lookup1"
        ).impl
        self._hash4 = self.profile.era("reuseport_udp_connect").variant == "leaves-group"
        disconnect = self.profile.era("udp_disconnect").impl
        assert disconnect is not None  # every release from v5.0 has a disconnect form
        self._disconnect_rehashes: Callable[[bool], bool] = disconnect
        self._socks: dict[Hashable, _Sock] = {}
        self._by_member: dict[int, _Sock] = {}
        self._primary: list[_Sock] = []  # udp_hslot of the port, in walk order
        self._chains: dict[tuple[object, int], list[_Sock]] = {}  # hslot2, in walk order
        self._hashed4: list[_Sock] = []  # hslot4 entries, newest first (v6.13+)

    # --- what applications do ------------------------------------------------------------------

    def bind(self, name: Hashable, addr: tuple[str, int], *, v6only: bool | None = None) -> Member:
        """``socket()`` + SO_REUSEPORT + ``bind(addr)``: join the group of the first socket on
        the port that can share it (``udp_reuseport_add_sock``), or start a group.

        IPv4 addresses make an AF_INET socket, IPv6 ones an AF_INET6 socket; *v6only* is
        IPV6_V6ONLY (default off, as ``net.ipv6.bindv6only`` is). An IPv6 socket bound to
        ``::`` without v6only is dual-stack and receives IPv4 too; one bound to a specific
        non-mapped address becomes v6-only (``__inet6_bind``).
        """
        if name in self._socks:
            raise InputValueError(f"a socket named {name!r} is already bound")
        ip, port = _endpoint(addr, "bind address")
        family: Family = "ipv4" if ip.version == 4 else "ipv6"
        if self.family is not None and family != self.family:
            raise InputValueError(f"this port holds {self.family} sockets; {ip} is {family}")
        if family == "ipv4" and v6only is not None:
            raise InputValueError("v6only applies to IPv6 sockets only")
        if isinstance(ip, ipaddress.IPv4Address):
            sock = _Sock(Member(name), "ipv4", port, False, ip, None, ip != _ANY4)
        else:
            mapped = ip.ipv4_mapped
            only = bool(v6only)
            if mapped is not None and only:
                raise InputValueError("a v6only socket cannot bind an IPv4-mapped address")
            if ip != _ANY6 and mapped is None:
                only = True  # __inet6_bind: a specific IPv6 address makes the socket v6-only
            rcv4: ipaddress.IPv4Address | None
            rcv4 = None if only else (mapped if mapped is not None else _ANY4)
            sock = _Sock(Member(name), "ipv6", port, only, rcv4, ip, ip != _ANY6)
        self._join_group(sock)
        self._socks[name] = sock
        self._by_member[id(sock.member)] = sock
        self._insert(self._primary, sock)
        sock.chain = sock.key()
        self._insert(self._chains.setdefault(sock.chain, []), sock)
        return sock.member

    def _insert(self, chain: list[_Sock], sock: _Sock) -> None:
        # udp_lib_get_port / sk_add_node_rcu: head insertion, except IPv6 reuseport sockets,
        # which go to the tail so that IPv4 sockets come first (v4 and dual-stack share chains)
        if sock.family == "ipv6":
            chain.append(sock)
        else:
            chain.insert(0, sock)

    def _join_group(self, sock: _Sock) -> None:
        for other in self._primary:
            if (
                other.port == sock.port
                and other.family == sock.family
                and other.v6only == sock.v6only
                and (other.rcv4, other.rcv6) == (sock.rcv4, sock.rcv6)
            ):
                if other.group is None:  # reuseport_add_sock() gives sk2 a group first
                    other.group = self._new_group()
                    other.group.join(other.member)
                sock.group = other.group
                sock.group.join(sock.member)
                return
        sock.group = self._new_group()
        sock.group.join(sock.member)

    def _new_group(self) -> Group:
        """A group of this port's namespace: it hashes with the port's secrets."""
        return Group(self.profile, initval=self.initval, ipv6_hash_secret=self.addr_secret)

    def _sock(self, name: Hashable) -> _Sock:
        try:
            return self._socks[name]
        except (KeyError, TypeError):
            raise InputValueError(f"no socket named {name!r} on this port") from None

    def _leave_group(self, sock: _Sock) -> None:
        if sock.group is not None:
            sock.group.leave(sock.member)
            sock.group = None

    def _rehash(self, sock: _Sock) -> None:
        # udp_lib_rehash(): a socket with a reuseport group is always detached from it; the
        # socket moves to the head of its new secondary chain when the chain changes
        self._leave_group(sock)
        if sock.key() != sock.chain:
            assert sock.chain is not None
            self._chains[sock.chain].remove(sock)
            sock.chain = sock.key()
            self._chains.setdefault(sock.chain, []).insert(0, sock)

    def connect(self, name: Hashable, peer: tuple[str, int], *, local: str | None = None) -> None:
        """``connect(peer)``. A socket bound to a wildcard address takes the source address
        of the route to *peer* as its own and is rehashed, which detaches it from its group;
        *local* is that address (default: ``127.0.0.1``/``::1`` for loopback peers). From
        v6.13 a connected socket enters the 4-tuple hash and leaves its group anyway; before,
        a socket bound to a specific address stays in its group and marks it as having
        connections.
        """
        sock = self._sock(name)
        ip, port = _endpoint(peer, "peer")
        if (ip.version == 4) != (sock.family == "ipv4"):
            raise InputValueError(
                f"socket {name!r} is {sock.family}; peer {ip} is not (IPv4-mapped peers of "
                "IPv6 sockets are not modelled)"
            )
        rehashed = not sock.bindaddr_lock and sock.peer is None
        if rehashed:
            src = self._route_source(ip, local)
            if isinstance(src, ipaddress.IPv4Address):
                sock.rcv4 = src
            else:
                sock.rcv6, sock.rcv4 = src, (None if sock.v6only else LOOPBACK4_IPV6)
            self._rehash(sock)
        sock.peer = (ip, port)
        if isinstance(ip, ipaddress.IPv6Address):
            sock.v6_daddr = ip
        sock.member.connected, sock.member.peer = True, (str(ip), port)
        if sock.group is not None:
            sock.group.has_conns = True  # reuseport_has_conns_set()
        if self._hash4 and sock.hash4 is None:
            # udp_lib_hash4(): detach from the group, enter the 4-tuple hash. It returns
            # early for a socket hashed before, so a second connect neither detaches the
            # socket from a group it joined since (a new socket paired with it) nor moves
            # the entry from the first peer's 4-tuple, where lookup4 no longer finds it
            # (the tuple must match the entry and the socket's current peer). Measured on
            # 6.18 by tests/reuseport/test_live_port.py.
            self._leave_group(sock)
            sock.hash4 = sock.peer
            self._hashed4.insert(0, sock)
        elif self._hash4 and rehashed:
            # a wildcard socket connecting again after a disconnect is rehashed first, and
            # udp_rehash4() moves its entry to the new 4-tuple: found again (measured)
            sock.hash4 = sock.peer
            self._hashed4.remove(sock)
            self._hashed4.insert(0, sock)

    @staticmethod
    def _route_source(peer: _IP, local: str | None) -> _IP:
        if local is not None:
            src = _addr(local, "local")
            if src.version != peer.version:
                raise InputValueError(f"local address {src} is not of the peer's family")
            return src
        if peer.is_loopback:
            return ipaddress.ip_address("127.0.0.1" if peer.version == 4 else "::1")
        raise InputValueError(
            f"a wildcard-bound socket connecting to {peer} takes the source address of the "
            "route to it: pass local=<that address>"
        )

    def disconnect(self, name: Hashable) -> None:
        """``connect(AF_UNSPEC)`` (``__udp_disconnect``): the socket forgets its peer; one
        bound to a wildcard address gets it back and (v5.6+, 5.4.24+) is rehashed to the
        wildcard chain's head; before that it stayed on the chain of its old address, where
        no lookup finds it. No era puts it back into a group: it stays a lone socket.

        ``__udp_disconnect()`` clears the IPv4 peer address and the port but not an IPv6
        socket's ``sk_v6_daddr``: a disconnected IPv6 socket still scores one more for
        datagrams from its old peer's address, refuses those from any other address, and
        keeps updating its SO_INCOMING_CPU from what it receives (measured on 6.18; the same
        code in 6.1 and 6.12)."""
        sock = self._sock(name)
        sock.peer = None
        sock.member.connected, sock.member.peer = False, None
        if not sock.bindaddr_lock:
            if sock.family == "ipv4":
                sock.rcv4 = _ANY4
            else:
                sock.rcv6, sock.rcv4 = _ANY6, (None if sock.v6only else _ANY4)
            if self._disconnect_rehashes(sock.bindaddr_lock):
                self._rehash(sock)
                if sock.hash4 is not None:
                    sock.hash4 = _STALE4

    def close(self, name: Hashable) -> None:
        """``close()``: the socket leaves its group (swap-remove) and every chain."""
        sock = self._sock(name)
        if sock.group is not None:
            sock.group.close(sock.member)
            sock.group = None
        sock.member.open = False
        self._primary.remove(sock)
        assert sock.chain is not None
        self._chains[sock.chain].remove(sock)
        if sock in self._hashed4:
            self._hashed4.remove(sock)
        del self._socks[name]
        del self._by_member[id(sock.member)]

    def set_incoming_cpu(self, name: Hashable, cpu: int) -> None:
        """SO_INCOMING_CPU (-1 clears it): the socket scores one more on that CPU, and its
        group prefers it there (v6.2+)."""
        if isinstance(cpu, bool) or not isinstance(cpu, int) or not -1 <= cpu < 1 << 16:
            raise InputValueError(f"cpu must be -1..65535, got {cpu!r}")
        sock = self._sock(name)
        if sock.group is not None:
            sock.group.set_incoming_cpu(sock.member, cpu)
        else:
            sock.member.incoming_cpu = cpu

    def attach(
        self,
        name: Hashable,
        program: SteeringPolicy | Sequence[cbpf.SockFilter],
        *,
        backend: Literal["cbpf", "ebpf"] = "cbpf",
        on_no_sid: Literal["pass", "drop"] = "pass",
    ) -> None:
        """SO_ATTACH_REUSEPORT_CBPF/EBPF on socket *name*: the program serves its group.

        A :class:`~sidkit.steering.SteeringPolicy` is compiled for *backend* (the eBPF map
        holds the group's members of this moment); a cBPF program is attached as given.
        """
        group = self._group_of(name, "attach a program")
        if isinstance(program, SteeringPolicy):
            group.attach_policy(program, backend, on_no_sid=on_no_sid)
        else:
            group.attach_cbpf(program)

    def detach(self, name: Hashable) -> None:
        """SO_DETACH_REUSEPORT_BPF on socket *name*: its group selects by hash again."""
        self._group_of(name, "detach a program").detach()

    def _group_of(self, name: Hashable, what: str) -> Group:
        group = self._sock(name).group
        if group is None:
            raise InputValueError(f"socket {name!r} is in no reuseport group: cannot {what}")
        return group

    # --- inspection ----------------------------------------------------------------------------

    def __getitem__(self, name: Hashable) -> Member:
        return self._sock(name).member

    def __iter__(self) -> Iterator[Member]:
        return (s.member for s in self._primary)

    def group(self, name: Hashable) -> Group | None:
        """The reuseport group socket *name* is in (None for a lone socket)."""
        return self._sock(name).group

    def chain(self, addr: str, port: int) -> list[Hashable]:
        """Names of the sockets on the secondary chain of ``(addr, port)``, in walk order."""
        ip, port = _endpoint((addr, port), "chain address")
        return [s.member.name for s in self._chains.get(_chain_key(ip, port), [])]

    # --- the kernel's choice --------------------------------------------------------------------

    def flow_hash(
        self,
        laddr: str,
        lport: int,
        faddr: str,
        fport: int,
        initval: int | None = None,
        addr_secret: int | None = None,
    ) -> int:
        """``udp_ehashfn``/``udp6_ehashfn`` of this release for a lookup pass at *laddr*
        (:func:`sidkit.kernel.udp_flow_hash`).

        *initval* is the namespace's initval for the datagram's family
        (``udp_ehash_secret``/``udp6_ehash_secret`` + ``net_hash_mix``); IPv6 also hashes
        with *addr_secret* (``udp_ipv6_hash_secret``). Each defaults to the port's own
        (:attr:`initval`, :attr:`addr_secret`: random unless given), never to zero."""
        return udp_flow_hash(
            self.profile,
            laddr,
            lport,
            faddr,
            fport,
            self.initval if initval is None else initval,
            self.addr_secret if addr_secret is None else addr_secret,
        )

    def deliver(
        self,
        src: tuple[str, int],
        dst: tuple[str, int],
        *,
        initval: int | None = None,
        addr_secret: int | None = None,
        cpu: int | None = None,
        payload: bytes = b"",
        flow_hash: FlowHash | None = None,
    ) -> Member | _Drop | None:
        """The socket that receives a datagram from *src* to *dst* (``__udp4_lib_lookup`` /
        ``__udp6_lib_lookup``), None when none does (ICMP port unreachable), or
        :data:`~sidkit.reuseport.DROP` when an SK_REUSEPORT program dropped it (the sender
        sees the same port unreachable).

        *cpu* is the receiving CPU (compute_score adds one for a socket whose SO_INCOMING_CPU
        is that CPU; None: no socket's). *payload* is what an attached program reads.
        *flow_hash* ``(laddr, lport, faddr, fport) -> hash`` replaces the computed hash (a
        recorded ``ctx->hash``, say); otherwise :meth:`flow_hash` with *initval* and
        *addr_secret* (default: the port's own). As in the kernel, a connected socket that
        receives takes *cpu* as its ``sk_incoming_cpu``.
        """
        sip, sport = _endpoint(src, "src")
        dip, dport = _endpoint(dst, "dst")
        if sip.version != dip.version:
            raise InputValueError(f"src {sip} and dst {dip} are of different families")
        if isinstance(dip, ipaddress.IPv6Address) and dip.ipv4_mapped is not None:
            raise InputValueError("an IPv4-mapped destination is an IPv4 datagram: use IPv4")
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0):
            raise InputValueError(f"cpu must be a CPU number or None, got {cpu!r}")
        if flow_hash is None:
            iv, secret = initval, addr_secret

            def computed(laddr: str, lport: int, faddr: str, fport: int) -> int:
                return self.flow_hash(laddr, lport, faddr, fport, iv, secret)

            flow_hash = computed
        return self._receive(sip, sport, dip, dport, cpu, payload, flow_hash)

    def _receive(
        self,
        sip: _IP,
        sport: int,
        dip: _IP,
        dport: int,
        cpu: int | None,
        payload: bytes,
        flow_hash: FlowHash,
    ) -> Member | _Drop | None:
        """The lookup and the receiving socket's CPU update, for checked arguments."""
        chosen = self._lookup(sip, sport, dip, dport, cpu, payload, flow_hash)
        if isinstance(chosen, _Sock):
            # __udp_queue_rcv_skb(): a socket with a peer address takes the receiving CPU as
            # its sk_incoming_cpu -- IPv4: inet_daddr; IPv6: sk_v6_daddr, kept by disconnect
            if dip.version == 4:
                updates = chosen.family == "ipv4" and chosen.peer is not None
            else:
                updates = chosen.v6_daddr is not None and chosen.v6_daddr != _ANY6
            if updates and cpu is not None:
                chosen.member.incoming_cpu = cpu
            return chosen.member
        return chosen

    def deliver_many(
        self,
        srcs: Sequence[tuple[str, int]],
        dsts: Sequence[tuple[str, int]],
        *,
        initval: int | None = None,
        addr_secret: int | None = None,
        cpu: int | None = None,
        payloads: Sequence[bytes] | None = None,
    ) -> list[Member | _Drop | None]:
        """:meth:`deliver` for many datagrams in order: ``[port.deliver(s, d, initval=...,
        addr_secret=..., cpu=cpu, payload=p) for s, d, p in ...]``, the same sockets (and the
        same ``sk_incoming_cpu`` updates, which is why the order matters).

        The flow hashes of both lookup passes (at the destination address and at the
        wildcard) are computed first for all datagrams with :mod:`sidkit.hashing.batch`; the
        lookups then run one by one. Every datagram is checked before the first is delivered,
        so a bad one anywhere changes nothing. Needs numpy (``sidkit[bulk]``).
        """
        if isinstance(srcs, str | bytes) or not isinstance(srcs, Sequence):
            raise InputValueError("srcs must be a sequence of (address, port) pairs")
        if isinstance(dsts, str | bytes) or not isinstance(dsts, Sequence):
            raise InputValueError("dsts must be a sequence of (address, port) pairs")
        n = len(srcs)
        if len(dsts) != n:
            raise InputValueError(f"srcs and dsts must be as long: {n} and {len(dsts)}")
        if payloads is not None and (isinstance(payloads, bytes | bytearray) or len(payloads) != n):
            raise InputValueError(f"payloads must be None or one per datagram ({n})")
        parsed = []
        for i in range(n):
            sip, sport = _endpoint(srcs[i], f"srcs[{i}]")
            dip, dport = _endpoint(dsts[i], f"dsts[{i}]")
            if sip.version != dip.version:
                raise InputValueError(f"srcs[{i}] and dsts[{i}] are of different families")
            if isinstance(dip, ipaddress.IPv6Address) and dip.ipv4_mapped is not None:
                raise InputValueError(f"dsts[{i}] is IPv4-mapped: an IPv4 datagram, use IPv4")
            parsed.append((sip, sport, dip, dport))
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0):
            raise InputValueError(f"cpu must be a CPU number or None, got {cpu!r}")
        if payloads is not None:
            for i, p in enumerate(payloads):
                if not isinstance(p, bytes | bytearray | memoryview):
                    raise InputValueError(f"payloads[{i}] must be bytes, not {type(p).__name__}")
        iv = self.initval if initval is None else check_uint(initval, 32, "initval")
        secret = (
            self.addr_secret if addr_secret is None else check_uint(addr_secret, 32, "addr_secret")
        )
        at_dst = [0] * n
        at_any = [0] * n
        for version, width, any_ip in ((4, 4, _ANY4), (6, 16, _ANY6)):
            rows = [i for i, p in enumerate(parsed) if p[2].version == version]
            if not rows:
                continue
            import numpy as np  # noqa: PLC0415  (numpy is an optional extra)

            def packed(k: int, rows: list[int] = rows, width: int = width) -> Any:
                raw = b"".join(parsed[i][k].packed for i in rows)  # type: ignore[union-attr]
                return np.frombuffer(raw, np.uint8).reshape(len(rows), width)

            dst, src = packed(2), packed(0)
            dports = [parsed[i][3] for i in rows]
            sports = [parsed[i][1] for i in rows]
            six = version == 6
            h_dst = udp_flow_hash_many(self.profile, dst, dports, src, sports, iv, secret, ipv6=six)
            h_any = udp_flow_hash_many(
                self.profile, str(any_ip), dports, src, sports, iv, secret, ipv6=six
            )
            for j, i in enumerate(rows):
                at_dst[i] = int(h_dst[j])
                at_any[i] = int(h_any[j])
        out: list[Member | _Drop | None] = []
        for i in range(n):
            sip, sport, dip, dport = parsed[i]
            known = {str(dip): at_dst[i], str(_ANY4 if dip.version == 4 else _ANY6): at_any[i]}

            def hashed(
                laddr: str,
                lport: int,
                faddr: str,
                fport: int,
                known: dict[str, int] = known,
            ) -> int:
                h = known.get(laddr)
                if h is None:  # not a pass the lookup makes; computed as deliver would
                    h = self.flow_hash(laddr, lport, faddr, fport, iv, secret)
                return h

            payload = b"" if payloads is None else bytes(payloads[i])
            out.append(self._receive(sip, sport, dip, dport, cpu, payload, hashed))
        return out

    def _lookup(
        self,
        sip: _IP,
        sport: int,
        dip: _IP,
        dport: int,
        cpu: int | None,
        payload: bytes,
        flow_hash: FlowHash,
    ) -> _Sock | _Drop | None:
        v4 = dip.version == 4
        if self._hash4:
            for sk in self._hashed4:
                if (
                    sk.port == dport
                    and sk.peer == sk.hash4 == (sip, sport)
                    and self._local(sk, v4) == dip
                ):
                    return sk
        any_ip: _IP = _ANY4 if v4 else _ANY6
        result = self._walk_pass(sip, sport, dip, dport, dip, cpu, payload, flow_hash)
        if result is not None:  # a socket, or an error that ends the lookup (SK_DROP)
            return result
        result = self._walk_pass(sip, sport, dip, dport, any_ip, cpu, payload, flow_hash)
        if isinstance(result, _Sock):
            return result
        if self._walk_primary is not None:  # v6.14+: the primary chain, without groups
            found = self._walk_primary(
                self._primary, lambda sk: self._score(sk, sip, sport, dport, dip, cpu)
            )
            if found is not None:
                return found
        return result

    @staticmethod
    def _local(sk: _Sock, v4: bool) -> _IP | None:
        return sk.rcv4 if v4 else sk.rcv6

    @staticmethod
    def _score(sk: _Sock, sip: _IP, sport: int, dport: int, laddr: _IP, cpu: int | None) -> int:
        """``compute_score()`` of net/ipv4/udp.c or net/ipv6/udp.c (by *laddr*'s family)."""
        if sk.port != dport:
            return -1
        if laddr.version == 4:
            if sk.rcv4 is None or sk.rcv4 != laddr:
                return -1
            s = 2 if sk.family == "ipv4" else 1
            if sk.peer is not None:
                if sk.family == "ipv4":  # inet_daddr (an IPv6 peer leaves it 0)
                    if sk.peer[0] != sip:
                        return -1
                    s += 4
                if sk.peer[1] != sport:  # inet_dport
                    return -1
                s += 4
        else:
            if sk.family != "ipv6" or sk.rcv6 != laddr:
                return -1
            s = 0
            if sk.peer is not None:  # inet_dport
                if sk.peer[1] != sport:
                    return -1
                s += 1
            if sk.v6_daddr is not None and sk.v6_daddr != _ANY6:  # sk_v6_daddr
                if sk.v6_daddr != sip:
                    return -1
                s += 1
        if cpu is not None and sk.member.incoming_cpu == cpu:
            s += 1
        return s

    def _walk_pass(
        self,
        sip: _IP,
        sport: int,
        dip: _IP,
        dport: int,
        laddr: _IP,
        cpu: int | None,
        payload: bytes,
        flow_hash: FlowHash,
    ) -> _Sock | _Drop | None:
        v4 = dip.version == 4
        chain = self._chains.get(_chain_key(laddr, dport), [])

        def score(sk: _Sock) -> int:
            return self._score(sk, sip, sport, dport, laddr, cpu)

        def pick(sk: _Sock) -> _Sock | _Drop | None:
            if sk.group is None:
                return None
            h = flow_hash(str(laddr), dport, str(sip), sport)
            chosen = sk.group.select(h, payload, cpu=-1 if cpu is None else cpu)
            if isinstance(chosen, Member):
                return self._by_member[id(chosen)]
            return chosen if isinstance(chosen, _Drop) else None

        result = self._walk(
            chain,
            score,
            pick,
            lambda sk: sk.group is not None and sk.group.has_conns,
            lambda r: isinstance(r, _Sock),
            -1 if not v4 else 0,
        )
        if isinstance(result, _Sock) or result is DROP:
            return result
        return None
