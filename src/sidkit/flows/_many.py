# Strategy: many captures (a day of rotated `tcpdump -G`/`-C` files) are one capture read in
# the order of their first timestamps. Two ways to read them, with one result type:
#
# * sequentially (jobs=1, the default): one FlowAnalyzer reads every file in order, so QUIC
#   CID lengths learned, flows linked and IP fragments queued in one file carry into the
#   next -- exactly a single pass over the concatenated captures;
# * in parallel (jobs > 1: worker processes; or a Dask distributed client): each file is read
#   by its own FlowAnalyzer, its report becomes a PartialReport, and the partials are merged.
#
# A PartialReport is a value with a merge that is associative and commutative (the tests
# prove both with Hypothesis), so partials can be merged in any grouping and in the order
# they finish: every field is combined by a commutative operation -- sums for counts, the
# minimum of a (file rank, time) position for "first", the maximum for "last", and a set
# union for session IDs (kept with the position they were first seen at, so their order is
# made, not inherited) -- and flows that share a session ID are the connected components of
# the union. The file rank (the file's place in the timestamp order) is what makes "first"
# and "last" well defined across files whose clocks touch.
#
# What per-file reading cannot know, because it is state one file hands to the next, is
# documented in docs/flows-many.rst and pinned by tests: QUIC short headers whose DCID
# length was learned only from long headers in an earlier file, QUIC datagrams with an
# empty DCID whose path flow started in an earlier file, and IP fragments of one datagram
# split across files. Everything else -- flows by session ID, links, tuples, counters -- is
# identical to the sequential pass.
"""Many captures: sequential or parallel (processes, Dask) flow analysis with mergeable
partial reports."""

from __future__ import annotations

import glob
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_list, check_callable, show
from sidkit.flows._analyzer import FlowAnalyzer, check_analyzer_args
from sidkit.flows._capture import Capture, open_capture
from sidkit.flows._decode import LINKTYPES
from sidkit.flows._errors import CaptureError, UnsupportedLinkTypeError
from sidkit.flows._report import Flow, FlowReport, Summary, TupleStats
from sidkit.flows._state import DEFAULT_MAX_FLOWS, By

__all__ = [
    "PartialReport",
    "analyze_many",
    "expand_captures",
    "merge_partials",
    "order_captures",
]

Position = tuple[int, int]
"""(file rank, nanoseconds): where a datagram sits in the ordered captures."""

_GLOB_CHARS: Final = frozenset("*?[")


# --------------------------------------------------------------------------------------------
# The mergeable value
# --------------------------------------------------------------------------------------------


class PartTuple(NamedTuple):
    """One direction of one 5-tuple in a partial flow; ``first``/``last`` are positions.
    A plain tuple: partials travel between processes, and there are many of these."""

    src: str
    sport: int
    dst: str
    dport: int
    first: Position
    last: Position
    datagrams: int
    bytes: int


SidEntry = tuple[tuple[int, int, int], str, str]
"""((file rank, flow's place in that file's report, ID's place in the flow), protocol, hex).
The protocol is ``""`` where the report did not say (a ``by="tuple"`` flow whose IDs are of
several protocols)."""


class PartFlow(NamedTuple):
    """A flow of a partial report. ``key`` identifies it among its partial's flows for
    ordering ties (the smallest (rank, place) of the flows merged into it). A plain tuple,
    as :class:`PartTuple`."""

    kind: str
    sids: tuple[SidEntry, ...]
    mixed: bool
    first: Position
    last: Position
    tuples: tuple[PartTuple, ...]
    key: tuple[int, int]


