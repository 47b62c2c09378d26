"""SipHash word helpers refuse words too wide for their C type (conformance/mutation, issue 21).

``siphash_1u64``..``siphash_4u64`` take ``u64`` words and ``siphash_1u32``/``siphash_3u32``
``u32`` words (lib/siphash.c, v4.11+). The arithmetic is pinned by the kernel-C vectors; what
they cannot see is the bound in front of it: a word of 2**64 must be sidkit's
InputValueError, not Python's OverflowError from ``int.to_bytes`` nor a silently different
hash.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sidkit import InputTypeError, InputValueError
from sidkit import hashing as h

KEY = bytes(range(16))
U64: list[tuple[Callable[..., int], int]] = [
    (h.siphash_1u64, 1),
    (h.siphash_2u64, 2),
    (h.siphash_3u64, 3),
    (h.siphash_4u64, 4),
]
U32: list[tuple[Callable[..., int], int]] = [(h.siphash_1u32, 1), (h.siphash_3u32, 3)]


@pytest.mark.parametrize(("fn", "n"), U64 + U32, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_word_is_bounded_by_its_c_type(fn: Callable[..., int], n: int) -> None:
    bits = 64 if (fn, n) in U64 else 32
    for position in range(n):
        for bad, error in (
            (1 << bits, InputValueError),
            ((1 << bits) + 5, InputValueError),
            (-1, InputValueError),
            (True, InputTypeError),
            (1.5, InputTypeError),
        ):
            words: list[object] = [1] * n
            words[position] = bad
            with pytest.raises(error):
                fn(*words, KEY)
        top: list[object] = [1] * n
        top[position] = (1 << bits) - 1
        assert 0 <= fn(*top, KEY) < 1 << 64


@pytest.mark.parametrize("bad_key", [bytes(15), bytes(17), "k" * 16, 16])
def test_keys_are_16_bytes(bad_key: object) -> None:
    with pytest.raises((InputTypeError, InputValueError)):
        h.siphash_1u64(1, bad_key)  # type: ignore[arg-type]
