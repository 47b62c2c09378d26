# Reads the conformance vector files (conformance/vectors/*.json, Wycheproof-like) and runs
# them against the library. The files are the project's truth: each test group names the
# oracle that produced it (kernel C, published tables, the live kernel), never sidkit. This
# module only decodes and dispatches; which function a group runs under which kernel era is
# decided by sidkit.kernel, so a vector file also tests the eras table.
"""Load conformance vector files and check sidkit against them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from sidkit._errors import VectorFileError
from sidkit.kernel import profile

__all__ = [
    "Failure",
    "TestCase",
    "TestGroup",
    "VectorFile",
    "decode_args",
    "iter_vector_files",
    "load_vector_file",
    "run_group",
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
        for t in _need(g, "tests", list, where):
            tw = f"{where} test"
            tests.append(
                TestCase(
                    tc_id=_need(t, "tcId", int, tw),
                    args=_need(t, "args", dict, tw),
                    result=_need(t, "result", int, tw),
                    comment=str(t.get("comment", "")),
                    flags=tuple(t.get("flags", ())),
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
    )


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
