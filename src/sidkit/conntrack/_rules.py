# Strategy: the per-entry rules of the conntrack model, as pure functions over one Entry: the
# UDP tracker's timeout/ASSURED step, which protocols have a tracker here at all,
# nf_nat_setup_info's and nf_nat_packet's rewrites, the clash-merge test, and the tuple
# arithmetic of a SID migration. They read kernel state and return or set it; the table
# (sidkit.conntrack) owns placement, chains and counters. Kept apart so that each rule can be
# read next to the kernel function it models. What the model leaves out here: helpers and
# expectations, and the TCP/ICMP (and SCTP, DCCP, GRE) trackers, which it refuses.
"""Per-entry rules of the conntrack model (private)."""

from __future__ import annotations

from typing import Final

from sidkit.conntrack._types import (
    GENERIC_TIMEOUT,
    Entry,
    MigrationWork,
    Nat,
    Status,
    UdpTimeouts,
    UnsupportedProtocolError,
)
from sidkit.keys import IPPROTO_UDP, IPPROTO_UDPLITE, Direction, FiveTuple

__all__ = [
    "check_protocol",
    "migration_work",
    "moved_tuples",
    "nat_setup",
    "nat_translate",
    "nf_ct_match",
    "nf_ct_match_reverse",
    "refresh",
    "reply_outcome",
    "tracker_packet",
]

_ASSURED = int(Status.ASSURED)
_CONFIRMED = int(Status.CONFIRMED)
_SEEN_REPLY = int(Status.SEEN_REPLY)
_NAT_CLASH = int(Status.NAT_CLASH)
_FIXED_TIMEOUT = int(Status.FIXED_TIMEOUT)

# Protocols with their own kernel tracker that this model does not implement.
_UNSUPPORTED: Final = {1: "ICMP", 6: "TCP", 33: "DCCP", 47: "GRE", 58: "ICMPv6", 132: "SCTP"}


def check_protocol(t: FiveTuple) -> None:
    """Refuse a tuple whose protocol has a kernel tracker the model does not implement."""
    name = _UNSUPPORTED.get(t.protocol)
    if name is not None:
        raise UnsupportedProtocolError(
            f"the {name} tracker (protocol {t.protocol}) is not modelled; sidkit models "
            "UDP, UDP-Lite and the generic tracker"
        )


def refresh(e: Entry, extra: float, now: float) -> None:
    """``__nf_ct_refresh_acct`` (v6.12): skip fixed timeouts; absolute for confirmed
    entries (``extra_jiffies += nfct_time_stamp``), relative before confirmation."""
    if e.status & _FIXED_TIMEOUT:
        return
    e.timeout = extra + now if e.status & _CONFIRMED else extra


def tracker_packet(e: Entry, now: float, to: UdpTimeouts) -> None:
    """``nf_conntrack_udp_packet`` (``net/netfilter/nf_conntrack_proto_udp.c``, as in 6.1 and
    6.12) for UDP and UDP-Lite; ``generic_packet`` (600 s) for other protocols.

    While unconfirmed, ``stream_ts = now + 2 s``. With a reply seen, the timeout is the
    unreplied one until a packet arrives after ``stream_ts``; that packet switches to the
    stream timeout and sets ASSURED (never for ``IPS_NAT_CLASH`` entries). The status read
    is the one before this packet: the first reply is still refreshed as unreplied. With
    ``stream_delay=None`` (kernels of the 180 s era) the stream timeout and ASSURED come
    with the first packet after a reply, whenever it arrives.
    """
    st = e.status
    if e.original.protocol not in (IPPROTO_UDP, IPPROTO_UDPLITE):
        refresh(e, GENERIC_TIMEOUT, now)
        return
    delay = to.stream_delay
    if not st & _CONFIRMED:
        e.stream_ts = now + (delay or 0.0)
    if st & _SEEN_REPLY:
        extra = to.unreplied
        stream = False
        # time_after(jiffies, ct->proto.udp.stream_ts); no delay at all in the 180 s era
        if now > e.stream_ts or delay is None:
            extra = to.replied
            stream = not st & _ASSURED
        refresh(e, extra, now)
        if st & _NAT_CLASH:
            return
        if stream:
            e.status |= _ASSURED
    else:
        refresh(e, to.unreplied, now)


