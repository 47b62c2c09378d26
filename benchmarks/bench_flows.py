"""``sidkit flows`` throughput on a generated capture, against dpkt baselines measured in the
same run.

Run: ``python benchmarks/bench_flows.py`` (``--datagrams N`` to change the size; default
1,000,000). The script writes a classic pcap to a temporary directory: Ethernet/IPv4/UDP
frames of a few thousand QUIC connections (client and server long-header handshakes with
8-byte connection IDs, then short headers both ways; one connection in ten changes its
client port half-way, a NAT rebinding) mixed with 10% UDP datagrams that carry no session
ID. It then times

(a) a bare ``for ts, buf in dpkt.pcap.Reader(f)`` loop,
(b) a dpkt decode loop (``Ethernet(buf).data.data``: Ethernet -> IP -> UDP objects),
(c) ``sidkit.flows.analyze()`` end to end (the library call behind ``sidkit flows``,
    without printing),

and prints datagrams/s for each and the ratios. Goal (issue 7): (c) >= 250k datagrams/s and
>= 50% of (a) on the project's 2-core machine. The machine's load average is printed before
and after: other work on the machine slows every row, which is why the ratio to (a),
measured in the same run, is the figure to compare across runs.

Options: ``--zero-cids SHARE`` gives that share of the connections a client with zero-length
CIDs (Chrome's kind: the server's datagrams to it carry no DCID and join their path's flow);
``--handshakes N`` makes the capture handshake-heavy: every connection ends after N
datagrams and a new one starts (about 2/N of the SID datagrams are long headers, a new flow
every N/2 datagrams; issue 17's goal: (c) >= 0.5x (a) with >= 10% long headers of all
datagrams: ``--handshakes 18`` gives 10.2%, ``--handshakes 20`` 9.3%, ``--handshakes 10``
18%);
``--cpu`` times by process CPU time (steadier ratios on a shared machine);
``--repeat N`` times each row N times and keeps the fastest (less noise on a busy
machine; (a) and (c), the rows of the goals' ratio, take turns); ``--reference`` adds (d),
``analyze(..., fast=False)``, which sends every datagram through the plugins (the path the
fast one is tested against); ``--pcapng`` also times (c) on the same capture converted to
pcapng (dpkt's writer); ``--profile`` prints a cProfile summary of (c). For a sampling
profile of (c) without cProfile's overhead::

    py-spy record -f raw -o flows.txt -- python benchmarks/bench_flows.py
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dpkt

from sidkit.flows import FlowReport, analyze

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_REC = struct.Struct("<IIII")


def _frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    ulen = 8 + len(payload)
    ip = _IPV4.pack(0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, src, dst)
    return _ETH + ip + _UDP.pack(sport, dport, ulen, 0) + payload


def _long(first: int, dcid: bytes, scid: bytes, body: int, rng: random.Random) -> bytes:
    """A QUIC v1 long header (RFC 9000 section 17.2) with a 2-byte Length and a body."""
    head = bytes([first]) + b"\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid
    head += bytes([len(scid)]) + scid
    if first & 0x30 == 0:  # Initial: token length 0
        head += b"\x00"
    return head + struct.pack("!H", 0x4000 | body) + rng.randbytes(body)


class _Conn:
    """One generated QUIC connection: client address and port, the client's, the server's
    and the original destination CIDs, how many datagrams it has sent."""

    def __init__(
        self, client: bytes, port: int, ccid: bytes, scid: bytes, odcid: bytes, migrate: bool
    ) -> None:
        self.client, self.port, self.migrate = client, port, migrate
        self.ccid, self.scid, self.odcid = ccid, scid, odcid
        self.step = 0


def make_capture(
    path: Path,
    datagrams: int,
    connections: int = 3000,
    seed: int = 7,
    zero_cids: float = 0.0,
    lifetime: int = 0,
) -> int:
    """Write the benchmark's capture; returns the number of frames written. A share
    *zero_cids* of the connections have a client that chose zero-length CIDs (as Chrome's):
    the server's packets to it carry no DCID.

    Connections run round-robin, so every one is active over the whole capture; memory
    therefore depends on *connections*, not on *datagrams* (the flat-memory test uses this).
    With *lifetime* > 0 a connection ends after that many datagrams and a fresh one (new
    CIDs, next client port) takes its place: every connection then starts with its two long
    headers, so about 2 / *lifetime* of the datagrams are long headers and new flows arrive
    all the time (the handshake-heavy capture of issue 17).
    """
    rng = random.Random(seed)
    server = bytes([10, 0, 0, 1])
    conns = []
    for i in range(connections):
        client = bytes([10, 1 + (i >> 16) % 200, (i >> 8) & 0xFF, i & 0xFF])
        zero = (i * 7919) % 1000 < zero_cids * 1000  # no draw: the default capture is unchanged
        ccid = rng.randbytes(8)
        conns.append(
            _Conn(
                client,
                20000 + i % 40000,
                b"" if zero else ccid,
                rng.randbytes(8),
                rng.randbytes(8),
                i % 10 == 0,
            )
        )
    pad = rng.randbytes(1400)
    written = 0
    ts = 1_700_000_000_000_000
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out: list[bytes] = []
        i = 0
        while written < datagrams:
            c = conns[i % connections]
            if lifetime and c.step >= lifetime:
                c = conns[i % connections] = _Conn(
                    c.client,
                    20000 + (c.port - 19999) % 40000,
                    b"" if not c.ccid else rng.randbytes(8),
                    rng.randbytes(8),
                    rng.randbytes(8),
                    c.migrate,
                )
            i += 1
            size = 40 + (i * 37) % 260
            if rng.random() < 0.1:  # no SID: a DNS-like datagram (first byte 0x12)
                frame = _frame(c.client, 53000, server, 53, b"\x12\x34" + pad[:size])
                step = -1
            else:
                step = c.step
                c.step = step + 1
            if step < 0:
                pass
            elif step == 0:
                frame = _frame(
                    c.client,
                    c.port,
                    server,
                    443,
                    _long(0xC3, c.odcid, c.ccid, 1200, rng),
                )
            elif step == 1:
                frame = _frame(server, 443, c.client, c.port, _long(0xE3, c.ccid, c.scid, 300, rng))
            else:
                if c.migrate and step == 40:
                    c.port += 1
                if step % 2:
                    frame = _frame(server, 443, c.client, c.port, b"\x43" + c.ccid + pad[:size])
                else:
                    frame = _frame(c.client, c.port, server, 443, b"\x41" + c.scid + pad[:size])
            ts += 1000
            out.append(_REC.pack(ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)) + frame)
            written += 1
            if len(out) >= 4096:
                fh.write(b"".join(out))
                out.clear()
        fh.write(b"".join(out))
    return written


def _long_headers(path: Path) -> int:
    """Datagrams whose payload is a QUIC long header (DNS-like ones to port 53 aside)."""
    with path.open("rb") as fh:
        return sum(1 for _ts, b in dpkt.pcap.Reader(fh) if b[42] & 0x80 and b[36:38] != b"\x005")


def bare_reader(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for _ts, _buf in dpkt.pcap.Reader(fh):
            n += 1
    return n


def dpkt_decode(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            udp = dpkt.ethernet.Ethernet(buf).data.data
            if isinstance(udp, dpkt.udp.UDP):
                n += 1
    return n


def to_pcapng(src: Path, dst: Path) -> None:
    """The same records as a pcapng file (one interface, microsecond timestamps)."""
    with src.open("rb") as fi, dst.open("wb") as fo:
        reader = dpkt.pcap.Reader(fi)
        writer = dpkt.pcapng.Writer(fo, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt(buf, ts=ts)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


_CLOCK: list[Callable[[], float]] = [time.perf_counter]


def _best(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    return _alternate(repeat, run)[0]


def _alternate(repeat: int, *runs: Callable[[], object]) -> list[tuple[float, object]]:
    """Each of *runs* timed *repeat* times, in turn (a, c, a, c, ...), the best of each kept:
    a machine whose speed drifts over the run (other tenants, frequency) then slows the rows
    of a ratio alike, rather than whichever row happened to run in a slow minute."""
    clock = _CLOCK[0]
    best: list[tuple[float, object]] = [(float("inf"), None)] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            t0 = clock()
            result = run()
            best[i] = (min(best[i][0], clock() - t0), result)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1, help="time each row N times, keep the best")
    ap.add_argument("--reference", action="store_true", help="also time fast=False")
    ap.add_argument("--pcapng", action="store_true", help="also time (c) on a pcapng copy")
    ap.add_argument("--profile", action="store_true", help="cProfile the sidkit run")
    ap.add_argument(
        "--zero-cids",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of connections whose client chose zero-length CIDs (default 0)",
    )
    ap.add_argument(
        "--handshakes",
        type=int,
        default=0,
        metavar="N",
        help="handshake-heavy: each connection lives N datagrams, then a new one starts "
        "(about 2/N of the datagrams are long headers; 0: connections live all capture)",
    )
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="time rows by this process's CPU time instead of the wall clock: on a machine "
        "shared with other work, less of the others' load lands in the ratios",
    )
    args = ap.parse_args(argv)
    if args.cpu:
        _CLOCK[0] = time.process_time
    print(f"load average (1, 5, 15 min) before: {_load()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pcap"
        t0 = time.perf_counter()
        n = make_capture(
            path,
            args.datagrams,
            args.connections,
            zero_cids=args.zero_cids,
            lifetime=args.handshakes,
        )
        size = path.stat().st_size
        print(
            f"capture: {n:,} datagrams, {size / 1e6:,.0f} MB, written in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        rows: list[tuple[str, float]] = []
        profiler = cProfile.Profile() if args.profile else None

        def profiled() -> FlowReport:
            if profiler is not None:
                profiler.enable()
            try:
                return analyze(path)
            finally:
                if profiler is not None:
                    profiler.disable()

        # (a) and (c), the goals' ratio, in turn; (b), six times slower, on its own
        timed = _alternate(args.repeat, lambda: bare_reader(path), profiled)
        (bare, count), (sidkit, report) = timed
        assert count == n
        rows.append(("(a) dpkt.pcap.Reader loop", bare))
        seconds, count = _best(args.repeat, lambda: dpkt_decode(path))
        assert count == n
        rows.append(("(b) dpkt decode Ethernet->IP->UDP", seconds))
        rows.append(("(c) sidkit flows (analyze)", sidkit))
        assert isinstance(report, FlowReport)
        s = report.summary
        assert s.udp == n, s
        longs = _long_headers(path)
        print(
            f"sidkit: {s.sid_flows:,} SID flows, {s.tuple_flows:,} tuple flows, "
            f"{s.with_sid:,} datagrams with a SID; long headers {longs / n:.1%} of datagrams"
        )
        if args.reference:
            seconds, slow = _best(1, lambda: analyze(path, fast=False))
            assert slow == report, "the fast and the reference path disagree"
            rows.append(("(d) sidkit flows, fast=False", seconds))
        if args.pcapng:
            ng = Path(tmp) / "bench.pcapng"
            to_pcapng(path, ng)
            seconds, ng_report = _best(args.repeat, lambda: analyze(ng))
            assert isinstance(ng_report, FlowReport) and ng_report.flows == report.flows
            rows.append(("(c) on the pcapng copy", seconds))
        bare = rows[0][1]
        for name, secs in rows:
            print(
                f"{name:36} {secs:7.2f} s  {n / secs / 1e3:8.0f}k datagrams/s  "
                f"{bare / secs:5.2f}x of (a)"
            )
        ours = rows[2][1]
        rate = n / ours
        ok_rate = rate >= 250_000
        ok_ratio = bare / ours >= 0.5
        print(f"goal >= 250k datagrams/s: {'met' if ok_rate else 'MISSED'} ({rate / 1e3:.0f}k)")
        print(f"goal >= 50% of (a):       {'met' if ok_ratio else 'MISSED'} ({bare / ours:.0%})")
        if args.handshakes:
            share = longs / n
            ok_hs = share >= 0.1 and bare / ours >= 0.5
            print(
                f"goal (issue 17) >= 0.5x (a) with >= 10% long headers: "
                f"{'met' if ok_hs else 'MISSED'} ({bare / ours:.2f}x, {share:.1%} long headers)"
            )
        print(f"load average after: {_load()}")
        if profiler is not None:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
