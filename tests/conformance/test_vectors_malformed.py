"""A malformed vector file is a VectorFileError, whatever is wrong with it.

``sidkit vectors`` reads files a user points it at (``--dir``). Found by trying: ``source``
without ``name`` (KeyError), a non-list ``files`` (TypeError), a list in ``argTypes``
(unhashable TypeError), JSON nested 100,000 deep (RecursionError), an integer too long to
print, and ESC sequences in a file's strings reaching the terminal through ``vectors list``.
The property mutates the project's own vector files at random places with hostile values and
runs everything the command does with a file: load, verify, emit (JSON and C), list.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit import SidkitError, VectorFileError
from sidkit.cli import main
from sidkit.conformance import load_vector_file, run_group
from sidkit.conformance._emit import emit

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"
SMALL = ["published-jhash.json", "kernel-reciprocal_scale.json", "kernel-ehash.json"]
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_TEXT = "1" + "0" * 5000  # more digits than Python will turn into an int


def _doc(name: str = "published-jhash.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


def _write(tmp: Path, doc: dict[str, Any] | str, name: str = "v.json") -> Path:
    path = tmp / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _group(doc: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = doc["testGroups"][0]
    return group


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _group(d)["source"].pop("name"), "missing 'name'"),
        (lambda d: _group(d)["source"].pop("oracle"), "missing 'oracle'"),
        (lambda d: _group(d)["source"].update(files="a.c"), "'files' must be a list"),
        (lambda d: _group(d)["source"].update(files=[1]), "'files' must be a list"),
        (lambda d: _group(d)["source"].update(oracle="me"), "oracle 'me' is not one of"),
        (lambda d: _group(d)["source"].update(version=3), "'version' must be a string"),
        (lambda d: _group(d).update(source=[]), "'source' must be dict"),
        (lambda d: _group(d)["argTypes"].update(key=["bytes"]), "is not one of"),
        (lambda d: _group(d)["argTypes"].update(key="float"), "is not one of"),
        (lambda d: _group(d).update(function="jhash\x1b[2J"), "is not a function name"),
        (lambda d: _group(d).update(kernel="6.x"), "'kernel' must be a release"),
        (lambda d: _group(d).update(comment=5), "'comment' must be a string"),
        (lambda d: _group(d)["tests"][0].update(tcId=True), "'tcId' must be int"),
        (lambda d: _group(d)["tests"][0].update(tcId=2**40), "'tcId' must be in 1..4294967295"),
        (lambda d: _group(d)["tests"][0].update(result=-1), "'result' must be in 0.."),
        (lambda d: _group(d)["tests"][0].update(result=2**70), "(an int of 71 bits)"),
    ],
)
def test_each_malformed_field_is_named(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(VectorFileError) as info:
        load_vector_file(_write(tmp_path, doc))
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "nested too deeply"),
        ('{"testGroups": ' + DEEP + "}", "nested too deeply"),
        ('{"numberOfTests": ' + HUGE_TEXT + "}", "cannot read vector file"),
        ("{", "cannot read vector file"),
        ("\xff\xfe", "cannot read vector file"),
    ],
)
def test_unreadable_json_is_a_vector_file_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "v.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(VectorFileError, match=message) as info:
        load_vector_file(path)
    assert len(str(info.value)) < 400


def test_vectors_list_shows_no_escape_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc()
    _group(doc)["source"]["name"] = "lookup3\x1b[2J\x1b]0;pwned\x07"
    _group(doc)["source"]["version"] = "v1\r\nfake line"
    _write(tmp_path, doc, name="evil\x1b[31m.json")
    assert main(["vectors", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "lookup3\\x1b[2J" in out and "evil\\x1b[31m.json" in out
    assert main(["vectors", "list", "--json", "--dir", str(tmp_path)]) == 0
    assert "\x1b" not in capsys.readouterr().out


# --- the property ----------------------------------------------------------------------------

_MARK = "@@HOSTILE@@"
_RAW = [DEEP, HUGE_TEXT, "-" + HUGE_TEXT, "1e400", "NaN", "Infinity", '"\\u001b[2J"']
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["bytes", "u32", "ip", "", "??/", "\x1b[0m", "6.12", "published"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, (*path, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _trimmed(name: str) -> dict[str, Any]:
    doc = _doc(name)
    for g in doc["testGroups"]:
        g["tests"] = g["tests"][:2]
    doc["testGroups"] = doc["testGroups"][:2]
    doc["numberOfTests"] = sum(len(g["tests"]) for g in doc["testGroups"])
    return doc


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_mutated_vector_file_loads_or_is_a_vector_file_error(
    tmp_path: Path, data: st.DataObject
) -> None:
    doc = _trimmed(data.draw(st.sampled_from(SMALL), label="file"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(doc)), label="where")
        if data.draw(st.booleans(), label="raw") and path:
            doc = _replace(doc, path, _MARK)
        else:
            doc = _replace(doc, path, data.draw(_VALUES, label="value"))
    text = json.dumps(doc)
    if _MARK in text:
        text = text.replace(f'"{_MARK}"', data.draw(st.sampled_from(_RAW), label="raw text"), 1)
    file = _write(tmp_path, text)
    try:
        vf = load_vector_file(file)
        for group in vf.groups:
            with contextlib.suppress(SidkitError):
                run_group(group, file)
        for fmt in ("json", "c"):
            with contextlib.suppress(SidkitError):
                emit([(vf, g) for g in vf.groups], fmt, command="fuzz")
    except VectorFileError as exc:
        assert "\n" not in str(exc)
    code = main(["vectors", "list", "--dir", str(tmp_path)])
    assert code in (0, 2)


# --- where the output goes -----------------------------------------------------------------


def _sidkit(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "sidkit.cli", *argv],
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        **kw,
    )


def test_emit_into_a_directory_is_one_line(tmp_path: Path) -> None:
    proc = _sidkit("vectors", "emit", "--format", "c", "--function", "jhash", "-o", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == f"sidkit: error: cannot write {tmp_path}: Is a directory\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("argv", [["vectors", "emit", "--format", "c"], ["vectors", "list"]])
def test_stdout_on_a_full_disk_is_one_line(argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = _sidkit(*argv, stdout=full, stderr=subprocess.PIPE)
    assert proc.returncode == 2
    assert proc.stderr == "sidkit: error: cannot write output: No space left on device\n"
