# Strategy: the few facts every part of the generator needs, below all of them: where things
# are (this folder, the fetched kernel trees in _work/, the shims, the vector files), the name
# the generated text is signed with, which kernel series are built, and the two errors -- a
# HarnessError (exit 1) for a build or self-check that went wrong, an UnavailableError (exit 2)
# for a compiler or kernel source that cannot be had. No logic.
"""Paths, kernel series, word masks and the two errors of the kernel-C oracle generator."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "FETCH",
    "GENERATOR",
    "HERE",
    "KERNELS",
    "ROOT",
    "SHIMS",
    "U32",
    "U64",
    "VECTORS",
    "WORK",
    "HarnessError",
    "UnavailableError",
]

# conformance/kernel/: harness_main.c, shims/, fetch-kernel-source.sh and _work/ live here.
HERE = Path(__file__).resolve().parent.parent
ROOT = HERE.parent.parent
WORK = HERE / "_work"
SHIMS = HERE / "shims"
VECTORS = ROOT / "conformance" / "vectors"
FETCH = HERE / "fetch-kernel-source.sh"
GENERATOR = "conformance/kernel/generate.py"
KERNELS = ("6.12", "6.1")

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


class HarnessError(Exception):
    """The harness could not be built or run, or a self-check failed."""


class UnavailableError(Exception):
    """A compiler or the kernel source is missing and cannot be fetched (exit status 2)."""
