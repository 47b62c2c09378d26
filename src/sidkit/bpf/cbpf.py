# Strategy: SO_ATTACH_REUSEPORT_CBPF takes a classic BPF program (struct sock_filter[]), the
# oldest and most portable way to steer reuseport (Linux 4.5+, no CAP_BPF, no map). sidkit
# generates such programs, so it needs an assembler (labels resolved into the 8-bit forward
# jt/jf offsets), the checks the kernel applies before accepting one (net/core/filter.c,
# bpf_check_classic and check_load_and_stores), and an interpreter with the semantics the
# kernel gives a reuseport program after converting it to eBPF: the packet is the UDP payload
# (sock_reuseport.c pulls the 8-byte header first), A and X are 32-bit, a load beyond the end
# of the packet ends the program with return value 0, division by a zero X returns 0.
#
# The interpreter lets tests compare a compiled program with the Python model on arbitrary
# payloads; the live kernel (tests/reuseport/test_live_reuseport.py) then confirms both.
"""Classic BPF (sock_filter) programs: assembler, kernel checks and interpreter."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import attrs

from sidkit._errors import InputValueError

__all__ = [
    "ADD",
    "AND",
    "DIV",
    "JEQ",
    "JGE",
    "JGT",
    "JSET",
    "LSH",
    "MOD",
    "MUL",
    "OR",
    "RSH",
    "SUB",
    "XOR",
    "Assembler",
    "CbpfError",
    "SockFilter",
    "check",
    "encode",
    "run",
]

# Classes, sizes, modes (uapi/linux/bpf_common.h, filter.h).
LD: Final = 0x00
LDX: Final = 0x01
ST: Final = 0x02
STX: Final = 0x03
ALU: Final = 0x04
JMP: Final = 0x05
RET: Final = 0x06
MISC: Final = 0x07
W: Final = 0x00
H: Final = 0x08
B: Final = 0x10
IMM: Final = 0x00
ABS: Final = 0x20
IND: Final = 0x40
MEM: Final = 0x60
LEN: Final = 0x80
MSH: Final = 0xA0
K: Final = 0x00
X: Final = 0x08
A_SRC: Final = 0x10  # BPF_A for RET
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
JA: Final = 0x00
JEQ: Final = 0x10
JGT: Final = 0x20
JGE: Final = 0x30
JSET: Final = 0x40
TAX: Final = 0x00
TXA: Final = 0x80

BPF_MAXINSNS: Final = 4096
BPF_MEMWORDS: Final = 16
SKF_AD_OFF: Final = -0x1000
_M32: Final = (1 << 32) - 1
_SOCK_FILTER: Final = struct.Struct("=HBBI")


class CbpfError(InputValueError):
    """A classic BPF program the kernel would refuse, or an assembler misuse."""

    code = "bad-cbpf"


@attrs.frozen
class SockFilter:
    """One ``struct sock_filter`` (uapi/linux/filter.h): ``code``, ``jt``, ``jf``, ``k``."""

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0

    def encode(self) -> bytes:
        """Native-endian bytes, as setsockopt expects the array."""
        return _SOCK_FILTER.pack(self.code, self.jt, self.jf, self.k & _M32)

    def __str__(self) -> str:
        return f"{{ {self.code:#06x}, {self.jt}, {self.jf}, {self.k & _M32:#010x} }}"


def encode(program: Sequence[SockFilter]) -> bytes:
    """The program as the ``struct sock_filter`` array that ``struct sock_fprog`` points at."""
    return b"".join(i.encode() for i in program)


class Assembler:
    """Build a classic program with labels for the forward-only conditional jumps.

    ``jump(op, k, true_label, false_label)``: a label of ``None`` means "the next instruction".
    ``assemble()`` computes the 8-bit ``jt``/``jf`` offsets (classic jumps cannot go
    backwards and cannot skip more than 255 instructions; longer distances go through
    ``ja``, whose 32-bit ``k`` is emitted automatically by :meth:`goto`).
    """

    def __init__(self) -> None:
        self._insns: list[tuple[SockFilter, str | None, str | None]] = []
        self._labels: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._insns)

    def label(self, name: str) -> None:
        if name in self._labels:
            raise CbpfError(f"label {name!r} defined twice")
        self._labels[name] = len(self._insns)

    def emit(self, code: int, k: int = 0) -> None:
        self._insns.append((SockFilter(code, 0, 0, k & _M32), None, None))

    def jump(self, op: int, k: int, jt: str | None, jf: str | None) -> None:
        """Conditional jump on ``A op k``: to *jt* if true, *jf* if false (None = fall through)."""
        self._insns.append((SockFilter(JMP | op | K, 0, 0, k & _M32), jt, jf))

    def goto(self, label: str) -> None:
        """Unconditional ``ja`` to *label*."""
        self._insns.append((SockFilter(JMP | JA), label, None))

    def assemble(self) -> list[SockFilter]:
        out: list[SockFilter] = []
        for index, (insn, jt, jf) in enumerate(self._insns):

            def target(label: str | None, index: int = index) -> int:
                if label is None:
                    return 0
                if label not in self._labels:
                    raise CbpfError(f"jump to undefined label {label!r}")
                off = self._labels[label] - index - 1
                if off < 0:
                    raise CbpfError(f"classic BPF cannot jump backwards (to {label!r})")
                return off

            if insn.code == JMP | JA and jt is not None:
                out.append(attrs.evolve(insn, k=target(jt)))
            elif jt is not None or jf is not None:
                t, f = target(jt), target(jf)
                if t > 255 or f > 255:
                    raise CbpfError("conditional jump farther than 255 instructions")
                out.append(attrs.evolve(insn, jt=t, jf=f))
            else:
                out.append(insn)
        check(out)
        return out


_VALID_CODES: Final = frozenset(
    [LD | W | IMM, LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | IND, LD | H | IND]
    + [LD | B | IND, LD | W | MEM, LD | W | LEN, LDX | W | IMM, LDX | W | MEM, LDX | W | LEN]
    + [LDX | B | MSH, ST, STX, RET | K, RET | A_SRC, MISC | TAX, MISC | TXA, ALU | NEG]
    + [ALU | op | src for op in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR) for src in (K, X)]
    + [JMP | JA]
    + [JMP | op | src for op in (JEQ, JGT, JGE, JSET) for src in (K, X)]
)


def check(program: Sequence[SockFilter]) -> None:
    """Refuse what the kernel's ``bpf_check_classic`` refuses (net/core/filter.c, 4.5-6.18).

    Length 1..BPF_MAXINSNS; known opcodes only; no division or modulo by a constant 0; no
    constant shift of 32 or more; scratch slots within ``M[0..15]``; jumps inside the
    program; the last instruction a ``RET``; and (``check_load_and_stores``) no ``M[i]`` read
    on a path where it was never written. Ancillary loads (``k`` at or above SKF_AD_OFF) are
    not modelled and are refused here.
    """
    n = len(program)
    if not 0 < n <= BPF_MAXINSNS:
        raise CbpfError(f"program length {n} outside 1..{BPF_MAXINSNS}")
    for pc, insn in enumerate(program):
        code, k = insn.code, insn.k & _M32
        if code not in _VALID_CODES:
            raise CbpfError(f"pc {pc}: unknown opcode {code:#06x}")
        if code in (ALU | DIV | K, ALU | MOD | K) and k == 0:
            raise CbpfError(f"pc {pc}: division by constant zero")
        if code in (ALU | LSH | K, ALU | RSH | K) and k >= 32:
            raise CbpfError(f"pc {pc}: shift by {k} (the kernel refuses k >= 32)")
        if code in (LD | MEM, LDX | MEM, ST, STX) and k >= BPF_MEMWORDS:
            raise CbpfError(f"pc {pc}: scratch slot M[{k}] does not exist")
        if code & 0x07 == LD and code & 0xE0 in (ABS, IND) and k >= (SKF_AD_OFF & _M32):
            raise CbpfError(f"pc {pc}: ancillary loads (SKF_AD_*) are not modelled")
        if code == JMP | JA:
            if pc + 1 + k >= n:
                raise CbpfError(f"pc {pc}: ja out of the program")
        elif code & 0x07 == JMP and (pc + 1 + insn.jt >= n or pc + 1 + insn.jf >= n):
            raise CbpfError(f"pc {pc}: conditional jump out of the program")
    if program[-1].code & 0x07 != RET:
        raise CbpfError("the last instruction must be RET")
    _check_scratch(program)


def _check_scratch(program: Sequence[SockFilter]) -> None:
    # check_load_and_stores: a forward data-flow pass over the scratch slots (bit i set =
    # M[i] certainly written on every path reaching this instruction).
    full = (1 << BPF_MEMWORDS) - 1
    masks = [full] * len(program)
    masks[0] = 0
    for pc, insn in enumerate(program):
        memvalid = masks[pc]
        code = insn.code
        if code in (ST, STX):
            memvalid |= 1 << insn.k
        elif code in (LD | MEM, LDX | MEM) and not memvalid & (1 << insn.k):
            raise CbpfError(f"pc {pc}: M[{insn.k}] read before it is written")
        if code == JMP | JA:
            masks[pc + 1 + insn.k] &= memvalid
            continue
        if code & 0x07 == JMP:
            masks[pc + 1 + insn.jt] &= memvalid
            masks[pc + 1 + insn.jf] &= memvalid
            continue
        # Not only after ordinary instructions: the kernel's loop carries memvalid from a RET
        # into the next instruction too (only jumps reset it), so code placed after a RET
        # and reached by a jump must also be valid for the RET's path (live kernel: EINVAL).
        if pc + 1 < len(program):
            masks[pc + 1] &= memvalid


def run(program: Sequence[SockFilter], packet: bytes, *, checked: bool = True) -> int:
    """Run *program* on *packet* with kernel semantics; return the program's u32 result.

    For SO_ATTACH_REUSEPORT_CBPF the packet is the UDP payload and the result is the index of
    the socket in the group (net/core/sock_reuseport.c ``run_bpf_filter``, 4.5-6.18). A load
    past the end of the packet makes the program return 0 (the classic ``LD ABS/IND`` rule kept
    by ``bpf_convert_filter``); ``DIV``/``MOD`` by a zero X return 0; shifts by X use the low
    five bits, as the x86-64 JIT does.
    """
    if checked:
        check(program)
    a = x = 0
    mem = [0] * BPF_MEMWORDS
    pc = 0
    n = len(packet)
    while True:
        insn = program[pc]
        code, k = insn.code, insn.k & _M32
        cls = code & 0x07
        pc += 1
        if cls == LD:
            mode = code & 0xE0
            if mode == IMM:
                a = k
            elif mode == MEM:
                a = mem[k]
            elif mode == LEN:
                a = n
            else:
                off = k if mode == ABS else (x + k) & _M32
                size = {W: 4, H: 2, B: 1}[code & 0x18]
                if off + size > n:
                    return 0
                a = int.from_bytes(packet[off : off + size], "big")
        elif cls == LDX:
            mode = code & 0xE0
            if mode == IMM:
                x = k
            elif mode == MEM:
                x = mem[k]
            elif mode == LEN:
                x = n
            else:  # MSH: 4 * (P[k] & 0xf), the IPv4 header length idiom
                if k >= n:
                    return 0
                x = (packet[k] & 0x0F) * 4
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        elif cls == ALU:
            op = code & 0xF0
            if op == NEG:
                a = -a & _M32
                continue
            b = x if code & X else k
            if op in (DIV, MOD) and b == 0:
                return 0
            a = _alu(op, a, b) & _M32
        elif cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
                continue
            b = x if code & X else k
            taken = {
                JEQ: a == b,
                JGT: a > b,
                JGE: a >= b,
                JSET: bool(a & b),
            }[op]
            pc += insn.jt if taken else insn.jf
        elif cls == RET:
            return a if code & A_SRC else k
        elif code & 0xF8 == TXA:  # MISC
            a = x
        else:  # MISC TAX
            x = a


def _alu(op: int, a: int, b: int) -> int:
    if op == ADD:
        return a + b
    if op == SUB:
        return a - b
    if op == MUL:
        return a * b
    if op == DIV:
        return a // b
    if op == MOD:
        return a % b
    if op == OR:
        return a | b
    if op == AND:
        return a & b
    if op == XOR:
        return a ^ b
    if op == LSH:
        return a << (b & 31)
    if op == RSH:
        return a >> (b & 31)
    raise CbpfError(f"ALU operation {op:#04x} is not modelled")
