"""The steering handle's lifecycle on the live kernel: one group per attach, release when a
handle is dropped, a policy wider than the group said, and attaching again right after a
detach.

Each test runs in a private network namespace (:func:`sidkit.bpf.netns.run_isolated`) with
its groups bound to loopback there. Whether a program is still attached is asked of the
kernel itself: SO_DETACH_REUSEPORT_BPF fails with ENOENT on a group without one
(net/core/sock_reuseport.c, reuseport_detach_prog, Linux 5.7+).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import os
import socket
import struct
import threading
import time
import warnings
from typing import Any, Literal

import pytest
from conftest import oracle_unavailable

from sidkit import KernelOracleError
from sidkit.bpf import _syscall, netns
from sidkit.bpf._syscall import bpf_available
from sidkit.reuseport import HashRecorder
from sidkit.steering import FixedOffset, SteeringError, SteeringPolicy, attach, detach_program
from sidkit.steering._attach import PartialGroupWarning

pytestmark = pytest.mark.oracle

BPF_PROG_GET_FD_BY_ID = 13
POLICY = SteeringPolicy(FixedOffset(1, 8), "jhash", 4, seed=7)


@pytest.fixture(autouse=True)
def _live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


def _group(n: int = 4, addr: str = "127.0.0.1", port: int = 4433) -> list[socket.socket]:
    return netns.open_group(n, addr, port, rcvbuf=1 << 16)


def _has_program(s: socket.socket) -> bool:
    """Ask the kernel whether *s*'s group has a program, by detaching it (ENOENT: none)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def _refusal(fn: Any) -> tuple[str, str]:
    try:
        fn()
    except SteeringError as exc:
        return exc.code, str(exc)
    return "accepted", ""


# -- one group per attach ------------------------------------------------------------------


def _mixed_groups() -> dict[str, tuple[str, str]]:
    out = {}
    a = _group(2, port=4433)
    b = _group(2, port=4434)
    out["port"] = _refusal(lambda: attach([a[0], a[1], b[0], b[1]], POLICY, "cbpf"))
    c = _group(2, addr="127.0.0.2", port=4433)
    out["address"] = _refusal(lambda: attach([a[0], a[1], c[0], c[1]], POLICY, "ebpf"))
    d = _group(2, addr="::1", port=4433)
    out["family"] = _refusal(lambda: attach([a[0], a[1], d[0], d[1]], POLICY, "cbpf"))
    out["twice"] = _refusal(lambda: attach([a[0], a[1], a[0], a[1]], POLICY, "cbpf"))
    dup = socket.socket(fileno=os.dup(a[0].fileno()))
    out["dup"] = _refusal(lambda: attach([a[0], a[1], dup], POLICY, "ebpf"))
    v6 = []
    for v6only in (1, 0):  # udp_reuseport_add_sock: IPV6_V6ONLY must match
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        s.bind(("::", 4435))
        v6.append(s)
    out["v6only"] = _refusal(lambda: attach(v6, POLICY, "cbpf"))
    netns._unshare_net()  # a second namespace: same address and port, another group
    e = _group(2)
    out["netns"] = _refusal(lambda: attach([a[0], a[1], e[0], e[1]], POLICY, "cbpf"))
    out["one group"] = _refusal(lambda: attach([*e, *_group(2)], POLICY, "cbpf"))
    return out


def test_sockets_of_different_groups_are_refused() -> None:
    out = netns.run_isolated(_mixed_groups)
    for what in ("port", "address", "family", "netns"):
        code, message = out[what]
        assert code == "bad-steering" and "sockets of different reuseport groups" in message
    assert "127.0.0.1:4434" in out["port"][1]
    assert "127.0.0.2:4433" in out["address"][1]
    assert "[::1]:4433" in out["family"][1]
    assert "another network namespace" in out["netns"][1]
    assert out["v6only"][0] == "bad-steering"
    assert "[::]:4435 (IPV6_V6ONLY), fd" in out["v6only"][1]
    assert "[::]:4435 (dual-stack); one program" in out["v6only"][1]
    assert out["twice"] == ("bad-steering", "a socket appears twice in the group list")
    assert out["dup"][0] == "bad-steering"
    assert "are the same socket (one was dup()ed from the other)" in out["dup"][1]
    assert out["one group"] == ("accepted", "")


