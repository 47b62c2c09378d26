# Strategy: programs are often published as text, not objects. Three shapes are read here:
#
# * classic BPF as ``bpf_asm -c`` and ``tcpdump -dd`` print it (``{ 0x30, 0, 0, 0x00000000 },``
#   per line) and as ``bpf_asm`` / ``tcpdump -ddd`` print it (a count, then ``code jt jf k``
#   groups, comma- or line-separated);
# * C source holding ``struct bpf_insn NAME[] = {...}`` or ``struct sock_filter NAME[] = {...}``
#   arrays with symbolic initialisers (``{ BPF_LD | BPF_W | BPF_ABS, 0, 0, 0 }``, as the kernel
#   selftests write them), with nginx's ``ngx_bpf_reloc_t`` relocation table
#   (``{ "ngx_quic_sockmap", 55 }``: instruction 55 loads that map's fd) and licence;
# * the raw bytes of a ``struct bpf_insn`` array.
#
# The C reader is not a C compiler: it strips comments, finds the array by name, and evaluates
# each initialiser as an integer expression over the uapi constants (include/uapi/linux/
# bpf_common.h, bpf.h, filter.h), integer literals, casts and the names the caller defines
# (``mod=10`` for the selftest's ``mod`` parameter). Function-like macros (BPF_MOV64_REG(...))
# and anything else it cannot evaluate are refused by name.
"""Programs from text: classic BPF listings, C arrays of bpf_insn / sock_filter (private)."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import Final

from sidkit.testbench._program import Kind, MapSpec, Program, Reloc, TestbenchError

__all__ = ["C_CONSTANTS", "load_c_arrays", "load_cbpf_listing", "load_raw", "looks_like_c"]

_M32: Final = (1 << 32) - 1
_MAX_NESTING: Final = 16  # parentheses in one initialiser (the recursion stays shallow)
_MAX_TOKENS: Final = 256

C_CONSTANTS: Final[Mapping[str, int]] = {
    # instruction classes (bpf_common.h, bpf.h)
    "BPF_LD": 0x00, "BPF_LDX": 0x01, "BPF_ST": 0x02, "BPF_STX": 0x03, "BPF_ALU": 0x04,
    "BPF_JMP": 0x05, "BPF_RET": 0x06, "BPF_MISC": 0x07, "BPF_JMP32": 0x06, "BPF_ALU64": 0x07,
    # sizes and modes
    "BPF_W": 0x00, "BPF_H": 0x08, "BPF_B": 0x10, "BPF_DW": 0x18,
    "BPF_IMM": 0x00, "BPF_ABS": 0x20, "BPF_IND": 0x40, "BPF_MEM": 0x60, "BPF_LEN": 0x80,
    "BPF_MSH": 0xA0, "BPF_ATOMIC": 0xC0, "BPF_XADD": 0xC0, "BPF_MEMSX": 0x80,
    # ALU operations
    "BPF_ADD": 0x00, "BPF_SUB": 0x10, "BPF_MUL": 0x20, "BPF_DIV": 0x30, "BPF_OR": 0x40,
    "BPF_AND": 0x50, "BPF_LSH": 0x60, "BPF_RSH": 0x70, "BPF_NEG": 0x80, "BPF_MOD": 0x90,
    "BPF_XOR": 0xA0, "BPF_MOV": 0xB0, "BPF_ARSH": 0xC0, "BPF_END": 0xD0,
    "BPF_TO_LE": 0x00, "BPF_TO_BE": 0x08, "BPF_FROM_LE": 0x00, "BPF_FROM_BE": 0x08,
    # jumps
    "BPF_JA": 0x00, "BPF_JEQ": 0x10, "BPF_JGT": 0x20, "BPF_JGE": 0x30, "BPF_JSET": 0x40,
    "BPF_JNE": 0x50, "BPF_JSGT": 0x60, "BPF_JSGE": 0x70, "BPF_CALL": 0x80, "BPF_EXIT": 0x90,
    "BPF_JLT": 0xA0, "BPF_JLE": 0xB0, "BPF_JSLT": 0xC0, "BPF_JSLE": 0xD0,
    # sources, classic RET/MISC
    "BPF_K": 0x00, "BPF_X": 0x08, "BPF_A": 0x10, "BPF_TAX": 0x00, "BPF_TXA": 0x80,
    # registers, pseudo sources
    **{f"BPF_REG_{i}": i for i in range(11)},
    "BPF_REG_FP": 10, "BPF_PSEUDO_MAP_FD": 1, "BPF_PSEUDO_MAP_VALUE": 2, "BPF_PSEUDO_CALL": 1,
    # SK_REUSEPORT verdicts
    "SK_DROP": 0, "SK_PASS": 1,
}  # fmt: skip

_PROG_TYPES: Final[Mapping[str, Kind]] = {
    "BPF_PROG_TYPE_SK_REUSEPORT": "sk_reuseport",
    "BPF_PROG_TYPE_SOCKET_FILTER": "socket_filter",
}
_CAST = re.compile(
    r"\(\s*(?:const\s+)?(?:unsigned\s+|signed\s+)?"
    r"(?:u?int(?:8|16|32|64)_t|__[us](?:8|16|32|64)|char|short|int|long|long\s+long)\s*\)"
)
_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(<<|>>|[-+~|&^*/()%]))")
_ARRAY = re.compile(
    r"(struct\s+bpf_insn|struct\s+sock_filter|ngx_bpf_reloc_t)\s+(\w+)\s*\[\s*\w*\s*\]\s*=\s*\{"
)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


class _Expr:
    """An integer expression over C_CONSTANTS and *names*: | ^ & << >> + - * / % ~ ()."""

    _BINARY: Final = (("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*", "/", "%"))

    def __init__(self, text: str, names: Mapping[str, int]) -> None:
        self.text = text
        self.names = names
        self.tokens: list[tuple[str, str]] = []
        src = _CAST.sub(" ", text)
        pos = 0
        while pos < len(src):
            m = _TOKEN.match(src, pos)
            if m is None or m.end() == pos:
                if src[pos:].strip() == "":
                    break
                raise TestbenchError(f"cannot read {text.strip()!r} as an integer expression")
            pos = m.end()
            number, ident, op = m.groups()
            if number is not None:
                self.tokens.append(("num", number))
            elif ident is not None:
                self.tokens.append(("id", ident))
            elif op is not None:
                self.tokens.append(("op", op))
        self.i = 0
        depth = 0
        for kind, tok in self.tokens:
            depth += (tok == "(") - (tok == ")") if kind == "op" else 0
            if depth > _MAX_NESTING:
                raise TestbenchError(f"{text.strip()[:40]!r}...: nested deeper than {_MAX_NESTING}")
        if len(self.tokens) > _MAX_TOKENS:
            raise TestbenchError(f"{text.strip()[:40]!r}...: more than {_MAX_TOKENS} tokens")

    def value(self) -> int:
        if not self.tokens:
            raise TestbenchError("an empty initialiser")
        v = self._binary(0)
        if self.i != len(self.tokens):
            raise TestbenchError(f"cannot read {self.text.strip()!r} as an integer expression")
        return v

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _binary(self, level: int) -> int:
        if level == len(self._BINARY):
            return self._unary()
        v = self._binary(level + 1)
        while (t := self._peek()) is not None and t[0] == "op" and t[1] in self._BINARY[level]:
            self.i += 1
            w = self._binary(level + 1)
            op = t[1]
            if op in ("/", "%") and w == 0:
                raise TestbenchError(f"division by zero in {self.text.strip()!r}")
            if op in ("<<", ">>") and not 0 <= w <= 64:
                raise TestbenchError(f"shift by {w} in {self.text.strip()!r}")
            v = {
                "|": v | w, "^": v ^ w, "&": v & w, "<<": v << w, ">>": v >> w, "+": v + w,
                "-": v - w, "*": v * w, "/": int(v / w) if w else 0, "%": v % w if w else 0,
            }[op]  # fmt: skip
        return v

    def _unary(self) -> int:
        t = self._peek()
        if t is None:
            raise TestbenchError(f"cannot read {self.text.strip()!r}: ends early")
        self.i += 1
        kind, tok = t
        if kind == "op" and tok == "-":
            return -self._unary()
        if kind == "op" and tok == "~":
            return ~self._unary()
        if kind == "op" and tok == "(":
            v = self._binary(0)
            if self._peek() != ("op", ")"):
                raise TestbenchError(f"unbalanced parentheses in {self.text.strip()!r}")
            self.i += 1
            return v
        if kind == "num":
            return int(tok, 16) if tok[:2] in ("0x", "0X") else int(tok, 8 if tok[0] == "0" else 10)
        if kind == "id":
            if self._peek() == ("op", "("):
                raise TestbenchError(
                    f"{tok}(...) is a function-like macro; write the instruction out "
                    "as { code, dst, src, off, imm }"
                )
            if tok in self.names:
                return self.names[tok]
            if tok in C_CONSTANTS:
                return C_CONSTANTS[tok]
            raise TestbenchError(f"unknown name {tok!r} (define it, e.g. --define {tok}=VALUE)")
        raise TestbenchError(f"cannot read {self.text.strip()!r} as an integer expression")


def _braces(text: str, start: int) -> tuple[str, int]:
    """The text inside the brace that opens at *start*, and the index after its close."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    raise TestbenchError("unbalanced braces")


