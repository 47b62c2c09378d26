"""sidkit.hashing.batch against the kernel's own C, directly.

test_batch.py holds the batch forms to the scalar ones; this file skips the middle step for
the hashes the models use in bulk: the kernel-C harness (conformance/kernel: jhash.h,
lib/siphash.c, udp_ehashfn() and hash_conntrack_raw() compiled from Debian's 6.1 and 6.12
sources) hashes a few hundred random inputs in one process, and the batch results must be
its answers.
"""

from __future__ import annotations

import random
import subprocess

import pytest
from fixtures.kernel_programs import RELEASES, release_program

from sidkit.kernel import profile

np = pytest.importorskip("numpy", reason="sidkit.hashing.batch needs numpy (sidkit[bulk])")
batch = pytest.importorskip("sidkit.hashing.batch", reason="needs numpy (sidkit[bulk])")

N = 300


def _ask(exe: object, lines: list[str]) -> list[int]:
    out = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    return [int(x) for x in out.stdout.split()]


@pytest.mark.oracle
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_batch_hashes_are_the_kernels(release: str) -> None:
    exe = release_program("harness", release)
    rng = random.Random(release)
    prof = profile(release)
    length = rng.choice([5, 16, 39])
    keys = [rng.randbytes(length) for _ in range(N)]
    iv = rng.getrandbits(32)
    skey = rng.randbytes(16)

    got = batch.function(prof, "jhash")(keys, iv)
    assert [int(x) for x in got] == _ask(exe, [f"jhash {k.hex()} {iv}" for k in keys])
    got = batch.function(prof, "siphash")(keys, skey)
    assert [int(x) for x in got] == _ask(exe, [f"siphash {k.hex()} {skey.hex()}" for k in keys])
    got = batch.function(prof, "hsiphash")(keys, skey)
    assert [int(x) for x in got] == _ask(exe, [f"hsiphash {k.hex()} {skey.hex()}" for k in keys])

    # udp_ehashfn: initval = udp_ehash_secret + net_hash_mix (the harness takes both)
    secret, mix = rng.getrandbits(32), rng.getrandbits(32)
    la = [rng.randbytes(4) for _ in range(N)]
    fa = [rng.randbytes(4) for _ in range(N)]
    lp = [rng.randrange(1, 65536) for _ in range(N)]
    fp = [rng.randrange(1, 65536) for _ in range(N)]
    arr = np.frombuffer(b"".join(la), np.uint8).reshape(N, 4)
    far = np.frombuffer(b"".join(fa), np.uint8).reshape(N, 4)
    got = batch.function(prof, "udp_ehashfn")(arr, lp, far, fp, (secret + mix) & 0xFFFFFFFF)
    lines = [
        f"udp_ehashfn {a.hex()} {p} {f.hex()} {q} {secret} {mix}"
        for a, p, f, q in zip(la, lp, fa, fp, strict=True)
    ]
    assert [int(x) for x in got] == _ask(exe, lines)

    # hash_conntrack_raw of both families, one zone and namespace per call
    rnd = rng.randbytes(16)
    for family, width in ((2, 4), (10, 16)):
        src = [rng.randbytes(width) for _ in range(N)]
        dst = [rng.randbytes(width) for _ in range(N)]
        proto = [rng.choice([17, 136, 50]) for _ in range(N)]
        zone, mix = rng.getrandbits(16), rng.getrandbits(32)
        got = batch.function(prof, "hash_conntrack_raw")(
            np.frombuffer(b"".join(src), np.uint8).reshape(N, width),
            lp,
            np.frombuffer(b"".join(dst), np.uint8).reshape(N, width),
            fp,
            proto,
            zone,
            mix,
            rnd,
        )
        lines = [
            f"hash_conntrack_raw {family} {s.hex()} {p} {d.hex()} {q} {pr} {zone} {mix} "
            f"{rnd.hex()} 0"
            for s, p, d, q, pr in zip(src, lp, dst, fp, proto, strict=True)
        ]
        assert [int(x) for x in got] == _ask(exe, lines)
