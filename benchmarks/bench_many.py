"""Many captures: ``analyze_many`` sequentially, with ``--jobs``-style worker processes, and
on a Dask ``LocalCluster``, as wall-clock ratios measured in the same run.

Run: ``python benchmarks/bench_many.py`` (``--files N`` captures of ``--datagrams M``
datagrams each, default 4 x 250,000; ``--jobs 2,4`` the process counts to time;
``--dask`` adds a LocalCluster of two single-threaded worker processes).

The captures: bench_flows.py's capture (QUIC connections with handshakes, short headers both
ways, a NAT rebinding in one connection in ten, 10% datagrams without an ID) of
``files x datagrams`` datagrams, cut into ``--files`` captures of equal length, as
``tcpdump -C`` rotates them: every connection spans the files, its handshake in the
first. The analysis is given ``quic.cid_length=8`` (the servers' CID length), with which
per-file reading gives the sequential report (docs/flows-many.rst); ``--learn`` leaves it
out, to show what per-file reading then loses (short headers whose CID length was learned
in an earlier file).

Rows: (a) one process reading the files in order (``jobs=1``, the exact single pass);
(b) ``jobs=N`` worker processes, each file read by its own analyzer and the partial
reports merged, preceded by a calibration -- the speed-up N processes get on a pure
Python loop on this machine right now, the ceiling for (b); (c) the merge alone (the
serial part of (b)); (d) Dask. Each row prints its wall-clock time and its speed-up over
(a); the script also checks that (b) and (d) gave (a)'s report. The machine's CPU count
and load average are printed: on a shared 2-CPU machine the speed-up is bounded by 2 and
by whatever else runs. ``--connections`` sets how many QUIC connections the capture
holds (default 2,000; fewer means more datagrams per flow and less to merge).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_flows import make_capture  # type: ignore[import-not-found]

from sidkit.flows import FlowReport, PartialReport, analyze, analyze_many, merge_partials


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def headroom(jobs: int, n: int = 5_000_000) -> float:
    """The speed-up *jobs* processes get on pure Python work here and now (ideal: *jobs*):
    how much parallel capacity the machine has left, to judge the rows against."""
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    start = time.perf_counter()
    for _ in range(jobs):
        _spin(n)
    serial = time.perf_counter() - start
    with ProcessPoolExecutor(jobs) as pool:
        start = time.perf_counter()
        list(pool.map(_spin, [n] * jobs))
        parallel = time.perf_counter() - start
    return serial / parallel


def split(path: Path, folder: Path, files: int) -> list[Path]:
    """*path* (a classic pcap) cut into *files* captures of equal record counts."""
    data = path.read_bytes()
    header, pos, offsets = data[:24], 24, []
    while pos + 16 <= len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    offsets.append(pos)
    n = len(offsets) - 1
    out = []
    for i in range(files):
        lo, hi = offsets[i * n // files], offsets[(i + 1) * n // files]
        part = folder / f"trace-{i:02d}.pcap"
        part.write_bytes(header + data[lo:hi])
        out.append(part)
    return out


def _timed(run: Callable[[], FlowReport]) -> tuple[float, FlowReport]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--datagrams", type=int, default=250_000, help="per file")
    ap.add_argument("--jobs", default="2", help="comma-separated process counts (default 2)")
    ap.add_argument("--dask", action="store_true", help="also time a Dask LocalCluster")
    ap.add_argument("--learn", action="store_true", help="no quic.cid_length: learn it")
    ap.add_argument(
        "--connections",
        type=int,
        default=2000,
        help="QUIC connections in the capture (fewer: more datagrams per flow, less to merge)",
    )
    args = ap.parse_args(argv)
    options = None if args.learn else {"quic": {"cid_length": 8}}
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "whole.pcap"
        make_capture(whole, args.files * args.datagrams, connections=args.connections, seed=1)
        paths = split(whole, Path(tmp), args.files)
        whole.unlink()
        size = sum(p.stat().st_size for p in paths)
        print(
            f"{args.files} captures x {args.datagrams} datagrams ({size / 1e6:.0f} MB); "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
        )
        base, one = _timed(lambda: analyze_many(paths, options=options))
        print(f"(a) jobs=1, one pass in order          {base:7.2f} s   1.00x")
        unknown = one.summary.no_sid.get("quic-cid-length-unknown", 0)
        print(f"    {len(one.flows)} flows, {unknown} short headers of unknown CID length")
        for jobs in (int(j) for j in args.jobs.split(",")):
            print(
                f"    calibration: {jobs} processes run pure Python {headroom(jobs):4.2f}x "
                f"as fast as one here now (ideal {jobs}.00x)"
            )
            t, report = _timed(lambda jobs=jobs: analyze_many(paths, options=options, jobs=jobs))  # type: ignore[misc]
            same = report.flows == one.flows and report.summary.to_json() == one.summary.to_json()
            print(
                f"(b) jobs={jobs}, processes + merge        {t:7.2f} s   {base / t:4.2f}x"
                f"   same report as (a): {same}"
                + (
                    ""
                    if same
                    else f" ({report.summary.no_sid.get('quic-cid-length-unknown', 0)} short "
                    "headers of unknown CID length)"
                )
            )
        partials = [
            PartialReport.from_report(analyze(p, options=options), rank)
            for rank, p in enumerate(paths)
        ]
        start = time.perf_counter()
        merge_partials(partials).to_report()
        merge = time.perf_counter() - start
        flows = sum(len(p.flows) for p in partials)
        print(
            f"(c) the merge alone ({flows} partial flows)  {merge:7.2f} s   "
            f"{merge / base:4.2f} of (a)"
        )
        if args.dask:
            from distributed import Client, LocalCluster  # noqa: PLC0415

            with (
                LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                Client(cluster) as client,  # type: ignore[no-untyped-call]
            ):
                t, report = _timed(lambda: analyze_many(paths, options=options, client=client))
            same = report.flows == one.flows
            print(
                f"(d) Dask LocalCluster, 2 workers       {t:7.2f} s   {base / t:4.2f}x   "
                f"same report as (a): {same}"
            )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
