# Reads the conformance vector files (conformance/vectors/*.json, Wycheproof-like) and runs
# them against the library. The files are the project's truth: each test group names the
# oracle that produced it (kernel C, published tables, the live kernel), never sidkit. This
# module only decodes and dispatches; which function a group runs under which kernel era is
# decided by sidkit.kernel, so a vector file also tests the eras table.
#
# Two additions serve ``sidkit vectors``: selecting the groups that hold for a given kernel
# (by the eras table, since no vector file is labelled with every release), and checking
# vectors against the *running* kernel where it exposes the function: jhash/jhash2 through
# the bucket order of a BPF_F_ZERO_SEED hash map (bpf(2) via sidkit._bpf, imported lazily so
# that loading vectors never touches ctypes).
"""Load conformance vector files and check sidkit (and the live kernel) against them."""

from __future__ import annotations

import functools
import json
import platform
import random
import struct
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sidkit._errors import InputValueError, UnknownKernelError, VectorFileError
from sidkit.kernel import KernelProfile, profile

__all__ = [
    "LIVE_ORACLES",
    "Failure",
    "LiveResult",
    "TestCase",
    "TestGroup",
    "VectorFile",
    "decode_args",
    "group_applies_to",
    "iter_vector_files",
    "load_vector_file",
    "run_group",
    "run_group_live",
    "same_algorithm",
    "select_groups",
]

_INT_TYPES = {"u8": 8, "u16": 16, "u32": 32, "u64": 64}


@attrs.frozen
class TestCase:
    """One vector: keyword arguments (still JSON-encoded) and the oracle's result."""

    tc_id: int
    args: Mapping[str, Any]
    result: int
    comment: str = ""
    flags: tuple[str, ...] = ()


@attrs.frozen
class TestGroup:
    """Vectors for one function under one kernel version, from one oracle."""

    function: str
    kernel: str | None
    source: Mapping[str, Any]
    arg_types: Mapping[str, str]
    tests: tuple[TestCase, ...]
    comment: str = ""

    @property
    def oracle(self) -> str:
        """The kind of oracle: ``kernel-c``, ``published`` or ``live-kernel``."""
        return str(self.source["oracle"])


@attrs.frozen
class VectorFile:
    """A parsed vector file."""

    path: Path
    algorithm: str
    groups: tuple[TestGroup, ...]
    number_of_tests: int
    header: tuple[str, ...] = ()
    notes: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Failure:
    """A vector on which sidkit disagreed with the oracle (or raised)."""

    path: Path
    function: str
    kernel: str | None
    tc_id: int
    expected: int
    got: int | str

    def __str__(self) -> str:
        got = f"0x{self.got:x}" if isinstance(self.got, int) else self.got
        return (
            f"{self.path.name} tcId {self.tc_id}: {self.function} (kernel {self.kernel}) "
            f"expected 0x{self.expected:x}, got {got}"
        )


