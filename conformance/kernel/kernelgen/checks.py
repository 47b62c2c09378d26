# Strategy: before anything is written the harness must prove itself: jhash known answers, all
# of the self-test file's SipHash/HSipHash vectors (both word sizes), -m32 agreement on the
# word-size-free functions, the invariants the vector format relies on (only secret +
# net_hash_mix matters; conntrack ignores the direction byte; the flow hash is symmetric),
# and the conntrack zone and bucket functions. Any mismatch raises HarnessError; what passed
# is returned as sentences for the file headers. Nothing here is written as a vector.
"""Self-checks of the compiled harness; they abort the run on any mismatch."""

from __future__ import annotations

import random

from .base import U32, HarnessError
from .cases import ZONE_CONFIGS, cases_conntrack_zones, nf_ct_zone_id_expected
from .cases.base import hex_arg, rand_u32
from .harness import Build, run
from .selftest import SelfTest
from .specs import SPECS, WORD_SIZE_FREE

__all__ = ["CONNTRACK_SIZES", "check_conntrack_zones", "self_checks"]


def self_checks(b: Build, st: SelfTest, rng: random.Random) -> list[str]:
    """Return notes on what was verified; raise HarnessError on any mismatch."""
    known = [
        ("jhash - 0", 0xDEADBEEF),
        (f"jhash {b'abc'.hex()} 0", 0x0E397631),
        (f"jhash {b'abcdefghijklm'.hex()} 0", 0x928128F9),
        ("jhash_3words 1 2 3 0", 0xA46158F5),
        ("jhash2 3 1 2 3 0", 0xA46158F5),
        ("jhash2 4 1 2 3 4 0", 0x66491246),
    ]
    got = run(b.exe, [c for c, _ in known])
    for (cmd, expected), res in zip(known, got, strict=True):
        if int(res) != expected:
            raise HarnessError(f"{b.tree.series}: {cmd} = {res}, expected {expected:#x}")

    lines = [f"siphash {hex_arg(bytes(range(i)))} {st.key_siphash.hex()}" for i in range(64)]
    lines += [f"hsiphash {hex_arg(bytes(range(i)))} {st.key_hsiphash.hex()}" for i in range(64)]
    spec_names = {spec.name for spec in SPECS}
    want: list[int] = st.siphash + st.hsiphash
    for func, nums, vec, idx in st.words:
        if func not in spec_names:
            continue
        key = st.key_siphash if vec == "siphash" else st.key_hsiphash
        lines.append(" ".join([func, *map(str, nums), key.hex()]))
        want.append((st.siphash if vec == "siphash" else st.hsiphash)[idx])
    got = run(b.exe, lines)
    for line, res, w in zip(lines, got, want, strict=True):
        if int(res) != w:
            raise HarnessError(f"{b.tree.series}: self-test vector mismatch: {line} = {res}")

    # The -m32 build: the 32-bit branch's HSipHash self-test vectors (HalfSipHash-1-3, 8-byte
    # key), the same jhash known answers and SipHash vectors, and agreement with the 64-bit
    # build on every vector case of the functions that do not depend on BITS_PER_LONG.
    lines32 = [c for c, _ in known]
    want32: list[int] = [v for _, v in known]
    lines32 += [f"siphash {hex_arg(bytes(range(i)))} {st.key_siphash.hex()}" for i in range(64)]
    lines32 += [f"hsiphash {hex_arg(bytes(range(i)))} {st.key_hsiphash32.hex()}" for i in range(64)]
    want32 += st.siphash + st.hsiphash32
    got = run(b.exe32, lines32)
    for line, res, w in zip(lines32, got, want32, strict=True):
        if int(res) != w:
            raise HarnessError(f"{b.tree.series}: -m32 self-test vector mismatch: {line} = {res}")
    same_lines: list[str] = []
    for spec in SPECS:
        if spec.name in WORD_SIZE_FREE:
            cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}"))
            same_lines += [c.line for c in cases]
    got64, got32 = run(b.exe, same_lines), run(b.exe32, same_lines)
    for line, r64, r32 in zip(same_lines, got64, got32, strict=True):
        if r64 != r32:
            raise HarnessError(f"{b.tree.series}: {line}: {r64} (64-bit) but {r32} (-m32)")

    # Only secret + net_hash_mix matters for the ehash functions.
    pairs: list[tuple[str, str]] = []
    for _ in range(50):
        sec, mix, s2 = rand_u32(rng), rand_u32(rng), rand_u32(rng)
        la, fa = rng.randbytes(4).hex(), rng.randbytes(4).hex()
        la6, fa6 = rng.randbytes(16).hex(), rng.randbytes(16).hex()
        lp, fp = rng.randrange(65536), rng.randrange(65536)
        tot = (sec + mix) & U32
        for fn in ("inet_ehashfn", "udp_ehashfn"):
            pairs.append(
                (f"{fn} {la} {lp} {fa} {fp} {sec} {mix}", f"{fn} {la} {lp} {fa} {fp} {tot} 0")
            )
        for fn in ("inet6_ehashfn", "udp6_ehashfn"):
            pairs.append(
                (
                    f"{fn} {la6} {lp} {fa6} {fp} {sec} {s2} {mix}",
                    f"{fn} {la6} {lp} {fa6} {fp} {tot} {s2} 0",
                )
            )
        # conntrack: the direction byte is not hashed
        ckey = rng.randbytes(16).hex()
        pairs.append(
            (
                f"hash_conntrack_raw 2 {la} {lp} {fa} {fp} 17 7 {mix} {ckey} 0",
                f"hash_conntrack_raw 2 {la} {lp} {fa} {fp} 17 7 {mix} {ckey} 1",
            )
        )
        # flow hash: symmetric in the two directions (__flow_hash_consistentify)
        pairs.append(
            (
                f"flow_hash_from_keys 2 {la} {lp} {fa} {fp} 6 {ckey}",
                f"flow_hash_from_keys 2 {fa} {fp} {la} {lp} 6 {ckey}",
            )
        )
        pairs.append(
            (
                f"flow_hash_from_keys 10 {la6} {lp} {fa6} {fp} 17 {ckey}",
                f"flow_hash_from_keys 10 {fa6} {fp} {la6} {lp} 17 {ckey}",
            )
        )
    got = run(b.exe, [p for pair in pairs for p in pair])
    for i, (x, y) in enumerate(pairs):
        if got[2 * i] != got[2 * i + 1]:
            raise HarnessError(f"{b.tree.series}: {x} -> {got[2 * i]} but {y} -> {got[2 * i + 1]}")
    return [
        "harness reproduces jhash known answers and all 64+64 SipHash/HSipHash self-test "
        f"vectors of {st.path} (plus its word-variant checks)",
        "the gcc -m32 build (BITS_PER_LONG == 32) reproduces the jhash known answers, the 64 "
        f"SipHash and the 64 HSipHash (HalfSipHash-1-3) vectors of {st.path}'s 32-bit branch, "
        f"and gives the 64-bit build's results on all {len(same_lines)} vector cases of "
        "jhash*, hash_32, reciprocal_scale and siphash*",
        "ehash functions: (secret s, net_hash_mix m) and (s + m mod 2^32, 0) give the same "
        "hash in 50 random cases per function, so vectors carry only initval = s + m",
        "hash_conntrack_raw ignores tuple->dst.dir; __flow_hash_from_keys is symmetric in "
        "(src, sport) <-> (dst, dport)",
    ]


