# Strategy: libbpf's BTF-defined maps (``struct { __uint(type, ...); __type(key, ...); ... }
# name SEC(".maps")``) carry their parameters only in the object's BTF: ``__uint(x, N)``
# is a member ``int (*x)[N]`` (a pointer to an array of N), ``__type(x, T)`` a member
# ``typeof(T) *x``, ``__array(values, struct inner)`` a member ``struct inner *values[]``.
# This module reads just enough BTF (include/uapi/linux/btf.h, kinds 1..19 as of Linux
# 6.18) to turn those into MapSpecs: type records are walked once to find where each begins,
# sizes are resolved through typedefs and qualifiers. It never loads BTF into the kernel (the
# bench creates maps without BTF, which SK_REUSEPORT programs do not need); anything it does
# not understand is a TestbenchError naming the map, never a guess.
"""Map definitions from an object's BTF (``.maps`` section), minimal and exact (private)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

from sidkit.testbench._program import MapSpec, TestbenchError

__all__ = ["btf_maps"]

_MAGIC: Final = 0xEB9F
# BTF_KIND_*
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19
_QUALIFIERS: Final = frozenset((_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG))
_SIZED: Final = frozenset((_INT, _STRUCT, _UNION, _ENUM, _FLOAT, _ENUM64))
_MAX_DEPTH: Final = 32


class _Type:
    __slots__ = ("extra", "kind", "name", "ref", "vlen")

    def __init__(self, name: str, kind: int, vlen: int, ref: int, extra: bytes) -> None:
        self.name = name
        self.kind = kind
        self.vlen = vlen
        self.ref = ref  # size for sized kinds, referenced type id otherwise
        self.extra = extra


def _extra_size(kind: int, vlen: int) -> int:
    if kind in (_INT, _VAR, _DECL_TAG):
        return 4
    if kind == _ARRAY:
        return 12
    if kind in (_STRUCT, _UNION, _DATASEC, _ENUM64):
        return 12 * vlen
    if kind in (_ENUM, _FUNC_PROTO):
        return 8 * vlen
    if kind in (_PTR, _FWD, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _FUNC, _FLOAT, _TYPE_TAG):
        return 0
    raise TestbenchError(f"BTF: unknown type kind {kind} (newer than Linux 6.18?)")


class _Btf:
    def __init__(self, raw: bytes) -> None:
        if len(raw) < 24:
            raise TestbenchError("BTF: section shorter than its header")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", raw, 0)
        if magic != _MAGIC:
            raise TestbenchError(f"BTF: bad magic {magic:#x} (big-endian objects are not read)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", raw, 8)
        base = hdr_len
        if base + max(type_off + type_len, str_off + str_len) > len(raw):
            raise TestbenchError("BTF: type or string section runs past the end")
        self._strings = raw[base + str_off : base + str_off + str_len]
        types = raw[base + type_off : base + type_off + type_len]
        self.types: list[_Type | None] = [None]  # type id 0 is void
        pos = 0
        while pos < len(types):
            if pos + 12 > len(types):
                raise TestbenchError("BTF: a type record is cut short")
            name_off, info, ref = struct.unpack_from("<III", types, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            size = _extra_size(kind, vlen)
            extra = types[pos + 12 : pos + 12 + size]
            if len(extra) != size:
                raise TestbenchError("BTF: a type record is cut short")
            self.types.append(_Type(self.string(name_off), kind, vlen, ref, extra))
            pos += 12 + size

    def string(self, off: int) -> str:
        end = self._strings.find(b"\0", off)
        if off >= len(self._strings) or end < 0:
            raise TestbenchError(f"BTF: string offset {off} out of range")
        return self._strings[off:end].decode("utf-8", "replace")

    def type(self, tid: int) -> _Type:
        if not 0 < tid < len(self.types):
            raise TestbenchError(f"BTF: type id {tid} out of range")
        t = self.types[tid]
        assert t is not None
        return t

    def strip(self, tid: int) -> tuple[int, _Type]:
        """Follow typedefs and qualifiers to the type they name."""
        for _ in range(_MAX_DEPTH):
            t = self.type(tid)
            if t.kind not in _QUALIFIERS:
                return tid, t
            tid = t.ref
        raise TestbenchError("BTF: typedef chain too deep")

    def sizeof(self, tid: int, depth: int = 0) -> int:
        if depth > _MAX_DEPTH:
            raise TestbenchError("BTF: type nesting too deep")
        _, t = self.strip(tid)
        if t.kind in _SIZED:
            return t.ref
        if t.kind == _PTR:
            return 8
        if t.kind == _ARRAY:
            elem, _index, nelems = struct.unpack("<III", t.extra)
            return int(nelems) * self.sizeof(elem, depth + 1)
        raise TestbenchError(f"BTF: type {t.name or tid!r} (kind {t.kind}) has no size")

    def members(self, t: _Type) -> list[tuple[str, int]]:
        out = []
        for i in range(t.vlen):
            name_off, mtype, _offset = struct.unpack_from("<III", t.extra, 12 * i)
            out.append((self.string(name_off), mtype))
        return out

    def map_def(self, name: str, tid: int, depth: int = 0) -> MapSpec:
        """The MapSpec a ``.maps`` variable's struct type describes."""
        _, t = self.strip(tid)
        if t.kind != _STRUCT:
            raise TestbenchError(f"map {name!r}: its BTF type is not a struct")
        fields: dict[str, int] = {}
        inner: MapSpec | None = None
        for member, mtype in self.members(t):
            _, mt = self.strip(mtype)
            if member in ("type", "max_entries", "map_flags", "key_size", "value_size"):
                # __uint(member, N): int (*member)[N]
                target = self.strip(mt.ref)[1] if mt.kind == _PTR else None
                if target is None or target.kind != _ARRAY:
                    raise TestbenchError(f"map {name!r}: member {member!r} is not __uint()")
                fields[member] = struct.unpack("<III", target.extra)[2]
            elif member in ("key", "value"):
                if mt.kind != _PTR:
                    raise TestbenchError(f"map {name!r}: member {member!r} is not __type()")
                fields[f"{member}_size"] = self.sizeof(mt.ref)
            elif member == "values":
                # __array(values, struct inner): struct inner *values[]
                if mt.kind != _ARRAY or depth:
                    raise TestbenchError(f"map {name!r}: member 'values' is not __array()")
                ptr = self.strip(struct.unpack("<III", mt.extra)[0])[1]
                if ptr.kind != _PTR:
                    raise TestbenchError(f"map {name!r}: member 'values' is not __array()")
                inner = self.map_def(f"{name}.inner", ptr.ref, depth + 1)
            elif member in ("pinning", "numa_node"):
                continue  # where the map lives, not what it holds
            else:
                raise TestbenchError(f"map {name!r}: unknown BTF map member {member!r}")
        if "type" not in fields:
            raise TestbenchError(f"map {name!r}: no __uint(type, ...) in its BTF definition")
        if fields["type"] in (12, 13) and "value_size" not in fields:
            fields["value_size"] = 4  # map-in-map values are map fds (u32), as libbpf sets
        return MapSpec(
            name=name,
            map_type=fields["type"],
            key_size=fields.get("key_size", 0),
            value_size=fields.get("value_size", 0),
            max_entries=fields.get("max_entries", 0),
            flags=fields.get("map_flags", 0),
            inner=inner,
        )


def btf_maps(raw_btf: bytes, symbol_offsets: Mapping[str, int]) -> list[MapSpec]:
    """The maps of the ``.maps`` DATASEC in *raw_btf*, in their order in the section.

    *symbol_offsets* (map name -> offset in ``.maps``, from the ELF symbol table) orders them
    and checks that every BTF variable is a real map: in an object file clang leaves the
    DATASEC's offsets at 0 (libbpf's btf_fixup_datasec fills them in from the symbols).
    """
    btf = _Btf(raw_btf)
    for t in btf.types[1:]:
        assert t is not None
        if t.kind == _DATASEC and t.name == ".maps":
            out = []
            for i in range(t.vlen):
                var_id, _offset, _size = struct.unpack_from("<III", t.extra, 12 * i)
                var = btf.type(var_id)
                if var.kind != _VAR:
                    raise TestbenchError("BTF: a .maps entry is not a variable")
                if var.name not in symbol_offsets:
                    raise TestbenchError(f"map {var.name!r} is in BTF but not in the symbol table")
                out.append(btf.map_def(var.name, var.ref))
            return sorted(out, key=lambda m: symbol_offsets[m.name])
    raise TestbenchError("the object has a .maps section but its BTF has no .maps DATASEC")
