# Strategy: every live-kernel experiment (tests, the demo, benchmarks) runs in network
# namespaces that sidkit creates and throws away, never in the caller's own. A namespace is a
# property of a process, so the experiment runs in a forked child:
#
#   caller ──fork──> server process: unshare(CLONE_NEWNET), loopback up
#                        └──fork──> client process: unshare(CLONE_NEWNET), loopback up
#
# The two are joined by a veth pair (created with pyroute2, the maintained pure-Python netlink
# library), with static neighbour entries so no datagram waits on ARP/NDP, and two client
# addresses per family so a client can change address as well as port. The client process is an
# agent: the experiment (a function run in the server process) hands it batches of datagrams
# to send from given source addresses and ports; the server side then collects which socket of
# its reuseport group received each one. Results come back to the caller pickled over a pipe;
# an exception in the experiment comes back as a KernelOracleError carrying its traceback.
# When the children exit the kernel destroys both namespaces, the veth pair, every socket and
# every BPF program with them -- cleanup cannot be forgotten, even on Ctrl-C.
"""Throw-away network namespaces joined by a veth pair, for live-kernel experiments."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import pickle
import select
import signal
import socket
import struct
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import attrs
from pyroute2 import IPRoute

from sidkit._errors import KernelOracleError

__all__ = [
    "CLIENT_V4",
    "CLIENT_V6",
    "SERVER_V4",
    "SERVER_V6",
    "Datagram",
    "Lab",
    "netns_available",
    "open_group",
    "run_in_lab",
    "run_isolated",
]

CLONE_NEWNET: Final = 0x4000_0000
SERVER_V4: Final = "10.77.0.1"
CLIENT_V4: Final = ("10.77.0.2", "10.77.0.3")
SERVER_V6: Final = "fd77::1"
CLIENT_V6: Final = ("fd77::2", "fd77::3")
_IFF_UP: Final = 0x1
_SIOCGIFFLAGS: Final = 0x8913
_SIOCSIFFLAGS: Final = 0x8914
_RCVBUF: Final = 32 << 20
_PR_SET_PDEATHSIG: Final = 1
T = TypeVar("T")


def _refused(what: str, code: int) -> KernelOracleError:
    err = KernelOracleError(f"{what}: {errno.errorcode.get(code, code)} ({os.strerror(code)})")
    err.errno = code
    return err


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare_net() -> None:
    """Move this process into a new, empty network namespace and bring its loopback up.

    Python 3.11 has no ``os.unshare``; libc's wrapper is called directly. Only the calling
    thread moves, which is why this runs right after fork in a single-threaded child.
    """
    if not sys.platform.startswith("linux"):
        raise _refused(f"network namespaces need Linux, this is {sys.platform}", errno.ENOSYS)
    if _libc().unshare(CLONE_NEWNET) != 0:
        raise _refused("unshare(CLONE_NEWNET)", ctypes.get_errno())
    _link_up("lo")


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this (just forked) process when its parent dies.

    A namespace child must not outlive the process that waits for it: if the caller is
    killed outright (SIGKILL, a crash) nobody would reap or stop the experiment. prctl
    PR_SET_PDEATHSIG (kernel/sys.c) does it; the getppid() check covers a parent that died
    between fork and prctl. Safe here because the forking thread blocks until the child
    ends (the signal follows the *thread* that forked).
    """
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _link_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | _IFF_UP))