CONNTRACK_SIZES = (1, 7, 1024, 16384, 65536, 262144, 1 << 31)


def check_conntrack_zones(b: Build) -> str:
    """nf_ct_zone_id() as compiled equals nf_ct_zone_id_expected() for every zone config
    and direction, and __hash_conntrack() is reciprocal_scale(hash_conntrack_raw(), size)."""
    lines = [
        f"nf_ct_zone_id {zid} {zdir} {zflags} {d}"
        for zid, zdir, zflags in ZONE_CONFIGS
        for d in (0, 1)
    ]
    got = run(b.exe, lines)
    for line, res in zip(lines, got, strict=True):
        _, zid, zdir, _zf, d = line.split()
        if int(res) != nf_ct_zone_id_expected(int(zid), int(zdir), int(d)):
            raise HarnessError(f"{b.tree.series}: {line} = {res}")
    cases = cases_conntrack_zones(random.Random(f"sidkit-selfcheck-zones-{b.tree.series}"))
    raws = [int(r) for r in run(b.exe, [c.line for c in cases])]
    blines = [
        c.line.replace("conntrack_zone", "conntrack_bucket", 1) + f" {size}"
        for c in cases
        for size in CONNTRACK_SIZES
    ]
    buckets = [int(r) for r in run(b.exe, blines)]
    i = 0
    for raw in raws:
        for size in CONNTRACK_SIZES:
            if buckets[i] != (raw * size) >> 32:
                raise HarnessError(f"{b.tree.series}: {blines[i]} = {buckets[i]}")
            i += 1
    return (
        "nf_ct_zone_id(zone, dir) as compiled follows zone->dir & (1 << dir) for "
        f"{len(lines)} zone/direction pairs; __hash_conntrack(net, tuple, zoneid, size) is "
        f"reciprocal_scale(hash_conntrack_raw(), size) in {len(blines)} cases "
        f"(sizes {', '.join(map(str, CONNTRACK_SIZES))})"
    )
