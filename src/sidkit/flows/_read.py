# Strategy: captures into the analyzer. For classic pcap the record loop, the
# Ethernet/IPv4/UDP check and the fast path's per-first-byte lookup are one loop over the
# read buffers (read_pcap), which is what `sidkit flows` spends its time in; every other
# capture -- pcapng, and any capture on the reference path (fast=False) -- goes record by
# record through Capture's iterator (read_records). What a loop does not resolve itself it
# hands to the analyzer's _fast or _slow, which give the same result the long way.
#
# The loops are functions over the analyzer, not its methods, so that the flow state machine
# (_analyzer) reads on its own and this module sits below it: what the loops use of the
# analyzer -- its counters, its fast-path tables and the few methods a datagram is handed
# to -- is spelled out in _AnalyzerLike. They refuse per-datagram calls, attribute lookups
# and new objects on the common path: everything they need is loaded into locals first.
"""Reading pcap and pcapng captures into the flow analyzer (private)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from sidkit._errors import InputTypeError
from sidkit.flows._capture import Capture, PcapLayout
from sidkit.flows._decode import (
    DECODERS,
    ETHER_IPV4_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPES,
    Datagram,
    Fragment,
    tuple_key,
    udp_datagram,
)
from sidkit.flows._errors import CaptureError, UnsupportedLinkTypeError
from sidkit.flows._reassembly import Reassembler
from sidkit.flows._state import (
    KIND_EXACT,
    KIND_GREASED,
    KIND_KNOWN,
    KIND_LONG,
    KIND_NONE,
    KIND_SLOW,
    By,
    ExactLocation,
    FlowLimitReached,
    FlowState,
    PathIndex,
    SidKey,
    TupleCounter,
    pair_counter,
)
from sidkit.keys import SessionId

__all__ = ["Progress", "read_into", "read_pcap", "read_records"]

Progress = Callable[[int, int | None], None]


class _AnalyzerLike(Protocol):
    """What the reading loops use of :class:`~sidkit.flows.FlowAnalyzer`."""

    by: By
    fast: bool
    frames: int
    udp: int
    with_sid: int
    skipped: dict[str, int]
    no_sid: dict[str, int]
    errors: list[str]
    linktypes: dict[int, int]
    _seq: int
    _kind: list[int]
    _exact: list[tuple[ExactLocation, ...]]
    _base: list[int]
    _known: dict[bytes, FlowState | None]
    _known_lengths: tuple[int, ...]
    _fixed: int
    _path: PathIndex
    _cells: dict[str, dict[bytes, FlowState]]
    no_sid_by: dict[str, dict[str, int]]
    reassembler: Reassembler
    _pairs: dict[str, dict[bytes, TupleCounter]]
    _tcount: dict[bytes, TupleCounter]

    def read(
        self, capture: Capture, progress: Progress | None = None, total: int | None = None
    ) -> None: ...
    def _slow(self, ts: int, tk: bytes, payload: bytes, length: int) -> SessionId | None: ...
    def _fast(self, ts: int, tk: bytes, payload: bytes, length: int) -> None: ...
    def _quic_long_fast(self, ts: int, tk: bytes, payload: bytes, length: int) -> None: ...
    def _tuple_datagram(self, ts: int, tk: bytes, length: int, key: SidKey | None) -> None: ...
    def _sid_state(self, protocol: str, value: bytes, ts: int) -> FlowState: ...

    _live: int
    max_flows: int
    over_limit: int


def reassemble(reassembler: Reassembler, ts: int, frag: Fragment) -> Datagram | str | None:
    """Hand a fragment to the reassembler: the UDP datagram once complete (or why it is
    no usable one), ``None`` while fragments are missing or when it was given up on."""
    whole = reassembler.add(ts, frag)
    if whole is None:
        return None
    return udp_datagram(whole.src, whole.dst, whole.data)


def read_records(
    analyzer: _AnalyzerLike, capture: Capture, progress: Progress | None, total: int | None
) -> None:
    """Every record through the capture's iterator (pcapng, and the reference path).
    The fast path recognises the common Ethernet frame as :func:`read_pcap` does."""
    decoders = DECODERS
    fast = analyzer.fast
    datagram = analyzer._fast if fast else analyzer._slow
    ether = ETHER_IPV4_UDP.unpack_from
    pack = tuple_key
    skipped = analyzer.skipped
    linktypes = analyzer.linktypes
    frames = 0
    for ts, linktype, frame, _wirelen in capture:
        frames += 1
        analyzer._seq += 1
        if not frames & 0xFFFF and progress is not None:
            progress(capture.bytes_read, total)
        if fast and linktype == LINKTYPE_ETHERNET and len(frame) > 42:
            etype, vihl, ip_len, frag, proto, tk, ulen, _first = ether(frame, 0)
            if (
                etype == 0x0800
                and vihl == 0x45
                and proto == 17
                and not frag & 0x3FFF
                and ulen >= 8
                and 28 <= ip_len <= len(frame) - 14
            ):
                linktypes[linktype] = linktypes.get(linktype, 0) + 1
                stop = 34 + ulen if ulen + 20 < ip_len else ip_len + 14
                datagram(ts, tk, frame[42:stop], ulen - 8)
                continue
        decoder = decoders.get(linktype)
        result = "unsupported-linktype" if decoder is None else decoder(frame)
        linktypes[linktype] = linktypes.get(linktype, 0) + 1
        if isinstance(result, Fragment):
            whole = reassemble(analyzer.reassembler, ts, result)
            if whole is None:
                continue
            result = whole
        if isinstance(result, str):
            skipped[result] = skipped.get(result, 0) + 1
            continue
        src, sport, dst, dport, payload, length = result
        datagram(ts, pack(src, sport, dst, dport), payload, length)
    analyzer.frames += frames


def read_pcap(
    analyzer: _AnalyzerLike,
    capture: Capture,
    layout: PcapLayout,
    progress: Progress | None,
    total: int | None,
) -> None:
    """The fast path over a classic pcap: records walked in the read buffers, the
    common Ethernet/IPv4/UDP frame recognised by one unpack
    (:data:`sidkit.flows._decode.ETHER_IPV4_UDP`), and -- when grouping by session ID --
    the session ID taken, looked up and counted right here for every datagram whose
    first byte the tables resolve. Everything else goes through the analyzer's ``_fast``
    (other frames) or ``_slow`` (payloads the tables cannot resolve), which give the same
    result the long way.

    The loop is written for CPython's sake: locals only, a dict subscript in a ``try``
    rather than ``get`` where a miss is rare, no call and no new object on the common
    path other than the ID and tuple-key slices and the timestamp."""
    # (seconds, fraction, captured length): the original length is not needed here
    record = struct.Struct(layout.record.format[0] + "III4x").unpack_from
    ether = ETHER_IPV4_UDP.unpack_from
    mul, linktype, limit = layout.ns_per_tick, layout.linktype, layout.limit
    decoder = DECODERS[linktype]
    inline = linktype == LINKTYPE_ETHERNET and analyzer.by == "sid"
    kind, exact, base = analyzer._kind, analyzer._exact, analyzer._base
    known = analyzer._known
    quic = analyzer._pairs.setdefault("quic", {})
    pair = pair_counter
    lengths = analyzer._known_lengths
    longest = lengths[0] if len(lengths) == 1 else 0  # the one learned length, or 0
    fixed = analyzer._fixed  # the configured length while no long header was seen, or 0
    path = analyzer._path
    empty = path.empty  # cleared in place, never replaced
    cells = analyzer._cells.setdefault("quic", {})
    tcount = analyzer._tcount
    slow, fast, tuple_datagram = analyzer._slow, analyzer._fast, analyzer._tuple_datagram
    long_header = analyzer._quic_long_fast
    new_sid = analyzer._sid_state
    skipped = analyzer.skipped
    pack = tuple_key
    seq = first_seq = analyzer._seq  # datagram sequence numbers: one per record
    others = 0  # records this loop did not count itself (skipped, _fast, _slow)
    nones = 0  # datagrams no protocol claims, counted here
    empties = 0  # QUIC short headers with an empty DCID, counted here
    # a timestamp's seconds in nanoseconds, made once per second of capture: the product of a
    # 2026 epoch second and 10**9 is a two-digit CPython int, and multiplying it out per record
    # cost more than all the record's other arithmetic
    second, second_ns = -1, 0
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
            if sec != second:
                second, second_ns = sec, sec * 1_000_000_000
            ts = second_ns + frac * mul
            if inline and caplen > 42:
                etype, vihl, ip_len, frag, proto, tk, ulen, first = ether(buf, f)
                if (
                    etype == 0x0800
                    and vihl == 0x45
                    and proto == 17
                    and not frag & 0x3FFF
                    and ulen >= 8
                    and 28 <= ip_len <= caplen - 14
                ):
                    stop = 34 + ulen if ulen + 20 < ip_len else ip_len + 14
                    size = stop - 42  # captured payload bytes
                    n = ulen - 8  # payload bytes on the wire
                    k = kind[first]
                    if k == KIND_GREASED:  # fixed bit clear: a learned CID makes it QUIC
                        k = base[first]
                        for cid_len in lengths:
                            if size > cid_len and buf[f + 43 : f + 43 + cid_len] in known:
                                k = KIND_SLOW
                                break
                    c = None
                    if size <= 0 or k == KIND_SLOW:
                        pass
                    elif k == KIND_KNOWN:
                        if longest:
                            if size > longest:
                                key = buf[f + 43 : f + 43 + longest] + tk
                                try:
                                    c = quic[key]
                                except KeyError:
                                    st = known.get(key[:longest])
                                    if st is not None:
                                        c = pair(st, quic, key, tk, ts, path)
                        else:
                            for cid_len in lengths:
                                if size <= cid_len:
                                    break  # the slice would be short: the plugin decides
                                key = buf[f + 43 : f + 43 + cid_len] + tk
                                st = known.get(key[:cid_len])
                                if st is not None:
                                    c = quic.get(key) or pair(st, quic, key, tk, ts, path)
                                    break
                        if c is None and fixed and size > fixed:
                            key = buf[f + 43 : f + 43 + fixed] + tk
                            c = quic.get(key)
                            if c is None:
                                value = key[:fixed]
                                st = cells.get(value)
                                if st is None and analyzer._live < analyzer.max_flows:
                                    st = new_sid("quic", value, ts)
                                if st is not None:  # else past the flow limit: _slow counts it
                                    c = pair(st, quic, key, tk, ts, path)
                        if c is None and empty:
                            # an empty DCID, as the last short header on this tuple had
                            # (sidkit.flows._state.PathIndex): no ID, its path's flow
                            c = empty.get(tk)
                            if c is not None:
                                c.last = ts
                                c.n += 1
                                c.size += n
                                c.seq = seq
                                empties += 1
                                continue
                    elif k == KIND_EXACT:
                        p0 = f + 42
                        for off, idlen, needed, guards, ids, pairs, protocol in exact[first]:
                            if size < needed or (
                                guards and not all(buf[p0 + g] & m == v for g, m, v in guards)
                            ):
                                continue
                            key = buf[p0 + off : p0 + off + idlen] + tk
                            try:
                                c = pairs[key]
                            except KeyError:
                                value = key[:idlen]
                                st = ids.get(value)
                                if st is None and analyzer._live < analyzer.max_flows:
                                    st = new_sid(protocol, value, ts)
                                if st is not None:  # else past the flow limit: _slow counts it
                                    c = pair(st, pairs, key, tk, ts, path)
                            break
                    elif k == KIND_NONE:  # no session ID, a tuple flow
                        try:
                            c = tcount[tk]
                        except KeyError:
                            analyzer._seq = seq
                            try:
                                tuple_datagram(ts, tk, n, None)
                            except FlowLimitReached:
                                analyzer.over_limit += 1
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
                    analyzer._seq = seq
                    if k == KIND_LONG:  # a long header, which no branch above counts
                        long_header(ts, tk, buf[f + 42 : f + stop], n)
                    else:
                        slow(ts, tk, buf[f + 42 : f + stop], n)
                    lengths = analyzer._known_lengths
                    longest = lengths[0] if len(lengths) == 1 else 0
                    fixed = analyzer._fixed
                    continue
            others += 1
            result = decoder(buf[f:pos])
            if isinstance(result, Fragment):
                whole = reassemble(analyzer.reassembler, ts, result)
                if whole is None:
                    continue
                result = whole
            if isinstance(result, str):
                skipped[result] = skipped.get(result, 0) + 1
                continue
            src, sport, dst, dport, payload, length = result
            analyzer._seq = seq
            fast(ts, pack(src, sport, dst, dport), payload, length)
            lengths = analyzer._known_lengths
            longest = lengths[0] if len(lengths) == 1 else 0
            fixed = analyzer._fixed
        capture.records = seq - first_seq
        if not buf:
            break
        if progress is not None:
            progress(capture.bytes_read, total)
        buf = buffers.send(pos)
    analyzer._seq = seq
    frames = seq - first_seq
    hits = frames - others - nones - empties  # datagrams with an ID, counted here
    analyzer.frames += frames
    analyzer.udp += hits + nones + empties
    analyzer.with_sid += hits
    if nones:
        analyzer.no_sid["none"] = analyzer.no_sid.get("none", 0) + nones
        counts = analyzer.no_sid_by.setdefault("-", {})
        counts["unclaimed"] = counts.get("unclaimed", 0) + nones
    if empties:
        no_sid = analyzer.no_sid
        no_sid["quic-empty-cid"] = no_sid.get("quic-empty-cid", 0) + empties
        counts = analyzer.no_sid_by.setdefault("quic", {})
        counts["empty-cid"] = counts.get("empty-cid", 0) + empties
    analyzer.linktypes[linktype] = analyzer.linktypes.get(linktype, 0) + frames


def read_into(
    analyzer: _AnalyzerLike, fh: BinaryIO, name: str, total: int | None, progress: Progress | None
) -> None:
    """Read the capture in *fh* into *analyzer*, raising what :func:`~sidkit.flows.analyze`
    raises: :class:`CaptureError` when not one record could be read,
    :class:`UnsupportedLinkTypeError` when every frame is of a link type sidkit does not
    decode."""
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