def _rows(body: str) -> list[list[str]]:
    """The ``{a, b, ...}`` groups of an array initialiser, each split at its commas."""
    rows = []
    pos = 0
    while (start := body.find("{", pos)) >= 0:
        inner, pos = _braces(body, start)
        rows.append([p for p in (x.strip() for x in inner.split(",")) if p])
    return rows


def _ints(row: list[str], names: Mapping[str, int], width: int) -> list[int]:
    if len(row) != width:
        raise TestbenchError(f"expected {width} fields, got {len(row)}: {{ {', '.join(row)} }}")
    return [_Expr(p, names).value() for p in row]


def _encode_cbpf(rows: list[list[int]]) -> bytes:
    out = bytearray()
    for code, jt, jf, k in rows:
        if not (0 <= code <= 0xFFFF and 0 <= jt <= 255 and 0 <= jf <= 255):
            raise TestbenchError(f"not a sock_filter: {{ {code:#x}, {jt}, {jf}, {k:#x} }}")
        out += struct.pack("=HBBI", code, jt, jf, k & _M32)
    return bytes(out)


def _encode_ebpf(rows: list[list[int]]) -> bytes:
    out = bytearray()
    for code, dst, src, off, imm in rows:
        if not (0 <= code <= 0xFF and 0 <= dst <= 10 and 0 <= src <= 10):
            raise TestbenchError(f"not a bpf_insn: {{ {code:#x}, {dst}, {src}, {off}, {imm} }}")
        off16 = ((off + (1 << 15)) & 0xFFFF) - (1 << 15)
        imm32 = ((imm + (1 << 31)) & _M32) - (1 << 31)
        out += struct.pack("<BBhi", code, (src << 4) | dst, off16, imm32)
    return bytes(out)


