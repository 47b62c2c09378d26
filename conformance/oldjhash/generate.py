# Known-answer vectors for the two jhash eras no Debian kernel source covers: lookup2 (the
# kernel's jhash before v2.6.38) and the lookup3 word hashes of v2.6.38..v4.0.
# Strategy: never import sidkit. lookup2 comes from Debian's FRR, whose lib/jhash.c is the
# kernel's lookup2 jhash.h compiled into libfrr.so (conformance/frr/fetch-frr.sh unpacks it);
# the library is called through ctypes. The v2.6.38..v4.0 word hashes come from the kernel's
# own include/linux/jhash.h of linux-source-6.12 (JHASH_INITVAL and __jhash_final, unchanged
# since v2.6.38; conformance/kernel/fetch-kernel-source.sh unpacks it) compiled with the
# kernel harness's shims, around the only text v4.1 changed: jhash_3words's three additions
# (a += JHASH_INITVAL; b += JHASH_INITVAL; c += initval), quoted in PRE41_C from v2.6.38's
# jhash.h ("The new jhash implementation"); jhash_2words and jhash_1word call it with zeros
# there as they did. The results are written into conformance/vectors/ and committed, so the
# tests check them on every run without FRR or a compiler (no skip can hide them).
"""Generate conformance/vectors/frr-jhash-lookup2.json and pre41-jhash-words.json.

(Not ``kernel-*.json``: conformance/kernel/generate.py owns that prefix and its --check
treats every such file as its own output.)
"""

from __future__ import annotations

import argparse
import ctypes
import difflib
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFORMANCE = HERE.parent
VECTORS = CONFORMANCE / "vectors"
FRR = CONFORMANCE / "frr" / "_work"
FRR_LIBDIR = FRR / "root" / "usr" / "lib" / "x86_64-linux-gnu"
KERNEL = CONFORMANCE / "kernel"
TREE = KERNEL / "_work" / "linux-source-6.12"
SHIMS = KERNEL / "shims"
M32 = 0xFFFFFFFF
EDGE_WORDS = [0, 1, 0x7FFFFFFF, 0x80000000, 0x9E3779B9, 0xDEADBEEF, M32 - 11, M32]

PRE41_C = r"""
#include <linux/types.h>
#include <linux/jhash.h>
#include <stdio.h>

/* jhash_3words of include/linux/jhash.h, v2.6.38 .. v4.0 (replaced in v4.1 by the
 * __jhash_nwords form): the three additions below, then the kernel's own __jhash_final. */
static u32 pre41_jhash_3words(u32 a, u32 b, u32 c, u32 initval)
{
    a += JHASH_INITVAL;
    b += JHASH_INITVAL;
    c += initval;
    __jhash_final(a, b, c);
    return c;
}

int main(void)
{
    unsigned a, b, c, iv;
    while (scanf("%u %u %u %u", &a, &b, &c, &iv) == 4)
        printf("%u %u\n", pre41_jhash_3words(a, b, c, iv),
               jhash_3words(a, b, c, iv));
    return 0;
}
"""


def _frr() -> ctypes.CDLL:
    lib = FRR_LIBDIR / "frr" / "libfrr.so.0"
    if not lib.is_file():
        raise SystemExit("libfrr.so missing: run `bash conformance/frr/fetch-frr.sh` first")
    ctypes.CDLL(str(FRR_LIBDIR / "libyang.so.2"), mode=ctypes.RTLD_GLOBAL)
    frr = ctypes.CDLL(str(lib))
    u32 = ctypes.c_uint32
    frr.jhash.argtypes = [ctypes.c_char_p, u32, u32]
    frr.jhash2.argtypes = [ctypes.POINTER(u32), u32, u32]
    frr.jhash_3words.argtypes = [u32, u32, u32, u32]
    frr.jhash_2words.argtypes = [u32, u32, u32]
    frr.jhash_1word.argtypes = [u32, u32]
    for name in ("jhash", "jhash2", "jhash_3words", "jhash_2words", "jhash_1word"):
        getattr(frr, name).restype = u32
    return frr


def _word_cases(n_args: int, rng: random.Random) -> list[tuple[str, list[str], list[int]]]:
    """Edge words in every position, then random words; (comment, flags, args)."""
    cases: list[tuple[str, list[str], list[int]]] = []
    for w in EDGE_WORDS:
        for iv in (0, M32, 0x9E3779B9):
            cases.append((f"all words {w:#x}, initval {iv:#x}", ["EdgeValue"], [w] * n_args + [iv]))
    for pos in range(n_args):
        for w in (1, 0x80000000, M32):
            args = [0] * n_args + [0]
            args[pos] = w
            cases.append((f"word {pos} = {w:#x}, others 0", ["EdgeValue"], args))
    cases.append(("initval only", ["EdgeValue"], [0] * n_args + [1]))
    for _ in range(40):
        cases.append(("random", [], [rng.getrandbits(32) for _ in range(n_args + 1)]))
    return cases