def nat_setup(e: Entry, nat: Nat) -> None:
    """``nf_nat_setup_info``'s effect on an unconfirmed entry: the reply tuple becomes the
    inverse of the translated original tuple, and ``IPS_SRC_NAT``/``IPS_DST_NAT`` are set."""
    e._set_tuples(e.original, nat.apply(e.original).reversed())
    e.nat = nat
    if nat.snat is not None:
        e.status |= Status.SRC_NAT | Status.SRC_NAT_DONE
    if nat.dnat is not None:
        e.status |= Status.DST_NAT | Status.DST_NAT_DONE


_NAT_BITS: Final = int(Status.SRC_NAT | Status.DST_NAT)


def nat_translate(entry: Entry, direction: int, t: FiveTuple) -> FiveTuple:
    """``nf_nat_packet`` (``net/netfilter/nf_nat_core.c``): the packet's tuple after NAT.

    Each manip takes its target from the inverse of the other direction's tuple; in the
    REPLY direction the source and destination manips swap roles (``mtype = !mtype``).
    """
    st = entry.status
    if not st & _NAT_BITS:  # the common case: no NAT on this entry
        return t
    d = Direction(direction)
    src_manip = bool(st & Status.DST_NAT) if d else bool(st & Status.SRC_NAT)
    dst_manip = bool(st & Status.SRC_NAT) if d else bool(st & Status.DST_NAT)
    if not (src_manip or dst_manip):
        return t
    other = entry.original if d else entry.reply
    src, sport, dst, dport = t.src, t.sport, t.dst, t.dport
    if src_manip:
        src, sport = other.dst, other.dport
    if dst_manip:
        dst, dport = other.src, other.sport
    return FiveTuple(src, sport, dst, dport, t.protocol)


def nf_ct_match(a: Entry, b: Entry) -> bool:
    """``nf_ct_match``: same tuples both ways, same zone ids both ways."""
    return (
        a.original == b.original
        and a.reply == b.reply
        and a.zone.id_for(0) == b.zone.id_for(0)
        and a.zone.id_for(1) == b.zone.id_for(1)
    )


def nf_ct_match_reverse(a: Entry, b: Entry) -> bool:
    """``nf_ct_match_reverse``: b's original is a's reply and the other way round."""
    return (
        a.original == b.reply
        and a.reply == b.original
        and a.zone.id_for(1) == b.zone.id_for(0)
        and a.zone.id_for(0) == b.zone.id_for(1)
    )


def moved_tuples(e: Entry, d: int, new: FiveTuple) -> tuple[FiveTuple, FiveTuple]:
    """The entry's (original, reply) tuples after the sender of direction *d* moved to
    *new*, keeping its NAT bindings (an SNAT binding keeps its address and port)."""
    nat = e.nat
    if d == 0:
        return new, (nat.apply(new) if nat is not None else new).reversed()
    # The replying side moved: it is the reply tuple's source. Without DNAT the client
    # addressed it directly, so the original tuple's destination follows.
    o = e.original
    if nat is not None and nat.dnat is not None:
        return o, new
    return FiveTuple(o.src, o.sport, new.src, new.sport, o.protocol), new


def migration_work(e: Entry, orig: FiveTuple, reply: FiveTuple) -> MigrationWork:
    """What replacing the entry's tuples by (*orig*, *reply*) touches (see MigrationWork)."""
    o_changed = orig != e.original
    r_changed = reply != e.reply
    rehashes = (o_changed and not e._skm & 1) + (r_changed and not e._skm & 2)
    nat = 0
    if e.nat is not None:
        if e.nat.snat is not None and (orig.src, orig.sport) != (e.original.src, e.original.sport):
            nat += 1
        if e.nat.dnat is not None and r_changed:
            nat += 1
    return MigrationWork(o_changed + r_changed, rehashes, nat)


def reply_outcome(e: Entry, d: int, moved: bool) -> str:
    """What a packet sent back to the migrated side's new address meets (MigrationCost)."""
    if moved:
        return "matched"
    if d == 0 and e.nat is not None and e.nat.snat is not None:
        return "misrouted"  # the reply still reaches the binding; un-SNATed to the old src
    return "unmatched"
