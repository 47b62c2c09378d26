# Strategy: `sidkit hash initval` learns the secret that `hash socket --initval` needs, from
# the kernel itself and in the caller's own network namespace (the value is per boot and per
# namespace). The kernel never shows it; it does show its *hash*: an SK_REUSEPORT program
# (sidkit.reuseport.HashRecorder) records ctx->hash of a few loopback datagrams. The initval
# is then the u32 that makes udp_ehashfn give those hashes -- found by trying all 2^32, which
# takes seconds in C and many minutes in Python, so a tiny C search is compiled with the
# system's compiler. The search only proposes; sidkit's own model of the running release must
# reproduce every recorded hash with the candidate before it is printed.
"""The ``sidkit hash initval`` subcommand (registered by :mod:`sidkit.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from sidkit._errors import KernelOracleError, SidkitError

__all__ = ["register"]

_OBSERVATIONS = 8

# jhash_3words(a, b, c, initval) of include/linux/jhash.h since v4.1 (lookup3's final mix),
# the function __inet_ehashfn hands udp_ehashfn's words to. Each thread tries every
# THREADS-th initval against the first observation, then against all of them.
_SEARCH_C = r"""
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t obs[16][4];
static int nobs, nthreads;

static uint32_t rol(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }

static uint32_t jhash3(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	uint32_t x = initval + 0xdeadbeefu + (3u << 2);
	a += x; b += x; c += x;
	c ^= b; c -= rol(b, 14); a ^= c; a -= rol(c, 11); b ^= a; b -= rol(a, 25);
	c ^= b; c -= rol(b, 16); a ^= c; a -= rol(c, 4);  b ^= a; b -= rol(a, 14);
	c ^= b; c -= rol(b, 24);
	return c;
}

