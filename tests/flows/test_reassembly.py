"""IP fragment reassembly in ``sidkit flows`` (sidkit.flows._reassembly).

The rules are the Linux receive path's (net/ipv4/ip_fragment.c, net/ipv6/reassembly.c,
net/ipv4/inet_fragment.c, 6.12): fragments in any order make the datagram; a duplicate is
ignored; a partial overlap kills the datagram (IPv6 since RFC 5722, IPv4 since v4.19); a
fragment inside a run the kernel has not merged with its neighbour is told from one spanning
two runs; queues expire 30 s (IPv4) / 60 s (IPv6) of capture time after they were created;
memory is capped. tshark, which reassembles too, is the oracle for complete datagrams.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct
from pathlib import Path

import dpkt
import pytest
from fixtures import packets as pk
from fixtures import tshark as ts

from sidkit.flows import Fragment, Reassembler, analyze
from sidkit.flows._decode import decode_frame

SRC, DST = socket.inet_aton("192.0.2.1"), socket.inet_aton("198.51.100.7")
SRC6, DST6 = (
    socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
    socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
)
MAC = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
T0 = 1_700_000_000_000_000_000


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _v4_fragments(
    udp: bytes, cuts: list[int], ident: int = 0x1234, src: bytes = SRC
) -> list[bytes]:
    """Ethernet frames of *udp* cut at byte offsets *cuts* (multiples of 8)."""
    bounds = [0, *cuts, len(udp)]
    frames = []
    for start, stop in itertools.pairwise(bounds):
        more = 0x2000 if stop < len(udp) else 0
        part = udp[start:stop]
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, more | start >> 3, 64, 17, 0, src, DST
        )
        frames.append(MAC + b"\x08\x00" + ip + part)
    return frames


def _v4_raw(offset: int, part: bytes, more: bool, ident: int = 0x1234) -> bytes:
    flags = (0x2000 if more else 0) | offset >> 3
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, flags, 64, 17, 0, SRC, DST)
    return MAC + b"\x08\x00" + ip + part


def _v6_fragments(udp: bytes, cuts: list[int], ident: int = 0xABCDEF01) -> list[bytes]:
    bounds = [0, *cuts, len(udp)]
    frames = []
    for start, stop in itertools.pairwise(bounds):
        part = udp[start:stop]
        frag = struct.pack("!BBHI", 17, 0, start | (1 if stop < len(udp) else 0), ident)
        ip = struct.pack("!IHBB", 0x60000000, 8 + len(part), 44, 64) + SRC6 + DST6
        frames.append(MAC + b"\x86\xdd" + ip + frag + part)
    return frames


def _v6_raw(offset: int, part: bytes, more: bool, ident: int = 0xABCDEF01) -> bytes:
    frag = struct.pack("!BBHI", 17, 0, offset | more, ident)
    ip = struct.pack("!IHBB", 0x60000000, 8 + len(part), 44, 64) + SRC6 + DST6
    return MAC + b"\x86\xdd" + ip + frag + part


def _pcap(frames: list[bytes], times: list[int] | None = None) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=1, nano=True)
    for i, frame in enumerate(frames):
        t = T0 + i * 1000 if times is None else times[i]
        writer.writepkt(frame, ts=t / 1e9)
    return out.getvalue()


def _feed(frames: list[bytes], r: Reassembler, times: list[int] | None = None) -> list[bytes]:
    """The UDP datagrams (header + payload) the frames complete."""
    done = []
    for i, frame in enumerate(frames):
        frag = decode_frame(1, frame)
        assert isinstance(frag, Fragment)
        whole = r.add(T0 + i * 1000 if times is None else times[i], frag)
        if whole is not None:
            done.append(whole.data)
    return done


UDP = _udp(4000, 2152, bytes(range(256)) * 2)  # 520 bytes


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_order_reassembles_ipv4(order: tuple[int, ...]) -> None:
    frames = _v4_fragments(UDP, [128, 256, 384])
    r = Reassembler()
    assert _feed([frames[i] for i in order], r) == [UDP]
    assert r.summary() == {"fragments": 4, "reassembled": 1}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_any_order_reassembles_ipv6(order: tuple[int, ...]) -> None:
    frames = _v6_fragments(UDP, [200, 400])
    r = Reassembler()
    assert _feed([frames[i] for i in order], r) == [UDP]


def test_duplicates_are_ignored_and_overlaps_kill_the_datagram() -> None:
    frames = _v4_fragments(UDP, [128, 256])
    r = Reassembler()
    assert _feed([frames[0], frames[0], frames[2], frames[1]], r) == [UDP]
    assert r.counts["duplicate"] == 1
    # a fragment inside one already queued, with other bytes: still a duplicate (the kernel
    # compares offsets, never contents)
    r = Reassembler()
    inner = _v4_raw(8, b"\xff" * 16, more=True)
    assert _feed([frames[0], inner, frames[1], frames[2]], r) == [UDP]
    # a partial overlap: the whole datagram is dropped, later fragments start a new queue
    r = Reassembler()
    overlap = _v4_raw(120, UDP[120:200], more=True)
    assert _feed([frames[0], overlap, frames[1], frames[2]], r) == []
    assert r.summary() == {"fragments": 4, "incomplete": 1, "overlap": 1}


def test_runs_are_not_merged_as_in_the_kernel() -> None:
    """[0,8) and [16,24) queued, then [8,16) in between: three runs. [4,12) spans two of
    them, so inet_frag_queue_insert says overlap -- merged intervals would say duplicate."""
    r = Reassembler()
    data = UDP[:32]
    frames = [
        _v4_raw(0, data[0:8], True),
        _v4_raw(16, data[16:24], True),
        _v4_raw(8, data[8:16], True),
        _v4_raw(0, data[0:8], True),  # inside the first run: duplicate
        _v4_raw(8, data[8:24], True),  # spans runs [8,16) and [16,24): overlap
    ]
    assert _feed(frames, r) == []
    assert r.counts["duplicate"] == 1 and r.counts["overlap"] == 1
    # appended at the tail, a fragment extends the last run instead
    r = Reassembler()
    frames = [
        _v4_raw(0, data[0:8], True),
        _v4_raw(8, data[8:16], True),
        _v4_raw(0, data[0:16], True),
    ]
    assert _feed(frames, r) == [] and r.counts == {"fragments": 3, "duplicate": 1}


def test_inconsistent_lengths_and_zero_length_fragments() -> None:
    frames = _v4_fragments(UDP, [128, 256])
    r = Reassembler()
    short_last = _v4_raw(256, UDP[256:300], more=False)  # a second, different end
    assert _feed([frames[2], short_last], r) == []
    assert r.counts["invalid"] == 1
    r = Reassembler()
    assert _feed([frames[0], _v4_raw(512, b"", more=True)], r) == []
    assert r.counts["invalid"] == 1
    # a non-last IPv4 fragment not a multiple of 8 is trimmed (ip_frag_queue: end &= ~7)
    r = Reassembler()
    odd = _v4_raw(0, UDP[:133], more=True)
    assert _feed([odd, frames[1], frames[2]], r) == [UDP]
    # IPv6 refuses it (RFC 8200 section 4.5) and drops only that fragment
    six = _v6_fragments(UDP, [200])
    r = Reassembler()
    assert _feed([_v6_raw(0, UDP[:205], more=True), six[1], six[0]], r) == [UDP]
    assert r.counts["invalid"] == 1


def test_timeout_in_capture_time() -> None:
    frames = _v4_fragments(UDP, [256])
    r = Reassembler()
    assert _feed(frames, r, [T0, T0 + 31 * 10**9]) == []
    assert r.summary() == {"fragments": 2, "incomplete": 1, "timeout": 1}
    r = Reassembler()
    assert _feed(frames, r, [T0, T0 + 29 * 10**9]) == [UDP]
    six = _v6_fragments(UDP, [256])
    r = Reassembler()
    assert _feed(six, r, [T0, T0 + 59 * 10**9]) == [UDP]  # IPv6: 60 s


def test_too_big_memory_and_too_far() -> None:
    r = Reassembler()
    big = [_v4_raw(0, bytes(32760), True), _v4_raw(32760, bytes(32768), True)]
    assert _feed([*big, _v4_raw(65528, bytes(100), more=False)], r) == []
    assert r.counts["too-big"] == 1 and r.pending() == 0
    r = Reassembler(max_pending=1)
    first = _v4_fragments(UDP, [256], ident=1)
    second = _v4_fragments(UDP, [256], ident=2)
    assert _feed([first[0], second[0], second[1], first[1]], r) == [UDP]
    assert r.counts["memory"] == 2 and r.pending() == 0  # both of the second refused
    r = Reassembler(max_bytes=300)
    assert _feed(first, r) == [] and r.counts["memory"] == 1
    # ipfrag_max_dist: 65 fragments of other datagrams from the same source in between
    r = Reassembler()
    others = [_v4_fragments(UDP, [256], ident=100 + i)[0] for i in range(65)]
    assert _feed([first[0], *others, first[1]], r) == []
    assert r.counts["too-far"] == 1
    assert _feed([first[0]], r) == [UDP]  # the queue restarted with the second fragment
    with pytest.raises(ValueError):
        Reassembler(max_bytes=-1)


def test_snaplen_cut_fragments_reassemble_as_far_as_captured() -> None:
    frames = _v4_fragments(UDP, [256])
    r = Reassembler()
    cut = frames[0][: 14 + 20 + 100]
    assert _feed([cut, frames[1]], r) == [UDP[:100]]


# --- through sidkit flows, against tshark ---------------------------------------------------


def _gtpu_frames(shuffle: bool) -> tuple[list[bytes], list[bytes]]:
    """Three GTP-U datagrams (TEIDs 1..3), each split into three IPv4 fragments, the
    fragments of the three interleaved (and reversed when *shuffle*)."""
    teids = [struct.pack("!I", n) for n in (0x11111111, 0x22222222, 0x33333333)]
    per = []
    for i, teid in enumerate(teids):
        body = bytes([i]) * 1200
        udp = _udp(2152, 2152, pk.gtpu(0xFF, teid, body))
        frags = _v4_fragments(udp, [400, 800], ident=0x100 + i)
        per.append(frags[::-1] if shuffle else frags)
    return [f for group in zip(*per, strict=True) for f in group], teids


@pytest.mark.parametrize("shuffle", [False, True])
def test_fragmented_gtpu_keeps_its_teid(tmp_path: Path, shuffle: bool) -> None:
    frames, teids = _gtpu_frames(shuffle)
    path = tmp_path / "gtpu.pcap"
    path.write_bytes(_pcap(frames))
    for fast in (True, False):
        report = analyze(path, ["gtpu"], fast=fast)
        assert sorted(f.sid or "" for f in report.flows) == [t.hex() for t in teids]
        assert all(f.datagrams == 1 and f.bytes == 8 + 1200 for f in report.flows)
        assert report.summary.reassembly == {"fragments": 9, "reassembled": 3}
        assert report.summary.udp == 3 and report.summary.with_sid == 3
    rows = ts.fields(path, ["gtp.teid"], prefs={"ip.defragment": "TRUE"})
    got = sorted(int(v, 0) for row in rows for v in row["gtp.teid"])
    assert got == sorted(int.from_bytes(t, "big") for t in teids)


def test_reassembled_ipv4_and_ipv6_payloads_match_tshark(tmp_path: Path) -> None:
    frames = _v4_fragments(UDP, [128, 256, 384]) + _v6_fragments(UDP, [200, 400])
    frames = [frames[i] for i in (1, 3, 0, 2, 6, 4, 5)]
    path = tmp_path / "frag.pcap"
    path.write_bytes(_pcap(frames))
    rows = ts.fields(path, ["udp.srcport", "udp.length"])
    theirs = [
        (i, int(row["udp.srcport"][0]), int(row["udp.length"][0]))
        for i, row in enumerate(rows)
        if row["udp.srcport"]
    ]
    r = Reassembler()
    ours = []
    for i, frame in enumerate(frames):
        frag = decode_frame(1, frame)
        assert isinstance(frag, Fragment)
        whole = r.add(T0 + i, frag)
        if whole is not None:
            assert whole.data == UDP
            ours.append((i, 4000, len(whole.data)))
    assert ours == theirs and len(ours) == 2