def looks_like_c(text: str) -> bool:
    """True when *text* declares a bpf_insn / sock_filter array."""
    return _ARRAY.search(_strip_comments(text)) is not None


def load_c_arrays(
    text: str,
    array: str | None = None,
    *,
    defines: Mapping[str, int] | None = None,
    kind: Kind | None = None,
    name: str = "source",
) -> Program:
    """The program in C array *array* of *text* (the only instruction array when None).

    nginx's ``ngx_bpf_reloc_t`` table becomes Relocs on declared-only maps, and its
    ``.license`` and ``.type`` fields the program's licence and kind. Elsewhere the kind comes
    from the one ``BPF_PROG_TYPE_*`` the file names (the selftests set ``prog_type`` next to
    their arrays), else *kind*, else SK_REUSEPORT for bpf_insn and classic for sock_filter.
    Without a ``.license`` the licence is "GPL", the one the kernel selftests load theirs
    with; classic programs carry none.
    """
    src = _strip_comments(text)
    names = dict(defines or {})
    arrays: dict[str, tuple[str, str]] = {}
    relocs: list[Reloc] = []
    for m in _ARRAY.finditer(src):
        body, _ = _braces(src, m.end() - 1)
        if m.group(1) == "ngx_bpf_reloc_t":
            for row in _rows(body):
                if len(row) != 2 or not row[0].startswith('"'):
                    raise TestbenchError(f"{name}: not a relocation: {{ {', '.join(row)} }}")
                relocs.append(Reloc(_Expr(row[1], names).value(), row[0].strip('"')))
        else:
            arrays[m.group(2)] = (m.group(1).split()[-1], body)
    if array is None:
        if len(arrays) != 1:
            raise TestbenchError(
                f"{name}: {len(arrays)} instruction arrays ({', '.join(arrays) or 'none'}); "
                "choose one with --section"
            )
        array = next(iter(arrays))
    if array not in arrays:
        raise TestbenchError(f"{name}: no array {array!r} (it has: {', '.join(arrays) or 'none'})")
    ctype, body = arrays[array]
    if ctype == "sock_filter":
        return Program(
            array,
            "cbpf",
            _encode_cbpf([_ints(r, names, 4) for r in _rows(body)]),
            license="",
            source=name,
        )
    insns = _encode_ebpf([_ints(r, names, 5) for r in _rows(body)])
    lic = re.search(r"\.license\s*=\s*\"([^\"]*)\"", src)
    types = {t for t in re.findall(r"BPF_PROG_TYPE_\w+", src) if t in _PROG_TYPES}
    if kind is None:
        kind = _PROG_TYPES[types.pop()] if len(types) == 1 else "sk_reuseport"
    maps = tuple(MapSpec(n) for n in dict.fromkeys(r.map for r in relocs))
    for r in relocs:
        if r.insn + 1 >= len(insns) // 8 or insns[8 * r.insn] != 0x18:
            raise TestbenchError(f"{name}: relocation {r.map!r} at {r.insn} is not an ld_imm64")
    return Program(
        array,
        kind,
        insns,
        license=lic.group(1) if lic else "GPL",
        maps=maps,
        relocs=tuple(relocs),
        source=name,
    )


