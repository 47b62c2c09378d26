# Strategy: the one place where a steering policy meets a live SO_REUSEPORT group. A classic
# program goes in through SO_ATTACH_REUSEPORT_CBPF; an eBPF program is loaded through bpf(2)
# with a REUSEPORT_SOCKARRAY map filled in group order and attached with
# SO_ATTACH_REUSEPORT_EBPF. Every kernel refusal becomes a KernelOracleError carrying the
# errno (and the verifier log); every unusable socket a SteeringError before any syscall. The
# handle owns what was created, so a detach or a failed attach leaves nothing behind.
#
# Lifecycle. Every socket given must be of one group (one netns, family, address, port,
# IPV6_V6ONLY, bound device and owner: udp_reuseport_add_sock's test). One owner per group:
# this process keeps a registry of the group each live handle holds, and a second attach to
# a group that a live handle still holds is refused with the holder's name in words -- the
# kernel would let the last attach win and leave the first handle's detach() to remove the
# second program. The kernel does not say which group a socket is in, so "still holds" is
# decided from what sidkit can see: the handle is attached and one of its sockets is open and
# still bound where the group is. A handle whose sockets all closed or moved (a wildcard
# member that connects is rehashed out of the group) holds nothing, and its detach() never
# reaches a group another handle owns. The case sidkit cannot see -- a disconnect rehashes a
# wildcard member into a new group at the same address (udp_lib_rehash) -- is refused with
# the way out in the message: release() the old handle. A dropped handle is released by a
# weakref finalizer (also run at exit): it closes the program and map fds this process holds
# and gives up the group, but does not detach -- the group holds its program as it would
# after a plain close of the fd, and code that attaches and keeps only the sockets keeps its
# steering.
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


def _release(prog: tuple[int, int | None] | None, owned_map: _syscall.Map | None) -> None:
    """What a handle holds, released once: by detach() or when the handle is collected.

    The program fd is closed only if it still holds the program it was opened for: a caller
    that closed ``handle.prog_fd`` itself may have had the number reused by now, and closing
    it again would close someone else's file."""
    if prog is not None and prog[1] is not None and _prog_id(prog[0]) == prog[1]:
        os.close(prog[0])
    if owned_map is not None:
        owned_map.close()


@attrs.define
class SteeringHandle:
    """An attached steering program; :meth:`detach` restores the kernel's hash selection.

    A handle owns its group in this process: while it is attached and one of its sockets is
    still bound where the group is, :func:`attach` refuses a second program for that group.
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
        self._finalizer = weakref.finalize(self, _release, prog, self.map)

    def _members(self) -> list[SocketLike]:
        """This handle's sockets that are open and still bound where its group is."""
        out = []
        for s in (self.sock, *self.group):
            try:
                here = self.key is None or _group_key(s) == self.key  # None: built by hand
                if s.fileno() >= 0 and here and s not in out:
                    out.append(s)
            except OSError:
                continue
        return out

    def holds_group(self) -> bool:
        """Whether this handle still holds its group: attached, and one of its sockets is
        open and bound where the group is (what :func:`attach` refuses a second program
        for)."""
        return self.attached and bool(self._members())

    def _is_owner(self) -> bool:
        ref = _OWNERS.get(self.key) if self.key is not None else None
        return ref is not None and ref() is self

    def release(self) -> None:
        """Give the group up and close this process's fds, leaving the program in the group.

        What dropping the handle does, said explicitly: for a process that attaches and
        exits (the group keeps steering), for a handover to another process, and for a
        group that is gone in a way sidkit cannot see (a disconnect rehashed its sockets
        into a new group at the same address) so that a new attach is not refused. Idempotent.
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
        detach goes through any member that is still open and bound where the group is (the
        attaching socket may have been closed by a worker that left). When none is, the
        group is gone and the kernel freed the program with it; a handle whose group got a
        new owner was released then (see :func:`attach`), so its detach() cannot remove
        another handle's program. A group found without a program (someone detached it with a raw
        setsockopt) is what detach() wanted. SO_DETACH_REUSEPORT_BPF exists since Linux 5.7.
        """
        with _OWNERS_LOCK:
            if not self.attached:
                return
            try:
                member = next(iter(self._members()), None)
                if member is not None:
                    try:
                        member.setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:
                            raise _refused("SO_DETACH_REUSEPORT_BPF", exc) from exc
                    self._empty_sockarray()
            finally:
                self.release()

    def _empty_sockarray(self) -> None:
        """Take the sockets out of the REUSEPORT_SOCKARRAY now that no program uses it.

        A socket belongs to one sockarray at a time; closing the map would free it only
        after an RCU grace period (~20 ms), and an attach in that window gets EBUSY. Deleting
        the elements releases each socket at once (reuseport_array_delete_elem). Only after
        the detach: while the program runs, the map is its routing table.
        """
        if self.map is None or self.map.closed:
            return
        for key in list(self.map.keys()):
            try:
                self.map.delete(key)
            except KernelOracleError as exc:
                if exc.errno != errno.ENOENT:
                    raise

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


