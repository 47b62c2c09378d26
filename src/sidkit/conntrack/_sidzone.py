# Strategy: the seed's SID zones on top of the kernel model -- a zone that keys entries by an
# application-layer session ID instead of the tuple ("resolve_normal_ct hashes the SID") --
# and what that design costs under NAT. Two steps of a packet live here: choosing its lookup
# keys (the SID in the zone's SID-keyed directions, the tuple elsewhere; a payload too short
# for the SID falls back to the tuple and is counted), and the migration policy applied when
# a known SID arrives from a new tuple. The cost of a migration is returned as data
# (MigrationCost), never hidden: PURE_SID leaves the entry's tuples and NAT state stale,
# VALIDATED rehashes and moves the tuple-keyed nodes, STRICT refuses. No kernel does any of
# this, so no oracle checks it; the tuple arithmetic itself is in _rules.
"""SID zones: a packet's lookup keys, and migrations of a known SID (private)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sidkit.conntrack._chains import Chains
from sidkit.conntrack._hash import TableHash
from sidkit.conntrack._rules import migration_work, moved_tuples, reply_outcome
from sidkit.conntrack._types import (
    Entry,
    MigrationCost,
    MigrationPolicy,
    MigrationWork,
    Stats,
)
from sidkit.keys import Direction, FiveTuple, FlowKey, SessionId, SidTooShortError, Zone, flow_key

__all__ = ["Validator", "migrate", "packet_keys"]

_M32: Final = 0xFFFFFFFF

Validator = Callable[[Entry, FiveTuple, float], bool]
"""``validate(entry, new_tuple, now) -> bool``: the VALIDATED policy's path check."""


def packet_keys(
    t: FiveTuple,
    zone: Zone,
    payload: bytes | bytearray | memoryview | None,
    sid: SessionId | None,
    stats: Stats,
) -> tuple[FlowKey, FlowKey, SessionId | None, bool]:
    """The lookup keys for the ORIGINAL and REPLY id of *zone*, the SID, and whether
    the SID fell back to the tuple (payload too short)."""
    cfg = zone.sid
    if cfg is None:
        return t, t, None, False
    try:
        d = Direction.ORIGINAL if zone.dir & 1 else Direction.REPLY
        k = flow_key(zone, t, payload, direction=d, sid=sid)
    except SidTooShortError:
        stats.sid_fallback += 1
        return t, t, None, True
    assert isinstance(k, SessionId)
    return (
        k if zone.dir & 1 else t,
        k if zone.dir & 2 else t,
        k,
        False,
    )


def migrate(
    chains: Chains,
    hasher: TableHash,
    policy: MigrationPolicy,
    validate: Validator | None,
    stats: Stats,
    e: Entry,
    d: int,
    new: FiveTuple,
    now: float,
) -> MigrationCost:
    """Apply the migration policy to a known SID arriving from *new* in direction *d*."""
    orig, reply = moved_tuples(e, d, new)
    needed = migration_work(e, orig, reply)
    none = MigrationWork()

    def cost(accepted: bool, done: MigrationWork, stale: bool, outcome: str) -> MigrationCost:
        return MigrationCost(
            policy, Direction(d), e.tuple(d), new, accepted, done, needed, stale, outcome
        )

    if policy is MigrationPolicy.STRICT:
        stats.sid_refused += 1
        return cost(False, none, False, "refused")
    if policy is MigrationPolicy.PURE_SID:
        stats.sid_migrated += 1
        return cost(True, none, needed != none, reply_outcome(e, d, moved=False))
    if validate is None or not validate(e, new, now):
        stats.sid_validation_failed += 1
        return cost(False, none, False, "refused")
    # VALIDATED and approved: rewrite the tuples; move the tuple-keyed nodes whose
    # tuple changed (unlink, hash again, add at the head of the new chain), unless the
    # new tuple is already another entry's node (nf_conntrack_tuple_taken's question).
    zone = e.zone
    moves: list[tuple[int, int]] = []
    for dd, t in ((0, orig), (1, reply)):
        if t == e.tuple(dd) or e._skm >> dd & 1:
            continue
        raw = hasher.hash(t, zone.id if zone.dir >> dd & 1 else 0, cache=False)
        taken = chains.find(t, zone, raw, now, stats)
        if taken is not None and taken[0] is not e:
            stats.found += 1
            stats.sid_migration_clash += 1
            return cost(False, none, False, "refused")
        moves.append((dd, raw))
    for dd, _raw in moves:
        chains.unlink_node(e, dd)
    done = cost(True, needed, False, "matched")  # e.tuple(d) still the old tuple here
    e._set_tuples(orig, reply)
    for dd, raw in moves:
        keep = e._hashes & _M32 if dd == 0 else e._hashes >> 32 << 32
        e._hashes = keep | (raw << 32 if dd == 0 else raw)
        chains.link_node(e, dd)
    stats.sid_migrated += 1
    return done
