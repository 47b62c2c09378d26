# Strategy: the one place where a steering policy meets a live SO_REUSEPORT group. A classic
# program goes in through SO_ATTACH_REUSEPORT_CBPF; an eBPF program is loaded through bpf(2)
# with a REUSEPORT_SOCKARRAY map filled in group order and attached with
# SO_ATTACH_REUSEPORT_EBPF. Every kernel refusal becomes a KernelOracleError carrying the
# errno (and the verifier log); every unusable socket a SteeringError before any syscall. The
# handle owns what was created, so a detach or a failed attach leaves nothing behind.
#
# Lifecycle. Every socket given must be of one group (one netns, family, address, port,
# IPV6_V6ONLY, bound device and owner: udp_reuseport_add_sock's test), each once (by
# SO_COOKIE, so a dup()ed fd is the same socket). One owner per group: this process keeps a
# registry of the group each live handle holds, and a second attach to a group that a live
# handle still holds is refused with the holder named -- the kernel would let the last
# attach win and leave the first handle's detach() to remove the second program. Which of a
# handle's sockets are still in its group the kernel itself records: a socket that leaves
# its group leaves every REUSEPORT_SOCKARRAY (reuseport_detach_sock ->
# bpf_sk_reuseport_detach), so each handle keeps its sockets in one -- the eBPF program's
# map, or a roster map for classic BPF when the process may create maps (otherwise: open
# and still bound at the group's key). A new attach is refused when it shares a socket
# with a holder or has the holder's key; detach() goes only through sockets still in the
# group. What the kernel does not say is which group a socket is in: two groups can share
# an address (a connect or disconnect moves sockets into a new one), and an attach to the
# other one is refused with release() named as the way out. A forked child starts with no
# groups; the handles it inherited are the parent's (detach() there closes the child's fd
# copies only). A dropped handle is released by a weakref finalizer (also run at exit): it
# closes the fds this process holds and gives up the group, but does not detach -- the
# group keeps its program as after a plain close of the fd. An eBPF program left that way
# keeps its sockets in its map: detach_program() takes it out.
"""Attaching steering programs to a live SO_REUSEPORT group."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol, cast

import attrs

from sidkit._errors import KernelOracleError
from sidkit.bpf import _syscall, cbpf, ebpf
from sidkit.steering._policy import SteeringError, SteeringPolicy, compile_cbpf, compile_ebpf

__all__ = [
    "PartialGroupWarning",
    "SocketLike",
    "SteeringHandle",
    "attach",
    "attach_sk_reuseport",
    "detach_program",
]


class SocketLike(Protocol):
    """What :func:`attach` needs of a socket: a :class:`socket.socket`, or asyncio's
    ``TransportSocket``, which wraps one without being one."""

    @property
    def type(self) -> int: ...
    def fileno(self) -> int: ...
    def getsockopt(self, level: int, optname: int, /) -> int: ...
    def setsockopt(self, level: int, optname: int, value: int | bytes, /) -> None: ...
    def getsockname(self) -> Any: ...


SO_DOMAIN: Final = 39  # include/uapi/asm-generic/socket.h
SO_NETNS_COOKIE: Final = 71  # Linux 5.14+
SO_BINDTOIFINDEX: Final = 62  # Linux 5.0+
SO_COOKIE: Final = 57  # Linux 4.12+
#: How long attach() retries a sockarray update refused with EBUSY: a socket leaves a
#: REUSEPORT_SOCKARRAY only when that map is freed, after an RCU grace period and a work item
#: (kernel/bpf/reuseport_array.c, reuseport_array_free), ~20 ms after the last fd closed.
EBUSY_RETRY_S: Final = 1.0


def _prog_id(fd: int) -> int | None:
    """The id of the BPF program open on *fd* (its fdinfo), or None if *fd* is not one."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("prog_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _release(
    prog: tuple[int, int | None] | None,
    owned_map: _syscall.Map | None,
    roster: _syscall.Map | None,
) -> None:
    """What a handle holds, released once: by detach() or when the handle is collected.

    The program fd is closed only if it still holds the program it was opened for: a caller
    that closed ``handle.prog_fd`` itself may have had the number reused by now, and closing
    it again would close someone else's file."""
    if prog is not None and prog[1] is not None and _prog_id(prog[0]) == prog[1]:
        os.close(prog[0])
    for m in (owned_map, roster):
        if m is not None:
            m.close()


