# Strategy: steering programs are generated, not written by hand, so sidkit needs an eBPF
# *assembler* (instruction encoding as include/uapi/linux/bpf.h and
# Documentation/bpf/standardization/instruction-set.rst define it) and, because the kernel
# cannot test-run SK_REUSEPORT programs (BPF_PROG_TEST_RUN answers ENOTSUPP for that type), a
# small *interpreter* with the kernel's semantics for the instructions and the two helpers a
# reuseport program uses. The interpreter is how the test suite checks a compiled program
# against the Python model on millions of payloads; the live kernel then checks a sample of the
# same programs for real.
#
# What it refuses to do: it is not a verifier and not a general VM. Memory is the 512-byte
# stack, the read-only SK_REUSEPORT context and nothing else; any other access, an unknown
# opcode or a jump out of the program raises EbpfError, so a compiler bug surfaces as an error
# instead of a plausible wrong answer.
"""eBPF instructions: an assembler with labels, and an interpreter for SK_REUSEPORT programs."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from sidkit._errors import InputValueError

__all__ = [
    "ADD",
    "AND",
    "ARSH",
    "DIV",
    "JEQ",
    "JGE",
    "JGT",
    "JLE",
    "JLT",
    "JNE",
    "JSET",
    "LSH",
    "MOD",
    "MOV",
    "MUL",
    "OR",
    "RSH",
    "SK_DROP",
    "SK_PASS",
    "SUB",
    "XOR",
    "Assembler",
    "EbpfError",
    "Insn",
    "ReuseportContext",
    "encode",
    "run_sk_reuseport",
]

# Instruction classes (uapi/linux/bpf_common.h, bpf.h).
LD: Final = 0x00
LDX: Final = 0x01
ST: Final = 0x02
STX: Final = 0x03
ALU: Final = 0x04
JMP: Final = 0x05
JMP32: Final = 0x06
ALU64: Final = 0x07
# Sizes and modes.
W: Final = 0x00
H: Final = 0x08
B: Final = 0x10
DW: Final = 0x18
IMM: Final = 0x00
MEM: Final = 0x60
SIZE_BYTES: Final = {W: 4, H: 2, B: 1, DW: 8}
# ALU operations.
ADD: Final = 0x00
SUB: Final = 0x10
MUL: Final = 0x20
DIV: Final = 0x30
OR: Final = 0x40
AND: Final = 0x50
LSH: Final = 0x60
RSH: Final = 0x70
NEG: Final = 0x80
MOD: Final = 0x90
XOR: Final = 0xA0
MOV: Final = 0xB0
ARSH: Final = 0xC0
END: Final = 0xD0
K: Final = 0x00
X: Final = 0x08
TO_LE: Final = 0x00
TO_BE: Final = 0x08
# Jump operations.
JA: Final = 0x00
JEQ: Final = 0x10
JGT: Final = 0x20
JGE: Final = 0x30
JSET: Final = 0x40
JNE: Final = 0x50
JSGT: Final = 0x60
JSGE: Final = 0x70
CALL: Final = 0x80
EXIT: Final = 0x90
JLT: Final = 0xA0
JLE: Final = 0xB0
JSLT: Final = 0xC0
JSLE: Final = 0xD0

BPF_PSEUDO_MAP_FD: Final = 1
# Helpers a reuseport program uses (enum bpf_func_id).
HELPER_MAP_LOOKUP_ELEM: Final = 1
HELPER_MAP_UPDATE_ELEM: Final = 2
HELPER_MAP_DELETE_ELEM: Final = 3
HELPER_KTIME_GET_NS: Final = 5
HELPER_KTIME_GET_COARSE_NS: Final = 160
HELPER_SKB_LOAD_BYTES: Final = 26
HELPER_SKB_LOAD_BYTES_RELATIVE: Final = 68
HELPER_SK_SELECT_REUSEPORT: Final = 82
# enum sk_action.
SK_DROP: Final = 0
SK_PASS: Final = 1

R10: Final = 10
_M64: Final = (1 << 64) - 1
_M32: Final = (1 << 32) - 1
STACK_SIZE: Final = 512
_ENOENT: Final = 2
_EFAULT: Final = 14
_INSN: Final = struct.Struct("<BBhi")


class EbpfError(InputValueError):
    """An eBPF program that cannot be assembled or that does something the interpreter refuses."""

    code = "bad-ebpf"


@attrs.frozen
class Insn:
    """One 8-byte ``struct bpf_insn``: opcode, dst and src registers, offset, immediate."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        """The instruction's bytes (little-endian host layout: dst in the low nibble)."""
        return _INSN.pack(self.code, (self.src << 4) | self.dst, self.off, _s32(self.imm))


