# Strategy: the kernel has no BPF_PROG_TEST_RUN for SK_REUSEPORT, so a program is tested the
# only way it can run: attached to a real group. Everything happens in a throw-away pair of
# network namespaces (sidkit.bpf.netns): the server side binds N reuseport sockets in order,
# reads their SO_COOKIEs, builds the datagrams (a callback may mint IDs from the cookies),
# sends them once with only a recorder attached (an SK_REUSEPORT program that notes the
# kernel's hash, ctx->hash, and chooses nothing) -- so the bench learns, per datagram, the
# socket the kernel's own selection picks and the hash it picked it from, which is what "fall
# back to the default" means on this kernel -- then creates and fills the program's maps the
# way its server would, patches the map references, loads the program through sidkit's
# bpf(2) layer, attaches it and sends the same datagrams again. Each datagram is recorded at
# the socket that received it, or as dropped. Nothing outlives the namespaces.
#
# A verdict is what can be seen from outside: "drop" when no socket received the datagram,
# "selected" when it arrived anywhere but where the default selection puts it, and for a
# datagram that did arrive there, a second look: classic programs are run in sidkit's
# interpreter (sidkit.bpf.cbpf.run, kernel semantics) and eBPF socket filters by the kernel's
# BPF_PROG_TEST_RUN, whose return value says whether they chose an index; for SK_REUSEPORT
# programs whose socket maps the bench filled, every map entry is
# moved to the next socket and those datagrams are sent again -- a selection moves with the
# entry, the default selection does not. Only an eBPF program that chooses sockets without
# the bench's maps (none known) choosing its default socket would read as "pass".
"""Running a program on a live reuseport group and recording every delivery (private)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Literal, TypeAlias

import attrs

from sidkit._errors import KernelOracleError
from sidkit.bpf import _syscall, cbpf, ebpf, netns
from sidkit.testbench._program import (
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
    BPF_MAP_TYPE_SOCKHASH,
    BPF_MAP_TYPE_SOCKMAP,
    MapSpec,
    Program,
    TestbenchError,
)

__all__ = [
    "DEFAULT_PORT",
    "MAX_DATAGRAMS",
    "MAX_SOCKETS",
    "Delivery",
    "Family",
    "Feed",
    "Fill",
    "Probe",
    "SocketInfo",
    "deliver",
]

SO_COOKIE: Final = 57
BPF_PROG_TYPE_SOCKET_FILTER: Final = 1
DEFAULT_PORT: Final = 4433
MAX_SOCKETS: Final = 256
MAX_DATAGRAMS: Final = 100_000
MAX_PAYLOAD: Final = 65_507  # IPv4 UDP (IPv6 allows 20 more; one limit for both families)
_HHBBI: Final = struct.Struct("=HBBI")
_FIRST_SPORT: Final = 20_000
_MAP_IN_MAP: Final = (BPF_MAP_TYPE_ARRAY_OF_MAPS, 13)  # ARRAY_OF_MAPS, HASH_OF_MAPS
_SPORTS: Final = 40_000
# How long the receiving side waits in silence before it calls the missing datagrams of a
# batch dropped. Delivery on the veth pair takes microseconds; the margin is for a loaded
# machine (the CPUs are shared), and it is only ever spent when something was dropped.
_QUIET: Final = 2.0

Fill: TypeAlias = Literal["sockarray", "cookie", "empty"] | tuple[bytes, ...]
"""How a map is filled: ``"sockarray"`` -- socket i under the u32 key i (REUSEPORT_SOCKARRAY,
SOCKMAP, and the inner map of a map-in-map, which goes into the outer map's slot 0);
``"cookie"`` -- each socket under its SO_COOKIE, a native u64 (SOCKHASH, as nginx fills its
map); ``"empty"`` -- created, left empty; a tuple of keys -- socket i under key i (SOCKHASH)."""


@attrs.frozen
class SocketInfo:
    """What a feed callback learns of socket *index* (bind order): its SO_COOKIE."""

    index: int
    cookie: int


Family: TypeAlias = Literal["ipv4", "ipv6"]
_SERVER: Final = {"ipv4": netns.SERVER_V4, "ipv6": netns.SERVER_V6}
_CLIENTS: Final = {"ipv4": netns.CLIENT_V4, "ipv6": netns.CLIENT_V6}


@attrs.frozen
class Probe:
    """One datagram to send: *payload* from ``(src, sport)``. An empty *src* is the run's
    first client address (``10.77.0.2`` or ``fd77::2``); *sport* 0 picks a distinct port."""

    payload: bytes
    src: str = ""
    sport: int = 0


Feed: TypeAlias = (
    Iterable[Probe | bytes] | Callable[[Sequence[SocketInfo]], Iterable[Probe | bytes]]
)


@attrs.frozen
class Delivery:
    """What happened to datagram *index*: the socket that received it (None: dropped), the
    socket the default selection picks for its tuple (measured with no program choosing),
    and the verdict derived from the two (see the module comment)."""

    index: int
    probe: Probe
    socket: int | None
    default: int | None
    verdict: Literal["selected", "pass", "drop"]
    hash: int | None = None
    """The kernel's reuseport hash of the datagram's tuple (``ctx->hash``), recorded during
    the run without the program; None if the recorder did not see it."""


def _probes(feed: Feed, infos: Sequence[SocketInfo], family: Family) -> list[Probe]:
    items = feed(infos) if callable(feed) else feed
    out: list[Probe] = []
    for i, item in enumerate(items):
        if len(out) >= MAX_DATAGRAMS:
            raise TestbenchError(f"more than {MAX_DATAGRAMS} datagrams in one run")
        probe = Probe(bytes(item)) if isinstance(item, bytes | bytearray) else item
        if not isinstance(probe, Probe):
            raise TestbenchError(
                f"datagram {i}: expected bytes or Probe, got {type(item).__name__}"
            )
        if len(probe.payload) > MAX_PAYLOAD:
            raise TestbenchError(f"datagram {i}: {len(probe.payload)} bytes exceeds {MAX_PAYLOAD}")
        clients = _CLIENTS[family]
        if not probe.src:
            probe = attrs.evolve(probe, src=clients[0])
        if probe.src not in clients:
            raise TestbenchError(f"datagram {i}: source must be one of {clients} ({family})")
        if not 0 <= probe.sport <= 0xFFFF:
            raise TestbenchError(f"datagram {i}: source port {probe.sport} out of range")
        if probe.sport == 0:
            probe = attrs.evolve(probe, sport=_FIRST_SPORT + i % _SPORTS)
        out.append(probe)
    return out


def _map_create(spec: MapSpec, inner_fd: int = 0) -> int:
    name = re.sub(r"[^A-Za-z0-9_.]", "_", spec.name)[:15]
    attr = struct.pack(
        "=7I16s",
        spec.map_type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        spec.flags,
        inner_fd,
        0,
        name.encode(),
    )
    try:
        return _syscall.bpf(_syscall.BPF_MAP_CREATE, attr)
    except KernelOracleError as exc:
        raise KernelOracleError(
            f"map {spec.name!r} ({spec.type_name}, key {spec.key_size}, value {spec.value_size}, "
            f"{spec.max_entries} entries): {exc}"
        ) from exc


def _update(name: str, fd: int, key: bytes, value: bytes) -> None:
    """map_update whose refusal names the map (EBUSY, E2BIG, a wrong key size ...)."""
    try:
        _syscall.map_update(fd, key, value)
    except KernelOracleError as exc:
        err = KernelOracleError(f"map {name!r}: storing key {key.hex()}: {exc}")
        err.errno = exc.errno
        raise err from exc


def _fd_value(spec: MapSpec, fd: int) -> bytes:
    if spec.value_size not in (4, 8):
        raise TestbenchError(
            f"map {spec.name!r}: socket value size must be 4 or 8, not {spec.value_size}"
        )
    return struct.pack("=I" if spec.value_size == 4 else "=Q", fd)


def _resolve(spec: MapSpec, fill: Fill | None, n: int) -> tuple[MapSpec, Fill | None]:
    """The map to create for *spec* and how to fill it, or a TestbenchError naming the map."""
    if spec.map_type == 0:  # declared only: the server creates it (nginx)
        if fill is None:
            raise TestbenchError(
                f"map {spec.name!r} is declared without a type (its server creates it); "
                f"say how to fill it: --map {spec.name}=cookie or --map {spec.name}=sockarray"
            )
        if fill == "sockarray":
            spec = attrs.evolve(
                spec,
                map_type=BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
                key_size=4,
                value_size=8,
                max_entries=n,
            )
        elif fill == "cookie" or isinstance(fill, tuple):
            klen = 8 if fill == "cookie" else len(fill[0]) if fill else 8
            spec = attrs.evolve(
                spec,
                map_type=BPF_MAP_TYPE_SOCKHASH,
                key_size=klen,
                value_size=8,
                max_entries=max(n, 1),
            )
        else:
            raise TestbenchError(f"map {spec.name!r} is declared without a type; cannot be empty")
    if spec.map_type in _MAP_IN_MAP and spec.inner is None:
        # The server creates the inner map and hands its fd to the loader (the kernel
        # selftest's bpf_map__set_inner_map_fd): a REUSEPORT_SOCKARRAY sized to the group.
        spec = attrs.evolve(
            spec, inner=MapSpec(f"{spec.name}.inner", BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, n)
        )
    socketish = spec.map_type in (
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        BPF_MAP_TYPE_SOCKMAP,
        BPF_MAP_TYPE_SOCKHASH,
    )
    inner_socketish = spec.inner is not None and spec.inner.map_type in (
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        BPF_MAP_TYPE_SOCKMAP,
    )
    if fill is None and (
        spec.map_type in (BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, BPF_MAP_TYPE_SOCKMAP) or inner_socketish
    ):
        fill = "sockarray"
    if fill is None and socketish:
        raise TestbenchError(
            f"map {spec.name!r} ({spec.type_name}) holds sockets but the bench does not know "
            f"their keys; fill it with --map {spec.name}=cookie or give a key per socket"
        )
    if fill is None or fill == "empty":
        return spec, fill
    if fill == "sockarray":
        target = spec.inner if spec.map_type in _MAP_IN_MAP else spec
        if target is None or target.map_type not in (
            BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
            BPF_MAP_TYPE_SOCKMAP,
        ):
            raise TestbenchError(
                f"map {spec.name!r} ({spec.type_name}) cannot be filled by index "
                "(needs REUSEPORT_SOCKARRAY, SOCKMAP or an array of them)"
            )
        if target.key_size != 4 or target.max_entries < n:
            raise TestbenchError(
                f"map {spec.name!r}: {n} sockets by index need u32 keys and at least {n} "
                f"entries (it has key {target.key_size}, {target.max_entries} entries)"
            )
    elif spec.map_type != BPF_MAP_TYPE_SOCKHASH:
        raise TestbenchError(f"map {spec.name!r} ({spec.type_name}) cannot be keyed by socket")
    elif spec.max_entries < n:
        raise TestbenchError(f"map {spec.name!r}: {spec.max_entries} entries for {n} sockets")
    elif fill == "cookie" and spec.key_size != 8:
        raise TestbenchError(
            f"map {spec.name!r}: cookie keys are 8 bytes, its keys are {spec.key_size}"
        )
    elif isinstance(fill, tuple) and (len(fill) != n or any(len(k) != spec.key_size for k in fill)):
        raise TestbenchError(
            f"map {spec.name!r}: needs {n} keys of {spec.key_size} bytes, one per socket"
        )
    return spec, fill


class _Maps:
    """The program's maps, created and filled in the server namespace; closes them all."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}
        self._all: list[int] = []
        # (map fd, key, value spec, socket index) for every socket entry the bench wrote
        self.entries: list[tuple[int, bytes, MapSpec, int]] = []

    def _own(self, fd: int) -> int:
        self._all.append(fd)
        return fd

    def build(
        self,
        program: Program,
        fills: Mapping[str, Fill],
        socks: Sequence[socket.socket],
        cookies: Sequence[int],
        values: Mapping[str, Mapping[bytes, bytes]],
    ) -> None:
        unknown = set(fills) - {m.name for m in program.maps}
        if unknown:
            known = ", ".join(m.name for m in program.maps) or "none"
            raise TestbenchError(
                f"no map {sorted(unknown)[0]!r} in the program (its maps: {known})"
            )
        n = len(socks)
        for declared in program.maps:
            spec, fill = _resolve(declared, fills.get(declared.name), n)
            if spec.map_type in _MAP_IN_MAP:
                assert spec.inner is not None
                inner = self._own(_map_create(spec.inner))
                fd = self._own(_map_create(spec, inner))
                if fill == "sockarray":
                    for i, s in enumerate(socks):
                        key = struct.pack("=I", i)
                        _update(spec.inner.name, inner, key, _fd_value(spec.inner, s.fileno()))
                        self.entries.append((inner, key, spec.inner, i))
                    _update(spec.name, fd, struct.pack("=I", 0), struct.pack("=I", inner))
            else:
                fd = self._own(_map_create(spec))
                if spec.data is not None and spec.map_type == BPF_MAP_TYPE_ARRAY:
                    _update(spec.name, fd, struct.pack("=I", 0), spec.data)
                for i, s in enumerate(socks):
                    if fill == "sockarray":
                        key = struct.pack("=I", i)
                    elif fill == "cookie":
                        key = struct.pack("=Q", cookies[i])
                    elif isinstance(fill, tuple):
                        key = fill[i]
                    else:
                        break
                    _update(spec.name, fd, key, _fd_value(spec, s.fileno()))
                    self.entries.append((fd, key, spec, i))
            for key, value in values.get(declared.name, {}).items():
                _update(declared.name, fd, key, value)
            self.fds[declared.name] = fd

    def rotate(self, socks: Sequence[socket.socket]) -> None:
        """Move every socket entry to the next socket (i -> i+1 mod n). A socket may sit in
        one REUSEPORT_SOCKARRAY slot only (EBUSY), so all entries go before any returns."""
        for fd, key, _spec, _i in self.entries:
            _syscall.map_delete(fd, key)
        for fd, key, spec, i in self.entries:
            _syscall.map_update(fd, key, _fd_value(spec, socks[(i + 1) % len(socks)].fileno()))

    def close(self) -> None:
        for fd in self._all:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._all.clear()


def _patched(program: Program, fds: Mapping[str, int]) -> bytes:
    insns = bytearray(program.insns)
    for r in program.relocs:
        off = 8 * r.insn
        if off + 16 > len(insns):
            raise TestbenchError(f"relocation of {r.map!r} at {r.insn} is past the program's end")
        pseudo = 1 if r.kind == "fd" else 2
        insns[off + 1] = (pseudo << 4) | (insns[off + 1] & 0x0F)
        struct.pack_into("<i", insns, off + 4, fds[r.map])
        struct.pack_into("<i", insns, off + 12, r.offset if r.kind == "value" else 0)
    return bytes(insns)


def _attach(program: Program, first: socket.socket, fds: Mapping[str, int]) -> int | None:
    """Attach *program* to *first*'s group; return the program fd to close afterwards."""
    if program.kind == "cbpf":
        code = ctypes.create_string_buffer(program.insns, len(program.insns))
        fprog = struct.pack("HxxxxxxQ", len(program.insns) // 8, ctypes.addressof(code))
        try:
            first.setsockopt(socket.SOL_SOCKET, _syscall.SO_ATTACH_REUSEPORT_CBPF, fprog)
        except OSError as exc:
            raise KernelOracleError(f"SO_ATTACH_REUSEPORT_CBPF refused: {exc.strerror}") from exc
        return None
    ptype = (
        _syscall.BPF_PROG_TYPE_SK_REUSEPORT
        if program.kind == "sk_reuseport"
        else BPF_PROG_TYPE_SOCKET_FILTER
    )
    prog_fd = _syscall.prog_load(
        ptype,
        _patched(program, fds),
        expected_attach_type=program.expected_attach_type,
        name=re.sub(r"[^A-Za-z0-9_.]", "_", program.name)[:15],
        license=program.license,
    )
    try:
        first.setsockopt(socket.SOL_SOCKET, _syscall.SO_ATTACH_REUSEPORT_EBPF, prog_fd)
    except OSError as exc:
        os.close(prog_fd)
        raise KernelOracleError(f"SO_ATTACH_REUSEPORT_EBPF refused: {exc.strerror}") from exc
    return prog_fd


_HELPER_MAP_UPDATE: Final = 2
_BPF_HDR_START_NET: Final = 1


# Where the source address sits in the network header (iphdr.saddr, ipv6hdr.saddr), its size,
# and the recorder's key: the address, the UDP source port as on the wire, two zero octets.
_SADDR: Final = {"ipv4": (12, 4), "ipv6": (8, 16)}


def _hash_recorder(map_fd: int, family: Family) -> list[ebpf.Insn]:
    """An SK_REUSEPORT program that stores ``ctx->hash`` under the datagram's source (the
    address from the network header, the UDP source port as on the wire) and returns SK_PASS
    without selecting, so the kernel's own selection proceeds. In the bench every datagram's
    source is its own, so the source names the datagram whatever its payload."""
    offset, size = _SADDR[family]
    key = -24  # key at fp-24 .. fp-24+size+4, value at fp-32
    a = ebpf.Assembler()
    a.mov64(6, 1)
    a.st(ebpf.DW, 10, -24, 0)
    a.st(ebpf.DW, 10, -16, 0)
    a.st(ebpf.DW, 10, -8, 0)
    a.mov64(1, 6)
    a.mov64(2, imm=offset)
    a.mov64(3, 10)
    a.alu64(ebpf.ADD, 3, imm=key)
    a.mov64(4, imm=size)
    a.mov64(5, imm=_BPF_HDR_START_NET)
    a.call(ebpf.HELPER_SKB_LOAD_BYTES_RELATIVE)
    a.jmp(ebpf.JNE, 0, "pass", imm=0)
    a.ldx(ebpf.DW, 2, 6, 0)  # ctx->data: the UDP header
    a.ldx(ebpf.DW, 3, 6, 8)  # ctx->data_end
    a.mov64(4, 2)
    a.alu64(ebpf.ADD, 4, imm=8)
    a.jmp(ebpf.JGT, 4, "pass", src=3)
    a.ldx(ebpf.H, 5, 2, 0)  # udphdr.source
    a.stx(ebpf.H, 10, key + size, 5)
    a.ldx(ebpf.W, 7, 6, 32)  # ctx->hash
    a.stx(ebpf.W, 10, -32, 7)
    a.ld_map_fd(1, map_fd)
    a.mov64(2, 10)
    a.alu64(ebpf.ADD, 2, imm=key)
    a.mov64(3, 10)
    a.alu64(ebpf.ADD, 3, imm=-32)
    a.mov64(4, imm=0)
    a.call(_HELPER_MAP_UPDATE)
    a.label("pass")
    a.mov64(0, imm=ebpf.SK_PASS)
    a.exit()
    return a.assemble()


def _source_key(probe: Probe) -> bytes:
    family = socket.AF_INET6 if ":" in probe.src else socket.AF_INET
    return socket.inet_pton(family, probe.src) + probe.sport.to_bytes(2, "big") + b"\0\0"


_BPF_PROG_TEST_RUN: Final = 10
_ETH_HLEN: Final = 14


class _TestRunAttr(ctypes.Structure):
    """The BPF_PROG_TEST_RUN member of ``union bpf_attr`` (uapi/linux/bpf.h, Linux 6.18)."""

    _fields_ = (
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
        ("_pad", ctypes.c_uint8 * 44),
    )


def _socket_filter_index(prog_fd: int, payload: bytes) -> int:
    """What a SOCKET_FILTER program returns for *payload*, by BPF_PROG_TEST_RUN: the kernel
    test-runs socket filters (not SK_REUSEPORT programs) on an skb whose first 14 input bytes
    are taken as the Ethernet header (net/bpf/test_run.c, eth_type_trans), so 14 zero bytes
    go first and the program sees the payload at offset 0 -- as in reuseport, where
    run_bpf_filter pulls the UDP header before running it (net/core/sock_reuseport.c)."""
    data = ctypes.create_string_buffer(bytes(_ETH_HLEN) + payload, _ETH_HLEN + len(payload))
    attr = _TestRunAttr()
    attr.prog_fd = prog_fd
    attr.data_in = ctypes.addressof(data)
    attr.data_size_in = len(data)
    attr.repeat = 1
    _syscall.bpf(_BPF_PROG_TEST_RUN, attr)
    return int(attr.retval)


def _cbpf_index(program: Program, payload: bytes) -> int:
    filters = [
        cbpf.SockFilter(*_HHBBI.unpack_from(program.insns, 8 * i)) for i in range(program.count)
    ]
    return cbpf.run(filters, payload, checked=False)


def _in_lab(
    lab: netns.Lab, *args: object
) -> tuple[list[Delivery], list[SocketInfo]] | TestbenchError | KernelOracleError:
    """Run the experiment; sidkit's own errors (a map it cannot fill, a kernel refusal with
    its verifier log) come back as values so that the caller raises them as they are, not
    wrapped in the namespace process's traceback."""
    try:
        return _experiment(lab, *args)  # type: ignore[arg-type]
    except (TestbenchError, KernelOracleError) as exc:
        return exc


def _experiment(
    lab: netns.Lab,
    program: Program,
    n: int,
    feed: Feed,
    fills: Mapping[str, Fill],
    values: Mapping[str, Mapping[bytes, bytes]],
    port: int,
    family: Family,
) -> tuple[list[Delivery], list[SocketInfo]]:
    server = _SERVER[family]
    socks = netns.open_group(n, server, port)
    maps = _Maps()
    prog_fd: int | None = None
    try:
        cookies = [
            int(struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])
            for s in socks
        ]
        infos = [SocketInfo(i, c) for i, c in enumerate(cookies)]
        probes = _probes(feed, infos, family)
        dgrams = [netns.Datagram(p.src, p.sport, server, port, p.payload) for p in probes]
        # The default selection, measured with a recorder attached that returns SK_PASS
        # without choosing: the same selection as no program, plus the kernel's hash.
        sources = max(1, len({(p.src, p.sport) for p in probes}))
        key_size = _SADDR[family][1] + 4
        hashes = _syscall.Map(BPF_MAP_TYPE_HASH, key_size, 4, sources, name="sidkit_tb_hash")
        try:
            recorder = _syscall.prog_load(
                _syscall.BPF_PROG_TYPE_SK_REUSEPORT,
                ebpf.encode(_hash_recorder(hashes.fd, family)),
                expected_attach_type=_syscall.BPF_SK_REUSEPORT_SELECT,
                name="sidkit_tb_rec",
            )
            try:
                socks[0].setsockopt(socket.SOL_SOCKET, _syscall.SO_ATTACH_REUSEPORT_EBPF, recorder)
                default = lab.exchange(dgrams, socks, timeout=_QUIET)
            finally:
                os.close(recorder)
            recorded: list[int | None] = []
            for p in probes:
                raw = hashes.lookup(_source_key(p))
                recorded.append(None if raw is None else int(struct.unpack("=I", raw)[0]))
        finally:
            hashes.close()
        maps.build(program, fills, socks, cookies, values)
        prog_fd = _attach(program, socks[0], maps.fds)
        got = lab.exchange(dgrams, socks, timeout=_QUIET)
        # A datagram that reached its default socket may still have been selected there.
        # When every socket entry in the maps is the bench's, moving each entry to the next
        # socket tells the two apart: a selection moves with it, the default stays.
        same = [
            i for i, (d, g) in enumerate(zip(default, got, strict=True)) if g is not None and g == d
        ]
        moved: dict[int, int | None] = {}
        if same and maps.entries and n > 1 and program.kind == "sk_reuseport":
            maps.rotate(socks)
            again = lab.exchange([dgrams[i] for i in same], socks, timeout=_QUIET)
            moved = dict(zip(same, again, strict=True))
        out = []
        for i, (p, d, g) in enumerate(zip(probes, default, got, strict=True)):
            verdict: Literal["selected", "pass", "drop"]
            if g is None:
                verdict = "drop"
            elif program.kind == "cbpf":
                verdict = "selected" if _cbpf_index(program, p.payload) < n else "pass"
            elif program.kind == "socket_filter" and prog_fd is not None:
                verdict = "selected" if _socket_filter_index(prog_fd, p.payload) < n else "pass"
            elif g != d or (i in moved and moved[i] == (g + 1) % n):
                verdict = "selected"
            else:
                verdict = "pass"
            out.append(Delivery(i, p, g, d, verdict, recorded[i]))
        return out, infos
    finally:
        if prog_fd is not None:
            os.close(prog_fd)
        maps.close()
        for s in socks:
            s.close()


def deliver(
    program: Program,
    sockets: int,
    feed: Feed,
    *,
    maps: Mapping[str, Fill] | None = None,
    values: Mapping[str, Mapping[bytes, bytes]] | None = None,
    port: int = DEFAULT_PORT,
    family: Family = "ipv4",
) -> tuple[list[Delivery], list[SocketInfo]]:
    """Attach *program* to a group of *sockets* UDP sockets bound to ``10.77.0.1`` (or
    ``fd77::1`` for *family* ``"ipv6"``) in a private namespace, send *feed* from the client
    namespace, and return one Delivery per datagram and the sockets with their cookies. A
    callable *feed* runs in the namespace process (in a forked child of the caller).

    *maps* says how to fill each map (see ``Fill``); REUSEPORT_SOCKARRAY and SOCKMAP maps
    (and arrays of them) are filled by index when not named. *values* gives other maps their
    initial contents (``{"tmp_index_ovr_map": {key: value}}``, as a server sets them up).
    Raises TestbenchError for a map that cannot be filled (naming it) and KernelOracleError
    when the kernel refuses (not root, a verifier rejection with its log).
    """
    if type(sockets) is not int or not 1 <= sockets <= MAX_SOCKETS:
        raise TestbenchError(f"sockets must be 1..{MAX_SOCKETS}, got {sockets!r}")
    if type(port) is not int or not 1 <= port <= 0xFFFF:
        raise TestbenchError(f"port must be 1..65535, got {port!r}")
    fills = dict(maps or {})
    unknown = set(fills) - {m.name for m in program.maps}
    if unknown:
        known = ", ".join(m.name for m in program.maps) or "none"
        raise TestbenchError(f"no map {sorted(unknown)[0]!r} in the program (its maps: {known})")
    vals = {k: dict(v) for k, v in (values or {}).items()}
    for name in set(fills) | set(vals):
        program.map(name)  # a TestbenchError naming the maps the program has
    for declared in program.maps:
        spec, _ = _resolve(declared, fills.get(declared.name), sockets)
        for key, value in vals.get(declared.name, {}).items():
            if len(key) != spec.key_size or len(value) != spec.value_size:
                raise TestbenchError(
                    f"map {declared.name!r}: a value to set must have a {spec.key_size}-byte "
                    f"key and a {spec.value_size}-byte value"
                )
    if family not in _SERVER:
        raise TestbenchError(f"family must be 'ipv4' or 'ipv6', got {family!r}")
    if not callable(feed):
        feed = _probes(feed, [], family)
    reason = netns.netns_available() or _syscall.bpf_available()
    if reason is not None:
        raise KernelOracleError(f"the test bench needs the live kernel: {reason}")
    result = netns.run_in_lab(_in_lab, program, sockets, feed, fills, vals, port, family)
    if isinstance(result, TestbenchError):
        raise TestbenchError(str(result))
    if isinstance(result, KernelOracleError):
        err = KernelOracleError(str(result))
        err.errno = result.errno
        raise err
    return result
