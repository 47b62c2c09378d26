# Strategy: the records a datagram touches while a capture is read, shaped for the hot loop.
# A tuple's counters in a flow are one slotted object (TupleCounter), which the fast path
# reaches from SID bytes + tuple key with one dict lookup (the per-protocol cache that
# pair_counter() fills); a flow (FlowState) holds its counters and the IDs linked into it
# and computes nothing per datagram -- totals, the last time and the report are made at the
# end. The fast path's per-first-byte tables are small ints and plain tuples (KIND_*,
# ExactLocation), so the loop compares and unpacks instead of calling. The analyzer (which
# creates, links and merges flows) and the reading loops (which count into them) both
# import this module; it imports neither, and holds no logic beyond making a record.
"""Per-flow and per-tuple counting records of the flow analyzer (private)."""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "DEFAULT_MAX_FLOWS",
    "KIND_EXACT",
    "KIND_GREASED",
    "KIND_KNOWN",
    "KIND_LONG",
    "KIND_NONE",
    "KIND_SLOW",
    "By",
    "ExactLocation",
    "FlowLimitReached",
    "FlowState",
    "PathIndex",
    "SidKey",
    "TupleCounter",
    "pair_counter",
    "reverse_key",
]

By = Literal["sid", "tuple"]

#: Flows held at once by default (``sidkit flows --max-flows``): at the per-flow bound the
#: tests hold (tests/flows/test_flow_limit.py, 1,700 bytes) under a gigabyte -- a laptop's share.
DEFAULT_MAX_FLOWS: Final = 500_000


class FlowLimitReached(Exception):  # noqa: N818 - a signal inside the analyzer, never seen
    """Raised where a new flow would pass the analyzer's ``max_flows``; caught where the
    datagram is counted (it joins no flow, see FlowAnalyzer)."""


SidKey = tuple[str, bytes]
# A 5-tuple is kept as the bytes of sidkit.flows._decode.tuple_key (addresses, then ports),
# which for IPv4 is one slice of the frame: cheap to make, to hash and to compare.

# What the fast path does with a payload, by its first byte (FlowAnalyzer._kind):
KIND_SLOW: Final = 0  # through the Extractor (and the QUIC/WireGuard linking)
KIND_NONE: Final = 1  # no configured protocol claims the byte: no session ID
KIND_KNOWN: Final = 2  # a QUIC short header of unknown length: try the CIDs seen in long headers
KIND_EXACT: Final = 3  # try the exact locations of the protocol that owns the byte
# a QUIC short header with the fixed bit clear (RFC 9287): QUIC -- through the Extractor --
# when its DCID starts with a CID seen in a long header, else the byte's base kind
KIND_GREASED: Final = 4
# a QUIC long header (QUIC claims the byte first, its plugin has long_header_ids): the two IDs
# from the plugin, linked and counted without a SessionId; anything else goes the slow way
KIND_LONG: Final = 5

# An exact location, compiled: (offset, length, needed, guards on other bytes, the
# protocol's SID -> flow map, its SID + tuple key -> counters cache, protocol).
ExactLocation = tuple[
    int,
    int,
    int,
    tuple[tuple[int, int, int], ...],
    "dict[bytes, FlowState]",
    "dict[bytes, TupleCounter]",
    str,
]


class TupleCounter:
    """One tuple's counters in one flow: its first and latest datagram's times, datagrams,
    payload bytes on the wire, the flow (its index in the analyzer's list of flows,
    ``FlowState.order``), and the sequence number of its latest datagram. A slotted object,
    so that counting a datagram writes into one small block of memory (a list's items live
    in a second one). The flow is named by its index rather than held: a flow holds its
    counters, and a counter holding its flow would make every flow a reference cycle, which
    only the cyclic garbage collector can free (see sidkit.flows._analyzer.gc_paused)."""

    __slots__ = ("first", "flow", "last", "n", "seq", "size")

    def __init__(self, first: int, last: int, n: int, size: int, flow: int, seq: int) -> None:
        self.first = first
        self.last = last
        self.n = n
        self.size = size
        self.flow = flow
        self.seq = seq


class FlowState:
    """A flow while the capture is read. ``tuples`` maps a tuple key to its counters
    (:class:`TupleCounter`); the flow's datagram and byte totals are their sums and its last
    time is the one of the counter with the latest datagram (the highest sequence number)
    -- all made only for the report, so that a datagram touches its counters and nothing
    else. ``first`` is the flow's first datagram's time; a merge keeps the earliest."""

    __slots__ = (
        "alive",
        "first",
        "issued",
        "order",
        "pairs",
        "protocol",
        "sids",
        "sidset",
        "tuples",
    )

    def __init__(self, protocol: str | None, ts: int, order: int) -> None:
        self.protocol = protocol
        self.order = order
        self.sids: list[SidKey] = []
        # by="tuple": the IDs seen on this tuple (made on the first; most flows have none,
        # and an empty set costs 216 bytes -- per flow, what the flow limit is sized by)
        self.sidset: set[SidKey] | None = None
        self.first = ts
        self.tuples: dict[bytes, TupleCounter] = {}
        # cache keys to drop on merge
        self.pairs: list[tuple[dict[bytes, TupleCounter], bytes]] = []
        self.alive = True
        # QUIC: per endpoint (address + port bytes) of the connection, the length of the
        # CIDs it chose (from its long headers)
        # (made on the first long header: only QUIC flows have one)
        self.issued: dict[bytes, int] | None = None


class PathIndex(dict[bytes, "TupleCounter"]):
    """The analyzer's path index (tuple key -> the counters of the SID flow that last
    started using that tuple), which also owns ``empty``: per tuple key, the counters a
    QUIC short header with an empty DCID on that tuple was last counted in. What put a
    datagram there -- the path index, the CID lengths endpoints chose, the flows' merges --
    changes only on a new path entry for the tuple or its reverse (dropped here), a long header
    or a merge (the analyzer clears it then), so the fast path may count the next such
    datagram of the tuple there directly.
    Reads are plain dict reads; only writes, which are rare, pay for the override."""

    __slots__ = ("empty",)

    def __init__(self) -> None:
        super().__init__()
        self.empty: dict[bytes, TupleCounter] = {}

    def __setitem__(self, key: bytes, value: TupleCounter) -> None:
        super().__setitem__(key, value)
        if self.empty:  # a datagram on the tuple or its reverse may now go elsewhere
            self.empty.pop(key, None)
            self.empty.pop(reverse_key(key), None)


def reverse_key(tk: bytes) -> bytes:
    """The tuple key of the other direction (the layout of sidkit.flows._decode.tuple_key:
    source and destination addresses, then source and destination ports)."""
    a = (len(tk) - 4) >> 1
    return tk[a : a + a] + tk[:a] + tk[a + a + 2 :] + tk[a + a : a + a + 2]


def pair_counter(
    st: FlowState,
    pairs: dict[bytes, TupleCounter],
    key: bytes,
    tk: bytes,
    ts: int,
    path: PathIndex,
) -> TupleCounter:
    """The counters of tuple *tk* in flow *st*, cached in *pairs* under *key* (SID bytes
    + tuple key); a new tuple's start at zero datagrams and become *path*'s entry for *tk*
    (the analyzer's path index: the SID flow that last started using a tuple)."""
    c = st.tuples.get(tk)
    if c is None:
        c = st.tuples[tk] = path[tk] = TupleCounter(ts, ts, 0, 0, st.order, -1)
    pairs[key] = c
    st.pairs.append((pairs, key))
    return c
