#!/usr/bin/env python3
# Strategy: for each Debian kernel source package (linux-source-6.1, linux-source-6.12) build a
# small userspace program from the kernel's *own text*: include/linux/jhash.h, hash.h and
# siphash.h are included as they are, lib/siphash.c is compiled as it is, and the functions
# that live inside big .c files (inet_ehashfn, udp_ehashfn, inet6_ehashfn, udp6_ehashfn,
# hash_conntrack_raw, __hash_conntrack, nf_ct_zone_id, __flow_hash_from_keys, ...) together
# with the structs and macros they need are copied verbatim out of the source files at build
# time, each behind a ``#line`` directive that names the file it came from. Only the
# environment is replaced, by the headers in ``shims/``: the types, byte order, ``struct net``
# (its ``hash_mix``) and ``net_get_random_once`` / ``get_random_once``, which fill a secret
# from the test case instead of from the RNG.
#
# Inputs are pseudo-random from fixed seeds, identical for both kernels, plus edge cases. The
# program reads one case per line and prints one result per line (see ``harness_main.c``).
#
# A second, smaller build of each tree uses ``gcc -m32`` (i386, so ``BITS_PER_LONG == 32``:
# lib/siphash.c's HalfSipHash branch, hash_64_generic's 32-bit branch); its hsiphash and
# hash_64 groups carry ``bits_per_long = 32`` in their args. It needs gcc-multilib.
#
# ``--build-only`` builds and prints where the harnesses are
# (tests/conntrack/test_conntrack_kernel.py drives them directly). Each build also makes
# ``reuseport`` beside ``harness``: struct sock_reuseport and the group code of
# net/core/sock_reuseport.c around reuseport_main.c, which
# tests/reuseport/test_reuseport_kernel.py drives with scripts of socket operations; and
# ``udp_lookup``: that group code plus the UDP socket lookup of net/ipv4/udp.c and
# net/ipv6/udp.c around udp_lookup_main.c, which tests/reuseport/test_udp_lookup_kernel.py
# drives with the state of sidkit.reuseport.Port scenarios.
#
# What it refuses to do: rewrite a kernel function. If a function cannot be copied out of the
# source, the build fails and says which one. Nor does it import sidkit: the oracle stays
# independent of the library it checks. The work is done by the sibling package kernelgen/
# (tree extraction, harness build, cases per function family, self-checks, vector files, the
# command line); this file is the entry point and names what tests load from it.
#
#     python3 conformance/kernel/generate.py           # (re)write conformance/vectors/kernel-*.json
#     python3 conformance/kernel/generate.py --check   # exit 1 and show differences if stale
#
# Exit status 2 (with a one-line message) when no compiler or no kernel source can be had.
"""Kernel-C oracle: compile the kernel's own hash code, write conformance/vectors/kernel-*.json."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is already sys.path[0]; loaded by file (tests do), it is not.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from kernelgen import CFLAGS, CFLAGS_M32, SHIMS, KernelTree, main  # noqa: E402

__all__ = ["CFLAGS", "CFLAGS_M32", "SHIMS", "KernelTree", "main"]

if __name__ == "__main__":
    sys.exit(main())
