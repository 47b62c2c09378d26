"""The docs' worked example: a real aioquic server keeps its connections through a restart.

docs/examples/quic_sessions_server.py runs generation 0 of an aioquic server on a 4-socket
reuseport group with the session table, connects a client, starts generation 1 (the
restart) and asks, over real QUIC streams, which socket serves each connection. Without the
table the old connection's datagrams would be spread over 8 sockets by the 5-tuple hash, and
seven of the eight QuicServers would not know its connection ID.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from conftest import oracle_unavailable
from fixtures.modules import load_file

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available

pytestmark = pytest.mark.oracle

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quic_sessions_server.py"


def _example() -> ModuleType:
    pytest.importorskip("aioquic", reason="the test extra (pip install 'sidkit[test]')")
    return load_file("quic_sessions_server", EXAMPLE)


def test_aioquic_connections_survive_a_restart() -> None:
    example = _example()
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    seen = example.run()
    before = seen["old connection, before the restart"]
    assert before.startswith("gen0/")
    assert seen["old connection, after the restart"] == before
    assert seen["old connection, new connection ID"] == before  # a pinned, issued CID
    assert seen["new connection, after the restart"].startswith("gen1/")
    assert "'stale': 0" in seen["table counters"]