def _too_few(backend: str, on_no_sid: str) -> list[str]:
    socks = _group(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PartialGroupWarning)
        attach(socks, POLICY, backend, on_no_sid=on_no_sid).detach()  # type: ignore[arg-type]
    for s in socks:
        s.close()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize(
    ("backend", "on_no_sid", "fate"),
    [
        ("cbpf", "pass", "the kernel falls back to its hash over the group for them"),
        ("ebpf", "pass", "the program passes them and the kernel's hash picks the socket"),
        ("ebpf", "drop", "the program drops them (the sender sees ECONNREFUSED)"),
    ],
)
def test_fewer_sockets_than_the_policy_steers_to_is_said(
    backend: str, on_no_sid: str, fate: str
) -> None:
    said = netns.run_isolated(_too_few, backend, on_no_sid)
    assert said == [
        "PartialGroupWarning: the policy steers to 4 sockets but 3 were given: sessions whose "
        f"SID maps to index 3 have no socket and are not steered -- {fate}"
    ]


# -- release -------------------------------------------------------------------------------


def _prog_id(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        info = f.read()
    return int(next(ln for ln in info.splitlines() if ln.startswith("prog_id:")).split()[1])


def _prog_exists(prog_id: int) -> bool:
    try:
        fd = _syscall.bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("=III", prog_id, 0, 0))
    except KernelOracleError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    os.close(fd)
    return True


def _dropped(close_first: bool) -> dict[str, Any]:
    socks = _group()
    handle = attach(socks, POLICY, "ebpf")
    assert handle.prog_fd is not None and handle.map is not None
    prog_id, prog_fd, map_fd = _prog_id(handle.prog_fd), handle.prog_fd, handle.map.fd
    if close_first:
        for s in socks:
            s.close()
    del handle
    gc.collect()
    fds_closed = not os.path.exists(f"/proc/self/fd/{prog_fd}") and not os.path.exists(
        f"/proc/self/fd/{map_fd}"
    )
    deadline = time.monotonic() + 5  # the program is freed after an RCU grace period
    while close_first and _prog_exists(prog_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    out: dict[str, Any] = {"fds closed": fds_closed, "program exists": _prog_exists(prog_id)}
    if not close_first:
        # still steering (the group holds its program; asked by traffic, which leaves it)
        out["still attached"] = _receivers(socks) == [POLICY.select(p) for p in _sids(32)]
        # free for a new owner: eBPF once the old program, which keeps the sockets in its
        # map, is out -- and the refusal says how; classic BPF at once (it replaces the old
        # program, which frees it and its map)
        out["new owner ebpf"] = _refusal(lambda: attach(socks, ONE, "ebpf"))
        out["new owner cbpf"] = _refusal(lambda: attach(socks, ONE, "cbpf").release())
        out["detach_program"] = detach_program(socks[1])
        out["again"] = detach_program(socks[1])
        out["new owner ebpf after"] = _refusal(lambda: attach(socks, ONE, "ebpf").detach())
    return out


def test_a_dropped_handle_of_a_closed_group_frees_its_program_and_map() -> None:
    out = netns.run_isolated(_dropped, True)
    assert out == {"fds closed": True, "program exists": False}


def test_a_dropped_handle_of_a_live_group_keeps_steering_but_releases_the_group() -> None:
    out = netns.run_isolated(_dropped, False)
    assert out["fds closed"] is True
    assert out["program exists"] is True  # held by the group alone
    assert out["still attached"] is True
    assert out["new owner cbpf"] == ("accepted", "")
    code, message = out["new owner ebpf"]
    assert code == "socket-in-another-map"
    assert "take that program out first (sidkit.steering.detach_program(sock))" in message
    assert (out["detach_program"], out["again"]) == (True, False)
    assert out["new owner ebpf after"] == ("accepted", "")


# -- EBUSY ---------------------------------------------------------------------------------


def _reattach(cycles: int, backend: Literal["cbpf", "ebpf"]) -> list[float]:
    socks = _group()
    took = []
    for _ in range(cycles):
        start = time.monotonic()
        handle = attach(socks, POLICY, backend)
        took.append(time.monotonic() - start)
        handle.detach()
    return took


def test_attaching_ebpf_right_after_a_detach_succeeds() -> None:
    took = netns.run_isolated(_reattach, 50, "ebpf")
    assert len(took) == 50
    # detach() empties the sockarray, so no attach had to wait for the old map to go
    assert max(took) < 0.5, took


def _map_closed_then_attach() -> float:
    socks = _group()
    other = _syscall.Map(_syscall.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, 4, name="other")
    for i, s in enumerate(socks):
        other.update(struct.pack("=I", i), struct.pack("=Q", s.fileno()))
    other.close()  # the sockets leave it only once the kernel has freed the map
    start = time.monotonic()
    attach(socks, POLICY, "ebpf").detach()
    return time.monotonic() - start


def test_a_just_closed_sockarray_is_waited_for() -> None:
    took = netns.run_isolated(_map_closed_then_attach)
    assert took < 1.0


def _in_a_live_map() -> tuple[tuple[str, str], float]:
    socks = _group()
    other = _syscall.Map(_syscall.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, 4, name="other")
    other.update(struct.pack("=I", 0), struct.pack("=Q", socks[2].fileno()))
    start = time.monotonic()
    refused = _refusal(lambda: attach(socks, POLICY, "ebpf"))
    took = time.monotonic() - start
    other.close()
    return refused, took


def test_a_socket_in_another_programs_sockarray_is_named_in_words() -> None:
    (code, message), took = netns.run_isolated(_in_a_live_map)
    assert code == "socket-in-another-map"
    assert "already belongs to another steering program's group" in message
    assert "EBUSY" not in message and "bpf(" not in message
    assert took >= 0.9  # it waited for a map being freed before saying so


# -- one owner per group -------------------------------------------------------------------

#: Every SID to index 0: a program whose effect cannot be mistaken for POLICY's or the hash's.
ONE = SteeringPolicy(FixedOffset(1, 8), "jhash", 1, seed=7)


def _receivers(socks: list[socket.socket], count: int = 32) -> list[int]:
    """Which member received each of *count* datagrams with distinct SIDs (in send order)."""
    addr = socks[0].getsockname()
    for s in socks:
        s.setblocking(False)
    got: dict[bytes, int] = {}
    for i in range(count):  # a new source port each: without a program the hash spreads them
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"\x40" + struct.pack("!Q", 0x1000 + i * 7919), addr)
    deadline = time.monotonic() + 2
    while len(got) < count and time.monotonic() < deadline:
        for idx, s in enumerate(socks):
            with contextlib.suppress(BlockingIOError):
                got[s.recv(64)[1:9]] = idx
    return [got.get(struct.pack("!Q", 0x1000 + i * 7919), -1) for i in range(count)]


