#!/usr/bin/env python3
"""Kernel-C oracle: compile the kernel's own hash code and write conformance/vectors/kernel-*.json.

Strategy. For each Debian kernel source package (linux-source-6.1, linux-source-6.12) this script
builds a small userspace program from the kernel's *own text*: include/linux/jhash.h, hash.h and
siphash.h are included as they are, lib/siphash.c is compiled as it is, and the functions that
live inside big .c files (inet_ehashfn, udp_ehashfn, inet6_ehashfn, udp6_ehashfn,
hash_conntrack_raw, __hash_conntrack, nf_ct_zone_id, __flow_hash_from_keys, ...) together with
the structs and macros they need are copied verbatim out of the source files at build time, each
behind a ``#line`` directive that names the file it came from. Only the environment is replaced,
by the headers in ``shims/``: the types, byte order, ``struct net`` (its ``hash_mix``) and
``net_get_random_once`` / ``get_random_once``, which fill a secret from the test case instead of
from the RNG.

Inputs are pseudo-random from fixed seeds, identical for both kernels, plus edge cases. The
program reads one case per line and prints one result per line (see ``harness_main.c``).

A second, smaller build of each tree uses ``gcc -m32`` (i386, so ``BITS_PER_LONG == 32``:
lib/siphash.c's HalfSipHash branch, hash_64_generic's 32-bit branch); its hsiphash and hash_64
groups carry ``bits_per_long = 32`` in their args. It needs gcc-multilib.

``--build-only`` builds and prints where the harnesses are (tests/conntrack/test_conntrack_kernel.py
drives them directly).

What it refuses to do: rewrite a kernel function. If a function cannot be copied out of the
source, the build fails and says which one.

    python3 conformance/kernel/generate.py           # (re)write conformance/vectors/kernel-*.json
    python3 conformance/kernel/generate.py --check   # exit 1 and show differences if stale

Exit status 2 (with a one-line message) when no compiler or no kernel source can be had.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = HERE / "_work"
SHIMS = HERE / "shims"
VECTORS = ROOT / "conformance" / "vectors"
FETCH = HERE / "fetch-kernel-source.sh"
GENERATOR = "conformance/kernel/generate.py"
KERNELS = ("6.12", "6.1")

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF

MS_RSS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)


class HarnessError(Exception):
    """The harness could not be built or run, or a self-check failed."""


class UnavailableError(Exception):
    """A compiler or the kernel source is missing and cannot be fetched (exit status 2)."""


# --------------------------------------------------------------------------------------------
# Extraction of kernel text
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    path: str  # relative to the top of the kernel tree
    line: int  # 1-based line of the first copied line
    text: str

    def as_c(self) -> str:
        return f'#line {self.line} "{self.path}"\n{self.text}\n'


def _match_close(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing text[start] (== open_ch), skipping comments and literals."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                break
            i = end + 2
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise HarnessError(f"unbalanced {open_ch}{close_ch} from offset {start}")


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _lineno(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _declaration_start(text: str, pos: int) -> int:
    """Walk back from the line holding pos over the lines that belong to the same declaration."""
    start = _line_start(text, pos)
    while start > 0:
        prev_start = _line_start(text, start - 1)
        prev = text[prev_start : start - 1].rstrip()
        if (
            not prev
            or prev.endswith((";", "}", "*/", "{"))
            or prev.lstrip().startswith(("#", "//", "*"))
        ):
            break
        start = prev_start
    return start


class KernelTree:
    """Read access to one extracted kernel tree, with a record of the files used."""

    def __init__(self, series: str) -> None:
        self.series = series
        self.root = WORK / f"linux-source-{series}"
        self.version = (WORK / f"linux-source-{series}.version").read_text().strip()
        self._cache: dict[str, str] = {}

    @property
    def upstream(self) -> str:
        """The kernel release the Debian package carries (``6.1.192-2`` -> ``6.1.192``).

        Vector groups are labelled with it, not with the series: a longterm branch carries
        stable backports (6.1.192 hashes IPv6 addresses as mainline 6.5 does), and
        sidkit.kernel resolves eras down to the stable release.
        """
        return self.version.split("-")[0].split("+")[0]

    def has(self, path: str) -> bool:
        return (self.root / path).is_file()

    def read(self, path: str) -> str:
        if path not in self._cache:
            self._cache[path] = (self.root / path).read_text(encoding="utf-8", errors="replace")
        return self._cache[path]

    def function(self, path: str, name: str) -> Snippet:
        text = self.read(path)
        for m in re.finditer(rf"\b{re.escape(name)}\s*\(", text):
            line_start = _line_start(text, m.start())
            if text[line_start] in " \t":  # definitions start in column 0 (kernel style)
                continue
            close = _match_close(text, m.end() - 1, "(", ")")
            j = close + 1
            while j < len(text) and text[j] in " \t\n":
                j += 1
            if j >= len(text) or text[j] != "{":
                continue  # a prototype or a macro use
            end = _match_close(text, j, "{", "}")
            start = _declaration_start(text, m.start())
            return Snippet(path, _lineno(text, start), text[start : _line_end(text, end)])
        raise HarnessError(f"linux-source-{self.series}: no definition of {name}() in {path}")

    def aggregate(self, path: str, kind_name: str) -> Snippet:
        """A top-level ``struct X {...};``, ``union X {...};`` or ``enum X {...};``."""
        text = self.read(path)
        m = re.search(rf"^{re.escape(kind_name)}\s*\{{", text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no {kind_name} in {path}")
        end = _match_close(text, m.end() - 1, "{", "}")
        semi = text.index(";", end)
        return Snippet(path, _lineno(text, m.start()), text[m.start() : _line_end(text, semi)])

    def define(self, path: str, name: str) -> Snippet:
        text = self.read(path)
        m = re.search(rf"^#define\s+{re.escape(name)}\b", text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no #define {name} in {path}")
        end = _line_end(text, m.start())
        while text[end - 1] == "\\":
            end = _line_end(text, end + 1)
        return Snippet(path, _lineno(text, m.start()), text[m.start() : end])

    def line(self, path: str, pattern: str) -> Snippet:
        text = self.read(path)
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            raise HarnessError(f"linux-source-{self.series}: no /{pattern}/ in {path}")
        start = _line_start(text, m.start())
        return Snippet(path, _lineno(text, start), text[start : _line_end(text, m.start())])


# Files whose text the vectors of each function depend on (cited in source.files).
JHASH_FILES = ["include/linux/jhash.h", "include/linux/unaligned/packed_struct.h"]
SIPHASH_FILES = ["include/linux/siphash.h", "lib/siphash.c"]
NETNS_HASH = "include/net/netns/hash.h"


@dataclass
class Build:
    tree: KernelTree
    exe: Path
    toeplitz_exe: Path | None
    has_prandom: bool
    exe32: Path  # the same kernel text built with gcc -m32 (BITS_PER_LONG == 32), no net/
    layout: dict[str, str] = field(default_factory=dict)


ZONES_COMMON = "include/linux/netfilter/nf_conntrack_zones_common.h"
ZONES_H = "include/net/netfilter/nf_conntrack_zones.h"
ZONE_DEFINES = (
    "NF_CT_DEFAULT_ZONE_ID",
    "NF_CT_ZONE_DIR_ORIG",
    "NF_CT_ZONE_DIR_REPL",
    "NF_CT_DEFAULT_ZONE_DIR",
    "NF_CT_FLAG_MARK",
)


def _net_snippets(t: KernelTree) -> list[Snippet]:
    ipv6h = "include/net/ipv6.h"
    flow_h = "include/net/flow_dissector.h"
    flow_c = "net/core/flow_dissector.c"
    nf_h = "include/net/netfilter/nf_conntrack_tuple.h"
    out = [
        t.define("include/linux/socket.h", "AF_INET"),
        t.define("include/linux/socket.h", "AF_INET6"),
        t.define("include/uapi/linux/if_ether.h", "ETH_P_IP"),
        t.define("include/uapi/linux/if_ether.h", "ETH_P_IPV6"),
        t.aggregate("include/uapi/linux/in.h", "struct in_addr"),
        t.aggregate("include/uapi/linux/in6.h", "struct in6_addr"),
        t.function(NETNS_HASH, "net_hash_mix"),
        t.function("include/net/inet_sock.h", "__inet_ehashfn"),
        t.function("include/net/inet6_hashtables.h", "__inet6_ehashfn"),
        t.function(ipv6h, "ipv6_addr_any"),
        t.function(ipv6h, "ipv6_addr_v4mapped"),
        t.function(ipv6h, "__ipv6_addr_jhash"),
        t.function("include/net/ip.h", "ipv4_portaddr_hash"),
        t.function(ipv6h, "ipv6_portaddr_hash"),
        t.function("net/ipv4/inet_hashtables.c", "inet_ehashfn"),
        t.function("net/ipv4/udp.c", "udp_ehashfn"),
        t.function("net/ipv6/inet6_hashtables.c", "inet6_ehashfn"),
        t.function("net/ipv6/udp.c", "udp6_ehashfn"),
        t.aggregate("include/uapi/linux/netfilter.h", "union nf_inet_addr"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "union nf_conntrack_man_proto",
        ),
        t.aggregate(nf_h, "struct nf_conntrack_man"),
        t.aggregate(nf_h, "struct nf_conntrack_tuple"),
        t.line("net/netfilter/nf_conntrack_core.c", r"^static .*\bnf_conntrack_hash_rnd;"),
        t.function("net/netfilter/nf_conntrack_core.c", "hash_conntrack_raw"),
        t.function("net/netfilter/nf_conntrack_core.c", "__hash_conntrack"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h", "enum ip_conntrack_dir"
        ),
        *(t.define(ZONES_COMMON, name) for name in ZONE_DEFINES),
        t.aggregate(ZONES_COMMON, "struct nf_conntrack_zone"),
        # Debian's 6.12.117 kernel config (config-6.12.117+deb12-*) and the test machine's
        # own kernel set CONFIG_NF_CONNTRACK_ZONES=y; without it nf_ct_zone_id() always
        # returns NF_CT_DEFAULT_ZONE_ID.
        Snippet(GENERATOR, 1, "#define CONFIG_NF_CONNTRACK_ZONES 1"),
        t.function(ZONES_H, "nf_ct_zone_matches_dir"),
        t.function(ZONES_H, "nf_ct_zone_id"),
        t.aggregate(flow_h, "enum flow_dissector_key_id"),
    ]
    for name in (
        "control",
        "basic",
        "tags",
        "vlan",
        "keyid",
        "ipv4_addrs",
        "ipv6_addrs",
        "tipc",
        "addrs",
        "ports",
        "icmp",
    ):
        out.append(t.aggregate(flow_h, f"struct flow_dissector_key_{name}"))
    out += [
        t.aggregate(flow_h, "struct flow_keys"),
        t.define(flow_h, "FLOW_KEYS_HASH_OFFSET"),
        t.function(flow_h, "flow_keys_have_l4"),
        t.function(flow_c, "flow_keys_hash_start"),
        t.function(flow_c, "flow_keys_hash_length"),
        t.function(flow_c, "__flow_hash_consistentify"),
        t.function(flow_c, "__flow_hash_from_keys"),
    ]
    return out


# Stand-ins for the 6.12 net_hotdata fields (include/net/hotdata.h #defines these names to
# net_hotdata.*.secret). In 6.1 the same names are function-local statics that shadow these.
HOTDATA_SECRETS = (
    "inet_ehash_secret",
    "udp_ehash_secret",
    "inet6_ehash_secret",
    "tcp_ipv6_hash_secret",
    "ipv6_hash_secret",
    "udp6_ehash_secret",
    "udp_ipv6_hash_secret",
)

CFLAGS = [
    "-std=gnu11",
    "-O2",
    "-Wall",
    "-Wno-unused-function",
    "-Werror=implicit-function-declaration",
    "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
    "-fno-strict-aliasing",
    "-fno-strict-overflow",
    "-DCONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS=1",
    "-D__UAPI_DEF_IN6_ADDR_ALT=1",
]


# The 32-bit build: i386 userspace (ILP32), so that the shims define BITS_PER_LONG as 32 and
# hsiphash_key_t (unsigned long key[2]) is 8 bytes, as on a 32-bit kernel. Needs gcc-multilib.
CFLAGS_M32 = ["-m32"]


def _compile(cmd: list[str], log: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise HarnessError(f"compilation failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")


def build32(tree: KernelTree, gcc: str) -> Path:
    """Build the word-size-dependent part of the harness for BITS_PER_LONG == 32.

    Only jhash.h, hash.h, siphash.h and lib/siphash.c (plus reciprocal_scale, which the driver
    calls unconditionally): the networking functions are not built, their structs would be laid
    out for i386 and sidkit models the 64-bit kernels' layout.
    """
    out = WORK / f"build-{tree.series}-32"
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        f"/* Generated by {GENERATOR} from linux-source-{tree.series} {tree.version} "
        "for gcc -m32 (BITS_PER_LONG == 32). */",
        "#include <linux/types.h>",
        "#include <linux/kernel.h>",
        "#include <linux/jhash.h>",
        "#include <linux/hash.h>",
        "#include <linux/siphash.h>",
        "#include <harness_env.h>",
        "#if BITS_PER_LONG != 32",
        '#error "build-32 must be compiled with -m32"',
        "#endif",
        tree.function("include/linux/math.h", "reciprocal_scale").as_c(),
        '#line 1 "harness_main.c"',
        f'#include "{HERE / "harness_main.c"}"',
    ]
    src = out / "harness.c"
    src.write_text("\n".join(parts) + "\n")
    inc = ["-I", str(SHIMS), "-I", str(tree.root / "include")]
    obj = out / "siphash.o"
    _compile(
        [gcc, *CFLAGS_M32, *CFLAGS, *inc, "-c", str(tree.root / "lib/siphash.c"), "-o", str(obj)],
        out / "siphash.log",
    )
    exe = out / "harness"
    _compile(
        [gcc, *CFLAGS_M32, *CFLAGS, *inc, str(src), str(obj), "-o", str(exe)], out / "harness.log"
    )
    abi = run(exe, ["abi"])[0]
    want = "bits_per_long=32 sizeof_long=4 sizeof_hsiphash_key_t=8"
    if abi != want:
        raise HarnessError(f"{tree.series}: the -m32 harness reports {abi!r}, expected {want!r}")
    return exe


def build(tree: KernelTree, gcc: str) -> Build:
    out = WORK / f"build-{tree.series}"
    out.mkdir(parents=True, exist_ok=True)
    has_prandom = "next_pseudo_random32" in tree.read("include/linux/prandom.h")
    parts = [
        f"/* Generated by {GENERATOR} from linux-source-{tree.series} {tree.version}. */",
        "#include <linux/types.h>",
        "#include <linux/kernel.h>",
        "#include <linux/jhash.h>",
        "#include <linux/hash.h>",
        "#include <linux/siphash.h>",
        "#include <harness_env.h>",
        "#define HARNESS_NET 1",
    ]
    parts.append(tree.function("include/linux/math.h", "reciprocal_scale").as_c())
    if has_prandom:
        parts.append("#define HARNESS_HAVE_NEXT_PSEUDO_RANDOM32 1")
        parts.append(tree.function("include/linux/prandom.h", "next_pseudo_random32").as_c())
    if "__nfct_hash_offsetend" in tree.read("include/net/netfilter/nf_conntrack_tuple.h"):
        parts.append("#define HARNESS_HAVE_NFCT_HASH_OFFSETEND 1")
    parts += [f"__attribute__((unused)) static u32 {name};" for name in HOTDATA_SECRETS]
    parts += [s.as_c() for s in _net_snippets(tree)]
    parts.append('#line 1 "harness_main.c"')
    parts.append(f'#include "{HERE / "harness_main.c"}"')
    src = out / "harness.c"
    src.write_text("\n".join(parts) + "\n")
    inc = ["-I", str(SHIMS), "-I", str(tree.root / "include")]
    obj = out / "siphash.o"
    _compile(
        [gcc, *CFLAGS, *inc, "-c", str(tree.root / "lib/siphash.c"), "-o", str(obj)],
        out / "siphash.log",
    )
    exe = out / "harness"
    _compile([gcc, *CFLAGS, *inc, str(src), str(obj), "-o", str(exe)], out / "harness.log")

    toeplitz_exe: Path | None = None
    tpath = "tools/testing/selftests/net/toeplitz.c"
    if tree.has(tpath):
        tparts = [
            f"/* Generated by {GENERATOR} from linux-source-{tree.series} {tree.version}. */",
            "#include <stdint.h>",
            "#include <stdio.h>",
            "#include <stdlib.h>",
            "#include <string.h>",
            "#include <arpa/inet.h>",
            "#include <netinet/in.h>",
            tree.define(tpath, "TOEPLITZ_KEY_MAX_LEN").as_c(),
            tree.define(tpath, "FOUR_TUPLE_MAX_LEN").as_c(),
            tree.function(tpath, "toeplitz").as_c(),
            '#line 1 "toeplitz_main"',
            TOEPLITZ_MAIN,
        ]
        tsrc = out / "toeplitz.c"
        tsrc.write_text("\n".join(tparts) + "\n")
        toeplitz_exe = out / "toeplitz"
        _compile(
            [gcc, "-std=gnu11", "-O2", "-Wall", str(tsrc), "-o", str(toeplitz_exe)],
            out / "toeplitz.log",
        )
    abi = run(exe, ["abi"])[0]
    want = "bits_per_long=64 sizeof_long=8 sizeof_hsiphash_key_t=16"
    if abi != want:
        raise HarnessError(f"{tree.series}: the harness reports {abi!r}, expected {want!r}")
    b = Build(tree, exe, toeplitz_exe, has_prandom, build32(tree, gcc))
    layout_line = run(exe, ["layout"])[0]
    for item in layout_line.split():
        key, _, value = item.partition("=")
        b.layout[key] = value
    return b


TOEPLITZ_MAIN = r"""
/* Driver: "<data hex or -> <key hex>" per line. The data is zero-padded to FOUR_TUPLE_MAX_LEN
 * and the key to TOEPLITZ_KEY_MAX_LEN, as in the selftest (its four_tuple and toeplitz_key). */
