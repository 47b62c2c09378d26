# Strategy: the pieces of SO_REUSEPORT socket selection that changed between kernel releases,
# each as a small pure function over a list of member states, so that sidkit.kernel.ERAS can
# name them per era and sidkit.reuseport.Group can call whichever one a profile resolves to.
# A member is anything with the two attributes the kernel looks at during selection:
# ``connected`` (sk_state == TCP_ESTABLISHED) and ``incoming_cpu`` (sk_incoming_cpu, -1 when
# unset). Kept free of sidkit.kernel imports so the eras table can import it.
"""SO_REUSEPORT selection forms of each kernel era (private; see sidkit.reuseport)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from sidkit.hashing import next_pseudo_random32, reciprocal_scale


class MemberLike(Protocol):
    @property
    def connected(self) -> bool: ...
    @property
    def incoming_cpu(self) -> int: ...


M = TypeVar("M", bound=MemberLike)


def score_loop(
    chain: Sequence[M], hash: int, cpu: int = -1, counted: int | None = None
) -> M | None:
    """v3.9-v4.4 ``udp4_lib_lookup2()``: pick among equal-score sockets while walking the chain.

    Kernel source: ``net/ipv4/udp.c`` (and ``net/ipv6/udp.c``), commit ba418fa357a7
    ('soreuseport: UDP/IPv4 implementation', v3.9) to the group rework in v4.5. *chain* is the
    secondary hash chain in walk order (sockets are added at its head, so the newest bound
    comes first); connected sockets whose peer is not the sender score -1 and are absent from
    *chain*. The first socket starts ``matches = 1``; each further one increments it and wins
    when ``((u64)hash * matches) >> 32 == 0``, after which ``hash`` steps through
    ``next_pseudo_random32``.
    """
    del cpu, counted  # SO_INCOMING_CPU did not exist for this selection
    result: M | None = None
    matches = 0
    for sk in chain:
        if result is None:
            result, matches = sk, 1
            continue
        matches += 1
        if reciprocal_scale(hash, matches) == 0:
            result = sk
        hash = next_pseudo_random32(hash)
    return result


def by_hash(socks: Sequence[M], hash: int, cpu: int = -1, counted: int | None = None) -> M | None:
    """v4.5-v5.3 ``reuseport_select_sock()``: ``socks[reciprocal_scale(hash, num_socks)]``.

    Kernel source: ``net/core/sock_reuseport.c``, commits ef456144da8e / e32ea7e74727
    ('soreuseport: fast reuseport UDP socket selection', v4.5). Connected members are picked
    like any other.
    """
    del cpu, counted
    return socks[reciprocal_scale(hash, len(socks))] if socks else None


def by_hash_skip_connected(
    socks: Sequence[M], hash: int, cpu: int = -1, counted: int | None = None
) -> M | None:
    """v5.4-v6.1 ``reuseport_select_sock()`` (its hash part is ``reuseport_select_sock_by_hash()``
    from v5.14): start at ``reciprocal_scale(hash, n)`` and walk forward (wrapping) past
    connected (TCP_ESTABLISHED) members.

    Kernel source: ``net/core/sock_reuseport.c``, commit acdcecc61285 ('udp: correct
    reuseport selection with connected sockets', v5.4; stable 5.3.1, 5.2.17, 4.19.75). None
    when every member is connected. (efc6b6f6c311, v5.8, changed only the UDP lookup around
    this choice: it keeps the group's pick when the group has connections.)
    """
    del cpu, counted
    n = len(socks)
    if not n:
        return None
    i = start = reciprocal_scale(hash, n)
    while True:
        if not socks[i].connected:
            return socks[i]
        i = (i + 1) % n
        if i == start:
            return None


def by_hash_incoming_cpu(
    socks: Sequence[M], hash: int, cpu: int = -1, counted: int | None = None
) -> M | None:
    """v6.2+ ``reuseport_select_sock_by_hash()``: as :func:`by_hash_skip_connected`, but when
    any member set SO_INCOMING_CPU, prefer the first unconnected member (in the same walk)
    whose ``sk_incoming_cpu`` is the receiving *cpu*, else the first unconnected one.

    "Any member set it" is the group's counter ``reuse->incoming_cpu`` (*counted*), which
    the kernel keeps on join, leave and setsockopt only -- a connected socket that receives
    updates its own ``sk_incoming_cpu`` without it. Without *counted*, the members' values
    are counted.

    Kernel source: ``net/core/sock_reuseport.c``, commit b261eda84ec1 ('soreuseport: Fix
    socket selection for SO_INCOMING_CPU.', v6.2; stable 6.0.16, 6.1.2 and 5.15.86).
    """
    n = len(socks)
    if not n:
        return None
    if counted is None:
        counted = sum(s.incoming_cpu >= 0 for s in socks)
    if not counted:
        return by_hash_skip_connected(socks, hash)
    first: M | None = None
    i = start = reciprocal_scale(hash, n)
    while True:
        sk = socks[i]
        if not sk.connected:
            if cpu >= 0 and sk.incoming_cpu == cpu:  # no CPU (-1) is never a match
                return sk
            if first is None:
                first = sk
        i = (i + 1) % n
        if i == start:
            return first


def sport_htons(sport: int) -> int:
    """v3.9-v3.12 UDPv4 passed ``htons(sport)`` of an already big-endian port to the hash:
    on a little-endian host the source port enters byte-swapped (include/net/inet_sock.h
    caller in net/ipv4/udp.c; fixed by the v3.13 split into ``udp_ehashfn``, 65cd8033ff37)."""
    return ((sport & 0xFF) << 8) | (sport >> 8)


def sport_raw(sport: int) -> int:
    """v3.13+: the source port enters the hash as received."""
    return sport


def swap_remove(socks: list[M], member: M) -> None:
    """``__reuseport_detach_sock()``: the last member moves into the leaver's slot (v4.5+,
    net/core/sock_reuseport.c), which is why group order is not bind order after a close."""
    i = socks.index(member)
    socks[i] = socks[-1]
    socks.pop()


def connect_stays(socks: list[M], member: M) -> None:
    """v5.4-v6.12: a connected UDP member stays in ``socks[]`` (``reuse->has_conns`` is set,
    commit acdcecc61285 'udp: correct reuseport selection with connected sockets'); what the
    selection then does with it is the selection era's business.

    Only for a member bound to a specific address: since about v4.5 a wildcard-bound member
    that connects is given a local address, rehashed (``udp_lib_rehash()`` ->
    ``reuseport_detach_sock()``) and leaves the group."""
    del socks, member


def connect_leaves(socks: list[M], member: M) -> None:
    """v6.13+: ``connect()`` puts a UDP socket bound to a specific address into the 4-tuple
    hash and detaches it from its reuseport group (``udp_lib_hash4()`` calls
    ``reuseport_detach_sock()``, commits 78c91ae2c6de / 1b29a730ef8b, 'ipv4/ipv6 udp: Add
    4-tuple hash for connected socket', v6.13). Measured on 6.18: the group shrinks by
    swap-remove and a later ``connect(AF_UNSPEC)`` does not rejoin."""
    swap_remove(socks, member)
