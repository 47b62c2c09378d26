# Strategy: a SO_REUSEPORT group as the kernel keeps it, replayable. The kernel's choice of
# socket depends on state that user space rarely sees -- the order of reuse->socks[] after
# closes (swap-remove), which members are connected, whether a member asked for
# SO_INCOMING_CPU, which program is attached -- and on the kernel era. Group tracks that
# state through the same operations an application performs (join = bind, close, connect,
# setsockopt), and select() answers "which member gets this datagram" with the selection form
# that sidkit.kernel.ERAS names for the profile. Nothing here branches on version numbers.
#
# The tests replay the same operations on real sockets in a private namespace and check
# every datagram against select() (tests/reuseport/test_live_reuseport.py).
"""Model of a SO_REUSEPORT group and of the kernel's socket selection in every era."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, Literal

import attrs

from sidkit._errors import InputValueError, UnknownKernelError
from sidkit._validate import check_uint
from sidkit.bpf import cbpf, ebpf
from sidkit.hashing import jhash
from sidkit.kernel import (
    LATEST,
    KernelProfile,
    KernelVersion,
    Seed,
    _reuseport,
    profile,
    secret_source,
    udp_flow_hash,
    udp_flow_hash_many,
)
from sidkit.steering import (
    FixedOffset,
    SteeringPolicy,
    compile_cbpf,
    compile_ebpf,
)

__all__ = ["DROP", "Group", "Member", "SeedPatch"]

_counter = itertools.count()


@attrs.define(eq=False)
class Member:
    """One socket of the group, as the selection code sees it.

    ``name`` is the caller's label (a file descriptor, a worker name); ``connected`` is
    ``sk_state == TCP_ESTABLISHED`` and ``peer`` its remote address; ``incoming_cpu`` is
    SO_INCOMING_CPU (-1 when unset).
    """

    name: Hashable = attrs.field(factory=lambda: next(_counter))
    connected: bool = False
    peer: tuple[str, int] | None = None
    incoming_cpu: int = -1
    open: bool = True

    def __repr__(self) -> str:
        return f"Member({self.name!r})"


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: What :meth:`Group.select` returns when an SK_REUSEPORT program answered SK_DROP: the kernel
#: drops the datagram and the sender gets an ICMP port unreachable (ECONNREFUSED).
DROP: Final = _Drop()


@attrs.frozen
class SeedPatch:
    """The seed's reuseport patch: in the v3.9-v4.4 loop, a hash of the session ID replaces
    ``inet_ehashfn`` when the payload carries one (``jhash(sid, initval)``)."""

    location: FixedOffset
    initval: int = 0

    def hash(self, payload: bytes | None) -> int | None:
        sid = None if payload is None else self.location.sid(payload)
        return None if sid is None else jhash(sid, self.initval)


class Group:
    """A reuseport group under one kernel profile; replay joins, closes and connects on it.

    ``group.socks`` is ``reuse->socks[0:num_socks]`` in kernel order (v4.5+; for v3.9-v4.4 the
    members in bind order, walked newest first as the hash chain is). ``group.closed`` is the
    v5.14+ closed section (TCP listeners closed while migration is enabled).

    A group is the piece of the lookup that ``reuseport_select_sock()`` is; which socket of a
    port finally receives a datagram -- with other groups, lone or connected sockets and
    wildcard binds on the port -- is :class:`sidkit.reuseport.Port`'s answer.

    *initval* (the namespace's ``udp_ehash_secret + net_hash_mix``) and *ipv6_hash_secret*
    (``udp_ipv6_hash_secret``) are what :meth:`flow_hash` hashes with when no call passes
    its own; like the kernel's they are random unless given, drawn from the operating system
    or from *seed* for a reproducible run.
    """

    def __init__(
        self,
        kernel: str | KernelVersion | KernelProfile = LATEST,
        *,
        protocol: Literal["udp", "tcp"] = "udp",
        migrate: bool = False,
        seed_patch: SeedPatch | None = None,
        initval: int | None = None,
        ipv6_hash_secret: int | None = None,
        seed: Seed = None,
    ) -> None:
        self.profile = kernel if isinstance(kernel, KernelProfile) else profile(kernel)
        draw = secret_source(seed, "reuseport secrets")
        #: ``udp_ehash_secret + net_hash_mix(net)``: given, or drawn at construction.
        self.initval = check_uint(
            draw.getrandbits(32) if initval is None else initval, 32, "initval"
        )
        #: ``udp_ipv6_hash_secret``: given, or drawn at construction.
        self.ipv6_hash_secret = check_uint(
            draw.getrandbits(32) if ipv6_hash_secret is None else ipv6_hash_secret,
            32,
            "ipv6_hash_secret",
        )
        era = self.profile.era("reuseport_select")
        if era.impl is None:
            raise UnknownKernelError(f"no SO_REUSEPORT in {self.profile}: {era.evidence}")
        if protocol not in ("udp", "tcp"):
            raise InputValueError(f"protocol must be 'udp' or 'tcp', got {protocol!r}")
        self.protocol = protocol
        self._select: Callable[..., Member | None] = era.impl
        self.score_loop = era.variant == "score-loop"
        if migrate and self.profile.era("reuseport_migration").impl is None:
            raise UnknownKernelError(f"socket migration does not exist in {self.profile}")
        if seed_patch is not None and not self.score_loop:
            raise InputValueError(
                "the seed's patch modifies the v3.9-v4.4 loop; use a 3.x/4.x kernel"
            )
        self.migrate = migrate
        self.seed_patch = seed_patch
        self.socks: list[Member] = []
        self.closed: list[Member] = []
        self.outside: list[Member] = []  # connected members that left the group (6.13+)
        self.has_conns = False
        #: ``reuse->incoming_cpu`` (v6.2+): members counted as having SO_INCOMING_CPU set, kept
        #: on join, leave and setsockopt as net/core/sock_reuseport.c keeps it (a u16).
        self.cpu_members = 0
        self._program: Callable[[bytes, int], Member | _Drop | None] | None = None

    # --- replaying what the application does ------------------------------------------------

    def join(self, name: Hashable | None = None) -> Member:
        """A socket binds to the group's address and port (appended: ``reuseport_add_sock``).

        *name* may be a :class:`Member` already known elsewhere (sidkit.reuseport.Port moves
        its sockets between groups); a member whose SO_INCOMING_CPU is set is counted.
        """
        member = name if isinstance(name, Member) else Member() if name is None else Member(name)
        self.socks.append(member)
        self._count_cpu(member, +1)
        return member

    def _count_cpu(self, member: Member, step: int) -> None:
        if member.incoming_cpu >= 0:
            self.cpu_members = (self.cpu_members + step) & 0xFFFF

    def leave(self, member: Member | Hashable) -> None:
        """A member leaves without closing (``reuseport_detach_sock``: a rehash or, v6.13+,
        a connect): swap-remove, and the group forgets it."""
        m = self._member(member)
        _reuseport.swap_remove(self.socks, m)
        self._count_cpu(m, -1)

    def __getitem__(self, name: Hashable) -> Member:
        for m in (*self.socks, *self.outside, *self.closed):
            if m.name == name:
                return m
        raise InputValueError(f"no member named {name!r} in the group")

    def close(self, member: Member | Hashable) -> None:
        """A member closes: swap-remove (v4.5+), or the closed section under migration."""
        m = self._member(member)
        m.open = False
        if m in self.outside:
            self.outside.remove(m)
            return
        if self.score_loop:
            self.socks.remove(m)
            return
        _reuseport.swap_remove(self.socks, m)
        if self.migrate and self.protocol == "tcp":
            self.closed.append(m)  # still counted in cpu_members, as the kernel keeps it
        else:
            self._count_cpu(m, -1)

    def connect(self, member: Member | Hashable, peer: tuple[str, int]) -> None:
        """A UDP member calls ``connect(peer)``; what that does to the group is per era.

        This is a member bound to a specific address. One bound to a wildcard address is
        rehashed by connect, which detaches it from the group in every era since v4.5 -- and
        which socket then receives what depends on the whole port: use
        :class:`sidkit.reuseport.Port` for that (and for disconnects).
        """
        m = self._member(member)
        era = self.profile.era("reuseport_udp_connect")
        if era.impl is None:
            raise UnknownKernelError(
                f"connected members of a group in {self.profile}: {era.evidence}"
            )
        m.connected, m.peer = True, peer
        self.has_conns = True
        before = list(self.socks)
        era.impl(self.socks, m)
        if m in before and m not in self.socks:
            self.outside.append(m)
            self._count_cpu(m, -1)

    def set_incoming_cpu(self, member: Member | Hashable, cpu: int) -> None:
        """SO_INCOMING_CPU on a member (-1 clears it); ``reuseport_update_incoming_cpu()``
        counts the member in the group's ``cpu_members`` while it is set."""
        m = self._member(member)
        old, m.incoming_cpu = m.incoming_cpu, cpu
        counted = m in self.socks or m in self.closed
        if counted and old < 0 <= cpu:
            self.cpu_members = (self.cpu_members + 1) & 0xFFFF
        elif counted and cpu < 0 <= old:
            self.cpu_members = (self.cpu_members - 1) & 0xFFFF

    def _member(self, member: Member | Hashable) -> Member:
        return member if isinstance(member, Member) else self[member]

    # --- programs ----------------------------------------------------------------------------

    def attach_cbpf(self, program: Sequence[cbpf.SockFilter]) -> None:
        """SO_ATTACH_REUSEPORT_CBPF: the program's result indexes ``socks`` (v4.5+)."""
        if self.profile.era("reuseport_cbpf").impl is None:
            raise UnknownKernelError(f"SO_ATTACH_REUSEPORT_CBPF does not exist in {self.profile}")
        insns = list(program)
        cbpf.check(insns)

        def run(payload: bytes, _hash: int) -> Member | None:
            index = cbpf.run(insns, payload, checked=False)
            return self.socks[index] if index < len(self.socks) else None

        self._program = run

    def attach_ebpf(
        self,
        program: Sequence[ebpf.Insn],
        slots: Sequence[Member | None],
        udp_header: bytes = bytes(8),
    ) -> None:
        """An SK_REUSEPORT program with a REUSEPORT_SOCKARRAY holding *slots* (v4.19+).

        A slot empties when its socket closes or (v6.13+) connects, as the kernel's map does.
        """
        if self.profile.era("reuseport_sk_reuseport").impl is None:
            raise UnknownKernelError(f"SK_REUSEPORT programs do not exist in {self.profile}")
        insns = list(program)
        table = list(slots)

        def occupied(key: int) -> bool:
            return key < len(table) and table[key] is not None and table[key] in self.socks

        def run(payload: bytes, hash: int) -> Member | _Drop | None:
            ctx = ebpf.ReuseportContext(udp_header + payload, hash=hash)
            verdict, selected = ebpf.run_sk_reuseport(insns, ctx, occupied)
            if verdict != ebpf.SK_PASS:
                return DROP
            return None if selected is None else table[selected]

        self._program = run

    def attach_policy(
        self,
        policy: SteeringPolicy,
        backend: Literal["cbpf", "ebpf"] = "cbpf",
        *,
        on_no_sid: Literal["pass", "drop"] = "pass",
    ) -> None:
        """Attach what :func:`sidkit.steering.attach` would attach, with today's members in the
        map (eBPF) -- the compiled program itself runs in the interpreter."""
        if backend == "cbpf":
            self.attach_cbpf(compile_cbpf(policy))
        else:
            self.attach_ebpf(compile_ebpf(policy, 3, on_no_sid=on_no_sid), list(self.socks))

    def detach(self) -> None:
        """SO_DETACH_REUSEPORT_BPF: back to hash selection."""
        self._program = None

    @property
    def has_program(self) -> bool:
        """Whether a cBPF or eBPF program is attached (``reuse->prog``)."""
        return self._program is not None

    # --- the kernel's choice -----------------------------------------------------------------

    def select(
        self,
        hash: int,
        payload: bytes | None = None,
        *,
        peer: tuple[str, int] | None = None,
        cpu: int = -1,
    ) -> Member | _Drop | None:
        """The member that receives a datagram whose 5-tuple hash is *hash*.

        *peer* is the sender's ``(address, port)`` (a connected member whose peer it is wins,
        in every modelled era); *payload* is what an attached program (or the seed's patch)
        reads; *cpu* is the receiving CPU for SO_INCOMING_CPU. Returns None when no member can
        take it and :data:`~sidkit.reuseport.DROP` when an SK_REUSEPORT program dropped it.
        """
        for m in (*self.outside, *self.socks):
            if m.connected and peer is not None and m.peer == peer:
                return m
        if self.score_loop:
            chain = [m for m in reversed(self.socks) if not m.connected]
            if self.seed_patch is not None:
                sid_hash = self.seed_patch.hash(payload)
                hash = hash if sid_hash is None else sid_hash
            return self._select(chain, hash, cpu, self.cpu_members)
        if self._program is not None and payload is not None and self.socks:
            chosen = self._program(bytes(payload), hash)
            if chosen is not None:
                return chosen
        return self._select(self.socks, hash, cpu, self.cpu_members)

    def index(self, hash: int, payload: bytes | None = None, **kw: Any) -> int | None:
        """:meth:`select` as a position in ``socks`` (None for no member or a drop)."""
        m = self.select(hash, payload, **kw)
        return self.socks.index(m) if isinstance(m, Member) and m in self.socks else None

    def migrate_target(self, hash: int) -> Member | None:
        """v5.14+: the listener that takes over a closed member's requests
        (``reuseport_migrate_sock`` without a program: hash selection among the open)."""
        if not self.migrate:
            raise InputValueError("migration is off for this group (Group(..., migrate=True))")
        return self._select(self.socks, hash, -1)

    def flow_hash(
        self,
        laddr: str,
        lport: int,
        faddr: str,
        fport: int,
        initval: int | None = None,
        ipv6_hash_secret: int | None = None,
    ) -> int:
        """The UDP flow hash of a datagram from ``faddr:fport`` to ``laddr:lport`` in this era
        (:func:`sidkit.kernel.udp_flow_hash`: ``udp_ehashfn``/``udp6_ehashfn``, with the
        v3.9-v3.12 IPv4 source-port quirk).

        *initval* is the namespace's ``udp_ehash_secret + net_hash_mix`` and, for IPv6,
        *ipv6_hash_secret* is ``udp_ipv6_hash_secret``; each defaults to the group's own
        (:attr:`initval`, :attr:`ipv6_hash_secret`), never to zero."""
        return udp_flow_hash(
            self.profile,
            laddr,
            lport,
            faddr,
            fport,
            self.initval if initval is None else initval,
            self.ipv6_hash_secret if ipv6_hash_secret is None else ipv6_hash_secret,
        )

    # --- many datagrams ----------------------------------------------------------------------

    def _plain_hash_selection(self, cpu: int) -> bool:
        """Whether :meth:`select` is ``socks[reciprocal_scale(hash, n)]`` for every datagram
        now: an era of group hashing with no program, no connected member (so neither a peer
        nor the skip-connected walk matters) and no SO_INCOMING_CPU preference in play."""
        if self.score_loop or not self.socks:
            return False
        if any(m.connected for m in (*self.outside, *self.socks)):
            return False
        if self._select is _reuseport.by_hash_incoming_cpu:
            return self.cpu_members == 0 or cpu < 0
        return self._select in (_reuseport.by_hash, _reuseport.by_hash_skip_connected)

    def select_many(
        self,
        hashes: Sequence[int] | Any,
        payloads: Sequence[bytes | None] | None = None,
        *,
        peers: Sequence[tuple[str, int] | None] | None = None,
        cpu: int = -1,
    ) -> list[Member | _Drop | None]:
        """:meth:`select` for many datagrams: ``[group.select(h, p, peer=q, cpu=cpu) for h,
        p, q in ...]``, the same members in the same order.

        *hashes* is a sequence or numpy array of u32 flow hashes (:func:`flow_hash_many`
        computes them); *payloads* and *peers* are None or one per hash. When the selection
        is the plain ``reciprocal_scale(hash, n)`` (no program to run, no connected member,
        no CPU preference) it is computed for all hashes at once with
        :mod:`sidkit.hashing.batch`; otherwise each datagram goes through :meth:`select`.
        Needs numpy (``sidkit[bulk]``).
        """
        from sidkit.hashing import batch  # noqa: PLC0415  (numpy is an optional extra)
        from sidkit.hashing._bulk import as_u32  # noqa: PLC0415

        values = as_u32(hashes, "hashes")  # u32 values, one dimension, sidkit errors
        n = len(values)
        if payloads is not None and len(payloads) != n:
            raise InputValueError(f"payloads must be one per hash ({n}), got {len(payloads)}")
        if peers is not None and len(peers) != n:
            raise InputValueError(f"peers must be one per hash ({n}), got {len(peers)}")
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise InputValueError(f"cpu must be an int, got {type(cpu).__name__}")
        if (payloads is None or self._program is None) and self._plain_hash_selection(cpu):
            socks = self.socks
            index = batch.reciprocal_scale(values, len(socks)).tolist()
            return [socks[i] for i in index]
        return [
            self.select(
                int(values[i]),
                None if payloads is None else payloads[i],
                peer=None if peers is None else peers[i],
                cpu=cpu,
            )
            for i in range(n)
        ]

    def index_many(
        self,
        hashes: Sequence[int] | Any,
        payloads: Sequence[bytes | None] | None = None,
        **kw: Any,
    ) -> list[int | None]:
        """:meth:`index` for many datagrams (see :meth:`select_many`)."""
        where = {id(m): i for i, m in enumerate(self.socks)}
        return [
            where.get(id(m)) if isinstance(m, Member) else None
            for m in self.select_many(hashes, payloads, **kw)
        ]

    def flow_hash_many(
        self,
        laddr: Any,
        lport: Any,
        faddr: Any,
        fport: Any,
        initval: int | None = None,
        ipv6_hash_secret: int | None = None,
    ) -> Any:
        """:meth:`flow_hash` of many datagrams of one family as a uint32 numpy array: each of
        *laddr*, *lport*, *faddr*, *fport* is one value or a sequence (addresses may be
        ``(n, 4|16)`` uint8 arrays of packed addresses). Needs numpy."""
        from sidkit.hashing._bulk import as_addresses  # noqa: PLC0415  (numpy: optional)

        _packed, versions = as_addresses(laddr, "laddr", None)
        if len(set(versions.tolist())) > 1:
            raise InputValueError("flow_hash_many hashes one family at a time: laddr mixes them")
        return udp_flow_hash_many(
            self.profile,
            laddr,
            lport,
            faddr,
            fport,
            self.initval if initval is None else initval,
            self.ipv6_hash_secret if ipv6_hash_secret is None else ipv6_hash_secret,
            ipv6=bool(len(versions)) and int(versions[0]) == 6,
        )