static void hex(const char *t, unsigned char *out, size_t cap)
{
	size_t n = strlen(t), i;

	if (strcmp(t, "-") == 0)
		return;
	if (n % 2 || n / 2 > cap)
		exit(3);
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(t + 2 * i, "%2x", &b) != 1)
			exit(3);
		out[i] = (unsigned char)b;
	}
}

int main(void)
{
	char line[1024];

	while (fgets(line, sizeof(line), stdin)) {
		unsigned char four_tuple[FOUR_TUPLE_MAX_LEN] = {0};
		unsigned char key[TOEPLITZ_KEY_MAX_LEN] = {0};
		char *d = strtok(line, " \n"), *k = strtok(NULL, " \n");

		if (!d || !k)
			exit(3);
		hex(d, four_tuple, sizeof(four_tuple));
		hex(k, key, sizeof(key));
		printf("%u\n", (unsigned int)toeplitz(four_tuple, key));
	}
	return 0;
}
"""


def run(exe: Path, lines: Sequence[str]) -> list[str]:
    proc = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise HarnessError(f"{exe} exited {proc.returncode}: {proc.stderr.strip()}")
    out = proc.stdout.splitlines()
    if len(out) != len(lines):
        raise HarnessError(f"{exe}: {len(lines)} cases in, {len(out)} results out")
    return out


# --------------------------------------------------------------------------------------------
# Test cases
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    comment: str
    flags: list[str]
    args: dict[str, Any]
    line: str  # harness command line


@dataclass
class FunctionSpec:
    name: str
    algorithm: str  # output file kernel-<algorithm>.json
    arg_types: dict[str, str]
    files: list[str]
    cases: Callable[[random.Random], list[Case]]
    toeplitz: bool = False
    needs_prandom: bool = False


def _hex(b: bytes) -> str:
    return b.hex() if b else "-"


def _ip_bytes(addr: str) -> bytes:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_pton(family, addr)


def _v4(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET, rng.randbytes(4))


def _v6(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET6, rng.randbytes(16))


def _u32(rng: random.Random) -> int:
    return rng.getrandbits(32)


def _u64(rng: random.Random) -> int:
    return rng.getrandbits(64)


EDGE32 = (0, 1, 0x7FFFFFFF, 0x80000000, U32)
EDGE64 = (0, 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, U64)
PORTS = (0, 1, 53, 443, 1024, 32768, 65535)
V4_EDGE = ("0.0.0.0", "255.255.255.255", "127.0.0.1", "10.0.0.1", "192.0.2.1")
V6_EDGE = (
    "::",
    "::1",
    "::ffff:0.0.0.0",
    "::ffff:192.0.2.1",
    "::ffff:255.255.255.255",
    "fe80::1",
    "2001:db8::1",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


def _flags_for_ip(addr: str) -> list[str]:
    b = _ip_bytes(addr)
    flags: list[str] = []
    if not any(b):
        flags.append("AnyAddress")
    if len(b) == 16 and b[:12] == b"\0" * 10 + b"\xff\xff":
        flags.append("V4Mapped")
    return flags


def _cases_jhash(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(key: bytes, iv: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(comment, flags, {"key": key.hex(), "initval": iv}, f"jhash {_hex(key)} {iv}")
        )

    add(b"", 0, "empty key, initval 0", ["EmptyInput", "EdgeValue"])
    add(b"", U32, "empty key, initval 0xffffffff", ["EmptyInput", "EdgeValue"])
    add(b"abc", 0, "ASCII 'abc'", [])
    add(b"abcdefghijklm", 0, "ASCII, 13 bytes", [])
    for n in (12, 13, 24, 25):
        add(b"\xff" * n, U32, f"{n} bytes of 0xff, initval 0xffffffff", ["EdgeValue"])
        add(b"\0" * n, 0, f"{n} zero bytes, initval 0", ["EdgeValue"])
    for n in range(41):
        add(rng.randbytes(n), _u32(rng), f"random key of length {n}", ["Random"])
    for n in range(41):
        iv = rng.choice((0, U32))
        add(rng.randbytes(n), iv, f"random key of length {n}, initval {iv:#x}", ["EdgeValue"])
    for _ in range(40):
        n = rng.randrange(41, 300)
        add(rng.randbytes(n), _u32(rng), f"random key of length {n}", ["Random", "LongInput"])
    return cases


def _cases_jhash2(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(words: list[int], iv: int, comment: str, flags: list[str]) -> None:
        line = " ".join(["jhash2", str(len(words)), *map(str, words), str(iv)])
        cases.append(Case(comment, flags, {"words": words, "initval": iv}, line))

    add([], 0, "no words, initval 0", ["EmptyInput", "EdgeValue"])
    add([], U32, "no words, initval 0xffffffff", ["EmptyInput", "EdgeValue"])
    add([1, 2, 3], 0, "[1, 2, 3]", [])
    add([1, 2, 3, 4], 0, "[1, 2, 3, 4]", [])
    for n in (3, 4, 6, 7):
        add([U32] * n, U32, f"{n} words of 0xffffffff", ["EdgeValue"])
    for n in range(33):
        add([_u32(rng) for _ in range(n)], _u32(rng), f"{n} random words", ["Random"])
    for n in range(17):
        iv = rng.choice((0, U32))
        add([_u32(rng) for _ in range(n)], iv, f"{n} random words, initval {iv:#x}", ["EdgeValue"])
    for _ in range(40):
        n = rng.randrange(33, 80)
        add([_u32(rng) for _ in range(n)], _u32(rng), f"{n} random words", ["Random"])
    return cases


def _cases_words(name: str, count: int) -> Callable[[random.Random], list[Case]]:
    keys = ["a", "b", "c"][:count]

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(words: list[int], iv: int, comment: str, flags: list[str]) -> None:
            args: dict[str, Any] = dict(zip(keys, words, strict=True))
            args["initval"] = iv
            line = " ".join([name, *map(str, words), str(iv)])
            cases.append(Case(comment, flags, args, line))

        for e in EDGE32:
            for iv in (0, U32):
                add([e] * count, iv, f"all words {e:#x}, initval {iv:#x}", ["EdgeValue"])
        for i in range(count):
            words = [0] * count
            words[i] = 1
            add(words, 0, f"word {i} is 1, others 0", ["EdgeValue"])
        add(list(range(1, count + 1)), 0, "words 1..n, initval 0", [])
        for _ in range(120):
            add([_u32(rng) for _ in range(count)], _u32(rng), "random", ["Random"])
        return cases

    return make


def _cases_hash_32(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_32 {val} {bits}"))

    for bits in (1, 16, 31, 32):
        for v in EDGE32:
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 33):
        add(_u32(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(_u32(rng), rng.randint(1, 32), "random", ["Random"])
    return cases


def _cases_hash_64(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_64 {val} {bits}"))

    for bits in (1, 32, 33, 63, 64):
        for v in EDGE64:
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 65):
        add(_u64(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(_u64(rng), rng.randint(1, 64), "random", ["Random"])
    return cases


def _cases_hash_64_32(rng: random.Random) -> list[Case]:
    """hash_64 on BITS_PER_LONG == 32: hash_32() of a fold, so bits is 1..32 (the C shifts by
    32 - bits; larger bits would be undefined behaviour there)."""
    cases: list[Case] = []

    def add(val: int, bits: int, comment: str, flags: list[str]) -> None:
        cases.append(Case(comment, flags, {"val": val, "bits": bits}, f"hash_64 {val} {bits}"))

    for bits in (1, 16, 31, 32):
        for v in (*EDGE64, U32, 1 << 32):
            add(v, bits, f"val {v:#x}, {bits} bits", ["EdgeValue"])
    for bits in range(1, 33):
        add(_u64(rng), bits, f"random val, {bits} bits", ["Random"])
    for _ in range(100):
        add(_u64(rng), rng.randint(1, 32), "random", ["Random"])
    return cases


def _cases_reciprocal_scale(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(val: int, ep_ro: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment,
                flags,
                {"val": val, "ep_ro": ep_ro},
                f"reciprocal_scale {val} {ep_ro}",
            )
        )

    for v in EDGE32:
        for ep in EDGE32:
            add(v, ep, f"val {v:#x}, ep_ro {ep:#x}", ["EdgeValue"])
    for _ in range(60):
        add(_u32(rng), rng.randint(1, 256), "random val, small ep_ro", ["Random"])
    for _ in range(60):
        add(_u32(rng), _u32(rng), "random", ["Random"])
    return cases


def _cases_prandom(rng: random.Random) -> list[Case]:
    cases = [
        Case(f"seed {v:#x}", ["EdgeValue"], {"seed": v}, f"next_pseudo_random32 {v}")
        for v in EDGE32
    ]
    for _ in range(100):
        v = _u32(rng)
        cases.append(Case("random", ["Random"], {"seed": v}, f"next_pseudo_random32 {v}"))
    return cases


def _cases_siphash_bytes(
    name: str, max_len: int, key_len: int = 16
) -> Callable[[random.Random], list[Case]]:
    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(data: bytes, key: bytes, comment: str, flags: list[str]) -> None:
            cases.append(
                Case(
                    comment,
                    flags,
                    {"data": data.hex(), "key": key.hex()},
                    f"{name} {_hex(data)} {key.hex()}",
                )
            )

        add(b"", bytes(key_len), "empty data, zero key", ["EmptyInput", "EdgeValue"])
        add(b"", b"\xff" * key_len, "empty data, all-ones key", ["EmptyInput", "EdgeValue"])
        add(b"\xff" * 15, b"\xff" * key_len, "15 bytes 0xff, all-ones key", ["EdgeValue"])
        for n in range(max_len + 1):
            add(rng.randbytes(n), rng.randbytes(key_len), f"random data of length {n}", ["Random"])
        for _ in range(40):
            n = rng.randrange(max_len + 1, 300)
            add(
                rng.randbytes(n),
                rng.randbytes(key_len),
                f"random data of length {n}",
                ["Random", "LongInput"],
            )
        return cases

    return make


def _cases_siphash_words(name: str, count: int, bits: int) -> Callable[[random.Random], list[Case]]:
    keys = ["first", "second", "third", "forth"][:count]
    top = (1 << bits) - 1

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(words: list[int], key: bytes, comment: str, flags: list[str]) -> None:
            args: dict[str, Any] = dict(zip(keys, words, strict=True))
            args["key"] = key.hex()
            line = " ".join([name, *map(str, words), key.hex()])
            cases.append(Case(comment, flags, args, line))

        for e in (0, 1, top >> 1, top):
            for key in (bytes(16), b"\xff" * 16):
                add([e] * count, key, f"all words {e:#x}, key {key[:1].hex()}..", ["EdgeValue"])
        for _ in range(120):
            add(
                [rng.getrandbits(bits) for _ in range(count)],
                rng.randbytes(16),
                "random",
                ["Random"],
            )
        return cases

    return make


def _cases_ehash(name: str, v6: bool) -> Callable[[random.Random], list[Case]]:
    edges = V6_EDGE if v6 else V4_EDGE
    rand_ip = _v6 if v6 else _v4

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(
            la: str, lp: int, fa: str, fp: int, iv: int, sec2: int, comment: str, flags: list[str]
        ) -> None:
            args: dict[str, Any] = {
                "laddr": la,
                "lport": lp,
                "faddr": fa,
                "fport": fp,
                "initval": iv,
            }
            line = f"{name} {_ip_bytes(la).hex()} {lp} {_ip_bytes(fa).hex()} {fp} {iv}"
            if v6:
                args["ipv6_hash_secret"] = sec2
                line += f" {sec2}"
            line += " 0"  # net_hash_mix: the kernel adds it to the secret; see the header
            fl = sorted(set(flags + _flags_for_ip(la) + _flags_for_ip(fa)))
            cases.append(Case(comment, fl, args, line))

        for a in edges:
            for p in (0, 65535):
                add(a, p, a, p, 0, 0, f"laddr = faddr = {a}, ports {p}", ["EdgeValue"])
        for iv in (0, U32):
            add(edges[0], 0, edges[1], 65535, iv, iv, f"initval {iv:#x}", ["EdgeValue"])
        for _ in range(30):
            add(
                rng.choice(edges),
                rng.choice(PORTS),
                rng.choice(edges),
                rng.choice(PORTS),
                _u32(rng),
                _u32(rng),
                "edge addresses and ports, random secrets",
                ["EdgeValue"],
            )
        for _ in range(120):
            add(
                rand_ip(rng),
                rng.randrange(65536),
                rand_ip(rng),
                rng.randrange(65536),
                _u32(rng),
                _u32(rng),
                "random",
                ["Random"],
            )
        return cases

    return make


def _cases_ipv6_addr_jhash(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(a: str, iv: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment,
                sorted(set(flags + _flags_for_ip(a))),
                {"addr": a, "initval": iv},
                f"ipv6_addr_jhash {_ip_bytes(a).hex()} {iv}",
            )
        )

    for a in V6_EDGE:
        for iv in (0, U32):
            add(a, iv, f"{a}, initval {iv:#x}", ["EdgeValue"])
    for _ in range(120):
        add(_v6(rng), _u32(rng), "random", ["Random"])
    return cases


def _cases_portaddr(name: str, v6: bool) -> Callable[[random.Random], list[Case]]:
    edges = V6_EDGE if v6 else V4_EDGE
    rand_ip = _v6 if v6 else _v4

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(mix: int, a: str, port: int, comment: str, flags: list[str]) -> None:
            cases.append(
                Case(
                    comment,
                    sorted(set(flags + _flags_for_ip(a))),
                    {"net_mix": mix, "addr": a, "port": port},
                    f"{name} {mix} {_ip_bytes(a).hex()} {port}",
                )
            )

        for a in edges:
            for mix in (0, U32):
                for p in (0, 65535):
                    add(mix, a, p, f"{a} port {p}, net_mix {mix:#x}", ["EdgeValue"])
        for _ in range(120):
            add(_u32(rng), rand_ip(rng), rng.randrange(65536), "random", ["Random"])
        return cases

    return make


def _pair(rng: random.Random, edge: bool) -> tuple[str, str]:
    if rng.random() < 0.5:
        if edge:
            return rng.choice(V4_EDGE), rng.choice(V4_EDGE)
        return _v4(rng), _v4(rng)
    if edge:
        return rng.choice(V6_EDGE), rng.choice(V6_EDGE)
    return _v6(rng), _v6(rng)


def _family(addr: str) -> int:
    return 10 if ":" in addr else 2


def _cases_conntrack(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(
        src: str,
        sp: int,
        dst: str,
        dp: int,
        proto: int,
        zone: int,
        mix: int,
        secret: bytes,
        comment: str,
        flags: list[str],
    ) -> None:
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "protonum": proto,
            "zone_id": zone,
            "net_mix": mix,
            "secret": secret.hex(),
        }
        line = (
            f"hash_conntrack_raw {_family(src)} {_ip_bytes(src).hex()} {sp} "
            f"{_ip_bytes(dst).hex()} {dp} {proto} {zone} {mix} {secret.hex()} 0"
        )
        cases.append(
            Case(comment, sorted(set(flags + _flags_for_ip(src) + _flags_for_ip(dst))), args, line)
        )

    for src, dst in (
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("255.255.255.255", "10.0.0.1"),
        ("::ffff:192.0.2.1", "2001:db8::1"),
    ):
        for proto in (6, 17):
            for p in (0, 65535):
                add(
                    src,
                    p,
                    dst,
                    p,
                    proto,
                    0,
                    0,
                    bytes(16),
                    f"{src} -> {dst}, ports {p}",
                    ["EdgeValue"],
                )
    for zone in (0, 1, 65535):
        for mix in (0, U32):
            add(
                "192.0.2.1",
                1234,
                "198.51.100.7",
                443,
                17,
                zone,
                mix,
                b"\xff" * 16,
                f"zone {zone}, net_mix {mix:#x}",
                ["EdgeValue"],
            )
    for _ in range(140):
        src, dst = _pair(rng, edge=False)
        zone = rng.choice((0, 0, rng.randrange(65536)))
        add(
            src,
            rng.randrange(65536),
            dst,
            rng.randrange(65536),
            rng.choice((6, 17)),
            zone,
            _u32(rng),
            rng.randbytes(16),
            "random",
            ["Random"],
        )
    return cases


ZONE_CONFIGS = (
    # (id, dir, flags): the default zone, a zone in both directions, directional zones
    # (iptables -j CT --zone-orig / --zone-reply), the largest id, and the mark flag (which
    # only changes where the id comes from, not nf_ct_zone_id).
    (0, 3, 0),
    (7, 3, 0),
    (7, 1, 0),
    (7, 2, 0),
    (65535, 1, 0),
    (65535, 2, 0),
    (300, 3, 1),
    (300, 1, 1),
)
DIR_NAMES = {1: "ORIG", 2: "REPL", 3: "ORIG|REPL"}


def nf_ct_zone_id_expected(zone_id: int, zone_dir: int, direction: int) -> int:
    """What include/net/netfilter/nf_conntrack_zones.h's nf_ct_zone_id() is read to return;
    self_checks() compares it with the compiled function before any vector is written."""
    return zone_id if zone_dir & (1 << direction) else 0


def _cases_conntrack_zones(rng: random.Random) -> list[Case]:
    """hash_conntrack_raw of a node of each direction in directional zones: the zone id in
    the args is the one the kernel's nf_ct_zone_id(zone, dir) gives (checked), the hash is
    computed by the harness from the zone struct and the direction."""
    cases: list[Case] = []

    def add(
        src: str,
        sp: int,
        dst: str,
        dp: int,
        zone: tuple[int, int, int],
        direction: int,
        mix: int,
        secret: bytes,
        what: str,
        flags: list[str],
    ) -> None:
        zid, zdir, zflags = zone
        derived = nf_ct_zone_id_expected(zid, zdir, direction)
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "protonum": 17,
            "zone_id": derived,
            "net_mix": mix,
            "secret": secret.hex(),
        }
        line = (
            f"conntrack_zone {_family(src)} {_ip_bytes(src).hex()} {sp} "
            f"{_ip_bytes(dst).hex()} {dp} 17 {zid} {zdir} {zflags} {direction} {mix} "
            f"{secret.hex()}"
        )
        dname = "REPLY" if direction else "ORIGINAL"
        comment = (
            f"{what}; zone id {zid} dir {DIR_NAMES[zdir]} flags {zflags}, {dname} node: "
            f"nf_ct_zone_id = {derived}"
        )
        extra = ["DirectionalZone"] if zdir != 3 else []
        if direction:
            extra.append("ReplyNode")
        cases.append(
            Case(
                comment,
                sorted(set(flags + extra + _flags_for_ip(src) + _flags_for_ip(dst))),
                args,
                line,
            )
        )

    for zone in ZONE_CONFIGS:
        for direction in (0, 1):
            for v6 in (False, True):
                src, dst = (_v6(rng), _v6(rng)) if v6 else (_v4(rng), _v4(rng))
                sp, dp = rng.randrange(1024, 65536), rng.choice((53, 443, 4433, 51820))
                mix, secret = _u32(rng), rng.randbytes(16)
                if direction:
                    # the reply node of a flow src:sp -> dst:dp hashes the inverted tuple
                    add(
                        dst,
                        dp,
                        src,
                        sp,
                        zone,
                        direction,
                        mix,
                        secret,
                        f"reply tuple of {src} -> {dst}",
                        ["Random"],
                    )
                else:
                    add(
                        src,
                        sp,
                        dst,
                        dp,
                        zone,
                        direction,
                        mix,
                        secret,
                        f"original tuple {src} -> {dst}",
                        ["Random"],
                    )
    # a NAT'd flow: client 192.0.2.10:40000 -> VIP 198.51.100.1:443, DNAT to 10.0.0.5:8443,
    # SNAT to 203.0.113.1:61000; its reply tuple is 10.0.0.5:8443 -> 203.0.113.1:61000
    for zone in ((7, 1, 0), (7, 2, 0), (7, 3, 0)):
        for direction, (a, ap, b, bp, what) in enumerate(
            (
                ("192.0.2.10", 40000, "198.51.100.1", 443, "original tuple of a NAT'd flow"),
                ("10.0.0.5", 8443, "203.0.113.1", 61000, "reply tuple after SNAT+DNAT"),
            )
        ):
            add(a, ap, b, bp, zone, direction, 0x1234ABCD, bytes(range(16)), what, ["EdgeValue"])
    return cases


def _cases_flow(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(
        src: str, sp: int, dst: str, dp: int, proto: int, key: bytes, comment: str, flags: list[str]
    ) -> None:
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "ip_proto": proto,
            "key": key.hex(),
        }
        line = (
            f"flow_hash_from_keys {_family(src)} {_ip_bytes(src).hex()} {sp} "
            f"{_ip_bytes(dst).hex()} {dp} {proto} {key.hex()}"
        )
        cases.append(
            Case(comment, sorted(set(flags + _flags_for_ip(src) + _flags_for_ip(dst))), args, line)
        )

    for src, dst in (
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::2"),
        ("2001:db8::2", "2001:db8::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.2"),
    ):
        for proto in (6, 17):
            for sp, dp in ((0, 0), (65535, 0), (0, 65535), (1000, 2000), (2000, 1000)):
                add(src, sp, dst, dp, proto, bytes(16), f"{src}:{sp} -> {dst}:{dp}", ["EdgeValue"])
    for _ in range(140):
        src, dst = _pair(rng, edge=False)
        add(
            src,
            rng.randrange(65536),
            dst,
            rng.randrange(65536),
            rng.choice((6, 17)),
            rng.randbytes(16),
            "random",
            ["Random"],
        )
    return cases


def _cases_toeplitz(rng: random.Random) -> list[Case]:
    cases: list[Case] = []
    rand_key = rng.randbytes(52)

    def add(data: bytes, key: bytes, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment, flags, {"data": data.hex(), "key": key.hex()}, f"{_hex(data)} {key.hex()}"
            )
        )

    for key, kname in ((MS_RSS_KEY, "Microsoft 40-byte key"), (rand_key, "random 52-byte key")):
        add(b"", key, f"empty input, {kname}", ["EmptyInput", "EdgeValue"])
        add(b"\xff" * 36, key, f"36 bytes of 0xff, {kname}", ["EdgeValue"])
        for _ in range(40):
            src, dst = _v4(rng), _v4(rng)
            data = (
                _ip_bytes(src)
                + _ip_bytes(dst)
                + struct.pack("!HH", rng.randrange(65536), rng.randrange(65536))
            )
            add(data, key, f"IPv4 4-tuple {src} -> {dst}, {kname}", ["Random"])
        for _ in range(40):
            src, dst = _v6(rng), _v6(rng)
            data = (
                _ip_bytes(src)
                + _ip_bytes(dst)
                + struct.pack("!HH", rng.randrange(65536), rng.randrange(65536))
            )
            add(data, key, f"IPv6 4-tuple, {kname}", ["Random"])
        for n in range(1, 37, 5):
            add(rng.randbytes(n), key, f"random input of length {n}, {kname}", ["Random"])
    return cases


T_BYTES = "bytes"
SPECS: list[FunctionSpec] = [
    FunctionSpec("jhash", "jhash", {"key": T_BYTES, "initval": "u32"}, JHASH_FILES, _cases_jhash),
    FunctionSpec(
        "jhash2", "jhash", {"words": "u32list", "initval": "u32"}, JHASH_FILES, _cases_jhash2
    ),
    FunctionSpec(
        "jhash_1word",
        "jhash",
        {"a": "u32", "initval": "u32"},
        JHASH_FILES,
        _cases_words("jhash_1word", 1),
    ),
    FunctionSpec(
        "jhash_2words",
        "jhash",
        {"a": "u32", "b": "u32", "initval": "u32"},
        JHASH_FILES,
        _cases_words("jhash_2words", 2),
    ),
    FunctionSpec(
        "jhash_3words",
        "jhash",
        {"a": "u32", "b": "u32", "c": "u32", "initval": "u32"},
        JHASH_FILES,
        _cases_words("jhash_3words", 3),
    ),
    FunctionSpec(
        "hash_32", "hash", {"val": "u32", "bits": "int"}, ["include/linux/hash.h"], _cases_hash_32
    ),
    FunctionSpec(
        "hash_64", "hash", {"val": "u64", "bits": "int"}, ["include/linux/hash.h"], _cases_hash_64
    ),
    FunctionSpec(
        "reciprocal_scale",
        "reciprocal_scale",
        {"val": "u32", "ep_ro": "u32"},
        ["include/linux/math.h"],
        _cases_reciprocal_scale,
    ),
    FunctionSpec(
        "next_pseudo_random32",
        "prandom",
        {"seed": "u32"},
        ["include/linux/prandom.h"],
        _cases_prandom,
        needs_prandom=True,
    ),
    FunctionSpec(
        "siphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_bytes("siphash", 64),
    ),
    FunctionSpec(
        "siphash_1u64",
        "siphash",
        {"first": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_1u64", 1, 64),
    ),
    FunctionSpec(
        "siphash_2u64",
        "siphash",
        {"first": "u64", "second": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_2u64", 2, 64),
    ),
    FunctionSpec(
        "siphash_3u64",
        "siphash",
        {"first": "u64", "second": "u64", "third": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_3u64", 3, 64),
    ),
    FunctionSpec(
        "siphash_4u64",
        "siphash",
        {"first": "u64", "second": "u64", "third": "u64", "forth": "u64", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_4u64", 4, 64),
    ),
    FunctionSpec(
        "siphash_1u32",
        "siphash",
        {"first": "u32", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_1u32", 1, 32),
    ),
    FunctionSpec(
        "siphash_3u32",
        "siphash",
        {"first": "u32", "second": "u32", "third": "u32", "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_words("siphash_3u32", 3, 32),
    ),
    FunctionSpec(
        "hsiphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES},
        SIPHASH_FILES,
        _cases_siphash_bytes("hsiphash", 64),
    ),
    FunctionSpec(
        "inet_ehashfn",
        "ehash",
        {"laddr": "ip", "lport": "u16", "faddr": "ip", "fport": "u16", "initval": "u32"},
        [
            "net/ipv4/inet_hashtables.c",
            "include/net/inet_sock.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        _cases_ehash("inet_ehashfn", v6=False),
    ),
    FunctionSpec(
        "udp_ehashfn",
        "ehash",
        {"laddr": "ip", "lport": "u16", "faddr": "ip", "fport": "u16", "initval": "u32"},
        ["net/ipv4/udp.c", "include/net/inet_sock.h", NETNS_HASH, "include/linux/jhash.h"],
        _cases_ehash("udp_ehashfn", v6=False),
    ),
    FunctionSpec(
        "inet6_ehashfn",
        "ehash",
        {
            "laddr": "ip",
            "lport": "u16",
            "faddr": "ip",
            "fport": "u16",
            "initval": "u32",
            "ipv6_hash_secret": "u32",
        },
        [
            "net/ipv6/inet6_hashtables.c",
            "include/net/inet6_hashtables.h",
            "include/net/ipv6.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        _cases_ehash("inet6_ehashfn", v6=True),
    ),
    FunctionSpec(
        "udp6_ehashfn",
        "ehash",
        {
            "laddr": "ip",
            "lport": "u16",
            "faddr": "ip",
            "fport": "u16",
            "initval": "u32",
            "ipv6_hash_secret": "u32",
        },
        [
            "net/ipv6/udp.c",
            "include/net/inet6_hashtables.h",
            "include/net/ipv6.h",
            NETNS_HASH,
            "include/linux/jhash.h",
        ],
        _cases_ehash("udp6_ehashfn", v6=True),
    ),
    FunctionSpec(
        "ipv6_addr_jhash",
        "ehash",
        {"addr": "ip", "initval": "u32"},
        ["include/net/ipv6.h", "include/linux/jhash.h"],
        _cases_ipv6_addr_jhash,
    ),
    FunctionSpec(
        "ipv4_portaddr_hash",
        "portaddr_hash",
        {"net_mix": "u32", "addr": "ip", "port": "u16"},
        ["include/net/ip.h", NETNS_HASH, "include/linux/jhash.h"],
        _cases_portaddr("ipv4_portaddr_hash", v6=False),
    ),
    FunctionSpec(
        "ipv6_portaddr_hash",
        "portaddr_hash",
        {"net_mix": "u32", "addr": "ip", "port": "u16"},
        ["include/net/ipv6.h", NETNS_HASH, "include/linux/jhash.h"],
        _cases_portaddr("ipv6_portaddr_hash", v6=True),
    ),
    FunctionSpec(
        "hash_conntrack_raw",
        "conntrack",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "protonum": "u8",
            "zone_id": "u16",
            "net_mix": "u32",
            "secret": T_BYTES,
        },
        [
            "net/netfilter/nf_conntrack_core.c",
            "include/net/netfilter/nf_conntrack_tuple.h",
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "include/uapi/linux/netfilter.h",
            NETNS_HASH,
            *SIPHASH_FILES,
        ],
        _cases_conntrack,
    ),
    FunctionSpec(
        "hash_conntrack_raw",
        "conntrack-zones",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "protonum": "u8",
            "zone_id": "u16",
            "net_mix": "u32",
            "secret": T_BYTES,
        },
        [
            "net/netfilter/nf_conntrack_core.c",
            ZONES_H,
            ZONES_COMMON,
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "include/net/netfilter/nf_conntrack_tuple.h",
            "include/uapi/linux/netfilter.h",
            NETNS_HASH,
            *SIPHASH_FILES,
        ],
        _cases_conntrack_zones,
    ),
    FunctionSpec(
        "flow_hash_from_keys",
        "flow_dissector",
        {
            "src": "ip",
            "sport": "u16",
            "dst": "ip",
            "dport": "u16",
            "ip_proto": "u8",
            "key": T_BYTES,
        },
        ["net/core/flow_dissector.c", "include/net/flow_dissector.h", *SIPHASH_FILES],
        _cases_flow,
    ),
    FunctionSpec(
        "toeplitz",
        "toeplitz",
        {"data": T_BYTES, "key": T_BYTES},
        ["tools/testing/selftests/net/toeplitz.c"],
        _cases_toeplitz,
        toeplitz=True,
    ),
]


def _bits_per_long_32(
    make: Callable[[random.Random], list[Case]],
) -> Callable[[random.Random], list[Case]]:
    """The cases of *make* with ``bits_per_long = 32`` added to their args (the runner passes
    it to sidkit, overriding the 64 the kernel profile binds)."""

    def wrapped(rng: random.Random) -> list[Case]:
        return [
            Case(c.comment, c.flags, {**c.args, "bits_per_long": 32}, c.line) for c in make(rng)
        ]

    return wrapped


# Functions whose result depends on BITS_PER_LONG, run on the -m32 build (Build.exe32). Their
# groups carry "bits_per_long": 32 in every test's args and follow the 64-bit groups.
SPECS_32: list[FunctionSpec] = [
    FunctionSpec(
        "hash_64",
        "hash",
        {"val": "u64", "bits": "int", "bits_per_long": "int"},
        ["include/linux/hash.h"],
        _bits_per_long_32(_cases_hash_64_32),
    ),
    FunctionSpec(
        "hsiphash",
        "siphash",
        {"data": T_BYTES, "key": T_BYTES, "bits_per_long": "int"},
        SIPHASH_FILES,
        _bits_per_long_32(_cases_siphash_bytes("hsiphash", 64, key_len=8)),
    ),
]
# Functions whose C does not depend on BITS_PER_LONG: the -m32 build must agree with the 64-bit
# one on all their cases (a check of the harness, nothing is written from the -m32 results).
WORD_SIZE_FREE = (
    "jhash",
    "jhash2",
    "jhash_1word",
    "jhash_2words",
    "jhash_3words",
    "hash_32",
    "reciprocal_scale",
    "siphash",
    "siphash_1u64",
    "siphash_2u64",
    "siphash_3u64",
    "siphash_4u64",
    "siphash_1u32",
    "siphash_3u32",
)
BITS32_COMMENT = (
    "BITS_PER_LONG == 32: the same kernel text compiled with gcc -m32 (i386, ILP32); "
    "hsiphash_key_t is unsigned long key[2] = 8 bytes"
)

FLAG_NOTES = {
    "EdgeValue": "an edge value: zero, all-ones, boundary ports/lengths or special addresses",
    "EmptyInput": "empty byte string or word list",
    "Random": "pseudo-random input from a fixed seed",
    "LongInput": "input longer than the exhaustive length range",
    "AnyAddress": "an all-zero address (0.0.0.0 or ::)",
    "V4Mapped": "an IPv4-mapped IPv6 address (::ffff:a.b.c.d)",
    "SelfTest": "vector from the kernel's SipHash self-test (the reference implementation's)",
    "DirectionalZone": "a conntrack zone that applies in one direction only (zone->dir)",
    "ReplyNode": "the REPLY node's tuple, hashed with nf_ct_zone_id(zone, IP_CT_DIR_REPLY)",
}


# --------------------------------------------------------------------------------------------
# Published SipHash vectors carried by the kernel self-test
# --------------------------------------------------------------------------------------------


def _c_array(text: str, name: str) -> list[int]:
    m = re.search(rf"\b{re.escape(name)}\[\d+\]\s*=\s*\{{(.*?)\}};", text, re.DOTALL)
    if not m:
        raise HarnessError(f"no array {name}")
    return [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1))]


def _c_key(text: str, name: str, fmt: str = "<2Q") -> bytes:
    """The memory of a key initialised as ``{{ w0, w1 }}``: two u64 (``<2Q``) or, for the
    32-bit hsiphash_key_t, two 32-bit unsigned longs (``<2I``), little-endian."""
    m = re.search(rf"\b{re.escape(name)}\s*=\s*\{{\{{([^}}]*)\}}\}};", text)
    if not m:
        raise HarnessError(f"no key {name}")
    words = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1))]
    return struct.pack(fmt, *words)


def selftest_path(tree: KernelTree) -> str:
    for p in ("lib/tests/siphash_kunit.c", "lib/siphash_kunit.c", "lib/test_siphash.c"):
        if tree.has(p):
            return p
    raise HarnessError(f"linux-source-{tree.series}: no SipHash self-test file")


@dataclass
class SelfTest:
    path: str
    key_siphash: bytes
    key_hsiphash: bytes
    siphash: list[int]
    hsiphash: list[int]
    words: list[tuple[str, list[int], str, int]]  # (function, words, which vector, index)
    key_hsiphash32: bytes  # the #else (BITS_PER_LONG == 32) branch: HalfSipHash-1-3
    hsiphash32: list[int]


def parse_selftest(tree: KernelTree) -> SelfTest:
    path = selftest_path(tree)
    text = tree.read(path)
    # The 64-bit branch (#if BITS_PER_LONG == 64) comes first in the file, then the 32-bit one.
    m64 = re.search(r"#if BITS_PER_LONG == 64(.*?)#else(.*?)#endif", text, re.DOTALL)
    if not m64:
        raise HarnessError(f"{path}: no BITS_PER_LONG == 64 / #else branches")
    words = []
    for m in re.finditer(
        r"\b(h?siphash_\d+u\d+)\(([^;]*?)&test_key_(h?siphash)\)\s*(?:!=|,)\s*"
        r"test_vectors_(h?siphash)\[(\d+)\]",
        text,
    ):
        func, argtext, keyname, vec, idx = m.groups()
        if keyname != vec:
            raise HarnessError(f"{path}: {func} checked against another key's vectors")
        nums = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", argtext)]
        words.append((func, nums, vec, int(idx)))
    st = SelfTest(
        path,
        _c_key(text, "test_key_siphash"),
        _c_key(m64.group(1), "test_key_hsiphash"),
        _c_array(text, "test_vectors_siphash"),
        _c_array(m64.group(1), "test_vectors_hsiphash"),
        words,
        _c_key(m64.group(2), "test_key_hsiphash", "<2I"),
        _c_array(m64.group(2), "test_vectors_hsiphash"),
    )
    if len(st.siphash) != 64 or len(st.hsiphash) != 64 or len(st.hsiphash32) != 64 or not st.words:
        raise HarnessError(f"{path}: unexpected self-test shape")
    return st


# --------------------------------------------------------------------------------------------
# Self-checks of the harness (abort on failure; nothing here is written to the vectors)
# --------------------------------------------------------------------------------------------


def self_checks(b: Build, st: SelfTest, rng: random.Random) -> list[str]:
    """Return notes on what was verified; raise HarnessError on any mismatch."""
    known = [
        ("jhash - 0", 0xDEADBEEF),
        (f"jhash {b'abc'.hex()} 0", 0x0E397631),
        (f"jhash {b'abcdefghijklm'.hex()} 0", 0x928128F9),
        ("jhash_3words 1 2 3 0", 0xA46158F5),
        ("jhash2 3 1 2 3 0", 0xA46158F5),
        ("jhash2 4 1 2 3 4 0", 0x66491246),
    ]
    got = run(b.exe, [c for c, _ in known])
    for (cmd, expected), res in zip(known, got, strict=True):
        if int(res) != expected:
            raise HarnessError(f"{b.tree.series}: {cmd} = {res}, expected {expected:#x}")

    lines = [f"siphash {_hex(bytes(range(i)))} {st.key_siphash.hex()}" for i in range(64)]
    lines += [f"hsiphash {_hex(bytes(range(i)))} {st.key_hsiphash.hex()}" for i in range(64)]
    spec_names = {spec.name for spec in SPECS}
    want: list[int] = st.siphash + st.hsiphash
    for func, nums, vec, idx in st.words:
        if func not in spec_names:
            continue
        key = st.key_siphash if vec == "siphash" else st.key_hsiphash
        lines.append(" ".join([func, *map(str, nums), key.hex()]))
        want.append((st.siphash if vec == "siphash" else st.hsiphash)[idx])
    got = run(b.exe, lines)
    for line, res, w in zip(lines, got, want, strict=True):
        if int(res) != w:
            raise HarnessError(f"{b.tree.series}: self-test vector mismatch: {line} = {res}")

    # The -m32 build: the 32-bit branch's HSipHash self-test vectors (HalfSipHash-1-3, 8-byte
    # key), the same jhash known answers and SipHash vectors, and agreement with the 64-bit
    # build on every vector case of the functions that do not depend on BITS_PER_LONG.
    lines32 = [c for c, _ in known]
    want32: list[int] = [v for _, v in known]
    lines32 += [f"siphash {_hex(bytes(range(i)))} {st.key_siphash.hex()}" for i in range(64)]
    lines32 += [f"hsiphash {_hex(bytes(range(i)))} {st.key_hsiphash32.hex()}" for i in range(64)]
    want32 += st.siphash + st.hsiphash32
    got = run(b.exe32, lines32)
    for line, res, w in zip(lines32, got, want32, strict=True):
        if int(res) != w:
            raise HarnessError(f"{b.tree.series}: -m32 self-test vector mismatch: {line} = {res}")
    same_lines: list[str] = []
    for spec in SPECS:
        if spec.name in WORD_SIZE_FREE:
            cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}"))
            same_lines += [c.line for c in cases]
    got64, got32 = run(b.exe, same_lines), run(b.exe32, same_lines)
    for line, r64, r32 in zip(same_lines, got64, got32, strict=True):
        if r64 != r32:
            raise HarnessError(f"{b.tree.series}: {line}: {r64} (64-bit) but {r32} (-m32)")

    # Only secret + net_hash_mix matters for the ehash functions.
    pairs: list[tuple[str, str]] = []
    for _ in range(50):
        sec, mix, s2 = _u32(rng), _u32(rng), _u32(rng)
        la, fa = rng.randbytes(4).hex(), rng.randbytes(4).hex()
        la6, fa6 = rng.randbytes(16).hex(), rng.randbytes(16).hex()
        lp, fp = rng.randrange(65536), rng.randrange(65536)
        tot = (sec + mix) & U32
        for fn in ("inet_ehashfn", "udp_ehashfn"):
            pairs.append(
                (f"{fn} {la} {lp} {fa} {fp} {sec} {mix}", f"{fn} {la} {lp} {fa} {fp} {tot} 0")
            )
        for fn in ("inet6_ehashfn", "udp6_ehashfn"):
            pairs.append(
                (
                    f"{fn} {la6} {lp} {fa6} {fp} {sec} {s2} {mix}",
                    f"{fn} {la6} {lp} {fa6} {fp} {tot} {s2} 0",
                )
            )
        # conntrack: the direction byte is not hashed
        ckey = rng.randbytes(16).hex()
        pairs.append(
            (
                f"hash_conntrack_raw 2 {la} {lp} {fa} {fp} 17 7 {mix} {ckey} 0",
                f"hash_conntrack_raw 2 {la} {lp} {fa} {fp} 17 7 {mix} {ckey} 1",
            )
        )
        # flow hash: symmetric in the two directions (__flow_hash_consistentify)
        pairs.append(
            (
                f"flow_hash_from_keys 2 {la} {lp} {fa} {fp} 6 {ckey}",
                f"flow_hash_from_keys 2 {fa} {fp} {la} {lp} 6 {ckey}",
            )
        )
        pairs.append(
            (
                f"flow_hash_from_keys 10 {la6} {lp} {fa6} {fp} 17 {ckey}",
                f"flow_hash_from_keys 10 {fa6} {fp} {la6} {lp} 17 {ckey}",
            )
        )
    got = run(b.exe, [p for pair in pairs for p in pair])
    for i, (x, y) in enumerate(pairs):
        if got[2 * i] != got[2 * i + 1]:
            raise HarnessError(f"{b.tree.series}: {x} -> {got[2 * i]} but {y} -> {got[2 * i + 1]}")
    return [
        "harness reproduces jhash known answers and all 64+64 SipHash/HSipHash self-test "
        f"vectors of {st.path} (plus its word-variant checks)",
        "the gcc -m32 build (BITS_PER_LONG == 32) reproduces the jhash known answers, the 64 "
        f"SipHash and the 64 HSipHash (HalfSipHash-1-3) vectors of {st.path}'s 32-bit branch, "
        f"and gives the 64-bit build's results on all {len(same_lines)} vector cases of "
        "jhash*, hash_32, reciprocal_scale and siphash*",
        "ehash functions: (secret s, net_hash_mix m) and (s + m mod 2^32, 0) give the same "
        "hash in 50 random cases per function, so vectors carry only initval = s + m",
        "hash_conntrack_raw ignores tuple->dst.dir; __flow_hash_from_keys is symmetric in "
        "(src, sport) <-> (dst, dport)",
    ]


CONNTRACK_SIZES = (1, 7, 1024, 16384, 65536, 262144, 1 << 31)


def _check_conntrack_zones(b: Build) -> str:
    """nf_ct_zone_id() as compiled equals nf_ct_zone_id_expected() for every zone config
    and direction, and __hash_conntrack() is reciprocal_scale(hash_conntrack_raw(), size)."""
    lines = [
        f"nf_ct_zone_id {zid} {zdir} {zflags} {d}"
        for zid, zdir, zflags in ZONE_CONFIGS
        for d in (0, 1)
    ]
    got = run(b.exe, lines)
    for line, res in zip(lines, got, strict=True):
        _, zid, zdir, _zf, d = line.split()
        if int(res) != nf_ct_zone_id_expected(int(zid), int(zdir), int(d)):
            raise HarnessError(f"{b.tree.series}: {line} = {res}")
    cases = _cases_conntrack_zones(random.Random(f"sidkit-selfcheck-zones-{b.tree.series}"))
    raws = [int(r) for r in run(b.exe, [c.line for c in cases])]
    blines = [
        c.line.replace("conntrack_zone", "conntrack_bucket", 1) + f" {size}"
        for c in cases
        for size in CONNTRACK_SIZES
    ]
    buckets = [int(r) for r in run(b.exe, blines)]
    i = 0
    for raw in raws:
        for size in CONNTRACK_SIZES:
            if buckets[i] != (raw * size) >> 32:
                raise HarnessError(f"{b.tree.series}: {blines[i]} = {buckets[i]}")
            i += 1
    return (
        "nf_ct_zone_id(zone, dir) as compiled follows zone->dir & (1 << dir) for "
        f"{len(lines)} zone/direction pairs; __hash_conntrack(net, tuple, zoneid, size) is "
        f"reciprocal_scale(hash_conntrack_raw(), size) in {len(blines)} cases "
        f"(sizes {', '.join(map(str, CONNTRACK_SIZES))})"
    )


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def render(doc: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON: one test per line."""
    out = ["{"]
    keys = [k for k in doc if k != "testGroups"]
    for k in keys:
        v = doc[k]
        if k == "header":
            out.append('  "header": [')
            out.append(",\n".join(f"    {_dump(line)}" for line in v))
            out.append("  ],")
        else:
            out.append(f"  {_dump(k)}: {_dump(v)},")
    out.append('  "testGroups": [')
    groups = []
    for g in doc["testGroups"]:
        lines = ["    {"]
        for k, v in g.items():
            if k != "tests":
                lines.append(f"      {_dump(k)}: {_dump(v)},")
        lines.append('      "tests": [')
        lines.append(",\n".join(f"        {_dump(t)}" for t in g["tests"]))
        lines.append("      ]")
        lines.append("    }")
        groups.append("\n".join(lines))
    out.append(",\n".join(groups))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def kernel_source(tree: KernelTree, files: list[str]) -> dict[str, Any]:
    return {
        "oracle": "kernel-c",
        "name": f"linux-source-{tree.series}",
        "version": tree.version,
        "files": files,
    }


