"""udpgrm's cookie and noop dissectors as sidkit programs, live against their model.

Both send new flows to the working generation by the kernel's own flow hash
(``reciprocal_scale(ctx->hash, n)``), so the model needs ``ctx->hash``: a first pass sends
one datagram per 5-tuple through a HashRecorder (an SK_REUSEPORT program that records the
hash and selects nothing), then the recorder is replaced by the dissector and the scenario
runs with the same 5-tuples -- the hash is a function of the tuple and the namespace's
secret only. Every datagram's socket is then compared with the model's prediction.
"""

from __future__ import annotations

import errno
import random
import struct
import time
from typing import Any

import pytest
from conftest import oracle_unavailable

from sidkit._errors import KernelOracleError
from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available, socket_cookie
from sidkit.bpf.netns import CLIENT_V4, SERVER_V4, Datagram, Lab
from sidkit.reuseport import HashRecorder
from sidkit.sessions import SessionError, SessionSpec, SessionTable, SessionTableModel
from sidkit.steering import FixedOffset, Guard, IndexField, SteeringPolicy

pytestmark = pytest.mark.oracle

PORT = 4433
SHORT = FixedOffset(1, 8, [Guard(0, 0x80, 0)])
COOKIE = SessionSpec("cookie", SteeringPolicy(SHORT, "index", 1, field=IndexField(0, 2, 0, 0xFFFF)))
NOOP = SessionSpec("none")


@pytest.fixture(autouse=True)
def _live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


def test_specs_are_checked() -> None:
    with pytest.raises(SessionError, match="method='index'"):
        SessionSpec("cookie", SteeringPolicy(SHORT, "jhash", 4))
    with pytest.raises(SessionError, match="only the cookie"):
        NOOP.mint(3)
    sid = COOKIE.mint(5, rng=random.Random(1))
    assert len(sid) == 8 and int.from_bytes(sid[:2], "big") == 5


def _packet(sid: bytes, tag: int) -> bytes:
    return b"\x41" + sid + struct.pack(">I", tag)


def _attach_retrying(table: SessionTable, sock: Any) -> None:
    """Re-attaching right after a detach can fail with EBUSY for ~20 ms (KERNEL-NOTES)."""
    for _ in range(50):
        try:
            table.attach(sock)
            return
        except KernelOracleError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    table.attach(sock)


def _scenario(lab: Lab, which: str) -> dict[str, Any]:
    spec = COOKIE if which == "cookie" else NOOP
    rng = random.Random(which)
    sessions = 40
    tuples = [(CLIENT_V4[s % 2], 10000 + s) for s in range(sessions)]
    moved = [(CLIENT_V4[(s + 1) % 2], 20000 + s) for s in range(sessions)]
    g0 = netns.open_group(4, SERVER_V4, PORT)
    # pass 1: the kernel's flow hash of every tuple the scenario uses
    recorder = HashRecorder(g0)
    probe = [
        Datagram(src, sport, SERVER_V4, PORT, _packet(b"\x80" * 8, i))
        for i, (src, sport) in enumerate(tuples + moved)
    ]
    lab.exchange(probe, g0)
    hashes = {(d.src, d.sport): recorder.hash(i) for i, d in enumerate(probe)}
    recorder.close()
    # pass 2: the dissector
    table = SessionTable(spec, capacity=64)
    model = SessionTableModel(spec, capacity=64)
    socks = {i: s for i, s in enumerate(g0)}
    gen0 = table.add_generation(g0)
    assert model.add_generation(list(range(4))) == gen0
    table.set_working(gen0)
    model.set_working(gen0)
    _attach_retrying(table, g0[0])
    got: list[Any] = []
    predicted: list[Any] = []

    def send(dgrams: list[Datagram]) -> list[Any]:
        names = list(socks)
        where = lab.exchange(dgrams, [socks[n] for n in names])
        out = [None if w is None else names[w] for w in where]
        got.extend(out)
        for d in dgrams:
            predicted.append(model.deliver(d.payload, 0, hash=hashes[(d.src, d.sport)]).sock)
        return out

    # first datagrams: random SIDs (no valid cookie): new flows by the kernel's hash
    first = send(
        [
            Datagram(src, sport, SERVER_V4, PORT, _packet(rng.randbytes(8), rng.getrandbits(31)))
            for src, sport in tuples
        ]
    )
    # the server answers with an ID naming its socket (cookie), the client uses it
    base = gen0 * table.per_generation  # socket i of generation 0 is slot base + i
    sids = [COOKIE.mint(base + s, rng=rng) for s in first]
    if which == "none":
        sids = [rng.randbytes(8) for _ in range(sessions)]

    def phase(paths: list[tuple[str, int]]) -> list[Datagram]:
        return [
            Datagram(src, sport, SERVER_V4, PORT, _packet(sid, rng.getrandbits(31)))
            for sid, (src, sport) in zip(sids, paths, strict=True)
        ]

    send(phase(tuples))
    g1 = netns.open_group(4, SERVER_V4, PORT)  # the restart
    for i, s in enumerate(g1):
        socks[4 + i] = s
    gen1 = table.add_generation(g1)
    assert model.add_generation([4, 5, 6, 7]) == gen1
    table.set_working(gen1)
    model.set_working(gen1)
    after_restart = send(phase(moved))  # clients moved too
    cookie = socket_cookie(socks[5])
    socks.pop(5).close()  # a crash
    model.close(5)
    table.remove_socket(gen1, cookie)
    model.remove_socket(gen1, 5)
    send(phase(moved))
    counters = table.counters()
    table.close()
    for s in socks.values():
        s.close()
    return {
        "got": got,
        "predicted": predicted,
        "first": first,
        "after_restart": after_restart,
        "counters": counters,
        "model_counters": model.counters,
    }


@pytest.mark.parametrize("which", ["cookie", "none"])
def test_dissector_matches_its_model(which: str) -> None:
    r = netns.run_in_lab(_scenario, which)
    assert None not in r["got"]
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    if which == "cookie":
        # every minted cookie kept its session on its generation-0 socket through the
        # client's move and the restart
        assert r["after_restart"] == r["first"]
        assert r["counters"]["hit"] >= 3 * 40 - 4
    else:
        # noop: everything after the restart goes to the working generation
        assert set(r["after_restart"]) <= {4, 5, 6, 7}
        assert r["counters"]["no_key"] == r["counters"]["datagrams"]