def _cookie(s: SocketLike) -> int | None:
    """The socket's SO_COOKIE (Linux 4.12+): one number per socket for its whole life, the
    same through every fd that refers to it, never reused; None if it cannot be read."""
    try:
        # through the fd: a wrapper shaped like a socket may take no buffer length
        probe = socket.socket(fileno=s.fileno())
    except (OSError, TypeError, ValueError):
        return None
    try:
        raw = probe.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8)
        return int(struct.unpack("=Q", raw)[0])
    except (OSError, struct.error):
        return None
    finally:
        probe.detach()  # the fd stays the caller's


@attrs.define
class SteeringHandle:
    """An attached steering program; :meth:`detach` restores the kernel's hash selection.

    A handle owns its group in this process: while it is attached and one of its sockets is
    still in the group, :func:`attach` refuses a second program for that group.
    :meth:`release` (or dropping the handle) gives the group up and leaves the program in
    it; :meth:`detach` takes the program out. See the module comment.
    """

    backend: Literal["cbpf", "ebpf"]
    sock: SocketLike
    prog_fd: int | None = None
    map: _syscall.Map | None = None
    attached: bool = True
    group: tuple[SocketLike, ...] = ()
    #: The group's key (see _group_key), set when the handle takes the group.
    key: tuple[object, ...] | None = attrs.field(default=None, repr=False)
    #: A REUSEPORT_SOCKARRAY holding the group's sockets: the kernel's own record of which
    #: of them are still in the group (see _members). The eBPF program's map, or for classic
    #: BPF one made for the purpose when the process may create maps.
    _roster: _syscall.Map | None = attrs.field(default=None, init=False, repr=False)
    _pid: int = attrs.field(factory=os.getpid, init=False, repr=False)
    _finalizer: weakref.finalize[Any, Any] | None = attrs.field(
        default=None, init=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        self._own()

    def _own(self) -> None:
        """(Re)arm the finalizer with what this handle holds now."""
        if self._finalizer is not None:
            self._finalizer.detach()
        prog = None if self.prog_fd is None else (self.prog_fd, _prog_id(self.prog_fd))
        roster = None if self._roster is self.map else self._roster
        self._finalizer = weakref.finalize(self, _release, prog, self.map, roster)

    def _members(self) -> list[SocketLike]:
        """This handle's sockets that are still in its group, each once.

        With a roster, the kernel says: a socket that leaves its group (closed, connected
        out of it, rehashed by a disconnect, bound to a device) leaves every
        REUSEPORT_SOCKARRAY with it (net/core/sock_reuseport.c reuseport_detach_sock ->
        bpf_sk_reuseport_detach, Linux 4.19+). Without one (no CAP_BPF for classic BPF, or a
        program of attach_sk_reuseport), the sockets that are open and still bound where the
        group is.
        """
        if not self.attached or self._pid != os.getpid():
            return []
        inside: set[int] | None = None
        if self._roster is not None and not self._roster.closed:
            inside = set()
            try:
                for i in range(self._roster.max_entries):
                    value = self._roster.lookup(struct.pack("=I", i))
                    if value is not None:
                        inside.add(struct.unpack("=Q", value)[0])
            except OSError:  # closed by a release() in another thread just now
                return []
        out: list[SocketLike] = []
        seen: set[int | None] = set()
        for s in (self.sock, *self.group):
            try:
                if s.fileno() < 0:
                    continue
                cookie = _cookie(s)
                if inside is not None:
                    here = cookie in inside
                else:  # None: a handle built by hand, no key to compare
                    here = self.key is None or _group_key(s) == self.key
            except OSError:
                continue
            if here and (cookie is None or cookie not in seen):
                seen.add(cookie)
                out.append(s)
        return out

    def holds_group(self) -> bool:
        """Whether this handle still holds its group: attached in this process, and one of
        its sockets is still in the group (what :func:`attach` refuses a second program
        for)."""
        return bool(self._members())

    def _is_owner(self) -> bool:
        ref = _OWNERS.get(self.key) if self.key is not None else None
        return ref is not None and ref() is self

    def release(self) -> None:
        """Give the group up and close this process's fds, leaving the program in the group.

        What dropping the handle does, said explicitly: for a process that attaches and
        exits (the group keeps steering), for a handover to another process, and for the
        case sidkit cannot see -- two groups at one address (a connect or disconnect moved
        sockets into a new one) -- so that the other group can be attached. An eBPF
        program left this way keeps its sockets in its map: an eBPF attach to them is
        refused until the program is out (:func:`detach_program`). Idempotent.
        """
        with _OWNERS_LOCK:
            if self._is_owner():
                del _OWNERS[self.key]
            self.attached = False
            if self._finalizer is not None:
                self._finalizer()  # closes the fds, once
            self.prog_fd = None

    def detach(self) -> None:
        """Detach the program from the group and free the program and map (idempotent).

        The program belongs to the group, not to the socket it was attached through, so the
        detach goes through a socket that is still in the group (the attaching socket may
        have been closed by a worker that left). When none is, the group is gone and the
        kernel freed the program with it. A group found without a program (someone detached
        it with a raw setsockopt) is what detach() wanted. In a forked child the handle is
        the parent's: detach() there only closes the child's copies of the fds.
        SO_DETACH_REUSEPORT_BPF exists since Linux 5.7.
        """
        with _lock_for(self.key):
            if not self.attached:
                return
            try:
                for member in self._members():
                    try:
                        member.setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
                        break
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:
                            raise _refused("SO_DETACH_REUSEPORT_BPF", exc, member) from exc
                if self._pid == os.getpid():
                    self._empty_sockarrays()
            finally:
                self.release()

    def _empty_sockarrays(self) -> None:
        """Take the sockets out of the REUSEPORT_SOCKARRAYs now that no program uses them.

        A socket belongs to one sockarray at a time; closing the map would free it only
        after an RCU grace period (~20 ms), and an attach in that window gets EBUSY. Deleting
        the elements releases each socket at once (reuseport_array_delete_elem). Only after
        the detach: while the program runs, the map is its routing table.
        """
        for m in {id(m): m for m in (self.map, self._roster) if m is not None}.values():
            if m.closed:
                continue
            for key in list(m.keys()):
                try:
                    m.delete(key)
                except KernelOracleError as exc:
                    if exc.errno != errno.ENOENT:
                        raise

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


#: Which handle of this process holds which group (by _group_key). Weak: a dropped handle
#: gives its group up with no call, and its entry goes with it.
_OWNERS: dict[tuple[object, ...] | None, weakref.ref[SteeringHandle]] = {}
#: Guards _OWNERS and _KEY_LOCKS; never held across a syscall that can wait.
_OWNERS_LOCK = threading.RLock()
#: One lock per group key, held across "is it held? attach; take it" (which can wait up to
#: EBUSY_RETRY_S), so that threads attaching to one group are serialised and threads
#: attaching to others are not held up.
_KEY_LOCKS: dict[tuple[object, ...] | None, threading.RLock] = {}


def _lock_for(key: tuple[object, ...] | None) -> threading.RLock:
    with _OWNERS_LOCK:
        lock = _KEY_LOCKS.get(key)
        if lock is None:
            lock = _KEY_LOCKS[key] = threading.RLock()
        return lock


def _after_fork_in_child() -> None:
    """A forked child starts with no groups: the parent's handles are the parent's (their
    detach() in the child only closes the child's fd copies), and a lock another thread of
    the parent held at the fork would never be released in the child."""
    global _OWNERS_LOCK  # noqa: PLW0603 -- a new lock, as logging's after-fork hook makes
    _OWNERS_LOCK = threading.RLock()
    _OWNERS.clear()
    _KEY_LOCKS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_owner(key: tuple[object, ...], sockets: Sequence[SocketLike]) -> None:
    """Refuse a second program for a group a live handle of this process holds: one at the
    same key, or one that any of *sockets* is still a member of (by SO_COOKIE, which no
    chown or rebinding changes)."""
    cookies = {c for s in sockets if (c := _cookie(s)) is not None}
    with _OWNERS_LOCK:
        refs = list(_OWNERS.items())
    for held, ref in refs:
        holder = ref()
        if holder is None:
            continue
        members = holder._members()
        if not members:
            continue
        shared = [s for s in members if _cookie(s) in cookies]
        if held != key and not shared:
            continue
        fds = ", ".join(str(s.fileno()) for s in members)
        # a shared socket whose key changed (fchown) is still in the holder's group
        where = _describe(cast(Any, held))
        raise SteeringError(
            f"the reuseport group at {where} is already steered by this process "
            f"({holder.backend} program, held through socket fd {fds}): one program per "
            "group, and attaching another would replace it under the first handle; detach() "
            "that handle first (or release() it if these sockets are another group at the "
            "same address: a connect or disconnect moved them)",
            code="group-already-steered",
        )


def _take(handle: SteeringHandle, key: tuple[object, ...]) -> SteeringHandle:
    """Make *handle* the holder of group *key* (the caller holds the key's lock, checked)."""
    with _OWNERS_LOCK:
        old = _OWNERS.get(key)
        if old is not None and (previous := old()) is not None and previous is not handle:
            # It held nothing any more (its sockets closed or moved): it must not reach
            # this group through a socket that moves back into it.
            previous.release()
        handle.key = key

        def forget(ref: weakref.ref[SteeringHandle], key: tuple[object, ...] = key) -> None:
            with _OWNERS_LOCK:
                if _OWNERS.get(key) is ref:
                    del _OWNERS[key]

        _OWNERS[key] = weakref.ref(handle, forget)
    return handle


def _refused(what: str, exc: OSError, sock: SocketLike | None = None) -> KernelOracleError:
    why = ""
    if sock is not None and exc.errno == errno.EINVAL:
        # reuseport_attach_prog / reuseport_detach_prog: the socket has no sk_reuseport_cb
        why = (
            f" (socket fd {sock.fileno()} is in no reuseport group: a connected socket, or one "
            "bound to a device after bind, leaves its group)"
        )
    err = KernelOracleError(f"the kernel refused {what}: {exc.strerror or exc}{why}")
    err.errno = exc.errno
    return err


def _netns_of(s: SocketLike) -> object:
    """The network namespace of socket *s*: SO_NETNS_COOKIE (Linux 5.14+), else this
    thread's namespace (a socket created elsewhere and passed in is then not told apart)."""
    try:
        return (
            "cookie",
            struct.unpack("=Q", cast(Any, s).getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0],
        )
    except (OSError, TypeError, struct.error):
        try:
            return ("ino", os.stat("/proc/thread-self/ns/net").st_ino)
        except OSError:
            return None


def _group_key(s: SocketLike) -> tuple[object, ...]:
    """Which reuseport group *s* is in: the kernel groups SO_REUSEPORT sockets of one
    network namespace, family, IPV6_V6ONLY setting, port, bound device and owner whose bound
    addresses are equal (net/ipv4/udp.c udp_reuseport_add_sock -> net/core/sock_reuseport.c
    reuseport_add_sock, reached from udp_lib_get_port; read in Linux 6.1 and 6.12, measured
    for IPV6_V6ONLY on 6.18).

    Key layout: (netns, family, address, port, scope id, v6only, bound ifindex, owner uid).
    """
    name = tuple(s.getsockname())
    domain = s.getsockopt(socket.SOL_SOCKET, SO_DOMAIN)
    v6only = (
        bool(s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        if domain == socket.AF_INET6
        else None
    )
    try:
        ifindex: object = s.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX)
    except OSError:  # before Linux 5.0
        ifindex = None
    try:
        uid: object = os.fstat(s.fileno()).st_uid
    except OSError:
        uid = None
    return (
        _netns_of(s),
        domain,
        *name[:2],
        name[3] if len(name) > 3 else None,
        v6only,
        ifindex,
        uid,
    )


def _describe(key: tuple[object, ...]) -> str:
    addr, port = key[2], key[3]
    where = f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"
    extra = []
    if key[5] is not None:
        extra.append("IPV6_V6ONLY" if key[5] else "dual-stack")
    if key[6]:
        try:
            extra.append(f"bound to {socket.if_indextoname(cast(int, key[6]))}")
        except (OSError, TypeError, ValueError):
            extra.append(f"bound to ifindex {key[6]}")
    return f"{where} ({', '.join(extra)})" if extra else where


def _differs(key: tuple[object, ...], other: tuple[object, ...]) -> str:
    """Where *other*'s group is, in words that tell it from *key*'s."""
    if other[0] != key[0]:
        return "another network namespace"
    if other[7] != key[7] and other[:7] == key[:7]:
        return f"{_describe(other)} owned by uid {other[7]} (the first by uid {key[7]})"
    return _describe(other)


def _check_group(sockets: Sequence[SocketLike]) -> tuple[object, ...]:
    """Check every socket is usable and all are of one group; return the group's key."""
    if isinstance(sockets, (str, bytes)) or not isinstance(sockets, Sequence):
        raise SteeringError(f"attach needs a list of sockets, not {type(sockets).__name__}")
    if not sockets:
        raise SteeringError("attach needs at least one socket of the group")
    for s in sockets:
        if not all(hasattr(s, a) for a in ("fileno", "type", "getsockopt", "setsockopt")):
            raise SteeringError(f"not a socket: {s!r}")
        if s.fileno() < 0:
            raise SteeringError(f"not an open socket: {s!r}")
        if s.type != socket.SOCK_DGRAM:
            raise SteeringError("sidkit steers UDP groups; this socket is not SOCK_DGRAM")
        if not s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
            raise SteeringError(f"socket fd {s.fileno()} does not have SO_REUSEPORT set")
        try:
            port = s.getsockname()[1]
        except OSError as exc:
            raise SteeringError(f"socket fd {s.fileno()} is not bound") from exc
        if not port:
            raise SteeringError(f"socket fd {s.fileno()} is not bound (port 0)")
    key = _group_key(sockets[0])
    fds = [s.fileno() for s in sockets]
    if len(set(fds)) != len(fds):
        raise SteeringError("a socket appears twice in the group list")
    first_fd: dict[int, int] = {}
    for s in sockets:  # one socket through two fds (dup, fromfd, SCM_RIGHTS) is one member
        cookie = _cookie(s)
        if cookie is not None and first_fd.setdefault(cookie, s.fileno()) != s.fileno():
            raise SteeringError(
                f"a socket appears twice in the group list: fd {first_fd[cookie]} and fd "
                f"{s.fileno()} are the same socket (one was dup()ed from the other)"
            )
    for s in sockets[1:]:
        other = _group_key(s)
        if other != key:
            where = _differs(key, other)
            raise SteeringError(
                f"sockets of different reuseport groups: fd {sockets[0].fileno()} is bound to "
                f"{_describe(key)}, fd {s.fileno()} to {where}; one program steers one group"
            )
    return key


def attach(
    sockets: Sequence[SocketLike],
    policy: SteeringPolicy,
    backend: Literal["cbpf", "ebpf"] = "cbpf",
    *,
    on_no_sid: Literal["pass", "drop"] = "pass",
) -> SteeringHandle:
    """Attach *policy* to the bound reuseport group of *sockets* and return a handle.

    *sockets* must be in the kernel's group order (bind order, minus closed sockets with the
    last one moved into the hole -- :class:`sidkit.reuseport.Group` tracks it): classic BPF
    returns an index into that order. The eBPF backend fills a REUSEPORT_SOCKARRAY with
    ``sockets[i]`` at key i, so its indices are the list's regardless of group order.

    *sockets* may be :class:`socket.socket` objects or anything shaped like one (asyncio's
    ``TransportSocket`` from ``transport.get_extra_info("socket")``): only ``fileno``,
    ``type``, ``getsockopt``, ``setsockopt`` and ``getsockname`` are used.

    Raises :class:`SteeringError` for unusable sockets, sockets of more than one group
    (another address, port, family, IPV6_V6ONLY setting, bound device, owner or network
    namespace), a group that a live handle of this process already steers (one owner per
    group: detach or :meth:`~SteeringHandle.release` that handle first), and a socket
    that is in another steering program's REUSEPORT_SOCKARRAY (after waiting up to
    ``EBUSY_RETRY_S`` for a just-closed map to be freed); and
    :class:`~sidkit.KernelOracleError` (an ``OSError``) when the kernel refuses: not Linux,
    eBPF without CAP_BPF (the program and the REUSEPORT_SOCKARRAY map need it; classic BPF
    needs no capability), a verifier rejection (the verifier's log is in the message).

    Fewer sockets than ``policy.n`` is accepted with a :class:`PartialGroupWarning` that
    says what the indices without a socket do, as the kernel defines it: classic BPF's
    out-of-range index makes the kernel fall back to its hash over the group
    (net/core/sock_reuseport.c, run_bpf_filter/reuseport_select_sock, Linux 4.5+); the
    eBPF program finds an empty sockarray slot and passes (the kernel's hash decides) or,
    with ``on_no_sid="drop"``, drops. Those sessions are not steered.
    """
    key = _check_group(sockets)
    if not isinstance(policy, SteeringPolicy):
        raise SteeringError(f"attach needs a SteeringPolicy, not {type(policy).__name__}")
    if policy.n > len(sockets):
        # Decided: accepted, and said. The kernel defines what an index with no socket does
        # and sidkit models it (sidkit.reuseport's port model; tests/reuseport/test_live_port
        # checks the model against the kernel with a 5-socket policy on smaller groups), so
        # it is a legitimate thing to attach -- but rarely what a caller meant.
        warnings.warn(
            _too_few_sockets(policy.n, len(sockets), backend, on_no_sid),
            PartialGroupWarning,
            stacklevel=2,
        )
    if backend not in ("cbpf", "ebpf"):
        raise SteeringError(f"backend must be 'cbpf' or 'ebpf', got {backend!r}")
    if backend == "cbpf" and on_no_sid != "pass":
        raise SteeringError("classic BPF cannot drop: on_no_sid must be 'pass' for cbpf")
    with _lock_for(key):
        _check_owner(key, sockets)
        handle = _attach_checked(sockets, policy, backend, on_no_sid)
        if handle._roster is None and backend == "cbpf":
            handle._roster = _roster_of(sockets)
            handle._own()
        return _take(handle, key)


class PartialGroupWarning(UserWarning):
    """attach() was given fewer sockets than the policy steers to (see :func:`attach`)."""


def _too_few_sockets(n: int, have: int, backend: str, on_no_sid: str) -> str:
    missing = f"index {have}" if n - have == 1 else f"indices {have}..{n - 1}"
    if backend == "cbpf":
        fate = "the kernel falls back to its hash over the group for them"
    elif on_no_sid == "drop":
        fate = "the program drops them (the sender sees ECONNREFUSED)"
    else:
        fate = "the program passes them and the kernel's hash picks the socket"
    return (
        f"the policy steers to {n} sockets but {have} were given: sessions whose SID maps to "
        f"{missing} have no socket and are not steered -- {fate}"
    )


def _attach_checked(
    sockets: Sequence[SocketLike],
    policy: SteeringPolicy,
    backend: Literal["cbpf", "ebpf"],
    on_no_sid: Literal["pass", "drop"],
) -> SteeringHandle:
    first = sockets[0]
    if backend == "cbpf":
        program = compile_cbpf(policy)
        raw = cbpf.encode(program)
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the kernel
        # copies the array during setsockopt, so the buffer only has to outlive the call.
        code = ctypes.create_string_buffer(raw, len(raw))
        fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(code))
        try:
            first.setsockopt(socket.SOL_SOCKET, _syscall.SO_ATTACH_REUSEPORT_CBPF, fprog)
        except OSError as exc:
            raise _refused("SO_ATTACH_REUSEPORT_CBPF", exc, first) from exc
        return SteeringHandle("cbpf", first, group=tuple(sockets))
    sockarray = _syscall.Map(
        _syscall.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        4,
        8,
        max(policy.n, len(sockets)),
        name="sidkit_socks",
    )
    try:
        for i, s in enumerate(sockets):
            _sockarray_add(sockarray, i, s)
        insns = compile_ebpf(policy, sockarray.fd, on_no_sid=on_no_sid)
    except BaseException:
        sockarray.close()
        raise
    handle = attach_sk_reuseport(first, insns, sockarray, name="sidkit_steer")
    handle.group = tuple(sockets)
    handle._roster = sockarray  # the program's own map says who is still in the group
    return handle