def _send_obj(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("!Q", len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv_obj(fd: int) -> Any:
    def exact(n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = os.read(fd, n - len(chunks))
            if not chunk:
                raise EOFError("peer process exited")
            chunks += chunk
        return bytes(chunks)

    (size,) = struct.unpack("!Q", exact(8))
    return pickle.loads(exact(size))


def run_isolated(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` in a forked child inside a new network namespace; return its result.

    The result must pickle. An exception in *fn* is re-raised here as KernelOracleError (its
    message carries the child's traceback); so is a refused ``unshare`` (not root, no
    CAP_SYS_ADMIN, not Linux), with ``errno`` set.
    """
    if not sys.platform.startswith("linux"):
        raise _refused(f"network namespaces need Linux, this is {sys.platform}", errno.ENOSYS)
    r, w = os.pipe()
    parent = os.getpid()
    # SIGINT is blocked across the fork: a Ctrl-C then waits (pending in the kernel) until
    # the parent holds the child's pid inside the handler below, which stops the child, and
    # until the child has set SIGINT's default action, which ends it. Unblocked, it could
    # land between fork() and either point: a parent that never learnt the pid, or a child
    # running the caller's KeyboardInterrupt handling as if it were the command.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        status = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _die_with_parent(parent)
            _unshare_net()
            _send_obj(w, ("ok", fn(*args)))
        except BaseException as exc:
            status = 1
            code = exc.errno if isinstance(exc, OSError) else None
            report = (type(exc).__name__, str(exc), traceback.format_exc(), code)
            with contextlib.suppress(BaseException):
                _send_obj(w, ("error", report))
        finally:
            os._exit(status)
    os.close(w)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        kind, payload = _recv_obj(r)
    except EOFError:
        kind, payload = "error", ("EOFError", "the namespace process died", "", None)
    except BaseException:
        # Ctrl-C (or `kill -INT` sent to this process alone, which the child never sees):
        # stop the experiment now rather than wait for it to finish.
        os.close(r)
        _stop(pid)
        raise
    os.close(r)
    died_by = _reap(pid)
    if kind == "ok":
        return payload  # type: ignore[no-any-return]
    name, message, tb, code = payload
    if died_by == signal.SIGINT or name == KeyboardInterrupt.__name__:
        # Ctrl-C reaches the whole process group: the child (SIGINT at its default action,
        # or caught before it set that) may end first and close the pipe before this
        # process runs its own handler. It is the same interrupt, not a failed experiment.
        raise KeyboardInterrupt
    # A refusal sidkit itself worded (not root: unshare EPERM) reads as that sentence alone;
    # any other exception keeps its class name, which is then part of what went wrong.
    head = message if name == KernelOracleError.__name__ else f"{name}: {message}"
    err = KernelOracleError(f"{head}\n--- in the namespace process ---\n{tb}")
    err.errno = code
    raise err


def _reap(pid: int) -> int | None:
    """Wait for child *pid* and return the signal that killed it, if one did; on Ctrl-C
    while waiting, stop it (see :func:`_stop`)."""
    try:
        _pid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    except KeyboardInterrupt:
        # The signal may have landed after waitpid() already reaped the child (Python runs
        # the handler at the next bytecode): _stop() checks before it kills.
        _stop(pid)
        raise
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


def _stop(pid: int) -> None:
    """SIGKILL child *pid* unless it is already gone, then reap it.

    ``waitpid(WNOHANG)`` first: ChildProcessError means it was reaped already (and its pid
    may belong to someone else by now: never signal it); a non-zero pid means it just exited
    and is now reaped. Only a child that is still ours and unreaped -- whose pid therefore
    cannot have been reused -- is killed. A second Ctrl-C does not interrupt the final wait:
    SIGKILL makes it immediate.
    """
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if done:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while True:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            return
        except KeyboardInterrupt:
            continue
        return


def _probe() -> bool:
    return True


@functools.cache
def netns_available() -> str | None:
    """None if this machine lets sidkit create network namespaces, else the reason why not."""
    try:
        run_isolated(_probe)
    except KernelOracleError as exc:
        hint = " (needs root or CAP_SYS_ADMIN)" if exc.errno in (errno.EPERM, errno.EACCES) else ""
        return f"{str(exc).splitlines()[0]}{hint}"
    return None


@attrs.frozen
class Datagram:
    """One datagram for the client agent to send: from ``(src, sport)`` to ``(dst, dport)``."""

    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def open_group(
    n: int, addr: str = SERVER_V4, port: int = 4433, *, rcvbuf: int = _RCVBUF
) -> list[socket.socket]:
    """Bind *n* UDP sockets with SO_REUSEPORT to ``(addr, port)``, in this order.

    The kernel's group order is this bind order (net/core/sock_reuseport.c appends), which
    is what classic BPF indices and the default hash selection refer to. Receive buffers are
    forced large (SO_RCVBUFFORCE, root) so a burst is queued, not dropped.
    """
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.bind((addr, port))
            s.setblocking(False)
    except BaseException:
        for s in sockets:
            s.close()
        raise
    return sockets


class Lab:
    """The server side of a two-namespace lab; create it inside :func:`run_in_lab`.

    ``lab.exchange(datagrams, sockets)`` has the client namespace send *datagrams* and returns,
    for each, the index in *sockets* of the socket that received it (None if none did).
    """

    def __init__(self, to_client: int, from_client: int) -> None:
        self._to = to_client
        self._from = from_client

    def _call(self, *command: object) -> Any:
        _send_obj(self._to, command)
        kind, payload = _recv_obj(self._from)
        if kind == "error":
            raise KernelOracleError(f"client agent failed: {payload}")
        return payload

    def send(self, datagrams: Sequence[Datagram]) -> list[str | None]:
        """Send from the client namespace; per datagram, None or the send error's name."""
        result: list[str | None] = self._call("send", list(datagrams))
        return result

    def probe_connected(self, dgram: Datagram, timeout: float = 0.5) -> str | None:
        """Send from a *connected* client socket and report the error it then sees, if any
        (``ECONNREFUSED`` when the server side dropped it with an ICMP port unreachable)."""
        result: str | None = self._call("probe", dgram, timeout)
        return result

    def exchange(
        self,
        datagrams: Sequence[Datagram],
        sockets: Sequence[socket.socket],
        *,
        batch: int = 256,
        timeout: float = 1.0,
    ) -> list[int | None]:
        """Send *datagrams* (in batches) and report which of *sockets* received each.

        Datagrams are matched by ``(payload, source address, source port)``, so payloads need
        not be unique across different sources. Loss shows up as None; on veth with large
        receive buffers there is none in practice, and the tests assert that.
        """
        keys = [(d.payload, d.src, d.sport) for d in datagrams]
        where: dict[tuple[bytes, str, int], list[int]] = {}
        for i, key in enumerate(keys):
            where.setdefault(key, []).append(i)
        result: list[int | None] = [None] * len(datagrams)
        for start in range(0, len(datagrams), batch):
            chunk = datagrams[start : start + batch]
            self.send(chunk)
            pending = len(chunk)
            while pending:
                ready, _, _ = select.select(list(sockets), [], [], timeout)
                if not ready:
                    break
                for s in ready:
                    index = sockets.index(s)
                    while True:
                        try:
                            data, addr = s.recvfrom(65535)
                        except BlockingIOError:
                            break
                        slots = where.get((data, _norm(addr[0]), addr[1]))
                        if slots:
                            result[slots.pop(0)] = index
                            pending -= 1
        return result


def _norm(addr: str) -> str:
    return addr.removeprefix("::ffff:")


def _client_agent(cmd_r: int, res_w: int) -> None:  # pragma: no cover - client process
    socks: dict[tuple[str, int], socket.socket] = {}
    while True:
        try:
            command = _recv_obj(cmd_r)
        except EOFError:
            return
        try:
            if command[0] == "send":
                errors: list[str | None] = []
                for d in command[1]:
                    key = (d.src, d.sport)
                    s = socks.get(key)
                    if s is None:
                        fam = socket.AF_INET6 if ":" in d.src else socket.AF_INET
                        s = socket.socket(fam, socket.SOCK_DGRAM)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind((d.src, d.sport))
                        socks[key] = s
                    try:
                        s.sendto(d.payload, (d.dst, d.dport))
                        errors.append(None)
                    except OSError as exc:
                        errors.append(errno.errorcode.get(exc.errno or 0, str(exc)))
                # Close after every batch: a mobility run uses thousands of source ports,
                # more than the default RLIMIT_NOFILE of 1024.
                for s in socks.values():
                    s.close()
                socks.clear()
                _send_obj(res_w, ("ok", errors))
            elif command[0] == "probe":
                d, timeout = command[1], command[2]
                fam = socket.AF_INET6 if ":" in d.src else socket.AF_INET
                with socket.socket(fam, socket.SOCK_DGRAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((d.src, d.sport))
                    s.connect((d.dst, d.dport))
                    s.settimeout(timeout)
                    outcome: str | None = None
                    try:
                        s.send(d.payload)
                        s.recv(1)
                    except TimeoutError:
                        outcome = None
                    except OSError as exc:
                        outcome = errno.errorcode.get(exc.errno or 0, str(exc))
                _send_obj(res_w, ("ok", outcome))
            else:
                _send_obj(res_w, ("error", f"unknown command {command[0]!r}"))
        except Exception as exc:
            _send_obj(res_w, ("error", f"{type(exc).__name__}: {exc}"))


def _configure(ifname: str, addrs4: Sequence[str], addrs6: Sequence[str]) -> str:
    """Give *ifname* its addresses (IPv6 without duplicate address detection), bring it up,
    and return its MAC address."""
    with IPRoute() as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        for a in addrs4:
            ip.addr("add", index=idx, address=a, prefixlen=24)
        for a in addrs6:
            ip.addr("add", index=idx, address=a, prefixlen=64, flags=0x02)  # IFA_F_NODAD
        ip.link("set", index=idx, state="up")
        mac: str = ip.get_links(idx)[0].get_attr("IFLA_ADDRESS")
        return mac


def _neighbours(ifname: str, peers: Sequence[str], mac: str) -> None:
    with IPRoute() as ip:
        idx = ip.link_lookup(ifname=ifname)[0]
        for a in peers:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            ip.neigh("add", dst=a, lladdr=mac, ifindex=idx, state=0x80, family=fam)  # PERMANENT


def _lab_main(fn: Callable[..., T], args: tuple[object, ...]) -> T:
    """Runs in the (already unshared) server process: build the client side, run *fn*."""
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    ready_r, ready_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - client process
        code = 0
        try:
            _die_with_parent(parent)
            os.close(cmd_w)
            os.close(res_r)
            _unshare_net()
            os.write(ready_w, b"1")
            server_mac = _recv_obj(cmd_r)
            mac = _configure("sidkit1", CLIENT_V4, CLIENT_V6)
            _neighbours("sidkit1", (SERVER_V4, SERVER_V6), server_mac)
            _send_obj(res_w, ("ok", mac))
            _client_agent(cmd_r, res_w)
        except BaseException:
            code = 1
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(cmd_r)
    os.close(res_w)
    try:
        if os.read(ready_r, 1) != b"1":
            raise KernelOracleError("the client namespace process did not start")
        with IPRoute() as ip:
            ip.link(
                "add", ifname="sidkit0", kind="veth", peer={"ifname": "sidkit1", "net_ns_pid": pid}
            )
        mac = _configure("sidkit0", (SERVER_V4,), (SERVER_V6,))
        _send_obj(cmd_w, mac)
        _, client_mac = _recv_obj(res_r)
        _neighbours("sidkit0", (*CLIENT_V4, *CLIENT_V6), client_mac)
        return fn(Lab(cmd_w, res_r), *args)
    finally:
        os.close(cmd_w)
        os.close(res_r)
        # The client agent ends on EOF of its command pipe (closed just above) and dies with
        # this process in any case (PR_SET_PDEATHSIG).
        _reap(pid)


def run_in_lab(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(lab, *args)`` in a fresh server namespace joined to a client namespace.

    Addresses: server ``SERVER_V4`` / ``SERVER_V6``; client ``CLIENT_V4`` and ``CLIENT_V6``
    (two of each, so a client can move). See the module comment for the
    process layout and cleanup guarantees.
    """
    result: T = run_isolated(_lab_main, fn, args)
    return result
