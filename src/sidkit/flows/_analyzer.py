# Strategy: one pass over a capture, holding only per-flow and per-tuple counters. A
# datagram with a session ID joins the flow of that ID, one without joins the flow of its
# bidirectional 5-tuple. Memory grows with flows and tuples, never with datagrams.
#
# The reference path sends every datagram through the plugin Extractor. The fast path (the
# default; FlowAnalyzer(fast=False) turns it off, and the tests hold the two to identical
# reports) asks the plugins only where it must. Per first byte of the payload it knows what
# the Extractor would do: no configured protocol claims the byte (no ID); the byte is a QUIC
# short header whose DCID length is learned (below), so a DCID that starts with a CID seen in
# a long header is that CID; or the protocol that owns the byte has *exact* locations
# (sidkit.extract.SidLocation.exact: where one applies, the plugin returns exactly its
# bytes). Then the ID is a slice, and SID bytes + tuple key find the tuple's counters in one
# dict lookup. Everything else -- long headers, which also carry the CID linking below,
# handshake messages, unknown traffic -- takes the reference path. For classic pcap the
# record loop, the Ethernet/IPv4/UDP check and all of this are one loop over the read
# buffers (FlowAnalyzer._read_pcap), which is what `sidkit flows` spends its time in.
#
# A flow is a set of session IDs that the traffic itself proves to be one session. Each ID
# maps to its flow; when the traffic links IDs of two flows, the older flow absorbs the
# younger, whose IDs are re-pointed (links are rare: one per long header at most):
#
# * QUIC long headers carry both connection IDs (RFC 9000 section 17.2): the DCID chosen by
#   the receiver and the SCID chosen by the sender. Linking DCID with SCID for every long
#   header joins the client's Initial (random original DCID + client CID), the server's
#   Initial/Handshake (client CID + server CID), Retry and Version Negotiation into one
#   flow that contains both directions' CIDs, so the 1-RTT packets of both directions, which
#   carry only a DCID, land in it too.
# * A QUIC short header does not say how long its DCID is (RFC 8999 section 5.2). Unless the
#   user configured the length (``--option quic.cid_length=8``), the module learns it from
#   the same long headers, in this order: a DCID that starts with a connection ID already
#   seen; the length of the SCIDs the receiving endpoint put in its long headers; the length
#   of the SCIDs the sending endpoint's peers used; the only SCID length seen so far. The
#   extraction itself is the plugin's, run with the learned ``cid_length`` -- except in the
#   first case on the fast path, where the plugin's exact short-header location for that
#   length makes the CID seen the answer.
# * A WireGuard handshake response carries the responder's sender index beside the
#   initiator's receiver index (whitepaper section 5.4.3): the two are linked the same way.
#
# What cannot be linked without decryption: connection IDs issued in NEW_CONNECTION_ID frames
# (RFC 9000 section 19.15) that a peer switches to, as in an active migration -- such a
# switch starts a new flow. A NAT rebinding, which keeps the CID, stays one flow.
"""Group a capture's UDP datagrams into flows by session ID (``sidkit flows``)."""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final, Literal

import attrs

from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit._validate import as_bytes, check_uint
from sidkit.extract import Extractor
from sidkit.flows._capture import (
    DECODERS,
    ETHER_IPV4_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPES,
    Capture,
    CaptureError,
    Datagram,
    NotACaptureError,
    PcapLayout,
    UnsupportedLinkTypeError,
    split_tuple_key,
    tuple_key,
)
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import PluginError, PluginHost, default_host

__all__ = [
    "DEFAULT_PROTOCOLS",
    "CaptureError",
    "Flow",
    "FlowAnalyzer",
    "FlowReport",
    "NotACaptureError",
    "Summary",
    "TupleStats",
    "UnsupportedLinkTypeError",
    "analyze",
    "default_protocols",
]

DEFAULT_PROTOCOLS: Final = ("quic", "wireguard", "dtls")
"""The protocols used when none are named, in this order, as far as they are installed and
usable with the given options. They are the ones whose IDs can be recognised on unknown
traffic: QUIC by its header form and fixed bits, WireGuard by type, reserved zeros and exact
sizes, DTLS by its content type -- but DTLS only when ``dtls.cid_length`` is given, because
that length is not on the wire of a ``tls12_cid`` record (RFC 9146 section 4). The others
need their port or configuration to be safe (IPsec on 4500, GTP-U on 2152, RTP's SSRC would
claim a quarter of all random first bytes): name them with ``--protocol``."""

By = Literal["sid", "tuple"]
Progress = Callable[[int, int | None], None]

