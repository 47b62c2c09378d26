"""Tests written for the survivors of the mutation run (conformance/mutation, issue 21).

Every IR operation the steering lowering can emit, on its own, through three paths: the IR's
reference evaluator, the classic BPF program ``to_cbpf`` makes from it run by sidkit's
interpreter, and the 32-bit C semantics the IR documents (u32 arithmetic, wrap-around). The
random agreement properties elsewhere build only jhash bodies, which never use ``lsh``,
``rsh``, ``and``, ``or`` or ``mod`` -- a swapped operator there survived.

And the classic BPF conditional-jump limit: ``jt``/``jf`` are 8-bit fields of
``struct sock_filter`` (include/uapi/linux/filter.h), so a conditional jump reaches at most
255 instructions ahead; ``bpf_check_classic`` (net/core/filter.c, v4.5-6.18) takes any
``pc + jt + 1 < flen``. The live kernel (SO_ATTACH_FILTER on a UDP socket) must accept the
255-instruction jump sidkit's assembler emits, and the assembler must refuse 256.
"""

from __future__ import annotations

import ctypes
import errno
import random
import socket
import struct

import pytest

from sidkit.bpf import cbpf
from sidkit.bpf.cbpf import SockFilter
from sidkit.steering import _ir

M32 = 0xFFFFFFFF
SO_ATTACH_FILTER = 26  # include/uapi/asm-generic/socket.h
SO_DETACH_FILTER = 27

C_SEMANTICS = {
    "add": lambda a, b: (a + b) & M32,
    "sub": lambda a, b: (a - b) & M32,
    "xor": lambda a, b: a ^ b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "lsh": lambda a, b: (a << b) & M32,
    "rsh": lambda a, b: a >> b,
    "mod": lambda a, b: a % b,
}
EDGES = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000, M32 - 1, M32]


def _program(body: tuple[_ir.Op, ...], n: int = M32, need: int = 8) -> _ir.Program:
    return _ir.Program((_ir.Alternative(need=need, guards=(), body=body, low=0),), n)


def _both(program: _ir.Program, payload: bytes) -> tuple[int | None, int | None]:
    """(IR evaluator, cBPF program) on *payload*; the cBPF's "no selection" becomes None."""
    raw = cbpf.run(_ir.to_cbpf(program), payload)
    return _ir.evaluate(program, payload), (raw if raw < program.n else None)


def _operands(op: str) -> list[tuple[int, int]]:
    rng = random.Random(op)
    pairs = [(a, b) for a in EDGES for b in EDGES]
    pairs += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(40)]
    if op in ("lsh", "rsh"):
        pairs = [(a, b % 32) for a, b in pairs]  # the IR only shifts by 0..31
    if op == "mod":
        pairs = [(a, b) for a, b in pairs if b]  # the IR only takes moduli by group sizes
    return pairs


@pytest.mark.parametrize("op", sorted(C_SEMANTICS))
@pytest.mark.parametrize("from_register", [False, True])
def test_every_binary_op_in_ir_and_cbpf_has_u32_c_semantics(op: str, from_register: bool) -> None:
    for a, b in _operands(op):
        if from_register:
            body: tuple[_ir.Op, ...] = (
                _ir.LoadBE("v", 0, 4),
                _ir.LoadBE("t", 4, 4),
                _ir.Bin(op, "v", "t"),  # type: ignore[arg-type]
            )
        else:
            body = (_ir.LoadBE("v", 0, 4), _ir.Bin(op, "v", imm=b))  # type: ignore[arg-type]
        program = _program(body)
        expected = C_SEMANTICS[op](a, b)
        want = expected if expected < M32 else None
        payload = a.to_bytes(4, "big") + b.to_bytes(4, "big")
        assert _both(program, payload) == (want, want), (op, hex(a), hex(b))


@pytest.mark.parametrize("shape", ["xor", "sub"])
def test_rotations_of_every_amount(shape: str) -> None:
    rng = random.Random(shape)
    for k in range(1, 32):
        for _ in range(6):
            x, y = rng.getrandbits(32), rng.getrandbits(32)
            rot = ((y << k) | (y >> (32 - k))) & M32
            expected = (x ^ rot) if shape == "xor" else (x - rot) & M32
            body = (_ir.LoadBE("v", 0, 4), _ir.LoadBE("t", 4, 4), _ir.RolOp(shape, "v", "t", k))  # type: ignore[arg-type]
            want = expected if expected < M32 else None
            payload = x.to_bytes(4, "big") + y.to_bytes(4, "big")
            assert _both(_program(body), payload) == (want, want), (k, hex(x), hex(y))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_big_endian_loads_of_every_width_at_every_offset(n: int) -> None:
    payload = bytes(range(0xF0, 0xF8)) + bytes(range(1, 9))
    for off in range(0, len(payload) - n + 1):
        program = _program((_ir.LoadBE("v", off, n),), need=off + n)
        expected = int.from_bytes(payload[off : off + n], "big")
        assert _both(program, payload) == (expected, expected), (n, off)


def test_add_byte_at_every_shift() -> None:
    payload = bytes([0xFF, 0x80, 0x01, 0x7F])
    for off, byte in enumerate(payload):
        for shift in (0, 8, 16, 24):
            for start in (0, 1, M32 - 0xFF, 0x12345678):
                body = (_ir.Set("v", start), _ir.AddByte("v", off, shift))
                expected = (start + (byte << shift)) & M32
                want = expected if expected < M32 else None
                assert _both(_program(body, need=4), payload) == (want, want)


def test_set_masks_to_32_bits() -> None:
    program = _program((_ir.Set("v", 0x1_0000_0005),), n=10, need=0)
    assert _both(program, b"") == (5, 5)


