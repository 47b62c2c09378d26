"""The kernel's own C, compiled now, agrees with the committed kernel-*.json vectors.

conformance/kernel/generate.py builds the harness from Debian's linux-source packages
(jhash.h, hash.h, lib/siphash.c and functions extracted verbatim from net/), regenerates
every kernel-c vector into a temporary folder and compares. If the committed files were
edited by hand, or the extraction drifted, this fails; test_vectors.py then checks sidkit
against the same files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import oracle_unavailable

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "conformance" / "kernel" / "generate.py"


@pytest.mark.oracle
def test_committed_vectors_match_kernel_c() -> None:
    proc = subprocess.run(
        [sys.executable, str(GENERATE), "--check", "--no-fetch"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode == 2:
        oracle_unavailable(proc.stderr.strip() or "kernel C harness unavailable")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
