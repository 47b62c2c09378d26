# Strategy: `sidkit hash socket` is a thin shell over sidkit.reuseport, so that the command
# and the library have one code path. It validates the input where it enters (addresses,
# ports, u32 secrets, group size), builds the group the question describes -- N sockets bound
# to --bind -- and asks the model: sidkit.reuseport.Port (bind, then deliver) for the releases
# Port models (v5.0+), sidkit.reuseport.Group (join, flow_hash, select) for v3.9-v4.20. It
# computes no hash and selects no socket itself. What it adds is the report: the address that
# went into the hash (recorded from the lookup pass Port.deliver made, not guessed), the
# socket's position in bind order and the eras-table rows in force. The one lookup fact it
# applies itself is the pre-5.0 one that Port does not model and the eras table states (row
# udp_lookup2, "not modelled"): a port of at most ten sockets was looked up in its primary
# chain, hashing the real destination; a wildcard group of more sockets is refused.
"""The ``sidkit hash socket`` subcommand (registered by :mod:`sidkit.cli`)."""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Callable

import attrs

from sidkit._errors import InputValueError, UnknownKernelError
from sidkit.kernel import KernelProfile, profile
from sidkit.reuseport import Group, Member, Port

_U32 = 0xFFFFFFFF
#: ``reuse->max_socks`` is a u16: reuseport_grow() stops at U16_MAX (net/core/sock_reuseport.c).
MAX_SOCKETS = 0xFFFF
#: Before v5.0 ``__udp4_lib_lookup()``/``__udp6_lib_lookup()`` took the secondary chains only
#: when the port's primary slot held more than ten sockets (``hslot->count > 10``).
PRIMARY_WALK_MAX = 10

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

DESCRIPTION = """\
Which socket of a SO_REUSEPORT group receives a UDP datagram, and the flow hash the kernel
chose it by. The command asks sidkit's model and nothing else: for v5.0 and later it binds
--sockets sockets to --bind on a sidkit.reuseport.Port and calls Port.deliver (the kernel's
two lookup passes); for v3.9-v4.20 it joins them to a sidkit.reuseport.Group and calls
Group.flow_hash and Group.select. It prints the hash, the socket's position in bind order,
the address that went into the hash and the eras-table rows in force. The hash is the one an
SK_REUSEPORT program sees as ctx->hash. Exit status 1 when no socket receives the datagram
(a specific --bind that is not --laddr); 2 for an error."""

#: The arguments every example shares; each example line adds its own.
EXAMPLE_BASE = "sidkit hash socket --lport 4433 --fport 50000 --initval 0x1234abcd"

EPILOG = f"""\
examples, each added to  {EXAMPLE_BASE}:
  --laddr 10.0.0.1 --faddr 192.0.2.7
      IPv4, wildcard group (default --bind 0.0.0.0): v5.0+ hashes 0.0.0.0, not 10.0.0.1.
  --laddr 10.0.0.1 --faddr 192.0.2.7 --bind 10.0.0.1
      IPv4, group bound to the destination: the first lookup pass, which hashes 10.0.0.1.
  --laddr 2001:db8::1 --faddr 2001:db8::7 --addr-secret 0x5eed5eed
      IPv6: the source is hashed with udp_ipv6_hash_secret, so --addr-secret is required.
  --laddr 10.0.0.1 --faddr 192.0.2.7 --kernel 3.10
      v3.10: score loop over the hash chain, destination hashed, source port byte-swapped.
The initval is what udp_ehashfn/udp6_ehashfn receive: udp_ehash_secret + net_hash_mix for
IPv4, udp6_ehash_secret + net_hash_mix for IPv6 (udp_ipv6_hash_secret + net_hash_mix before
the 6.5 typo fix), random per boot and namespace. To learn this machine's value:
  sudo sidkit hash initval
      records the kernel's own hashes of a few loopback datagrams and searches the 2^32
      initvals for the one that explains them (root or CAP_BPF, and a C compiler)."""


