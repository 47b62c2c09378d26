# Strategy: cases for the word hashes: jhash.h (jhash, jhash2, jhash_{1,2,3}words), hash.h
# (hash_32, hash_64 on 64-bit and, with bits 1..32 only, on BITS_PER_LONG == 32),
# reciprocal_scale and next_pseudo_random32. Edge values first, then seeded random inputs;
# each maker takes the rng and returns the cases, it computes no result.
"""Test cases for jhash*, hash_32/hash_64, reciprocal_scale and next_pseudo_random32."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..base import U32
from .base import EDGE32, EDGE64, Case, hex_arg, rand_u32, rand_u64

__all__ = [
    "cases_hash_32",
    "cases_hash_64",
    "cases_hash_64_32",
    "cases_jhash",
    "cases_jhash2",
    "cases_prandom",
    "cases_reciprocal_scale",
    "cases_words",
]


def cases_jhash(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(key: bytes, iv: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(comment, flags, {"key": key.hex(), "initval": iv}, f"jhash {hex_arg(key)} {iv}")
        )

    add(b"", 0, "empty key, initval 0", ["EmptyInput", "EdgeValue"])
    add(b"", U32, "empty key, initval 0xffffffff", ["EmptyInput", "EdgeValue"])
    add(b"abc", 0, "ASCII 'abc'", [])
    add(b"abcdefghijklm", 0, "ASCII, 13 bytes", [])
    for n in (12, 13, 24, 25):
        add(b"\xff" * n, U32, f"{n} bytes of 0xff, initval 0xffffffff", ["EdgeValue"])
        add(b"\0" * n, 0, f"{n} zero bytes, initval 0", ["EdgeValue"])
    for n in range(41):
        add(rng.randbytes(n), rand_u32(rng), f"random key of length {n}", ["Random"])
    for n in range(41):
        iv = rng.choice((0, U32))
        add(rng.randbytes(n), iv, f"random key of length {n}, initval {iv:#x}", ["EdgeValue"])
    for _ in range(40):
        n = rng.randrange(41, 300)
        add(rng.randbytes(n), rand_u32(rng), f"random key of length {n}", ["Random", "LongInput"])
    return cases


def cases_jhash2(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(words: list[int], iv: int, comment: str, flags: list[str]) -> None:
        line = " ".join(["jhash2", str(len(words)), *map(str, words), str(iv)])
        cases.append(Case(comment, flags, {"words": words, "initval": iv}, line))

    add([], 0, "no words, initval 0", ["EmptyInput", "EdgeValue"])
    add([], U32, "no words, initval 0xffffffff", ["EmptyInput", "EdgeValue"])
    add([1, 2, 3], 0, "[1, 2, 3]", [])
    add([1, 2, 3, 4], 0, "[1, 2, 3, 4]", [])
    for n in (3, 4, 6, 7):
        add([U32] * n, U32, f"{n} words of 0xffffffff", ["EdgeValue"])
    for n in range(33):
        add([rand_u32(rng) for _ in range(n)], rand_u32(rng), f"{n} random words", ["Random"])
    for n in range(17):
        iv = rng.choice((0, U32))
        add(
            [rand_u32(rng) for _ in range(n)],
            iv,
            f"{n} random words, initval {iv:#x}",
            ["EdgeValue"],
        )
    for _ in range(40):
        n = rng.randrange(33, 80)
        add([rand_u32(rng) for _ in range(n)], rand_u32(rng), f"{n} random words", ["Random"])
    return cases


def cases_words(name: str, count: int) -> Callable[[random.Random], list[Case]]:
    keys = ["a", "b", "c"][:count]

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(words: list[int], iv: int, comment: str, flags: list[str]) -> None:
            args: dict[str, Any] = dict(zip(keys, words, strict=True))
            args["initval"] = iv
            line = " ".join([name, *map(str, words), str(iv)])
            cases.append(Case(comment, flags, args, line))

        for e in EDGE32:
            for iv in (0, U32):
                add([e] * count, iv, f"all words {e:#x}, initval {iv:#x}", ["EdgeValue"])
        for i in range(count):
            words = [0] * count
            words[i] = 1
            add(words, 0, f"word {i} is 1, others 0", ["EdgeValue"])
        add(list(range(1, count + 1)), 0, "words 1..n, initval 0", [])
        for _ in range(120):
            add([rand_u32(rng) for _ in range(count)], rand_u32(rng), "random", ["Random"])
        return cases

    return make


def cases_hash_32(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_32 {val} {bits}"))

    for bits in (1, 16, 31, 32):
        for v in EDGE32:
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 33):
        add(rand_u32(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(rand_u32(rng), rng.randint(1, 32), "random", ["Random"])
    return cases


def cases_hash_64(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_64 {val} {bits}"))

    for bits in (1, 32, 33, 63, 64):
        for v in EDGE64:
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 65):
        add(rand_u64(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(rand_u64(rng), rng.randint(1, 64), "random", ["Random"])
    return cases


def cases_hash_64_32(rng: random.Random) -> list[Case]:
    """hash_64 on BITS_PER_LONG == 32: hash_32() of a fold, so bits is 1..32 (the C shifts by
    32 - bits; larger bits would be undefined behaviour there)."""
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_64 {val} {bits}"))

    for bits in (1, 16, 31, 32):
        for v in (*EDGE64, U32, 1 << 32):
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 33):
        add(rand_u64(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(rand_u64(rng), rng.randint(1, 32), "random", ["Random"])
    return cases


def cases_reciprocal_scale(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, ep_ro: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment,
                flags,
                {"val": val, "ep_ro": ep_ro},
                f"reciprocal_scale {val} {ep_ro}",
            )
        )

    for v in EDGE32:
        for ep in EDGE32:
            add(v, ep, f"val {v:#x}, ep_ro {ep:#x}", ["EdgeValue"])
    for _ in range(60):
        add(rand_u32(rng), rng.randint(1, 256), "random val, small ep_ro", ["Random"])
    for _ in range(60):
        add(rand_u32(rng), rand_u32(rng), "random", ["Random"])
    return cases


def cases_prandom(rng: random.Random) -> list[Case]:
    cases = [
        Case(f"seed {v:#x}", ["EdgeValue"], {"seed": v}, f"next_pseudo_random32 {v}")
        for v in EDGE32
    ]
    for _ in range(100):
        v = rand_u32(rng)
        cases.append(Case("random", ["Random"], {"seed": v}, f"next_pseudo_random32 {v}"))
    return cases
