"""The running kernel as an oracle for sidkit's ``jhash`` and ``jhash2``.

The kernel has no jhash helper and no syscall that returns a jhash value, but its BPF hash map
leaks the low bits of one through iteration order (kernel/bpf/hashtab.c):

* a ``BPF_MAP_TYPE_HASH`` created with ``BPF_F_ZERO_SEED`` has ``hashrnd = 0`` (otherwise it is
  random per map), and ``n_buckets = roundup_pow_of_two(max_entries)``;
* a key lands in bucket ``htab_map_hash(key, key_size, 0) & (n_buckets - 1)``, where
  ``htab_map_hash`` is ``jhash2((u32 *)key, key_size / 4, 0)`` when ``key_size % 4 == 0`` and
  ``jhash(key, key_size, 0)`` otherwise;
* an insert (and a replace) puts the element at the head of its bucket's list, and
  ``BPF_MAP_GET_NEXT_KEY`` from NULL walks buckets in increasing index, each list head first.

So the kernel's iteration order must equal the keys sorted by (bucket predicted from sidkit's
hash, newest first). ``BPF_F_NO_PREALLOC`` keeps the element allocation simple; iteration order
was measured to be the same with preallocation.

Scale: 24 maps, one per key size, 94 464 distinct keys in all (4096 per map, plus all 256
one-byte keys), with 2**10 to 2**20 buckets, so the predictions rest on 1 452 544 low hash bits
(10 to 20 per key). A wrong hash would have to reproduce every map's order by chance; for each
map the test bounds that chance from the order alone, and the bounds multiply to below
2**-900 000 (see ``test_scale_matches_docstring``). The whole module runs in about 3 s.

Key sizes cover every ``jhash`` tail length that the map can reach (1-3, 5-7, 9-11 bytes, with 0,
1, 2 and 3 full 12-byte rounds before the tail) and every ``jhash2`` tail (1, 2, 3 words, with 0
to 3 full rounds). On a little-endian host ``jhash(key) == jhash2(le32 words of key)`` for
``len(key) % 4 == 0`` (same initial state, same word loads), so the word-sized maps also check
``jhash``'s 4-, 8- and 12-byte tails against the kernel; they cannot tell *which* of the two the
kernel called, and do not need to.
"""

from __future__ import annotations

import errno
import math
import os
import random
import struct
import sys
from dataclasses import dataclass

import pytest
from conftest import oracle_unavailable

from sidkit._errors import KernelOracleError
from sidkit.bpf import _syscall
from sidkit.hashing import jhash, jhash2

pytestmark = pytest.mark.oracle

SEED = 0x5EED_1A54

# key size -> max_entries. Sizes not divisible by 4 exercise jhash, the others jhash2. The bucket
# counts vary (roundup_pow_of_two(5000) = 8192 checks the rounding) and stay small enough that
# every map has bucket collisions, so the newest-first rule is exercised everywhere.
JHASH_SIZES = (1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 25, 35, 37)
JHASH2_SIZES = (4, 8, 12, 16, 20, 24, 36, 40, 48)
CASES = {
    1: 1 << 10,  # all 256 one-byte keys
    2: 1 << 16,
    3: 5000,
    4: 1 << 12,
    5: 1 << 20,
    6: 1 << 16,
    7: 5000,
    8: 1 << 12,
    9: 1 << 20,
    10: 1 << 16,
    11: 5000,
    12: 1 << 12,
    13: 1 << 20,
    14: 1 << 16,
    15: 5000,
    16: 1 << 20,
    20: 1 << 16,
    24: 5000,
    25: 1 << 12,
    35: 1 << 20,
    36: 1 << 16,
    37: 5000,
    40: 1 << 12,
    48: 1 << 20,
}
KEYS_PER_MAP = 4096

# The figures quoted in the module docstring; test_scale_matches_docstring keeps them honest.
DOC_MAPS = 24
DOC_TOTAL_KEYS = 94_464
DOC_HASH_BITS = 1_452_544
DOC_MIN_EVIDENCE_BITS = 900_000

ZERO_SEED_FLAGS = _syscall.BPF_F_ZERO_SEED | _syscall.BPF_F_NO_PREALLOC


@pytest.fixture(autouse=True, scope="module")
def _live_bpf() -> None:
    """Skip (or fail under SIDKIT_REQUIRE_ORACLES=1) where bpf(2) maps cannot be created."""
    reason = _syscall.bpf_available()
    if reason is not None:
        oracle_unavailable(reason)
    if sys.byteorder != "little":
        oracle_unavailable("the jhash oracle assumes a little-endian kernel (u32 loads)")


def n_buckets(max_entries: int) -> int:
    """The kernel's ``roundup_pow_of_two(max_entries)``."""
    return 1 << (max_entries - 1).bit_length()


