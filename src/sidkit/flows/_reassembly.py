# Strategy: put IPv4 and IPv6 fragments back together the way the Linux receive path does
# before the UDP socket lookup, so that a session ID behind a fragmented datagram (a GTP-U
# tunnel's TEID, a QUIC Initial over a small MTU) is found as the kernel would find it. The
# decision rules are the kernel's, transcribed from Linux 6.12 (net/ipv4/ip_fragment.c
# ip_frag_queue/ip_frag_too_far/ip_frag_reasm, net/ipv6/reassembly.c ip6_frag_queue/
# ip6_frag_reasm/ipv6_frag_rcv, net/ipv4/inet_fragment.c inet_frag_queue_insert/
# inet_frag_find; the same since the 2018 rework, v4.19 "ip: discard IPv4 datagrams with
# overlapping segments" -- IPv6 has dropped them since RFC 5722, v2.6.31): a fragment that
# overlaps another only partly kills the whole datagram; one that lies inside a run of
# fragments already queued is a duplicate and is ignored; a last fragment that disagrees
# with the length known so far, a non-last one reaching past the known end, or a zero-length
# one kill the datagram; a queue lives ipfrag_time (30 s, IPv4) or ip6frag_time (60 s,
# IPv6) from its creation, in *capture* time (the caller passes it in, never a clock); IPv4
# restarts a queue after more than ipfrag_max_dist (64) fragments from the same source
# arrived in between; a datagram over 65535 bytes is dropped when it completes. Memory is
# bounded by a cap on pending queues and on the bytes they hold (the kernel refuses every
# fragment while ipfrag_high_thresh, 4 MiB, is exceeded -- it counts skb truesize, this
# counts captured bytes). What was given up on is counted by reason. Fragments cut by the
# snap length reassemble as far as the captured bytes are contiguous; the wire length is
# the kernel's. No decoding of what the datagram carries (that is _decode) and no flows.
"""IPv4 and IPv6 fragment reassembly for ``sidkit flows`` (private)."""

from __future__ import annotations

from typing import Final, NamedTuple

from sidkit._errors import InputValueError

__all__ = ["Fragment", "Reassembled", "Reassembler"]

# include/net/ip.h IP_FRAG_TIME, include/net/ipv6.h IPV6_FRAG_TIMEOUT, in nanoseconds
IPV4_TIMEOUT_NS: Final = 30 * 1_000_000_000
IPV6_TIMEOUT_NS: Final = 60 * 1_000_000_000
MAX_DIST: Final = 64  # net.ipv4.ipfrag_max_dist
HIGH_THRESH: Final = 4 * 1024 * 1024  # net.ipv4.ipfrag_high_thresh, ip6frag_high_thresh
MAX_PENDING: Final = 4096
_MAXLEN: Final = 65535  # IPv4 total length; IPV6_MAXPLEN for the IPv6 payload


class Fragment(NamedTuple):
    """One IP fragment as the decoder saw it.

    *key* names the datagram (family, addresses, identification and, for IPv4, protocol:
    the kernel's ipq/frag_queue key); *offset* and *size* are the fragment's place and
    length on the wire in bytes, *more* its More Fragments flag, *data* its captured
    bytes (at most *size*); *proto* is the protocol (IPv4) or the fragment header's Next
    Header (IPv6); *extra* is what the datagram's length adds beyond the fragmentable part
    in the 65535 check (IPv4: the header length; IPv6: the headers between the fixed header
    and the fragment header)."""

    key: bytes
    src: bytes
    dst: bytes
    proto: int
    offset: int
    more: bool
    data: bytes
    size: int
    extra: int


class Reassembled(NamedTuple):
    """A complete datagram: addresses, protocol, the captured bytes of its fragmentable
    part (contiguous from 0; shorter than *size* only if the snap length cut fragments) and
    its length on the wire."""

    src: bytes
    dst: bytes
    proto: int
    data: bytes
    size: int


