# Strategy: the storage of nf_conntrack's hash (net/netfilter/nf_conntrack_core.c, read in
# Debian's 6.1.192 and 6.12.117 sources): one array of htable_size chains; every entry linked
# twice, by its ORIGINAL node (the Entry itself) and its REPLY node (a one-pointer
# _ReplyNode), at reciprocal_scale(raw hash, htable_size) = (raw * htable_size) >> 32, newest
# first. A chain is a Python list whose *end* is the kernel's head, so linking is an append
# and a walk goes reversed; an empty chain is None, not [], to keep 65536 empty buckets cheap.
# It keeps the two counts nf_ct_delete changes together (allocated entries and confirmed
# ones) and knows nothing of hashing keys, bounds, eviction policy or SID migrations; the
# walk reaps the expired entries it passes, as the kernel's does. No concurrency: no
# search_restart, no per-CPU lists.
"""The conntrack hash chains: placement, linking, the lookup walk (private)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from sidkit.conntrack._types import Entry, Stats, Status, _ReplyNode
from sidkit.keys import Direction, FiveTuple, FlowKey, SessionId, Zone

__all__ = ["Chains", "entry_of"]

_DYING: Final = int(Status.DYING)
_M32: Final = 0xFFFFFFFF


def entry_of(node: Entry | _ReplyNode) -> Entry:
    """The entry a chain node belongs to (``nf_ct_tuplehash_to_ctrack``)."""
    return node.ct if isinstance(node, _ReplyNode) else node


class Chains:
    """``htable_size`` hash chains and the table's two entry counts."""

    __slots__ = ("buckets", "confirmed", "count", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buckets: list[list[Entry | _ReplyNode] | None] = [None] * size
        self.count = 0  # cnet->count: allocated entries, confirmed or not
        self.confirmed = 0

    def link(self, e: Entry) -> None:
        """``__nf_conntrack_hash_insert``: ORIGINAL node at the head, then REPLY at the
        head."""
        size = self.size
        bk = self.buckets
        b0 = ((e._hashes >> 32) * size) >> 32
        b1 = ((e._hashes & _M32) * size) >> 32
        chain = bk[b0]
        if chain is None:
            bk[b0] = [e]
        else:
            chain.append(e)
        chain = bk[b1]
        if chain is None:
            bk[b1] = [e._reply_node]
        else:
            chain.append(e._reply_node)

    def link_node(self, e: Entry, d: int) -> None:
        """Add *e*'s node of direction *d* at the head of its chain."""
        raw = e._hashes >> 32 if d == 0 else e._hashes & _M32
        b = (raw * self.size) >> 32
        node = e if d == 0 else e._reply_node
        chain = self.buckets[b]
        if chain is None:
            self.buckets[b] = [node]
        else:
            chain.append(node)

    def unlink_node(self, e: Entry, d: int) -> None:
        """Remove *e*'s node of direction *d* from its chain (nothing when that node was
        never linked: the ORIGINAL node of a NAT-clash entry is a fake add)."""
        raw = e._hashes >> 32 if d == 0 else e._hashes & _M32
        b = (raw * self.size) >> 32
        chain = self.buckets[b]
        if chain is None:
            return
        node = e if d == 0 else e._reply_node
        for i in range(len(chain) - 1, -1, -1):
            if chain[i] is node:
                del chain[i]
                break
        if not chain:
            self.buckets[b] = None

    def kill(self, e: Entry) -> None:
        """``nf_ct_delete`` of a confirmed entry: unhash, mark dying, free."""
        self.unlink_node(e, 0)
        self.unlink_node(e, 1)
        e.status |= _DYING
        self.count -= 1
        self.confirmed -= 1

    def find(
        self, key: FlowKey, zone: Zone, raw: int, now: float, stats: Stats
    ) -> tuple[Entry, int] | None:
        """``____nf_conntrack_find``: walk the chain newest first, reap the expired entries
        met before the match, compare with ``nf_ct_key_equal``."""
        chain = self.buckets[(raw * self.size) >> 32]
        if not chain:
            return None
        is_sid = key.__class__ is SessionId
        tkey: FiveTuple = key  # type: ignore[assignment]  # used only when not is_sid
        zid = zone.id
        zdir = zone.dir
        reap: list[Entry] | None = None
        found: tuple[Entry, int] | None = None
        for node in reversed(chain):
            if node.__class__ is Entry:
                e: Entry = node
                d = 0
            else:
                e = node.ct  # type: ignore[union-attr]
                d = 1
            if e.timeout <= now:
                if e.status & _DYING:
                    continue
                if reap is None:
                    reap = [e]
                elif e not in reap:
                    reap.append(e)
                continue
            if e._skm >> d & 1:
                if not is_sid or e.sid != key:
                    continue
            else:
                if is_sid:
                    continue
                if d:
                    t = e._reply
                    if t is None:  # the plain inverse: compare without building it
                        o = e.original
                        if not (
                            tkey.sport == o.dport
                            and tkey.dport == o.sport
                            and tkey.src == o.dst
                            and tkey.dst == o.src
                            and tkey.protocol == o.protocol
                        ):
                            continue
                    elif t is not key and t != key:
                        continue
                else:
                    t = e.original
                    if t is not key and not (  # FiveTuple equality, ports first (cheapest)
                        t.sport == tkey.sport
                        and t.dport == tkey.dport
                        and t.src == tkey.src
                        and t.dst == tkey.dst
                        and t.protocol == tkey.protocol
                        and t.__class__ is tkey.__class__  # attrs eq: same class only
                    ):
                        continue
            ez = e.zone
            if (ez.id if ez.dir >> d & 1 else 0) != (zid if zdir >> d & 1 else 0):
                continue
            found = (e, d)
            break
        if reap is not None:
            for e in reap:
                self.kill(e)
                stats.expired += 1
        return found

    @staticmethod
    def key_equal_node(node: Entry | _ReplyNode, key: FlowKey, zone: Zone) -> bool:
        """``nf_ct_key_equal`` without the expiry check (confirmation does not reap)."""
        e = entry_of(node)
        d = 0 if node is e else 1
        if e._skm >> d & 1:
            if e.sid != key:
                return False
        elif d:
            t = e._reply
            if t is None:  # the plain inverse: compare without building it (as find does)
                o = e.original
                if not (
                    key.__class__ is FiveTuple
                    and key.sport == o.dport
                    and key.dport == o.sport
                    and key.src == o.dst
                    and key.dst == o.src
                    and key.protocol == o.protocol
                ):
                    return False
            elif t != key:
                return False
        else:
            t = e.original
            if t is not key and not (  # FiveTuple equality, ports first (cheapest)
                key.__class__ is t.__class__  # attrs eq: same class only
                and t.sport == key.sport
                and t.dport == key.dport
                and t.src == key.src
                and t.dst == key.dst
                and t.protocol == key.protocol
            ):
                return False
        ez = e.zone
        return (ez.id if ez.dir >> d & 1 else 0) == (zone.id if zone.dir >> d & 1 else 0)

    @staticmethod
    def inverse_equal_node(node: Entry | _ReplyNode, o: FiveTuple, zone: Zone) -> bool:
        """:meth:`key_equal_node` of ``o.reversed()`` without building the inverse tuple
        (confirmation compares a new entry's plain REPLY key with every node of its chain)."""
        e = entry_of(node)
        d = 0 if node is e else 1
        if e._skm >> d & 1:
            return False  # a SID-keyed node never equals a tuple
        t = e._reply if d else e.original
        if t is None:  # the node's key is the inverse of e.original: equal iff the originals are
            t = e.original
            if t is not o and not (
                t.sport == o.sport
                and t.dport == o.dport
                and t.src == o.src
                and t.dst == o.dst
                and t.protocol == o.protocol
            ):
                return False
        elif not (
            t.sport == o.dport
            and t.dport == o.sport
            and t.src == o.dst
            and t.dst == o.src
            and t.protocol == o.protocol
            and t.__class__ is FiveTuple  # o.reversed() is a plain FiveTuple
        ):
            return False
        ez = e.zone
        return (ez.id if ez.dir >> d & 1 else 0) == (zone.id if zone.dir >> d & 1 else 0)

    def resize(self, size: int) -> None:
        """``nf_conntrack_hash_resize``: move every node to *size* chains (old chains in
        order, each from its head, added at the new chains' heads)."""
        new: list[list[Entry | _ReplyNode] | None] = [None] * size
        for chain in self.buckets:
            if not chain:
                continue
            for node in reversed(chain):
                e = entry_of(node)
                raw = e._hashes >> 32 if node is e else e._hashes & _M32
                b = (raw * size) >> 32
                nc = new[b]
                if nc is None:
                    new[b] = [node]
                else:
                    nc.append(node)
        self.buckets = new
        self.size = size

    def entries(self) -> Iterator[Entry]:
        """Entries in bucket order of their ORIGINAL node, newest first within a chain."""
        for chain in self.buckets:
            if chain:
                for node in reversed(chain):
                    if isinstance(node, Entry):
                        yield node

    def nodes(self) -> Iterator[tuple[int, Entry, Direction]]:
        """Every node ``(bucket, entry, direction)`` in table order."""
        for b, chain in enumerate(self.buckets):
            if chain:
                for node in reversed(chain):
                    if isinstance(node, Entry):
                        yield b, node, Direction.ORIGINAL
                    else:
                        yield b, node.ct, Direction.REPLY

    def lengths(self) -> list[int]:
        """Nodes per bucket, bucket 0 first."""
        return [len(c) if c else 0 for c in self.buckets]
