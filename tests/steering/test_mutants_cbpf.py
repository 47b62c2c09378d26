"""The classic BPF assembler, checker and interpreter, instruction by instruction.

Written for the survivors of the mutation run (conformance/mutation, issue 21): the
lowering only emits a few instruction forms, so the interpreter's other forms and the
checker's other refusals were free to change. Semantics from the kernel's
Documentation/networking/filter.rst (the instruction set table: ``ld``/``ldx``/``st``/``stx``
forms, ``jeq``/``jgt``/``jge``/``jset`` with ``#k`` or ``x``, ``neg``, ``tax``/``txa``,
``ldx 4*([k]&0xf)``) and net/core/filter.c v4.5-6.18 (``bpf_check_classic``: length
1..BPF_MAXINSNS, a constant divisor of 0 and a constant shift of 32 or more refused, scratch
slots 0..15, jumps inside the program, a final ``ret``; ``bpf_convert_filter``: a load past the
packet returns 0, division by a zero X returns 0). Where a program is refused or accepted,
``SO_ATTACH_FILTER`` on the live kernel must say the same.
"""

from __future__ import annotations

import ctypes
import errno
import random
import socket
import struct
from collections.abc import Callable

import pytest

from sidkit.bpf import cbpf
from sidkit.bpf.cbpf import SockFilter

M32 = 0xFFFFFFFF
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27


def _i(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> SockFilter:
    return SockFilter(code, jt, jf, k)


RET_A = _i(cbpf.RET | cbpf.A_SRC)
ALU_SEMANTICS: dict[int, Callable[[int, int], int]] = {
    cbpf.ADD: lambda a, b: (a + b) & M32,
    cbpf.SUB: lambda a, b: (a - b) & M32,
    cbpf.MUL: lambda a, b: (a * b) & M32,
    cbpf.DIV: lambda a, b: a // b if b else 0,
    cbpf.MOD: lambda a, b: a % b if b else 0,
    cbpf.OR: lambda a, b: a | b,
    cbpf.AND: lambda a, b: a & b,
    cbpf.XOR: lambda a, b: a ^ b,
    cbpf.LSH: lambda a, b: (a << (b & 31)) & M32,
    cbpf.RSH: lambda a, b: a >> (b & 31),
}
VALUES = [0, 1, 2, 3, 31, 32, 33, 0xFF, 0x7FFFFFFF, 0x80000000, M32 - 1, M32]


def _load_a_x(a: int, x: int) -> list[SockFilter]:
    return [_i(cbpf.LD | cbpf.IMM, a), _i(cbpf.LDX | cbpf.IMM, x)]


@pytest.mark.parametrize("op", sorted(ALU_SEMANTICS))
def test_alu_with_x(op: int) -> None:
    rng = random.Random(op)
    pairs = [(a, b) for a in VALUES for b in VALUES]
    pairs += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(30)]
    for a, b in pairs:
        program = [*_load_a_x(a, b), _i(cbpf.ALU | op | cbpf.X), RET_A]
        assert cbpf.run(program, b"") == ALU_SEMANTICS[op](a, b), (hex(op), a, b)


@pytest.mark.parametrize("op", sorted(ALU_SEMANTICS))
def test_alu_with_k(op: int) -> None:
    for a in VALUES:
        for k in VALUES:
            if op in (cbpf.DIV, cbpf.MOD) and k == 0:
                continue
            if op in (cbpf.LSH, cbpf.RSH) and k >= 32:
                continue
            program = [_i(cbpf.LD | cbpf.IMM, a), _i(cbpf.ALU | op | cbpf.K, k), RET_A]
            assert cbpf.run(program, b"") == ALU_SEMANTICS[op](a, k), (hex(op), a, k)


def test_neg() -> None:
    for a in VALUES:
        program = [_i(cbpf.LD | cbpf.IMM, a), _i(cbpf.ALU | cbpf.NEG), RET_A]
        assert cbpf.run(program, b"") == (-a) & M32


JUMPS: dict[int, Callable[[int, int], bool]] = {
    cbpf.JEQ: lambda a, b: a == b,
    cbpf.JGT: lambda a, b: a > b,
    cbpf.JGE: lambda a, b: a >= b,
    cbpf.JSET: lambda a, b: bool(a & b),
}


@pytest.mark.parametrize("op", sorted(JUMPS))
@pytest.mark.parametrize("src", [cbpf.K, cbpf.X])
def test_conditional_jumps(op: int, src: int) -> None:
    for a in VALUES:
        for b in VALUES:
            program = [
                *_load_a_x(a, b),
                _i(cbpf.JMP | op | src, b, 1, 2),
                _i(cbpf.RET | cbpf.K, 10),
                _i(cbpf.RET | cbpf.K, 11),
                _i(cbpf.RET | cbpf.K, 12),
            ]
            want = 11 if JUMPS[op](a, b) else 12
            assert cbpf.run(program, b"") == want, (hex(op), src, a, b)