#: Which handle of this process holds which group (by _group_key). Weak: a dropped handle
#: gives its group up with no call. The lock makes "is it held? attach; take it" one step
#: for threads that attach to the same group at once.
_OWNERS: dict[tuple[object, ...] | None, weakref.ref[SteeringHandle]] = {}
_OWNERS_LOCK = threading.RLock()


def _check_owner(key: tuple[object, ...]) -> None:
    """Refuse a second program for a group a live handle of this process holds."""
    ref = _OWNERS.get(key)
    holder = ref() if ref is not None else None
    if holder is None or not holder.holds_group():
        return
    fds = ", ".join(str(s.fileno()) for s in holder._members())
    raise SteeringError(
        f"the reuseport group at {_describe(key)} is already steered by this process "
        f"({holder.backend} program, attached through socket fd {fds}): one program per "
        "group, and attaching another would replace it under the first handle; detach() "
        "that handle first (or release() it if its group is gone and these sockets form a "
        "new one at the same address)",
        code="group-already-steered",
    )


def _take(handle: SteeringHandle, key: tuple[object, ...]) -> SteeringHandle:
    """Make *handle* the holder of group *key* (the caller holds _OWNERS_LOCK and checked)."""
    old = _OWNERS.get(key)
    if old is not None and (previous := old()) is not None and previous is not handle:
        # It held nothing any more (its sockets closed or moved): it must not reach this
        # group through a socket that moves back into it.
        previous.release()
    handle.key = key
    _OWNERS[key] = weakref.ref(handle)
    return handle


def _refused(what: str, exc: OSError) -> KernelOracleError:
    err = KernelOracleError(f"the kernel refused {what}: {exc.strerror or exc}")
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
        extra.append(f"bound to ifindex {key[6]}")
    return f"{where} ({', '.join(extra)})" if extra else where


def _differs(key: tuple[object, ...], other: tuple[object, ...]) -> str:
    """Where *other*'s group is, in words that tell it from *key*'s."""
    if other[0] != key[0]:
        return "another network namespace"
    if other[7] != key[7] and other[:7] == key[:7]:
        return f"{_describe(other)} owned by uid {other[7]}"
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
    with _OWNERS_LOCK:
        _check_owner(key)
        return _take(_attach_checked(sockets, policy, backend, on_no_sid), key)


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
            raise _refused("SO_ATTACH_REUSEPORT_CBPF", exc) from exc
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
    return handle


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
                    "group: it is in another REUSEPORT_SOCKARRAY map that is still in use; "
                    "detach that program (or close its map) first",
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
    with _OWNERS_LOCK:
        try:
            _check_owner(key)
        except SteeringError:
            owned_map.close()
            raise
        return _take(_load_and_attach(sock, insns, owned_map, name=name), key)


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
            raise _refused("SO_ATTACH_REUSEPORT_EBPF", exc) from exc
    except BaseException:
        if prog_fd is not None:
            os.close(prog_fd)
        owned_map.close()
        raise
    return SteeringHandle("ebpf", sock, prog_fd, owned_map)
