"""``Extractor.extract`` throughput on a mixed stream of real payloads, against a minimal
first-byte-and-slice function measured in the same run.

Run: ``python benchmarks/bench_extract.py`` (``--repeat N`` keeps the best of N timings,
``--profile`` prints a cProfile summary of the extractor row).

The stream: every UDP payload of every capture under ``conformance/captures/_work``
(nDPI's, Wireshark's, tcpdump's and sidkit's generated QUIC, DTLS, WireGuard, OpenVPN,
GTP-U ... captures, in file-name order, each file's datagrams in capture order; the
corpus is fetched by ``conformance/captures/fetch``), or the pcaps under ``tests/data``
when the corpus is absent. The script prints the stream's size and its mix by first byte
class.

Payloads that the extractor rejects as malformed (a MalformedPacketError: a short header
shorter than its CID, a DTLS record cut short) are left out of the timed stream, since
both rows would then time exception handling; the script says how many.

The extractor: ``Extractor(["quic", "wireguard", "dtls"], {"quic": {"cid_length": 8},
"dtls": {"cid_length": 4}})`` -- QUIC with a configured short-header CID length (a server
knows its own), WireGuard, DTLS 1.2/1.3 with 4-byte CIDs.

The baseline: a function that looks at the first byte and slices -- a QUIC long header's
DCID (``p[6 : 6 + p[5]]``), a short header's 8 bytes, a WireGuard receiver index --
the least a Python caller can do per payload (one call, one test, one slice).

Rows: (a) the baseline, (b) ``Extractor.extract`` (with the exact-location shortcut),
(c) ``Extractor.extract`` with ``.details`` read on every result (forcing the lazy
plugin call), (d) the same stream through every plugin (``Extractor(...,
exact=False)``-equivalent: the reference path). Goal (issue 17): (b) >= 0.3x (a).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sidkit import SidkitError
from sidkit.extract import Extractor
from sidkit.flows._capture import Capture
from sidkit.flows._decode import decode_frame
from sidkit.flows._errors import CaptureError

ROOT = Path(__file__).resolve().parent.parent


def load_stream(limit: int) -> tuple[list[bytes], list[str]]:
    """UDP payloads of the corpus (or tests/data), and the files they came from."""
    corpus = ROOT / "conformance" / "captures" / "_work"
    files = sorted(
        p
        for p in (corpus.rglob("*") if corpus.is_dir() else (ROOT / "tests" / "data").glob("*"))
        if p.suffix in (".pcap", ".pcapng", ".cap") and p.is_file()
    )
    if not files:
        files = sorted((ROOT / "tests" / "data").glob("*.pcap"))
    payloads: list[bytes] = []
    used: list[str] = []
    for path in files:
        try:
            with open(path, "rb") as fh:
                for _ts, linktype, frame, _wire in Capture(fh, name=str(path)):
                    result = decode_frame(linktype, frame)
                    if isinstance(result, tuple) and result[4]:
                        payloads.append(bytes(result[4]))
        except CaptureError:
            continue
        used.append(os.path.relpath(path, ROOT))
        if len(payloads) >= limit:
            break
    return payloads[:limit], used


def minimal(p: bytes) -> bytes | None:
    """The baseline: first byte, then one slice."""
    b = p[0]
    if b & 0x80:
        return p[6 : 6 + p[5]] if len(p) > 5 else None
    if b & 0x40:
        return p[1:9]
    if b == 4:
        return p[4:8]
    return None


def run(fn: Callable[[bytes], object], stream: list[bytes], repeat: int) -> float:
    """Best-of-*repeat* seconds for one pass of *fn* over *stream*."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in stream:
            fn(p)
        best = min(best, time.perf_counter() - start)
    return best


def _extracts(extractor: Extractor, payload: bytes) -> bool:
    try:
        extractor.extract(payload)
    except SidkitError:
        return False
    return True


def _classes(stream: list[bytes]) -> str:
    def cls(b: int) -> str:
        if b & 0x80:
            return "quic-long/0x80+"
        if b & 0x40:
            return "quic-short/0x40-0x7f"
        if 20 <= b <= 63:
            return "dtls/20-63"
        if 1 <= b <= 4:
            return "wireguard/1-4"
        return "other"

    counts = Counter(cls(p[0]) for p in stream)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--limit", type=int, default=200_000, help="payloads at most")
    ap.add_argument("--repeat", type=int, default=15, help="timings per row (best kept)")
    ap.add_argument("--profile", action="store_true", help="cProfile the extractor row")
    args = ap.parse_args(argv)
    stream, files = load_stream(args.limit)
    if not stream:
        print("no payloads found", file=sys.stderr)
        return 1
    options = {"quic": {"cid_length": 8}, "dtls": {"cid_length": 4}}
    extractor = Extractor(["quic", "wireguard", "dtls"], options)
    reference = Extractor(["quic", "wireguard", "dtls"], options, exact=False)
    loaded = len(stream)
    stream = [p for p in stream if _extracts(reference, p)]
    print(
        f"stream: {len(stream)} UDP payloads from {len(files)} captures ({_classes(stream)}); "
        f"{loaded - len(stream)} malformed for their protocol left out (they raise)"
    )
    found = sum(1 for p in stream if extractor.extract(p) is not None)
    same = all(extractor.extract(p) == reference.extract(p) for p in stream)
    print(f"session IDs found: {found} of {len(stream)}; exact path == reference path: {same}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    def with_details(p: bytes) -> object:
        sid = extractor.extract(p)
        return sid.details if sid is not None else None

    rows: list[tuple[str, Callable[[bytes], object]]] = [
        ("(a) minimal first-byte-and-slice", minimal),
        ("(b) Extractor.extract", extractor.extract),
        ("(c) Extractor.extract + .details", with_details),
        ("(d) every payload through the plugins", reference.extract),
    ]
    # rows interleaved, best of --repeat each: a busy machine slows all rows alike
    times = {name: float("inf") for name, _fn in rows}
    for _ in range(args.repeat):
        for name, fn in rows:
            times[name] = min(times[name], run(fn, stream, 1))
    base = times[rows[0][0]]
    for name, _fn in rows:
        t = times[name]
        print(
            f"{name:<42} {len(stream) / t / 1e6:6.2f} M payloads/s   "
            f"{t / len(stream) * 1e9:7.0f} ns each   {base / t:5.2f}x (a)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ratio = base / times[rows[1][0]]
    print(f"goal (b) >= 0.3x (a): {'met' if ratio >= 0.3 else 'MISSED'} ({ratio:.2f}x)")
    if args.profile:
        prof = cProfile.Profile()
        timed: Callable[[bytes], object] = extractor.extract
        prof.runcall(run, timed, stream, 1)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
