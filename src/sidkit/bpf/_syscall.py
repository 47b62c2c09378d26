# Strategy: sidkit is pure Python and must stay installable without a C compiler, bcc or libbpf,
# yet its tests want the *running kernel* as an oracle (the kernel's compiled jhash, its
# reuseport selection, ...). The bpf(2) map commands are enough for that and need nothing but
# the raw system call, so this module talks to it directly through ctypes:
#
# * libc's generic ``syscall()`` is called with the architecture's bpf number (glibc has no
#   ``bpf()`` wrapper). Only x86_64 and aarch64 are wired up; any other machine reports itself as
#   unsupported rather than guessing a number.
# * ``union bpf_attr`` is mirrored with ctypes structures that follow include/uapi/linux/bpf.h
#   field for field, and the union is padded with zeroes to at least 128 bytes. The kernel
#   accepts a larger attr as long as the bytes it does not know are zero, and zero-fills a
#   smaller one, so a zeroed, generously sized attr works across kernel versions.
# * Every failure becomes a ``KernelOracleError`` (an ``OSError``) whose message names the bpf
#   command and the errno, so a skipped or failed oracle test says *what* the kernel refused.
#
# The module is private (``sidkit.bpf._syscall``): it is test infrastructure for comparing
# sidkit with the kernel, not a general BPF binding.
"""Minimal bpf(2) map access via ctypes (private; used by live-kernel oracle tests)."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Final, Self

from sidkit._errors import InputValueError, KernelOracleError

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_NO_PREALLOC",
    "BPF_F_ZERO_SEED",
    "BPF_MAP_CREATE",
    "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY",
    "BPF_MAP_LOOKUP_ELEM",
    "BPF_MAP_TYPE_ARRAY",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_LRU_HASH",
    "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",
    "BPF_MAP_TYPE_SOCKHASH",
    "BPF_MAP_UPDATE_ELEM",
    "BPF_NOEXIST",
    "BPF_PROG_LOAD",
    "BPF_PROG_TYPE_SK_REUSEPORT",
    "BPF_SK_REUSEPORT_SELECT",
    "SO_ATTACH_REUSEPORT_CBPF",
    "SO_ATTACH_REUSEPORT_EBPF",
    "SO_DETACH_REUSEPORT_BPF",
    "Map",
    "bpf",
    "bpf_available",
    "enable_run_time_stats",
    "map_create",
    "map_delete",
    "map_get_next_key",
    "map_lookup",
    "map_update",
    "obj_get",
    "obj_pin",
    "prog_load",
    "prog_run_stats",
    "socket_cookie",
]

# enum bpf_cmd
BPF_MAP_CREATE: Final = 0
BPF_MAP_LOOKUP_ELEM: Final = 1
BPF_MAP_UPDATE_ELEM: Final = 2
BPF_MAP_DELETE_ELEM: Final = 3
BPF_MAP_GET_NEXT_KEY: Final = 4
BPF_PROG_LOAD: Final = 5
BPF_OBJ_PIN: Final = 6
BPF_OBJ_GET: Final = 7
BPF_OBJ_GET_INFO_BY_FD: Final = 15
BPF_ENABLE_STATS: Final = 32
BPF_STATS_RUN_TIME: Final = 0

# enum bpf_prog_type
BPF_PROG_TYPE_SK_REUSEPORT: Final = 21
# enum bpf_attach_type values accepted for SK_REUSEPORT (0 = unspecified)
BPF_SK_REUSEPORT_SELECT: Final = 39

# Socket options (include/uapi/asm-generic/socket.h)
SO_ATTACH_REUSEPORT_CBPF: Final = 51
SO_ATTACH_REUSEPORT_EBPF: Final = 52
SO_DETACH_REUSEPORT_BPF: Final = 68

# enum bpf_map_type
BPF_MAP_TYPE_HASH: Final = 1
BPF_MAP_TYPE_ARRAY: Final = 2
BPF_MAP_TYPE_LRU_HASH: Final = 9
BPF_MAP_TYPE_SOCKHASH: Final = 18
BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: Final = 20

# map_flags for BPF_MAP_CREATE
BPF_F_NO_PREALLOC: Final = 1 << 0
BPF_F_NO_COMMON_LRU: Final = 1 << 1
BPF_F_ZERO_SEED: Final = 1 << 6

# flags for BPF_MAP_UPDATE_ELEM
BPF_ANY: Final = 0
BPF_NOEXIST: Final = 1
BPF_EXIST: Final = 2

_CMD_NAMES: Final = {
    BPF_MAP_CREATE: "BPF_MAP_CREATE",
    BPF_MAP_LOOKUP_ELEM: "BPF_MAP_LOOKUP_ELEM",
    BPF_MAP_UPDATE_ELEM: "BPF_MAP_UPDATE_ELEM",
    BPF_MAP_DELETE_ELEM: "BPF_MAP_DELETE_ELEM",
    BPF_MAP_GET_NEXT_KEY: "BPF_MAP_GET_NEXT_KEY",
    BPF_PROG_LOAD: "BPF_PROG_LOAD",
    BPF_OBJ_PIN: "BPF_OBJ_PIN",
    BPF_OBJ_GET: "BPF_OBJ_GET",
    BPF_OBJ_GET_INFO_BY_FD: "BPF_OBJ_GET_INFO_BY_FD",
    BPF_ENABLE_STATS: "BPF_ENABLE_STATS",
}

# __NR_bpf per architecture. The numbers differ between ABIs and a wrong one would silently
# run some other system call, so unknown machines are refused outright.
_BPF_SYSCALL_NR: Final = {"x86_64": 321, "amd64": 321, "aarch64": 280, "arm64": 280}

# Kernel-internal errnos that leak to user space from bpf(2) and that Python's errno module
# does not name (ENOTSUPP is what e.g. BPF_PROG_TEST_RUN returns for unsupported types).
_KERNEL_ERRNO_NAMES: Final = {524: "ENOTSUPP"}

_ATTR_MIN_SIZE: Final = 128
_MAP_NAME_LEN: Final = 16  # BPF_OBJ_NAME_LEN, including the terminating NUL


class _MapCreateAttr(ctypes.Structure):
    """The BPF_MAP_CREATE member of ``union bpf_attr`` (uapi/linux/bpf.h, Linux 6.18)."""

    _fields_ = (
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * _MAP_NAME_LEN),
        ("map_ifindex", ctypes.c_uint32),
        ("btf_fd", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
        ("value_type_btf_obj_fd", ctypes.c_int32),
        ("map_token_fd", ctypes.c_int32),
        ("excl_prog_hash", ctypes.c_uint64),
        ("excl_prog_hash_size", ctypes.c_uint32),
    )


class _MapElemAttr(ctypes.Structure):
    """The BPF_MAP_*_ELEM / GET_NEXT_KEY member of ``union bpf_attr``.

    ``key`` and ``value`` (alias ``next_key``) are user-space pointers carried as
    ``__aligned_u64``; ctypes' natural alignment puts ``key`` at offset 8 like the C layout.
    """

    _fields_ = (
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),  # union { value; next_key; }
        ("flags", ctypes.c_uint64),
    )


class _ProgLoadAttr(ctypes.Structure):
    """The BPF_PROG_LOAD member of ``union bpf_attr`` (its first fields, which is all sidkit
    sets; the kernel reads the rest as zero)."""

    _fields_ = (
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * _MAP_NAME_LEN),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    )


class _ObjAttr(ctypes.Structure):
    """The BPF_OBJ_PIN / BPF_OBJ_GET member: ``pathname`` (a user pointer), ``bpf_fd``,
    ``file_flags``."""

    _fields_ = (
        ("pathname", ctypes.c_uint64),
        ("bpf_fd", ctypes.c_uint32),
        ("file_flags", ctypes.c_uint32),
    )


class _InfoAttr(ctypes.Structure):
    """The BPF_OBJ_GET_INFO_BY_FD member: ``bpf_fd``, ``info_len``, ``info`` (a pointer)."""

    _fields_ = (
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    )


class _BpfAttr(ctypes.Union):
    """``union bpf_attr``, restricted to the members sidkit uses, zero-padded to 128 bytes."""

    _fields_ = (
        ("map_create", _MapCreateAttr),
        ("map_elem", _MapElemAttr),
        ("prog_load", _ProgLoadAttr),
        ("obj", _ObjAttr),
        ("info", _InfoAttr),
        ("_pad", ctypes.c_ubyte * _ATTR_MIN_SIZE),
    )


@functools.cache
def _libc() -> ctypes.CDLL:
    """Load libc once, with ``syscall`` returning a C long.

    Loading is deferred to first use so that importing this module never fails (for example on
    macOS, or in a sandbox without a dynamic libc); that failure surfaces as KernelOracleError.
    CDLL caches its function objects, so the ``restype`` set here sticks.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code) or _KERNEL_ERRNO_NAMES.get(code) or f"errno {code}"