static void *search(void *arg)
{
	for (uint64_t v = (uintptr_t)arg; v <= 0xffffffffu; v += (uint64_t)nthreads) {
		int i = 0;
		while (i < nobs && jhash3(obs[i][0], obs[i][1], obs[i][2], (uint32_t)v) == obs[i][3])
			i++;
		if (i == nobs)
			printf("%" PRIu32 "\n", (uint32_t)v);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	nthreads = argc > 1 ? atoi(argv[1]) : 1;
	if (nthreads < 1 || nthreads > 256)
		nthreads = 1;
	while (nobs < 16 && scanf("%" SCNu32 " %" SCNu32 " %" SCNu32 " %" SCNu32, &obs[nobs][0],
				&obs[nobs][1], &obs[nobs][2], &obs[nobs][3]) == 4)
		nobs++;
	if (!nobs)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t th[256];
	for (int t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, search, (void *)(uintptr_t)t);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	return 0;
}
"""


def _record(count: int) -> tuple[int, list[tuple[int, int]]]:
    """Send *count* datagrams over loopback to a one-socket reuseport group with a
    HashRecorder attached; return the group's port and ``(source port, ctx->hash)`` pairs."""
    from sidkit.reuseport import HashRecorder  # noqa: PLC0415 (bpf only when asked)

    group = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    senders: list[socket.socket] = []
    try:
        group.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        group.bind(("127.0.0.1", 0))
        port = group.getsockname()[1]
        recorder = HashRecorder([group])
        try:
            for tag in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                senders.append(s)
                s.bind(("127.0.0.1", 0))
                s.sendto(b"sidkit-initval" + struct.pack(">I", tag), ("127.0.0.1", port))
            for _ in range(count):
                if not select.select([group], [], [], 2.0)[0]:
                    raise KernelOracleError("loopback datagrams did not arrive within 2 s")
                group.recv(64)
            pairs = [(s.getsockname()[1], recorder.hash(tag)) for tag, s in enumerate(senders)]
        finally:
            recorder.close()
    finally:
        for s in [group, *senders]:
            s.close()
    return port, pairs


def _compiler() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise SidkitError(
        "the 2^32 search needs a C compiler (cc, gcc or clang; e.g. apt-get install gcc)",
        code="no-compiler",
    )


def _search(lines: str) -> list[int]:
    with tempfile.TemporaryDirectory(prefix="sidkit-initval-") as tmp:
        src, exe = Path(tmp) / "search.c", Path(tmp) / "search"
        src.write_text(_SEARCH_C)
        build = subprocess.run(
            [_compiler(), "-O2", "-pthread", "-o", str(exe), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            first = (build.stderr.strip().splitlines() or ["(no message)"])[0]
            raise SidkitError(f"compiling the initval search failed: {first}", code="no-compiler")
        threads = str(max(1, len(os.sched_getaffinity(0))))
        run = subprocess.run(
            [str(exe), threads], input=lines, capture_output=True, text=True, check=False
        )
    if run.returncode != 0:
        raise SidkitError("the initval search failed", code="search-failed")
    return sorted({int(x) for x in run.stdout.split()})


def _word(addr: str) -> int:
    """The u32 the kernel reads from an address's network-order bytes on this host."""
    return int.from_bytes(socket.inet_aton(addr), sys.byteorder)


def _port_word(port: int) -> int:
    return int.from_bytes(port.to_bytes(2, "big"), sys.byteorder)


def run(args: argparse.Namespace) -> int:
    """Record, search, check against the model; print the initval."""
    from sidkit.bpf._syscall import bpf_available  # noqa: PLC0415
    from sidkit.kernel import profile  # noqa: PLC0415
    from sidkit.reuseport import Port  # noqa: PLC0415

    reason = bpf_available()
    if reason is not None:
        raise KernelOracleError(f"recording the kernel's hashes needs bpf(2): {reason}")
    port, pairs = _record(_OBSERVATIONS)
    if any(h == 0 for _, h in pairs):
        raise KernelOracleError("the recorder saw no hash for some datagrams; try again")
    lo = _word("127.0.0.1")
    lines = "".join(f"{lo} {lo} {(port << 16) | _port_word(p)} {h}\n" for p, h in pairs[:4])
    release = platform.release()
    model = Port(profile(release))
    found = [
        c
        for c in _search(lines)
        if all(model.flow_hash("127.0.0.1", port, "127.0.0.1", p, c) == h for p, h in pairs)
    ]
    if len(found) != 1:
        raise SidkitError(
            f"{len(found)} initvals explain the {len(pairs)} recorded hashes; sidkit's model of "
            f"{release} may not be this kernel's (sidkit eras udp_ehash_initval)",
            code="no-initval",
        )
    initval = found[0]
    netns = os.stat("/proc/self/ns/net").st_ino
    if args.json:
        doc = {
            "initval": f"0x{initval:08x}",
            "family": "ipv4",
            "kernel": release,
            "netns_inode": netns,
            "observations": len(pairs),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"0x{initval:08x}")
        print(
            f"  udp_ehashfn's initval (udp_ehash_secret + net_hash_mix) of network namespace "
            f"net:[{netns}], kernel {release}; it changes at every boot. {len(pairs)} recorded "
            "hashes agree with sidkit's model. Use: sidkit hash socket --initval "
            f"0x{initval:08x} ...",
            file=sys.stderr,
        )
    return 0


def register(hsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``initval`` to the ``sidkit hash`` subparsers *hsub*."""
    p = hsub.add_parser(
        "initval",
        help="this machine's udp_ehashfn initval, learned from the live kernel",
        description="Learn the IPv4 initval of udp_ehashfn (udp_ehash_secret + "
        "net_hash_mix, random per boot and network namespace) that `sidkit hash socket "
        "--initval` needs: an SK_REUSEPORT program records the kernel's ctx->hash of a few "
        "loopback datagrams in this network namespace, a C search tries all 2^32 initvals "
        "(seconds), and sidkit's model of the running release must reproduce every "
        "recorded hash with the one it prints. Needs root or CAP_BPF and a C compiler. The "
        "value goes to stdout, the explanation to stderr.",
        epilog="examples:\n"
        "  sudo sidkit hash initval\n"
        "  sudo sidkit hash socket --initval $(sudo sidkit hash initval 2>/dev/null) \\\n"
        "      --laddr 10.0.0.1 --lport 4433 --faddr 192.0.2.7 --fport 50000",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(run=run)