def _roster_of(sockets: Sequence[SocketLike]) -> _syscall.Map | None:
    """A REUSEPORT_SOCKARRAY with *sockets* in it, for a classic BPF handle to learn which
    of them are still in the group (see SteeringHandle._members); None where the process may
    not create maps (no CAP_BPF: classic BPF itself needs none) or a socket is in another
    map -- then the handle falls back to the sockets' addresses."""
    try:
        roster = _syscall.Map(
            _syscall.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, len(sockets), name="sidkit_roster"
        )
    except (KernelOracleError, OSError):
        return None
    try:
        for i, s in enumerate(sockets):
            roster.update(struct.pack("=I", i), struct.pack("=Q", s.fileno()))
    except (KernelOracleError, OSError):
        roster.close()
        return None
    return roster


def _sockarray_add(sockarray: _syscall.Map, index: int, s: SocketLike) -> None:
    """Put socket *s* at *index*, waiting out a sockarray that is being freed.

    The kernel refuses (EBUSY) a socket that is in another REUSEPORT_SOCKARRAY
    (reuseport_array_update_check: ``sk_user_data`` set). Right after that map's last fd
    closed it is still there until the map is freed (EBUSY_RETRY_S above), so EBUSY is
    retried that long; after that the socket really is in a live map of another program.
    """
    deadline = time.monotonic() + EBUSY_RETRY_S
    pause = 0.002
    while True:
        try:
            sockarray.update(struct.pack("=I", index), struct.pack("=Q", s.fileno()))
            return
        except KernelOracleError as exc:
            if exc.errno != errno.EBUSY:
                raise
            if time.monotonic() >= deadline:
                err = SteeringError(
                    f"socket fd {s.fileno()} already belongs to another steering program's "
                    "group: it is in another REUSEPORT_SOCKARRAY map that is still in use -- "
                    "the map of the eBPF program attached to its group now (one a released or "
                    "dropped handle left, or another process's); take that program out first "
                    "(sidkit.steering.detach_program(sock)), or attach with backend='cbpf'",
                    code="socket-in-another-map",
                )
                raise err from exc
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def attach_sk_reuseport(
    sock: SocketLike, insns: Sequence[ebpf.Insn], owned_map: _syscall.Map, *, name: str
) -> SteeringHandle:
    """Load *insns* as an SK_REUSEPORT program and attach it to *sock*'s group.

    The returned handle owns *owned_map* (the map the program refers to) and the program: on
    failure both are freed here, on :meth:`SteeringHandle.detach` there. Used by
    :func:`attach`, :class:`sidkit.reuseport.HashRecorder` and the session table; like
    :func:`attach` it refuses a group a live handle of this process already steers.
    """
    try:
        key = _group_key(sock)
    except OSError as exc:
        owned_map.close()
        raise SteeringError(f"socket fd {sock.fileno()} is not a bound socket: {exc}") from exc
    with _lock_for(key):
        try:
            _check_owner(key, [sock])
        except SteeringError:
            owned_map.close()
            raise
        return _take(_load_and_attach(sock, insns, owned_map, name=name), key)