_NS: Final = 1_000_000_000


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _addr(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


@attrs.frozen
class TupleStats:
    """One direction of one 5-tuple within a flow: who sent to whom, when, how much.

    ``src``/``dst`` are addresses as text; ``first_ns``/``last_ns`` are capture timestamps in
    nanoseconds since the epoch; ``bytes`` counts UDP payload bytes as on the wire (the UDP
    Length field minus 8, also for snaplen-truncated records).
    """

    src: str
    sport: int
    dst: str
    dport: int
    first_ns: int
    last_ns: int
    datagrams: int
    bytes: int

    @property
    def family(self) -> int:
        """4 or 6."""
        return 6 if ":" in self.src else 4

    def endpoints(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """The two endpoints in a canonical order (a path, whichever the direction)."""
        a, b = (self.src, self.sport), (self.dst, self.dport)
        return (a, b) if a <= b else (b, a)

    def to_json(self) -> dict[str, object]:
        """The tshark-named JSON object (see docs/flows.rst)."""
        ip = "ipv6" if self.family == 6 else "ip"
        return {
            f"{ip}.src": self.src,
            "udp.srcport": self.sport,
            f"{ip}.dst": self.dst,
            "udp.dstport": self.dport,
            "first_seen": _seconds(self.first_ns),
            "last_seen": _seconds(self.last_ns),
            "datagrams": self.datagrams,
            "bytes": self.bytes,
        }


def format_ns(ns: int, digits: int = 9) -> str:
    """Nanoseconds as exact decimal seconds text (``1700000000.007000000``), the way tshark
    prints ``frame.time_epoch``; *digits* of the fraction are kept (truncated)."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    frac = f"{ns % _NS:09d}"[:digits]
    return f"{sign}{ns // _NS}.{frac}" if digits else f"{sign}{ns // _NS}"


def _seconds(ns: int) -> float:
    # Through the decimal text, so that 1700000000007000000 ns prints as 1700000000.007.
    return float(format_ns(ns))


@attrs.frozen
class Flow:
    """A flow: every datagram of one session (``kind="sid"``), or every datagram without a
    session ID on one bidirectional 5-tuple (``kind="tuple"``).

    ``sid`` is the first session ID seen (hex) and ``sids`` all IDs linked into the flow, in
    the order they were first seen. For a tuple flow both are empty (under ``by="tuple"``
    ``sids`` lists the IDs the tuple's datagrams carried, for comparison). ``tuples`` are
    directional, ordered by first seen.
    """

    kind: Literal["sid", "tuple"]
    protocol: str | None
    sid: str | None
    sids: tuple[str, ...]
    first_ns: int
    last_ns: int
    datagrams: int
    bytes: int
    tuples: tuple[TupleStats, ...]

    @property
    def paths(self) -> int:
        """Distinct 5-tuples, counting the two directions of one as one path."""
        return len({t.endpoints() for t in self.tuples})

    def to_json(self) -> dict[str, object]:
        """The JSON object of one flow (see docs/flows.rst)."""
        return {
            "kind": self.kind,
            "protocol": self.protocol,
            "sid": self.sid,
            "sids": list(self.sids),
            "first_seen": _seconds(self.first_ns),
            "last_seen": _seconds(self.last_ns),
            "datagrams": self.datagrams,
            "bytes": self.bytes,
            "paths": self.paths,
            "tuples": [t.to_json() for t in self.tuples],
        }


@attrs.frozen
class Summary:
    """Counts over the whole capture.

    ``frames``: records read; ``udp``: UDP datagrams decoded; ``with_sid`` + ``without_sid``
    = ``udp``; ``skipped``: frames that were no usable UDP datagram, by reason (``not-ip``,
    ``not-udp``, ``ip-fragment``, ``truncated``, ...); ``no_sid``: why datagrams had no ID,
    by reason (``none``: no configured protocol found one; ``malformed:<protocol>``;
    ``quic-cid-length-unknown``); ``errors``: capture problems that stopped the reading.
    """

    capture: str
    format: str
    linktypes: Mapping[str, int]
    protocols: tuple[str, ...]
    by: str
    frames: int
    udp: int
    with_sid: int
    without_sid: int
    skipped: Mapping[str, int]
    no_sid: Mapping[str, int]
    errors: tuple[str, ...]
    sid_flows: int
    tuple_flows: int

    def to_json(self) -> dict[str, object]:
        """The JSON ``summary`` object."""
        return {
            "capture": self.capture,
            "format": self.format,
            "linktypes": dict(self.linktypes),
            "protocols": list(self.protocols),
            "by": self.by,
            "frames": self.frames,
            "udp": self.udp,
            "with_sid": self.with_sid,
            "without_sid": self.without_sid,
            "skipped": dict(self.skipped),
            "no_sid": dict(self.no_sid),
            "errors": list(self.errors),
            "sid_flows": self.sid_flows,
            "tuple_flows": self.tuple_flows,
        }


@attrs.frozen
class FlowReport:
    """What :func:`analyze` returns: the flows, ordered by first seen, and the summary."""

    flows: tuple[Flow, ...]
    summary: Summary

    def to_json(self) -> dict[str, object]:
        """``{"flows": [...], "summary": {...}}``."""
        return {"flows": [f.to_json() for f in self.flows], "summary": self.summary.to_json()}


# --------------------------------------------------------------------------------------------
# Protocol choice
# --------------------------------------------------------------------------------------------


def _split(options: Mapping[str, object]) -> dict[str, dict[str, object]]:
    per: dict[str, dict[str, object]] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise InputTypeError("option names must be str", code="bad-option")
        if isinstance(value, Mapping):
            per.setdefault(key, {}).update(value)
        elif "." in key:
            proto, _, name = key.partition(".")
            per.setdefault(proto, {})[name] = value
        else:
            raise InputValueError(
                f"option {key!r} must name its protocol, as in quic.cid_length",
                code="bad-option",
            )
    return per


def default_protocols(
    options: Mapping[str, object] | None = None, *, host: PluginHost | None = None
) -> tuple[str, ...]:
    """:data:`DEFAULT_PROTOCOLS` that are installed and have every required option in
    *options* (so DTLS joins only with ``dtls.cid_length``), plus any other protocol that
    *options* configures."""
    host = host or default_host()
    per = _split(options or {})
    chosen: list[str] = []
    for name in (*DEFAULT_PROTOCOLS, *per):
        if name in chosen or name not in host.protocols:
            continue
        spec = host.spec(name)
        if all(not o.required or o.name in per.get(name, {}) for o in spec.options):
            chosen.append(name)
    return tuple(chosen)


# --------------------------------------------------------------------------------------------
# The analyzer
# --------------------------------------------------------------------------------------------

_SidKey = tuple[str, bytes]
# A 5-tuple is kept as the bytes of sidkit._capture.tuple_key (addresses, then ports), which
# for IPv4 is one slice of the frame: cheap to make, to hash and to compare.

# What the fast path does with a payload, by its first byte (FlowAnalyzer._kind):
_SLOW: Final = 0  # through the Extractor (and the QUIC/WireGuard linking)
_NONE: Final = 1  # no configured protocol claims the byte: no session ID
_KNOWN: Final = 2  # a QUIC short header of unknown length: try the CIDs seen in long headers
_EXACT: Final = 3  # try the exact locations of the protocol that owns the byte

# An exact location, compiled: (offset, length, needed, guards on other bytes, the
# protocol's SID -> flow map, its SID + tuple key -> counters cache, protocol).
_Exact = tuple[
    int,
    int,
    int,
    tuple[tuple[int, int, int], ...],
    "dict[bytes, _FlowState]",
    "dict[bytes, _Counter]",
    str,
]


class _Counter:
    """One tuple's counters in one flow: its first and latest datagram's times, datagrams,
    payload bytes on the wire, the flow's state, and the sequence number of its latest
    datagram. A slotted object, so that counting a datagram writes into one small block of
    memory (a list's items live in a second one)."""

    __slots__ = ("first", "last", "n", "seq", "size", "state")

    def __init__(
        self, first: int, last: int, n: int, size: int, state: _FlowState, seq: int
    ) -> None:
        self.first = first
        self.last = last
        self.n = n
        self.size = size
        self.state = state
        self.seq = seq


class _FlowState:
    """A flow while the capture is read. ``tuples`` maps a tuple key to its counters
    (:class:`_Counter`); the flow's datagram and byte totals are their sums and its last
    time is the one of the counter with the latest datagram (the highest sequence number)
    -- all made only for the report, so that a datagram touches its counters and nothing
    else. ``first`` is the flow's first datagram's time; a merge keeps the earliest."""

    __slots__ = (
        "alive",
        "first",
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
        self.sids: list[_SidKey] = []
        self.sidset: set[_SidKey] = set()  # by="tuple": the IDs seen on this tuple
        self.first = ts
        self.tuples: dict[bytes, _Counter] = {}
        self.pairs: list[tuple[dict[bytes, _Counter], bytes]] = []  # cache keys to drop on merge
        self.alive = True


def _quic_short_bytes(extractor: Extractor) -> frozenset[int]:
    """First bytes of QUIC short headers for which the configured extractor can never find
    a DCID (no cid_length, no QUIC-LB, no known CIDs), so the learned length must be used."""
    if "quic" not in extractor.protocols:
        return frozenset()
    opts = extractor.options("quic")
    if opts["cid_length"] is not None or opts["quic_lb"] or opts["known_cids"]:
        return frozenset()
    grease = bool(opts["grease_quic_bit"])
    return frozenset(b for b in range(0x80) if grease or b & 0x40)


def _endpoints(tk: bytes) -> tuple[bytes, bytes]:
    """(source address + port, destination address + port) of a tuple key."""
    a = (len(tk) - 4) >> 1
    return tk[:a] + tk[a + a : a + a + 2], tk[a : a + a] + tk[a + a + 2 :]


def _canonical(tk: bytes) -> bytes:
    """The tuple key of the direction whose (address, port) endpoints are in order: both
    directions of a 5-tuple give the same key."""
    src, dst = _endpoints(tk)
    if src <= dst:
        return tk
    a = (len(tk) - 4) >> 1
    return tk[a : a + a] + tk[:a] + tk[a + a + 2 :] + tk[a + a : a + a + 2]


class FlowAnalyzer:
    """Streaming flow grouping: feed it datagrams (:meth:`add`) or whole captures
    (:meth:`read`), then ask for the :meth:`report`.

    *protocols* are protocol names of installed plugins (default:
    :func:`default_protocols`); *options* are per-protocol plugin options, as
    ``{"quic": {"cid_length": 8}}`` or ``{"quic.cid_length": 8}``. *by* is ``"sid"`` (flows
    by session ID, datagrams without one by 5-tuple) or ``"tuple"`` (everything by
    bidirectional 5-tuple, the kernel's default view).

    *fast* (the default) lets :meth:`read` skip the plugins where their exact locations
    (``exact`` :class:`~sidkit.extract.SidLocation` values) or the QUIC connection IDs
    learned from long headers already say what the plugin would return, and read classic
    pcap without building a record per frame. ``fast=False`` sends every datagram through the
    :class:`~sidkit.extract.Extractor`: the reference the fast path is tested against (the
    reports are identical).
    """

    def __init__(
        self,
        protocols: Sequence[str] | None = None,
        options: Mapping[str, object] | None = None,
        *,
        by: By = "sid",
        host: PluginHost | None = None,
        fast: bool = True,
    ) -> None:
        if by not in ("sid", "tuple"):
            raise InputValueError(f"by must be 'sid' or 'tuple', not {by!r}", code="bad-by")
        self.by: By = by
        self.fast = bool(fast)
        host = host or default_host()
        per = _split(options or {})
        if protocols is None:
            protocols = default_protocols(options, host=host)
        elif isinstance(protocols, str) or not isinstance(protocols, Sequence):
            raise InputTypeError("protocols must be a list of names", code="bad-plugins")
        for name in per:
            if name not in protocols:
                raise InputValueError(
                    f"options given for {name!r}, which is not among the protocols "
                    f"({', '.join(protocols) or 'none'})",
                    code="unknown-option",
                )
        self.protocols: tuple[str, ...] = tuple(protocols)
        self._per = per
        self._host = host
        self._extractor = Extractor(list(protocols), per, host=host) if protocols else None
        self._learn = _quic_short_bytes(self._extractor) if self._extractor else frozenset()
        self._by_length: dict[int, Extractor] = {}
        # QUIC length learning: CIDs seen in long headers, their lengths, and per endpoint
        # (address + port bytes) the SCID length it chose (issued) and its peers chose (peer).
        self._known: set[bytes] = set()
        self._known_flows: dict[bytes, _FlowState] = {}  # by="sid": known CID -> its flow
        self._known_lengths: tuple[int, ...] = ()
        self._issued: dict[bytes, int] = {}
        self._peer: dict[bytes, int] = {}
        self._scid_lengths: set[int] = set()
        # flows: every state in creation order; per protocol, SID -> the state of its flow
        # (kept pointing at the surviving flow when two merge); per tuple key, a tuple
        # flow's counters; per canonical tuple key, the tuple flow.
        self._states: list[_FlowState] = []
        self._cells: dict[str, dict[bytes, _FlowState]] = {p: {} for p in self.protocols}
        # The fast path's cache: per protocol, SID bytes + tuple key -> that tuple's counters
        # in the SID's flow (one lookup per datagram instead of two); entries of a flow that
        # merges into another are dropped and made again on the next miss.
        self._pairs: dict[str, dict[bytes, _Counter]] = {p: {} for p in self.protocols}
        self._tcount: dict[bytes, _Counter] = {}
        self._by_tuple: dict[bytes, _FlowState] = {}
        self._five: dict[bytes, FiveTuple] = {}
        self._seq = 0  # the sequence number of the datagram being counted
        self._kind, self._exact = self._fast_tables()
        # counters
        self.frames = 0
        self.udp = 0
        self.with_sid = 0
        self.skipped: dict[str, int] = {}
        self.no_sid: dict[str, int] = {}
        self.errors: list[str] = []
        self.linktypes: dict[int, int] = {}
        self.capture_name = ""
        self.format = ""

    def _fast_tables(self) -> tuple[list[int], list[tuple[_Exact, ...]]]:
        """Per first byte, what the fast path may do (module constants) and the exact
        locations it tries. Bytes whose datagrams feed the QUIC or WireGuard linking stay
        on the slow path even if a plugin called their location exact."""
        extractor = self._extractor
        kind = [_NONE] * 256
        exact: list[tuple[_Exact, ...]] = [()] * 256
        if extractor is None:
            return kind, exact
        try:
            table = extractor.exact_table()
        except PluginError:  # a plugin whose locations are broken: ask it every time
            table = ((),) * 256
        for byte in range(256):
            if byte in self._learn:
                kind[byte] = _KNOWN
                continue
            if not extractor.claimants(byte):
                continue
            compiled = tuple(
                (
                    loc.offset,
                    loc.length,
                    loc.needed,
                    tuple((g.offset, g.mask, g.value) for g in loc.guards if g.offset),
                    self._cells.setdefault(loc.protocol, {}),
                    self._pairs.setdefault(loc.protocol, {}),
                    loc.protocol,
                )
                for loc in table[byte]
                if not (loc.protocol == "quic" and byte & 0x80)
                and not (loc.protocol == "wireguard" and byte == 2)
            )
            kind[byte] = _EXACT if compiled else _SLOW
            exact[byte] = compiled
        return kind, exact

    # -- flows --

    @staticmethod
    def _last(st: _FlowState) -> int:
        """The time of the flow's latest datagram, in capture order (see
        :class:`_FlowState`; the flow has at least one)."""
        return max(st.tuples.values(), key=lambda c: c.seq).last

    def _new_state(self, protocol: str | None, ts: int) -> _FlowState:
        st = _FlowState(protocol, ts, len(self._states))
        self._states.append(st)
        return st

    def _sid_state(self, protocol: str, value: bytes, ts: int) -> _FlowState:
        """The flow of a session ID, a new one if the ID is new."""
        cells = self._cells.get(protocol)
        if cells is None:
            cells = self._cells[protocol] = {}
        st = cells.get(value)
        if st is None:
            st = cells[value] = self._new_state(protocol, ts)
            st.sids.append((protocol, value))
        return st

    def _link(self, a: _SidKey, b: _SidKey, ts: int) -> None:
        """Both IDs name one session: merge their flows (the older flow absorbs the other)."""
        keep = self._sid_state(a[0], a[1], ts)
        cells = self._cells.setdefault(b[0], {})
        gone = cells.get(b[1])
        if gone is None:
            cells[b[1]] = keep
            keep.sids.append(b)
            return
        if gone is keep:
            return
        if gone.order < keep.order:
            keep, gone = gone, keep
        keep.first = min(keep.first, gone.first)
        keep.sids.extend(gone.sids)
        known = self._known_flows
        for protocol, value in gone.sids:
            self._cells[protocol][value] = keep
            if protocol == "quic" and value in known:
                known[value] = keep
        for tk, g in gone.tuples.items():
            k = keep.tuples.get(tk)
            if k is None:
                keep.tuples[tk] = g
                g.state = keep
            else:
                k.first = min(k.first, g.first)
                k.last = max(k.last, g.last)
                k.n += g.n
                k.size += g.size
                k.seq = max(k.seq, g.seq)
        gone.tuples = {}
        gone.sids = []
        gone.alive = False
        for pairs, key in gone.pairs:
            pairs.pop(key, None)
        gone.pairs = []

    def _sid_datagram(self, protocol: str, value: bytes, ts: int, tk: bytes, length: int) -> None:
        st = self._sid_state(protocol, value, ts)
        c = st.tuples.get(tk)
        if c is None:
            st.tuples[tk] = _Counter(ts, ts, 1, length, st, self._seq)
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq

    @staticmethod
    def _pair(
        st: _FlowState, pairs: dict[bytes, _Counter], key: bytes, tk: bytes, ts: int
    ) -> _Counter:
        """The counters of tuple *tk* in flow *st*, cached in *pairs* under *key* (SID bytes
        + tuple key); a new tuple's start at zero datagrams."""
        c = st.tuples.get(tk)
        if c is None:
            c = st.tuples[tk] = _Counter(ts, ts, 0, 0, st, -1)
        pairs[key] = c
        st.pairs.append((pairs, key))
        return c

    def _tuple_datagram(self, ts: int, tk: bytes, length: int, key: _SidKey | None) -> None:
        c = self._tcount.get(tk)
        if c is None:
            canon = _canonical(tk)
            st = self._by_tuple.get(canon)
            if st is None:
                st = self._by_tuple[canon] = self._new_state(None, ts)
            c = self._tcount[tk] = st.tuples[tk] = _Counter(ts, ts, 1, length, st, self._seq)
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq
            st = c.state
        if key is not None and key not in st.sidset:
            st.sidset.add(key)
            st.sids.append(key)

    # -- QUIC and WireGuard linking --

    def _quic_long(self, sid: SessionId, tk: bytes, ts: int) -> None:
        scid = sid.details.get("scid")
        src, dst = _endpoints(tk)
        if not isinstance(scid, bytes) or not scid:
            if isinstance(scid, bytes):  # an endpoint that chose zero-length CIDs
                self._issued[src] = 0
            return
        if self.by == "sid":
            self._link(("quic", sid.value), ("quic", scid), ts)
        n = len(scid)
        self._issued[src] = n
        self._peer[dst] = n
        self._scid_lengths.add(n)
        for cid in (sid.value, scid):
            if cid not in self._known:
                self._known.add(cid)
                if self.by == "sid":
                    self._known_flows[cid] = self._cells["quic"][cid]
                if len(cid) not in self._known_lengths:
                    self._known_lengths = tuple(
                        sorted({*self._known_lengths, len(cid)}, reverse=True)
                    )

    def _quic_short(self, payload: bytes, tk: bytes, ft: FiveTuple) -> SessionId | str:
        """A short header's DCID with a learned length, through the plugin (module note), or
        the reason there is none."""
        length: int | None = None
        known = self._known
        for n in self._known_lengths:
            if payload[1 : 1 + n] in known:
                length = n
                break
        if length is None:
            src, dst = _endpoints(tk)
            length = self._issued.get(dst)
            if length is None:
                length = self._peer.get(src)
            if length is None and len(self._scid_lengths) == 1:
                length = next(iter(self._scid_lengths))
        if length is None:
            return "quic-cid-length-unknown"
        if length == 0:
            return "quic-empty-cid"
        extractor = self._by_length.get(length)
        if extractor is None:
            opts = {**self._per.get("quic", {}), "cid_length": length}
            extractor = Extractor(["quic"], {"quic": opts}, host=self._host)
            self._by_length[length] = extractor
        return extractor.extract(payload, ft) or "none"

    # -- feeding --

    def add(
        self,
        ts_ns: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        payload: bytes,
        length: int | None = None,
    ) -> SessionId | None:
        """Account one UDP datagram: addresses as packed bytes (4 or 16), host-order ports,
        the payload, and its length on the wire (default: ``len(payload)``). Returns the
        session ID it was grouped by, if any (always through the plugins)."""
        src, dst = as_bytes(src, "src"), as_bytes(dst, "dst")
        if len(src) not in (4, 16) or len(src) != len(dst):
            raise InputValueError("addresses must be 4 or 16 packed bytes each", code="bad-address")
        check_uint(sport, 16, "sport")
        check_uint(dport, 16, "dport")
        data = as_bytes(payload, "payload")
        self._seq += 1
        return self._slow(ts_ns, tuple_key(src, sport, dst, dport), data, length or len(data))

    def _five_tuple(self, tk: bytes) -> FiveTuple:
        ft = self._five.get(tk)
        if ft is None:
            src, sport, dst, dport = split_tuple_key(tk)
            ft = self._five[tk] = FiveTuple(src, sport, dst, dport)
        return ft

    def _slow(self, ts: int, tk: bytes, payload: bytes, length: int) -> SessionId | None:
        """One datagram through the plugins: the reference path."""
        self.udp += 1
        sid: SessionId | None = None
        reason = "none"
        if self._extractor is not None and payload:
            ft = self._five.get(tk) or self._five_tuple(tk)
            try:
                if payload[0] in self._learn:
                    found = self._quic_short(payload, tk, ft)
                    if isinstance(found, str):
                        reason = found
                    else:
                        sid = found
                else:
                    sid = self._extractor.extract(payload, ft)
                    if sid is not None and sid.protocol == "quic" and payload[0] & 0x80:
                        self._quic_long(sid, tk, ts)
                    elif (
                        sid is not None
                        and sid.protocol == "wireguard"
                        and payload[0] == 2
                        and self.by == "sid"
                    ):
                        # handshake response: sender index at 4, receiver at 8 (whitepaper
                        # section 5.4.3); the plugin's SID is the receiver's.
                        self._link(sid_key(sid), ("wireguard", payload[4:8]), ts)
            except SidkitError as exc:
                reason = f"malformed:{getattr(exc, 'protocol', '') or 'plugin'}"
                sid = None
        if sid is None or not sid.value:
            self.no_sid[reason] = self.no_sid.get(reason, 0) + 1
            self._tuple_datagram(ts, tk, length, None)
            return None
        self.with_sid += 1
        if self.by == "tuple":
            self._tuple_datagram(ts, tk, length, sid_key(sid))
            return None
        self._sid_datagram(sid.protocol, sid.value, ts, tk, length)
        return sid

    def _fast(self, ts: int, tk: bytes, payload: bytes, length: int) -> None:
        """One datagram, skipping the plugins where the tables allow (see :meth:`read`)."""
        if not payload:
            self._slow(ts, tk, payload, length)
            return
        first = payload[0]
        k = self._kind[first]
        protocol = ""
        value = b""
        if k == _KNOWN:
            size = len(payload)
            for n in self._known_lengths:
                if size <= n:
                    break  # the slice would be short: the plugin decides
                if payload[1 : 1 + n] in self._known:
                    protocol, value = "quic", payload[1 : 1 + n]
                    break
        elif k == _EXACT:
            size = len(payload)
            for off, n, needed, guards, _cells, _pairs, p in self._exact[first]:
                if size >= needed and all(payload[g] & m == v for g, m, v in guards):
                    protocol, value = p, payload[off : off + n]
                    break
        elif k == _NONE:
            self.udp += 1
            self.no_sid["none"] = self.no_sid.get("none", 0) + 1
            self._tuple_datagram(ts, tk, length, None)
            return
        if not protocol:
            self._slow(ts, tk, payload, length)
            return
        self.udp += 1
        self.with_sid += 1
        if self.by == "tuple":
            self._tuple_datagram(ts, tk, length, (protocol, value))
            return
        pairs = self._pairs[protocol]
        key = value + tk
        c = pairs.get(key)
        if c is None:
            c = self._pair(self._sid_state(protocol, value, ts), pairs, key, tk, ts)
        c.last = ts
        c.n += 1
        c.size += length
        c.seq = self._seq

    def read(
        self, capture: Capture, progress: Progress | None = None, total: int | None = None
    ) -> None:
        """Account every record of *capture*; *progress* is called with (bytes read, total)
        as the reading goes (after each 1 MiB read of a classic pcap, every 65536 records of
        a pcapng) and once at the end."""
        self.capture_name = capture.name
        self.format = capture.format
        if self.fast and capture.layout is not None:
            self._read_pcap(capture, capture.layout, progress, total)
        else:
            self._read_records(capture, progress, total)
        self.errors.extend(capture.errors)
        if progress is not None:
            progress(capture.bytes_read, total)

    def _read_records(self, capture: Capture, progress: Progress | None, total: int | None) -> None:
        """Every record through the capture's iterator (pcapng, and the reference path).
        The fast path recognises the common Ethernet frame as :meth:`_read_pcap` does."""
        decoders = DECODERS
        fast = self.fast
        datagram = self._fast if fast else self._slow
        ether = ETHER_IPV4_UDP.unpack_from
        pack = tuple_key
        skipped = self.skipped
        linktypes = self.linktypes
        frames = 0
        for ts, linktype, frame, _wirelen in capture:
            frames += 1
            self._seq += 1
            if not frames & 0xFFFF and progress is not None:
                progress(capture.bytes_read, total)
            if fast and linktype == LINKTYPE_ETHERNET and len(frame) > 42:
                etype, vihl, ip_len, frag, proto, tk, ulen, _first = ether(frame, 0)
                if (
                    etype == 0x0800
                    and vihl == 0x45
                    and proto == 17
                    and not frag & 0x1FFF
                    and ulen >= 8
                    and 28 <= ip_len <= len(frame) - 14
                ):
                    linktypes[linktype] = linktypes.get(linktype, 0) + 1
                    stop = 34 + ulen if ulen + 20 < ip_len else ip_len + 14
                    datagram(ts, tk, frame[42:stop], ulen - 8)
                    continue
            decoder = decoders.get(linktype)
            result: Datagram | str = "unsupported-linktype" if decoder is None else decoder(frame)
            linktypes[linktype] = linktypes.get(linktype, 0) + 1
            if isinstance(result, str):
                skipped[result] = skipped.get(result, 0) + 1
                continue
            src, sport, dst, dport, payload, length = result
            datagram(ts, pack(src, sport, dst, dport), payload, length)
        self.frames += frames

    def _read_pcap(
        self, capture: Capture, layout: PcapLayout, progress: Progress | None, total: int | None
    ) -> None:
        """The fast path over a classic pcap: records walked in the read buffers, the
        common Ethernet/IPv4/UDP frame recognised by one unpack
        (:data:`sidkit._capture.ETHER_IPV4_UDP`), and -- when grouping by session ID --
        the session ID taken, looked up and counted right here for every datagram whose
        first byte the tables resolve. Everything else goes through :meth:`_fast` (other
        frames) or :meth:`_slow` (payloads the tables cannot resolve), which give the same
        result the long way.

        The loop is written for CPython's sake: locals only, a dict subscript in a ``try``
        rather than ``get`` where a miss is rare, no call and no new object on the common
        path other than the ID and tuple-key slices and the timestamp."""
        # (seconds, fraction, captured length): the original length is not needed here
        record = struct.Struct(layout.record.format[0] + "III4x").unpack_from
        ether = ETHER_IPV4_UDP.unpack_from
        mul, linktype, limit = layout.ns_per_tick, layout.linktype, layout.limit
        decoder = DECODERS[linktype]
        inline = linktype == LINKTYPE_ETHERNET and self.by == "sid"
        kind, exact = self._kind, self._exact
        known = self._known_flows
        quic = self._pairs.setdefault("quic", {})
        pair = self._pair
        lengths = self._known_lengths
        longest = lengths[0] if len(lengths) == 1 else 0  # the one learned length, or 0
        tcount = self._tcount
        slow, fast, tuple_datagram = self._slow, self._fast, self._tuple_datagram
        new_sid = self._sid_state
        skipped = self.skipped
        pack = tuple_key
        seq = first_seq = self._seq  # datagram sequence numbers: one per record
        others = 0  # records this loop did not count itself (skipped, _fast, _slow)
        nones = 0  # datagrams no protocol claims, counted here
        buffers = capture.pcap_buffers()
        buf = next(buffers)
        while buf:
            pos = 0
            end = len(buf)
            while pos + 16 <= end:
                sec, frac, caplen = record(buf, pos)
                if caplen > limit:
                    capture.records = seq - first_seq
                    capture.stop(
                        f"corrupt record header at byte {capture.bytes_read - end + pos}: "
                        f"captured length {caplen} exceeds {limit}"
                    )
                    buf = b""
                    break
                f = pos + 16
                pos = f + caplen
                if pos > end:
                    pos = f - 16
                    break
                seq += 1
                ts = sec * 1_000_000_000 + frac * mul
                if inline and caplen > 42:
                    etype, vihl, ip_len, frag, proto, tk, ulen, first = ether(buf, f)
                    if (
                        etype == 0x0800
                        and vihl == 0x45
                        and proto == 17
                        and not frag & 0x1FFF
                        and ulen >= 8
                        and 28 <= ip_len <= caplen - 14
                    ):
                        stop = 34 + ulen if ulen + 20 < ip_len else ip_len + 14
                        size = stop - 42  # captured payload bytes
                        n = ulen - 8  # payload bytes on the wire
                        k = kind[first]
                        c = None
                        if size <= 0 or k == _SLOW:
                            pass
                        elif k == _KNOWN:
                            if longest:
                                if size > longest:
                                    key = buf[f + 43 : f + 43 + longest] + tk
                                    try:
                                        c = quic[key]
                                    except KeyError:
                                        st = known.get(key[:longest])
                                        if st is not None:
                                            c = pair(st, quic, key, tk, ts)
                            else:
                                for cid_len in lengths:
                                    if size <= cid_len:
                                        break  # the slice would be short: the plugin decides
                                    key = buf[f + 43 : f + 43 + cid_len] + tk
                                    st = known.get(key[:cid_len])
                                    if st is not None:
                                        c = quic.get(key) or pair(st, quic, key, tk, ts)
                                        break
                        elif k == _EXACT:
                            p0 = f + 42
                            for off, idlen, needed, guards, cells, pairs, protocol in exact[first]:
                                if size < needed or (
                                    guards and not all(buf[p0 + g] & m == v for g, m, v in guards)
                                ):
                                    continue
                                key = buf[p0 + off : p0 + off + idlen] + tk
                                try:
                                    c = pairs[key]
                                except KeyError:
                                    value = key[:idlen]
                                    st = cells.get(value) or new_sid(protocol, value, ts)
                                    c = pair(st, pairs, key, tk, ts)
                                break
                        else:  # _NONE: no session ID, a tuple flow
                            try:
                                c = tcount[tk]
                            except KeyError:
                                self._seq = seq
                                tuple_datagram(ts, tk, n, None)
                            else:
                                c.last = ts
                                c.n += 1
                                c.size += n
                                c.seq = seq
                            nones += 1
                            continue
                        if c is not None:
                            c.last = ts
                            c.n += 1
                            c.size += n
                            c.seq = seq
                            continue
                        others += 1
                        self._seq = seq
                        slow(ts, tk, buf[f + 42 : f + stop], n)
                        lengths = self._known_lengths
                        longest = lengths[0] if len(lengths) == 1 else 0
                        continue
                others += 1
                result = decoder(buf[f:pos])
                if isinstance(result, str):
                    skipped[result] = skipped.get(result, 0) + 1
                    continue
                src, sport, dst, dport, payload, length = result
                self._seq = seq
                fast(ts, pack(src, sport, dst, dport), payload, length)
                lengths = self._known_lengths
                longest = lengths[0] if len(lengths) == 1 else 0
            capture.records = seq - first_seq
            if not buf:
                break
            if progress is not None:
                progress(capture.bytes_read, total)
            buf = buffers.send(pos)
        self._seq = seq
        frames = seq - first_seq
        hits = frames - others - nones  # datagrams with an ID, counted here
        self.frames += frames
        self.udp += hits + nones
        self.with_sid += hits
        if nones:
            self.no_sid["none"] = self.no_sid.get("none", 0) + nones
        self.linktypes[linktype] = self.linktypes.get(linktype, 0) + frames

    # -- results --

    def report(self) -> FlowReport:
        """The flows so far, ordered by first seen, and the summary."""
        flows: list[Flow] = []
        for st in self._states:
            if not st.alive or not st.tuples:
                continue
            stats = []
            datagrams = nbytes = 0
            for k, v in st.tuples.items():
                src, sport, dst, dport = split_tuple_key(k)
                datagrams += v.n
                nbytes += v.size
                stats.append(
                    TupleStats(_addr(src), sport, _addr(dst), dport, v.first, v.last, v.n, v.size)
                )
            stats.sort(key=lambda t: (t.first_ns, t.src, t.sport, t.dst, t.dport))
            sids = tuple(v.hex() for _p, v in st.sids)
            is_sid = st.protocol is not None
            protocols = {p for p, _v in st.sids}
            flows.append(
                Flow(
                    kind="sid" if is_sid else "tuple",
                    protocol=st.protocol
                    if is_sid
                    else (next(iter(protocols)) if len(protocols) == 1 else None),
                    sid=sids[0] if is_sid else None,
                    sids=sids,
                    first_ns=st.first,
                    last_ns=self._last(st),
                    datagrams=datagrams,
                    bytes=nbytes,
                    tuples=tuple(stats),
                )
            )
        flows.sort(key=lambda f: (f.first_ns, f.kind, f.sid or ""))
        names = {LINKTYPES.get(k, f"linktype {k}"): v for k, v in self.linktypes.items()}
        summary = Summary(
            capture=self.capture_name,
            format=self.format,
            linktypes=names,
            protocols=self.protocols,
            by=self.by,
            frames=self.frames,
            udp=self.udp,
            with_sid=self.with_sid,
            without_sid=self.udp - self.with_sid,
            skipped=dict(sorted(self.skipped.items())),
            no_sid=dict(sorted(self.no_sid.items())),
            errors=tuple(self.errors),
            sid_flows=sum(1 for f in flows if f.kind == "sid"),
            tuple_flows=sum(1 for f in flows if f.kind == "tuple"),
        )
        return FlowReport(tuple(flows), summary)


def sid_key(sid: SessionId) -> _SidKey:
    """The (protocol, bytes) pair a SessionId is equal by."""
    return (sid.protocol, sid.value)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def analyze(
    source: str | Path | BinaryIO,
    protocols: Sequence[str] | None = None,
    options: Mapping[str, object] | None = None,
    *,
    by: By = "sid",
    progress: Progress | None = None,
    host: PluginHost | None = None,
    fast: bool = True,
) -> FlowReport:
    """Read a pcap or pcapng capture and group its UDP datagrams into flows.

    *source* is a path, ``"-"`` for standard input, or a binary file object. The capture is
    streamed: memory grows with the number of flows and tuples, not with its size. A capture
    that ends mid-record or turns corrupt gives the flows read so far, with the problem in
    ``summary.errors``; if not even one record could be read, the problem is raised as a
    :class:`CaptureError`. A file that is no capture raises :class:`NotACaptureError`; a
    capture whose frames are all of a link type sidkit does not decode,
    :class:`UnsupportedLinkTypeError`. *fast* is :class:`FlowAnalyzer`'s: ``False`` sends
    every datagram through the plugins (the same report, slower).

    >>> report = analyze("tests/data/quic-v1-migration.pcap")  # doctest: +SKIP
    >>> [(f.protocol, f.paths) for f in report.flows]  # doctest: +SKIP
    """
    analyzer = FlowAnalyzer(protocols, options, by=by, host=host, fast=fast)
    if isinstance(source, str | Path):
        path = os.fspath(source)
        if path == "-":
            _read_into(analyzer, sys.stdin.buffer, "<stdin>", None, progress)
        else:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise CaptureError(
                    f"{path}: cannot open: {exc.strerror or exc}", code="unreadable"
                ) from None
            with fh:
                try:
                    total: int | None = os.fstat(fh.fileno()).st_size
                except OSError:  # pragma: no cover
                    total = None
                _read_into(analyzer, fh, path, total, progress)
    elif hasattr(source, "read"):
        _read_into(analyzer, source, getattr(source, "name", "<stream>"), None, progress)
    else:
        raise InputTypeError(
            f"source must be a path or a binary file, not {type(source).__name__}",
            code="bad-source",
        )
    return analyzer.report()


def _read_into(
    analyzer: FlowAnalyzer, fh: BinaryIO, name: str, total: int | None, progress: Progress | None
) -> None:
    name = str(name)
    if isinstance(fh, Path):  # pragma: no cover - defensive
        raise InputTypeError("expected a file object", code="bad-source")
    try:
        capture = Capture(fh, name=name)
    except IsADirectoryError:  # pragma: no cover - open() raises it first on Linux
        raise CaptureError(f"{name}: is a directory", code="unreadable") from None
    analyzer.read(capture, progress, total)
    if analyzer.frames == 0 and analyzer.errors:
        raise CaptureError("; ".join(analyzer.errors), code="nothing-read")
    unsupported = analyzer.skipped.get("unsupported-linktype", 0)
    if analyzer.frames and unsupported == analyzer.frames:
        kinds = ", ".join(str(k) for k in analyzer.linktypes)
        raise UnsupportedLinkTypeError(
            f"{name}: every frame is of a link type sidkit does not decode ({kinds}); "
            f"supported: {', '.join(f'{k} {v}' for k, v in LINKTYPES.items())}"
        )


def iter_rows(report: FlowReport) -> Iterable[dict[str, object]]:
    """One row per (flow, tuple), the shape of ``--csv``."""
    for number, flow in enumerate(report.flows, start=1):
        for t in flow.tuples:
            v6 = t.family == 6
            yield {
                "flow": number,
                "kind": flow.kind,
                "protocol": flow.protocol or "",
                "sid": flow.sid or "",
                "ip.src": "" if v6 else t.src,
                "ipv6.src": t.src if v6 else "",
                "udp.srcport": t.sport,
                "ip.dst": "" if v6 else t.dst,
                "ipv6.dst": t.dst if v6 else "",
                "udp.dstport": t.dport,
                "first_seen": format_ns(t.first_ns),
                "last_seen": format_ns(t.last_ns),
                "datagrams": t.datagrams,
                "bytes": t.bytes,
                "flow_datagrams": flow.datagrams,
                "flow_bytes": flow.bytes,
            }