def _second_attach() -> dict[str, Any]:
    socks = _group()
    out: dict[str, Any] = {}
    first = attach(socks, POLICY, "cbpf")
    out["cbpf again"] = _refusal(lambda: attach(socks, ONE, "cbpf"))
    out["ebpf on part"] = _refusal(lambda: attach(socks[2:], ONE, "ebpf"))
    out["recorder"] = _refusal(lambda: HashRecorder(socks))
    out["first steers"] = _receivers(socks) == [POLICY.select(p) for p in _sids(32)]
    first.detach()
    second = attach(socks, ONE, "ebpf")
    first.detach()  # a stale handle's detach: a no-op, not the second program's removal
    out["second steers after a stale detach"] = set(_receivers(socks)) == {0}
    second.release()  # gives the group up and leaves the program steering it
    out["released still steers"] = set(_receivers(socks)) == {0}
    third = attach(socks, POLICY, "cbpf")  # the kernel's rule: the new program replaces it
    out["third steers"] = _receivers(socks) == [POLICY.select(p) for p in _sids(32)]
    third.detach()
    return out


def _sids(count: int) -> list[bytes]:
    return [b"\x40" + struct.pack("!Q", 0x1000 + i * 7919) for i in range(count)]


def test_a_second_program_for_a_steered_group_is_refused_and_a_stale_detach_is_harmless() -> None:
    out = netns.run_isolated(_second_attach)
    for what in ("cbpf again", "ebpf on part", "recorder"):
        code, message = out[what]
        assert code == "group-already-steered", (what, message)
        assert "127.0.0.1:4433 is already steered by this process (cbpf program" in message
        assert "detach() that handle first" in message
    assert out["first steers"] is True
    assert out["second steers after a stale detach"] is True
    assert out["released still steers"] is True
    assert out["third steers"] is True


