"""jhash input handling found by the mutation run (conformance/mutation, issue 21).

The arithmetic of every era is pinned by the committed vector files (the kernel's C for
lookup3, FRR's compiled lookup2 and the v2.6.38..v4.0 word hashes in
conformance/vectors/kernel-jhash-*.json). What the vectors cannot see is the gate in front
of the arithmetic: the fast type checks that skip ``check_uint`` for plain in-range ints
(a mutant that lets an out-of-range or non-int value through computes a hash of the wrong
input instead of raising), and the byte views (a memoryview of another format or shape is
hashed as its bytes, as the kernel hashes memory).
"""

from __future__ import annotations

import array
from collections.abc import Callable

import pytest

from sidkit import InputTypeError, InputValueError
from sidkit import hashing as h
from sidkit.hashing._jhash import WORD_HASHES

M32 = 0xFFFFFFFF
KEY = bytes(range(1, 30))

KEY_HASHES = [h.jhash, h.jhash_lookup2]
WORD_FUNCS: list[tuple[Callable[..., int], int]] = [
    (h.jhash_3words, 3),
    (h.jhash_2words, 2),
    (h.jhash_1word, 1),
    (h.jhash_3words_pre41, 3),
    (h.jhash_2words_pre41, 2),
    (h.jhash_1word_pre41, 1),
    (h.jhash_3words_lookup2, 3),
    (h.jhash_2words_lookup2, 2),
    (h.jhash_1word_lookup2, 1),
]
LIST_HASHES = [h.jhash2, h.jhash2_lookup2]
BAD_VALUES: list[tuple[object, type[Exception]]] = [
    (-1, InputValueError),
    (M32 + 1, InputValueError),
    (1 << 64, InputValueError),
    (True, InputTypeError),
    (1.0, InputTypeError),
    ("1", InputTypeError),
    (None, InputTypeError),
]


@pytest.mark.parametrize("fn", KEY_HASHES, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("bad", "error"), BAD_VALUES)
def test_key_hash_initval_is_checked(fn: Callable[..., int], bad: object, error: type) -> None:
    with pytest.raises(error):
        fn(KEY, bad)
    with pytest.raises(error):
        fn(b"", bad)


@pytest.mark.parametrize("fn", KEY_HASHES, ids=lambda f: f.__name__)
def test_key_hash_accepts_the_whole_u32_range(fn: Callable[..., int]) -> None:
    for iv in (0, 1, M32):
        assert 0 <= fn(KEY, iv) <= M32
    assert fn(KEY, M32) != fn(KEY, 0)


@pytest.mark.parametrize("fn", KEY_HASHES, ids=lambda f: f.__name__)
def test_key_views_hash_their_bytes(fn: Callable[..., int]) -> None:
    words = array.array("I", [0x01020304, 0xA0B0C0D0, 7])
    raw = words.tobytes()
    assert fn(memoryview(words), 5) == fn(raw, 5)
    assert fn(memoryview(raw).cast("B", (3, 4)), 5) == fn(raw, 5)  # 2-D byte view
    assert fn(memoryview(raw), 5) == fn(bytearray(raw), 5) == fn(raw, 5)
    for bad in ("abc", [1, 2], 7, None):
        with pytest.raises(InputTypeError):
            fn(bad, 0)


@pytest.mark.parametrize(("fn", "arity"), WORD_FUNCS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize(("bad", "error"), BAD_VALUES)
def test_word_hash_arguments_are_checked(
    fn: Callable[..., int], arity: int, bad: object, error: type
) -> None:
    for position in range(arity + 1):  # every word, then initval
        args: list[object] = [5] * (arity + 1)
        args[position] = bad
        with pytest.raises(error):
            fn(*args)


@pytest.mark.parametrize(("fn", "arity"), WORD_FUNCS, ids=lambda v: getattr(v, "__name__", v))
def test_word_hash_takes_every_edge_word(fn: Callable[..., int], arity: int) -> None:
    for w in (0, 1, M32):
        assert 0 <= fn(*([w] * arity), w) <= M32


@pytest.mark.parametrize("fn", LIST_HASHES, ids=lambda f: f.__name__)
def test_word_lists_are_checked(fn: Callable[..., int]) -> None:
    for bad_list in (b"\x01\x02", "ab", bytearray(4), 7, None, {1, 2}):
        with pytest.raises(InputTypeError):
            fn(bad_list, 0)
    for bad, error in BAD_VALUES:
        with pytest.raises(error):
            fn([1, bad, 3], 0)
        with pytest.raises(error):
            fn([1, 2, 3], bad)
    assert fn((1, 2, 3), 9) == fn([1, 2, 3], 9)
    assert 0 <= fn([M32] * 7, M32) <= M32


def test_the_era_bundles() -> None:
    assert (h.jhash2, h.jhash_3words, h.jhash_1word) == WORD_HASHES
    assert h.JHASH_INITVAL == 0xDEADBEEF and h.JHASH_GOLDEN_RATIO == 0x9E3779B9
