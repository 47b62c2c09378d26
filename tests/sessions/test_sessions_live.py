"""The session table in the live kernel, held to its model on every datagram.

Each experiment runs in a private pair of network namespaces (sidkit.bpf.netns): the server
side binds reuseport groups, attaches the generated program and drives the table through
generations, crashes, pins and expiry; the client side sends real datagrams. For every
datagram the test compares the socket the kernel delivered it to with the one
SessionTableModel predicted -- the model never sees the kernel's choices -- and at the end
compares the kernel's counters and table contents with the model's.

Where eviction matters, the server and the client agent are pinned to one CPU: the table is
created with BPF_F_NO_COMMON_LRU, so each CPU evicts from its own list, and the program runs
on the CPU that processes the datagram (on a veth pair, the sender's).
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import struct
import tempfile
import time
from collections.abc import Hashable, Sequence
from typing import Any

import pytest
from conftest import oracle_unavailable
from sessions.sessions_lab import pin_lab_to_one_cpu

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available, socket_cookie
from sidkit.bpf.netns import CLIENT_V4, SERVER_V4, Datagram, Lab
from sidkit.sessions import (
    SessionError,
    SessionSpec,
    SessionTable,
    SessionTableModel,
    kernel_clock_ns,
    mount_bpffs,
    possible_cpus,
)
from sidkit.steering import AnyOf, FixedOffset, Guard, SteeringPolicy

pytestmark = pytest.mark.oracle

PORT = 4433
QUIC = AnyOf([FixedOffset(1, 8, [Guard(0, 0x80, 0)]), FixedOffset(6, 8, [Guard(0, 0x80, 0x80)])])
SPECS: dict[str, SessionSpec] = {
    "sid-jhash": SessionSpec("sid", SteeringPolicy(QUIC, "jhash", 4, seed=0x5EED)),
    "sid-modulo": SessionSpec("sid", SteeringPolicy(FixedOffset(0, 4), "modulo", 4)),
    "3-tuple": SessionSpec("3-tuple", seed=0xC0FFEE),
}


@pytest.fixture(autouse=True)
def _live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


def _packet(spec: SessionSpec, rng: random.Random, sid: bytes, tag: int) -> bytes:
    """A datagram carrying *sid* where the spec's policy reads it (short header for QUIC)."""
    tail = rng.randbytes(12) + struct.pack(">I", tag)
    if spec.key == "sid" and spec.policy is not None and spec.policy.method == "modulo":
        return sid[:4] + tail
    return bytes([0x40 | rng.randrange(0x40)]) + sid + tail


class _Run:
    """The server side of one experiment: live sockets by name, the model, the comparison."""

    def __init__(
        self, lab: Lab, spec: SessionSpec, capacity: int, pinned_capacity: int | None = None
    ) -> None:
        self.lab = lab
        self.spec = spec
        self.table = SessionTable(spec, capacity=capacity, pinned_capacity=pinned_capacity)
        self.model = SessionTableModel(
            spec, capacity=capacity, pinned_capacity=pinned_capacity, cpus=possible_cpus()
        )
        self.socks: dict[Hashable, socket.socket] = {}
        self.got: list[Hashable | None] = []
        self.predicted: list[Hashable | None] = []
        self.outcomes: list[str] = []
        self.labels: list[bytes] = []
        self._next = 0

    def bind(self, n: int) -> list[socket.socket]:
        group = netns.open_group(n, SERVER_V4, PORT)
        for s in group:
            self.socks[self._next] = s
            self._next += 1
        return group

    def name(self, s: socket.socket) -> Hashable:
        return next(k for k, v in self.socks.items() if v is s)

    def add_generation(self, group: Sequence[socket.socket]) -> int:
        gen = self.table.add_generation(group)
        assert self.model.add_generation([self.name(s) for s in group]) == gen
        return gen

    def set_working(self, gen: int) -> None:
        self.table.set_working(gen)
        self.model.set_working(gen)

    def crash(self, gen: int, s: socket.socket) -> Hashable:
        name = self.name(s)
        cookie = socket_cookie(s)
        s.close()
        del self.socks[name]
        self.model.close(name)
        self.table.remove_socket(gen, cookie)
        self.model.remove_socket(gen, name)
        return name

    def send(self, dgrams: Sequence[Datagram]) -> list[Hashable | None]:
        names = list(self.socks)
        now = kernel_clock_ns()
        got = self.lab.exchange(dgrams, [self.socks[n] for n in names])
        decisions = [
            self.model.deliver(d.payload, now, src=(d.src, d.sport), cpu=self.cpu) for d in dgrams
        ]
        where = [None if g is None else names[g] for g in got]
        self.got += where
        self.predicted += [d.sock for d in decisions]
        self.outcomes += [d.outcome for d in decisions]
        self.labels += [d.payload[1:9] for d in dgrams]  # the SID of the QUIC packets
        return where

    cpu = 0  # the CPU the lab is pinned to, where eviction matters