def _need(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise VectorFileError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise VectorFileError(f"{where}: {key!r} must be {kind.__name__}")
    return value


def load_vector_file(path: str | Path) -> VectorFile:
    """Parse a vector file, checking the structure the runner relies on.

    Full validation against ``conformance/hash_vectors.schema.json`` is done by the test
    suite with jsonschema; this keeps the runtime free of that dependency while still
    turning a malformed file into a :class:`~sidkit.VectorFileError` that names the place.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VectorFileError(f"{p}: cannot read vector file: {exc}") from None
    if not isinstance(doc, dict):
        raise VectorFileError(f"{p}: top level must be an object")
    groups = []
    count = 0
    for gi, g in enumerate(_need(doc, "testGroups", list, str(p))):
        where = f"{p.name} testGroups[{gi}]"
        if not isinstance(g, dict):
            raise VectorFileError(f"{where}: must be an object")
        tests = []
        for ti, t in enumerate(_need(g, "tests", list, where)):
            tw = f"{where} tests[{ti}]"
            if not isinstance(t, dict):
                raise VectorFileError(f"{tw}: must be an object")
            flags = t.get("flags", [])
            if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
                raise VectorFileError(f"{tw}: 'flags' must be a list of strings")
            tests.append(
                TestCase(
                    tc_id=_need(t, "tcId", int, tw),
                    args=_need(t, "args", dict, tw),
                    result=_need(t, "result", int, tw),
                    comment=str(t.get("comment", "")),
                    flags=tuple(flags),
                )
            )
        kernel = g.get("kernel")
        if kernel is not None and not isinstance(kernel, str):
            raise VectorFileError(f"{where}: 'kernel' must be a string or null")
        groups.append(
            TestGroup(
                function=_need(g, "function", str, where),
                kernel=kernel,
                source=_need(g, "source", dict, where),
                arg_types=_need(g, "argTypes", dict, where),
                tests=tuple(tests),
                comment=str(g.get("comment", "")),
            )
        )
        count += len(tests)
    declared = _need(doc, "numberOfTests", int, str(p))
    if declared != count:
        raise VectorFileError(f"{p}: numberOfTests says {declared}, file holds {count}")
    return VectorFile(
        path=p,
        algorithm=_need(doc, "algorithm", str, str(p)),
        groups=tuple(groups),
        number_of_tests=count,
        header=_str_list(doc.get("header", []), f"{p}: 'header'"),
        notes=_str_map(doc.get("notes", {}), f"{p}: 'notes'"),
    )


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VectorFileError(f"{where} must be a list of strings")
    return tuple(value)


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise VectorFileError(f"{where} must be an object of strings")
    return {str(k): v for k, v in value.items()}


def decode_args(arg_types: Mapping[str, str], args: Mapping[str, Any]) -> dict[str, Any]:
    """Turn JSON-encoded arguments into Python values by their declared ``argTypes``."""
    out: dict[str, Any] = {}
    for name, value in args.items():
        kind = arg_types.get(name)
        if kind is None:
            raise VectorFileError(f"argument {name!r} has no entry in argTypes")
        if kind == "bytes":
            if not isinstance(value, str):
                raise VectorFileError(f"argument {name!r}: bytes must be a hex string")
            try:
                out[name] = bytes.fromhex(value)
            except ValueError:
                raise VectorFileError(f"argument {name!r}: not hex: {value[:40]!r}") from None
        elif kind in _INT_TYPES or kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise VectorFileError(f"argument {name!r}: {kind} must be an integer")
            out[name] = value
        elif kind == "u32list":
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise VectorFileError(f"argument {name!r}: u32list must be a list of integers")
            out[name] = list(value)
        elif kind in ("ip", "str"):
            if not isinstance(value, str):
                raise VectorFileError(f"argument {name!r}: {kind} must be a string")
            out[name] = value
        else:
            raise VectorFileError(f"argument {name!r}: unknown argType {kind!r}")
    return out


def run_group(group: TestGroup, path: Path) -> list[Failure]:
    """Run every vector of *group*; return the disagreements (empty when all agree).

    The callable is the one the eras table puts in force for the group's kernel
    (``sidkit.kernel.profile(group.kernel).function(group.function)``).
    """
    fn = profile(group.kernel).function(group.function)
    failures = []
    for case in group.tests:
        kwargs = decode_args(group.arg_types, case.args)
        try:
            got: int | str = fn(**kwargs)
        except Exception as exc:  # a raise is a disagreement with the oracle, reported as such
            got = f"{type(exc).__name__}: {exc}"
        if got != case.result:
            failures.append(
                Failure(path, group.function, group.kernel, case.tc_id, case.result, got)
            )
    return failures


def iter_vector_files(root: str | Path) -> Iterator[Path]:
    """Yield the ``*.json`` vector files under *root* in a stable order."""
    yield from sorted(Path(root).glob("*.json"))


# --------------------------------------------------------------------------------------------
# Selecting groups by kernel
# --------------------------------------------------------------------------------------------


def _resolved(prof: KernelProfile, function: str) -> tuple[object, tuple[Any, ...]] | None:
    """What *function* is in *prof*: the implementation and the host traits bound to it."""
    try:
        fn = prof.function(function)
    except UnknownKernelError:  # absent, not modelled, or not in the eras table
        return None
    if isinstance(fn, functools.partial):
        return (fn.func, tuple(sorted(fn.keywords.items())))
    return (fn, ())


def same_algorithm(
    function: str,
    kernel_a: str | KernelProfile | None,
    kernel_b: str | KernelProfile | None,
) -> bool:
    """True when the eras table says *function* computes the same thing in both kernels.

    Two kernels agree when the same implementation is in force with the same bound traits
    (byte order, word size, and for the IPv6 ehash functions the ``__ipv6_addr_jhash`` form),
    so this also follows stable backports (6.1.192 hashes IPv6 addresses as 6.5 does, 6.1.0
    does not). False when the function does not exist, or is not modelled, in either.
    ``None`` means the newest modelled kernel, as in :func:`run_group`.
    """
    a = _resolved(profile(kernel_a), function)
    return a is not None and a == _resolved(profile(kernel_b), function)


def group_applies_to(group: TestGroup, kernel: str | KernelProfile) -> bool:
    """True when *group*'s vectors hold for *kernel*: its function computes there what it
    computed in the group's own kernel (:func:`same_algorithm`).

    The vector files are labelled with the kernels the oracle harness compiled (6.1.192,
    6.12.117); this is how a 6.18 author finds the groups that apply to 6.18. It rests on
    the eras table, which names its evidence per row (``sidkit eras FUNCTION -v``).
    """
    return same_algorithm(group.function, group.kernel, kernel)


def select_groups(
    root: str | Path,
    *,
    functions: Sequence[str] = (),
    kernel: str | KernelProfile | None = None,
) -> list[tuple[VectorFile, TestGroup]]:
    """The ``(file, group)`` pairs of the vector files under *root*, in file order, filtered.

    *functions* keeps the groups of those functions; a name without vectors raises
    :class:`~sidkit.InputValueError` listing the names that have some. *kernel* keeps the
    groups that apply to that kernel (:func:`group_applies_to`). Raises
    :class:`~sidkit.VectorFileError` when *root* holds no vector file.
    """
    paths = list(iter_vector_files(root))
    if not paths:
        raise VectorFileError(f"no vector files (*.json) in {root}", code="no-vectors")
    files = [load_vector_file(p) for p in paths]
    known = {g.function for f in files for g in f.groups}
    unknown = [fn for fn in functions if fn not in known]
    if unknown:
        raise InputValueError(
            f"no vectors for {', '.join(map(repr, unknown))} in {root} "
            f"(functions with vectors: {', '.join(sorted(known))})",
            code="unknown-function",
        )
    prof = None if kernel is None else profile(kernel)
    return [
        (f, g)
        for f in files
        for g in f.groups
        if (not functions or g.function in functions)
        and (prof is None or group_applies_to(g, prof))
    ]


# --------------------------------------------------------------------------------------------
# The running kernel as an oracle
# --------------------------------------------------------------------------------------------

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
    (kernel/bpf/hashtab.c; tests/test_live_kernel_jhash.py measures it on ~94,000 keys).
    A map of ``n = 256`` buckets is filled with one filler key for every bucket but a few
    (sidkit's hash places the fillers), then the vectors' keys are inserted: a vector key
    must come out right after the filler of bucket ``result - 1`` and right before the
    filler of bucket ``result`` (low 8 bits; 16 buckets for 1-byte keys). So every visible
    vector -- initval 0, key of 1..512 bytes -- has its low bits confirmed by the compiled
    kernel, and the fillers' order checks sidkit's hash on the way.

    Only groups whose function the running kernel computes as the group's kernel did
    (:func:`same_algorithm`) are compared; otherwise ``reason`` says why not. Raises
    :class:`~sidkit.KernelOracleError` when bpf(2) refuses (check
    ``sidkit._bpf.bpf_available()`` first).
    """
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
    from sidkit import _bpf  # noqa: PLC0415 (ctypes and the syscall only when asked)

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
    flags = _bpf.BPF_F_ZERO_SEED | _bpf.BPF_F_NO_PREALLOC
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
            with _bpf.Map(_bpf.BPF_MAP_TYPE_HASH, size, 1, n, flags, "sidkit_vec") as m:
                for k in inserted:
                    m.update(k, b"\x00", _bpf.BPF_NOEXIST)
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