def _cmd_name(cmd: int) -> str:
    return _CMD_NAMES.get(cmd, f"bpf cmd {cmd}")


def _oracle_error(message: str, code: int | None = None) -> KernelOracleError:
    """Build a KernelOracleError; ``errno`` is set after construction.

    Only ``errno`` is assigned: setting ``strerror`` too would make ``OSError.__str__`` replace
    our message (which names the command) with the bare ``[Errno n] text`` form.
    """
    err = KernelOracleError(message)
    err.errno = code
    return err


def _syscall_number() -> int:
    machine = platform.machine()
    try:
        return _BPF_SYSCALL_NR[machine]
    except KeyError:
        raise _oracle_error(
            f"bpf(2): no known syscall number for machine {machine!r} (supported: x86_64, aarch64)",
            errno.ENOSYS,
        ) from None


def bpf(cmd: int, attr: ctypes.Structure | ctypes.Union | bytes) -> int:
    """Call bpf(2) with *cmd* and *attr*; return the non-negative result.

    *attr* is a ctypes structure/union (passed by reference, so the kernel's writes are visible
    to the caller) or raw bytes (copied into a zeroed buffer of at least 128 bytes). On failure
    raise KernelOracleError with ``errno`` set and the command and errno name in the message.
    """
    if not sys.platform.startswith("linux"):
        raise _oracle_error(f"bpf(2) needs Linux, this is {sys.platform}", errno.ENOSYS)
    nr = _syscall_number()
    buf: ctypes.Array[ctypes.c_char] | ctypes.Structure | ctypes.Union
    if isinstance(attr, bytes):
        buf = ctypes.create_string_buffer(attr, max(len(attr), _ATTR_MIN_SIZE))
    else:
        buf = attr
    try:
        func = _libc().syscall
    except OSError as exc:
        raise _oracle_error(f"bpf(2): cannot load libc: {exc}", errno.ENOSYS) from exc
    ctypes.set_errno(0)
    ret = int(
        func(
            ctypes.c_long(nr),
            ctypes.c_long(cmd),
            ctypes.c_void_p(ctypes.addressof(buf)),
            ctypes.c_ulong(ctypes.sizeof(buf)),
        )
    )
    if ret < 0:
        code = ctypes.get_errno()
        raise _oracle_error(
            f"bpf({_cmd_name(cmd)}) failed: {_errno_name(code)} ({os.strerror(code)})", code
        )
    return ret