def _int(text: str) -> int:
    """Decimal or 0x-prefixed hex; ranges are checked in :func:`_query`."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def register(
    hsub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``socket`` to the ``sidkit hash`` subparsers *hsub*; *common* adds --kernel etc."""
    so = hsub.add_parser(
        "socket",
        help="which SO_REUSEPORT socket a UDP datagram hits",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    so.add_argument("--laddr", required=True, help="the datagram's destination address")
    so.add_argument("--lport", type=_int, required=True, help="its destination port (1..65535)")
    so.add_argument("--faddr", required=True, help="its source address (same family)")
    so.add_argument("--fport", type=_int, required=True, help="its source port (1..65535)")
    so.add_argument(
        "--initval",
        type=_int,
        required=True,
        help="u32 initval of udp_ehashfn/udp6_ehashfn (ehash secret + net_hash_mix), random "
        "per boot and namespace: `sidkit hash initval` finds this machine's",
    )
    so.add_argument(
        "--addr-secret",
        type=_int,
        default=None,
        help="u32 udp_ipv6_hash_secret; required for IPv6, refused for IPv4",
    )
    so.add_argument(
        "--bind",
        default=None,
        metavar="ADDR",
        help="the address the group's sockets bind: the wildcard of --laddr's family "
        "(0.0.0.0 or ::, the default) or a specific address of that family; a specific "
        "address other than --laddr receives nothing",
    )
    so.add_argument(
        "--sockets",
        type=_int,
        default=4,
        help=f"sockets in the group, 1..{MAX_SOCKETS} (default 4)",
    )
    so.add_argument("--json", action="store_true", help="one JSON object instead of text")
    common(so)
    so.set_defaults(run=run)


@attrs.frozen
class Query:
    """One validated question: a datagram and the group it is sent to."""

    laddr: _IP
    lport: int
    faddr: _IP
    fport: int
    initval: int
    addr_secret: int | None
    bind: _IP
    sockets: int

    @property
    def wildcard(self) -> bool:
        return self.bind.is_unspecified


@attrs.frozen
class Answer:
    """What the model says: *index* in bind order (None: no socket receives), the hash and
    the address hashed, and how the group was found."""

    index: int | None
    hash: int | None = None
    hashed: str | None = None
    found: tuple[str, ...] = ()
    by_port: bool = False
    score_loop: bool = False


def _address(text: str, what: str) -> _IP:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputValueError(f"{what}: {text!r} is not an IPv4 or IPv6 address") from None


def _in_range(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        if high == _U32:
            shown = f"{value:#x}" if value >= 0 else str(value)
            raise InputValueError(f"{what} must be a u32 (0..0xffffffff), got {shown}")
        raise InputValueError(f"{what} must be {low}..{high}, got {value}")
    return value


def _query(args: argparse.Namespace) -> Query:
    laddr = _address(args.laddr, "--laddr")
    faddr = _address(args.faddr, "--faddr")
    if laddr.version != faddr.version:
        raise InputValueError(f"--laddr {laddr} and --faddr {faddr} are of different families")
    if laddr.is_unspecified:
        wild = "0.0.0.0" if laddr.version == 4 else "::"
        raise InputValueError(
            f"--laddr is the datagram's destination, never {laddr}; for a group bound to the "
            f"wildcard give --bind {wild} (the default) and the command hashes {wild} itself"
        )
    if laddr.is_multicast or laddr == ipaddress.IPv4Address("255.255.255.255"):
        raise InputValueError(
            f"--laddr {laddr}: a multicast or broadcast datagram goes to every matching socket "
            "(__udp4_lib_mcast_deliver), not to one chosen by hash"
        )
    if isinstance(laddr, ipaddress.IPv6Address) and laddr.ipv4_mapped is not None:
        raise InputValueError(
            f"--laddr {laddr} is IPv4-mapped: the datagram is IPv4, give {laddr.ipv4_mapped}"
        )
    wildcard: _IP = ipaddress.ip_address("0.0.0.0" if laddr.version == 4 else "::")
    bind = wildcard if args.bind is None else _address(args.bind, "--bind")
    if bind.version != laddr.version:
        raise InputValueError(
            f"--bind {bind} is not of --laddr's family ({wildcard} or an address like "
            f"{laddr}); dual-stack groups are sidkit.reuseport.Port's, not this command's"
        )
    if laddr.version == 6:
        if args.addr_secret is None:
            raise InputValueError(
                "an IPv6 flow hash needs --addr-secret (udp_ipv6_hash_secret, random per "
                "boot); there is no default"
            )
        _in_range(args.addr_secret, 0, _U32, "--addr-secret")
    elif args.addr_secret is not None:
        raise InputValueError("--addr-secret is for IPv6 only: udp_ehashfn does not use it")
    return Query(
        laddr=laddr,
        lport=_in_range(args.lport, 1, 0xFFFF, "--lport"),
        faddr=faddr,
        fport=_in_range(args.fport, 1, 0xFFFF, "--fport"),
        initval=_in_range(args.initval, 0, _U32, "--initval"),
        addr_secret=args.addr_secret,
        bind=bind,
        sockets=_in_range(args.sockets, 1, MAX_SOCKETS, "--sockets"),
    )


def answer(prof: KernelProfile, q: Query) -> Answer:
    """The model's answer to *q* under *prof*: Port where it models the release, else Group."""
    if q.laddr.version == 6 and q.addr_secret is None:
        # Port and Group would hash with their own random secret: an answer nobody can
        # reproduce. The command line refuses earlier; a Query built in code lands here.
        raise InputValueError(
            "an IPv6 flow hash needs addr_secret (--addr-secret: udp_ipv6_hash_secret, "
            "random per boot); there is no default",
            code="needs-secret",
        )
    try:
        port = Port(prof)
    except UnknownKernelError:
        return _by_group(Group(prof), q)  # Group raises for a kernel without SO_REUSEPORT
    return _by_port(port, q)


def _by_port(port: Port, q: Query) -> Answer:
    for i in range(q.sockets):
        port.bind(i, (str(q.bind), q.lport))
    hashed: list[str] = []

    def recorded(laddr: str, lport: int, faddr: str, fport: int) -> int:
        # what deliver(initval=..., addr_secret=...) computes, with the pass's address noted
        hashed.append(laddr)
        return port.flow_hash(laddr, lport, faddr, fport, q.initval, q.addr_secret)

    member = port.deliver((str(q.faddr), q.fport), (str(q.laddr), q.lport), flow_hash=recorded)
    if not isinstance(member, Member):
        return Answer(None)
    group = port.group(member.name)
    assert group is not None and hashed  # every socket here is in the one group
    laddr = hashed[-1]
    h = port.flow_hash(laddr, q.lport, str(q.faddr), q.fport, q.initval, q.addr_secret)
    note: tuple[str, ...]
    if ipaddress.ip_address(laddr).is_unspecified:
        note = (
            f"the wildcard pass found the group (bound to {q.bind}) and hashed {laddr},",
            f"not the destination {q.laddr}: the lookup of v5.0+ (4cdeeee9252a)",
        )
    else:
        note = (f"the first pass (the destination's chain) found the group (bound to {q.bind})",)
    return Answer(group.socks.index(member), h, laddr, note, by_port=True)


def _by_group(group: Group, q: Query) -> Answer:
    for i in range(q.sockets):
        group.join(i)
    if not q.wildcard and q.bind != q.laddr:
        return Answer(None)
    if q.wildcard and q.sockets > PRIMARY_WALK_MAX:
        raise InputValueError(
            f"before v5.0 a port of more than {PRIMARY_WALK_MAX} sockets was looked up in its "
            "secondary chains, which sidkit does not model (eras row udp_lookup2): use "
            f"--sockets {PRIMARY_WALK_MAX} or fewer, or --bind {q.laddr}"
        )
    laddr = str(q.laddr)
    h = group.flow_hash(laddr, q.lport, str(q.faddr), q.fport, q.initval, q.addr_secret)
    index = group.index(h)
    assert index is not None  # a group of unconnected members always picks one
    note: tuple[str, ...]
    if q.wildcard:
        note = (
            f"the primary-chain walk ({PRIMARY_WALK_MAX} sockets or fewer) found the group "
            f"(bound to {q.bind})",
            f"and hashed the destination {laddr}: before v5.0 it did, wildcard group or not",
        )
    else:
        note = (f"the lookup found the group (bound to {q.bind}) and hashed the destination",)
    return Answer(index, h, laddr, note, score_loop=group.score_loop)


def _row(prof: KernelProfile, function: str) -> str:
    """``variant (since+)`` of the eras row in force, naming a stable backport."""
    era = prof.era(function)
    via = era.backport_for(prof.version)
    since = f"{era.since}+" if via is None else f"{via}+, backport of {era.since}"
    return f"{function} {era.variant} ({since})"


def _json(prof: KernelProfile, q: Query, a: Answer) -> int:
    v4 = q.laddr.version == 4
    fport = prof.function("reuseport_udp4_sport")(q.fport) if v4 and a.hash is not None else q.fport
    doc: dict[str, object] = {
        "kernel": str(prof.version),
        "laddr": str(q.laddr),
        "lport": q.lport,
        "faddr": str(q.faddr),
        "fport": q.fport,
        "bind": str(q.bind),
        "sockets": q.sockets,
        "socket": a.index,
        "hash": None if a.hash is None else f"0x{a.hash:08x}",
        "hash_function": "udp_ehashfn" if v4 else "udp6_ehashfn",
        "hashed_laddr": a.hashed,
        "hashed_fport": fport,
        "lookup": list(a.found),
        "model": "sidkit.reuseport.Port" if a.by_port else "sidkit.reuseport.Group",
    }
    print(json.dumps(doc, indent=2))
    return 1 if a.index is None else 0


def run(args: argparse.Namespace) -> int:
    """``sidkit hash socket``: print the model's answer; exit 1 when no socket receives."""
    prof = profile(args.kernel, byteorder=args.byteorder)
    q = _query(args)
    a = answer(prof, q)
    if args.json:
        return _json(prof, q, a)
    if a.index is None:
        print(
            f"no socket receives it: the {q.sockets} sockets are bound to {q.bind}, the "
            f"datagram is for {q.laddr} (the kernel answers ICMP port unreachable)"
        )
        return 1
    assert a.hash is not None
    v4 = q.laddr.version == 4
    fport = prof.function("reuseport_udp4_sport")(q.fport) if v4 else q.fport
    fn = "udp_ehashfn" if v4 else "udp6_ehashfn"
    print(f"hash 0x{a.hash:08x}  ->  socket {a.index} of {q.sockets}  ({prof})")
    print(f"  hashed    {fn}(laddr {a.hashed}, lport {q.lport}, faddr {q.faddr}, fport {fport})")
    for line in a.found:
        print(f"            {line}")
    if fport != q.fport:
        swap = _row(prof, "reuseport_udp4_sport")
        print(f"            fport {q.fport} enters byte-swapped: {swap}")
    print(f"  selected  {_row(prof, 'reuseport_select')}")
    if a.by_port:
        print(f"            by sidkit.reuseport.Port.deliver, lookup {_row(prof, 'udp_lookup2')}")
    else:
        print("            by sidkit.reuseport.Group.select (Port models v5.0+ lookups only)")
    if a.score_loop:
        how = "the score loop walks the hash chain newest bound first; socket = bind order"
    else:
        how = "socket = position in reuse->socks[], which is bind order (no socket closed)"
    print(f"            {how}")
    return 0