class _Queue:
    __slots__ = ("created", "frags", "last_in", "length", "meat", "nbytes", "rid", "runs", "tail")

    def __init__(self, created: int) -> None:
        self.created = created
        self.frags: list[tuple[int, int, bytes, Fragment]] = []  # (offset, end, data, frag)
        self.runs: list[list[int]] = []  # [start, end] of the kernel's fragment runs
        self.tail = 0  # the end of the fragment with the highest end (fragments_tail)
        self.length = 0  # q.len
        self.last_in = False
        self.meat = 0
        self.nbytes = 0
        self.rid = 0


class Reassembler:
    """Fragment queues keyed as the kernel keys them (module note). *max_pending* bounds the
    queues, *max_bytes* the captured bytes they hold; a fragment that would exceed either is
    dropped (``memory``). *timeout_v4* / *timeout_v6* are seconds of capture time; *max_dist*
    is ipfrag_max_dist (0 turns the check off).

    ``counts`` says what happened, by reason: ``fragments`` (received), ``reassembled``
    (datagrams completed), ``duplicate`` (ignored), and the datagrams given up on:
    ``overlap``, ``invalid`` (inconsistent lengths, zero-length fragment, an IPv6 first
    fragment without the whole UDP header, a non-last IPv6 fragment not a multiple of 8),
    ``too-big``, ``timeout``, ``too-far``, ``memory``; :meth:`pending` is what is still
    incomplete."""

    def __init__(
        self,
        *,
        max_pending: float = MAX_PENDING,
        max_bytes: float = HIGH_THRESH,
        timeout_v4: float = IPV4_TIMEOUT_NS / 1e9,
        timeout_v6: float = IPV6_TIMEOUT_NS / 1e9,
        max_dist: float = MAX_DIST,
    ) -> None:
        for name, value in (
            ("max_pending", max_pending),
            ("max_bytes", max_bytes),
            ("timeout_v4", timeout_v4),
            ("timeout_v6", timeout_v6),
            ("max_dist", max_dist),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputValueError(
                    f"reassembly {name} must be a number >= 0, not {value!r}",
                    code="bad-reassembly",
                )
        self.max_pending = int(max_pending)
        self.max_bytes = int(max_bytes)
        self.timeouts = (round(timeout_v4 * 1e9), round(timeout_v6 * 1e9))
        self.max_dist = int(max_dist)
        self.counts: dict[str, int] = {}
        self._queues: dict[bytes, _Queue] = {}
        self._bytes = 0
        self._peer_rid: dict[bytes, int] = {}

    def _count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def _kill(self, key: bytes, reason: str) -> None:
        q = self._queues.pop(key)
        self._bytes -= q.nbytes
        self._count(reason)

    def pending(self) -> int:
        """Queues still waiting for fragments."""
        return len(self._queues)

    def summary(self) -> dict[str, int]:
        """``counts`` with ``incomplete`` (:meth:`pending`), sorted, zeros left out."""
        out = dict(self.counts)
        if self._queues:
            out["incomplete"] = len(self._queues)
        return dict(sorted(out.items()))

    def _expire(self, ts: int) -> None:
        """Drop the queues whose timer ran out by *ts* (oldest first; capture time may go
        backwards, so this stops at the first queue still alive)."""
        queues = self._queues
        while queues:
            key = next(iter(queues))
            q = queues[key]
            if ts - q.created < self.timeouts[key[0] == 6]:
                return
            self._kill(key, "timeout")

    def add(self, ts: int, frag: Fragment) -> Reassembled | None:
        """Queue one fragment received at *ts* (ns); the datagram when it completes."""
        self._count("fragments")
        self._expire(ts)
        key = frag.key
        v6 = key[0] == 6
        offset, end, data = frag.offset, frag.offset + frag.size, frag.data
        if v6:
            # ipv6_frag_rcv: the first fragment must hold the whole upper-layer header
            # (RFC 8200 section 4.5; ipv6frag_thdr_truncated), and ip6_frag_queue refuses
            # a fragment ending past IPV6_MAXPLEN or a non-last one not a multiple of 8;
            # these drop the fragment only.
            if (offset == 0 and frag.proto == 17 and frag.size < 8) or end > _MAXLEN:
                self._count("invalid" if end <= _MAXLEN else "too-big")
                return None
            if frag.more and end & 7:
                self._count("invalid")
                return None
        q = self._queues.get(key)
        if q is None:
            # inet_frag_find: nothing is queued while the memory is over the threshold
            if len(self._queues) >= self.max_pending or self._bytes + len(data) > self.max_bytes:
                self._count("memory")
                return None
            q = self._queues[key] = _Queue(ts)
        elif self._bytes + len(data) > self.max_bytes:
            self._count("memory")
            return None
        if not v6 and self.max_dist:
            # ip_frag_too_far: more than max_dist fragments from this source since this
            # queue's last one -> ip_frag_reinit (the queue restarts empty)
            rid = self._peer_rid.get(frag.src, 0) + 1
            self._peer_rid[frag.src] = rid
            start, q.rid = q.rid, rid
            if q.frags and rid - start > self.max_dist:
                self._bytes -= q.nbytes
                self._count("too-far")
                q.frags, q.runs, q.tail, q.length = [], [], 0, 0
                q.last_in, q.meat, q.nbytes = False, 0, 0
        if not frag.more:
            if end < q.length or (q.last_in and end != q.length):
                self._kill(key, "invalid")
                return None
            q.last_in = True
            q.length = end
        else:
            if end & 7:  # IPv4 only (IPv6 refused above): trimmed to a multiple of 8
                end &= ~7
                data = data[: end - offset]
            if end > q.length:
                if q.last_in:
                    self._kill(key, "invalid")
                    return None
                q.length = end
        if end == offset:
            self._kill(key, "invalid")
            return None
        verdict = _insert(q, offset, end)
        if verdict == "duplicate":
            self._count("duplicate")
            return None
        if verdict == "overlap":
            self._kill(key, "overlap")
            return None
        q.frags.append((offset, end, data, frag))
        q.meat += end - offset
        q.nbytes += len(data)
        self._bytes += len(data)
        if not (q.last_in and q.meat == q.length and any(o == 0 for o, *_ in q.frags)):
            return None
        q.frags.sort(key=lambda f: f[0])
        first = q.frags[0][3]
        if first.extra + q.length > _MAXLEN:
            self._kill(key, "too-big")
            return None
        del self._queues[key]
        self._bytes -= q.nbytes
        self._count("reassembled")
        parts = []
        pos = 0
        for o, e, d, _f in q.frags:
            if o != pos:
                break
            parts.append(d)
            pos += len(d)
            if len(d) != e - o:
                break  # the snap length cut this fragment: the rest is not contiguous
        return Reassembled(first.src, first.dst, first.proto, b"".join(parts), q.length)


def _insert(q: _Queue, offset: int, end: int) -> str:
    """inet_frag_queue_insert over the queue's runs: ``ok``, ``duplicate`` (inside one run)
    or ``overlap``. A fragment past the tail extends the last run if it starts where the
    tail ends (fragrun_append_to_last) or starts a run; one before the tail is placed among
    the runs, whose ends are *not* merged with their neighbours -- as in the kernel, a later
    fragment spanning two adjacent runs is an overlap, not a duplicate."""
    if not q.runs:
        q.runs.append([offset, end])
        q.tail = end
        return "ok"
    if q.tail < end:
        if offset < q.tail:
            return "overlap"
        if offset == q.tail:
            q.runs[-1][1] = end
        else:
            q.runs.append([offset, end])
        q.tail = end
        return "ok"
    for i, (start, stop) in enumerate(q.runs):
        if end <= start:
            q.runs.insert(i, [offset, end])
            return "ok"
        if offset >= stop:
            continue
        return "duplicate" if offset >= start and end <= stop else "overlap"
    q.runs.append([offset, end])  # pragma: no cover - end <= tail, so a run follows
    return "ok"