@attrs.frozen
class PartialReport:
    """The flows and counters of some of the captures, in a form that merges.

    Made from one file's :class:`FlowReport` by :meth:`from_report` (with the file's rank
    in the timestamp order), combined by :meth:`merge` (or :func:`merge_partials`), and
    turned into a report by :meth:`to_report`. The merge, for partials of disjoint files:

    * summary counters (frames, datagrams, skipped and no-ID reasons, link types, IP
      fragment counts) add up; capture names, formats and errors are kept per file rank;
    * SID flows that share a session ID (protocol and bytes) become one flow -- the
      connected components of "shares an ID", so a connection whose IDs were linked in one
      file and used in another is one flow; tuple flows merge by their bidirectional
      5-tuple;
    * within a merged flow, a directional tuple's counts add up, its first time is the one
      at the lowest (file rank, time) position and its last time the one at the highest
      (within one file, the earliest and latest, as the analyzer merges linked flows); the
      flow's first time is the earliest, its last time that of the highest position;
    * session IDs are ordered by where each was first seen (file rank, flow, place in the
      flow): the earlier file's flow first, as the analyzer lists an older flow's IDs
      before those of a flow it absorbs.

    Each of these is a sum, a minimum, a maximum or a set union of values keyed by
    position, so ``a.merge(b) == b.merge(a)`` and ``a.merge(b).merge(c) ==
    a.merge(b.merge(c))`` (tests/flows/test_many_merge.py proves both by Hypothesis).
    """

    by: str
    protocols: tuple[str, ...]
    captures: tuple[tuple[int, str, str], ...]
    flows: tuple[PartFlow, ...]
    frames: int
    udp: int
    with_sid: int
    skipped: Mapping[str, int]
    no_sid: Mapping[str, int]
    no_sid_by_protocol: Mapping[str, Mapping[str, int]]
    linktypes: Mapping[str, int]
    reassembly: Mapping[str, int]
    errors: tuple[tuple[int, int, str], ...]
    # the flow limit each file was read with (the largest, merged) and the datagrams over
    # it (a sum): see FlowAnalyzer's max_flows
    max_flows: int = 0
    over_limit: int = 0

    @classmethod
    def from_report(cls, report: FlowReport, rank: int) -> PartialReport:
        """The partial of one capture's *report*; *rank* is the capture's place in the
        order of first timestamps (unique per capture)."""
        if not isinstance(report, FlowReport):
            raise InputTypeError("report must be a FlowReport", code="bad-report")
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise InputValueError(f"rank must be an int >= 0, not {rank!r}", code="bad-rank")
        s = report.summary
        flows = []
        for place, f in enumerate(report.flows):
            mixed = f.protocol is None and bool(f.sids)
            protocol = f.protocol or ""
            flows.append(
                PartFlow(
                    kind=f.kind,
                    sids=tuple(((rank, place, i), protocol, h) for i, h in enumerate(f.sids)),
                    mixed=mixed,
                    first=(rank, f.first_ns),
                    last=(rank, f.last_ns),
                    tuples=tuple(
                        sorted(
                            (
                                PartTuple(
                                    t.src,
                                    t.sport,
                                    t.dst,
                                    t.dport,
                                    (rank, t.first_ns),
                                    (rank, t.last_ns),
                                    t.datagrams,
                                    t.bytes,
                                )
                                for t in f.tuples
                            ),
                            key=_tuple_key,
                        )
                    ),
                    key=(rank, place),
                )
            )
        return cls(
            by=s.by,
            protocols=tuple(s.protocols),
            captures=((rank, s.capture, s.format),),
            flows=_canonical_flows(flows),
            frames=s.frames,
            udp=s.udp,
            with_sid=s.with_sid,
            skipped=dict(s.skipped),
            no_sid=dict(s.no_sid),
            no_sid_by_protocol={p: dict(r) for p, r in s.no_sid_by_protocol.items()},
            linktypes=dict(s.linktypes),
            reassembly=dict(s.reassembly),
            errors=tuple((rank, i, e) for i, e in enumerate(s.errors)),
            max_flows=s.max_flows,
            over_limit=s.over_limit,
        )

    def merge(self, other: PartialReport) -> PartialReport:
        """This partial and *other* (of other captures) as one; see the class notes."""
        return merge_partials((self, other))

    def to_report(self) -> FlowReport:
        """The :class:`FlowReport` of the captures merged so far."""
        flows = [_to_flow(f) for f in self.flows]
        order = sorted(
            range(len(flows)),
            key=lambda i: (flows[i].first_ns, flows[i].kind, flows[i].sid or "", self.flows[i].key),
        )
        report_flows = tuple(flows[i] for i in order)
        summary = Summary(
            capture=", ".join(n for _r, n, _f in self.captures),
            format=_formats(f for _r, _n, f in self.captures),
            linktypes=dict(self.linktypes),
            protocols=self.protocols,
            by=self.by,
            frames=self.frames,
            udp=self.udp,
            with_sid=self.with_sid,
            without_sid=self.udp - self.with_sid,
            skipped=dict(sorted(self.skipped.items())),
            no_sid=dict(sorted(self.no_sid.items())),
            errors=tuple(e for _r, _i, e in self.errors),
            sid_flows=sum(1 for f in report_flows if f.kind == "sid"),
            tuple_flows=sum(1 for f in report_flows if f.kind == "tuple"),
            reassembly=dict(sorted(self.reassembly.items())),
            no_sid_by_protocol={
                p: dict(sorted(r.items())) for p, r in sorted(self.no_sid_by_protocol.items())
            },
            max_flows=self.max_flows,
            over_limit=self.over_limit,
        )
        return FlowReport(report_flows, summary)