def _dgrams(
    run: _Run, rng: random.Random, sids: Sequence[bytes], src: str, port0: int, per: int = 2
) -> list[Datagram]:
    out = []
    for i, sid in enumerate(sids):
        for _ in range(per):
            tag = rng.getrandbits(31)
            out.append(Datagram(src, port0 + i, SERVER_V4, PORT, _packet(run.spec, rng, sid, tag)))
    return out


# --- generations: restart, crash, drain, retire ---------------------------------------------


def _generations(lab: Lab, spec_name: str) -> dict[str, Any]:
    spec = SPECS[spec_name]
    rng = random.Random(spec_name)
    run = _Run(lab, spec, capacity=1024)
    g0 = run.bind(4)
    gen0 = run.add_generation(g0)
    run.set_working(gen0)
    run.table.attach(g0[0])
    old = [rng.randbytes(8) for _ in range(60)]
    new = [rng.randbytes(8) for _ in range(40)]
    run.send(_dgrams(run, rng, old, CLIENT_V4[0], 10000))
    first = len(run.got)
    run.send(_dgrams(run, rng, old, CLIENT_V4[0], 20000))  # NAT rebinding
    g1 = run.bind(4)  # the restarted server
    gen1 = run.add_generation(g1)
    run.set_working(gen1)
    run.send(_dgrams(run, rng, new, CLIENT_V4[0], 40000))
    run.send(_dgrams(run, rng, old, CLIENT_V4[1], 30000))  # Wi-Fi -> LTE
    crashed = run.crash(gen1, g1[1])
    run.send(_dgrams(run, rng, new + old, CLIENT_V4[1], 50000))
    draining = len(run.table.draining(gen0))
    assert draining == len(run.model.draining(gen0, kernel_clock_ns()))
    refused = False
    try:
        run.table.retire(gen0)
    except Exception:
        refused = True
    for sid in old:  # the old sessions end
        key = spec.key_of(_packet(spec, rng, sid, 0), (CLIENT_V4[1], 0))
        if key is not None and spec.key == "sid":
            assert run.table.end(key) == run.model.end(key)
    for s in g0:
        run.model.close(run.name(s))
        del run.socks[run.name(s)]
        s.close()
    retired = run.table.retire(gen0, force=spec.key != "sid")
    run.model.retire(gen0, now=kernel_clock_ns(), force=spec.key != "sid")
    run.send(_dgrams(run, rng, new, CLIENT_V4[1], 50000))
    return {
        "got": run.got,
        "predicted": run.predicted,
        "outcomes": run.outcomes,
        "first": first,
        "counters": run.table.counters(),
        "model_counters": run.model.counters,
        "draining": draining,
        "refused": refused,
        "retired": retired,
        "crashed": crashed,
        "gen1": [run.name(s) for s in g1 if s.fileno() >= 0],
        "labels": run.labels,
    }


@pytest.mark.parametrize("spec_name", list(SPECS))
def test_generations_model_predicts_every_datagram(spec_name: str) -> None:
    r = netns.run_in_lab(_generations, spec_name)
    assert None not in r["got"]
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    assert r["refused"] and r["draining"] > 0
    c = r["counters"]
    if spec_name.startswith("sid"):
        # Old sessions never left their generation-0 socket: 60 first misses, then hits.
        # New sessions on the crashed socket were picked anew (stale), nobody else moved.
        assert c["stale"] > 0
        assert c["miss"] == 100
        assert r["retired"] == 0  # every old session ended before the retirement
    else:
        # The 3-tuple table loses every session at each move: a miss per new address/port.
        assert c["miss"] > 100


