# Strategy: one entry point that looks at a file and picks the loader: an ELF object (magic
# \x7fELF), C source declaring bpf_insn / sock_filter arrays, a classic BPF listing, or raw
# bpf_insn bytes. Sizes are checked where the input enters; everything after is the loaders'.
"""Pick the loader for a program file (private)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from sidkit.bpf import cbpf, ebpf
from sidkit.testbench._elf import load_elf
from sidkit.testbench._program import Kind, MapSpec, Program, Reloc, TestbenchError
from sidkit.testbench._text import load_c_arrays, load_cbpf_listing, load_raw, looks_like_c

__all__ = ["from_cbpf", "from_insns", "load_program"]

MAX_PROGRAM_FILE: Final = 16 << 20


def load_program(
    path: str | Path,
    section: str | None = None,
    *,
    defines: Mapping[str, int] | None = None,
    kind: Kind | None = None,
) -> Program:
    """Load the program in *path*: an ELF object from ``clang -target bpf`` (*section* picks
    the SEC()), C source with a ``struct bpf_insn`` / ``struct sock_filter`` array (*section*
    names the array; *defines* give values to names it uses), a classic BPF listing
    (``bpf_asm -c``, ``tcpdump -dd``/``-ddd``) or raw ``struct bpf_insn`` bytes (*kind*)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_PROGRAM_FILE:
            raise TestbenchError(f"{p}: {size} bytes; program files are at most {MAX_PROGRAM_FILE}")
        data = p.read_bytes()
    except OSError as exc:
        raise TestbenchError(f"{p}: {exc.strerror}") from None
    name = p.name
    if data.startswith(b"\x7fELF"):
        program = load_elf(data, section, name=name)
        return program if kind is None else _with_kind(program, kind)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and "\0" not in text:
        if looks_like_c(text):
            return load_c_arrays(text, section, defines=defines, kind=kind, name=name)
        return load_cbpf_listing(text, name=name)
    return load_raw(data, kind=kind or "sk_reuseport", name=name)


def _with_kind(program: Program, kind: Kind) -> Program:
    if (program.kind == "cbpf") != (kind == "cbpf"):
        raise TestbenchError(f"{program.source}: an eBPF object cannot be loaded as {kind}")
    return Program(
        program.name,
        kind,
        program.insns,
        program.license,
        program.maps,
        program.relocs,
        program.expected_attach_type,
        program.source,
    )


def from_cbpf(program: list[cbpf.SockFilter], name: str = "cbpf") -> Program:
    """A Program from sidkit's classic assembler (:class:`sidkit.bpf.cbpf.Assembler`)."""
    return Program(name, "cbpf", cbpf.encode(program), license="", source=name)


def from_insns(
    insns: list[ebpf.Insn],
    *,
    name: str = "ebpf",
    maps: tuple[MapSpec, ...] = (),
    relocs: tuple[Reloc, ...] = (),
    kind: Kind = "sk_reuseport",
) -> Program:
    """A Program from sidkit's eBPF assembler; *relocs* name the ``ld_imm64`` instructions
    that load each of *maps* (emit them with ``ld_map_fd(reg, 0)``)."""
    return Program(name, kind, ebpf.encode(insns), "GPL", maps, relocs, source=name)
