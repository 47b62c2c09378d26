# Strategy: cases for include/linux/siphash.h and lib/siphash.c: siphash/hsiphash over byte
# strings (every length up to max_len, then longer ones) and the siphash_*u64/*u32 word forms.
# The key length is a parameter because the -m32 hsiphash_key_t is 8 bytes, not 16.
"""Test cases for siphash, hsiphash and the siphash_*u64 / *u32 word functions."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .base import Case, hex_arg

__all__ = ["cases_siphash_bytes", "cases_siphash_words"]


def cases_siphash_bytes(
    name: str, max_len: int, key_len: int = 16
) -> Callable[[random.Random], list[Case]]:
    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(data: bytes, key: bytes, comment: str, flags: list[str]) -> None:
            cases.append(
                Case(
                    comment,
                    flags,
                    {"data": data.hex(), "key": key.hex()},
                    f"{name} {hex_arg(data)} {key.hex()}",
                )
            )

        add(b"", bytes(key_len), "empty data, zero key", ["EmptyInput", "EdgeValue"])
        add(b"", b"\xff" * key_len, "empty data, all-ones key", ["EmptyInput", "EdgeValue"])
        add(b"\xff" * 15, b"\xff" * key_len, "15 bytes 0xff, all-ones key", ["EdgeValue"])
        for n in range(max_len + 1):
            add(rng.randbytes(n), rng.randbytes(key_len), f"random data of length {n}", ["Random"])
        for _ in range(40):
            n = rng.randrange(max_len + 1, 300)
            add(
                rng.randbytes(n),
                rng.randbytes(key_len),
                f"random data of length {n}",
                ["Random", "LongInput"],
            )
        return cases

    return make


def cases_siphash_words(name: str, count: int, bits: int) -> Callable[[random.Random], list[Case]]:
    keys = ["first", "second", "third", "forth"][:count]
    top = (1 << bits) - 1

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(words: list[int], key: bytes, comment: str, flags: list[str]) -> None:
            args: dict[str, Any] = dict(zip(keys, words, strict=True))
            args["key"] = key.hex()
            line = " ".join([name, *map(str, words), key.hex()])
            cases.append(Case(comment, flags, args, line))

        for e in (0, 1, top >> 1, top):
            for key in (bytes(16), b"\xff" * 16):
                add([e] * count, key, f"all words {e:#x}, key {key[:1].hex()}..", ["EdgeValue"])
        for _ in range(120):
            add(
                [rng.getrandbits(bits) for _ in range(count)],
                rng.randbytes(16),
                "random",
                ["Random"],
            )
        return cases

    return make