def encode(insns: Sequence[Insn]) -> bytes:
    """The program as the byte array BPF_PROG_LOAD takes."""
    return b"".join(i.encode() for i in insns)


def _s32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v & 0x8000_0000 else v


def _check_reg(r: int) -> int:
    if not 0 <= r <= R10:
        raise EbpfError(f"register r{r} does not exist (r0..r10)")
    return r


class Assembler:
    """Build a program instruction by instruction, with symbolic jump labels.

    Methods append and return ``self``'s new instruction index; ``label()`` names the next
    instruction; jumps take a label that may be defined later. ``assemble()`` resolves the
    labels into the relative offsets the kernel expects (``off`` counts instructions after the
    jump, and a 16-byte ``ld_imm64`` counts as two).
    """

    def __init__(self) -> None:
        self._insns: list[Insn | tuple[Insn, str]] = []
        self._labels: dict[str, int] = {}

    def _emit(self, insn: Insn, label: str | None = None) -> None:
        self._insns.append(insn if label is None else (insn, label))

    def label(self, name: str) -> None:
        if name in self._labels:
            raise EbpfError(f"label {name!r} defined twice")
        self._labels[name] = len(self._insns)

    def alu32(self, op: int, dst: int, src: int | None = None, imm: int = 0) -> None:
        """32-bit ALU: ``dst = (u32)(dst op src_or_imm)``, upper half zeroed (as the kernel)."""
        self._alu(ALU, op, dst, src, imm)

    def alu64(self, op: int, dst: int, src: int | None = None, imm: int = 0) -> None:
        """64-bit ALU: ``dst = dst op src_or_imm`` (imm sign-extended to 64 bits)."""
        self._alu(ALU64, op, dst, src, imm)

    def _alu(self, cls: int, op: int, dst: int, src: int | None, imm: int) -> None:
        if src is None:
            self._emit(Insn(cls | op | K, _check_reg(dst), 0, 0, imm))
        else:
            self._emit(Insn(cls | op | X, _check_reg(dst), _check_reg(src)))

    def endian(self, to_be: bool, dst: int, bits: int) -> None:
        """``BPF_END``: convert *dst*'s low *bits* to big- (or little-) endian, zero the rest."""
        if bits not in (16, 32, 64):
            raise EbpfError(f"BPF_END width must be 16, 32 or 64, got {bits}")
        self._emit(Insn(ALU | END | (TO_BE if to_be else TO_LE), _check_reg(dst), 0, 0, bits))

    def ldx(self, size: int, dst: int, src: int, off: int) -> None:
        """``dst = *(size *)(src + off)``."""
        self._emit(Insn(LDX | MEM | size, _check_reg(dst), _check_reg(src), off))

    def stx(self, size: int, dst: int, off: int, src: int) -> None:
        """``*(size *)(dst + off) = src``."""
        self._emit(Insn(STX | MEM | size, _check_reg(dst), _check_reg(src), off))

    def st(self, size: int, dst: int, off: int, imm: int) -> None:
        """``*(size *)(dst + off) = imm``."""
        self._emit(Insn(ST | MEM | size, _check_reg(dst), 0, off, imm))

    def ld_map_fd(self, dst: int, fd: int) -> None:
        """``ld_imm64`` with ``src = BPF_PSEUDO_MAP_FD``: the verifier turns *fd* into the map."""
        self._emit(Insn(LD | IMM | DW, _check_reg(dst), BPF_PSEUDO_MAP_FD, 0, fd))
        self._emit(Insn(0, 0, 0, 0, 0))

    def jmp(self, op: int, dst: int, label: str, src: int | None = None, imm: int = 0) -> None:
        """64-bit conditional jump to *label* when ``dst op src_or_imm``."""
        if src is None:
            self._emit(Insn(JMP | op | K, _check_reg(dst), 0, 0, imm), label)
        else:
            self._emit(Insn(JMP | op | X, _check_reg(dst), _check_reg(src)), label)

    def ja(self, label: str) -> None:
        self._emit(Insn(JMP | JA), label)

    def call(self, helper: int) -> None:
        self._emit(Insn(JMP | CALL, imm=helper))

    def exit(self) -> None:
        self._emit(Insn(JMP | EXIT))

    def mov64(self, dst: int, src: int | None = None, imm: int = 0) -> None:
        self.alu64(MOV, dst, src, imm)

    def mov32(self, dst: int, src: int | None = None, imm: int = 0) -> None:
        self.alu32(MOV, dst, src, imm)

    def assemble(self) -> list[Insn]:
        """Resolve labels and return the instruction list."""
        out: list[Insn] = []
        for index, item in enumerate(self._insns):
            if isinstance(item, Insn):
                out.append(item)
                continue
            insn, label = item
            if label not in self._labels:
                raise EbpfError(f"jump to undefined label {label!r}")
            off = self._labels[label] - index - 1
            if not -(1 << 15) <= off < (1 << 15):
                raise EbpfError(f"jump to {label!r} out of 16-bit range ({off})")
            out.append(attrs.evolve(insn, off=off))
        return out