def load_cbpf_listing(text: str, *, name: str = "listing") -> Program:
    """Classic BPF in ``bpf_asm -c`` / ``tcpdump -dd`` form, or ``bpf_asm`` / ``tcpdump -ddd``
    form (an instruction count, then ``code jt jf k`` per instruction)."""
    src = _strip_comments(text)
    # shell scripts that carry the listing after a marker (udpgrm's examples): the listing is
    # the part made of { ... } rows, so lines that are not rows are skipped.
    rows = [r.strip() for r in src.splitlines() if re.match(r"\s*\{[^{}]*\}\s*,?\s*$", r)]
    if rows:
        return Program(
            name,
            "cbpf",
            _encode_cbpf([_ints(_rows(r)[0], {}, 4) for r in rows]),
            license="",
            source=name,
        )
    fields = [f for f in re.split(r"[,\n]", src.strip()) if f.strip()]
    try:
        count = int(fields[0])
        quads = [[int(x) for x in f.split()] for f in fields[1:]]
    except (ValueError, IndexError):
        raise TestbenchError(f"{name}: not a classic BPF listing") from None
    if count != len(quads) or any(len(q) != 4 for q in quads):
        raise TestbenchError(f"{name}: says {count} instructions, holds {len(quads)}")
    return Program(name, "cbpf", _encode_cbpf(quads), license="", source=name)


def load_raw(data: bytes, *, kind: Kind = "sk_reuseport", name: str = "raw") -> Program:
    """A raw ``struct bpf_insn`` array (eBPF kinds) or ``struct sock_filter`` array."""
    if not data or len(data) % 8:
        raise TestbenchError(f"{name}: {len(data)} bytes is not a whole number of instructions")
    return Program(name, kind, data, license="GPL", source=name)
