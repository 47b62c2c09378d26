# Strategy: one pass over a capture, holding only per-flow and per-tuple counters. Each UDP
# datagram goes through the plugin Extractor; a datagram with a session ID joins the flow of
# that ID, one without joins the flow of its bidirectional 5-tuple. Memory grows with flows
# and tuples, never with datagrams.
#
# A flow is a set of session IDs that the traffic itself proves to be one session, kept in a
# union-find forest:
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
#   extraction itself is still the plugin's, run with the learned ``cid_length``.
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
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final, Literal

import attrs

from sidkit._capture import (
    DECODERS,
    LINKTYPES,
    Capture,
    CaptureError,
    Datagram,
    NotACaptureError,
    UnsupportedLinkTypeError,
)
from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit.extract import Extractor
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import PluginHost, default_host

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

_TupleKey = tuple[bytes, int, bytes, int]
_SidKey = tuple[str, bytes]


class _FlowState:
    __slots__ = ("bytes", "datagrams", "first", "last", "protocol", "sids", "tuples")

    def __init__(self, protocol: str | None, ts: int) -> None:
        self.protocol = protocol
        self.sids: list[_SidKey] = []
        self.first = ts
        self.last = ts
        self.datagrams = 0
        self.bytes = 0
        self.tuples: dict[_TupleKey, list[int]] = {}


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