def _by_session(got: Sequence[Hashable | None], per: int) -> list[set[Hashable | None]]:
    return [set(got[i : i + per]) for i in range(0, len(got), per)]


def _sockets_by_session(r: dict[str, Any]) -> dict[bytes, list[Hashable | None]]:
    out: dict[bytes, list[Hashable | None]] = {}
    for label, where in zip(r["labels"], r["got"], strict=True):
        out.setdefault(label, []).append(where)
    return out


def test_sid_table_keeps_every_session_that_has_a_socket() -> None:
    """Old sessions stay on their generation-0 socket through a port change, the restart and
    an address change; new sessions go to generation 1 and stay, except those whose own
    socket crashed (orphaned: picked anew once, then stable)."""
    r = netns.run_in_lab(_generations, "sid-jhash")
    assert r["got"] == r["predicted"]
    for where in _sockets_by_session(r).values():
        if where[0] == r["crashed"]:
            assert len(set(where)) == 2 and r["crashed"] not in where[-2:]
        else:
            assert len(set(where)) == 1
    assert "stale" in r["outcomes"] and "expired" not in r["outcomes"]


def _ipv6_tuple(lab: Lab) -> dict[str, Any]:
    """The 3-tuple key's IPv6 branch: a 16-byte address from the network header."""
    spec = SPECS["3-tuple"]
    run = _Run(lab, spec, capacity=256)
    group = netns.open_group(4, netns.SERVER_V6, PORT)
    for s in group:
        run.socks[run._next] = s
        run._next += 1
    run.set_working(run.add_generation(group))
    run.table.attach(group[0])
    rng = random.Random(6)
    dgrams = []
    for i in range(40):
        src = netns.CLIENT_V6[i % 2]
        for _ in range(2):
            payload = b"\x40" + rng.randbytes(16)
            dgrams.append(Datagram(src, 12000 + i, netns.SERVER_V6, PORT, payload))
    run.send(dgrams)
    return {
        "got": run.got,
        "predicted": run.predicted,
        "counters": run.table.counters(),
        "model_counters": run.model.counters,
    }


def test_three_tuple_table_reads_ipv6_sources() -> None:
    r = netns.run_in_lab(_ipv6_tuple)
    assert None not in r["got"]
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    assert r["counters"]["miss"] == 40 and r["counters"]["hit"] == 40


# --- eviction, flood, pinning ----------------------------------------------------------------


def _pressure(lab: Lab, record: str) -> dict[str, Any]:
    cpu = pin_lab_to_one_cpu()
    spec = SessionSpec("sid", SteeringPolicy(QUIC, "jhash", 4, seed=3), record=record)  # type: ignore[arg-type]
    cpus = possible_cpus()
    run = _Run(lab, spec, capacity=32 * cpus, pinned_capacity=32 * cpus)
    run.cpu = cpu
    g0 = run.bind(4)
    gen0 = run.add_generation(g0)
    run.set_working(gen0)
    run.table.attach(g0[0])
    rng = random.Random(record)
    established = [rng.randbytes(8) for _ in range(24)]
    run.send(_dgrams(run, rng, established, CLIENT_V4[0], 10000, per=1))
    for sid in established[:12]:  # half of them complete their handshake and are pinned
        key = spec.key_of(_packet(spec, rng, sid, 0))
        assert key is not None
        cookie = socket_cookie(g0[0]) if record == "assure" else None
        run.table.pin(key, cookie, now_ns=kernel_clock_ns())
        sock = None if cookie is None else run.name(g0[0])
        run.model.pin(key, kernel_clock_ns(), sock, cpu=cpu)
    # 400 new SIDs from one source, interleaved with the established sessions' traffic
    flood = [rng.randbytes(8) for _ in range(400)]
    for chunk in range(0, 400, 50):
        run.send(_dgrams(run, rng, flood[chunk : chunk + 50], CLIENT_V4[1], 20000 + chunk, 1))
        run.send(_dgrams(run, rng, established[::3], CLIENT_V4[0], 10000, per=1))
    kernel_keys = {e.key: e.pinned for e in run.table.sessions()}
    model_keys = {k: p for k, _v, p in run.model.sessions()}
    # a restart: whatever the table still holds stays on generation 0
    g1 = run.bind(4)
    gen1 = run.add_generation(g1)
    run.set_working(gen1)
    mark = len(run.got)
    run.send(_dgrams(run, rng, established, CLIENT_V4[0], 10000, per=1))
    return {
        "got": run.got,
        "predicted": run.predicted,
        "after_restart": run.got[mark:],
        "kernel_keys": kernel_keys,
        "model_keys": model_keys,
        "counters": run.table.counters(),
        "model_counters": run.model.counters,
        "evictions": run.model.recent.evictions,
        "pinned_evictions": run.model.pinned.evictions,
        "gen0": [run.name(s) for s in g0],
    }


