# Strategy: a third-party reuseport program arrives in one of several shapes (an ELF object
# from clang, a C array of struct bpf_insn with relocations as nginx ships it, classic BPF as
# bpf_asm -c / tcpdump -dd print it). Every loader ends in the same value, Program: the
# instructions as the kernel will see them (map references still unresolved), the maps the
# program expects, the relocations that tie the two together, and the licence. The bench
# (sidkit.testbench._bench) is the only place that creates maps and patches instructions, so
# the loaders stay pure: bytes in, a Program out, a TestbenchError on anything they cannot read.
"""What a loaded program is, independent of the shape it came in (private)."""

from __future__ import annotations

from typing import Final, Literal

import attrs

from sidkit._errors import InputValueError

__all__ = [
    "BPF_MAP_TYPE_ARRAY",
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",
    "BPF_MAP_TYPE_SOCKHASH",
    "BPF_MAP_TYPE_SOCKMAP",
    "MAP_TYPE_NAMES",
    "Kind",
    "MapSpec",
    "Program",
    "Reloc",
    "TestbenchError",
]

# enum bpf_map_type (include/uapi/linux/bpf.h): the ones the bench knows how to fill, and the
# names it prints for all others.
BPF_MAP_TYPE_HASH: Final = 1
BPF_MAP_TYPE_ARRAY: Final = 2
BPF_MAP_TYPE_ARRAY_OF_MAPS: Final = 12
BPF_MAP_TYPE_SOCKMAP: Final = 15
BPF_MAP_TYPE_SOCKHASH: Final = 18
BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: Final = 20
MAP_TYPE_NAMES: Final = {
    0: "UNSPEC",
    1: "HASH",
    2: "ARRAY",
    3: "PROG_ARRAY",
    4: "PERF_EVENT_ARRAY",
    5: "PERCPU_HASH",
    6: "PERCPU_ARRAY",
    7: "STACK_TRACE",
    8: "CGROUP_ARRAY",
    9: "LRU_HASH",
    10: "LRU_PERCPU_HASH",
    11: "LPM_TRIE",
    12: "ARRAY_OF_MAPS",
    13: "HASH_OF_MAPS",
    14: "DEVMAP",
    15: "SOCKMAP",
    16: "CPUMAP",
    17: "XSKMAP",
    18: "SOCKHASH",
    19: "CGROUP_STORAGE",
    20: "REUSEPORT_SOCKARRAY",
    21: "PERCPU_CGROUP_STORAGE",
    22: "QUEUE",
    23: "STACK",
    24: "SK_STORAGE",
    25: "DEVMAP_HASH",
    26: "STRUCT_OPS",
    27: "RINGBUF",
}

Kind = Literal["sk_reuseport", "socket_filter", "cbpf"]
"""How the program reaches the group: an SK_REUSEPORT eBPF program, a SOCKET_FILTER eBPF
program (both through SO_ATTACH_REUSEPORT_EBPF; the kernel runs a socket filter on the UDP
payload and takes its return value as the index), or classic BPF (SO_ATTACH_REUSEPORT_CBPF)."""


class TestbenchError(InputValueError):
    """A program, map, feed or expectation the bench cannot use; the message says which."""

    __test__ = False  # not a pytest class, whatever its name says
    code = "testbench"


@attrs.frozen
class MapSpec:
    """A map as the program declares it. ``map_type`` 0 means "declared but not described"
    (nginx's ``struct bpf_map_def SEC("maps") ngx_quic_sockmap;`` -- the server creates it);
    the bench then takes type and sizes from how it is told to fill the map. *inner* is the
    template of a map-in-map's values; *data* the initial contents of a global-data map
    (``.rodata``, ``.data``, ``.bss``), which is one array slot of ``value_size`` bytes."""

    name: str
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    inner: MapSpec | None = None
    data: bytes | None = None

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.map_type, str(self.map_type))


@attrs.frozen
class Reloc:
    """Instruction *insn* (an ``ld_imm64``) refers to map *map*: its fd (``kind="fd"``,
    src_reg BPF_PSEUDO_MAP_FD) or the address of its value at *offset*
    (``kind="value"``, BPF_PSEUDO_MAP_VALUE, global data)."""

    insn: int
    map: str
    kind: Literal["fd", "value"] = "fd"
    offset: int = 0


@attrs.frozen
class Program:
    """A loaded program. *insns* is the raw ``struct bpf_insn`` array (eBPF kinds) or the
    ``struct sock_filter`` array (``kind="cbpf"``), in host byte order."""

    name: str
    kind: Kind
    insns: bytes
    license: str = "GPL"
    maps: tuple[MapSpec, ...] = ()
    relocs: tuple[Reloc, ...] = ()
    expected_attach_type: int = 0
    source: str = ""

    @property
    def count(self) -> int:
        """Number of instructions."""
        return len(self.insns) // 8

    def map(self, name: str) -> MapSpec:
        for m in self.maps:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.maps) or "none"
        raise TestbenchError(f"program {self.name!r} has no map {name!r} (its maps: {known})")
