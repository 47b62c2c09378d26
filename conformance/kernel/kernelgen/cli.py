# Strategy: the command line of generate.py, unchanged: build both kernels' harnesses, then
# either print where they are (--build-only), regenerate into a temporary directory and diff
# against the committed files (--check, exit 1 if stale), or write the files. Errors become
# one line on stderr: exit 2 for a missing input, 1 for a harness that failed.
"""The generate.py command line: build, then --build-only, --check or write the vectors."""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .base import KERNELS, ROOT, VECTORS, HarnessError, UnavailableError
from .harness import build
from .inputs import ensure_inputs
from .tree import KernelTree
from .vectors import generate

__all__ = ["DESCRIPTION", "main"]

# argparse's description: generate.py's docstring, which is the tool's one-line summary.
DESCRIPTION = (
    "Kernel-C oracle: compile the kernel's own hash code and write "
    "conformance/vectors/kernel-*.json."
)


def compare(fresh: Path) -> int:
    status = 0
    new = {p.name: p for p in fresh.glob("kernel-*.json")}
    old = {p.name: p for p in VECTORS.glob("kernel-*.json")}
    for name in sorted(set(new) | set(old)):
        if name not in old:
            print(f"missing: conformance/vectors/{name}")
            status = 1
            continue
        if name not in new:
            print(f"stale (no longer generated): conformance/vectors/{name}")
            status = 1
            continue
        a = old[name].read_text().splitlines()
        b = new[name].read_text().splitlines()
        if a != b:
            status = 1
            diff = list(
                difflib.unified_diff(
                    a, b, f"committed/{name}", f"regenerated/{name}", n=1, lineterm=""
                )
            )
            print("\n".join(diff[:40]))
            if len(diff) > 40:
                print(f"... ({len(diff) - 40} more diff lines)")
    if status == 0:
        print(f"conformance/vectors/kernel-*.json up to date ({len(new)} files)")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "--check", action="store_true", help="regenerate into a temporary directory and compare"
    )
    parser.add_argument(
        "--no-fetch",
        action="store_true",
        help="use only kernel source already fetched (exit 2 if it is missing)",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build the harnesses and print '<kernel release> <path>' per 64-bit build",
    )
    args = parser.parse_args(argv)
    try:
        gcc = ensure_inputs(fetch=not args.no_fetch)
        builds = [build(KernelTree(s), gcc) for s in KERNELS]
        if args.build_only:
            for b in builds:
                print(f"{b.tree.upstream} {b.exe}")
            return 0
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                generate(Path(tmp), builds)
                return compare(Path(tmp))
        for path in generate(VECTORS, builds):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    except UnavailableError as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 2
    except HarnessError as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 1