def test_lru_eviction_and_flood_match_the_model_first_packet() -> None:
    r = netns.run_in_lab(_pressure, "first-packet")
    assert None not in r["got"]
    assert r["got"] == r["predicted"]
    assert r["kernel_keys"] == r["model_keys"]
    assert r["counters"] == r["model_counters"]
    # the flood ran the recent table over capacity many times ...
    assert r["evictions"] > 300
    # ... and never touched the pinned sessions: only user space inserts there
    assert r["pinned_evictions"] == 0
    pinned = [k for k, p in r["kernel_keys"].items() if p]
    assert len(pinned) == 12
    # after the restart the 12 pinned sessions are still on generation 0
    assert set(r["after_restart"][:12]) <= set(r["gen0"])


def test_record_on_assure_keeps_the_flood_out_of_the_table() -> None:
    r = netns.run_in_lab(_pressure, "assure")
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    assert r["counters"]["recorded"] == 0 and r["evictions"] == 0
    assert sorted(r["kernel_keys"].values()) == [True] * 12
    assert set(r["after_restart"][:12]) == {r["gen0"][0]}


def _lru_steps(lab: Lab, seed: int) -> dict[str, Any]:
    """Hits (which set the reference bit) and new sessions in random order on a small table;
    the kernel's keys after every step."""
    cpu = pin_lab_to_one_cpu()
    spec = SessionSpec("sid", SteeringPolicy(QUIC, "jhash", 2, seed=seed))
    run = _Run(lab, spec, capacity=8 * possible_cpus())
    run.cpu = cpu
    g0 = run.bind(2)
    run.set_working(run.add_generation(g0))
    run.table.attach(g0[0])
    rng = random.Random(seed)
    steps = []
    for step in range(80):
        sids: list[bytes] = []
        for _ in range(rng.randint(1, 3)):
            present = [k[4:12] for k, _v, _p in run.model.sessions()]
            if present and rng.random() < 0.6:
                sids.append(rng.choice(present))
            else:
                sids.append(rng.randbytes(8))
        run.send(_dgrams(run, rng, sids, CLIENT_V4[0], 10000 + 8 * step, per=1))
        kernel = sorted(e.key for e in run.table.sessions())
        model = sorted(k for k, _v, _p in run.model.sessions())
        steps.append((kernel, model))
    return {"steps": steps, "evictions": run.model.recent.evictions, "outcomes": run.outcomes}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reference_bits_from_hits_steer_eviction_as_in_the_kernel(seed: int) -> None:
    r = netns.run_in_lab(_lru_steps, seed)
    for i, (kernel, model) in enumerate(r["steps"]):
        assert kernel == model, f"step {i}"
    assert r["evictions"] > 20 and r["outcomes"].count("hit") > 40


# --- timeouts --------------------------------------------------------------------------------


def _expiry(lab: Lab) -> dict[str, Any]:
    spec = SessionSpec("sid", SteeringPolicy(QUIC, "jhash", 4), timeout_ns=300_000_000)
    run = _Run(lab, spec, capacity=256)
    g0 = run.bind(2)
    gen0 = run.add_generation(g0)
    run.set_working(gen0)
    run.table.attach(g0[0])
    rng = random.Random(5)
    sids = [rng.randbytes(8) for _ in range(30)]
    run.send(_dgrams(run, rng, sids, CLIENT_V4[0], 10000, per=1))
    g1 = run.bind(2)
    run.set_working(run.add_generation(g1))
    run.send(_dgrams(run, rng, sids[:15], CLIENT_V4[0], 10000, per=1))  # within the timeout
    time.sleep(0.7)
    run.send(_dgrams(run, rng, sids, CLIENT_V4[0], 10000, per=1))  # 15 idle 0.7 s: expired
    return {
        "got": run.got,
        "predicted": run.predicted,
        "counters": run.table.counters(),
        "model_counters": run.model.counters,
    }