class FlowAnalyzer:
    """Streaming flow grouping: feed it datagrams (:meth:`add`) or whole captures
    (:meth:`read`), then ask for the :meth:`report`.

    *protocols* are protocol names of installed plugins (default:
    :func:`default_protocols`); *options* are per-protocol plugin options, as
    ``{"quic": {"cid_length": 8}}`` or ``{"quic.cid_length": 8}``. *by* is ``"sid"`` (flows
    by session ID, datagrams without one by 5-tuple) or ``"tuple"`` (everything by
    bidirectional 5-tuple, the kernel's default view).
    """

    def __init__(
        self,
        protocols: Sequence[str] | None = None,
        options: Mapping[str, object] | None = None,
        *,
        by: By = "sid",
        host: PluginHost | None = None,
    ) -> None:
        if by not in ("sid", "tuple"):
            raise InputValueError(f"by must be 'sid' or 'tuple', not {by!r}", code="bad-by")
        self.by: By = by
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
        self._extract: Callable[[bytes, FiveTuple], SessionId | None] = (
            self._extractor.extract if self._extractor else lambda _p, _t: None
        )
        self._by_length: dict[int, Extractor] = {}
        # QUIC length learning: CIDs seen in long headers, their lengths, and per endpoint
        # the SCID length it chose (issued) and that its peers chose (peer).
        self._known: set[bytes] = set()
        self._known_lengths: tuple[int, ...] = ()
        self._issued: dict[tuple[bytes, int], int] = {}
        self._peer: dict[tuple[bytes, int], int] = {}
        self._scid_lengths: set[int] = set()
        # flows
        self._flows: list[_FlowState] = []
        self._parent: list[int] = []
        self._by_sid: dict[_SidKey, int] = {}
        self._by_tuple: dict[_TupleKey, int] = {}
        self._five: dict[_TupleKey, FiveTuple] = {}
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

    # -- union-find over flow ids --

    def _find(self, fid: int) -> int:
        parent = self._parent
        root = fid
        while parent[root] != root:
            root = parent[root]
        while parent[fid] != root:
            parent[fid], fid = root, parent[fid]
        return root

    def _new_flow(self, protocol: str | None, ts: int) -> int:
        fid = len(self._flows)
        self._flows.append(_FlowState(protocol, ts))
        self._parent.append(fid)
        return fid

    def _sid_flow(self, key: _SidKey, ts: int) -> int:
        fid = self._by_sid.get(key)
        if fid is None:
            fid = self._new_flow(key[0], ts)
            self._flows[fid].sids.append(key)
            self._by_sid[key] = fid
            return fid
        root = self._find(fid)
        if root != fid:
            self._by_sid[key] = root
        return root

    def _link(self, a: _SidKey, b: _SidKey, ts: int) -> None:
        """Both IDs name one session: merge their flows (the older flow absorbs the other)."""
        ra = self._sid_flow(a, ts)
        rb = self._by_sid.get(b)
        if rb is None:
            self._by_sid[b] = ra
            self._flows[ra].sids.append(b)
            return
        rb = self._find(rb)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        keep, gone = self._flows[ra], self._flows[rb]
        keep.first = min(keep.first, gone.first)
        keep.last = max(keep.last, gone.last)
        keep.datagrams += gone.datagrams
        keep.bytes += gone.bytes
        keep.sids.extend(gone.sids)
        for tk, g in gone.tuples.items():
            k = keep.tuples.get(tk)
            if k is None:
                keep.tuples[tk] = g
            else:
                k[0] = min(k[0], g[0])
                k[1] = max(k[1], g[1])
                k[2] += g[2]
                k[3] += g[3]
        gone.tuples = {}
        gone.sids = []
        self._parent[rb] = ra

    # -- QUIC and WireGuard linking --

    def _quic_long(self, sid: SessionId, tk: _TupleKey, ts: int) -> None:
        scid = sid.details.get("scid")
        if not isinstance(scid, bytes) or not scid:
            if isinstance(scid, bytes):  # an endpoint that chose zero-length CIDs
                self._issued[(tk[0], tk[1])] = 0
            return
        if self.by == "sid":
            self._link(("quic", sid.value), ("quic", scid), ts)
        n = len(scid)
        self._issued[(tk[0], tk[1])] = n
        self._peer[(tk[2], tk[3])] = n
        self._scid_lengths.add(n)
        for cid in (sid.value, scid):
            if cid not in self._known:
                self._known.add(cid)
                if len(cid) not in self._known_lengths:
                    self._known_lengths = tuple(
                        sorted({*self._known_lengths, len(cid)}, reverse=True)
                    )

    def _quic_short(self, payload: bytes, tk: _TupleKey, ft: FiveTuple) -> SessionId | str:
        """A short header's DCID with a learned length, through the plugin (module note), or
        the reason there is none."""
        length: int | None = None
        known = self._known
        for n in self._known_lengths:
            if payload[1 : 1 + n] in known:
                extractor = self._by_length.get(n)
                if extractor is not None:  # the common case: a CID from a handshake
                    return extractor.extract(payload, ft) or "none"
                length = n
                break
        if length is None:
            length = self._issued.get((tk[2], tk[3]))
        if length is None:
            length = self._peer.get((tk[0], tk[1]))
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
        session ID it was grouped by, if any."""
        if len(src) not in (4, 16) or len(src) != len(dst):
            raise InputValueError("addresses must be 4 or 16 packed bytes each", code="bad-address")
        return self._datagram(
            ts_ns, (bytes(src), sport, bytes(dst), dport), bytes(payload), length or len(payload)
        )

    def _five_tuple(self, tk: _TupleKey) -> FiveTuple:
        ft = self._five.get(tk)
        if ft is None:
            ft = self._five[tk] = FiveTuple(tk[0], tk[1], tk[2], tk[3])
        return ft

    def _datagram(self, ts: int, tk: _TupleKey, payload: bytes, length: int) -> SessionId | None:
        self.udp += 1
        ft = self._five.get(tk) or self._five_tuple(tk)
        sid: SessionId | None = None
        reason = "none"
        if self._extractor is not None and payload:
            try:
                if payload[0] in self._learn:
                    found = self._quic_short(payload, tk, ft)
                    if isinstance(found, str):
                        reason = found
                    else:
                        sid = found
                else:
                    sid = self._extract(payload, ft)
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
        if sid is None or not sid.value or self.by == "tuple":
            if sid is None or not sid.value:
                self.no_sid[reason] = self.no_sid.get(reason, 0) + 1
            else:
                self.with_sid += 1
            self._tuple_datagram(ts, tk, length, sid)
            return None
        self.with_sid += 1
        key = (sid.protocol, sid.value)
        fid = self._by_sid.get(key)
        if fid is None or self._parent[fid] != fid:
            fid = self._sid_flow(key, ts)
        st = self._flows[fid]
        st.last = ts
        st.datagrams += 1
        st.bytes += length
        t = st.tuples.get(tk)
        if t is None:
            st.tuples[tk] = [ts, ts, 1, length]
        else:
            t[1] = ts
            t[2] += 1
            t[3] += length
        return sid

    def _tuple_datagram(self, ts: int, tk: _TupleKey, length: int, sid: SessionId | None) -> None:
        canon = tk if (tk[0], tk[1]) <= (tk[2], tk[3]) else (tk[2], tk[3], tk[0], tk[1])
        fid = self._by_tuple.get(canon)
        if fid is None:
            fid = self._by_tuple[canon] = self._new_flow(None, ts)
        st = self._flows[fid]
        st.last = ts
        st.datagrams += 1
        st.bytes += length
        if sid is not None and sid.value:
            key = (sid.protocol, sid.value)
            if key not in st.sids:
                st.sids.append(key)
        t = st.tuples.get(tk)
        if t is None:
            st.tuples[tk] = [ts, ts, 1, length]
        else:
            t[1] = ts
            t[2] += 1
            t[3] += length

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def read(
        self, capture: Capture, progress: Progress | None = None, total: int | None = None
    ) -> None:
        """Account every record of *capture*; *progress* is called with (bytes read, total)
        every 65536 records and once at the end."""
        self.capture_name = capture.name
        self.format = capture.format
        decoders = DECODERS
        datagram = self._datagram
        skipped = self.skipped
        linktypes = self.linktypes
        frames = 0
        for _ts, linktype, frame, _wirelen in capture:
            frames += 1
            if not frames & 0xFFFF and progress is not None:
                progress(capture.bytes_read, total)
            decoder = decoders.get(linktype)
            result: Datagram | str = "unsupported-linktype" if decoder is None else decoder(frame)
            linktypes[linktype] = linktypes.get(linktype, 0) + 1
            if isinstance(result, str):
                skipped[result] = skipped.get(result, 0) + 1
                continue
            src, sport, dst, dport, payload, length = result
            datagram(_ts, (src, sport, dst, dport), payload, length)
        self.frames += frames
        self.errors.extend(capture.errors)
        if progress is not None:
            progress(capture.bytes_read, total)

    # -- results --

    def report(self) -> FlowReport:
        """The flows so far, ordered by first seen, and the summary."""
        flows: list[Flow] = []
        for fid, st in enumerate(self._flows):
            if self._parent[fid] != fid or not st.datagrams:
                continue
            tuples = sorted(
                (
                    TupleStats(_addr(k[0]), k[1], _addr(k[2]), k[3], v[0], v[1], v[2], v[3])
                    for k, v in st.tuples.items()
                ),
                key=lambda t: (t.first_ns, t.src, t.sport, t.dst, t.dport),
            )
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
                    last_ns=st.last,
                    datagrams=st.datagrams,
                    bytes=st.bytes,
                    tuples=tuple(tuples),
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
) -> FlowReport:
    """Read a pcap or pcapng capture and group its UDP datagrams into flows.

    *source* is a path, ``"-"`` for standard input, or a binary file object. The capture is
    streamed: memory grows with the number of flows and tuples, not with its size. A capture
    that ends mid-record or turns corrupt gives the flows read so far, with the problem in
    ``summary.errors``; if not even one record could be read, the problem is raised as a
    :class:`CaptureError`. A file that is no capture raises :class:`NotACaptureError`; a
    capture whose frames are all of a link type sidkit does not decode,
    :class:`UnsupportedLinkTypeError`.

    >>> report = analyze("tests/data/quic-v1-migration.pcap")  # doctest: +SKIP
    >>> [(f.protocol, f.paths) for f in report.flows]  # doctest: +SKIP
    """
    analyzer = FlowAnalyzer(protocols, options, by=by, host=host)
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
