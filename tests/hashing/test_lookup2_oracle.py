"""lookup2 (the kernel's jhash before v2.6.38) against a compiled implementation sidkit did
not write: Debian's FRR routing suite ships the old kernel jhash.h as lib/jhash.c in
libfrr.so. conformance/frr/fetch-frr.sh unpacks the packages (no install); this test loads
the library with ctypes and compares thousands of random inputs for every lookup2 entry
point. No Debian source of a 2.6.x kernel can be fetched here, so this is the compiled
oracle for that era.
"""

from __future__ import annotations

import ctypes
import ipaddress
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import oracle_unavailable

from sidkit import hashing as h
from sidkit.hashing._jhash import WordHashes
from sidkit.kernel import profile

WORK = Path(__file__).resolve().parents[2] / "conformance" / "frr" / "_work" / "root"
LIBDIR = WORK / "usr" / "lib" / "x86_64-linux-gnu"
N = 3000


@pytest.fixture(scope="module")
def libfrr() -> ctypes.CDLL:
    lib = LIBDIR / "frr" / "libfrr.so.0"
    if not lib.is_file():
        oracle_unavailable(
            "libfrr.so not unpacked: run `bash conformance/frr/fetch-frr.sh` (needs apt-get)"
        )
    try:
        # libfrr needs libyang.so.2; loading it first by path satisfies the soname lookup.
        ctypes.CDLL(str(LIBDIR / "libyang.so.2"), mode=ctypes.RTLD_GLOBAL)
        frr = ctypes.CDLL(str(lib))
    except OSError as exc:
        oracle_unavailable(f"cannot load libfrr.so: {exc}")
    u32 = ctypes.c_uint32
    frr.jhash.argtypes = [ctypes.c_char_p, u32, u32]
    frr.jhash2.argtypes = [ctypes.POINTER(u32), u32, u32]
    frr.jhash_3words.argtypes = [u32, u32, u32, u32]
    frr.jhash_2words.argtypes = [u32, u32, u32]
    frr.jhash_1word.argtypes = [u32, u32]
    for name in ("jhash", "jhash2", "jhash_3words", "jhash_2words", "jhash_1word"):
        getattr(frr, name).restype = u32
    return frr


@pytest.mark.oracle
def test_jhash_lookup2_matches_libfrr(libfrr: ctypes.CDLL) -> None:
    rng = random.Random(238)
    old = profile("2.6.37").function("jhash")
    for i in range(N):
        key = rng.randbytes(i % 80)  # every tail length 0..11, several 12-byte rounds
        iv = rng.getrandbits(32)
        assert old(key, iv) == libfrr.jhash(key, len(key), iv), (key.hex(), iv)
    assert old is h.jhash_lookup2


@pytest.mark.oracle
def test_jhash2_lookup2_matches_libfrr(libfrr: ctypes.CDLL) -> None:
    rng = random.Random(239)
    for i in range(N):
        words = [rng.getrandbits(32) for _ in range(i % 20)]
        iv = rng.getrandbits(32)
        arr = (ctypes.c_uint32 * max(1, len(words)))(*words)
        assert h.jhash2_lookup2(words, iv) == libfrr.jhash2(arr, len(words), iv), (words, iv)


@pytest.mark.oracle
def test_jhash_words_lookup2_match_libfrr(libfrr: ctypes.CDLL) -> None:
    rng = random.Random(240)
    for _ in range(N):
        a, b, c, iv = (rng.getrandbits(32) for _ in range(4))
        assert h.jhash_3words_lookup2(a, b, c, iv) == libfrr.jhash_3words(a, b, c, iv)
        assert h.jhash_2words_lookup2(a, b, iv) == libfrr.jhash_2words(a, b, iv)
        assert h.jhash_1word_lookup2(a, iv) == libfrr.jhash_1word(a, iv)


@pytest.mark.oracle
def test_lookup2_really_differs_from_lookup3(libfrr: ctypes.CDLL) -> None:
    # Guards against the oracle silently being a lookup3 build.
    assert libfrr.jhash(b"abc", 3, 0) != h.jhash(b"abc", 0)


def _frr_word_hashes(frr: ctypes.CDLL) -> WordHashes:
    """libfrr's lookup2 word hashes, shaped like sidkit's era bundle."""

    def jhash2(words: Sequence[int], initval: int) -> int:
        arr = (ctypes.c_uint32 * len(words))(*words)
        return int(frr.jhash2(arr, len(words), initval))

    return WordHashes(
        jhash2,
        lambda a, b, c, iv: int(frr.jhash_3words(a, b, c, iv)),
        lambda a, iv: int(frr.jhash_1word(a, iv)),
    )


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("function", "make_args"),
    [
        (
            "inet_ehashfn",
            lambda r: (r.ipv4(), r.port(), r.ipv4(), r.port(), r.u32()),
        ),
        ("ipv4_portaddr_hash", lambda r: (r.u32(), r.ipv4(), r.port())),
        ("ipv6_portaddr_hash", lambda r: (r.u32(), r.ipv6(), r.port())),
        (
            "hash_conntrack_raw",
            lambda r: (r.ipv4(), r.port(), r.ipv4(), r.port(), 17, r.port(), r.u32(), r.u32()),
        ),
    ],
)
def test_composites_of_the_lookup2_era_hash_with_lookup2(
    libfrr: ctypes.CDLL, function: str, make_args: Callable[[_Rand], tuple[object, ...]]
) -> None:
    """Before v2.6.38 the ehash, port-address and conntrack hashes called lookup2's word
    hashes: the 2.6.37 profile must equal the same expression over libfrr's functions."""
    era = profile("2.6.37").era(function)
    assert era.impl is not None
    ours = profile("2.6.37").function(function)
    frr_words = _frr_word_hashes(libfrr)
    rand = _Rand(random.Random(function))
    differs = 0
    for _ in range(500):
        args = make_args(rand)
        expected = era.impl(*args, word_hashes=frr_words)
        assert ours(*args) == expected, args
        differs += expected != era.impl(*args)  # the lookup3 composite
    assert differs > 490  # the era binding matters: lookup3 would give other values


class _Rand:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def u32(self) -> int:
        return self.rng.getrandbits(32)

    def port(self) -> int:
        return self.rng.randrange(1, 65536)

    def ipv4(self) -> str:
        return str(ipaddress.IPv4Address(self.rng.getrandbits(32)))

    def ipv6(self) -> str:
        return str(ipaddress.IPv6Address(self.rng.getrandbits(128)))
