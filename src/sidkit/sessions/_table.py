# Strategy: the live session table is six BPF maps and one SK_REUSEPORT program; this class
# owns them and is the only writer from user space. Everything a server needs to change at
# run time is a map write -- add a generation (its sockets into the SOCKHASH by cookie and
# into the generation's slots), make it working (one config write), drop a crashed socket
# (swap-remove in its slots), pin a session, retire a generation -- so the program is loaded
# once per group and never replaced. All state lives in the maps, none in this object: a new
# process that opens the maps pinned in bpffs (SessionTable.open) sees exactly what the old
# one saw, which is what a restart needs.
"""The live session table: maps, program, generations, pinning and handover."""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Final

import attrs

import sidkit.bpf._syscall
from sidkit._errors import KernelOracleError
from sidkit._validate import show
from sidkit.bpf import _syscall
from sidkit.sessions._program import (
    CONFIG_PINNED,
    CONFIG_RECORD,
    CONFIG_SIZE,
    COUNTERS,
    VALUE_SIZE,
    MapFds,
    generate,
)
from sidkit.sessions._spec import KEY_SIZE, SessionError, SessionSpec
from sidkit.steering import SocketLike, SteeringHandle, attach_sk_reuseport

__all__ = ["Entry", "SessionTable", "kernel_clock_ns", "possible_cpus"]

_MAPS: Final = ("pinned", "recent", "sockets", "slots", "config", "counters")
_ENTRY: Final = struct.Struct("=QQII")
_CONFIG: Final = struct.Struct("=IIIIQII")
_PERCPU_ARRAY: Final = 6  # BPF_MAP_TYPE_PERCPU_ARRAY
_EXCLUSIVE: Final = ("no_key", "hit", "miss", "expired", "stale")


CLOCK_MONOTONIC_COARSE: Final = 6  # include/uapi/linux/time.h


def kernel_clock_ns() -> int:
    """The program's clock, read from user space: ``bpf_ktime_get_coarse_ns()`` is
    ``ktime_get_coarse_ns()``, i.e. CLOCK_MONOTONIC_COARSE (updated once per tick). The
    program uses the coarse clock because it costs a memory read where the precise one
    reads the clocksource on every datagram; session timeouts are seconds."""
    return time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)