def _key_buffer(key: bytes) -> ctypes.Array[ctypes.c_char]:
    # create_string_buffer(b"", 0) is fine; the explicit size stops ctypes adding a NUL byte.
    return ctypes.create_string_buffer(key, len(key))


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
) -> int:
    """Create a map and return its file descriptor (the caller owns it and must close it).

    *name* is the kernel's map name (at most 15 ASCII characters: letters, digits, ``_``,
    ``.``); it only helps when inspecting maps with bpftool.
    """
    raw_name = name.encode("ascii")
    if len(raw_name) >= _MAP_NAME_LEN:
        raise InputValueError(
            f"map name must be at most {_MAP_NAME_LEN - 1} bytes, got {len(raw_name)}",
            code="bad-map-name",
        )
    attr = _BpfAttr()
    mc = attr.map_create
    mc.map_type = map_type
    mc.key_size = key_size
    mc.value_size = value_size
    mc.max_entries = max_entries
    mc.map_flags = flags
    mc.map_name = raw_name
    return bpf(BPF_MAP_CREATE, attr)


def _elem_attr(
    fd: int, key: ctypes.Array[ctypes.c_char] | None, value: ctypes.Array[ctypes.c_char] | None
) -> _BpfAttr:
    """Build a MAP_*_ELEM attr holding the raw addresses of *key* and *value*.

    The attr keeps no reference to the buffers: the caller must hold them in named variables
    until bpf() returns, or ctypes may free them and the kernel reads freed memory.
    """
    attr = _BpfAttr()
    me = attr.map_elem
    me.map_fd = fd
    me.key = 0 if key is None else ctypes.addressof(key)
    me.value = 0 if value is None else ctypes.addressof(value)
    return attr


