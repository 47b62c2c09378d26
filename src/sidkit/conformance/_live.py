# Strategy: the running kernel as a second oracle for the vector files, where it exposes the
# function: jhash/jhash2 through the bucket order of a BPF_F_ZERO_SEED hash map (GET_NEXT_KEY
# walks the buckets, so the order shows the low bits of the compiled kernel's hash). bpf(2)
# is reached through sidkit.bpf, imported lazily so that loading vectors never touches ctypes.
"""Checking conformance vectors against the running kernel."""

from __future__ import annotations

import functools
import platform
import random
import struct
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from sidkit._errors import InputTypeError, InputValueError, UnknownKernelError
from sidkit.conformance._vectors import Failure, TestCase, TestGroup, decode_args, same_algorithm
from sidkit.kernel import profile

__all__ = ["LIVE_ORACLES", "LiveResult", "run_group_live"]

_HTAB = (
    "bucket order of a BPF_F_ZERO_SEED hash map (kernel/bpf/hashtab.c: htab_map_hash() = "
    "jhash2 of the key's words when key_size % 4 == 0, else jhash; seed 0)"
)
LIVE_ORACLES: Mapping[str, str] = {"jhash": _HTAB, "jhash2": _HTAB}
"""Functions whose vectors :func:`run_group_live` can check against the running kernel."""

_MAX_KEY = 512  # MAX_BPF_STACK: the largest key_size a hash map accepts