def generate(outdir: Path, builds: list[Build]) -> list[Path]:
    docs: dict[str, dict[str, Any]] = {}
    counter: dict[str, int] = {}
    flags_used: dict[str, set[str]] = {}
    checks: list[str] = []

    def group_list(algorithm: str) -> list[dict[str, Any]]:
        if algorithm not in docs:
            docs[algorithm] = {"testGroups": []}
            counter[algorithm] = 0
            flags_used[algorithm] = set()
        groups: list[dict[str, Any]] = docs[algorithm]["testGroups"]
        return groups

    def tests_of(algorithm: str, cases: list[Case], results: list[str]) -> list[dict[str, Any]]:
        tests = []
        for c, r in zip(cases, results, strict=True):
            counter[algorithm] += 1
            flags_used[algorithm].update(c.flags)
            tests.append(
                {
                    "tcId": counter[algorithm],
                    "comment": c.comment,
                    "flags": c.flags,
                    "args": c.args,
                    "result": int(r),
                }
            )
        return tests

    selftests = {b.tree.series: parse_selftest(b.tree) for b in builds}
    for b in builds:
        rng = random.Random(f"sidkit-selfcheck-{b.tree.series}")
        for note in self_checks(b, selftests[b.tree.series], rng):
            checks.append(f"Checked when generating ({b.tree.series}): {note}")
    # Checks that concern only the conntrack files go into their headers alone.
    conntrack_checks = [
        f"Checked when generating ({b.tree.series}): {_check_conntrack_zones(b)}" for b in builds
    ]

    for spec in SPECS:
        cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}"))
        for b in builds:
            if spec.needs_prandom and not b.has_prandom:
                continue
            if spec.toeplitz:
                if b.toeplitz_exe is None:
                    continue
                results = run(b.toeplitz_exe, [c.line for c in cases])
            else:
                results = run(b.exe, [c.line for c in cases])
            group_list(spec.algorithm).append(
                {
                    "type": "HashTest",
                    "function": spec.name,
                    "kernel": b.tree.upstream,
                    "source": kernel_source(b.tree, spec.files),
                    "argTypes": spec.arg_types,
                    "tests": tests_of(spec.algorithm, cases, results),
                }
            )

    # Published SipHash vectors, as the newest kernel's self-test builds them.
    primary = builds[0]
    st = selftests[primary.tree.series]
    same = all(
        (s.siphash, s.hsiphash, s.key_siphash, s.key_hsiphash, s.hsiphash32, s.key_hsiphash32)
        == (
            st.siphash,
            st.hsiphash,
            st.key_siphash,
            st.key_hsiphash,
            st.hsiphash32,
            st.key_hsiphash32,
        )
        for s in selftests.values()
    )
    if not same:
        raise HarnessError("the SipHash self-test vectors differ between kernels")
    published = {
        "oracle": "published",
        "name": "SipHash reference vectors as carried by the kernel self-test",
        "version": f"linux-source-{primary.tree.series} {primary.tree.version}",
        "files": [st.path],
    }
    for fname, vectors, vkey in (
        ("siphash", st.siphash, st.key_siphash),
        ("hsiphash", st.hsiphash, st.key_hsiphash),
    ):
        cases = [
            Case(
                f"self-test vector {i}: in[j] = j for j < {i}, key bytes 00..0f",
                ["SelfTest"],
                {"data": bytes(range(i)).hex(), "key": vkey.hex()},
                "",
            )
            for i in range(64)
        ]
        group_list("siphash").append(
            {
                "type": "HashTest",
                "function": fname,
                "kernel": None,
                "source": published,
                "argTypes": {"data": T_BYTES, "key": T_BYTES},
                "tests": tests_of("siphash", cases, [str(v) for v in vectors]),
            }
        )
    names = {s.name: s for s in SPECS}
    for func, nums, vec, idx in st.words:
        if func not in names:
            continue
        spec = names[func]
        key = st.key_siphash if vec == "siphash" else st.key_hsiphash
        argnames = [k for k in spec.arg_types if k != "key"]
        args: dict[str, Any] = dict(zip(argnames, nums, strict=True))
        args["key"] = key.hex()
        value = (st.siphash if vec == "siphash" else st.hsiphash)[idx]
        case = Case(
            f"self-test: {func} checked against test_vectors_{vec}[{idx}]", ["SelfTest"], args, ""
        )
        group_list("siphash").append(
            {
                "type": "HashTest",
                "function": func,
                "kernel": None,
                "source": published,
                "argTypes": spec.arg_types,
                "tests": tests_of("siphash", [case], [str(value)]),
            }
        )

    # BITS_PER_LONG == 32: the -m32 build, then the self-test's 32-bit HSipHash vectors.
    for spec in SPECS_32:
        cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}-bits_per_long-32"))
        for b in builds:
            group_list(spec.algorithm).append(
                {
                    "type": "HashTest",
                    "function": spec.name,
                    "kernel": b.tree.upstream,
                    "comment": BITS32_COMMENT,
                    "source": kernel_source(b.tree, spec.files),
                    "argTypes": spec.arg_types,
                    "tests": tests_of(spec.algorithm, cases, run(b.exe32, [c.line for c in cases])),
                }
            )
    cases = [
        Case(
            f"self-test vector {i} (BITS_PER_LONG == 32 branch): in[j] = j for j < {i}, "
            "key bytes 00..07",
            ["SelfTest"],
            {"data": bytes(range(i)).hex(), "key": st.key_hsiphash32.hex(), "bits_per_long": 32},
            "",
        )
        for i in range(64)
    ]
    group_list("siphash").append(
        {
            "type": "HashTest",
            "function": "hsiphash",
            "kernel": None,
            "comment": "BITS_PER_LONG == 32: HalfSipHash-1-3 with an 8-byte key",
            "source": published,
            "argTypes": {"data": T_BYTES, "key": T_BYTES, "bits_per_long": "int"},
            "tests": tests_of("siphash", cases, [str(v) for v in st.hsiphash32]),
        }
    )

    versions = ", ".join(f"linux-source-{b.tree.series} {b.tree.version}" for b in builds)
    written = []
    outdir.mkdir(parents=True, exist_ok=True)
    for algorithm, body in docs.items():
        header = [
            f"Generated by {GENERATOR} -- do not edit; regenerate with "
            f"`python3 {GENERATOR}`, verify with `--check`.",
            f"Oracle: the kernel's own C from Debian {versions}, compiled in userspace with "
            "the shims in conformance/kernel/shims/ (little-endian x86_64, "
            "CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS); groups whose args carry "
            "bits_per_long = 32 come from the same text compiled with gcc -m32 (i386, "
            "BITS_PER_LONG == 32).",
            "Ports are host-order integers (the harness applies htons() where the kernel takes "
            "a __be16); addresses are strings whose inet_pton bytes are what the kernel holds.",
            *checks,
        ]
        header += HEADER_EXTRA.get(algorithm, [])
        if algorithm.startswith("conntrack"):
            header += conntrack_checks
        if algorithm == "flow_dissector":
            for b in builds:
                header.append(
                    f"struct flow_keys layout in {b.tree.series} (offset+size): "
                    + " ".join(f"{k}={v}" for k, v in b.layout.items())
                )
        n = counter[algorithm]
        doc = {
            "algorithm": algorithm,
            "schema": "hash_vectors.schema.json",
            "generator": GENERATOR,
            "header": header,
            "notes": {f: FLAG_NOTES[f] for f in sorted(flags_used[algorithm])},
            "numberOfTests": n,
            "testGroups": body["testGroups"],
        }
        path = outdir / f"kernel-{algorithm}.json"
        path.write_text(render(doc))
        written.append(path)
    return written