def _out_or_none(cmd: int, attr: _BpfAttr, out: ctypes.Array[ctypes.c_char]) -> bytes | None:
    """Run *cmd*; return *out*'s bytes, or None when the kernel answers ENOENT (no such key /
    end of iteration). The caller keeps the key buffer referenced for the call's duration."""
    try:
        bpf(cmd, attr)
    except KernelOracleError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return out.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    """Insert or replace ``key -> value`` (*flags*: BPF_ANY, BPF_NOEXIST or BPF_EXIST)."""
    kbuf = _key_buffer(key)
    vbuf = _key_buffer(value)
    attr = _elem_attr(fd, kbuf, vbuf)
    attr.map_elem.flags = flags
    bpf(BPF_MAP_UPDATE_ELEM, attr)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """Return the value stored under *key*, or None if the key is absent (ENOENT)."""
    kbuf = _key_buffer(key)
    vbuf = ctypes.create_string_buffer(value_size)
    return _out_or_none(BPF_MAP_LOOKUP_ELEM, _elem_attr(fd, kbuf, vbuf), vbuf)


def map_delete(fd: int, key: bytes) -> None:
    """Delete *key*; a missing key raises KernelOracleError with errno ENOENT."""
    kbuf = _key_buffer(key)  # a named reference keeps the buffer alive across the call
    bpf(BPF_MAP_DELETE_ELEM, _elem_attr(fd, kbuf, None))


def map_get_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """Return the key after *key* in the map's iteration order, or None at the end.

    ``key=None`` asks for the first key. For hash maps the order is the kernel's bucket order
    (which is what makes the map an oracle for the kernel's hash); a *key* that is not in a hash
    map also restarts from the first key, as the kernel defines it.
    """
    kbuf = None if key is None else _key_buffer(key)
    nbuf = ctypes.create_string_buffer(key_size)
    return _out_or_none(BPF_MAP_GET_NEXT_KEY, _elem_attr(fd, kbuf, nbuf), nbuf)