@attrs.frozen
class LiveResult:
    """What the running kernel said about one group's vectors.

    ``checked`` vectors were visible to the oracle and had the low ``bits`` of their result
    compared (their bucket index); ``not_visible`` were not (the map hashes with initval 0
    and keys of 1..512 bytes only). ``failures`` are vectors the kernel placed elsewhere;
    ``problems`` are disagreements not tied to one vector (sidkit's own hash of the filler
    keys, or the map's order rules). ``reason`` says why nothing was compared.
    """

    path: Path
    function: str
    kernel: str | None
    release: str
    checked: int = 0
    not_visible: int = 0
    bits: int = 0
    failures: tuple[Failure, ...] = ()
    problems: tuple[str, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the kernel disagreed with nothing."""
        return not self.failures and not self.problems


def _htab_key(function: str, kwargs: Mapping[str, Any]) -> bytes | None:
    """The map key whose htab_map_hash(key, len, 0) is the vector's result, or None."""
    if kwargs.get("initval") != 0:
        return None
    if function == "jhash" and set(kwargs) == {"key", "initval"}:
        key = bytes(kwargs["key"])
    elif function == "jhash2" and set(kwargs) == {"words", "initval"}:
        words = kwargs["words"]
        if not all(isinstance(w, int) and 0 <= w <= 0xFFFFFFFF for w in words):
            return None
        key = struct.pack(f"<{len(words)}I", *words)
    else:
        return None
    return key if 1 <= len(key) <= _MAX_KEY else None


def _filler_keys(
    size: int, bits: int, skip: set[bytes], htab_hash: Callable[[bytes], int]
) -> dict[int, bytes] | None:
    """One key of *size* bytes per bucket of a 2**bits-bucket map (by sidkit's hash), none
    of them in *skip*; None if the key space cannot cover every bucket."""
    need = 1 << bits
    rng = random.Random(0x51D_7AB1E ^ size)
    if size <= 2:
        every = [v.to_bytes(size, "little") for v in range(256**size)]
        rng.shuffle(every)
        pool: Iterator[bytes] = iter(every)
    else:
        pool = iter(lambda: rng.randbytes(size), None)
    found: dict[int, bytes] = {}
    for tries, key in enumerate(pool):
        if tries > 200 * need:
            break
        if key in skip:
            continue
        found.setdefault(htab_hash(key) & (need - 1), key)
        if len(found) == need:
            return found
    return None


def run_group_live(group: TestGroup, path: Path, *, release: str | None = None) -> LiveResult:
    """Check *group*'s vectors against the running kernel's own jhash/jhash2.

    The kernel has no jhash syscall, but a ``BPF_MAP_TYPE_HASH`` created with
    ``BPF_F_ZERO_SEED`` puts a key in bucket ``htab_map_hash(key, key_size, 0) & (n - 1)``
    and ``BPF_MAP_GET_NEXT_KEY`` walks buckets in order, newest first within one
    (kernel/bpf/hashtab.c; tests/hashing/test_live_kernel_jhash.py measures it on ~94,000 keys).
    A map of ``n = 256`` buckets is filled with one filler key for every bucket but a few
    (sidkit's hash places the fillers), then the vectors' keys are inserted: a vector key
    must come out right after the filler of bucket ``result - 1`` and right before the
    filler of bucket ``result`` (low 8 bits; 16 buckets for 1-byte keys). So every visible
    vector -- initval 0, key of 1..512 bytes -- has its low bits confirmed by the compiled
    kernel, and the fillers' order checks sidkit's hash on the way.

    Only groups whose function the running kernel computes as the group's kernel did
    (:func:`same_algorithm`) are compared; otherwise ``reason`` says why not. Raises
    :class:`~sidkit.KernelOracleError` when bpf(2) refuses (check
    ``sidkit.bpf._syscall.bpf_available()`` first).
    """
    if not isinstance(group, TestGroup):
        raise InputTypeError(f"expected a conformance TestGroup, not {type(group).__name__}")
    if group.function not in LIVE_ORACLES:
        raise InputValueError(
            f"no live-kernel oracle for {group.function} (there is one for "
            f"{', '.join(sorted(LIVE_ORACLES))})",
            code="no-live-oracle",
        )
    rel = platform.release() if release is None else release
    result = functools.partial(LiveResult, path, group.function, group.kernel, rel)
    if sys.byteorder != "little":
        return result(reason="the map oracle reads key words as little-endian")
    try:
        running = profile(rel)
    except UnknownKernelError as exc:
        return result(reason=f"the running kernel is not in the eras table: {exc}")
    if not same_algorithm(group.function, group.kernel, running):
        return result(
            reason=f"{group.function} of kernel {rel} is not the one of kernel "
            f"{group.kernel or 'latest'} (sidkit eras {group.function})"
        )
    from sidkit.bpf import _syscall  # noqa: PLC0415 (ctypes and the syscall only when asked)

    jhash, jhash2 = running.function("jhash"), running.function("jhash2")

    def htab_hash(key: bytes) -> int:
        if len(key) % 4 == 0:
            return int(jhash2(struct.unpack(f"<{len(key) // 4}I", key), 0))
        return int(jhash(key, 0))

    by_size: dict[int, dict[bytes, list[TestCase]]] = {}
    not_visible = 0
    for case in group.tests:
        key = _htab_key(group.function, decode_args(group.arg_types, case.args))
        if key is None:
            not_visible += 1
        else:
            by_size.setdefault(len(key), {}).setdefault(key, []).append(case)
    failures: list[Failure] = []
    problems: list[str] = []
    checked = bits_total = 0
    flags = _syscall.BPF_F_ZERO_SEED | _syscall.BPF_F_NO_PREALLOC
    for size, cases_by_key in sorted(by_size.items()):
        bits = 8 if size > 1 else 4
        n = 1 << bits
        fillers = _filler_keys(size, bits, set(cases_by_key), htab_hash)
        if fillers is None:
            problems.append(f"{size}-byte keys: no filler key for every one of {n} buckets")
            continue
        keys = list(cases_by_key)
        cap = n // 8
        for start in range(0, len(keys), cap):
            batch = keys[start : start + cap]
            want = {k: cases_by_key[k][0].result & (n - 1) for k in batch}
            needed = {b for r in want.values() for b in (r, r - 1) if b >= 0}
            empty = [b for b in range(n) if b not in needed][: len(batch)]
            placed = [(b, k) for b, k in sorted(fillers.items()) if b not in empty]
            inserted = [k for _, k in placed] + batch
            bucket = {k: b for b, k in placed} | want
            order = sorted(range(len(inserted)), key=lambda i: (bucket[inserted[i]], -i))
            predicted = [inserted[i] for i in order]
            with _syscall.Map(_syscall.BPF_MAP_TYPE_HASH, size, 1, n, flags, "sidkit_vec") as m:
                for k in inserted:
                    m.update(k, b"\x00", _syscall.BPF_NOEXIST)
                observed = list(m.keys())
            for k in batch:
                checked += len(cases_by_key[k])
                bits_total += bits * len(cases_by_key[k])
            if observed == predicted:
                continue
            before_batch = len(failures)
            filler_set = {k for _, k in placed}
            seen = [bucket[k] for k in observed if k in filler_set]
            if seen != sorted(seen) or len(observed) != len(inserted):
                problems.append(
                    f"{size}-byte keys: the kernel orders sidkit's filler keys differently "
                    f"(sidkit's {group.function} disagrees with the kernel's htab hash)"
                )
                continue
            for k in batch:
                i = observed.index(k)
                after = next((bucket[x] for x in observed[i:] if x in filler_set), n)
                before = next((bucket[x] for x in observed[i::-1] if x in filler_set), -1)
                for case in cases_by_key[k]:
                    r = case.result & (n - 1)
                    if (before, after) != (r - 1, r):
                        where = str(after) if before + 1 == after else f"{before + 1}..{after}"
                        got = (
                            f"the live kernel's bucket {where} of {n}, not {r} "
                            f"(the result's low {bits} bits)"
                        )
                        failures.append(
                            Failure(
                                path, group.function, group.kernel, case.tc_id, case.result, got
                            )
                        )
            if len(failures) == before_batch:
                problems.append(f"{size}-byte keys: same buckets, but not newest-first order")
    return result(
        checked=checked,
        not_visible=not_visible,
        bits=bits_total,
        failures=tuple(failures),
        problems=tuple(problems),
        reason="" if checked else "no vector with initval 0 and a 1..512-byte key",
    )
