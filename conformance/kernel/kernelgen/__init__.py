# Strategy: the kernel-C oracle generator as a package, imported only by generate.py (the
# script people run) and by tests that drive the built harnesses. It deliberately does not
# import sidkit: the oracle stays independent of the library it checks. Imports point one way:
# cli -> vectors -> checks -> specs -> cases -> base; harness -> snippets -> tree -> base. This
# face names what those callers use.
"""The kernel-C oracle generator behind conformance/kernel/generate.py."""

from __future__ import annotations

from .base import GENERATOR, SHIMS, VECTORS, WORK, HarnessError, UnavailableError
from .cli import main
from .harness import (
    CFLAGS,
    CFLAGS_M32,
    Build,
    build,
    build32,
    build_reuseport,
    build_udp_lookup,
    run,
    run_script,
)
from .tree import KernelTree, Snippet

__all__ = [
    "CFLAGS",
    "CFLAGS_M32",
    "GENERATOR",
    "SHIMS",
    "VECTORS",
    "WORK",
    "Build",
    "HarnessError",
    "KernelTree",
    "Snippet",
    "UnavailableError",
    "build",
    "build32",
    "build_reuseport",
    "build_udp_lookup",
    "main",
    "run",
    "run_script",
]