def test_ja_skips_k_instructions() -> None:
    for k in range(4):
        program = [_i(cbpf.JMP | cbpf.JA, k)] + [_i(cbpf.RET | cbpf.K, r) for r in range(4)]
        assert cbpf.run(program, b"") == k


PACKET = bytes([0x45, 0x01, 0x02, 0x03, 0x84, 0x05, 0x06, 0x07, 0x08, 0x09])


def test_loads_of_every_size_and_mode() -> None:
    for size, width in ((cbpf.W, 4), (cbpf.H, 2), (cbpf.B, 1)):
        for k in range(len(PACKET) + 2):
            want = int.from_bytes(PACKET[k : k + width], "big") if k + width <= len(PACKET) else 0
            assert cbpf.run([_i(cbpf.LD | size | cbpf.ABS, k), RET_A], PACKET) == want
            for x in (0, 1, 3):
                off = x + k
                want = (
                    int.from_bytes(PACKET[off : off + width], "big")
                    if off + width <= len(PACKET)
                    else 0
                )
                program = [_i(cbpf.LDX | cbpf.IMM, x), _i(cbpf.LD | size | cbpf.IND, k), RET_A]
                assert cbpf.run(program, PACKET) == want, (size, k, x)
    # a load past the packet ends the program with 0 even when A was set before
    program = [_i(cbpf.LD | cbpf.IMM, 77), _i(cbpf.LD | cbpf.B | cbpf.ABS, 10), RET_A]
    assert cbpf.run(program, PACKET) == 0
    assert cbpf.run([_i(cbpf.LD | cbpf.W | cbpf.LEN), RET_A], PACKET) == len(PACKET)


def test_ldx_forms_and_txa_tax() -> None:
    txa = _i(cbpf.MISC | cbpf.TXA)
    assert cbpf.run([_i(cbpf.LDX | cbpf.W | cbpf.LEN), txa, RET_A], PACKET) == len(PACKET)
    for k in range(len(PACKET)):
        program = [_i(cbpf.LDX | cbpf.B | cbpf.MSH, k), txa, RET_A]
        assert cbpf.run(program, PACKET) == (PACKET[k] & 0x0F) * 4
    program = [_i(cbpf.LD | cbpf.IMM, 5), _i(cbpf.LDX | cbpf.B | cbpf.MSH, len(PACKET)), RET_A]
    assert cbpf.run(program, PACKET) == 0  # MSH past the packet ends the program with 0
    # tax copies A into X; txa copies back
    program = [
        _i(cbpf.LD | cbpf.IMM, 9),
        _i(cbpf.MISC | cbpf.TAX),
        _i(cbpf.LD | cbpf.IMM, 1),
        _i(cbpf.ALU | cbpf.ADD | cbpf.X),
        RET_A,
    ]
    assert cbpf.run(program, b"") == 10


def test_scratch_memory() -> None:
    for slot in (0, 7, 15):
        program = [
            _i(cbpf.LD | cbpf.IMM, 0xABC),
            _i(cbpf.ST, slot),
            _i(cbpf.LDX | cbpf.IMM, 0x123),
            _i(cbpf.STX, (slot + 1) % 16),
            _i(cbpf.LD | cbpf.IMM, 0),
            _i(cbpf.LDX | cbpf.MEM, slot),
            _i(cbpf.LD | cbpf.MEM, (slot + 1) % 16),
            _i(cbpf.ALU | cbpf.SUB | cbpf.X),
            RET_A,
        ]
        assert cbpf.run(program, b"") == (0x123 - 0xABC) & M32


def test_ret_k_and_ret_a() -> None:
    assert cbpf.run([_i(cbpf.LD | cbpf.IMM, 5), _i(cbpf.RET | cbpf.K, 6)], b"") == 6
    assert cbpf.run([_i(cbpf.LD | cbpf.IMM, 5), RET_A], b"") == 5
    assert cbpf.run([_i(cbpf.RET | cbpf.K, M32)], b"") == M32


def test_encoding() -> None:
    insn = SockFilter(0x15, 1, 2, 0xDEADBEEF)
    assert insn.encode() == struct.pack("=HBBI", 0x15, 1, 2, 0xDEADBEEF)
    assert str(insn) == "{ 0x0015, 1, 2, 0xdeadbeef }"
    assert SockFilter(6, k=-1).encode() == struct.pack("=HBBI", 6, 0, 0, M32)
    assert cbpf.encode([insn, SockFilter(6)]) == insn.encode() + SockFilter(6).encode()
    assert cbpf.encode([]) == b""