def _group(
    function: str,
    kernel: str,
    source: dict[str, object],
    arg_types: dict[str, str],
    tests: list[dict[str, object]],
) -> dict[str, object]:
    return {
        "type": "HashTest",
        "function": function,
        "kernel": kernel,
        "source": source,
        "argTypes": arg_types,
        "tests": tests,
    }


def lookup2_document() -> dict[str, object]:
    frr = _frr()
    version = (FRR / "frr.version").read_text().strip()
    source: dict[str, object] = {
        "oracle": "kernel-c",
        "name": "frr (Debian): lib/jhash.c, the kernel's lookup2 include/linux/jhash.h",
        "version": version,
        "files": ["lib/jhash.c", "usr/lib/x86_64-linux-gnu/frr/libfrr.so.0"],
    }
    rng = random.Random("lookup2")
    tc = 0
    groups = []

    def tests_of(
        cases: list[tuple[str, list[str], dict[str, object]]], call: Callable[..., int]
    ) -> list[dict[str, object]]:
        nonlocal tc
        out: list[dict[str, object]] = []
        for comment, flags, args in cases:
            tc += 1
            out.append(
                {"tcId": tc, "comment": comment, "flags": flags, "args": args, "result": call(args)}
            )
        return out

    key_cases: list[tuple[str, list[str], dict[str, object]]] = []
    for length in range(0, 41):  # every tail length 0..11 after 0..3 blocks of 12
        key = bytes((i * 37 + length) & 0xFF for i in range(length))
        for iv in (0, 0xFFFFFFFF):
            flags = ["EmptyInput"] if length == 0 else []
            key_cases.append(
                (f"{length}-byte key, initval {iv:#x}", flags, {"key": key.hex(), "initval": iv})
            )
    key_cases.append(("all-0xff 12-byte key", ["EdgeValue"], {"key": "ff" * 12, "initval": 0}))
    key_cases.append(("all-0xff 11-byte key", ["EdgeValue"], {"key": "ff" * 11, "initval": 0}))
    for _ in range(30):
        length = rng.randrange(0, 100)
        key_cases.append(
            (
                "random",
                [],
                {"key": rng.randbytes(length).hex(), "initval": rng.getrandbits(32)},
            )
        )

    def call_jhash(a: dict[str, object]) -> int:
        key = bytes.fromhex(str(a["key"]))
        return int(frr.jhash(key, len(key), a["initval"]))

    groups.append(
        _group(
            "jhash",
            "2.6.37",
            source,
            {"key": "bytes", "initval": "u32"},
            tests_of(key_cases, call_jhash),
        )
    )

    word_list_cases: list[tuple[str, list[str], dict[str, object]]] = []
    for n in range(0, 11):
        words = [(0x01010101 * (i + 1) + n) & M32 for i in range(n)]
        for iv in (0, M32):
            flags = ["EmptyInput"] if n == 0 else []
            word_list_cases.append(
                (f"{n} words, initval {iv:#x}", flags, {"words": words, "initval": iv})
            )
    word_list_cases.append(("three 0xffffffff", ["EdgeValue"], {"words": [M32] * 3, "initval": 0}))
    for _ in range(20):
        n = rng.randrange(0, 16)
        word_list_cases.append(
            (
                "random",
                [],
                {"words": [rng.getrandbits(32) for _ in range(n)], "initval": rng.getrandbits(32)},
            )
        )

    def call_jhash2(a: dict[str, object]) -> int:
        words = list(a["words"])  # type: ignore[call-overload]
        arr = (ctypes.c_uint32 * max(1, len(words)))(*words)
        return int(frr.jhash2(arr, len(words), a["initval"]))

    groups.append(
        _group(
            "jhash2",
            "2.6.37",
            source,
            {"words": "u32list", "initval": "u32"},
            tests_of(word_list_cases, call_jhash2),
        )
    )
    for function, names in (
        ("jhash_3words", ["a", "b", "c"]),
        ("jhash_2words", ["a", "b"]),
        ("jhash_1word", ["a"]),
    ):
        fn = getattr(frr, function)
        cases: list[tuple[str, list[str], dict[str, object]]] = [
            (comment, flags, dict(zip([*names, "initval"], args, strict=True)))
            for comment, flags, args in _word_cases(len(names), rng)
        ]
        groups.append(
            _group(
                function,
                "2.6.37",
                source,
                dict.fromkeys([*names, "initval"], "u32"),
                tests_of(
                    cases,
                    lambda a, fn=fn, names=names: int(fn(*(a[n] for n in names), a["initval"])),
                ),
            )
        )
    assert frr.jhash(b"abc", 3, 0) != 0x0E397631, "libfrr's jhash is lookup3, not lookup2"
    return _document(
        "jhash-lookup2",
        [
            "Generated by conformance/oldjhash/generate.py -- do not edit; regenerate with "
            "`python3 conformance/oldjhash/generate.py`, verify with `--check`.",
            f"Oracle: lookup2, the Linux jhash before v2.6.38 (v2.6.12..v2.6.36), as compiled by "
            f"Debian in FRR {version}'s libfrr.so (lib/jhash.c is the kernel's jhash.h of that "
            "era); called through ctypes. Evaluated under the 2.6.37 kernel profile.",
        ],
        groups,
    )