# --- interpreter ---------------------------------------------------------------------------

# Addresses the interpreter hands out: the stack grows down from _STACK_TOP, the context is a
# separate region. Both are far apart and far from zero so that a wrong pointer faults.
_STACK_TOP: Final = 0x7FFF_0000_0000
_CTX_BASE: Final = 0x5555_0000_0000
CTX_LEN: Final = 16
"""Offset of ``len`` (u32) in ``struct sk_reuseport_md``: after the two data pointers."""
_MAP_BASE: Final = 0x6666_0000_0000


@attrs.frozen
class ReuseportContext:
    """What an SK_REUSEPORT program sees (``struct sk_reuseport_md``, include/uapi/linux/bpf.h).

    *packet* is the UDP header followed by the payload, because that is where ``skb->data``
    points when the UDP lookup runs the program (net/ipv4/udp.c, Linux 4.19+): offset 8 of
    ``bpf_skb_load_bytes`` is the first payload byte, and ``len`` counts the header.
    """

    packet: bytes
    hash: int = 0
    eth_protocol: int = 0x0800
    ip_protocol: int = 17
    bind_inany: int = 0

    def field(self, off: int, size: int) -> int:
        """Read a context field as the verifier allows (only the u32 fields are modelled)."""
        fields = {
            CTX_LEN: len(self.packet),
            # eth_protocol is stored in network byte order; a u32 load on a little-endian
            # host therefore reads the byte-swapped value (KERNEL-NOTES, measured).
            20: int.from_bytes(self.eth_protocol.to_bytes(2, "big"), "little"),
            24: self.ip_protocol,
            28: self.bind_inany,
            32: self.hash,
        }
        if size != 4 or off not in fields:
            raise EbpfError(f"context access at offset {off} size {size} is not modelled")
        return fields[off] & _M32


#: The result of a reuseport program run: the verdict and the index passed to a successful
#: bpf_sk_select_reuseport (None if the program selected nothing).
Verdict = tuple[int, int | None]


