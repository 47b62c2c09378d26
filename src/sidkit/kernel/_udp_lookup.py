# Strategy: the part of a UDP socket lookup that changed between releases is the walk of one
# secondary-hash chain (udp4_lib_lookup2 / udp6_lib_lookup2): how a socket's score, its
# reuseport group's pick and "does the group have connected members" combine. Each era's walk
# is a small pure function over the chain in kernel order and three callbacks, so that the
# eras table can name it and sidkit.reuseport.Port can call whichever one a profile resolves
# to. The callbacks keep this module free of sockets: score(sk) is compute_score() for the
# datagram at hand (-1 = no match), pick(sk) is reuseport_select_sock() on sk's group (a
# socket, DROP for an SK_DROP verdict, or None when sk has no group or the group picks
# nothing), conns(sk) is reuseport_has_conns(), is_socket(x) tells a socket from DROP. A walk
# returns a socket, DROP, or None. floor is where the bar starts: 0 for IPv4 (an unconnected
# IPv4 socket scores 2, a dual-stack one 1), -1 for IPv6 (an unconnected IPv6 socket scores 0).
"""Secondary-hash chain walks of the UDP lookup, per kernel era (private; see sidkit.reuseport)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class ChainSocket(Protocol):
    @property
    def established(self) -> bool: ...


S = TypeVar("S", bound=ChainSocket)
Score = Callable[[S], int]
Pick = Callable[[S], object | None]
Conns = Callable[[S], bool]


def walk_early_return(
    chain: Sequence[S],
    score: Score[S],
    pick: Pick[S],
    conns: Conns[S],
    is_socket: Callable[[object], bool],
    floor: int = 0,
) -> object | None:
    """v4.5-v5.3 ``udp4_lib_lookup2()``: the first socket that beats the best score so far
    asks its group, and a pick is returned at once -- connected members included, so a
    connected member's own peer can be steered to another member.

    Kernel source: ``net/ipv4/udp.c`` (``net/ipv6/udp.c`` alike), e32ea7e74727
    ('soreuseport: fast reuseport UDP socket selection', v4.5) until acdcecc61285 (v5.4).
    """
    del conns, is_socket
    result: object | None = None
    badness = floor
    for sk in chain:
        s = score(sk)
        if s > badness:
            chosen = pick(sk)
            if chosen is not None:
                return chosen
            badness, result = s, sk
    return result


def walk_conns_fallback(
    chain: Sequence[S],
    score: Score[S],
    pick: Pick[S],
    conns: Conns[S],
    is_socket: Callable[[object], bool],
    floor: int = 0,
) -> object | None:
    """v5.4-v5.7: a connected socket never asks its group; a group with connected members
    has its pick thrown away, and the chain socket itself becomes the candidate (so
    unconnected traffic goes to the first best-scoring socket of the chain).

    Kernel source: ``net/ipv4/udp.c`` ``udp4_lib_lookup2()``, acdcecc61285 ('udp: correct
    reuseport selection with connected sockets', v5.4; stable 5.3.1, 5.2.17, 4.19.75).
    """
    del is_socket
    result: object | None = None
    badness = floor
    for sk in chain:
        s = score(sk)
        if s > badness:
            if not sk.established:
                chosen = pick(sk)
                if chosen is not None and not conns(sk):
                    return chosen
            badness, result = s, sk
    return result


def walk_keep_pick(
    chain: Sequence[S],
    score: Score[S],
    pick: Pick[S],
    conns: Conns[S],
    is_socket: Callable[[object], bool],
    floor: int = 0,
) -> object | None:
    """v5.8-v6.4: as :func:`walk_conns_fallback`, but with connected members the group's pick
    is kept as the candidate (``result = reuseport_result ? : sk``) at the chain socket's
    score; a later socket that scores higher (a connected peer) still wins.

    Kernel source: ``net/ipv4/udp.c`` ``udp4_lib_lookup2()``, efc6b6f6c311 ('udp: Improve
    load balancing for SO_REUSEPORT.', v5.8; stable 5.4.55, 4.19.136).
    """
    del is_socket
    result: object | None = None
    badness = floor
    for sk in chain:
        s = score(sk)
        if s > badness:
            chosen = None
            if not sk.established:
                chosen = pick(sk)
                if chosen is not None and not conns(sk):
                    return chosen
            result = chosen if chosen is not None else sk
            badness = s
    return result


def walk_rescore(
    chain: Sequence[S],
    score: Score[S],
    pick: Pick[S],
    conns: Conns[S],
    is_socket: Callable[[object], bool],
    floor: int = 0,
) -> object | None:
    """v6.5+: as :func:`walk_keep_pick`, but the kept pick is scored itself: the bar a later
    socket must clear is the higher of the chain socket's and the pick's score (they differ
    when one of them has SO_INCOMING_CPU on the receiving CPU). An SK_DROP verdict is kept
    as the candidate at the chain socket's score.

    Kernel source: ``net/ipv4/udp.c`` ``udp4_lib_lookup2()`` (the ``need_rescore`` /
    ``goto rescore`` form, read from Debian's 6.1.192 and 6.12.117), Lorenz Bauer's 'udp:
    re-score reuseport groups when connected sockets are present' (Fixes: efc6b6f6c311).
    """
    result: object | None = None
    badness = floor
    for sk in chain:
        s = score(sk)
        if s <= badness:
            continue
        badness = s
        if sk.established:
            result = sk
            continue
        chosen = pick(sk)
        if chosen is None:
            result = sk
            continue
        if not conns(sk):
            return chosen
        result = chosen
        if not is_socket(chosen):
            continue
        rescored = score(chosen)  # type: ignore[arg-type]
        badness = max(badness, rescored)
    return result


def disconnect_keeps_chain(bindaddr_lock: bool) -> bool:
    """v5.0-v5.5 ``__udp_disconnect()``: a wildcard-bound socket gets its wildcard address
    back but is not rehashed, so it stays on the chain of the address it had -- where no
    lookup pass looks for a wildcard socket. Returns whether the socket is rehashed: never."""
    del bindaddr_lock
    return False


def disconnect_rehashes(bindaddr_lock: bool) -> bool:
    """v5.6+ (303d0403b8c2 'udp: rehash on disconnect'; stable 5.4.24, 5.5.8): a socket not
    bound to a specific address (no SOCK_BINDADDR_LOCK) is rehashed to the wildcard chain."""
    return not bindaddr_lock


def walk_primary(chain: Sequence[S], score: Score[S]) -> S | None:
    """v6.14+ ``udp4_lib_lookup1()``/``udp6_lib_lookup1()``: when neither secondary pass found
    a socket (or one ended in an error), walk the port's primary chain and take the first
    socket with the best positive score -- no reuseport groups. Meant for the race of an
    address change with its rehash, it also finds sockets whose local address sits on no
    chain a pass looks at: an IPv6 socket connected to an IPv6 peer shows IPv4 the address
    127.0.0.6 (LOOPBACK4_IPV6) but hashes on its IPv6 address.

    Kernel source: ``net/ipv4/udp.c``, ``net/ipv6/udp.c``, a502ea6fa94b ('udp: Deal with race
    between UDP socket address change and rehash', v6.14; stable 6.13.2, 5.10.235, and in
    Debian's 6.1.192 and 6.12.117, read from source).
    """
    result: S | None = None
    badness = 0
    for sk in chain:
        s = score(sk)
        if s > badness:
            result, badness = sk, s
    return result