def keys_for(size: int) -> list[bytes]:
    """Distinct random keys of *size* bytes, fixed by SEED and *size*, in insertion order."""
    rng = random.Random(SEED * 1000 + size)
    if 256**size <= KEYS_PER_MAP:
        every = [v.to_bytes(size, "little") for v in range(256**size)]
        rng.shuffle(every)
        return every
    seen: dict[bytes, None] = {}
    while len(seen) < KEYS_PER_MAP:
        seen[rng.randbytes(size)] = None
    return list(seen)


def htab_hash(key: bytes) -> int:
    """sidkit's model of ``htab_map_hash(key, len(key), 0)``."""
    if len(key) % 4 == 0:
        return jhash2(struct.unpack(f"<{len(key) // 4}I", key), 0)
    return jhash(key, 0)


def predicted_order(keys: list[bytes], hashes: list[int], buckets: int) -> list[bytes]:
    """Keys sorted by bucket, newest (last inserted) first within a bucket."""
    mask = buckets - 1
    order = sorted(range(len(keys)), key=lambda i: (hashes[i] & mask, -i))
    return [keys[i] for i in order]


def evidence_bits(n: int, buckets: int) -> float:
    """-log2 of an upper bound on the chance that random buckets reproduce an observed order.

    A wrong hash behaves like uniform random buckets. It reproduces the kernel's order only if
    the buckets it gives along that order are non-decreasing: at most C(buckets + n - 1, n) of
    the buckets**n equally likely assignments are (ties broken wrongly fail too, so this
    overcounts the lucky ones).
    """
    log2_multisets = (
        math.lgamma(buckets + n) - math.lgamma(n + 1) - math.lgamma(buckets)
    ) / math.log(2)
    return n * math.log2(buckets) - log2_multisets


def kernel_order(keys: list[bytes], max_entries: int, flags: int) -> list[bytes]:
    """Insert *keys* in order into a fresh hash map and return the kernel's iteration order."""
    size = len(keys[0])
    with _syscall.Map(_syscall.BPF_MAP_TYPE_HASH, size, 1, max_entries, flags, "sidkit_jhash") as m:
        for key in keys:
            m.update(key, b"\x00", _syscall.BPF_NOEXIST)
        return list(m.keys())


def first_mismatch(observed: list[bytes], predicted: list[bytes], buckets: int) -> str:
    for i, (got, want) in enumerate(zip(observed, predicted, strict=True)):
        if got != want:
            mask = buckets - 1
            return (
                f"position {i}: kernel has {got.hex()} (sidkit bucket {htab_hash(got) & mask}), "
                f"sidkit predicts {want.hex()} (bucket {htab_hash(want) & mask})"
            )
    return "orders are equal"


@dataclass(frozen=True)
class Teeth:
    keys: int
    buckets: int
    colliding_keys: int
    evidence_bits: float


def check_case(size: int, max_entries: int) -> Teeth:
    keys = keys_for(size)
    buckets = n_buckets(max_entries)
    hashes = [htab_hash(k) for k in keys]
    predicted = predicted_order(keys, hashes, buckets)

    # The check has teeth: the prediction is not just the insertion order, and some buckets hold
    # several keys, so the newest-first rule (and not only the bucket index) is compared.
    assert predicted != keys, f"key size {size}: prediction equals insertion order"
    occupied = {h & (buckets - 1) for h in hashes}
    colliding = len(keys) - len(occupied)
    assert colliding > 0, f"key size {size}: no bucket collisions among {len(keys)} keys"

    observed = kernel_order(keys, max_entries, ZERO_SEED_FLAGS)
    assert len(observed) == len(keys), f"key size {size}: kernel iterated {len(observed)} keys"
    assert observed == predicted, (
        f"key size {size} ({'jhash2' if size % 4 == 0 else 'jhash'}), {len(keys)} keys, "
        f"{buckets} buckets: kernel order differs from sidkit's; "
        + first_mismatch(observed, predicted, buckets)
    )
    if size % 4 == 0:
        # The same order from jhash over the raw bytes: checks jhash's 4-, 8- and 12-byte tails.
        via_jhash = predicted_order(keys, [jhash(k, 0) for k in keys], buckets)
        assert observed == via_jhash, (
            f"key size {size}: kernel order (= sidkit jhash2) differs from sidkit jhash's; "
            + first_mismatch(observed, via_jhash, buckets)
        )
    return Teeth(len(keys), buckets, colliding, evidence_bits(len(keys), buckets))


@pytest.mark.parametrize(("size", "max_entries"), sorted(CASES.items()))
def test_kernel_htab_order_matches_sidkit_jhash(size: int, max_entries: int) -> None:
    """One map per key size: the kernel's iteration order equals sidkit's predicted order.

    4096 keys per map (256 for size 1); see the module docstring for the totals.
    """
    teeth = check_case(size, max_entries)
    assert teeth.evidence_bits > 1000, teeth