def merge_partials(partials: Iterable[PartialReport]) -> PartialReport:
    """All *partials* merged in one pass (the merge is associative and commutative, so
    this equals merging them two by two in any grouping and order; one pass does the
    union of session IDs once instead of once per partial)."""
    ps: list[PartialReport] = as_list(partials, "partials", "a collection of PartialReport values")
    for p in ps:
        if not isinstance(p, PartialReport):
            raise InputTypeError("can only merge PartialReport values", code="bad-report")
    if not ps:
        raise InputValueError("no partial reports to merge", code="nothing-read")
    head = ps[0]
    for p in ps[1:]:
        if (p.by, p.protocols) != (head.by, head.protocols):
            raise InputValueError(
                f"partial reports of different analyses (by {head.by} with "
                f"{', '.join(head.protocols)} vs by {p.by} with "
                f"{', '.join(p.protocols)}) do not merge",
                code="mismatched-partials",
            )
    ranks = [r for p in ps for r, _n, _f in p.captures]
    if len(set(ranks)) != len(ranks):
        raise InputValueError(
            "partial reports of the same capture (rank) do not merge: its datagrams "
            "would count twice",
            code="mismatched-partials",
        )
    if len(ps) == 1:
        return head
    no_sid_by: dict[str, dict[str, int]] = {}
    for p in ps:
        for proto, reasons in p.no_sid_by_protocol.items():
            no_sid_by[proto] = _add(no_sid_by.get(proto, {}), reasons)
    return PartialReport(
        by=head.by,
        protocols=head.protocols,
        captures=tuple(sorted(c for p in ps for c in p.captures)),
        flows=_merge_flows([f for p in ps for f in p.flows]),
        frames=sum(p.frames for p in ps),
        udp=sum(p.udp for p in ps),
        with_sid=sum(p.with_sid for p in ps),
        skipped=_add_all(p.skipped for p in ps),
        no_sid=_add_all(p.no_sid for p in ps),
        no_sid_by_protocol=dict(sorted(no_sid_by.items())),
        linktypes=_add_all(p.linktypes for p in ps),
        reassembly=_add_all(p.reassembly for p in ps),
        errors=tuple(sorted(e for p in ps for e in p.errors)),
        max_flows=max(p.max_flows for p in ps),
        over_limit=sum(p.over_limit for p in ps),
    )


