"""``sidkit vectors``: list, verify (library and live kernel), emit; bare ``vectors`` = verify.

Counts are taken from the vector files themselves; the disagreements are made by corrupting a
copy of a vector file, so every check here can fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from conftest import oracle_unavailable

from sidkit.bpf import _syscall
from sidkit.cli import main
from sidkit.conformance import LIVE_ORACLES, iter_vector_files, load_vector_file
from sidkit.conformance._emit import EMITTABLE

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"
SCHEMA = json.loads((ROOT / "conformance" / "hash_vectors.schema.json").read_text())
FILES = [load_vector_file(p) for p in iter_vector_files(VECTORS)]
TOTAL = sum(f.number_of_tests for f in FILES)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def corrupted_copy(tmp: Path, name: str, pick: int = 0, *, initval0: bool = False) -> int:
    """Copy vector file *name* into *tmp* with one result's low bit flipped; return its tcId."""
    doc = json.loads((VECTORS / name).read_text())
    tests = [
        t
        for g in doc["testGroups"]
        for t in g["tests"]
        if not initval0 or (t["args"].get("initval") == 0 and len(t["args"].get("key", "xx")) > 2)
    ]
    victim = tests[pick]
    victim["result"] ^= 1
    (tmp / name).write_text(json.dumps(doc))
    return int(victim["tcId"])


def test_bare_vectors_is_verify_and_ends_with_the_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "vectors")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == f"{TOTAL} passed, 0 failed"
    assert len(lines) == 1 + sum(len(f.groups) for f in FILES)
    code, out2, _ = run(capsys, "vectors", "verify", "--dir", str(VECTORS))
    assert (code, out2) == (0, out)


def test_dir_before_or_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(VECTORS / "published-jhash.json", tmp_path)
    n = load_vector_file(tmp_path / "published-jhash.json").number_of_tests
    for argv in (
        ["vectors", "--dir", str(tmp_path)],
        ["vectors", "--dir", str(tmp_path), "verify"],
        ["vectors", "verify", "--dir", str(tmp_path)],
    ):
        code, out, _ = run(capsys, *argv)
        assert code == 0, argv
        assert out.splitlines()[-1] == f"{n} passed, 0 failed", argv


def test_a_disagreement_exits_1_and_names_the_vector(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tc_id = corrupted_copy(tmp_path, "kernel-reciprocal_scale.json", pick=7)
    code, out, _ = run(capsys, "vectors", "--dir", str(tmp_path))
    assert code == 1
    assert "1 FAILED" in out and f"tcId {tc_id}: reciprocal_scale" in out
    assert out.splitlines()[-1].endswith("passed, 1 failed")


def test_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "vectors",
        "verify",
        "--dir",
        str(VECTORS),
        "--function",
        "hash_32",
        "--kernel",
        "6.18",
    )
    want = sum(len(g.tests) for f in FILES for g in f.groups if g.function == "hash_32")
    assert code == 0 and out.splitlines()[-1] == f"{want} passed, 0 failed"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["vectors", "verify", "--function", "jhsh"], "no vectors for 'jhsh'"),
        (["vectors", "list", "--kernel", "banana"], "not a kernel version"),
        (["vectors", "emit", "--format", "c", "--function", "toeplitz"], "cannot be emitted"),
        (["vectors", "emit", "--format", "kunit", "--function", "hash_conntrack_raw"], "json"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv, "--dir", str(VECTORS))
    assert code == 2 and out == ""
    assert err.startswith("sidkit: error: ") and err.count("\n") == 1 and message in err


def test_missing_folder_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "vectors", "--dir", str(tmp_path / "nowhere"))
    assert code == 2 and "no vector files" in err