def test_idle_sessions_expire_and_move_to_the_working_generation() -> None:
    r = netns.run_in_lab(_expiry)
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    assert r["counters"]["expired"] == 30  # the 15 refreshed ones too: 0.7 s > 0.3 s
    assert set(r["got"][-30:]) <= {2, 3}


# --- handover through bpffs -------------------------------------------------------------------

_CLONE_NEWNS = 0x0002_0000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2


def _private_bpffs() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    path = tempfile.mkdtemp(prefix="sidkit-bpffs-")
    mount_bpffs(path)
    return path


def _new_server(path: str, spec: SessionSpec, chan: socket.socket) -> None:
    """The next server process: open the pinned table, bind and register its generation,
    make it working, hand its sockets to the lab process, exit."""
    table = SessionTable.open(path, spec)
    group = netns.open_group(4, SERVER_V4, PORT)
    gen = table.add_generation(group)
    table.set_working(gen)
    socket.send_fds(chan, [struct.pack("=I", gen)], [s.fileno() for s in group])
    table.release()


def _handover(lab: Lab) -> dict[str, Any]:
    path = _private_bpffs()
    try:
        return _handover_in(lab, path)
    finally:
        # the mount dies with the namespace process; the directory is on the shared /tmp
        ctypes.CDLL(None, use_errno=True).umount2(os.fsencode(path), _MNT_DETACH)
        os.rmdir(path)


def _handover_in(lab: Lab, path: str) -> dict[str, Any]:
    spec = SPECS["sid-jhash"]
    run = _Run(lab, spec, capacity=1024)
    g0 = run.bind(4)
    gen0 = run.add_generation(g0)
    run.set_working(gen0)
    run.table.attach(g0[0])
    run.table.pin_maps(path)
    rng = random.Random(9)
    old = [rng.randbytes(8) for _ in range(50)]
    run.send(_dgrams(run, rng, old, CLIENT_V4[0], 10000))
    run.table.release()  # the old server keeps serving its sockets, but lets go of the table
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the new server process
        code = 0
        try:
            parent.close()
            _new_server(path, spec, child)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    child.close()
    msg, fds, _flags, _addr = socket.recv_fds(parent, 16, 8)
    os.waitpid(pid, 0)
    (gen1,) = struct.unpack("=I", msg)
    g1 = [socket.socket(fileno=fd) for fd in fds]
    for s in g1:
        s.setblocking(False)
        run.socks[run._next] = s
        run._next += 1
    assert run.model.add_generation([run.name(s) for s in g1]) == gen1
    run.model.set_working(gen1)
    new = [rng.randbytes(8) for _ in range(50)]
    mark = len(run.got)
    run.send(_dgrams(run, rng, old, CLIENT_V4[1], 30000))
    run.send(_dgrams(run, rng, new, CLIENT_V4[1], 40000))
    try:
        SessionTable.open(path, SessionSpec("sid", spec.policy, timeout_ns=1))
        refused = ""
    except SessionError as exc:
        refused = str(exc)
    third = SessionTable.open(path, spec)  # anyone can read the state back
    counters = third.counters()
    work = third.working
    third.release()
    return {
        "got": run.got,
        "predicted": run.predicted,
        "after": run.got[mark:],
        "counters": counters,
        "model_counters": run.model.counters,
        "working": work,
        "refused": refused,
        "gen1": gen1,
        "g0": [run.name(s) for s in g0],
        "g1": [run.name(s) for s in g1],
    }


def test_a_new_process_takes_over_the_table_from_bpffs() -> None:
    r = netns.run_in_lab(_handover)
    assert None not in r["got"]
    assert r["got"] == r["predicted"]
    assert r["counters"] == r["model_counters"]
    assert r["working"] == r["gen1"]
    assert "timeout" in r["refused"]  # a spec that is not the attached program's
    assert set(r["after"][:100]) <= set(r["g0"])  # old sessions stayed with the old server
    assert set(r["after"][100:]) <= set(r["g1"])  # new ones went to the new server
