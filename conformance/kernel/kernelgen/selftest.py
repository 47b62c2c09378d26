# Strategy: the published SipHash/HSipHash vectors are read out of the kernel's own self-test
# file (lib/tests/siphash_kunit.c, lib/siphash_kunit.c or lib/test_siphash.c, whichever the
# tree has), both BITS_PER_LONG branches, keys and word-variant checks included. They are
# parsed, not typed in, so the kernel's copy is the authority; an unexpected shape is a
# HarnessError.
"""Parse the kernel's SipHash self-test file: keys, vectors and word-variant checks."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .base import HarnessError
from .tree import KernelTree

__all__ = ["SelfTest", "parse_selftest", "selftest_path"]


def _c_array(text: str, name: str) -> list[int]:
    m = re.search(rf"\b{re.escape(name)}\[\d+\]\s*=\s*\{{(.*?)\}};", text, re.DOTALL)
    if not m:
        raise HarnessError(f"no array {name}")
    return [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1))]


def _c_key(text: str, name: str, fmt: str = "<2Q") -> bytes:
    """The memory of a key initialised as ``{{ w0, w1 }}``: two u64 (``<2Q``) or, for the
    32-bit hsiphash_key_t, two 32-bit unsigned longs (``<2I``), little-endian."""
    m = re.search(rf"\b{re.escape(name)}\s*=\s*\{{\{{([^}}]*)\}}\}};", text)
    if not m:
        raise HarnessError(f"no key {name}")
    words = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1))]
    return struct.pack(fmt, *words)


def selftest_path(tree: KernelTree) -> str:
    for p in ("lib/tests/siphash_kunit.c", "lib/siphash_kunit.c", "lib/test_siphash.c"):
        if tree.has(p):
            return p
    raise HarnessError(f"linux-source-{tree.series}: no SipHash self-test file")


@dataclass
class SelfTest:
    path: str
    key_siphash: bytes
    key_hsiphash: bytes
    siphash: list[int]
    hsiphash: list[int]
    words: list[tuple[str, list[int], str, int]]  # (function, words, which vector, index)
    key_hsiphash32: bytes  # the #else (BITS_PER_LONG == 32) branch: HalfSipHash-1-3
    hsiphash32: list[int]


def parse_selftest(tree: KernelTree) -> SelfTest:
    path = selftest_path(tree)
    text = tree.read(path)
    # The 64-bit branch (#if BITS_PER_LONG == 64) comes first in the file, then the 32-bit one.
    m64 = re.search(r"#if BITS_PER_LONG == 64(.*?)#else(.*?)#endif", text, re.DOTALL)
    if not m64:
        raise HarnessError(f"{path}: no BITS_PER_LONG == 64 / #else branches")
    words = []
    for m in re.finditer(
        r"\b(h?siphash_\d+u\d+)\(([^;]*?)&test_key_(h?siphash)\)\s*(?:!=|,)\s*"
        r"test_vectors_(h?siphash)\[(\d+)\]",
        text,
    ):
        func, argtext, keyname, vec, idx = m.groups()
        if keyname != vec:
            raise HarnessError(f"{path}: {func} checked against another key's vectors")
        nums = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", argtext)]
        words.append((func, nums, vec, int(idx)))
    st = SelfTest(
        path,
        _c_key(text, "test_key_siphash"),
        _c_key(m64.group(1), "test_key_hsiphash"),
        _c_array(text, "test_vectors_siphash"),
        _c_array(m64.group(1), "test_vectors_hsiphash"),
        words,
        _c_key(m64.group(2), "test_key_hsiphash", "<2I"),
        _c_array(m64.group(2), "test_vectors_hsiphash"),
    )
    if len(st.siphash) != 64 or len(st.hsiphash) != 64 or len(st.hsiphash32) != 64 or not st.words:
        raise HarnessError(f"{path}: unexpected self-test shape")
    return st