def prog_load(
    prog_type: int,
    insns: bytes,
    *,
    expected_attach_type: int = 0,
    name: str = "",
    license: str = "GPL",
) -> int:
    """Load a program (raw ``struct bpf_insn`` bytes) and return its fd (the caller closes it).

    The first attempt runs without a verifier log (cheap); if the kernel refuses, the load is
    repeated with ``log_level = 1`` and the verifier's explanation is appended to the error,
    because "EACCES" alone tells the author of a generated program nothing.
    """
    raw_name = name.encode("ascii")
    if len(raw_name) >= _MAP_NAME_LEN:
        raise InputValueError(f"program name must be at most 15 bytes: {name!r}", code="bad-name")
    if len(insns) % 8 or not insns:
        raise InputValueError("eBPF program must be a non-empty multiple of 8 bytes")
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode("ascii"))

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        attr = _BpfAttr()
        pl = attr.prog_load
        pl.prog_type = prog_type
        pl.insn_cnt = len(insns) // 8
        pl.insns = ctypes.addressof(code)
        pl.license = ctypes.addressof(lic)
        pl.prog_name = raw_name
        pl.expected_attach_type = expected_attach_type
        if log is not None:
            pl.log_level = 1
            pl.log_size = len(log)
            pl.log_buf = ctypes.addressof(log)
        return bpf(BPF_PROG_LOAD, attr)

    try:
        return attempt(None)
    except KernelOracleError as first:
        if first.errno not in (errno.EACCES, errno.EINVAL):
            raise
        log = ctypes.create_string_buffer(1 << 20)
        try:
            return attempt(log)  # pragma: no cover - a refused program is refused again
        except KernelOracleError as exc:
            text = log.value.decode("utf-8", "replace").strip()
            tail = "\n".join(text.splitlines()[-25:])
            raise _oracle_error(f"{exc}; verifier log (last lines):\n{tail}", exc.errno) from None


def obj_pin(fd: int, path: str) -> None:
    """Pin the map or program *fd* at *path* in a mounted bpffs (BPF_OBJ_PIN, Linux 4.4+).

    A pinned object outlives every process that holds it: this is how one server process
    hands its maps to the next (the other way is passing the fd over a Unix socket).
    """
    raw = ctypes.create_string_buffer(os.fsencode(path))
    attr = _BpfAttr()
    attr.obj.pathname = ctypes.addressof(raw)
    attr.obj.bpf_fd = fd
    bpf(BPF_OBJ_PIN, attr)


def obj_get(path: str) -> int:
    """Open the object pinned at *path* (BPF_OBJ_GET) and return a new fd the caller owns."""
    raw = ctypes.create_string_buffer(os.fsencode(path))
    attr = _BpfAttr()
    attr.obj.pathname = ctypes.addressof(raw)
    return bpf(BPF_OBJ_GET, attr)


# struct bpf_prog_info (include/uapi/linux/bpf.h): run_time_ns and run_cnt follow 192 bytes
# of earlier fields (since Linux 5.1); the kernel fills at most info_len bytes.
_PROG_INFO_LEN: Final = 216
_PROG_INFO_TYPE: Final = 0
_PROG_INFO_RUN_TIME_NS: Final = 192
_PROG_INFO_RUN_CNT: Final = 200


def prog_run_stats(prog_fd: int) -> tuple[int, int, int]:
    """``(prog_type, run_time_ns, run_cnt)`` of a loaded program (BPF_OBJ_GET_INFO_BY_FD).

    The two counters only move while run-time statistics are enabled
    (:func:`enable_run_time_stats`, or the ``kernel.bpf_stats_enabled`` sysctl).
    """
    buf = ctypes.create_string_buffer(_PROG_INFO_LEN)
    attr = _BpfAttr()
    attr.info.bpf_fd = prog_fd
    attr.info.info_len = _PROG_INFO_LEN
    attr.info.info = ctypes.addressof(buf)
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    raw = buf.raw
    return (
        int.from_bytes(raw[_PROG_INFO_TYPE : _PROG_INFO_TYPE + 4], sys.byteorder),
        int.from_bytes(raw[_PROG_INFO_RUN_TIME_NS : _PROG_INFO_RUN_TIME_NS + 8], sys.byteorder),
        int.from_bytes(raw[_PROG_INFO_RUN_CNT : _PROG_INFO_RUN_CNT + 8], sys.byteorder),
    )