# --- the checker -------------------------------------------------------------------------------

RET0 = _i(cbpf.RET | cbpf.K, 0)
REFUSED = {
    "empty": [],
    "too long": [_i(cbpf.LD | cbpf.IMM, 0)] * cbpf.BPF_MAXINSNS + [RET0],
    "unknown opcode": [_i(cbpf.ALU | 0xB0 | cbpf.X), RET0],
    "div by constant 0": [_i(cbpf.ALU | cbpf.DIV | cbpf.K, 0), RET0],
    "mod by constant 0": [_i(cbpf.ALU | cbpf.MOD | cbpf.K, 0), RET0],
    "lsh by 32": [_i(cbpf.ALU | cbpf.LSH | cbpf.K, 32), RET0],
    "rsh by 33": [_i(cbpf.ALU | cbpf.RSH | cbpf.K, 33), RET0],
    "st M[16]": [_i(cbpf.ST, 16), RET0],
    "stx M[16]": [_i(cbpf.STX, 16), RET0],
    "ld M[16]": [_i(cbpf.ST, 0), _i(cbpf.LD | cbpf.MEM, 16), RET0],
    "ldx M[16]": [_i(cbpf.ST, 0), _i(cbpf.LDX | cbpf.MEM, 16), RET0],
    "last not ret": [_i(cbpf.LD | cbpf.IMM, 0)],
    "ja past the end": [_i(cbpf.JMP | cbpf.JA, 1), RET0],
    "jf past the end": [_i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 0, 1), RET0],
    "jt past the end": [_i(cbpf.JMP | cbpf.JGT | cbpf.X, 0, 1, 0), RET0],
    "ancillary load": [_i(cbpf.LD | cbpf.W | cbpf.ABS, 0xFFFFF000), RET0],
    "ancillary ind load": [_i(cbpf.LD | cbpf.B | cbpf.IND, 0xFFFFF004), RET0],
    "ldx M before st": [_i(cbpf.LDX | cbpf.MEM, 3), RET0],
    # the kernel carries memvalid from a RET into the next instruction (check_load_and_stores
    # resets it only after jumps): M[3] is not valid after the RET at pc 3, so neither at pc 4
    "read after a ret": [
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 0, 2),
        _i(cbpf.ST, 3),
        _i(cbpf.JMP | cbpf.JA, 1),
        _i(cbpf.RET | cbpf.K, 0),
        _i(cbpf.LD | cbpf.MEM, 3),
        RET_A,
    ],
    # a ja joins a path that stored M[2] with one that did not
    "ja joins an unstored path": [
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 0, 2),
        _i(cbpf.ST, 2),
        _i(cbpf.JMP | cbpf.JA, 0),
        _i(cbpf.LD | cbpf.MEM, 2),
        RET_A,
    ],
    # the taken branch (jt) skips the store and joins the path that stored M[1]
    "jt joins an unstored path": [
        _i(cbpf.LD | cbpf.W | cbpf.LEN),
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 2, 0),
        _i(cbpf.ST, 1),
        _i(cbpf.JMP | cbpf.JA, 0),
        _i(cbpf.LD | cbpf.MEM, 1),
        RET_A,
    ],
    "st on the skipped path": [
        _i(cbpf.JMP | cbpf.JA, 1),
        _i(cbpf.ST, 2),
        _i(cbpf.LD | cbpf.MEM, 2),
        RET0,
    ],
}
ACCEPTED = {
    "one ret": [RET0],
    "longest": [_i(cbpf.LD | cbpf.IMM, 0)] * (cbpf.BPF_MAXINSNS - 1) + [RET0],
    "lsh by 31": [_i(cbpf.ALU | cbpf.LSH | cbpf.K, 31), RET0],
    "rsh by 0": [_i(cbpf.ALU | cbpf.RSH | cbpf.K, 0), RET0],
    "div by 1": [_i(cbpf.ALU | cbpf.DIV | cbpf.K, 1), RET0],
    "st M[15] then ld": [_i(cbpf.ST, 15), _i(cbpf.LD | cbpf.MEM, 15), RET0],
    "stx then ldx": [_i(cbpf.STX, 4), _i(cbpf.LDX | cbpf.MEM, 4), RET0],
    "st on both paths": [
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 0, 2),
        _i(cbpf.ST, 2),
        _i(cbpf.JMP | cbpf.JA, 1),
        _i(cbpf.ST, 2),
        _i(cbpf.LD | cbpf.MEM, 2),
        RET0,
    ],
    "st before a jump": [
        _i(cbpf.ST, 5),
        _i(cbpf.JMP | cbpf.JSET | cbpf.K, 1, 1, 0),
        _i(cbpf.LD | cbpf.IMM, 1),
        _i(cbpf.LDX | cbpf.MEM, 5),
        RET0,
    ],
    "highest plain load": [_i(cbpf.LD | cbpf.W | cbpf.ABS, 0xFFFFEFFF), RET0],
    "ret after ret": [RET0, RET0],
    "read after a ret on a path that stored": [
        _i(cbpf.ST, 3),
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 1, 0),
        _i(cbpf.RET | cbpf.K, 0),
        _i(cbpf.LD | cbpf.MEM, 3),
        RET_A,
    ],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_checker_refuses(name: str) -> None:
    with pytest.raises(cbpf.CbpfError):
        cbpf.check(REFUSED[name])


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_checker_accepts(name: str) -> None:
    cbpf.check(ACCEPTED[name])


