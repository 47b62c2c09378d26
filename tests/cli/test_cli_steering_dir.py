# Issue 18 leftover: 'sidkit vectors verify --program' reads steering vectors from
# --steering-dir, else from the vectors folder verify uses (--dir, ./conformance/vectors,
# or the copy installed with sidkit). Run from a folder that is not the checkout, it must
# find the installed copy: the command then fails on the (missing) program, not with "no
# steering vectors in conformance/vectors/steering".
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from sidkit.cli import main
from sidkit.cli._vectors import installed_vectors


def _run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def test_the_installed_copy_holds_steering_vectors() -> None:
    # without this the test below could pass with no vectors at all
    assert sorted((installed_vectors() / "steering").glob("*.json"))


def test_program_verify_outside_the_checkout_finds_the_installed_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.o"
    code, err = _run("vectors", "verify", "--program", str(missing))
    assert code == 2
    assert "no steering vectors" not in err
    assert str(missing) in err  # it got as far as loading the program for the first group
    assert err.count("\n") == 1


def test_an_empty_steering_dir_is_still_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(
        "vectors", "verify", "--program", str(tmp_path / "x.o"), "--steering-dir", str(tmp_path)
    )
    assert code == 2
    assert "no steering vectors" in err