def enable_run_time_stats() -> int:
    """BPF_ENABLE_STATS(BPF_STATS_RUN_TIME), Linux 5.8+: every program's run time is counted
    while the returned fd is open (the caller closes it). Counting costs two clock reads per
    run, so a benchmark measures throughput without it and in-program time in its own pass."""
    attr = _BpfAttr()
    ctypes.memmove(ctypes.addressof(attr), BPF_STATS_RUN_TIME.to_bytes(4, sys.byteorder), 4)
    return bpf(BPF_ENABLE_STATS, attr)


SO_COOKIE: Final = 57  # include/uapi/asm-generic/socket.h


def socket_cookie(sock: object) -> int:
    """The socket's SO_COOKIE (Linux 4.12+): a u64 the kernel never reuses while it runs,
    which is why a map can name a socket by it safely after the socket is gone."""
    raw = sock.getsockopt(1, SO_COOKIE, 8)  # type: ignore[attr-defined]
    return int.from_bytes(raw, sys.byteorder)


class Map:
    """A bpf map owned by Python: a context manager that closes the map's fd on exit.

    The kernel frees a map once its last fd (and program reference) is gone, so closing the fd
    is all the cleanup a test needs.
    """

    def __init__(
        self,
        map_type: int,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int = 0,
        name: str = "",
    ) -> None:
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self._fd: int | None = map_create(map_type, key_size, value_size, max_entries, flags, name)

    @classmethod
    def adopt(cls, fd: int, map_type: int, key_size: int, value_size: int, max_entries: int) -> Map:
        """Wrap an fd obtained elsewhere (:func:`obj_get`, a Unix socket); it is owned now."""
        self = cls.__new__(cls)
        self.map_type, self.key_size, self.value_size = map_type, key_size, value_size
        self.max_entries, self.flags = max_entries, 0
        self._fd = fd
        return self

    @property
    def fd(self) -> int:
        """The map's file descriptor; raises KernelOracleError (EBADF) once closed."""
        if self._fd is None:
            raise _oracle_error("bpf map is closed", errno.EBADF)
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        """Close the fd (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        map_update(self.fd, key, value, flags)

    def lookup(self, key: bytes) -> bytes | None:
        return map_lookup(self.fd, key, self.value_size)

    def delete(self, key: bytes) -> None:
        map_delete(self.fd, key)

    def next_key(self, key: bytes | None) -> bytes | None:
        return map_get_next_key(self.fd, key, self.key_size)

    def keys(self) -> Iterator[bytes]:
        """Yield every key in kernel iteration order (GET_NEXT_KEY from NULL to ENOENT).

        Do not modify the map while iterating: deleting the current key makes the kernel
        restart from the first bucket.
        """
        key = self.next_key(None)
        while key is not None:
            yield key
            key = self.next_key(key)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return (
            f"Map(type={self.map_type}, key_size={self.key_size}, "
            f"value_size={self.value_size}, max_entries={self.max_entries}, {state})"
        )


def bpf_available() -> str | None:
    """Return None if bpf(2) map creation works here, else a one-line reason why not.

    Oracle tests call this first so that a machine without bpf (not Linux, no CAP_BPF, a
    seccomp filter, an unknown architecture) skips with a precise reason instead of erroring.
    """
    if not sys.platform.startswith("linux"):
        return f"bpf(2) needs Linux, this is {sys.platform}"
    try:
        with Map(BPF_MAP_TYPE_HASH, 4, 4, 1, BPF_F_NO_PREALLOC, "sidkit_probe"):
            pass
    except KernelOracleError as exc:
        hint = ""
        if exc.errno in (errno.EPERM, errno.EACCES):
            hint = " (needs root or CAP_BPF; unprivileged_bpf_disabled?)"
        elif exc.errno == errno.ENOSYS:
            hint = " (kernel without CONFIG_BPF_SYSCALL, or filtered by seccomp)"
        return f"{exc}{hint}"
    return None