def test_list_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "vectors", "list", "--dir", str(VECTORS))
    assert code == 0
    groups = sum(len(f.groups) for f in FILES)
    assert out.splitlines()[-1] == f"{TOTAL} vectors in {groups} groups of {len(FILES)} files"
    for f in FILES:
        assert f.path.name in out
    code, out, _ = run(capsys, "vectors", "list", "--dir", str(VECTORS), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["number_of_tests"] == TOTAL
    assert [e["file"] for e in doc["files"]] == [str(f.path) for f in FILES]
    listed = [g for e in doc["files"] for g in e["groups"]]
    assert len(listed) == groups
    for g in listed:
        assert ("c" in g["emittable"]) == (g["function"] in EMITTABLE)
        assert g["live_oracle"] == LIVE_ORACLES.get(g["function"])
        assert g["oracle"] in ("kernel-c", "published", "live-kernel")


def test_emit_json_to_a_file_and_c_to_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    argv = ["vectors", "emit", "--dir", str(VECTORS), "--format", "json"]
    code, out, err = run(capsys, *argv, "--function", "jhash", "--limit", "3", "-o", str(target))
    assert code == 0 and out == "" and f"wrote {target}" in err
    doc = json.loads(target.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["generator"] == "sidkit vectors emit --format json --function jhash --limit 3"
    assert {g["function"] for g in doc["testGroups"]} == {"jhash"}
    code, out, _ = run(
        capsys,
        "vectors",
        "emit",
        "--dir",
        str(VECTORS),
        "--format",
        "kunit",
        "--function",
        "hash_32",
        "--kernel",
        "6.18",
    )
    assert code == 0
    assert "KUNIT_CASE(sidkit_hash_32_test)" in out and "Selected for kernel 6.18" in out
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main([*argv, "--limit", "0"])
    assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_live_refused_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where bpf(2) is refused, --live still prints the library results, then says why."""
    monkeypatch.setattr(_syscall, "bpf_available", lambda: "bpf(2) refused (EPERM) for this test")
    code, out, err = run(
        capsys, "vectors", "verify", "--dir", str(VECTORS), "--function", "jhash", "--live"
    )
    assert code == 2
    assert out.splitlines()[-1].endswith("passed, 0 failed")
    assert err == (
        "sidkit: error: --live: the running kernel cannot be asked: "
        "bpf(2) refused (EPERM) for this test\n"
    )


@pytest.fixture
def live_kernel() -> None:
    reason = _syscall.bpf_available()
    if reason is not None:
        oracle_unavailable(f"live kernel: {reason}")


@pytest.mark.oracle
@pytest.mark.usefixtures("live_kernel")
def test_live_kernel_agrees_with_the_jhash_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "vectors", "verify", "--dir", str(VECTORS), "--live")
    assert code == 0, out[-3000:]
    live = [line for line in out.splitlines() if line.startswith("    live kernel")]
    n_live_groups = sum(1 for f in FILES for g in f.groups if g.function in LIVE_ORACLES)
    assert len(live) == n_live_groups
    compared = sum(
        int(line.split(": ")[1].split()[0]) for line in live if "vectors compared" in line
    )
    assert compared >= 60
    # the only groups not compared are other eras' (2.6.37's lookup2 jhash, not 6.18's)
    skipped = [line for line in live if "not compared" in line]
    assert all("is not the one of kernel" in line for line in skipped), skipped
    assert out.splitlines()[-1].endswith("agreed, 0 disagreed") and ": 0 agreed" not in out


@pytest.mark.oracle
@pytest.mark.usefixtures("live_kernel")
def test_live_kernel_catches_a_wrong_low_bit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tc_id = corrupted_copy(tmp_path, "kernel-jhash.json", pick=3, initval0=True)
    code, out, _ = run(capsys, "vectors", "verify", "--dir", str(tmp_path), "--live")
    assert code == 1
    assert f"live: kernel-jhash.json tcId {tc_id}: jhash" in out
    assert "the live kernel's bucket" in out
    assert "1 disagreed" in out.splitlines()[-1]


@pytest.mark.oracle
@pytest.mark.usefixtures("live_kernel")
def test_live_with_no_live_oracle_selected(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["vectors", "verify", "--dir", str(VECTORS), "--function", "hash_32", "--live"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert "no selected function has a live oracle" in out.splitlines()[-1]