def _add_all(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _tuple_key(t: PartTuple) -> tuple[str, int, str, int]:
    return (t.src, t.sport, t.dst, t.dport)


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _formats(formats: Iterable[str]) -> str:
    seen: list[str] = []
    for f in formats:
        if f not in seen:
            seen.append(f)
    return "+".join(seen)


def _identity(f: PartFlow) -> list[tuple[str, ...]]:
    """What makes two partial flows one: a shared session ID (SID flows) or the same
    bidirectional 5-tuple (tuple flows)."""
    if f.kind == "sid":
        return [("sid", p, h) for _k, p, h in f.sids]
    t = f.tuples[0]
    a, b = f"{t.src}|{t.sport}", f"{t.dst}|{t.dport}"
    return [("tuple", *sorted((a, b)))]


def _merge_flows(flows: Sequence[PartFlow]) -> tuple[PartFlow, ...]:
    """Connected components of flows sharing an identity, each merged into one flow."""
    parent = list(range(len(flows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, ...], int] = {}
    for i, f in enumerate(flows):
        for ident in _identity(f):
            j = owner.setdefault(ident, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[PartFlow]] = {}
    for i, f in enumerate(flows):
        groups.setdefault(find(i), []).append(f)
    return _canonical_flows(_merge_group(g) if len(g) > 1 else g[0] for g in groups.values())


def _merge_group(group: Sequence[PartFlow]) -> PartFlow:
    tuples: dict[tuple[str, int, str, int], PartTuple] = {}
    for f in group:
        for t in f.tuples:
            k = t[:4]
            old = tuples.get(k)
            tuples[k] = (
                t
                if old is None
                else PartTuple(
                    t.src,
                    t.sport,
                    t.dst,
                    t.dport,
                    min(old.first, t.first),
                    max(old.last, t.last),
                    old.datagrams + t.datagrams,
                    old.bytes + t.bytes,
                )
            )
    kind = group[0].kind
    best: dict[tuple[str, str], SidEntry] = {}
    for f in group:
        for entry in f.sids:
            # a tuple flow lists each ID once whatever the protocol (its sidset); a SID flow
            # is one protocol's
            ident = ("", entry[2]) if kind == "tuple" else (entry[1], entry[2])
            seen = best.get(ident)
            if seen is None or entry < seen:
                best[ident] = entry
    return PartFlow(
        kind=kind,
        sids=tuple(sorted(best.values())),
        mixed=any(f.mixed for f in group),
        first=min(f.first for f in group),
        last=max(f.last for f in group),
        tuples=tuple(sorted(tuples.values(), key=_tuple_key)),
        key=min(f.key for f in group),
    )


def _canonical_flows(flows: Iterable[PartFlow]) -> tuple[PartFlow, ...]:
    """One order for equal values, whatever order the flows were merged in."""
    return tuple(sorted(flows, key=lambda f: f.key))


def _to_flow(f: PartFlow) -> Flow:
    sids = tuple(h for _k, _p, h in f.sids)
    if f.kind == "sid":
        protocol: str | None = f.sids[0][1] if f.sids else None
    else:
        names = {p for _k, p, _h in f.sids}
        protocol = names.pop() if len(names) == 1 and not f.mixed and "" not in names else None
    stats = sorted(
        (
            TupleStats(t.src, t.sport, t.dst, t.dport, t.first[1], t.last[1], t.datagrams, t.bytes)
            for t in f.tuples
        ),
        key=lambda t: (t.first_ns, t.src, t.sport, t.dst, t.dport),
    )
    return Flow(
        kind="sid" if f.kind == "sid" else "tuple",
        protocol=protocol,
        sid=sids[0] if f.kind == "sid" and sids else None,
        sids=sids,
        first_ns=f.first[1],
        last_ns=f.last[1],
        datagrams=sum(t.datagrams for t in f.tuples),
        bytes=sum(t.bytes for t in f.tuples),
        tuples=tuple(stats),
    )


# --------------------------------------------------------------------------------------------
# Finding and ordering the captures
# --------------------------------------------------------------------------------------------


def expand_captures(items: Iterable[str | Path]) -> list[Path]:
    """Paths of the captures named by *items*: files as given, every regular file of a
    directory (hidden ones left out, not recursive), and the matches of a glob pattern
    (``*``, ``?``, ``[``) that names no existing file. A directory or pattern with no file
    is an error, as is a path that does not exist; a file named twice is read once."""
    if isinstance(items, str | bytes | os.PathLike):
        items = [items]
    out: list[Path] = []
    for item in as_list(items, "captures", "paths"):
        if not isinstance(item, str | os.PathLike):
            raise InputTypeError(
                f"a capture is a path, not {type(item).__name__}", code="bad-source"
            )
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise CaptureError(f"{text}: directory holds no file", code="unreadable")
            out.extend(found)
        elif path.exists():
            out.append(path)
        elif _GLOB_CHARS & set(text):
            found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not found:
                raise CaptureError(f"{text}: the pattern matches no file", code="unreadable")
            out.extend(found)
        else:
            raise CaptureError(f"{text}: cannot open: no such file", code="unreadable")
    unique: dict[Path, None] = {}
    for p in out:
        unique.setdefault(p.resolve(), None)
    if not unique:
        raise InputValueError("no captures given", code="no-capture")
    return [p for p in out if unique.pop(p.resolve(), 0) is None]


def first_timestamp(path: Path) -> int | None:
    """The timestamp (ns) of the first record of the capture at *path*, ``None`` if it has
    none. Raises what opening a capture raises (not a capture, unreadable)."""
    with open_capture(path) as fh:
        for ts, _lt, _frame, _wire in Capture(fh, name=str(path)):
            return ts
    return None


def order_captures(paths: Iterable[Path]) -> list[Path]:
    """*paths* in the order of their first records' timestamps (captures without records
    last); equal timestamps keep the given order."""
    keyed = []
    for i, p in enumerate(paths):
        ts = first_timestamp(p)
        keyed.append((ts is None, ts or 0, i, p))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read_file(analyzer: FlowAnalyzer, path: Path, progress: Callable[[int], None] | None) -> None:
    """One capture into *analyzer* (which may hold earlier captures)."""
    with open_capture(path) as fh:
        capture = Capture(fh, name=str(path))
        if progress is None:
            analyzer.read(capture)
        else:
            report = progress
            analyzer.read(capture, lambda done, _total: report(done))


@attrs.frozen
class _Job:
    """What a worker needs to analyse one file: picklable, so that it travels to a process
    or a Dask worker."""

    path: str
    rank: int
    protocols: tuple[str, ...] | None
    options: Mapping[str, object] | None
    by: By
    fast: bool
    reassembly: Mapping[str, float] | None
    max_flows: int = DEFAULT_MAX_FLOWS


def analyze_one(job: _Job) -> PartialReport:
    """The partial report of one file (the map step; runs in a worker)."""
    analyzer = FlowAnalyzer(
        list(job.protocols) if job.protocols is not None else None,
        job.options,
        by=job.by,
        fast=job.fast,
        reassembly=job.reassembly,
        max_flows=job.max_flows,
    )
    _read_file(analyzer, Path(job.path), None)
    return PartialReport.from_report(analyzer.report(), job.rank)


def _check(report: FlowReport) -> FlowReport:
    """The errors :func:`analyze` raises for a capture with nothing readable, over all."""
    s = report.summary
    if s.frames == 0 and s.errors:
        raise CaptureError("; ".join(s.errors), code="nothing-read")
    unsupported = s.skipped.get("unsupported-linktype", 0)
    if s.frames and unsupported == s.frames:
        raise UnsupportedLinkTypeError(
            f"{s.capture}: every frame is of a link type sidkit does not decode "
            f"({', '.join(s.linktypes)}); supported: "
            f"{', '.join(f'{k} {v}' for k, v in LINKTYPES.items())}"
        )
    return report


def _check_many_args(
    protocols: object, options: object, reassembly: object, progress: object
) -> None:
    """The arguments analyze_many hands on (to the analyzer, to worker processes, to Dask)
    checked where they enter, so a wrong type is named here and not in a worker."""
    check_analyzer_args(protocols, options, reassembly)
    check_callable(progress, "progress", optional=True)


def analyze_many(
    captures: Iterable[str | Path] | str | Path,
    protocols: Sequence[str] | None = None,
    options: Mapping[str, object] | None = None,
    *,
    by: By = "sid",
    jobs: int = 1,
    client: Any = None,
    fast: bool = True,
    reassembly: Mapping[str, float] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    max_flows: int = DEFAULT_MAX_FLOWS,
) -> FlowReport:
    """Group the UDP datagrams of many captures into flows, as one capture.

    *captures* are paths, directories (every file in them) or glob patterns
    (:func:`expand_captures`); they are read in the order of their first records'
    timestamps. *protocols*, *options*, *by*, *fast*, *reassembly* and *max_flows* are
    :func:`~sidkit.flows.analyze`'s (in the parallel modes the flow limit holds per file).

    With ``jobs=1`` and no *client* one analyzer reads the files in order: the report is
    that of a single pass over the concatenated captures, QUIC connection-ID lengths, links
    and IP fragments carrying from one file into the next. With ``jobs=N`` (N worker
    processes) or a Dask ``distributed.Client`` as *client*, each file is read on its own
    and the :class:`PartialReport` values are merged: the same report, except for what one
    file cannot know of another (:doc:`/flows-many` says exactly what). *progress* is
    called with (bytes read, total bytes) -- per file in the parallel modes.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 1024:
        raise InputValueError(f"jobs must be an int in 1..1024, not {show(jobs)}", code="bad-jobs")
    if by not in ("sid", "tuple"):
        raise InputValueError(f"by must be 'sid' or 'tuple', not {show(by)}", code="bad-by")
    _check_many_args(protocols, options, reassembly, progress)
    items = (
        [captures]
        if isinstance(captures, str | os.PathLike)
        else as_list(captures, "captures", "paths")
    )
    paths = order_captures(expand_captures(items))
    # checks protocols and options once, here, before any worker starts
    template = FlowAnalyzer(
        protocols, options, by=by, fast=fast, reassembly=reassembly, max_flows=max_flows
    )
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    if client is None and jobs == 1:
        done = 0
        for path, size in zip(paths, sizes, strict=True):
            _read_file(template, path, _offset(progress, done, total))
            done += size
        report = template.report()
        names = ", ".join(str(p) for p in paths)
        formats = _formats(first_format(p) for p in paths)
        return _check(
            attrs.evolve(
                report, summary=attrs.evolve(report.summary, capture=names, format=formats)
            )
        )
    work = [
        _Job(
            str(p),
            rank,
            tuple(protocols) if protocols is not None else None,
            dict(options) if options is not None else None,
            by,
            fast,
            dict(reassembly) if reassembly is not None else None,
            max_flows,
        )
        for rank, p in enumerate(paths)
    ]
    partials = _run_dask(client, work) if client is not None else _run_processes(jobs, work)
    collected: list[PartialReport] = []
    done = 0
    for job_size, partial in partials(sizes):
        collected.append(partial)
        done += job_size
        if progress is not None:
            progress(done, total)
    report = _check(merge_partials(collected).to_report())
    note = _cross_file_note(collected)
    if note:
        report = attrs.evolve(
            report, summary=attrs.evolve(report.summary, notes=(*report.summary.notes, note))
        )
    return report


_CROSS_FILE_REASONS: Final = ("quic-cid-length-unknown", "quic-empty-cid")


def _cross_file_note(partials: Sequence[PartialReport]) -> str:
    """The note a per-file report carries when a capture after the first has QUIC
    datagrams whose grouping may rest on an earlier capture (:doc:`/flows-many`): short
    headers of unknown CID length, datagrams with an empty DCID. Empty if none."""
    count = sum(
        p.no_sid.get(reason, 0)
        for p in partials
        if min(r for r, _n, _f in p.captures) > 0
        for reason in _CROSS_FILE_REASONS
    )
    if not count:
        return ""
    return (
        f"{count} QUIC datagrams in captures after the first had no connection-ID length or "
        "path of their own there (quic-cid-length-unknown, quic-empty-cid): read in one "
        "pass (jobs=1), or with quic.cid_length given, they may join connections begun in "
        "an earlier capture"
    )


def _offset(
    progress: Callable[[int, int | None], None] | None, base: int, total: int
) -> Callable[[int], None] | None:
    """A per-file progress callback reporting the bytes of all files so far."""
    if progress is None:
        return None
    report = progress
    return lambda n: report(base + n, total)


def first_format(path: Path) -> str:
    """``pcap`` or ``pcapng``: the format of the capture at *path*."""
    with open(path, "rb") as fh:
        return Capture(fh, name=str(path)).format


_Results = Callable[[Sequence[int]], Iterable[tuple[int, PartialReport]]]


def _quiet_worker() -> None:
    """Worker processes leave Ctrl-C to the parent (which stops them), so that one
    interrupt gives one message, not a traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_processes(jobs: int, work: Sequence[_Job]) -> _Results:
    def results(sizes: Sequence[int]) -> Iterable[tuple[int, PartialReport]]:
        from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415

        pool = ProcessPoolExecutor(max_workers=min(jobs, len(work)), initializer=_quiet_worker)
        try:
            futures = {pool.submit(analyze_one, job): i for i, job in enumerate(work)}
            for future in as_completed(futures):
                yield sizes[futures[future]], future.result()
        except BaseException:
            # an error in one file or an interrupt: stop the others now, not after their
            # files (the executor would wait for them)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    return results


def _run_dask(client: Any, work: Sequence[_Job]) -> _Results:
    try:
        from distributed import as_completed  # noqa: PLC0415
    except ImportError:
        raise InputValueError(
            "a Dask client needs the 'distributed' package: pip install 'sidkit[cluster]'",
            code="missing-extra",
        ) from None
    if not hasattr(client, "map"):
        raise InputTypeError(
            f"client must be a distributed.Client, not {type(client).__name__}",
            code="bad-client",
        )

    def results(sizes: Sequence[int]) -> Iterable[tuple[int, PartialReport]]:
        futures = client.map(analyze_one, list(work), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            yield sizes[index[future.key]], future.result()

    return results
