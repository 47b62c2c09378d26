# Strategy: the results of an analysis as frozen values -- what a caller keeps, compares and
# serialises once the capture is read. They know nothing of reading or of the per-flow state
# (FlowAnalyzer.report() builds them once, at the end); times stay integer nanoseconds until
# printed (format_ns), never floats in between; the JSON and CSV shapes use tshark's field
# names (ip.src, udp.srcport, ...) so that the output lines up with tshark's.
"""The flow report: tuples, flows, summary, and their JSON and CSV shapes (private)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import attrs

from sidkit._validate import check_int

__all__ = [
    "Flow",
    "FlowReport",
    "Summary",
    "TupleStats",
    "addr",
    "format_ns",
    "iter_rows",
    "trusted_flow",
    "trusted_stats",
]

_NS: Final = 1_000_000_000


def addr(raw: bytes) -> str:
    """Packed address bytes (4 or 16) as text."""
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


_new = object.__new__
# The classes are frozen (their attrs __setattr__ refuses), so the trusted builders below
# write the slots through their descriptors, as sidkit.keys does for SessionId: the report
# makes one TupleStats per tuple and one Flow per flow, and attrs' generated __init__ costs
# half as much again per object.
_S = TupleStats.__dict__
_s_src, _s_sport, _s_dst, _s_dport = (_S[n].__set__ for n in ("src", "sport", "dst", "dport"))
_s_first, _s_last, _s_n, _s_size = (
    _S[n].__set__ for n in ("first_ns", "last_ns", "datagrams", "bytes")
)


def trusted_stats(
    src: str, sport: int, dst: str, dport: int, first: int, last: int, n: int, size: int
) -> TupleStats:
    """A :class:`TupleStats` written slot by slot, without conversion or checks: the
    analyzer's values need none."""
    t: TupleStats = _new(TupleStats)
    _s_src(t, src)
    _s_sport(t, sport)
    _s_dst(t, dst)
    _s_dport(t, dport)
    _s_first(t, first)
    _s_last(t, last)
    _s_n(t, n)
    _s_size(t, size)
    return t


def format_ns(ns: int, digits: int = 9) -> str:
    """Nanoseconds as exact decimal seconds text (``1700000000.007000000``), the way tshark
    prints ``frame.time_epoch``; *digits* of the fraction are kept (truncated)."""
    check_int(ns, -(1 << 127), (1 << 127) - 1, "ns")  # a huge int would not print
    check_int(digits, 0, 9, "digits")
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


_F = Flow.__dict__
_f_kind, _f_protocol, _f_sid, _f_sids = (_F[n].__set__ for n in ("kind", "protocol", "sid", "sids"))
_f_first, _f_last, _f_n, _f_size = (
    _F[n].__set__ for n in ("first_ns", "last_ns", "datagrams", "bytes")
)
_f_tuples = _F["tuples"].__set__


def trusted_flow(
    kind: Literal["sid", "tuple"],
    protocol: str | None,
    sid: str | None,
    sids: tuple[str, ...],
    first: int,
    last: int,
    n: int,
    size: int,
    tuples: tuple[TupleStats, ...],
) -> Flow:
    """A :class:`Flow` written slot by slot, as :func:`trusted_stats` writes a TupleStats."""
    f: Flow = _new(Flow)
    _f_kind(f, kind)
    _f_protocol(f, protocol)
    _f_sid(f, sid)
    _f_sids(f, sids)
    _f_first(f, first)
    _f_last(f, last)
    _f_n(f, n)
    _f_size(f, size)
    _f_tuples(f, tuples)
    return f


@attrs.frozen
class Summary:
    """Counts over the whole capture.

    ``frames``: records read; ``udp``: UDP datagrams decoded; ``with_sid`` + ``without_sid``
    = ``udp``; ``skipped``: frames that were no usable UDP datagram, by reason (``not-ip``,
    ``not-udp``, ``ip-fragment``, ``truncated``, ...); ``no_sid``: why datagrams had no ID,
    by reason (``none``: no configured protocol found one; ``malformed:<protocol>``;
    ``quic-cid-length-unknown``, ``quic-empty-cid``); ``no_sid_by_protocol``: the same
    datagrams per protocol -- the first configured protocol that claims the payload's first
    byte, ``-`` where none does -- and a reason: ``no-id`` (the plugin found no ID, as in a
    handshake message), ``malformed``, ``cid-length-unknown`` and ``empty-cid`` (QUIC),
    ``unclaimed`` (``-``); ``reassembly``: IP fragments and what became of them (see
    :class:`~sidkit.flows.Reassembler`); ``errors``: capture problems that stopped the
    reading; ``notes``: what the reader should know about how the report was made (many
    captures read in parallel: datagrams that a single pass might have grouped
    differently), in the JSON only when there are any; ``max_flows``: the flow limit the
    capture was read with, and ``over_limit``: datagrams that joined no flow because it was
    reached (see :class:`~sidkit.flows.FlowAnalyzer`).
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
    no_sid_by_protocol: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    max_flows: int = 0
    over_limit: int = 0
    reassembly: Mapping[str, int] = attrs.field(factory=dict)
    notes: tuple[str, ...] = ()

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
            "no_sid_by_protocol": {p: dict(r) for p, r in self.no_sid_by_protocol.items()},
            "reassembly": dict(self.reassembly),
            "errors": list(self.errors),
            "sid_flows": self.sid_flows,
            "tuple_flows": self.tuple_flows,
            "max_flows": self.max_flows,
            "over_limit": self.over_limit,
        } | ({"notes": list(self.notes)} if self.notes else {})


@attrs.frozen
class FlowReport:
    """What :func:`analyze` returns: the flows, ordered by first seen, and the summary."""

    flows: tuple[Flow, ...]
    summary: Summary

    def to_json(self) -> dict[str, object]:
        """``{"flows": [...], "summary": {...}}``."""
        return {"flows": [f.to_json() for f in self.flows], "summary": self.summary.to_json()}


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