def detach_program(sock: SocketLike) -> bool:
    """Take out whatever program *sock*'s reuseport group has; return whether it had one.

    For a program no live handle of this process holds: one a released or dropped handle
    left (an eBPF program keeps its sockets in its map, so an eBPF attach to them waits for
    this), or another process's. A group a live handle holds is refused -- use that
    handle's :meth:`~SteeringHandle.detach`. SO_DETACH_REUSEPORT_BPF, Linux 5.7+.
    """
    key = _check_group([sock])
    with _lock_for(key):
        _check_owner(key, [sock])
        try:
            sock.setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise _refused("SO_DETACH_REUSEPORT_BPF", exc, sock) from exc
    return True


def _load_and_attach(
    sock: SocketLike, insns: Sequence[ebpf.Insn], owned_map: _syscall.Map, *, name: str
) -> SteeringHandle:
    prog_fd: int | None = None
    try:
        prog_fd = _syscall.prog_load(
            _syscall.BPF_PROG_TYPE_SK_REUSEPORT,
            ebpf.encode(insns),
            expected_attach_type=_syscall.BPF_SK_REUSEPORT_SELECT,
            name=name,
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, _syscall.SO_ATTACH_REUSEPORT_EBPF, prog_fd)
        except OSError as exc:
            raise _refused("SO_ATTACH_REUSEPORT_EBPF", exc, sock) from exc
    except BaseException:
        if prog_fd is not None:
            os.close(prog_fd)
        owned_map.close()
        raise
    return SteeringHandle("ebpf", sock, prog_fd, owned_map)