def pre41_document() -> dict[str, object]:
    header = TREE / "include" / "linux" / "jhash.h"
    if not header.is_file():
        raise SystemExit(
            "kernel source missing: run `bash conformance/kernel/fetch-kernel-source.sh` first"
        )
    version = (KERNEL / "_work" / "linux-source-6.12.version").read_text().strip()
    rng = random.Random("pre41")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "pre41.c"
        exe = Path(tmp) / "pre41"
        src.write_text(PRE41_C)
        subprocess.run(
            [
                "gcc",
                "-std=gnu11",
                "-O2",
                "-Wall",
                "-Wno-unused-function",
                "-DCONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS=1",
                "-I",
                str(SHIMS),
                "-I",
                str(TREE / "include"),
                str(src),
                "-o",
                str(exe),
            ],
            check=True,
        )
        cases3 = _word_cases(3, rng)
        cases2 = _word_cases(2, rng)
        cases1 = _word_cases(1, rng)
        lines = [args for _, _, args in cases3]
        lines += [[a, b, 0, iv] for _, _, (a, b, iv) in cases2]
        lines += [[a, 0, 0, iv] for _, _, (a, iv) in cases1]
        out = subprocess.run(
            [str(exe)],
            input="".join(" ".join(map(str, x)) + "\n" for x in lines),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    results = [tuple(int(v) for v in line.split()) for line in out if line]
    assert len(results) == len(lines)
    # The two forms must differ (else the quoted body would be today's): v4.1 changed them all.
    assert sum(old != new for old, new in results) == len(results)
    source: dict[str, object] = {
        "oracle": "kernel-c",
        "name": "linux-source-6.12 include/linux/jhash.h (__jhash_final, JHASH_INITVAL) with "
        "the v2.6.38..v4.0 jhash_3words additions",
        "version": version,
        "files": ["include/linux/jhash.h"],
    }
    tc = 0
    groups = []
    it = iter(results)
    for function, names, cases in (
        ("jhash_3words", ["a", "b", "c"], cases3),
        ("jhash_2words", ["a", "b"], cases2),
        ("jhash_1word", ["a"], cases1),
    ):
        tests: list[dict[str, object]] = []
        for comment, flags, args in cases:
            tc += 1
            tests.append(
                {
                    "tcId": tc,
                    "comment": comment,
                    "flags": flags,
                    "args": dict(zip([*names, "initval"], args, strict=True)),
                    "result": next(it)[0],
                }
            )
        groups.append(
            _group(function, "4.0", source, dict.fromkeys([*names, "initval"], "u32"), tests)
        )
    return _document(
        "jhash-pre41",
        [
            "Generated by conformance/oldjhash/generate.py -- do not edit; regenerate with "
            "`python3 conformance/oldjhash/generate.py`, verify with `--check`.",
            f"Oracle: the kernel's include/linux/jhash.h from Debian linux-source-6.12 {version} "
            "(JHASH_INITVAL and __jhash_final, the same text as v2.6.38) compiled with the "
            "shims in conformance/kernel/shims/, around v2.6.38..v4.0's jhash_3words body "
            "(a += JHASH_INITVAL; b += JHASH_INITVAL; c += initval), quoted in generate.py; "
            "jhash_2words/jhash_1word are jhash_3words(a, b, 0, iv)/(a, 0, 0, iv) there. "
            "Evaluated under the 4.0 kernel profile.",
            "Checked when generating: every case differs from the compiled v4.1+ jhash_3words.",
        ],
        groups,
    )


def _tests(group: dict[str, object]) -> list[object]:
    tests = group["tests"]
    assert isinstance(tests, list)
    return tests


def _document(
    algorithm: str, header: list[str], groups: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "algorithm": algorithm,
        "schema": "hash_vectors.schema.json",
        "generator": "conformance/oldjhash/generate.py",
        "header": header,
        "notes": {
            "EdgeValue": "a boundary word: 0, 1, sign bit, all ones, the start constants",
            "EmptyInput": "no key bytes or no words",
        },
        "numberOfTests": sum(len(_tests(g)) for g in groups),
        "testGroups": groups,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = p.parse_args(argv)
    stale = 0
    for name, make in (
        ("frr-jhash-lookup2.json", lookup2_document),
        ("pre41-jhash-words.json", pre41_document),
    ):
        text = json.dumps(make(), indent=2) + "\n"
        path = VECTORS / name
        if args.check:
            old = path.read_text() if path.exists() else ""
            if old != text:
                stale += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(True), text.splitlines(True), str(path), "generated", n=1
                    )
                )
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(CONFORMANCE.parent)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