def test_results_at_or_above_n_and_short_payloads_select_nothing() -> None:
    for n in (1, 4, 0x10000):
        program = _program((_ir.LoadBE("v", 0, 4),), n=n, need=4)
        for v in (0, n - 1, n, n + 1, M32):
            want = v if v < n else None
            assert _both(program, v.to_bytes(4, "big")) == (want, want)
        assert _both(program, b"\x00\x00\x00") == (None, None)  # shorter than need


def test_min_len_refuses_short_payloads_even_when_need_is_met() -> None:
    alt = _ir.Alternative(need=1, guards=(), body=(_ir.LoadBE("v", 0, 1),), low=0, min_len=6)
    program = _ir.Program((alt,), 256)
    assert _both(program, b"\x07" * 5) == (None, None)
    assert _both(program, b"\x07" * 6) == (7, 7)


def test_guards_pick_the_first_alternative_that_matches() -> None:
    first = _ir.Alternative(need=2, guards=((0, 0xF0, 0x40),), body=(_ir.LoadBE("v", 1, 1),), low=0)
    second = _ir.Alternative(
        need=3, guards=((0, 0xFF, 0x01), (1, 0x0F, 0x02)), body=(_ir.LoadBE("v", 2, 1),), low=0
    )
    program = _ir.Program((first, second), 256)
    assert _both(program, bytes([0x4F, 9, 8])) == (9, 9)  # masked guard matches
    assert _both(program, bytes([0x01, 0xF2, 8])) == (8, 8)  # second, through its mask
    assert _both(program, bytes([0x01, 0xF3, 8])) == (None, None)
    assert _both(program, bytes([0x30, 0x02, 8])) == (None, None)


def test_jhash_ops_equal_the_kernel_jhash_for_every_length() -> None:
    from sidkit.hashing import jhash  # noqa: PLC0415

    rng = random.Random(21)
    for length in range(0, 30):
        for seed in (0, M32, rng.getrandbits(32)):
            payload = rng.randbytes(length + 3)
            body = (*_ir.jhash_ops(3, length, seed), _ir.Bin("or", "v", "c"))
            # v starts at 0 (Set), so v = c: the jhash of payload[3:3+length]
            program = _program((_ir.Set("v", 0), *body), need=3 + length)
            expected = jhash(payload[3 : 3 + length], seed)
            want = expected if expected < M32 else None
            assert _both(program, payload) == (want, want), (length, seed)


def _far_jump(distance: int) -> list[SockFilter]:
    asm = cbpf.Assembler()
    asm.emit(cbpf.LD | cbpf.W | cbpf.LEN)
    asm.jump(cbpf.JGE, 4, "far", None)
    for _ in range(distance):
        asm.emit(cbpf.ALU | cbpf.ADD | cbpf.K, 1)
    asm.label("far")
    asm.emit(cbpf.RET | cbpf.A_SRC)
    return asm.assemble()


def test_assembler_emits_a_255_instruction_jump_and_refuses_256() -> None:
    program = _far_jump(255)
    assert program[1].jt == 255 and program[1].jf == 0
    assert cbpf.run(program, b"\x00" * 4) == 4  # jumped over all 255 additions
    assert cbpf.run(program, b"\x00" * 3) == 3 + 255
    with pytest.raises(cbpf.CbpfError, match="255"):
        _far_jump(256)


def _kernel_attach(program: list[SockFilter]) -> int:
    """0 if SO_ATTACH_FILTER accepts *program*, else the errno."""
    raw = cbpf.encode(program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buf))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            return exc.errno or -1
        s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    return 0


@pytest.mark.oracle
def test_the_live_kernel_takes_the_255_jump_and_refuses_one_past_the_end() -> None:
    from conftest import oracle_unavailable  # noqa: PLC0415

    if struct.calcsize("P") != 8:
        oracle_unavailable("live kernel: needs 64-bit Linux for struct sock_fprog")
    ok = [SockFilter(cbpf.RET | cbpf.K, 0, 0, 0)]
    try:
        if _kernel_attach(ok) != 0:
            oracle_unavailable("live kernel: SO_ATTACH_FILTER refuses even RET #0")
    except OSError as exc:  # pragma: no cover - no socket at all
        oracle_unavailable(f"live kernel: {exc}")
    program = _far_jump(255)
    assert _kernel_attach(program) == 0
    # The same jump with one instruction fewer behind it lands past the end: both refuse.
    short = [*program[:2], *program[3:]]
    assert short[1].jt == 255
    with pytest.raises(cbpf.CbpfError):
        cbpf.check(short)
    assert _kernel_attach(short) == errno.EINVAL
    # jf at 255 as well
    flipped = [program[0], SockFilter(program[1].code, 0, 255, program[1].k), *program[2:]]
    cbpf.check(flipped)
    assert _kernel_attach(flipped) == 0
    assert cbpf.run(flipped, b"\x00" * 3) == 3  # false: jumped
    assert cbpf.run(flipped, b"\x00" * 4) == 4 + 255


def test_body_uses_spans_every_byte_read() -> None:
    """The policy sizes the eBPF stack window and the length check from this span."""
    assert _ir.body_uses([]) == (0, 0)
    assert _ir.body_uses([_ir.Set("a", 1), _ir.Bin("add", "a", imm=1)]) == (0, 0)
    assert _ir.body_uses([_ir.AddByte("a", 5, 0)]) == (5, 6)
    assert _ir.body_uses([_ir.LoadBE("v", 2, 3), _ir.AddByte("a", 9, 8)]) == (2, 10)
    assert _ir.body_uses([_ir.AddByte("a", 9, 8), _ir.LoadBE("v", 4, 4)]) == (4, 10)
    ops = _ir.jhash_ops(6, 13, 0)
    assert _ir.body_uses(ops) == (6, 19)