def test_scale_matches_docstring() -> None:
    """The module docstring's counts are the ones the parametrized test uses."""
    keys = {size: len(keys_for(size)) for size in CASES}
    total_bits = sum(evidence_bits(keys[s], n_buckets(e)) for s, e in CASES.items())
    assert len(CASES) == DOC_MAPS
    assert sum(keys.values()) == DOC_TOTAL_KEYS, sum(keys.values())
    hash_bits = sum(keys[s] * (n_buckets(e).bit_length() - 1) for s, e in CASES.items())
    assert hash_bits == DOC_HASH_BITS, hash_bits
    assert total_bits > DOC_MIN_EVIDENCE_BITS, total_bits
    # Every tail case the map can reach: jhash tails 1..11 bytes except multiples of 4 (those
    # sizes go to jhash2), jhash2 tails of 1..3 words, each also after at least one full round.
    assert {(s - 1) % 12 + 1 for s in JHASH_SIZES} == {1, 2, 3, 5, 6, 7, 9, 10, 11}
    assert {(s - 1) % 12 + 1 for s in JHASH_SIZES if s > 12} >= {1, 2, 3, 11}
    assert {(s // 4 - 1) % 3 + 1 for s in JHASH2_SIZES if s > 12} == {1, 2, 3}
    assert sorted(CASES) == sorted(JHASH_SIZES + JHASH2_SIZES)
    assert {n_buckets(e) for e in CASES.values()} == {1 << 10, 1 << 12, 1 << 13, 1 << 16, 1 << 20}


def test_random_seed_map_does_not_match() -> None:
    """Control: without BPF_F_ZERO_SEED (random hashrnd) the zero-seed prediction fails.

    This shows the comparison can fail at all, and that the match above comes from the seed 0
    hash and not from some order-preserving accident of iteration.
    """
    keys = keys_for(8)
    buckets = n_buckets(1 << 16)
    predicted = predicted_order(keys, [htab_hash(k) for k in keys], buckets)
    observed = kernel_order(keys, 1 << 16, _syscall.BPF_F_NO_PREALLOC)
    assert sorted(observed) == sorted(keys)
    assert observed != predicted


def test_replacing_a_key_moves_it_to_the_bucket_head() -> None:
    """Updating an existing key re-inserts it: it becomes the newest in its bucket."""
    keys = [k for k in keys_for(5) if htab_hash(k) & 3 == 0][:3]
    with _syscall.Map(_syscall.BPF_MAP_TYPE_HASH, 5, 4, 4, ZERO_SEED_FLAGS) as m:
        for i, key in enumerate(keys):
            m.update(key, i.to_bytes(4, "little"))
        assert list(m.keys()) == keys[::-1]
        m.update(keys[0], b"new!", _syscall.BPF_EXIST)
        assert list(m.keys()) == [keys[0], keys[2], keys[1]]
        assert m.lookup(keys[0]) == b"new!"


def test_map_roundtrip() -> None:
    """The bpf layer itself: update, lookup, next_key and delete on a small hash map."""
    with _syscall.Map(_syscall.BPF_MAP_TYPE_HASH, 4, 8, 16, ZERO_SEED_FLAGS, "sidkit_rt") as m:
        assert m.next_key(None) is None
        assert m.lookup(b"abcd") is None
        m.update(b"abcd", b"12345678")
        m.update(b"efgh", b"ABCDEFGH")
        assert m.lookup(b"abcd") == b"12345678"
        assert sorted(m.keys()) == [b"abcd", b"efgh"]
        with pytest.raises(KernelOracleError) as exc:
            m.update(b"abcd", b"xxxxxxxx", _syscall.BPF_NOEXIST)
        assert exc.value.errno == errno.EEXIST
        m.delete(b"abcd")
        assert m.lookup(b"abcd") is None
        assert list(m.keys()) == [b"efgh"]
        with pytest.raises(KernelOracleError) as exc:
            m.delete(b"abcd")
        assert exc.value.errno == errno.ENOENT
    assert m.closed
    with pytest.raises(KernelOracleError):
        _ = m.fd


def test_bpf_errors_surface_as_kernel_oracle_error() -> None:
    """A refused bpf(2) call raises KernelOracleError (an OSError) naming command and errno."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)  # now certainly not an open descriptor
    with pytest.raises(KernelOracleError) as exc:
        _syscall.map_lookup(fd, b"\x00" * 4, 4)
    assert isinstance(exc.value, OSError)
    assert exc.value.errno == errno.EBADF
    assert "BPF_MAP_LOOKUP_ELEM" in str(exc.value)
    assert "EBADF" in str(exc.value)

    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(KernelOracleError) as exc:
            _syscall.map_lookup(devnull, b"\x00" * 4, 4)  # an fd, but not a map
        assert exc.value.errno == errno.EINVAL
    finally:
        os.close(devnull)

    with pytest.raises(KernelOracleError) as exc:
        _syscall.map_create(_syscall.BPF_MAP_TYPE_HASH, 0, 4, 1)  # hash maps need a key
    assert exc.value.errno == errno.EINVAL
    assert "BPF_MAP_CREATE" in str(exc.value)
