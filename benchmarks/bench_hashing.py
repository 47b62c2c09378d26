"""Hash-function throughput, printed as absolute time per call and as ratios against
baselines measured in the same run.

Run: ``python benchmarks/bench_hashing.py`` (needs the ``test`` extra for the
``siphash`` (pure Python) and ``siphash24`` (C) comparison packages). ``--batch`` runs only
the batch part (``bulk`` extra: numpy).

Targets (issue 2): jhash of a 16-byte key <= 1.5 us, jhash_3words <= 1.0 us on CPython
3.11 on the project's 2-core machine; sidkit.siphash >= 2x the pure-Python ``siphash``
package on the same inputs. The ratio to the C ``siphash24`` package is reported for
scale (a pure-Python SipHash will be far slower than C; that is expected).
The absolute targets depend on the machine, so the first line prints a calibration
baseline (a no-op Python call) and every row also shows its cost in no-op calls.

Batch target (issue 17): ``sidkit.hashing.batch`` jhash(16 B) and siphash(16 B) >= 30x
faster per item than the scalar functions at 10^5 keys, the batch side timed from a Python
list of bytes (the conversion to a numpy array is part of its time). Every batch result is
checked equal to the scalar results before it is timed.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import timeit
from collections.abc import Callable

from sidkit import hashing as h


def per_call(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-*repeat* seconds per call (the minimum is the least noisy estimator)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def bench_batch(keys_n: int) -> bool:
    """Per-item speedup of sidkit.hashing.batch over the scalar functions, same run."""
    try:
        from sidkit.hashing import batch  # noqa: PLC0415  (numpy: the bulk extra)
    except ImportError as exc:
        print(f"batch: {exc}")
        return False
    rng = random.Random(2)
    keys = [rng.randbytes(16) for _ in range(keys_n)]
    skey = rng.randbytes(16)
    words = [(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32)) for _ in range(keys_n)]
    cols = [list(c) for c in zip(*words, strict=True)]
    addrs = [f"192.0.2.{i & 255}" for i in range(keys_n)]
    ports = [1024 + (i * 7) % 60000 for i in range(keys_n)]
    cases: list[tuple[str, Callable[[], object], Callable[[], object], bool]] = [
        (
            "jhash(16 B)",
            lambda: [h.jhash(k, 7) for k in keys],
            lambda: batch.jhash(keys, 7),
            True,
        ),
        (
            "siphash(16 B)",
            lambda: [h.siphash(k, skey) for k in keys],
            lambda: batch.siphash(keys, skey),
            True,
        ),
        (
            "hsiphash(16 B)",
            lambda: [h.hsiphash(k, skey) for k in keys],
            lambda: batch.hsiphash(keys, skey),
            False,
        ),
        (
            "jhash_3words",
            lambda: [h.jhash_3words(a, b, c, 7) for a, b, c in words],
            lambda: batch.jhash_3words(cols[0], cols[1], cols[2], 7),
            False,
        ),
        (
            "udp_ehashfn (str addrs)",
            lambda: [
                h.udp_ehashfn("10.0.0.1", 4433, a, p, 7) for a, p in zip(addrs, ports, strict=True)
            ],
            lambda: batch.udp_ehashfn("10.0.0.1", 4433, addrs, ports, 7),
            False,
        ),
    ]
    print(f"batch vs scalar at {keys_n:,} keys (numpy; batch timed from Python lists):")
    print(f"  {'function':24} {'scalar us/item':>15} {'batch us/item':>14} {'speedup':>8}")
    ok = True
    for name, scalar, bulk, target in cases:
        want = scalar()
        got = [int(x) for x in bulk()]  # type: ignore[attr-defined]
        assert got == want, f"{name}: batch differs from scalar"
        t_s = min(timeit.repeat(scalar, number=1, repeat=2)) / keys_n
        t_b = min(timeit.repeat(bulk, number=1, repeat=5)) / keys_n
        ratio = t_s / t_b
        note = ""
        if target:
            note = "  target >= 30x " + ("PASS" if ratio >= 30 else "MISS")
            ok &= ratio >= 30
        print(f"  {name:24} {t_s * 1e6:15.3f} {t_b * 1e6:14.4f} {ratio:7.0f}x{note}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--number", type=int, default=20000, help="calls per timing run")
    ap.add_argument("--batch", action="store_true", help="only the batch-vs-scalar part")
    ap.add_argument("--keys", type=int, default=100_000, help="keys in the batch part")
    args = ap.parse_args(argv)
    if args.batch:
        return 0 if bench_batch(args.keys) else 1
    n = args.number
    rng = random.Random(1)
    key16 = rng.randbytes(16)
    skey = rng.randbytes(16)
    msgs = {ln: rng.randbytes(ln) for ln in (8, 16, 64)}

    def noop() -> None:
        return None

    base = per_call(noop, n)
    rows: list[tuple[str, float, str, bool | None]] = []

    t = per_call(lambda: h.jhash(key16, 0x1234), n)
    rows.append(("jhash(16 bytes)", t, "target <= 1.5 us", t <= 1.5e-6))
    t = per_call(lambda: h.jhash_3words(1, 2, 3, 0x1234), n)
    rows.append(("jhash_3words", t, "target <= 1.0 us", t <= 1.0e-6))
    t = per_call(lambda: h.jhash2([1, 2, 3, 4], 7), n)
    rows.append(("jhash2(4 words)", t, "", None))
    t = per_call(lambda: h.udp_ehashfn("10.0.0.1", 4433, "192.0.2.7", 50000, 7), n)
    rows.append(("udp_ehashfn (str addrs)", t, "", None))

    try:
        pure = importlib.import_module("siphash")
        siphash24 = importlib.import_module("siphash24")
    except ImportError:
        print("install the test extra (pip install -e '.[test]') for the siphash comparisons")
        return 1
    for ln, msg in msgs.items():
        ours = per_call(lambda m=msg: h.siphash(m, skey), n // 4)  # type: ignore[misc]
        theirs = per_call(lambda m=msg: pure.SipHash_2_4(skey, m).hash(), n // 4)  # type: ignore[misc]
        c = per_call(lambda m=msg: siphash24.siphash24(m, key=skey).intdigest(), n)  # type: ignore[misc]
        assert h.siphash(msg, skey) == pure.SipHash_2_4(skey, msg).hash()
        rows.append(
            (
                f"siphash({ln} bytes)",
                ours,
                f"{theirs / ours:.2f}x pure-Python siphash (target >= 2x); "
                f"{ours / c:.0f}x slower than C siphash24",
                theirs / ours >= 2.0,
            )
        )
    t = per_call(lambda: h.hsiphash(msgs[16], skey), n // 4)
    rows.append(("hsiphash(16 bytes)", t, "", None))
    t = per_call(lambda: h.toeplitz(msgs[16][:12]), n // 4)
    rows.append(("toeplitz(12 bytes)", t, "", None))

    print(f"Python {sys.version.split()[0]}; baseline no-op call: {base * 1e9:.0f} ns")
    print(f"{'function':26} {'us/call':>8} {'x no-op':>8}  note")
    failed = False
    for name, secs, note, ok in rows:
        mark = "" if ok is None else ("  PASS" if ok else "  MISS")
        failed |= ok is False
        print(f"{name:26} {secs * 1e6:8.3f} {secs / base:8.1f}  {note}{mark}")
    print()
    failed |= not bench_batch(args.keys)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
