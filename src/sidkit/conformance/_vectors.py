# Reads the conformance vector files (conformance/vectors/*.json, Wycheproof-like) and runs
# them against the library. The files are the project's truth: each test group names the
# oracle that produced it (kernel C, published tables, the live kernel), never sidkit. This
# module only decodes and dispatches; which function a group runs under which kernel era is
# decided by sidkit.kernel, so a vector file also tests the eras table.
#
# One addition serves ``sidkit vectors``: selecting the groups that hold for a given kernel
# (by the eras table, since no vector file is labelled with every release). Checking vectors
# against the *running* kernel is sidkit.conformance._live's job.
"""Load conformance vector files and check sidkit (and the live kernel) against them."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sidkit._errors import InputTypeError, InputValueError, UnknownKernelError, VectorFileError
from sidkit._validate import show
from sidkit.kernel import KernelProfile, profile

__all__ = [
    "Failure",
    "TestCase",
    "TestGroup",
    "VectorFile",
    "decode_args",
    "group_applies_to",
    "iter_vector_files",
    "load_vector_file",
    "run_group",
    "same_algorithm",
    "select_groups",
]

_INT_TYPES = {"u8": 8, "u16": 16, "u32": 32, "u64": 64}
#: The argTypes a file may declare (conformance/hash_vectors.schema.json).
ARG_TYPES = frozenset({*_INT_TYPES, "int", "bytes", "ip", "u32list", "str"})
#: The oracle kinds a group may name (the schema's enum).
ORACLES = frozenset({"kernel-c", "published", "live-kernel"})
_FUNCTION = re.compile(r"[a-z_][a-z0-9_]*")
_KERNEL = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")
#: tcId is a u32 in the emitted C tables; a result is at most a u64 (every function's range).
_MAX_TC_ID = (1 << 32) - 1
_MAX_RESULT = (1 << 64) - 1


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
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VectorFileError(f"{where}: {key!r} must be {kind.__name__}")
    return value


def _need_int(obj: Mapping[str, Any], key: str, low: int, high: int, where: str) -> int:
    value: int = _need(obj, key, int, where)
    if not low <= value <= high:
        raise VectorFileError(f"{where}: {key!r} must be in {low}..{high}, got {show(value)}")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    """An optional string member ("" when absent); anything else is an error, not str()."""
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise VectorFileError(f"{where}: {key!r} must be a string")
    return value


def _source(g: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A group's ``source``, checked as the schema says: every reader may then index it."""
    src: dict[str, Any] = _need(g, "source", dict, where)
    where = f"{where} source"
    oracle = _need(src, "oracle", str, where)
    if oracle not in ORACLES:
        raise VectorFileError(
            f"{where}: oracle {show(oracle)} is not one of {', '.join(sorted(ORACLES))}"
        )
    if not _need(src, "name", str, where):
        raise VectorFileError(f"{where}: 'name' must not be empty")
    for key in ("version", "url"):
        if key in src and not isinstance(src[key], str):
            raise VectorFileError(f"{where}: {key!r} must be a string")
    if "files" in src:
        _str_list(src["files"], f"{where}: 'files'")
    unknown = set(src) - {"oracle", "name", "version", "url", "files"}
    if unknown:
        raise VectorFileError(f"{where}: unknown member(s) {', '.join(map(show, sorted(unknown)))}")
    return src


def _arg_types(g: Mapping[str, Any], where: str) -> dict[str, str]:
    types: dict[str, Any] = _need(g, "argTypes", dict, where)
    for name, kind in types.items():
        if not isinstance(kind, str) or kind not in ARG_TYPES:
            raise VectorFileError(
                f"{where}: argTypes[{show(name)}] = {show(kind)} is not one of "
                f"{', '.join(sorted(ARG_TYPES))}"
            )
    return types


def load_vector_file(path: str | Path) -> VectorFile:
    """Parse a vector file, checking the structure the runner relies on.

    Full validation against ``conformance/hash_vectors.schema.json`` is done by the test
    suite with jsonschema; this keeps the runtime free of that dependency while still
    turning a malformed file into a :class:`~sidkit.VectorFileError` that names the place.
    """
    if not isinstance(path, str | Path):
        raise InputTypeError(f"path must be a str or Path, not {type(path).__name__}")
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except RecursionError:
        # json's scanner recurses per nesting level: 100,000 '[' is not a vector file
        raise VectorFileError(f"{p}: cannot read vector file: JSON nested too deeply") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # ValueError: JSONDecodeError, and an integer of more than 4300 digits
        message = " ".join(str(exc).split())[:200]
        raise VectorFileError(f"{p}: cannot read vector file: {message}") from None
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
                    tc_id=_need_int(t, "tcId", 1, _MAX_TC_ID, tw),
                    args=_need(t, "args", dict, tw),
                    result=_need_int(t, "result", 0, _MAX_RESULT, tw),
                    comment=_text(t, "comment", tw),
                    flags=tuple(flags),
                )
            )
        kernel = g.get("kernel")
        if kernel is not None and not (isinstance(kernel, str) and _KERNEL.fullmatch(kernel)):
            raise VectorFileError(
                f"{where}: 'kernel' must be a release like '6.12.117' or null, got {show(kernel)}"
            )
        function = _need(g, "function", str, where)
        if not _FUNCTION.fullmatch(function):
            raise VectorFileError(f"{where}: 'function' {show(function)} is not a function name")
        groups.append(
            TestGroup(
                function=function,
                kernel=kernel,
                source=_source(g, where),
                arg_types=_arg_types(g, where),
                tests=tuple(tests),
                comment=_text(g, "comment", where),
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
    if not isinstance(arg_types, Mapping) or not isinstance(args, Mapping):
        raise VectorFileError("argTypes and args must both be objects")
    out: dict[str, Any] = {}
    for name, value in args.items():
        kind = arg_types.get(name)
        if kind is None:
            raise VectorFileError(f"argument {show(name)} has no entry in argTypes")
        if not isinstance(kind, str) or kind not in ARG_TYPES:
            raise VectorFileError(f"argument {show(name)}: unknown argType {show(kind)}")
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
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise VectorFileError(f"argument {name!r}: u32list must be a list of integers")
            out[name] = list(value)
        elif kind in ("ip", "str"):
            if not isinstance(value, str):
                raise VectorFileError(f"argument {name!r}: {kind} must be a string")
            out[name] = value
    return out


def _check_group(group: object) -> None:
    if not isinstance(group, TestGroup):
        raise InputTypeError(f"expected a conformance TestGroup, not {type(group).__name__}")


def run_group(group: TestGroup, path: Path) -> list[Failure]:
    """Run every vector of *group*; return the disagreements (empty when all agree).

    The callable is the one the eras table puts in force for the group's kernel
    (``sidkit.kernel.profile(group.kernel).function(group.function)``).
    """
    _check_group(group)
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
    if not isinstance(root, str | Path):
        raise InputTypeError(f"root must be a str or Path, not {type(root).__name__}")
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
    _check_group(group)
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
    if isinstance(functions, str | bytes) or not isinstance(functions, Sequence):
        raise InputTypeError(f"functions must be a list of names, not {show(functions)}")
    if not all(isinstance(fn, str) for fn in functions):
        raise InputTypeError("functions must be a list of names (str)")
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