def test_assembler_misuse() -> None:
    asm = cbpf.Assembler()
    asm.label("a")
    with pytest.raises(cbpf.CbpfError, match="twice"):
        asm.label("a")
    asm.goto("nowhere")
    asm.emit(cbpf.RET | cbpf.K)
    with pytest.raises(cbpf.CbpfError, match="undefined"):
        asm.assemble()
    back = cbpf.Assembler()
    back.label("top")
    back.emit(cbpf.LD | cbpf.IMM, 1)
    back.jump(cbpf.JEQ, 1, "top", None)
    back.emit(cbpf.RET | cbpf.K)
    with pytest.raises(cbpf.CbpfError, match="backwards"):
        back.assemble()


def test_assembler_resolves_labels() -> None:
    asm = cbpf.Assembler()
    asm.emit(cbpf.LD | cbpf.W | cbpf.LEN)
    asm.jump(cbpf.JGT, 3, "big", "small")
    asm.label("small")
    asm.emit(cbpf.RET | cbpf.K, 1)
    asm.emit(cbpf.RET | cbpf.K, 9)
    asm.label("big")
    asm.goto("end")
    asm.emit(cbpf.RET | cbpf.K, 9)
    asm.label("end")
    asm.emit(
        cbpf.RET | cbpf.K,
        2,
    )
    assert len(asm) == 7
    program = asm.assemble()
    assert (program[1].jt, program[1].jf) == (2, 0)
    assert (program[4].code, program[4].k) == (cbpf.JMP | cbpf.JA, 1)
    assert program[0] == SockFilter(cbpf.LD | cbpf.W | cbpf.LEN)
    assert cbpf.run(program, b"abcd") == 2
    assert cbpf.run(program, b"abc") == 1
    asm2 = cbpf.Assembler()
    asm2.emit(cbpf.LD | cbpf.IMM, 1 << 32 | 5)  # k is stored as u32
    asm2.emit(cbpf.RET | cbpf.A_SRC)
    assert asm2.assemble()[0].k == 5


def _kernel_attach(program: list[SockFilter]) -> int:
    raw = cbpf.encode(program)
    buf = ctypes.create_string_buffer(raw, max(1, len(raw)))
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buf))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            return exc.errno or -1
        s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    return 0


# The checker refuses what the kernel accepts only where sidkit models less than the kernel:
# ancillary loads (SKF_AD_*) exist in the kernel and are refused by sidkit on purpose.
NOT_MODELLED = {"ancillary load", "ancillary ind load"}


@pytest.mark.oracle
def test_the_live_kernel_agrees() -> None:
    from conftest import oracle_unavailable  # noqa: PLC0415

    if struct.calcsize("P") != 8:
        oracle_unavailable("live kernel: needs 64-bit Linux for struct sock_fprog")
    try:
        if _kernel_attach([RET0]) != 0:
            oracle_unavailable("live kernel: SO_ATTACH_FILTER refuses even RET #0")
    except OSError as exc:  # pragma: no cover - no socket at all
        oracle_unavailable(f"live kernel: {exc}")
    for name, program in REFUSED.items():
        if name not in NOT_MODELLED:
            assert _kernel_attach(program) == errno.EINVAL, name
    for name, program in ACCEPTED.items():
        assert _kernel_attach(program) == 0, name


def test_run_checks_the_program_unless_told_not_to() -> None:
    """``run`` refuses what the kernel would refuse before running it; ``checked=False`` is
    for callers that checked once already."""
    unchecked = [_i(cbpf.LD | cbpf.IMM, 7), RET_A, _i(cbpf.LD | cbpf.IMM, 1)]  # last not RET
    with pytest.raises(cbpf.CbpfError):
        cbpf.run(unchecked, b"")
    assert cbpf.run(unchecked, b"", checked=False) == 7
