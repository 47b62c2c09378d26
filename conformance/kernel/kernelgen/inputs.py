# Strategy: everything the build needs from the machine, checked before any build starts: the
# kernel source (fetched by fetch-kernel-source.sh unless --no-fetch), a C compiler, and a gcc
# -m32 that can build and run a 32-bit program. A missing input is an UnavailableError (exit
# 2 with one line), never a half-built harness.
"""Make sure the kernel source, gcc and a working gcc -m32 are there (or say why not)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .base import FETCH, KERNELS, WORK, UnavailableError
from .harness import CFLAGS_M32

__all__ = ["NEWEST_PATH", "ensure_inputs"]

# The file most recently added to fetch-kernel-source.sh's list: a tree without it was
# extracted by an older script (the script itself re-extracts when its list changes).
NEWEST_PATH = "net/core/sock_reuseport.c"


def _check_m32(gcc: str) -> None:
    """Raise UnavailableError unless gcc can build and run a 32-bit (-m32) program."""
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "m32.c", Path(tmp) / "m32"
        src.write_text("int main(void) { return sizeof(long) == 4 ? 0 : 1; }\n")
        proc = subprocess.run(
            [gcc, *CFLAGS_M32, str(src), "-o", str(exe)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise UnavailableError(
                "gcc -m32 cannot build and run a 32-bit program (the BITS_PER_LONG == 32 "
                "build needs Debian's gcc-multilib, which fetch-kernel-source.sh installs)"
            )


def _check_current() -> None:
    """Raise UnavailableError if a tree was extracted before NEWEST_PATH was on the list."""
    stale = [s for s in KERNELS if not (WORK / f"linux-source-{s}" / NEWEST_PATH).is_file()]
    if stale:
        raise UnavailableError(
            f"linux-source-{stale[0]} was extracted before {NEWEST_PATH} was needed: run "
            "`bash conformance/kernel/fetch-kernel-source.sh` again (no download needed)"
        )


def ensure_inputs(fetch: bool = True) -> str:
    ready = all(
        (WORK / f"linux-source-{s}.version").is_file()
        and (WORK / f"linux-source-{s}" / ".extracted-paths").is_file()
        for s in KERNELS
    )
    if not fetch:
        if not ready:
            raise UnavailableError(
                "kernel source not fetched: run `bash conformance/kernel/fetch-kernel-source.sh`"
                " as root first"
            )
        _check_current()
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise UnavailableError("no C compiler (gcc) found")
        _check_m32(gcc)
        return gcc
    proc = subprocess.run(
        ["bash", str(FETCH), *KERNELS], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 and not ready:
        last = (proc.stderr.strip().splitlines() or ["fetch failed"])[-1]
        raise UnavailableError(f"kernel source unavailable and cannot be fetched: {last}")
    _check_current()
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise UnavailableError("no C compiler (gcc) found and none could be installed")
    _check_m32(gcc)
    return gcc
