"""Every conformance vector file validates against the schema and every vector passes.

The vectors come from oracles sidkit did not write (the kernel's C compiled by
conformance/kernel, published tables); each group's ``source`` says which.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidkit import VectorFileError
from sidkit.conformance import iter_vector_files, load_vector_file, run_group

ROOT = Path(__file__).resolve().parents[2] / "conformance"
FILES = list(iter_vector_files(ROOT / "vectors"))
SCHEMA = json.loads((ROOT / "hash_vectors.schema.json").read_text())


def test_there_are_vector_files() -> None:
    names = {p.name for p in FILES}
    assert "published-jhash.json" in names
    assert "published-toeplitz.json" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_matches_schema(path: Path) -> None:
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_tcids_unique_and_sources_independent(path: Path) -> None:
    vf = load_vector_file(path)
    ids = [t.tc_id for g in vf.groups for t in g.tests]
    assert len(ids) == len(set(ids)), "tcId repeats"
    for g in vf.groups:
        assert "sidkit" not in g.source["name"].lower(), "a vector's oracle may not be sidkit"


def _groups() -> list[tuple[Path, int]]:
    return [(p, i) for p in FILES for i in range(len(load_vector_file(p).groups))]


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("path", "index"),
    _groups(),
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
def test_group_agrees_with_oracle(path: Path, index: int) -> None:
    group = load_vector_file(path).groups[index]
    failures = run_group(group, path)
    assert not failures, "\n".join(str(f) for f in failures[:10])


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    where=st.sampled_from(["test", "tests", "group", "flags", "args"]),
    value=_ANY_JSON,
)
def test_any_json_in_a_vector_file_loads_or_raises_vector_file_error(
    tmp_path_factory: pytest.TempPathFactory, where: str, value: object
) -> None:
    src = ROOT / "vectors" / "published-jhash.json"
    doc = json.loads(src.read_text())
    group = doc["testGroups"][0]
    if where == "test":
        group["tests"][0] = value
    elif where == "tests":
        group["tests"] = value
    elif where == "group":
        doc["testGroups"][0] = value
    else:
        group["tests"][0][where] = value
    path = tmp_path_factory.mktemp("fuzz") / "v.json"
    path.write_text(json.dumps(doc))
    with contextlib.suppress(VectorFileError):
        load_vector_file(path)
