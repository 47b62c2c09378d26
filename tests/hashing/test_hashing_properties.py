"""Properties of the hash functions, with independent implementations as oracles where
they exist (the C ``siphash24`` package implements reference SipHash-2-4 and -1-3).

Kernel identity itself is proven by the vector files and the live-kernel tests; these
properties cover the input space between the vectors and the error model.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
import siphash24
from hypothesis import given
from hypothesis import strategies as st

import sidkit
from sidkit import hashing as h

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
key16 = st.binary(min_size=16, max_size=16)


@given(u32, u32, u32, u32)
def test_jhash_nwords_equal_jhash2(a: int, b: int, c: int, iv: int) -> None:
    # include/linux/jhash.h: jhash_3words is documented as jhash2 over the three words;
    # 2words/1word are NOT jhash2 of fewer words (their start value differs), only of the
    # padded triple with a different length term.
    assert h.jhash_3words(a, b, c, iv) == h.jhash2([a, b, c], iv)
    assert h.jhash_2words(a, b, iv) == h.jhash_3words(a, b, 0, (iv - 4) % 2**32)
    assert h.jhash_1word(a, iv) == h.jhash_3words(a, 0, 0, (iv - 8) % 2**32)


@given(st.lists(u32, max_size=40), u32)
def test_jhash2_is_jhash_of_le_words(words: list[int], iv: int) -> None:
    # On a little-endian host jhash2(k, n, iv) == jhash(k, 4n, iv): same start value
    # (0xdeadbeef + 4n + iv) and same word loads. The live-kernel test relies on this.
    assert h.jhash2(words, iv) == h.jhash(struct.pack(f"<{len(words)}I", *words), iv)


@given(st.binary(max_size=200), key16)
def test_siphash_matches_reference_c(data: bytes, key: bytes) -> None:
    ref = int.from_bytes(siphash24.siphash24(data, key=key).digest(), "little")
    assert h.siphash(data, key) == ref


@given(st.binary(max_size=200), key16)
def test_hsiphash_64bit_is_siphash13_folded(data: bytes, key: bytes) -> None:
    ref = int.from_bytes(siphash24.siphash13(data, key=key).digest(), "little")
    assert h.hsiphash(data, key) == ref & 0xFFFFFFFF


@given(u64, u64, u64, u64, key16)
def test_siphash_word_helpers_are_siphash_of_memory(
    a: int, b: int, c: int, d: int, key: bytes
) -> None:
    assert h.siphash_1u64(a, key) == h.siphash(struct.pack("<Q", a), key)
    assert h.siphash_2u64(a, b, key) == h.siphash(struct.pack("<2Q", a, b), key)
    assert h.siphash_3u64(a, b, c, key) == h.siphash(struct.pack("<3Q", a, b, c), key)
    assert h.siphash_4u64(a, b, c, d, key) == h.siphash(struct.pack("<4Q", a, b, c, d), key)
    x, y, z = a & 0xFFFFFFFF, b & 0xFFFFFFFF, c & 0xFFFFFFFF
    assert h.siphash_1u32(x, key) == h.siphash(struct.pack("<I", x), key)
    assert h.siphash_3u32(x, y, z, key) == h.siphash(struct.pack("<3I", x, y, z), key)


@given(u32, st.integers(1, 2**32 - 1))
def test_reciprocal_scale_in_range(val: int, n: int) -> None:
    r = h.reciprocal_scale(val, n)
    assert 0 <= r < n
    assert r == (val * n) // 2**32


@given(u64, st.integers(1, 64))
def test_hash_64_legacy_shift_add_is_the_prime_multiply(val: int, bits: int) -> None:
    assert h.hash_64_legacy(val, bits) == ((val * 0x9E37FFFFFFFC0001) % 2**64) >> (64 - bits)


@given(st.binary(max_size=36))
def test_toeplitz_is_linear(data: bytes) -> None:
    # Toeplitz is linear over GF(2): T(x ^ y) == T(x) ^ T(y). With y = x, T(0) == 0.
    other = bytes(reversed(data))
    both = bytes(a ^ b for a, b in zip(data, other, strict=True))
    assert h.toeplitz(both) == h.toeplitz(data) ^ h.toeplitz(other)


@given(st.sampled_from(["10.1.2.3", "192.0.2.1"]), st.integers(0, 65535), u32)
def test_udp_ehashfn_matches_kernel_notes_formula(addr: str, port: int, iv: int) -> None:
    # KERNEL-NOTES (measured on 6.18): hash = jhash_3words(daddr, saddr,
    # (local_port << 16) | sport_raw, initval), addresses as native LE integers.
    raw = int.from_bytes(bytes(map(int, addr.split("."))), "little")
    sport_raw = int.from_bytes(port.to_bytes(2, "big"), "little")
    expected = h.jhash_3words(raw, raw, (4433 << 16) | sport_raw, iv)
    assert h.udp_ehashfn(addr, 4433, addr, port, iv) == expected


def test_crc_check_values() -> None:
    # The CRC catalogue's published check values for "123456789".
    assert h.crc32(b"123456789") == 0xCBF43926
    assert h.crc32c(b"123456789") == 0xE3069283


# --- the error model ----------------------------------------------------------------------

BAD_CALLS = [
    (lambda: h.jhash("abc"), TypeError),  # type: ignore[arg-type]
    (lambda: h.jhash(b"abc", -1), ValueError),
    (lambda: h.jhash(b"abc", 2**32), ValueError),
    (lambda: h.jhash(b"abc", True), TypeError),
    (lambda: h.jhash2([1, 2**32]), ValueError),
    (lambda: h.jhash2(b"\x01\x02"), TypeError),
    (lambda: h.siphash(b"", b"short"), ValueError),
    (lambda: h.siphash(b"", bytes(17)), ValueError),
    (lambda: h.hsiphash(b"", bytes(16), bits_per_long=32), ValueError),
    (lambda: h.hash_32(1, 0), ValueError),
    (lambda: h.hash_32(1, 33), ValueError),
    (lambda: h.hash_64(2**64, 3), ValueError),
    (lambda: h.reciprocal_scale(-1, 4), ValueError),
    (lambda: h.toeplitz(bytes(40)), ValueError),
    (lambda: h.udp_ehashfn("300.1.1.1", 1, "1.1.1.1", 1, 0), ValueError),
    (lambda: h.udp_ehashfn("::1", 1, "1.1.1.1", 1, 0), ValueError),
    (lambda: h.udp_ehashfn("1.1.1.1", 65536, "1.1.1.1", 1, 0), ValueError),
    (lambda: h.udp_ehashfn(1, 1, "1.1.1.1", 1, 0), TypeError),  # type: ignore[arg-type]
    (lambda: h.hash_conntrack_raw("1.1.1.1", 1, "::1", 1, 17, 0, 0, bytes(16)), ValueError),
    (lambda: h.flow_hash_from_keys("1.1.1.1", 1, "2.2.2.2", 1, 17, bytes(15)), ValueError),
    (lambda: h.udp_ehashfn("1.1.1.1", 1, "1.1.1.1", 1, 0, byteorder="middle"), ValueError),
]


@pytest.mark.parametrize(("call", "builtin"), BAD_CALLS)
def test_bad_input_raises_sidkit_error(call: object, builtin: type[Exception]) -> None:
    with pytest.raises(sidkit.SidkitError) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, builtin)
    assert info.value.code and str(info.value)


@given(st.one_of(st.binary(), st.text(), st.integers(), st.none(), st.lists(st.integers())), u32)
def test_any_key_hashes_or_raises_sidkit_error(key: object, iv: int) -> None:
    try:
        result = h.jhash(key, iv)  # type: ignore[arg-type]
    except sidkit.SidkitError:
        return
    assert 0 <= result < 2**32


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_like_inputs_agree(kind: type) -> None:
    data = b"strict bytes: all three kinds hash alike"
    key = bytes(range(16))
    assert h.jhash(kind(data), 7) == h.jhash(data, 7)
    assert h.siphash(kind(data), kind(key)) == h.siphash(data, key)
    assert h.toeplitz(kind(data[:36])) == h.toeplitz(data[:36])


_junk = st.one_of(
    st.binary(max_size=20),
    st.text(max_size=40),
    st.integers(-5, 2**33),
    st.none(),
    st.ip_addresses(),
    st.sampled_from(["10.0.0.1", "::1", "::ffff:10.0.0.1", "1.2.3", "fe80::1%eth0"]),
)


@given(_junk, _junk, _junk, _junk, _junk)
def test_network_hashes_accept_or_raise_sidkit_errors(
    a: object, p: object, b: object, q: object, iv: object
) -> None:
    calls: list[Callable[[], int]] = [
        lambda: h.udp_ehashfn(a, p, b, q, iv),  # type: ignore[arg-type]
        lambda: h.inet_ehashfn(a, p, b, q, iv),  # type: ignore[arg-type]
        lambda: h.hash_conntrack_raw(a, p, b, q, 17, 0, 0, iv),  # type: ignore[arg-type]
        lambda: h.flow_hash_from_keys(a, p, b, q, 17, iv),  # type: ignore[arg-type]
    ]
    for call in calls:
        try:
            r = call()
        except sidkit.SidkitError:
            continue
        assert 0 <= r < 2**32