def _racing(threads: int) -> tuple[int, list[str]]:
    socks = _group()
    start = threading.Barrier(threads)
    handles: list[Any] = []
    refused: list[str] = []

    def one(i: int) -> None:
        start.wait()
        try:
            handles.append(attach(socks, POLICY, "cbpf" if i % 2 else "ebpf"))
        except SteeringError as exc:
            refused.append(exc.code)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    steered = _receivers(socks) == [POLICY.select(p) for p in _sids(32)]
    for h in handles:
        h.detach()
    return len(handles) if steered else -1, refused


def test_threads_attaching_to_one_group_get_one_handle() -> None:
    for _ in range(5):
        owners, refused = netns.run_isolated(_racing, 8)
        assert owners == 1
        assert refused == ["group-already-steered"] * 7


def _dissolved() -> dict[str, Any]:
    old = _group()
    stale = attach(old, POLICY, "ebpf")
    for s in old:
        s.close()  # the group is gone with its last socket, and the program with it
    new = _group()  # the same address and port: a new group
    out: dict[str, Any] = {"attach": _refusal(lambda: attach(new, ONE, "cbpf").release())}
    stale.detach()  # must not reach the new group's program
    out["new steers"] = set(_receivers(new)) == {0}
    return out


def test_a_new_group_where_a_closed_one_was_is_free_and_the_old_handle_cannot_touch_it() -> None:
    out = netns.run_isolated(_dissolved)
    assert out == {"attach": ("accepted", ""), "new steers": True}


def _member_moves(backend: Literal["cbpf", "ebpf"]) -> dict[str, Any]:
    """A wildcard member connects and disconnects: it is rehashed out of the group (and is
    in none) while its address is the group's again; detach() must still reach the group."""
    a, b, c = netns.open_group(3, "0.0.0.0", 4433)
    handle = attach([a, b, c], ONE, backend)
    a.connect(("127.0.0.1", 9))
    _disconnect(a)
    handle.detach()
    return {"program left": _has_program(b)}


@pytest.mark.parametrize("backend", ["cbpf", "ebpf"])
def test_detach_goes_through_a_socket_still_in_the_group(backend: str) -> None:
    assert netns.run_isolated(_member_moves, backend) == {"program left": False}


def _disconnect(s: socket.socket) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    addr = struct.pack("H14x", socket.AF_UNSPEC)
    if libc.connect(s.fileno(), addr, len(addr)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def _forked(backend: Literal["cbpf", "ebpf"]) -> dict[str, Any]:
    """A pre-fork server: the parent attaches, a worker inherits the handle and leaves (a
    ``with attach(...)`` unwinding in the child). The program belongs to the group and the
    handle to the parent."""
    socks = _group()
    parents = attach(socks, ONE, backend)
    done = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            holds = parents.holds_group()
            parents.detach()  # closes the child's copies of the fds, nothing else
            os.write(done[1], b"0" if holds else b"1")
        finally:
            os._exit(0)
    child_saw_no_group = os.read(done[0], 1) == b"1"
    os.waitpid(pid, 0)
    out = {
        "child saw no group": child_saw_no_group,
        "parent still steers": set(_receivers(socks)) == {0},
        "parent holds": parents.holds_group(),
    }
    parents.detach()
    out["detached"] = not _has_program(socks[0])
    return out


@pytest.mark.parametrize("backend", ["cbpf", "ebpf"])
def test_a_forked_childs_copy_of_a_handle_cannot_detach_the_parents_program(backend: str) -> None:
    out = netns.run_isolated(_forked, backend)
    assert out == {
        "child saw no group": True,
        "parent still steers": True,
        "parent holds": True,
        "detached": True,
    }


def _chowned() -> tuple[str, str]:
    socks = _group()
    held = attach(socks, POLICY, "cbpf")
    os.fchown(socks[0].fileno(), 1000, -1)  # the key's owner changes, the group does not
    refused = _refusal(lambda: attach([socks[0]], ONE, "cbpf"))
    held.detach()
    return refused


def test_a_member_is_known_by_its_cookie_whatever_its_key_says() -> None:
    code, message = netns.run_isolated(_chowned)
    assert code == "group-already-steered", message