HEADER_EXTRA: dict[str, list[str]] = {
    "ehash": [
        "inet_ehashfn/udp_ehashfn: jhash_3words(laddr, faddr, lport << 16 | fport_be, "
        "initval) with addresses as raw network-order words; lport host order.",
        "inet6_ehashfn: initval = inet6_ehash_secret + net_hash_mix; ipv6_hash_secret = the "
        "secret of __ipv6_addr_jhash(faddr) (6.1: ipv6_hash_secret, 6.12: "
        "tcp_ipv6_hash_secret). udp6_ehashfn: udp6_ehash_secret + net_hash_mix, and "
        "udp_ipv6_hash_secret for the foreign address.",
    ],
    "hash": [
        "hash_64_generic returns u32: for bits > 32 the result is the low 32 bits of "
        "(val * GOLDEN_RATIO_64) >> (64 - bits).",
        "hash_64 with bits_per_long = 32: hash_64_generic's 32-bit branch, "
        "hash_32((u32)val ^ __hash_32(val >> 32), bits); bits is 1..32 (hash_32 shifts by "
        "32 - bits).",
    ],
    "siphash": [
        "hsiphash with bits_per_long = 32: lib/siphash.c's BITS_PER_LONG == 32 branch, "
        "HalfSipHash-1-3; key is the 8 bytes of hsiphash_key_t (two 32-bit unsigned longs, "
        "little-endian).",
    ],
    "conntrack": [
        "Tuple: memset 0, src.l3num = AF_INET (2) or AF_INET6 (10), src.u.all / dst.u.all = "
        "htons(port), dst.protonum, dst.dir = 0; secret = nf_conntrack_hash_rnd bytes "
        "(siphash_key_t memory, little-endian words).",
    ],
    "conntrack-zones": [
        "Tuple as in kernel-conntrack.json, with dst.dir = the node's direction (not hashed). "
        "The harness fills struct nf_conntrack_zone {id, flags, dir} and hashes with "
        "nf_ct_zone_id(&zone, dir) from include/net/netfilter/nf_conntrack_zones.h "
        "(CONFIG_NF_CONNTRACK_ZONES=y); args.zone_id is that value, the comment names the "
        "zone and the direction. The bucket of a table of size n is "
        "reciprocal_scale(result, n) = (result * n) >> 32 (__hash_conntrack, checked above).",
    ],
    "flow_dissector": [
        "struct flow_keys: memset 0; control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS or "
        "_IPV6_ADDRS; basic.n_proto = htons(ETH_P_IP / ETH_P_IPV6); basic.ip_proto; "
        "ports.src/dst = htons(port); addrs.v4addrs or v6addrs; then "
        "__flow_hash_from_keys(&keys, key).",
    ],
    "toeplitz": [
        "toeplitz() of the selftest: the input is zero-padded to FOUR_TUPLE_MAX_LEN (36) "
        "bytes and the key to TOEPLITZ_KEY_MAX_LEN (60); only key bytes 0..39 are ever used.",
    ],
}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


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
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise UnavailableError("no C compiler (gcc) found and none could be installed")
    _check_m32(gcc)
    return gcc


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
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


if __name__ == "__main__":
    sys.exit(main())