def run_sk_reuseport(
    insns: Sequence[Insn],
    ctx: ReuseportContext,
    occupied: Callable[[int], bool] = lambda _key: True,
    max_steps: int = 1_000_000,
) -> Verdict:
    """Run an SK_REUSEPORT program the way the kernel would; return ``(verdict, selected)``.

    Semantics follow kernel/bpf/core.c (``___bpf_prog_run``): 32-bit ALU results are
    zero-extended, shifts use the low 5/6 bits of the amount, division or modulo by zero yield
    0 / the dividend (the BPF ISA's defined results), ``BPF_END`` swaps on this little-endian
    model. Helpers: ``bpf_skb_load_bytes`` (net/core/filter.c ``sk_reuseport_load_bytes``)
    copies ``packet[offset:offset+len]`` or returns -EFAULT when it would read past the end;
    ``bpf_sk_select_reuseport`` reads a u32 key and succeeds when ``occupied(key)`` (the
    REUSEPORT_SOCKARRAY slot holds a socket), else returns -ENOENT. ``selected`` is the key of
    the last successful select, which is what the kernel uses when the verdict is SK_PASS.
    """
    regs = [0] * 11
    regs[1] = _CTX_BASE
    regs[R10] = _STACK_TOP
    stack = bytearray(STACK_SIZE)
    selected: int | None = None
    pc = 0
    steps = 0

    def load(addr: int, size: int) -> int:
        if addr >= _STACK_TOP - STACK_SIZE and addr + size <= _STACK_TOP:
            i = addr - (_STACK_TOP - STACK_SIZE)
            return int.from_bytes(stack[i : i + size], "little")
        if _CTX_BASE <= addr < _CTX_BASE + 64:
            return ctx.field(addr - _CTX_BASE, size)
        raise EbpfError(f"load of {size} bytes from unmapped address {addr:#x} (pc {pc})")

    def store(addr: int, size: int, value: int) -> None:
        if not (addr >= _STACK_TOP - STACK_SIZE and addr + size <= _STACK_TOP):
            raise EbpfError(f"store of {size} bytes to non-stack address {addr:#x} (pc {pc})")
        i = addr - (_STACK_TOP - STACK_SIZE)
        stack[i : i + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    while True:
        steps += 1
        if steps > max_steps:
            raise EbpfError("program ran too long")
        if not 0 <= pc < len(insns):
            raise EbpfError(f"pc {pc} outside the program")
        insn = insns[pc]
        code = insn.code
        cls = code & 0x07
        if cls in (ALU, ALU64):
            op = code & 0xF0
            wide = cls == ALU64
            mask = _M64 if wide else _M32
            if op == END:
                bits = insn.imm
                v = regs[insn.dst] & ((1 << bits) - 1)
                if code & TO_BE:  # the model host is little-endian: to_be swaps
                    v = int.from_bytes(v.to_bytes(bits // 8, "little"), "big")
                regs[insn.dst] = v
                pc += 1
                continue
            # imm is sign-extended to 64 bits, then truncated for ALU32
            operand = regs[insn.src] & mask if code & X else insn.imm & mask
            a = regs[insn.dst] & mask
            regs[insn.dst] = _alu(op, a, operand, 64 if wide else 32) & mask
            pc += 1
        elif cls in (JMP, JMP32):
            op = code & 0xF0
            if op == EXIT:
                return regs[0] & _M32, selected
            if op == CALL:
                if insn.imm == HELPER_SKB_LOAD_BYTES:
                    regs[0] = _load_bytes(ctx, regs, store)
                elif insn.imm == HELPER_SK_SELECT_REUSEPORT:
                    if regs[2] < _MAP_BASE:
                        raise EbpfError("bpf_sk_select_reuseport called without a map in r2")
                    key = load(regs[3], 4)
                    if occupied(key):
                        selected, regs[0] = key, 0
                    else:
                        regs[0] = (-_ENOENT) & _M64
                else:
                    raise EbpfError(f"helper {insn.imm} is not modelled")
                for r in range(1, 6):  # caller-saved registers are clobbered by a call
                    regs[r] = 0xDEAD_BEEF_DEAD_BEEF
                pc += 1
                continue
            if op == JA:
                pc += 1 + insn.off
                continue
            mask = _M64 if cls == JMP else _M32
            a = regs[insn.dst] & mask
            b = regs[insn.src] & mask if code & X else insn.imm & mask
            pc += 1 + (insn.off if _cond(op, a, b, 64 if cls == JMP else 32) else 0)
        elif cls == LDX:
            size = SIZE_BYTES[code & 0x18]
            regs[insn.dst] = load((regs[insn.src] + insn.off) & _M64, size)
            pc += 1
        elif cls == STX:
            size = SIZE_BYTES[code & 0x18]
            store((regs[insn.dst] + insn.off) & _M64, size, regs[insn.src])
            pc += 1
        elif cls == ST:
            size = SIZE_BYTES[code & 0x18]
            store((regs[insn.dst] + insn.off) & _M64, size, insn.imm)
            pc += 1
        elif code == LD | IMM | DW:
            if insn.src == BPF_PSEUDO_MAP_FD:
                regs[insn.dst] = _MAP_BASE + (insn.imm & _M32)
            else:
                regs[insn.dst] = (insn.imm & _M32) | ((insns[pc + 1].imm & _M32) << 32)
            pc += 2
        else:
            raise EbpfError(f"opcode {code:#04x} at pc {pc} is not modelled")


def _alu(op: int, a: int, b: int, bits: int) -> int:
    mask = (1 << bits) - 1
    if op == ADD:
        return a + b
    if op == SUB:
        return a - b
    if op == MUL:
        return a * b
    if op == DIV:
        return a // b if b else 0
    if op == MOD:
        return a % b if b else a
    if op == OR:
        return a | b
    if op == AND:
        return a & b
    if op == XOR:
        return a ^ b
    if op == LSH:
        return a << (b & (bits - 1))
    if op == RSH:
        return a >> (b & (bits - 1))
    if op == ARSH:
        signed = a - (1 << bits) if a >> (bits - 1) else a
        return (signed >> (b & (bits - 1))) & mask
    if op == NEG:
        return -a
    if op == MOV:
        return b
    raise EbpfError(f"ALU operation {op:#04x} is not modelled")


def _cond(op: int, a: int, b: int, bits: int) -> bool:
    def signed(v: int) -> int:
        return v - (1 << bits) if v >> (bits - 1) else v

    if op == JEQ:
        return a == b
    if op == JNE:
        return a != b
    if op == JGT:
        return a > b
    if op == JGE:
        return a >= b
    if op == JLT:
        return a < b
    if op == JLE:
        return a <= b
    if op == JSET:
        return bool(a & b)
    if op == JSGT:
        return signed(a) > signed(b)
    if op == JSGE:
        return signed(a) >= signed(b)
    if op == JSLT:
        return signed(a) < signed(b)
    if op == JSLE:
        return signed(a) <= signed(b)
    raise EbpfError(f"jump operation {op:#04x} is not modelled")


def _load_bytes(
    ctx: ReuseportContext, regs: list[int], store: Callable[[int, int, int], None]
) -> int:
    """``bpf_skb_load_bytes(ctx, offset, to, len)`` for SK_REUSEPORT (net/core/filter.c,
    ``sk_reuseport_load_bytes`` -> ``____bpf_skb_load_bytes``, Linux 4.19+): copy or fail with
    -EFAULT after zeroing the destination, as the kernel does on its error path."""
    if regs[1] != _CTX_BASE:
        raise EbpfError("bpf_skb_load_bytes called without the context in r1")
    offset, to, length = regs[2] & _M32, regs[3], regs[4] & _M32
    if not 0 < length <= STACK_SIZE:
        raise EbpfError(f"bpf_skb_load_bytes length {length} would be rejected by the verifier")
    if offset > 0x7FFF_FFFF or offset + length > len(ctx.packet):
        for i in range(length):
            store(to + i, 1, 0)
        return (-_EFAULT) & _M64
    for i, byte in enumerate(ctx.packet[offset : offset + length]):
        store(to + i, 1, byte)
    return 0