def possible_cpus() -> int:
    """``num_possible_cpus()``: what the kernel divides a BPF_F_NO_COMMON_LRU map by."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        return os.cpu_count() or 1
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


@attrs.frozen
class Entry:
    """One session as the table holds it: the socket's cookie, the last time (ns of
    CLOCK_MONOTONIC_COARSE, :func:`kernel_clock_ns`) a datagram hit it, its generation, and
    which table it is in."""

    key: bytes
    cookie: int
    last_ns: int
    generation: int
    pinned: bool


class SessionTable:
    """A session table: create it, add a generation, attach it to the group, make it working.

    *capacity* is the recent table's ``max_entries`` and *pinned_capacity* the pinned
    table's; both are LRU hash maps created with BPF_F_NO_COMMON_LRU, so each of the
    machine's possible CPUs evicts from its own ``capacity / cpus`` entries (see
    :class:`sidkit.sessions.LruHash`). *generations* x *per_generation* bounds the sockets.
    """

    def __init__(
        self,
        spec: SessionSpec,
        *,
        capacity: int = 4096,
        pinned_capacity: int | None = None,
        generations: int = 16,
        per_generation: int = 64,
        _maps: dict[str, sidkit.bpf._syscall.Map] | None = None,
    ) -> None:
        if type(capacity) is not int or not 1 <= capacity <= 1 << 24:
            raise SessionError(f"capacity must be 1..2**24 entries, got {show(capacity)}")
        pinned_capacity = capacity if pinned_capacity is None else pinned_capacity
        if type(pinned_capacity) is not int or not 1 <= pinned_capacity <= 1 << 24:
            raise SessionError(f"pinned_capacity must be 1..2**24, got {show(pinned_capacity)}")
        if (
            type(generations) is not int
            or type(per_generation) is not int
            or not 1 <= generations <= 256
            or not 1 <= per_generation <= 4096
        ):
            raise SessionError("generations must be 1..256 and per_generation 1..4096")
        self.spec = spec
        self.generations = generations
        self.per_generation = per_generation
        self.handle: SteeringHandle | None = None
        self._prog_fd: int | None = None
        if _maps is not None:
            self.maps = _maps
            return
        lru = _syscall.BPF_MAP_TYPE_LRU_HASH
        flags = _syscall.BPF_F_NO_COMMON_LRU
        socks = generations * per_generation
        self.maps = {}
        try:
            for name, args in (
                ("pinned", (lru, KEY_SIZE, VALUE_SIZE, pinned_capacity, flags)),
                ("recent", (lru, KEY_SIZE, VALUE_SIZE, capacity, flags)),
                (
                    "sockets",
                    (_syscall.BPF_MAP_TYPE_SOCKHASH, 8, 8, generations * per_generation, 0),
                ),
                ("slots", (_syscall.BPF_MAP_TYPE_ARRAY, 4, 8, socks, 0)),
                ("config", (_syscall.BPF_MAP_TYPE_ARRAY, 4, CONFIG_SIZE, 1, 0)),
                ("counters", (_PERCPU_ARRAY, 4, 8, len(COUNTERS), 0)),
            ):
                self.maps[name] = _syscall.Map(*args, name=f"sidkit_{name}")
            self._write_config(0, 0, 0, pinned=False)
        except BaseException:
            self.close()
            raise

    # --- program ------------------------------------------------------------------------------

    def attach(self, sock: SocketLike) -> None:
        """Load the program and attach it to *sock*'s reuseport group (once per group: it
        belongs to the group and survives the process that attached it)."""
        fds = MapFds(**{name: self.maps[name].fd for name in _MAPS})
        insns = generate(self.spec, fds, self.generations * self.per_generation)
        # The handle owns a throw-away map (it frees "its" map on detach); the table's maps
        # stay with the table.
        dummy = _syscall.Map(_syscall.BPF_MAP_TYPE_ARRAY, 4, 4, 1, name="sidkit_none")
        self.handle = attach_sk_reuseport(sock, insns, dummy, name="sidkit_session")
        self._prog_fd = self.handle.prog_fd

    @property
    def prog_fd(self) -> int | None:
        """The loaded program's fd (for BPF statistics), None before :meth:`attach`."""
        return self._prog_fd

    def detach(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(KernelOracleError):
                self.handle.detach()
            self.handle = None
            self._prog_fd = None

    def close(self) -> None:
        """Detach (if attached here) and close every map fd this object holds."""
        self.detach()
        for m in self.maps.values():
            m.close()

    def __enter__(self) -> SessionTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- generations --------------------------------------------------------------------------

    def _config(self) -> tuple[int, int, int, int, int]:
        raw = self.maps["config"].lookup(bytes(4))
        assert raw is not None
        base, n, gen, flags, timeout, _g, _p = _CONFIG.unpack(raw)
        return base, n, gen, flags, timeout

    def _write_config(self, base: int, n: int, gen: int, pinned: bool | None = None) -> None:
        flags = CONFIG_RECORD if self.spec.record == "first-packet" else 0
        if pinned is None:
            raw = self.maps["config"].lookup(bytes(4))
            pinned = raw is not None and bool(_CONFIG.unpack(raw)[3] & CONFIG_PINNED)
        flags |= CONFIG_PINNED if pinned else 0
        self.maps["config"].update(
            bytes(4),
            _CONFIG.pack(
                base, n, gen, flags, self.spec.timeout_ns, self.generations, self.per_generation
            ),
        )

    @property
    def working(self) -> int:
        """The working generation's number."""
        return self._config()[2]

    def _slot(self, gen: int, i: int) -> bytes:
        return struct.pack("=I", (gen % self.generations) * self.per_generation + i)

    def members(self, gen: int) -> list[int]:
        """The cookies of generation *gen*'s sockets, in pick order."""
        self._check_gen(gen)
        out = []
        for i in range(self.per_generation):
            raw = self.maps["slots"].lookup(self._slot(gen, i))
            cookie = 0 if raw is None else int.from_bytes(raw, "little")
            if not cookie:
                break
            out.append(cookie)
        return out

    def _check_gen(self, gen: int) -> None:
        if type(gen) is not int or not 0 <= gen < self.generations:
            raise SessionError(f"generation must be 0..{self.generations - 1}, got {show(gen)}")

    def add_generation(self, sockets: Sequence[SocketLike], gen: int | None = None) -> int:
        """Register *sockets* as generation *gen* (default: the next empty one after the
        working generation) and return its number. New sessions go to it only once it is
        made working."""
        if not sockets or len(sockets) > self.per_generation:
            raise SessionError(f"a generation holds 1..{self.per_generation} sockets")
        if gen is None:
            start = self.working
            for step in range(1, self.generations + 1):
                cand = (start + step) % self.generations
                if not self.members(cand):
                    gen = cand
                    break
            else:
                raise SessionError("every generation is in use; retire one first")
        self._check_gen(gen)
        if self.members(gen):
            raise SessionError(f"generation {gen} is in use; retire it first")
        for i, s in enumerate(sockets):
            cookie = _syscall.socket_cookie(s)
            try:
                self.maps["sockets"].update(
                    cookie.to_bytes(8, "little"), s.fileno().to_bytes(8, "little")
                )
            except KernelOracleError as exc:
                raise SessionError(
                    f"the kernel refused socket fd {s.fileno()} in the SOCKHASH "
                    f"({exc}); it must be a bound SO_REUSEPORT UDP socket"
                ) from exc
            self.maps["slots"].update(self._slot(gen, i), cookie.to_bytes(8, "little"))
        return gen

    def set_working(self, gen: int) -> None:
        """Make *gen* the generation new sessions are picked from (one config write)."""
        members = self.members(gen)
        if not members:
            raise SessionError(f"generation {gen} has no sockets")
        self._write_config((gen % self.generations) * self.per_generation, len(members), gen)

    def remove_socket(self, gen: int, cookie: int) -> None:
        """Take a socket (a crashed worker's) out of *gen*'s pick list: the last socket moves
        into its place, as the kernel's own group does. Sessions it held are picked anew on
        their next datagram (counted ``stale``); no other session of the table moves."""
        members = self.members(gen)
        if cookie not in members:
            raise SessionError(f"cookie {cookie:#x} is not in generation {gen}")
        i = members.index(cookie)
        last = len(members) - 1
        self.maps["slots"].update(self._slot(gen, i), members[last].to_bytes(8, "little"))
        self.maps["slots"].update(self._slot(gen, last), bytes(8))
        base, n, work, _flags, _t = self._config()
        if work == gen and n:
            self._write_config(base, last, gen)
        with contextlib.suppress(KernelOracleError):
            self.maps["sockets"].delete(cookie.to_bytes(8, "little"))

    def retire(self, gen: int, *, force: bool = False, now_ns: int | None = None) -> int:
        """Forget generation *gen*: its slots, its sockets in the SOCKHASH and its sessions.

        Refused while unexpired sessions are still on it (see :meth:`draining`) unless
        *force*; returns how many session entries were deleted."""
        if gen == self.working:
            raise SessionError(f"generation {gen} is the working one; make another working first")
        left = self.draining(gen, now_ns=now_ns)
        if left and not force:
            raise SessionError(f"{len(left)} sessions are still on generation {gen}")
        deleted = 0
        for e in self.sessions():
            if e.generation == gen:
                with contextlib.suppress(KernelOracleError):
                    self.maps["pinned" if e.pinned else "recent"].delete(e.key)
                    deleted += 1
        for i, cookie in enumerate(self.members(gen)):
            self.maps["slots"].update(self._slot(gen, i), bytes(8))
            with contextlib.suppress(KernelOracleError):
                self.maps["sockets"].delete(cookie.to_bytes(8, "little"))
        return deleted

    # --- sessions -----------------------------------------------------------------------------

    def sessions(self) -> Iterator[Entry]:
        """Every entry of both tables (pinned first). Snapshot the keys first: deleting while
        walking a hash map restarts the kernel's walk."""
        for name in ("pinned", "recent"):
            m = self.maps[name]
            for key in list(m.keys()):
                raw = m.lookup(key)
                if raw is None:
                    continue
                cookie, last, gen, _flags = _ENTRY.unpack(raw)
                yield Entry(key, cookie, last, gen, name == "pinned")

    def draining(self, gen: int, *, now_ns: int | None = None) -> list[Entry]:
        """Sessions still on generation *gen*: unexpired entries recorded or pinned there."""
        now = kernel_clock_ns() if now_ns is None else now_ns
        return [
            e
            for e in self.sessions()
            if e.generation == gen and now - e.last_ns <= self.spec.timeout_ns
        ]

    def pin(self, key: bytes, cookie: int | None = None, *, now_ns: int | None = None) -> None:
        """Assure a session (after its handshake): move it to the pinned table, which only
        user space writes, so a flood of new keys can never evict it. *cookie* names its
        socket; by default the one the recent table recorded."""
        self._check_key(key)
        gen = self.working
        if cookie is None:
            raw = self.maps["recent"].lookup(key)
            if raw is None:
                raise SessionError("the session is not in the recent table; name its socket")
            cookie, _last, gen, _f = _ENTRY.unpack(raw)
        else:
            gen = self._gen_of(cookie)
        now = kernel_clock_ns() if now_ns is None else now_ns
        self.maps["pinned"].update(key, _ENTRY.pack(cookie, now, gen, 1))
        base, n, work, flags, _t = self._config()
        if not flags & CONFIG_PINNED:
            self._write_config(base, n, work, pinned=True)
        with contextlib.suppress(KernelOracleError):
            self.maps["recent"].delete(key)

    def unpin(self, key: bytes) -> bool:
        """Forget a pinned session (it ended); False if it was not pinned."""
        self._check_key(key)
        try:
            self.maps["pinned"].delete(key)
        except KernelOracleError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def end(self, key: bytes) -> bool:
        """The application saw the session end (a QUIC CONNECTION_CLOSE, a DTLS alert): forget
        it in both tables so its generation can drain; False if it was in neither."""
        self._check_key(key)
        found = False
        for name in ("pinned", "recent"):
            try:
                self.maps[name].delete(key)
                found = True
            except KernelOracleError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        return found

    def release(self) -> None:
        """Close this process's map fds but leave the program attached: the old server's
        last step in a handover (the maps live on in bpffs, the program in the group)."""
        if self.handle is not None:
            self.handle.release()
        self.handle = None
        self._prog_fd = None
        for m in self.maps.values():
            m.close()

    def _gen_of(self, cookie: int) -> int:
        for gen in range(self.generations):
            if cookie in self.members(gen):
                return gen
        raise SessionError(f"socket cookie {cookie:#x} is in no generation")

    @staticmethod
    def _check_key(key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise SessionError(f"a session key is {KEY_SIZE} bytes (SessionSpec.key_of)")

    def counters(self) -> dict[str, int]:
        """The program's counters (see ``sidkit.sessions.COUNTERS``)."""
        cpus = possible_cpus()
        out = {}
        for i, name in enumerate(COUNTERS):
            raw = _syscall.map_lookup(self.maps["counters"].fd, struct.pack("=I", i), 8 * cpus)
            raw = raw or bytes(8 * cpus)
            out[name] = sum(struct.unpack(f"={cpus}Q", raw))
        out["datagrams"] = sum(out[k] for k in _EXCLUSIVE)
        return out

    # --- handover -----------------------------------------------------------------------------

    def pin_maps(self, directory: str) -> None:
        """Pin every map in *directory* (on a mounted bpffs) for the next server process."""
        for name in _MAPS:
            _syscall.obj_pin(self.maps[name].fd, os.path.join(directory, name))

    @classmethod
    def open(cls, directory: str, spec: SessionSpec) -> SessionTable:
        """Take over a table whose maps an earlier process pinned in *directory*. The program
        stays attached to the group; the new process adds its generation and makes it working.

        The table's shape (generations, sockets per generation) comes from its config map;
        *spec* must say what the attached program was generated from -- its timeout and
        recording policy are checked against the map, a mismatch is a SessionError."""
        shapes = {
            "pinned": (_syscall.BPF_MAP_TYPE_LRU_HASH, KEY_SIZE, VALUE_SIZE),
            "recent": (_syscall.BPF_MAP_TYPE_LRU_HASH, KEY_SIZE, VALUE_SIZE),
            "sockets": (_syscall.BPF_MAP_TYPE_SOCKHASH, 8, 8),
            "slots": (_syscall.BPF_MAP_TYPE_ARRAY, 4, 8),
            "config": (_syscall.BPF_MAP_TYPE_ARRAY, 4, CONFIG_SIZE),
            "counters": (_PERCPU_ARRAY, 4, 8),
        }
        maps: dict[str, _syscall.Map] = {}
        try:
            for name in _MAPS:
                fd = _syscall.obj_get(os.path.join(directory, name))
                kind, ks, vs = shapes[name]
                maps[name] = _syscall.Map.adopt(fd, kind, ks, vs, 0)
            raw = maps["config"].lookup(bytes(4))
            if raw is None:
                raise SessionError(f"{directory}: the config map is empty")
            _b, _n, _gen, flags, timeout, generations, per_generation = _CONFIG.unpack(raw)
            record = "first-packet" if flags & CONFIG_RECORD else "assure"
            if timeout != spec.timeout_ns or record != spec.record:
                raise SessionError(
                    f"{directory} holds a table with timeout {timeout} ns and record={record!r}; "
                    f"the spec says {spec.timeout_ns} ns and {spec.record!r}"
                )
        except BaseException:
            for m in maps.values():
                m.close()
            raise
        return cls(spec, generations=generations, per_generation=per_generation, _maps=maps)


def mount_bpffs(path: str) -> None:
    """Mount a bpf filesystem at *path* (the caller should be in its own mount namespace)."""
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", os.fsencode(path), b"bpf", 0, None) != 0:
        code = ctypes.get_errno()
        err = KernelOracleError(f"mount -t bpf {path}: {os.strerror(code)}")
        err.errno = code
        raise err
