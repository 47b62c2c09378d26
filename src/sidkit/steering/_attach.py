# Strategy: the one place where a steering policy meets a live SO_REUSEPORT group. A classic
# program goes in through SO_ATTACH_REUSEPORT_CBPF; an eBPF program is loaded through bpf(2)
# with a REUSEPORT_SOCKARRAY map filled in group order and attached with
# SO_ATTACH_REUSEPORT_EBPF. Every kernel refusal becomes a KernelOracleError carrying the
# errno (and the verifier log); every unusable socket a SteeringError before any syscall. The
# handle owns what was created, so a detach or a failed attach leaves nothing behind.
"""Attaching steering programs to a live SO_REUSEPORT group."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import attrs

from sidkit._errors import KernelOracleError
from sidkit.bpf import _syscall, cbpf, ebpf
from sidkit.steering._policy import SteeringError, SteeringPolicy, compile_cbpf, compile_ebpf

__all__ = ["SocketLike", "SteeringHandle", "attach", "attach_sk_reuseport"]


class SocketLike(Protocol):
    """What :func:`attach` needs of a socket: a :class:`socket.socket`, or asyncio's
    ``TransportSocket``, which wraps one without being one."""

    @property
    def type(self) -> int: ...
    def fileno(self) -> int: ...
    def getsockopt(self, level: int, optname: int, /) -> int: ...
    def setsockopt(self, level: int, optname: int, value: int | bytes, /) -> None: ...
    def getsockname(self) -> Any: ...


@attrs.define
class SteeringHandle:
    """An attached steering program; :meth:`detach` restores the kernel's hash selection."""

    backend: Literal["cbpf", "ebpf"]
    sock: SocketLike
    prog_fd: int | None = None
    map: _syscall.Map | None = None
    attached: bool = True
    group: tuple[SocketLike, ...] = ()

    def detach(self) -> None:
        """Detach the program from the group and free the program and map (idempotent).

        The program belongs to the group, not to the socket it was attached through, so the
        detach goes through any member that is still open (the attaching socket may have been
        closed by a worker that left). When none is open the group is gone and the kernel
        freed the program with it. SO_DETACH_REUSEPORT_BPF exists since Linux 5.7.
        """
        if not self.attached:
            return
        self.attached = False
        try:
            member = next((s for s in (self.sock, *self.group) if s.fileno() >= 0), None)
            if member is not None:
                member.setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
        except OSError as exc:
            raise _refused("SO_DETACH_REUSEPORT_BPF", exc) from exc
        finally:
            if self.prog_fd is not None:
                os.close(self.prog_fd)
                self.prog_fd = None
            if self.map is not None:
                self.map.close()

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def _refused(what: str, exc: OSError) -> KernelOracleError:
    err = KernelOracleError(f"the kernel refused {what}: {exc.strerror or exc}")
    err.errno = exc.errno
    return err


def _check_group(sockets: Sequence[SocketLike]) -> None:
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

    Raises :class:`SteeringError` for unusable sockets and
    :class:`~sidkit.KernelOracleError` (an ``OSError``) when the kernel refuses: not Linux,
    eBPF without CAP_BPF (the program and the REUSEPORT_SOCKARRAY map need it; classic BPF
    needs no capability), a socket already in another map (EBUSY), a second SK_REUSEPORT
    program on the group (EBUSY), a verifier rejection (the verifier's log is in the
    message).
    """
    _check_group(sockets)
    first = sockets[0]
    if backend == "cbpf":
        if on_no_sid != "pass":
            raise SteeringError("classic BPF cannot drop: on_no_sid must be 'pass' for cbpf")
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
    if backend != "ebpf":
        raise SteeringError(f"backend must be 'cbpf' or 'ebpf', got {backend!r}")
    sockarray = _syscall.Map(
        _syscall.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        4,
        8,
        max(policy.n, len(sockets)),
        name="sidkit_socks",
    )
    try:
        for i, s in enumerate(sockets):
            sockarray.update(struct.pack("=I", i), struct.pack("=Q", s.fileno()))
        insns = compile_ebpf(policy, sockarray.fd, on_no_sid=on_no_sid)
    except BaseException:
        sockarray.close()
        raise
    handle = attach_sk_reuseport(first, insns, sockarray, name="sidkit_steer")
    handle.group = tuple(sockets)
    return handle


def attach_sk_reuseport(
    sock: SocketLike, insns: Sequence[ebpf.Insn], owned_map: _syscall.Map, *, name: str
) -> SteeringHandle:
    """Load *insns* as an SK_REUSEPORT program and attach it to *sock*'s group.

    The returned handle owns *owned_map* (the map the program refers to) and the program: on
    failure both are freed here, on :meth:`SteeringHandle.detach` there. Used by
    :func:`attach` and by :class:`sidkit.reuseport.HashRecorder`.
    """
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
