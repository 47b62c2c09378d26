"""README command 1 outside the checkout: the wheel ships the vector files.

``pip install .`` once built a wheel without conformance/vectors, so ``sidkit vectors``
anywhere but the checkout said "no vector files". Here the wheel is built the way pip builds
it for a user, installed into a fresh virtual environment in a temporary folder, and
``sidkit vectors verify`` / ``list`` / ``emit`` run from another temporary folder.

Quick and offline where possible: ``--no-deps`` (the fresh environment borrows the test
environment's dependencies through a ``.pth`` line, which does not run that environment's
editable-install hook, so ``import sidkit`` can only find the wheel's copy). The build
itself uses pip's build isolation, as ``pip install .`` does; pip's cache usually holds the
build backend, and without it and without a network the test says so and skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from sidkit.conformance import iter_vector_files, load_vector_file

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the freshly built sidkit wheel installed; returns its bin/."""
    tmp = tmp_path_factory.mktemp("wheel")
    # A clean copy of what a clone holds for the build: setuptools builds in the source
    # folder's build/, and files left there by an earlier build would ship as well.
    source = tmp / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "_work", "build")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        source.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for folder in ("src", "plugins", "conformance/vectors"):
        shutil.copytree(ROOT / folder, source / folder, symlinks=True, ignore=skip)
    dist = tmp / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if build.returncode != 0:
        if "Could not find a version" in build.stderr or "network" in build.stderr.lower():
            pytest.skip(f"cannot fetch the build backend: {build.stderr.strip()[-300:]}")
        pytest.fail(f"building the wheel failed:\n{build.stderr[-3000:]}")
    (wheel,) = dist.glob("sidkit-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the test environment's site-packages, appended after the venv's own
    (Path(purelib) / "_sidkit_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(bin_dir / "sidkit"), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env=env,
    )


def _expected_total() -> int:
    return sum(load_vector_file(p).number_of_tests for p in iter_vector_files(VECTORS))


@pytest.mark.oracle
def test_vectors_verify_runs_from_another_folder(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import sidkit; print(sidkit.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert not where.startswith(str(ROOT)), f"the checkout's sidkit was imported: {where}"
    proc = _run(installed, tmp_path, "vectors", "verify")
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    total = _expected_total()
    assert proc.stdout.splitlines()[-1] == f"{total} passed, 0 failed"


def test_vectors_list_and_emit_run_from_another_folder(installed: Path, tmp_path: Path) -> None:
    listed = _run(installed, tmp_path, "vectors", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    names = {Path(f["file"]).name for f in doc["files"]}
    assert names == {p.name for p in iter_vector_files(VECTORS)}
    assert all(not f["file"].startswith(str(ROOT)) for f in doc["files"])
    out = tmp_path / "jhash.c"
    emitted = _run(
        installed,
        tmp_path,
        "vectors",
        "emit",
        "--format",
        "c",
        "--function",
        "jhash",
        "-o",
        str(out),
    )
    assert emitted.returncode == 0, emitted.stderr
    assert "sidkit_jhash_vectors[]" in out.read_text()
