"""``sidkit hash initval`` learns the namespace's secret, and ``hash socket`` with it predicts
what the live kernel does.

The oracle is the running kernel in a private network namespace: after the command prints an
initval, four SO_REUSEPORT sockets are bound to a loopback port, datagrams from 32 sources
are sent, and the socket that received each must be the one ``sidkit hash socket --initval``
names. A wrong initval (the printed one plus one) must mispredict, so the test can fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import oracle_unavailable

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.cli import main

pytestmark = pytest.mark.oracle

SIDKIT = [sys.executable, "-m", "sidkit.cli"]


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIDKIT, *argv], capture_output=True, text=True, check=False)


def _experiment() -> dict[str, object]:
    learned = _cli("hash", "initval", "--json")
    if learned.returncode != 0:
        return {"error": learned.stderr}
    doc = json.loads(learned.stdout)
    initval = int(doc["initval"], 16)
    group = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 4433))
        group.append(s)
    received: dict[int, int] = {}
    for i in range(32):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.bind(("127.0.0.1", 40000 + 37 * i))
            c.sendto(b"x", ("127.0.0.1", 4433))
            ready, _, _ = select.select(group, [], [], 2.0)
            assert ready, "datagram lost on loopback"
            ready[0].recv(16)
            received[40000 + 37 * i] = group.index(ready[0])
    predicted: dict[str, dict[int, int]] = {"learned": {}, "wrong": {}}
    for name, value in (("learned", initval), ("wrong", (initval + 1) & 0xFFFFFFFF)):
        for fport in received:
            argv = ["hash", "socket", "--json", "--laddr", "127.0.0.1", "--lport", "4433"]
            argv += ["--faddr", "127.0.0.1", "--fport", str(fport), "--bind", "127.0.0.1"]
            argv += ["--initval", hex(value), "--kernel", os.uname().release]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(argv) == 0
            predicted[name][fport] = json.loads(out.getvalue())["socket"]
    for s in group:
        s.close()
    return {"received": received, **predicted, "doc": doc}


def test_the_learned_initval_predicts_the_live_kernel() -> None:
    for reason in (netns.netns_available(), bpf_available()):
        if reason is not None:
            oracle_unavailable(reason)
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        oracle_unavailable("no C compiler for the initval search (apt-get install gcc)")
    result = netns.run_isolated(_experiment)
    assert "error" not in result, result.get("error")
    assert result["learned"] == result["received"]
    assert result["wrong"] != result["received"]
    doc = result["doc"]
    assert isinstance(doc, dict) and set(doc) == {
        "initval",
        "family",
        "kernel",
        "netns_inode",
        "observations",
    }
