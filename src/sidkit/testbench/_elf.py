# Strategy: read an object from ``clang -target bpf`` the way libbpf does, and no further.
# pyelftools (a maintained pure-Python ELF reader) gives sections, symbols and relocations;
# this module decides what they mean: program sections are the executable ones (libbpf's
# SEC() names; ``.text`` only holds subprograms), the licence is the ``license`` section, maps
# come from the legacy ``maps`` section (struct bpf_map_def records, one per symbol, sized as
# section size / symbol count like libbpf's bpf_object__init_user_maps) or from BTF-defined
# ``.maps`` (sidkit.testbench._btf), global data (``.rodata``, ``.data``, ``.bss``) becomes
# one-slot array maps, and ``.rel<section>`` records become Relocs on ``ld_imm64``
# instructions. BPF-to-BPF calls into other sections and CO-RE relocations are refused by
# name rather than loaded wrong.
"""Programs from ELF objects built with ``clang -target bpf`` (private)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any, Final, TypeVar

from sidkit.testbench._btf import btf_maps
from sidkit.testbench._program import (
    BPF_MAP_TYPE_ARRAY,
    Kind,
    MapSpec,
    Program,
    Reloc,
    TestbenchError,
)

__all__ = ["load_elf"]

_EM_BPF: Final = 247
_SHF_EXECINSTR: Final = 0x4
_LD_IMM64: Final = 0x18
_CALL: Final = 0x85
_DATA_PREFIXES: Final = (".rodata", ".data", ".bss")
# libbpf's section_defs (tools/lib/bpf/libbpf.c): SEC name -> (kind, expected_attach_type).
_SK_REUSEPORT_SELECT: Final = 39
_SK_REUSEPORT_SELECT_OR_MIGRATE: Final = 40
T = TypeVar("T")


def _elffile(data: bytes, name: str) -> Any:
    try:
        from elftools.common.exceptions import ELFError  # noqa: PLC0415
        from elftools.elf.elffile import ELFFile  # noqa: PLC0415
    except ImportError as exc:
        raise TestbenchError(
            "reading ELF objects needs pyelftools: pip install 'sidkit[testbench]'"
        ) from exc
    try:
        elf = ELFFile(io.BytesIO(data))
    except ELFError as exc:
        raise TestbenchError(f"{name}: not an ELF object: {exc}") from None
    if elf["e_machine"] not in ("EM_BPF", _EM_BPF):
        raise TestbenchError(f"{name}: ELF machine is {elf['e_machine']}, not BPF")
    if elf.elfclass != 64 or not elf.little_endian:
        raise TestbenchError(f"{name}: only 64-bit little-endian BPF objects are read")
    return elf


def _is_program(section: Any) -> bool:
    return bool(section["sh_flags"] & _SHF_EXECINSTR) and section["sh_size"] > 0


def _guarded(name: str, fn: Callable[[], T]) -> T:
    """Run *fn* (which reads the object through pyelftools); a malformed object is a
    TestbenchError. pyelftools and the construct library inside it raise many kinds of
    exception on bad input (ELFParseError, struct and stream errors, KeyError, ...), so at
    this boundary anything but our own error is converted."""
    try:
        return fn()
    except TestbenchError:
        raise
    except Exception as exc:
        raise TestbenchError(
            f"{name}: malformed ELF object ({type(exc).__name__}: {exc})"
        ) from None


def _kind(section: str) -> tuple[Kind, int]:
    """Program type from the SEC() name as libbpf reads it. Anything else is taken as an
    SK_REUSEPORT program with no expected attach type: nginx names its section after the
    program and loads it as SK_REUSEPORT itself."""
    if section == "sk_reuseport/migrate":
        return "sk_reuseport", _SK_REUSEPORT_SELECT_OR_MIGRATE
    if section == "sk_reuseport":
        return "sk_reuseport", _SK_REUSEPORT_SELECT
    if section == "socket" or section.startswith("socket/"):
        return "socket_filter", 0
    return "sk_reuseport", 0


def _symbols_in(symtab: Any, shndx: int) -> list[Any]:
    return [
        s
        for s in symtab.iter_symbols()
        if s["st_shndx"] == shndx and s.name and s["st_info"]["type"] != "STT_SECTION"
    ]


def _legacy_maps(elf: Any, symtab: Any) -> tuple[list[MapSpec], int | None]:
    section = elf.get_section_by_name("maps")
    if section is None:
        return [], None
    index = elf.get_section_index("maps")
    syms = sorted(_symbols_in(symtab, index), key=lambda s: s["st_value"])
    if not syms:
        return [], index
    raw = section.data() if section["sh_type"] != "SHT_NOBITS" else bytes(section["sh_size"])
    size = len(raw) // len(syms)
    if size < 4:
        raise TestbenchError(f"'maps' section: {len(raw)} bytes for {len(syms)} maps")
    out = []
    for s in syms:
        rec = raw[s["st_value"] : s["st_value"] + size][:20].ljust(20, b"\0")
        mtype, ksize, vsize, entries, flags = struct.unpack("<5I", rec)
        out.append(MapSpec(s.name, mtype, ksize, vsize, entries, flags))
    return out, index


def load_elf(data: bytes, section: str | None = None, *, name: str = "object") -> Program:
    """The program in *section* of an ELF object (the only program section when None)."""
    return _guarded(name, lambda: _load_elf(data, section, name))


def _load_elf(data: bytes, section: str | None, name: str) -> Program:
    elf = _elffile(data, name)
    progs = [s.name for s in elf.iter_sections() if _is_program(s)]
    if section is None:
        candidates = [p for p in progs if p != ".text"] or progs
        if len(candidates) != 1:
            raise TestbenchError(
                f"{name}: {len(candidates)} program sections ({', '.join(candidates) or 'none'}); "
                "choose one with --section"
            )
        section = candidates[0]
    if section not in progs:
        raise TestbenchError(
            f"{name}: no program section {section!r} (it has: {', '.join(progs) or 'none'})"
        )
    if elf.get_section_by_name(".BTF.ext") is not None and _has_core_relos(elf):
        raise TestbenchError(f"{name}: CO-RE relocations (.BTF.ext) are not supported")
    prog = elf.get_section_by_name(section)
    prog_index = elf.get_section_index(section)
    insns = bytearray(prog.data())
    lic = elf.get_section_by_name("license")
    license_text = lic.data().split(b"\0", 1)[0].decode("ascii", "replace") if lic else ""
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        raise TestbenchError(f"{name}: no symbol table (stripped object?)")

    maps, legacy_index = _legacy_maps(elf, symtab)
    btf_index = None
    if elf.get_section_by_name(".maps") is not None:
        btf_index = elf.get_section_index(".maps")
        btf = elf.get_section_by_name(".BTF")
        if btf is None:
            raise TestbenchError(f"{name}: BTF-defined maps but no .BTF section (compile with -g)")
        offsets = {s.name: s["st_value"] for s in _symbols_in(symtab, btf_index)}
        maps += btf_maps(btf.data(), offsets)
    data_sections: dict[int, str] = {}
    for i, s in enumerate(elf.iter_sections()):
        if s.name.startswith(_DATA_PREFIXES) and s["sh_size"] and not _is_program(s):
            content = bytes(s["sh_size"]) if s["sh_type"] == "SHT_NOBITS" else s.data()
            maps.append(MapSpec(s.name, BPF_MAP_TYPE_ARRAY, 4, len(content), 1, data=content))
            data_sections[i] = s.name

    relocs: list[Reloc] = []
    for rel in elf.iter_sections():
        if rel["sh_type"] not in ("SHT_REL", "SHT_RELA") or rel["sh_info"] != prog_index:
            continue
        rsyms = elf.get_section(rel["sh_link"])
        for r in rel.iter_relocations():
            off = r["r_offset"]
            if off % 8 or off + 8 > len(insns):
                raise TestbenchError(f"{name}: relocation at byte {off} is not an instruction")
            at = off // 8
            sym = rsyms.get_symbol(r["r_info_sym"])
            shndx = sym["st_shndx"]
            code, _regs, _off, imm = struct.unpack_from("<BBhi", insns, off)
            if code == _CALL:
                raise TestbenchError(
                    f"{name}: instruction {at} calls {sym.name or 'a function'} in another "
                    "section (BPF-to-BPF calls across sections are not supported)"
                )
            if code != _LD_IMM64:
                raise TestbenchError(f"{name}: relocation on instruction {at}, not an ld_imm64")
            if shndx in (legacy_index, btf_index):
                relocs.append(Reloc(at, sym.name))
            elif shndx in data_sections:
                relocs.append(Reloc(at, data_sections[shndx], "value", imm + sym["st_value"]))
            else:
                raise TestbenchError(
                    f"{name}: instruction {at} refers to {sym.name or '?'}, which is neither a "
                    "map nor global data"
                )
    kind, attach = _kind(section)
    funcs = [
        f.name
        for f in _symbols_in(symtab, prog_index)
        if f["st_info"]["type"] == "STT_FUNC" and f["st_value"] == 0
    ]
    return Program(
        name=funcs[0] if funcs else section,
        kind=kind,
        insns=bytes(insns),
        license=license_text,
        maps=tuple(maps),
        relocs=tuple(relocs),
        expected_attach_type=attach,
        source=name,
    )


def _has_core_relos(elf: Any) -> bool:
    """True when .BTF.ext carries CO-RE relocation records (header field core_relo_len)."""
    raw = elf.get_section_by_name(".BTF.ext").data()
    if len(raw) < 32:
        return False
    hdr_len = struct.unpack_from("<I", raw, 4)[0]
    return bool(hdr_len >= 32 and struct.unpack_from("<I", raw, 28)[0] > 0)
